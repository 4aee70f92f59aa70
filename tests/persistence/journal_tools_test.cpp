// Journal tooling on journals the engine wrote: verification (sound journals pass; a stale
// checkpoint, an event after a terminal one, a gap and a corrupted SST are each reported,
// never a crash), point-in-time replay against the state the engine had, and export →
// import round trips.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <condition_variable>
#include <future>
#include <mutex>
#include <sstream>
#include <unistd.h>

#include "actors/engine.hpp"
#include "actors/fleet_runtime.hpp"
#include "fleet/state_codec.hpp"
#include "persistence/codec.hpp"
#include "persistence/journal_export.hpp"
#include "persistence/journal_reader.hpp"
#include "persistence/journal_verify.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/same_export.hpp"

using namespace ferry;
using namespace std::chrono_literals;

namespace {

struct journal_dir {
  std::string path;
  explicit journal_dir(const std::string& tag) {
    path = (std::filesystem::temp_directory_path()
            / ("ferry-journal-tools-" + std::to_string(::getpid()) + "-" + tag))
             .string();
    std::filesystem::remove_all(path);
  }
  ~journal_dir() { std::filesystem::remove_all(path); }
};

const char* ok_def = R"(
name: "three"
tasks { id: "a" kind: "noop" compensation { kind: "noop" } }
tasks { id: "b" kind: "fail" params { fields { key: "attempts" value { number_value: 1 } } }
        depends_on: "a" retry { max_attempts: 3 initial_backoff_ms: 1 } }
tasks { id: "c" kind: "noop" depends_on: "b" }
)";

const char* rollback_def = R"(
name: "undo"
tasks { id: "a" kind: "noop" compensation { kind: "noop" } }
tasks { id: "b" kind: "noop" depends_on: "a" compensation { kind: "noop" } }
tasks { id: "c" kind: "fail" params { fields { key: "forever" value { bool_value: true } } }
        depends_on: "b" retry { max_attempts: 2 initial_backoff_ms: 1 } }
)";

const char* gated_def = R"(
name: "gated"
tasks { id: "a" kind: "noop" }
tasks { id: "approve" kind: "noop" gate: true depends_on: "a" }
tasks { id: "c" kind: "noop" depends_on: "approve" }
)";

/// A journal with runs that succeeded (one after a retry), rolled back, and passed a gate;
/// `mid` gets the gated run's state while it waited at the gate.
void write_journal(const std::string& path, run_state* mid = nullptr) {
  engine_options opts;
  opts.journal_path = path;
  opts.threads = 2;
  auto e = engine::open(opts);
  REQUIRE(e);
  auto& eng = **e;
  for (int i = 0; i < 5; ++i) {
    auto d = eng.load(i % 2 ? rollback_def : ok_def);
    REQUIRE(d);
    submit_options so;
    so.id = "run-" + std::to_string(i);
    REQUIRE(eng.submit(*d, so));
  }
  auto g = eng.load(gated_def);
  REQUIRE(g);
  submit_options so;
  so.id = "gated";
  REQUIRE(eng.submit(*g, so));
  std::promise<void> at_gate;
  std::once_flag once;
  auto w = eng.watch("gated", 1, [&](const std::vector<event>& evs) {
    for (auto& ev : evs)
      if (ev.type == event_type::task_scheduled)
        std::call_once(once, [&] { at_gate.set_value(); });
  }, nullptr);
  REQUIRE(at_gate.get_future().wait_for(10s) == std::future_status::ready);
  w.cancel();
  if (mid) {
    auto s = eng.get("gated");
    REQUIRE(s);
    *mid = *s;
  }
  REQUIRE(eng.approve("gated", "approve"));
  for (auto id : {"run-0", "run-1", "run-2", "run-3", "run-4", "gated"})
    REQUIRE(eng.wait(id, 30s));
  eng.close();
}

std::unique_ptr<store> open_rw(const std::string& path) {
  auto st = open_rocksdb_store(path);
  REQUIRE(st);
  return std::move(*st);
}

verify_report verify(const std::string& path, std::vector<run_id> runs = {}) {
  auto r = journal_reader::open(path);
  REQUIRE(r);
  auto rep = verify_journal(*r, runs, 0);
  REQUIRE(rep);
  return *rep;
}

} // namespace

TEST_CASE("a journal the engine wrote verifies, and replays to the state the engine had") {
  journal_dir dir{"sound"};
  run_state mid;
  write_journal(dir.path, &mid);
  auto rep = verify(dir.path);
  CHECK(rep.problems.empty());
  CHECK(rep.runs == 6);
  CHECK(rep.events > 40);
  auto r = journal_reader::open(dir.path);
  REQUIRE(r);
  // Runs named: verified alone; one the journal has nothing of is refused, as a mistake in
  // the request rather than a problem of the journal.
  auto named = verify_journal(*r, {"gated", "run-1"}, 0);
  REQUIRE(named);
  CHECK(named->runs == 2);
  CHECK(named->problems.empty());
  auto unknown = verify_journal(*r, {"gated", "no-such-run"}, 0);
  REQUIRE(!unknown);
  CHECK(code_of(unknown.error()) == errc::not_found);
  CHECK(message_of(unknown.error()) == "run no-such-run: not in the journal");
  CHECK(r->has_run("gated") == caf::expected<bool>{true});
  CHECK(r->has_run("no-such-run") == caf::expected<bool>{false});
  // The state at the gate, rebuilt from the events up to that sequence number.
  auto at = r->replay("gated", mid.seq);
  REQUIRE(at);
  CHECK(diff(mid, *at) == "");
  CHECK(at->status == run_status::running);
  auto end = r->replay("gated");
  REQUIRE(end);
  CHECK(end->status == run_status::succeeded);
}

