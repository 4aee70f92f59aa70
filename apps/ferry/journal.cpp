// `ferry journal list|dump|verify|replay|export|archive|import`: recovery tooling over a
// journal directory. Every command but archive and import opens the journal read-only
// (RocksDB's read-only mode: safe beside a live engine or daemon, which it sees as of the
// moment it opened); archive removes what it exported (refused while an engine holds the
// journal); import writes into an empty journal. docs/journal-format.md describes what they read.
#include <cctype>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>

#include "actors/fleet_runtime.hpp"
#include "apps/ferry/commands.hpp"
#include "apps/ferry/output.hpp"
#include "common/errc.hpp"
#include "common/file.hpp"
#include "persistence/journal_export.hpp"
#include "persistence/journal_reader.hpp"
#include "persistence/journal_verify.hpp"
#include "persistence/store.hpp"

namespace ferry::cli {

namespace {

struct journal_args {
  std::string db;
  std::string run;
  std::vector<std::string> runs;
  std::string file;
  std::string out;
  std::string format = "jsonl";
  uint64_t until_seq = 0;
  std::string older_than;
  std::string until_time;
  bool json = false;
  size_t max_problems = 1;
};

std::string iso(time_ms t) {
  if (t <= 0)
    return "-";
  std::time_t secs = static_cast<std::time_t>(t / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(t % 1000));
  return out;
}

/// "1700000000000" (ms) or "2026-12-05T22:00:00Z" / "...T22:00:00.250Z" (UTC).
bool parse_time(const std::string& s, time_ms& out) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) {
    // Too many digits for a time is not a time (std::stoll threw, and ferry aborted).
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && end == s.data() + s.size();
  }
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0])))
    return false; // strptime skips white space
  std::tm tm{};
  auto* rest = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest)
    return false;
  // A fraction of a second, to the ms: ".4" is 400 ms (it was 4), ".123456" is 123.
  int ms = 0;
  if (*rest == '.') {
    int digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest, ++digits)
      if (digits < 3)
        ms = ms * 10 + (*rest - '0');
    if (digits == 0 || digits > 9)
      return false;
    for (int d = digits; d < 3; ++d)
      ms *= 10;
  }
  if (*rest != 'Z' || rest[1] != '\0')
    return false;
  out = static_cast<time_ms>(::timegm(&tm)) * 1000 + ms;
  return true;
}

int fail(const char* cmd, const caf::error& err) {
  std::fprintf(stderr, "ferry journal %s: %s\n", cmd, describe(err).c_str());
  return embedded_exit_of(err);
}

caf::expected<journal_reader> open_reader(const journal_args& a) {
  return journal_reader::open(a.db);
}

int list(const journal_args& a) {
  auto r = open_reader(a);
  if (!r)
    return fail("list", r.error());
  auto runs = r->list_runs();
  if (!runs)
    return fail("list", runs.error());
  if (!a.json)
    std::printf("%-40s %-12s %-22s %-16s %-24s %-24s\n", "run", "status", "template", "vm",
                "created", "updated");
  for (auto& s : *runs) {
    std::string tmpl = s.definition_name, vm;
    if (auto d = r->definition(s.definition_digest)) {
      if (auto i = (*d)->labels.find("template"); i != (*d)->labels.end())
        tmpl = i->second;
      if (auto i = (*d)->labels.find("vm"); i != (*d)->labels.end())
        vm = i->second;
    }
    if (a.json)
      std::printf("{\"run\":%s,\"status\":\"%s\",\"definition\":%s,\"template\":%s,\"vm\":%s,"
                  "\"created_ms\":%lld,\"updated_ms\":%lld,\"last_seq\":%llu}\n",
                  json_quote(s.id).c_str(), to_string(s.status),
                  json_quote(s.definition_name).c_str(), json_quote(tmpl).c_str(),
                  json_quote(vm).c_str(), static_cast<long long>(s.created),
                  static_cast<long long>(s.updated), static_cast<unsigned long long>(s.last_seq));
    else
      std::printf("%-40s %-12s %-22s %-16s %-24s %-24s\n", s.id.c_str(), to_string(s.status),
                  tmpl.c_str(), vm.c_str(), iso(s.created).c_str(), iso(s.updated).c_str());
  }
  return exit_ok;
}

int dump(const journal_args& a) {
  auto r = open_reader(a);
  if (!r)
    return fail("dump", r.error());
  auto cp = r->checkpoint(a.run);
  if (!cp)
    return fail("dump", cp.error());
  auto evs = r->events(a.run, 1, UINT64_MAX, cp->def);
  if (!evs)
    return fail("dump", evs.error());
  auto& def = *cp->def;
  // When each attempt started, to print how long it took.
  std::map<std::pair<uint32_t, bool>, time_ms> started;
  time_ms origin = evs->empty() ? 0 : evs->front().at;
  if (!a.json)
    std::printf("run %s: %s, %zu events, %s\n", a.run.c_str(), def.name.c_str(), evs->size(),
                to_string(cp->status));
  for (auto& e : *evs) {
    std::string task = e.task < def.tasks.size() ? def.tasks[e.task].id : "";
    time_ms took = -1;
    auto key = std::make_pair(e.task, e.compensation);
    if (e.type == event_type::task_started || e.type == event_type::task_compensating)
      started[key] = e.at;
    else if (e.type == event_type::task_succeeded || e.type == event_type::task_failed
             || e.type == event_type::task_compensated
             || e.type == event_type::compensation_failed) {
      auto i = started.find(key);
      if (i != started.end())
        took = e.at - i->second;
    }
    std::string outcome = !e.message.empty() ? e.message : e.output;
    if (a.json) {
      std::printf("{\"seq\":%llu,\"time_ms\":%lld,\"type\":\"%s\",\"task\":%s,\"attempt\":%u,"
                  "\"compensation\":%s,\"duration_ms\":%lld,\"outcome\":%s}\n",
                  static_cast<unsigned long long>(e.seq), static_cast<long long>(e.at),
                  to_string(e.type), json_quote(task).c_str(), e.attempt,
                  e.compensation ? "true" : "false", static_cast<long long>(took),
                  json_quote(outcome).c_str());
    } else {
      std::printf("%5llu  %s  %-26s %-18s", static_cast<unsigned long long>(e.seq),
                  iso(e.at).c_str(), to_string(e.type), task.c_str());
      if (e.attempt > 0)
        std::printf(" attempt %u", e.attempt);
      if (took >= 0)
        std::printf(" after %s", format_duration(took).c_str());
      if (!outcome.empty())
        std::printf("  %s", outcome.c_str());
      std::printf("  (+%s)\n", format_duration(e.at - origin).c_str());
    }
  }
  return exit_ok;
}

int verify(const journal_args& a) {
  auto r = open_reader(a);
  if (!r)
    return fail("verify", r.error());
  auto rep = verify_journal(*r, a.runs, a.max_problems);
  if (!rep)
    return fail("verify", rep.error());
  // The fleet's durable state: never two PRIMARY leases on a partition.
  if (a.runs.empty()) {
    rocksdb_store_options so;
    so.read_only = true;
    so.create_if_missing = false;
    auto st = open_rocksdb_store(a.db, so);
    if (!st)
      return fail("verify", st.error());
    auto fs = read_fleet_state(**st);
    if (!fs) {
      rep->problems.push_back("fleet records: " + describe(fs.error()));
    } else {
      for (auto& p : fleet::lease_problems(*fs))
        rep->problems.push_back(std::move(p));
    }
    // And at every point of the fleet's history.
    auto hist = fleet_history_problems(**st, a.max_problems);
    if (!hist)
      rep->problems.push_back("fleet history: " + describe(hist.error()));
    else
      for (auto& p : *hist)
        rep->problems.push_back(std::move(p));
  }
  if (a.json) {
    std::string problems;
    for (auto& p : rep->problems)
      problems += (problems.empty() ? "" : ",") + json_quote(p);
    std::printf("{\"runs\":%llu,\"events\":%llu,\"ok\":%s,\"problems\":[%s]}\n",
                static_cast<unsigned long long>(rep->runs),
                static_cast<unsigned long long>(rep->events),
                rep->problems.empty() ? "true" : "false", problems.c_str());
  } else {
    for (auto& p : rep->problems)
      std::printf("%s\n", p.c_str());
    std::printf("%s: %llu run(s), %llu event(s) verified\n",
                rep->problems.empty() ? "ok" : "DIVERGED",
                static_cast<unsigned long long>(rep->runs),
                static_cast<unsigned long long>(rep->events));
  }
  return rep->problems.empty() ? exit_ok : exit_failed;
}