TEST_CASE("verify names the first divergence") {
  journal_dir dir{"bad"};
  write_journal(dir.path);
  run_state cp, stale;
  {
    auto r = journal_reader::open(dir.path);
    REQUIRE(r);
    auto c = r->checkpoint("run-0");
    REQUIRE(c);
    cp = *c;
    auto s = r->replay("run-0", 3);
    REQUIRE(s);
    stale = *s;
  }
  auto last = cp.seq;
  SECTION("a checkpoint that is not the fold of the events") {
    auto st = open_rw(dir.path);
    transition_record rec;
    rec.run = "run-0";
    rec.checkpoint = encode_checkpoint(stale);
    REQUIRE(!st->write({&rec}, true));
    st.reset();
    auto rep = verify(dir.path);
    REQUIRE(rep.problems.size() == 1);
    CHECK_THAT(rep.problems[0],
               Catch::StartsWith("run run-0: the checkpoint and the replayed events differ"));
  }
  SECTION("an event after the terminal one") {
    auto st = open_rw(dir.path);
    event ev;
    ev.seq = last + 1;
    ev.at = cp.updated;
    ev.type = event_type::task_started;
    ev.task = 0;
    ev.attempt = 9;
    transition_record rec;
    rec.run = "run-0";
    rec.first_seq = last + 1;
    rec.events = encode_events(*cp.def, {ev});
    rec.checkpoint = encode_checkpoint(cp);
    REQUIRE(!st->write({&rec}, true));
    st.reset();
    auto rep = verify(dir.path, {"run-0"});
    REQUIRE(rep.problems.size() == 1);
    CHECK(rep.problems[0]
          == "run run-0: event " + std::to_string(last + 1)
               + " (task_started) after the terminal event " + std::to_string(last));
  }
  SECTION("a gap") {
    auto st = open_rw(dir.path);
    event ev;
    ev.seq = last + 2;
    ev.type = event_type::run_resumed;
    transition_record rec;
    rec.run = "run-0";
    rec.first_seq = last + 2;
    rec.events = encode_events(*cp.def, {ev});
    rec.checkpoint = encode_checkpoint(cp);
    REQUIRE(!st->write({&rec}, true));
    st.reset();
    auto rep = verify(dir.path, {"run-0"});
    REQUIRE(rep.problems.size() == 1);
    CHECK_THAT(rep.problems[0], Catch::Contains("where " + std::to_string(last + 1)
                                                + " was expected"));
  }
}

TEST_CASE("a flipped byte in an SST is reported as data loss, not a crash") {
  journal_dir dir{"corrupt"};
  write_journal(dir.path);
  // A clean close flushed everything into SST files; damage each of them in its middle.
  size_t damaged = 0;
  for (auto& f : std::filesystem::directory_iterator(dir.path)) {
    if (f.path().extension() != ".sst")
      continue;
    std::fstream io{f.path(), std::ios::in | std::ios::out | std::ios::binary};
    auto size = std::filesystem::file_size(f.path());
    io.seekg(static_cast<std::streamoff>(size / 3));
    char c = 0;
    io.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    io.seekp(static_cast<std::streamoff>(size / 3));
    io.write(&c, 1);
    ++damaged;
  }
  REQUIRE(damaged > 0);
  auto r = journal_reader::open(dir.path);
  if (!r) {
    CHECK(code_of(r.error()) == errc::data_loss);
    return;
  }
  auto rep = verify_journal(*r, {}, 0);
  if (!rep) {
    CHECK(code_of(rep.error()) == errc::data_loss);
    CHECK_THAT(message_of(rep.error()), Catch::Contains(dir.path));
  } else {
    REQUIRE_FALSE(rep->problems.empty());
    CHECK_THAT(rep->problems[0], Catch::Contains("data_loss"));
  }
}

TEST_CASE("export then import into an empty journal loses nothing") {
  journal_dir src{"export"};
  journal_dir dst{"import"};
  write_journal(src.path);
  std::stringstream out;
  {
    rocksdb_store_options ro;
    ro.read_only = true;
    ro.create_if_missing = false;
    auto st = open_rocksdb_store(src.path, ro);
    REQUIRE(st);
    auto n = export_jsonl(**st, {}, out);
    REQUIRE(n);
    CHECK(*n > 40);
  }
  std::stringstream in{out.str()};
  {
    auto st = open_rw(dst.path);
    auto n = import_jsonl(in, *st);
    INFO((n ? "" : describe(n.error())));
    REQUIRE(n);
    // Into a journal that holds runs: refused, nothing written.
    std::stringstream again{out.str()};
    auto twice = import_jsonl(again, *st);
    REQUIRE_FALSE(twice);
    CHECK(code_of(twice.error()) == errc::failed_precondition);
  }
  CHECK(verify(dst.path).problems.empty());
  // Both journals keep each definition once, in `definitions`: a run's first record names it
  // by digest and cannot be read without it; the export carries it in full, and the imported
  // journal exports to the same lines.
  for (auto* path : {&src.path, &dst.path}) {
    INFO(*path);
    rocksdb_store_options ro;
    ro.read_only = true;
    ro.create_if_missing = false;
    auto st = open_rocksdb_store(*path, ro);
    REQUIRE(st);
    std::string first;
    REQUIRE(!(*st)->for_each_event_batch("run-0", 1, [&](uint64_t, std::string_view bytes) {
      first = std::string{bytes};
      return false;
    }));
    auto alone = decode_events(first, nullptr, {});
    REQUIRE_FALSE(alone);
    CHECK(code_of(alone.error()) == errc::data_loss);
    std::stringstream again;
    REQUIRE(export_jsonl(**st, {}, again));
    CHECK(test::export_difference(again.str(), out.str()) == "");
  }
  CHECK_THAT(out.str(), Catch::Contains("\"definition\":{\"name\":\"three\""));
  CHECK_THAT(out.str(), Catch::Contains("\"definition\":{\"name\":\"undo\""));
  auto a = journal_reader::open(src.path);
  auto b = journal_reader::open(dst.path);
  REQUIRE(a);
  REQUIRE(b);
  auto runs = a->list_runs();
  REQUIRE(runs);
  REQUIRE(b->list_runs()->size() == runs->size());
  for (auto& s : *runs) {
    auto ca = a->checkpoint(s.id);
    auto cb = b->checkpoint(s.id);
    REQUIRE(ca);
    REQUIRE(cb);
    CHECK(diff(*ca, *cb) == "");
    auto ea = a->events(s.id, 1);
    auto eb = b->events(s.id, 1);
    REQUIRE(ea);
    REQUIRE(eb);
    REQUIRE(ea->size() == eb->size());
    for (size_t i = 0; i < ea->size(); ++i) {
      auto& x = (*ea)[i];
      auto& y = (*eb)[i];
      CHECK((x.seq == y.seq && x.at == y.at && x.type == y.type && x.task == y.task
             && x.attempt == y.attempt && x.message == y.message && x.output == y.output
             && x.code == y.code && x.compensation == y.compensation
             && x.deadline == y.deadline && x.actor == y.actor));
    }
  }
}