int replay(const journal_args& a) {
  auto r = open_reader(a);
  if (!r)
    return fail("replay", r.error());
  uint64_t until = a.until_seq != 0 ? a.until_seq : UINT64_MAX;
  if (!a.until_time.empty()) {
    time_ms t = 0;
    if (!parse_time(a.until_time, t)) {
      std::fprintf(stderr, "ferry journal replay: --until-time: expected milliseconds since "
                           "the epoch or YYYY-MM-DDTHH:MM:SS[.mmm]Z, got \"%s\"\n",
                   a.until_time.c_str());
      return exit_bad_input;
    }
    // The last event at or before that time.
    auto evs = r->events(a.run, 1);
    if (!evs)
      return fail("replay", evs.error());
    until = 0;
    for (auto& e : *evs)
      if (e.at <= t)
        until = e.seq;
    if (until == 0) {
      std::fprintf(stderr, "ferry journal replay: run %s did not exist at %s\n", a.run.c_str(),
                   a.until_time.c_str());
      return exit_bad_input;
    }
  }
  auto s = r->replay(a.run, until);
  if (!s)
    return fail("replay", s.error());
  if (!s->def) {
    std::fprintf(stderr, "ferry journal replay: run %s has no events\n", a.run.c_str());
    return exit_bad_input;
  }
  std::printf("run %s as of event %llu (%s)\n%s", a.run.c_str(),
              static_cast<unsigned long long>(s->seq), iso(s->updated).c_str(),
              format_summary(*s).c_str());
  return exit_ok;
}

int export_cmd(const journal_args& a) {
  rocksdb_store_options so;
  so.read_only = true;
  so.create_if_missing = false;
  auto st = open_rocksdb_store(a.db, so);
  if (!st)
    return fail("export", st.error());
  std::ofstream file;
  std::ostream* out = &std::cout;
  if (!a.out.empty()) {
    if (auto err = open_for_writing(file, a.out, false)) {
      std::fprintf(stderr, "ferry journal export: %s: cannot write: %s\n", a.out.c_str(),
                   message_of(err).c_str());
      return exit_bad_input;
    }
    out = &file;
  }
  auto n = export_jsonl(**st, a.runs, *out);
  if (!n)
    return fail("export", n.error());
  if (!a.out.empty())
    std::fprintf(stderr, "exported %llu event(s) to %s\n", static_cast<unsigned long long>(*n),
                 a.out.c_str());
  return exit_ok;
}

int import_cmd(const journal_args& a) {
  if (auto err = check_readable(a.file)) {
    std::fprintf(stderr, "ferry journal import: %s: %s\n", a.file.c_str(),
                 message_of(err).c_str());
    return exit_bad_input;
  }
  std::ifstream in{a.file};
  if (!in) {
    std::fprintf(stderr, "ferry journal import: %s: cannot be opened\n", a.file.c_str());
    return exit_bad_input;
  }
  // A journal made here for an export that is refused is removed again (the store, declared
  // after the guard, is closed first).
  new_journal_guard journal{a.db};
  auto st = open_rocksdb_store(a.db);
  if (!st)
    return fail("import", st.error());
  auto n = import_jsonl(in, **st);
  if (!n)
    return fail("import", n.error());
  journal.keep();
  std::printf("imported %llu event(s) into %s\n", static_cast<unsigned long long>(*n),
              a.db.c_str());
  return exit_ok;
}

/// "7d", "12h", "30m", "90s", "500ms" -> ms.
bool parse_age(const std::string& s, time_ms& out) {
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
    ++i;
  if (i == 0 || i > 15)
    return false;
  auto n = std::stoll(s.substr(0, i));
  auto unit = s.substr(i);
  time_ms mult = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000
               : unit == "h" ? 3600000 : unit == "d" ? 86400000 : 0;
  // More than about 31 years is refused: 15 digits of days overflowed into a negative age,
  // which would have archived every run at rest.
  if (mult == 0 || n > static_cast<time_ms>(max_duration_ms) / mult)
    return false;
  out = n * mult;
  return true;
}

int archive_cmd(const journal_args& a) {
  time_ms age = 0;
  if (!parse_age(a.older_than, age)) {
    std::fprintf(stderr, "ferry journal archive: --older-than: expected a number and a unit "
                         "(ms, s, m, h, d), at most %lldms (about 31 years), got \"%s\"\n",
                 static_cast<long long>(max_duration_ms), a.older_than.c_str());
    return exit_bad_input;
  }
  if (a.out.empty()) {
    std::fprintf(stderr, "ferry journal archive: --out FILE is required\n");
    return exit_bad_input;
  }
  // Opened read-write: refused while an engine holds the journal.
  rocksdb_store_options so;
  so.create_if_missing = false;
  auto st = open_rocksdb_store(a.db, so);
  if (!st)
    return fail("archive", st.error());
  // The archive is synced to disk before the runs leave the journal.
  auto r = archive_runs_to_file(**st, wall_now_ms() - age, a.out);
  if (!r)
    return fail("archive", r.error());
  std::printf("archived %llu run(s), %llu event(s) to %s\n",
              static_cast<unsigned long long>(r->runs),
              static_cast<unsigned long long>(r->events), a.out.c_str());
  return exit_ok;
}

} // namespace

void add_journal(CLI::App& app, std::function<int()>& action) {
  auto a = std::make_shared<journal_args>();
  auto* cmd = app.add_subcommand("journal", "Read, verify, replay, export and import a journal");
  cmd->require_subcommand(1);
  auto sub = [&](const char* name, const char* help, int (*fn)(const journal_args&)) {
    auto* s = cmd->add_subcommand(name, help);
    s->add_option("db", a->db, "Journal directory")->required();
    s->callback([&action, a, fn] { action = [a, fn] { return fn(*a); }; });
    return s;
  };
  auto* l = sub("list", "Every run: status, template, VM, times", list);
  l->add_flag("--json", a->json, "One JSON object per line");
  auto* d = sub("dump", "A run's timeline: each event with its time, task, attempt, outcome, "
                        "duration", dump);
  d->add_option("run", a->run, "Run id")->required();
  d->add_flag("--json", a->json, "One JSON object per event");
  auto* v = sub("verify", "Replay every run (or the ones named) and compare with its "
                          "checkpoint; check the journal's invariants", verify);
  v->add_option("runs", a->runs, "Run ids (default: every run)");
  v->add_option("--max-problems", a->max_problems, "Stop after N problems (default 1; 0: all)")
    ->transform(whole_number());
  v->add_flag("--json", a->json, "One JSON object");
  auto* r = sub("replay", "A run's state at a sequence number or a time", replay);
  r->add_option("run", a->run, "Run id")->required();
  auto* us = r->add_option("--until-seq", a->until_seq, "Up to and including this event")
              ->transform(whole_number(1));
  r->add_option("--until-time", a->until_time,
                "Up to this time (ms since the epoch, or YYYY-MM-DDTHH:MM:SS[.mmm]Z)")
    ->excludes(us);
  auto* e = sub("export", "Events as JSON lines (every run, or the ones named)", export_cmd);
  e->add_option("runs", a->runs, "Run ids (default: every run)");
  e->add_option("--format", a->format, "jsonl (the only one)")->check(CLI::IsMember({"jsonl"}));
  e->add_option("-o,--out", a->out, "Write to this file (default: stdout)");
  auto* ar = sub("archive", "Retention: export the runs at rest older than an age to a file "
                            "(appended), remove them from the journal and compact it "
                            "(not while an engine runs on it)", archive_cmd);
  ar->add_option("--older-than", a->older_than, "Age: 7d, 12h, 30m, 90s, 500ms")->required();
  ar->add_option("-o,--out", a->out, "The archive (JSON lines, as export)")->required();
  auto* i = sub("import", "Write an export into an empty journal", import_cmd);
  i->add_option("file", a->file, "The export (JSON lines)")->required();
}

} // namespace ferry::cli