TEST_CASE("an import names the line of a bad export and writes nothing") {
  journal_dir dst{"bad-import"};
  auto st = open_rw(dst.path);
  auto err = [&](const std::string& text) {
    std::stringstream in{text};
    auto n = import_jsonl(in, *st);
    REQUIRE_FALSE(n);
    CHECK(code_of(n.error()) == errc::invalid_argument);
    return message_of(n.error());
  };
  CHECK_THAT(err("{\"run\":\"r\",\"batch\":\"1\",\"event\":{\"seq\":\"1\",\"type\":\"RUN_STARTED\"}}\n"
                 "not json\n"),
             Catch::Contains("line 2: not an exported event"));
  CHECK_THAT(err("{\"run\":\"r\",\"batch\":\"2\",\"event\":{\"seq\":\"2\",\"type\":\"TASK_STARTED\"}}\n"),
             Catch::Contains("line 1: run \"r\": event 2 where 1 was expected"));
  CHECK_THAT(err("{\"run\":\"r\",\"batch\":\"1\",\"event\":{\"seq\":\"1\",\"type\":\"TASK_STARTED\"}}\n"),
             Catch::Contains("run \"r\" (from line 1)"));
  bool any = false;
  REQUIRE(!st->for_each_checkpoint([&](std::string_view, std::string_view) {
    any = true;
    return false;
  }));
  CHECK_FALSE(any);
}

TEST_CASE("the fleet's records are checked for two PRIMARY leases on a partition") {
  journal_dir dir{"leases"};
  auto st = open_rw(dir.path);
  fleet::lease_table good;
  good.leases = {{"h1", fleet::lease_state::primary, 1}, {"h2", fleet::lease_state::standby, 1}};
  fleet::lease_table bad;
  bad.leases = {{"h1", fleet::lease_state::primary, 1}, {"h3", fleet::lease_state::primary, 2}};
  transition_record rec;
  rec.run = "r";
  rec.checkpoint = "x";
  rec.fleet = {fleet::encode_lease("p0", good, "s1"), fleet::encode_lease("p1", bad, "s1")};
  REQUIRE(!st->write({&rec}, true));
  auto fs = read_fleet_state(*st);
  REQUIRE(fs);
  auto problems = fleet::lease_problems(*fs);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0] == "partition p1: 2 PRIMARY leases (h1, h3)");
}

namespace {

uint64_t sst_bytes(const std::string& dir) {
  uint64_t n = 0;
  for (auto& f : std::filesystem::directory_iterator(dir))
    if (f.path().extension() == ".sst")
      n += std::filesystem::file_size(f.path());
  return n;
}

} // namespace

TEST_CASE("archiving exports the old runs at rest, removes them and compacts the journal") {
  journal_dir dir{"archive"};
  journal_dir back{"archive-back"};
  std::stringstream archive;
  uint64_t archived = 0;
  std::vector<uint64_t> sizes;
  // A continuous workload: each round writes runs, then archives everything at rest.
  for (int round = 0; round < 3; ++round) {
    write_journal(dir.path);
    auto st = open_rw(dir.path);
    auto before = sst_bytes(dir.path);
    auto r = archive_runs(*st, wall_now_ms() + 3600000, archive);
    REQUIRE(r);
    CHECK(r->runs == 6);
    archived += r->events;
    bool any = false;
    REQUIRE(!st->for_each_checkpoint([&](std::string_view, std::string_view) {
      any = true;
      return false;
    }));
    CHECK_FALSE(any);
    REQUIRE(!st->for_each_event_batch("run-0", 1, [&](uint64_t, std::string_view) {
      FAIL("an archived run's events are still in the journal");
      return false;
    }));
    st.reset();
    sizes.push_back(sst_bytes(dir.path));
    CHECK(sizes.back() < before);
  }
  // Bounded: the journal does not grow with the rounds.
  CHECK(sizes[2] <= sizes[0] + 4096);
  // Nothing young or still running is archived.
  write_journal(dir.path);
  {
    auto st = open_rw(dir.path);
    std::stringstream none;
    auto r = archive_runs(*st, wall_now_ms() - 3600000, none);
    REQUIRE(r);
    CHECK(r->runs == 0);
    CHECK(none.str().empty());
  }
  // The archive is a complete export of one round's runs each time: the last round's runs
  // reimport and verify (ids repeat across rounds, so one round at a time).
  std::string line;
  std::stringstream last;
  size_t lines = 0;
  std::vector<std::string> all;
  while (std::getline(archive, line))
    all.push_back(line);
  CHECK(all.size() == archived);
  for (size_t i = all.size() - archived / 3; i < all.size(); ++i)
    last << all[i] << '\n', ++lines;
  auto st = open_rw(back.path);
  auto n = import_jsonl(last, *st);
  INFO((n ? "" : describe(n.error())));
  REQUIRE(n);
  CHECK(*n == lines);
  st.reset();
  CHECK(verify(back.path).problems.empty());
}

TEST_CASE("archiving makes the archive durable before it removes a run, and removes nothing "
          "when it cannot") {
  journal_dir dir{"archive-durable"};
  write_journal(dir.path);
  auto st = open_rw(dir.path);
  auto runs_left = [&] {
    size_t n = 0;
    REQUIRE(!st->for_each_checkpoint([&](std::string_view, std::string_view) {
      ++n;
      return true;
    }));
    return n;
  };
  REQUIRE(runs_left() == 6);
  // The durable step runs once every line is written and before any run is removed; when it
  // fails (the archive could not be synced), the journal keeps every run.
  std::stringstream archive;
  size_t seen_runs = 0;
  size_t seen_lines = 0;
  auto r = archive_runs(*st, wall_now_ms() + 3600000, archive, [&]() -> caf::error {
    seen_runs = runs_left();
    auto text = archive.str();
    seen_lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
    return make_error(errc::unavailable, "archive: a.jsonl: cannot be synced: Input/output error");
  });
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::unavailable);
  CHECK(message_of(r.error())
        == "archive: a.jsonl: cannot be synced: Input/output error; nothing was removed");
  CHECK(seen_runs == 6);
  CHECK(seen_lines > 6);
  CHECK(runs_left() == 6);
  // Into a file: appended to, and the runs are gone once it holds them.
  auto file = dir.path + ".archive.jsonl";
  std::ofstream{file} << "kept\n";
  auto done = archive_runs_to_file(*st, wall_now_ms() + 3600000, file);
  INFO((done ? "" : describe(done.error())));
  REQUIRE(done);
  CHECK(done->runs == 6);
  CHECK(runs_left() == 0);
  std::ifstream in{file};
  std::string first;
  std::getline(in, first);
  CHECK(first == "kept");
  size_t lines = 1;
  for (std::string line; std::getline(in, line);)
    ++lines;
  CHECK(lines == done->events + 1);
  std::filesystem::remove(file);
  // A file that cannot be opened: the reason, and nothing removed.
  st.reset();
  write_journal(dir.path);
  st = open_rw(dir.path);
  auto bad = archive_runs_to_file(*st, wall_now_ms() + 3600000, dir.path);
  REQUIRE_FALSE(bad);
  CHECK(code_of(bad.error()) == errc::invalid_argument);
  CHECK(message_of(bad.error()) == "archive: " + dir.path + ": cannot write: is a directory");
  CHECK(runs_left() == 6);
}

namespace {

/// The golden journal (tests/data/golden-journal-v1, written by this version of the engine
/// with `ferry run`: a success after a retry, a rollback, a gate approved, a live-precopy
/// migration on examples/fleet.textproto), copied so that nothing touches the checked-in one.
std::string golden_copy(const journal_dir& dir) {
  std::filesystem::copy(std::string{FERRY_SOURCE_DIR} + "/tests/data/golden-journal-v1",
                        dir.path, std::filesystem::copy_options::recursive);
  return dir.path;
}

void check_golden_runs(const journal_reader& r) {
  auto runs = r.list_runs();
  REQUIRE(runs);
  std::map<std::string, std::pair<run_status, uint64_t>> got;
  for (auto& s : *runs)
    got[s.id] = {s.status, s.last_seq};
  CHECK(got == std::map<std::string, std::pair<run_status, uint64_t>>{
                 {"golden-gate", {run_status::succeeded, 10}},
                 {"golden-migration", {run_status::succeeded, 28}},
                 {"golden-ok", {run_status::succeeded, 11}},
                 {"golden-undo", {run_status::rolled_back, 16}}});
  auto undo = r.checkpoint("golden-undo");
  REQUIRE(undo);
  CHECK(undo->reason.find("task \"c\" failed after 2 attempts") == 0);
  auto mig = r.checkpoint("golden-migration");
  REQUIRE(mig);
  CHECK(mig->def->labels.at("template") == "live-precopy");
  // Each definition, decoded, encodes again to the digest it was stored under: the canonical
  // encoding has not changed since the journal was written.
  for (auto& s : *runs) {
    INFO(s.id);
    auto def = r.definition(s.definition_digest);
    REQUIRE(def);
    CHECK((*def)->digest == s.definition_digest);
  }
}

} // namespace

TEST_CASE("the golden journal reads, replays and verifies") {
  journal_dir dir{"golden"};
  golden_copy(dir);
  auto r = journal_reader::open(dir.path);
  INFO((r ? "" : describe(r.error())));
  REQUIRE(r);
  check_golden_runs(*r);
  auto rep = verify_journal(*r, {}, 0);
  REQUIRE(rep);
  CHECK(rep->problems.empty());
  CHECK(rep->events == 65);
  // Its fleet records too.
  rocksdb_store_options ro;
  ro.read_only = true;
  ro.create_if_missing = false;
  auto st = open_rocksdb_store(dir.path, ro);
  REQUIRE(st);
  auto fs = read_fleet_state(**st);
  REQUIRE(fs);
  CHECK(fleet::lease_problems(*fs).empty());
  CHECK(fs->vms.at("web-1").host == "a3");
}

TEST_CASE("ferry journal replay reads --until-seq in decimal: 010 is event 10, not 8") {
  // CLI11 reads integers in base 0: before, "010" replayed to event 8 and "-1" to the end.
  journal_dir dir{"golden-decimal"};
  golden_copy(dir);
  using test::run_cmd;
  auto at = [&](const char* seq) {
    return run_cmd({FERRY_BIN, "journal", "replay", dir.path, "golden-migration", "--until-seq",
                    seq},
                   60s);
  };
  auto ten = at("010");
  INFO(ten.out);
  CHECK(ten.status == 0);
  CHECK_THAT(ten.out, Catch::StartsWith("run golden-migration as of event 10 "));
  CHECK(ten.out == at("10").out);
  CHECK_THAT(at("8").out, Catch::StartsWith("run golden-migration as of event 8 "));
  auto negative = at("-1");
  CHECK(negative.status == 4);
  CHECK_THAT(negative.out, Catch::Contains("--until-seq: must be a whole number from 1"));
}

TEST_CASE("ferry journal replay --until-time reads fractions of a second as such; times and "
          "ages it cannot hold are refused, not a crash") {
  journal_dir dir{"golden-until-time"};
  golden_copy(dir);
  using test::run_cmd;
  auto at = [&](const std::string& t) {
    return run_cmd({FERRY_BIN, "journal", "replay", dir.path, "golden-ok", "--until-time", t},
                   60s);
  };
  // golden-ok's first events are at .470 (1) and .471 (2). ".47" is 470 ms: before, it was
  // 47 ms, before the run existed.
  auto hundredths = at("2026-12-05T23:25:14.47Z");
  INFO(hundredths.out);
  CHECK(hundredths.status == 0);
  CHECK_THAT(hundredths.out, Catch::StartsWith("run golden-ok as of event 1 "));
  CHECK_THAT(at("2026-12-05T23:25:14.4712Z").out, Catch::StartsWith("run golden-ok as of event 2 "));
  auto before = at("2026-12-05T23:25:14.4Z");
  CHECK(before.status == 4);
  CHECK_THAT(before.out, Catch::Contains("run golden-ok did not exist at 2026-12-05T23:25:14.4Z"));
  // 23 digits: std::stoll threw and ferry aborted (exit 134).
  for (auto* bad : {"99999999999999999999999", "2026-12-05T23:25:14.Z",
                    "2026-12-05T23:25:14.4000000000000Z", " 2026-12-05T23:25:14Z"}) {
    INFO(bad);
    auto r = at(bad);
    CHECK(r.status == 4);
    CHECK_THAT(r.out, Catch::Contains("--until-time: expected milliseconds since the epoch or "
                                      "YYYY-MM-DDTHH:MM:SS[.mmm]Z"));
  }
  // An age whose ms overflow went negative: every run at rest would have been archived.
  auto age = run_cmd({FERRY_BIN, "journal", "archive", dir.path, "--older-than",
                      "106751991167d", "-o", dir.path + ".never.jsonl"},
                     60s);
  CHECK(age.status == 4);
  CHECK_THAT(age.out, Catch::Contains("at most 1000000000000ms (about 31 years)"));
  CHECK_FALSE(std::filesystem::exists(dir.path + ".never.jsonl"));
  auto r = journal_reader::open(dir.path);
  REQUIRE(r);
  auto runs = r->list_runs();
  REQUIRE(runs);
  CHECK(runs->size() == 4);
}

TEST_CASE("a journal of an earlier version, without fleet_history, is archived") {
  // The golden journal predates the fleet_history column family. Before, archive (which opens
  // to write but creates no journal) refused it: "Column family not found: fleet_history".
  journal_dir dir{"golden-archive"};
  golden_copy(dir);
  auto out = dir.path + ".archive.jsonl";
  auto r = test::run_cmd({FERRY_BIN, "journal", "archive", dir.path, "--older-than", "1ms", "-o",
                          out},
                         60s);
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK_THAT(r.out, Catch::Contains("archived 4 run(s)"));
  auto left = journal_reader::open(dir.path);
  REQUIRE(left);
  auto runs = left->list_runs();
  REQUIRE(runs);
  CHECK(runs->empty());
  std::ifstream archived{out};
  std::string line;
  size_t lines = 0;
  while (std::getline(archived, line))
    ++lines;
  CHECK(lines >= 65); // every event, with the runs' definitions and checkpoints
  std::filesystem::remove(out);
}

TEST_CASE("the golden export imports into the same runs") {
  journal_dir dir{"golden-import"};
  std::ifstream in{std::string{FERRY_SOURCE_DIR} + "/tests/data/golden-journal-v1.jsonl"};
  REQUIRE(in);
  {
    auto st = open_rw(dir.path);
    auto n = import_jsonl(in, *st);
    INFO((n ? "" : describe(n.error())));
    REQUIRE(n);
    CHECK(*n == 65);
  }
  auto r = journal_reader::open(dir.path);
  REQUIRE(r);
  check_golden_runs(*r);
  CHECK(verify(dir.path).problems.empty());
}

namespace {

/// The journal's write-ahead log with the highest number.
std::filesystem::path last_wal(const std::string& dir) {
  std::filesystem::path out;
  for (auto& f : std::filesystem::directory_iterator(dir))
    if (f.path().extension() == ".log" && (out.empty() || f.path() > out))
      out = f.path();
  return out;
}

} // namespace

TEST_CASE("a torn last write in the WAL loses nothing acknowledged; a truncated one is "
          "reported or dropped, never a crash") {
  journal_dir live{"wal-live"};
  journal_dir torn{"wal-torn"};
  journal_dir cut{"wal-cut"};
  {
    engine_options opts;
    opts.journal_path = live.path;
    opts.threads = 2;
    auto e = engine::open(opts);
    REQUIRE(e);
    auto d = (*e)->load(ok_def);
    REQUIRE(d);
    for (int i = 0; i < 5; ++i) {
      submit_options so;
      so.id = "acked-" + std::to_string(i);
      REQUIRE((*e)->submit(*d, so));
      REQUIRE((*e)->wait(so.id, 30s));
    }
    // As a crash would leave it: everything acknowledged is in the WAL, nothing flushed.
    std::filesystem::copy(live.path, torn.path);
    std::filesystem::copy(live.path, cut.path);
    (*e)->close();
  }
  {
    // A write that was in flight when the process died: a partial record at the end.
    auto wal = last_wal(torn.path);
    REQUIRE(!wal.empty());
    REQUIRE(std::filesystem::file_size(wal) > 0);
    std::ofstream out{wal, std::ios::app | std::ios::binary};
    out.write("\x7f\x01\x00\x42\x13\x37\x00", 7);
  }
  auto r = journal_reader::open(torn.path);
  INFO((r ? "" : describe(r.error())));
  REQUIRE(r);
  auto runs = r->list_runs();
  REQUIRE(runs);
  CHECK(runs->size() == 5);
  for (auto& s : *runs)
    CHECK(s.status == run_status::succeeded);
  auto rep = verify_journal(*r, {}, 0);
  REQUIRE(rep);
  CHECK(rep->problems.empty());
  {
    auto wal = last_wal(cut.path);
    auto size = std::filesystem::file_size(wal);
    std::filesystem::resize_file(wal, size - 10);
  }
  auto c = journal_reader::open(cut.path);
  if (!c) {
    CHECK(code_of(c.error()) == errc::data_loss);
  } else {
    auto rc = verify_journal(*c, {}, 0);
    REQUIRE(rc);
    CHECK(rc->problems.empty());
    auto n = c->list_runs();
    REQUIRE(n);
    CHECK(n->size() >= 4);
  }
}

TEST_CASE("a live engine archives its old runs, forgets them, and keeps its journal bounded") {
  journal_dir dir{"engine-archive"};
  journal_dir arch{"engine-archive-out"};
  std::filesystem::create_directories(arch.path);
  engine_options opts;
  opts.journal_path = dir.path;
  opts.threads = 2;
  auto e = engine::open(opts);
  REQUIRE(e);
  auto& eng = **e;
  auto d = eng.load(ok_def);
  REQUIRE(d);
  std::vector<uint64_t> sizes;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 50; ++i) {
      submit_options so;
      so.id = "r" + std::to_string(round) + "-" + std::to_string(i);
      REQUIRE(eng.submit(*d, so));
      REQUIRE(eng.wait(so.id, 30s));
    }
    auto file = arch.path + "/round-" + std::to_string(round) + ".jsonl";
    auto n = eng.archive(0ms, file);
    INFO((n ? "" : describe(n.error())));
    REQUIRE(n);
    CHECK(*n == 50);
    auto left = eng.list();
    REQUIRE(left);
    for (auto& l : *left)
      FAIL_CHECK("still listed: " << l.id << " " << to_string(l.status));
    CHECK_FALSE(eng.get("r" + std::to_string(round) + "-0"));
    sizes.push_back(sst_bytes(dir.path));
    // The archive reimports and verifies.
    journal_dir back{"engine-archive-back"};
    std::ifstream in{file};
    auto st = open_rw(back.path);
    auto imported = import_jsonl(in, *st);
    REQUIRE(imported);
    st.reset();
    auto rep = verify(back.path);
    CHECK(rep.problems.empty());
    CHECK(rep.runs == 50);
  }
  CHECK(sizes[2] <= sizes[0] + 4096);
  // Young runs stay.
  submit_options so;
  so.id = "young";
  REQUIRE(eng.submit(*d, so));
  REQUIRE(eng.wait("young", 30s));
  auto none = eng.archive(std::chrono::hours(1), arch.path + "/none.jsonl");
  REQUIRE(none);
  CHECK(*none == 0);
  CHECK(eng.get("young"));
}

TEST_CASE("retention archives on its own and says so") {
  journal_dir dir{"retention"};
  journal_dir arch{"retention-out"};
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> said;
  engine_options opts;
  opts.journal_path = dir.path;
  opts.threads = 2;
  opts.retention.age = 1ms;
  opts.retention.every = 20ms;
  opts.retention.archive_dir = arch.path;
  opts.notify = [&](const notification& n) {
    std::lock_guard<std::mutex> g{m};
    said.push_back(n.event + ": " + n.message);
    cv.notify_all();
  };
  auto e = engine::open(opts);
  REQUIRE(e);
  auto& eng = **e;
  auto d = eng.load(ok_def);
  REQUIRE(d);
  for (int i = 0; i < 5; ++i) {
    submit_options so;
    so.id = "old-" + std::to_string(i);
    REQUIRE(eng.submit(*d, so));
  }
  // Until every run has been archived: each pass says how many it took.
  auto archived = [&] {
    size_t n = 0;
    for (auto& s : said)
      n += static_cast<size_t>(std::atoi(s.c_str() + std::string{"journal.archived: archived "}.size()));
    return n;
  };
  {
    std::unique_lock<std::mutex> lk{m};
    REQUIRE(cv.wait_for(lk, 30s, [&] { return archived() >= 5; }));
    CHECK(said.front().rfind("journal.archived: archived ", 0) == 0);
  }
  auto left = eng.list();
  REQUIRE(left);
  CHECK(left->empty());
  eng.close();
  // Without an archive directory: refused, naming the field.
  engine_options bad;
  bad.retention.age = 1ms;
  auto r = engine::open(bad);
  REQUIRE_FALSE(r);
  CHECK_THAT(message_of(r.error()), Catch::Contains("retention.archive_dir"));
}

TEST_CASE("the fleet's history is replayed: two PRIMARY leases at any point are found, and "
          "archiving a run takes its history with it") {
  journal_dir dir{"history"};
  auto st = open_rw(dir.path);
  using fleet::lease_state;
  auto table = [](std::vector<fleet::lease> ls) {
    fleet::lease_table t;
    t.leases = std::move(ls);
    return t;
  };
  // Run r: h1 PRIMARY; then, for one transition, h1 and h2 both PRIMARY; then h2 alone.
  // Run q: its own partition, always sound.
  std::vector<transition_record> recs(4);
  recs[0].run = "r";
  recs[0].first_seq = 1;
  recs[0].fleet = {fleet::encode_lease("p0", table({{"h1", lease_state::primary, 1}}), "s")};
  recs[1].run = "q";
  recs[1].first_seq = 1;
  recs[1].fleet = {fleet::encode_lease("p9", table({{"h5", lease_state::primary, 1}}), "s")};
  recs[2].run = "r";
  recs[2].first_seq = 2;
  recs[2].fleet = {fleet::encode_lease(
    "p0", table({{"h1", lease_state::primary, 1}, {"h2", lease_state::primary, 2}}), "s")};
  recs[3].run = "r";
  recs[3].first_seq = 3;
  recs[3].fleet = {fleet::encode_lease(
    "p0", table({{"h1", lease_state::deactivated, 3}, {"h2", lease_state::primary, 2}}), "s")};
  for (auto& r : recs) {
    r.checkpoint = "x";
    REQUIRE(!st->write({&r}, true));
  }
  // Now: sound.
  auto now = read_fleet_state(*st);
  REQUIRE(now);
  CHECK(fleet::lease_problems(*now).empty());
  // But not at every point.
  auto hist = fleet_history_problems(*st, 0);
  REQUIRE(hist);
  CHECK(*hist == std::vector<std::string>{
                   "run r, transition at event 2: partition p0: 2 PRIMARY leases (h1, h2)"});
  // Archiving r removes its history; q's stays.
  std::stringstream out;
  REQUIRE(archive_runs(*st, std::vector<run_id>{"r"}, out));
  std::vector<std::string> left;
  REQUIRE(!st->for_each_fleet_history([&](std::string_view, std::string_view bytes) {
    auto h = decode_fleet_history(bytes);
    REQUIRE(h);
    left.push_back(h->run);
    return true;
  }));
  CHECK(left == std::vector<std::string>{"q"});
  // Reopened, the history goes on after its last record.
  st.reset();
  st = open_rw(dir.path);
  transition_record more;
  more.run = "q";
  more.first_seq = 2;
  more.checkpoint = "x";
  more.fleet = {fleet::encode_lease("p9", table({{"h5", lease_state::primary, 1},
                                                 {"h6", lease_state::primary, 1}}), "s")};
  REQUIRE(!st->write({&more}, true));
  hist = fleet_history_problems(*st, 0);
  REQUIRE(hist);
  REQUIRE(hist->size() == 1);
  CHECK((*hist)[0] == "run q, transition at event 2: partition p9: 2 PRIMARY leases (h5, h6)");
}

TEST_CASE("the tools read a journal while an engine has it open") {
  journal_dir dir{"live"};
  engine_options opts;
  opts.journal_path = dir.path;
  opts.threads = 2;
  auto e = engine::open(opts);
  REQUIRE(e);
  auto d = (*e)->load(ok_def);
  REQUIRE(d);
  submit_options so;
  so.id = "seen";
  REQUIRE((*e)->submit(*d, so));
  REQUIRE((*e)->wait("seen", 30s));
  // Read-only, beside the engine: it sees the journal as of the moment it opened.
  auto r = journal_reader::open(dir.path);
  INFO((r ? "" : describe(r.error())));
  REQUIRE(r);
  auto runs = r->list_runs();
  REQUIRE(runs);
  REQUIRE(runs->size() == 1);
  CHECK(runs->front().status == run_status::succeeded);
  auto rep = verify_journal(*r, {}, 0);
  REQUIRE(rep);
  CHECK(rep->problems.empty());
  // A writer is refused while the engine holds it.
  auto w = open_rocksdb_store(dir.path);
  CHECK_FALSE(w);
  (*e)->close();
}

TEST_CASE("the CLI given a directory that holds no journal says so with exit 4 and writes "
          "nothing there") {
  journal_dir dir{"not-a-journal"};
  std::filesystem::create_directories(dir.path + "/other");
  std::ofstream{dir.path + "/other/notes.txt"} << "not a journal\n";
  std::filesystem::create_directories(dir.path + "/empty");
  auto def = dir.path + "/def.textproto";
  std::ofstream{def} << ok_def;
  using test::run_cmd;
  for (auto* cmd : {"list", "verify", "export"}) {
    INFO(cmd);
    auto missing = run_cmd({FERRY_BIN, "journal", cmd, dir.path + "/missing"}, 60s);
    CHECK(missing.status == 4);
    CHECK_THAT(missing.out, Catch::Contains("journal " + dir.path + "/missing: no such directory"));
    auto empty = run_cmd({FERRY_BIN, "journal", cmd, dir.path + "/empty"}, 60s);
    CHECK(empty.status == 4);
    CHECK_THAT(empty.out, Catch::Contains("the directory holds no journal"));
    auto other = run_cmd({FERRY_BIN, "journal", cmd, dir.path + "/other"}, 60s);
    CHECK(other.status == 4);
    CHECK_THAT(other.out, Catch::Contains("(it holds other files: notes.txt)"));
  }
  // `ferry fleet|recommend|options FLEET --db J` show what J holds: a missing or empty J is
  // said to hold no journal, and none is made (before, an empty one was, with its parents).
  const std::string fleet_file = std::string{FERRY_SOURCE_DIR} + "/examples/demo-fleet.textproto";
  for (auto* sub : {"fleet", "recommend", "options"}) {
    INFO(sub);
    std::vector<std::string> argv{FERRY_BIN, sub, fleet_file};
    if (std::string{sub} != "fleet")
      argv.push_back("web-1");
    argv.insert(argv.end(), {"--db", dir.path + "/missing/deeper"});
    auto missing = run_cmd(argv, 60s);
    CHECK(missing.status == 4);
    CHECK_THAT(missing.out, Catch::Contains("journal " + dir.path + "/missing/deeper: no such "
                                            "directory"));
    argv.back() = dir.path + "/empty";
    auto empty = run_cmd(argv, 60s);
    CHECK(empty.status == 4);
    CHECK_THAT(empty.out, Catch::Contains("the directory holds no journal"));
  }
  CHECK(!std::filesystem::exists(dir.path + "/missing"));
  CHECK(std::filesystem::is_empty(dir.path + "/empty"));
  // A journal under a file cannot be made: exit 4 naming it, with or without a fleet (before,
  // ferry aborted on the uncaught filesystem_error, or said "IO error" with exit 5).
  std::ofstream{dir.path + "/plain"} << "x";
  for (bool fleet : {false, true}) {
    std::vector<std::string> argv{FERRY_BIN, "run", "-q", "--db", dir.path + "/plain/j"};
    if (fleet)
      argv.insert(argv.end(), {"--fleet", std::string{FERRY_SOURCE_DIR} +
                                            "/examples/demo-fleet.textproto"});
    argv.push_back(def);
    auto under_file = run_cmd(argv, 60s);
    INFO(under_file.out);
    CHECK(under_file.status == 4);
    CHECK_THAT(under_file.out, Catch::Contains(dir.path + "/plain/j"));
    CHECK_THAT(under_file.out, Catch::Contains("Not a directory"));
  }
  // A run given a directory of other files as its journal is refused before it starts.
  auto run = run_cmd({FERRY_BIN, "run", "-q", "--db", dir.path + "/other", def}, 60s);
  CHECK(run.status == 4);
  CHECK_THAT(run.out, Catch::Contains("the directory is not empty and holds no journal "
                                      "(notes.txt); give a new or empty directory"));
  std::vector<std::string> left;
  for (auto& e : std::filesystem::directory_iterator{dir.path + "/other"})
    left.push_back(e.path().filename().string());
  CHECK(left == std::vector<std::string>{"notes.txt"});
  CHECK(std::filesystem::is_empty(dir.path + "/empty"));
  CHECK(!std::filesystem::exists(dir.path + "/missing"));
  // The same run in the empty directory makes a journal the tools then read.
  auto made = run_cmd({FERRY_BIN, "run", "-q", "--db", dir.path + "/empty", def}, 60s);
  CHECK(made.status == 0);
  auto listed = run_cmd({FERRY_BIN, "journal", "list", dir.path + "/empty"}, 60s);
  CHECK(listed.status == 0);
  CHECK_THAT(listed.out, Catch::Contains("SUCCEEDED"));
  // A run named that the journal does not hold: bad input, not a diverged journal.
  auto unknown = run_cmd({FERRY_BIN, "journal", "verify", dir.path + "/empty", "no-such-run"},
                         60s);
  CHECK(unknown.status == 4);
  CHECK_THAT(unknown.out, Catch::Contains("run no-such-run: not in the journal"));
}

TEST_CASE("ferry journal import of a refused export leaves no journal behind; export and "
          "archive say why they cannot write their file") {
  journal_dir dir{"import-refused"};
  write_journal(dir.path + "/j");
  using test::run_cmd;
  auto exported = dir.path + "/all.jsonl";
  REQUIRE(run_cmd({FERRY_BIN, "journal", "export", dir.path + "/j", "-o", exported}, 60s).status
          == 0);
  // Line 2 of the export is not an event: nothing is imported, and the journal the import
  // made (before, an empty one was left behind, with its parents) is gone again.
  std::string all;
  {
    std::ifstream in{exported};
    std::string line;
    for (int i = 0; std::getline(in, line); ++i)
      all += (i == 1 ? std::string{"{\"bad\": 1}"} : line) + "\n";
  }
  std::ofstream{dir.path + "/bad.jsonl"} << all;
  auto refused = run_cmd({FERRY_BIN, "journal", "import", dir.path + "/new/k",
                          dir.path + "/bad.jsonl"},
                         60s);
  CHECK(refused.status == 4);
  CHECK_THAT(refused.out, Catch::Contains("line 2: not an exported event"));
  CHECK_FALSE(std::filesystem::exists(dir.path + "/new/k"));
  std::filesystem::create_directories(dir.path + "/empty");
  CHECK(run_cmd({FERRY_BIN, "journal", "import", dir.path + "/empty", dir.path + "/bad.jsonl"},
                60s)
          .status
        == 4);
  CHECK(std::filesystem::is_empty(dir.path + "/empty"));
  // The good export imports, and its journal stays.
  auto good = run_cmd({FERRY_BIN, "journal", "import", dir.path + "/empty", exported}, 60s);
  INFO(good.out);
  CHECK(good.status == 0);
  CHECK(verify(dir.path + "/empty").problems.empty());
  // An output that is a directory: the reason, exit 4, and (archive) nothing removed.
  auto to_dir = run_cmd({FERRY_BIN, "journal", "export", dir.path + "/j", "-o", dir.path}, 60s);
  CHECK(to_dir.status == 4);
  CHECK_THAT(to_dir.out, Catch::Contains(dir.path + ": cannot write: is a directory"));
  auto archive_to_dir = run_cmd({FERRY_BIN, "journal", "archive", dir.path + "/j",
                                 "--older-than", "1ms", "-o", dir.path},
                                60s);
  CHECK(archive_to_dir.status == 4);
  CHECK_THAT(archive_to_dir.out, Catch::Contains(dir.path + ": cannot write: is a directory"));
  auto r = journal_reader::open(dir.path + "/j");
  REQUIRE(r);
  auto runs = r->list_runs();
  REQUIRE(runs);
  CHECK(runs->size() == 6);
}

TEST_CASE("a journal on a full disk stops the run with the reason and keeps what was durable; "
          "ferry does not abort") {
  // A 3 MiB tmpfs in a mount namespace of its own (it goes with the namespace): root only,
  // as the whole suite on the CI machine.
  REQUIRE(::geteuid() == 0);
  journal_dir dir{"full-disk"};
  auto mnt = dir.path + "/small";
  std::filesystem::create_directories(mnt);
  // A definition of about 2 MiB: it fits, its run's transitions do not.
  {
    std::ofstream def{dir.path + "/big.textproto"};
    def << "name: \"big\"\n";
    for (int i = 0; i < 5000; ++i)
      def << "tasks { id: \"t" << i << "\" kind: \"noop\" description: \"" << std::string(400, 'x')
          << "\"" << (i ? " depends_on: \"t" + std::to_string(i - 1) + "\"" : "") << " }\n";
  }
  auto script = "mount -t tmpfs -o size=3M tmpfs '" + mnt + "' && '" + FERRY_BIN + "' run -q '"
                + dir.path + "/big.textproto' --db '" + mnt + "/j'; echo \"run exit $?\"; '"
                + FERRY_BIN + "' journal verify '" + mnt + "/j'; echo \"verify exit $?\"";
  auto r = test::run_cmd({"unshare", "-m", "sh", "-c", script}, 120s);
  INFO(r.out.substr(r.out.size() > 4000 ? r.out.size() - 4000 : 0));
  // Before, RocksDB (built with assertions) ended ferry on an assertion when it wrote the
  // failed write to its LOG file on the same full disk: exit 134.
  CHECK_THAT(r.out, Catch::Contains("run exit 5"));
  CHECK_THAT(r.out, Catch::Contains("No space left on device"));
  CHECK_THAT(r.out, Catch::Contains("stopped while RUNNING, without coming to rest"));
  // What was durable reads back and verifies.
  CHECK_THAT(r.out, Catch::Contains("verify exit 0"));
  // RocksDB's messages went to the log, not to LOG files in the journal's directory.
  CHECK_THAT(r.out, Catch::Contains("rocksdb: "));
}
