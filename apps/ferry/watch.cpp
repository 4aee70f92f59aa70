// `ferry watch RUN [--from SEQ] [--json] [--reconnect SECONDS]`: follows a run on ferryd until
// it is at rest. On a terminal: one line per task (state, attempt, elapsed time, a progress
// bar while a copy runs) redrawn in place; piped: one line per event and about one progress
// line a second per copy; --json: the API's messages, one per line. When ferryd goes away
// (restart, crash), it reconnects and resumes from the next event. Exit code: the run's
// outcome (0 succeeded, 1 rolled back, 2 failed, 3 aborted).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <thread>

#include "apps/ferry/commands.hpp"
#include "apps/ferry/output.hpp"
#include "apps/ferry/remote.hpp"
#include "apps/ferryd/convert.hpp"
#include "common/errc.hpp"
#include "workflows/apply.hpp"

namespace ferry::cli {

namespace {

using clock = std::chrono::steady_clock;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

struct view {
  bool tty = false;
  bool json = false;
  std::optional<run_state> state;
  std::map<std::string, v1::Progress> progress;
  std::map<std::string, clock::time_point> last_progress_line;
  time_ms origin = 0;
  size_t drawn = 0;
  clock::time_point last_draw{};

  void draw(bool force) {
    if (!tty || !state || !state->def)
      return;
    auto now = clock::now();
    if (!force && now - last_draw < std::chrono::milliseconds{100})
      return;
    last_draw = now;
    std::string out;
    if (drawn > 0)
      out += "\x1b[" + std::to_string(drawn) + "A";
    auto line = [&](const std::string& l) { out += "\x1b[2K" + l + "\n"; };
    auto& s = *state;
    auto t = now_ms();
    line("run " + s.id + "  " + s.def->name + "  " + to_string(s.status) + "  "
         + format_duration((is_resting(s.status) ? s.updated : t) - s.created));
    size_t n = 1;
    for (size_t i = 0; i < s.tasks.size() && i < s.def->tasks.size(); ++i) {
      auto& ts = s.tasks[i];
      auto& id = s.def->tasks[i].id;
      char buf[160];
      std::string elapsed = "-";
      if (ts.first_started != 0)
        elapsed = format_duration((ts.finished != 0 ? ts.finished : t) - ts.first_started);
      std::snprintf(buf, sizeof buf, "  %-22s %-18s %9s", id.c_str(), to_string(ts.status),
                    elapsed.c_str());
      std::string l = buf;
      auto total_attempts = ts.attempt;
      if (total_attempts > 1)
        l += "  attempt " + std::to_string(total_attempts) + " (" +
             std::to_string(total_attempts - 1) + " retr" + (total_attempts == 2 ? "y" : "ies")
             + ")";
      auto p = progress.find(id);
      if (p != progress.end() && ts.status == task_status::running && p->second.total_bytes()) {
        auto frac = std::min(1.0, static_cast<double>(p->second.processed_bytes())
                                    / static_cast<double>(p->second.total_bytes()));
        int filled = static_cast<int>(frac * 24);
        char bar[128];
        std::snprintf(bar, sizeof bar, "  [%s%s] %5.1f%%  pass %u", std::string(filled, '#').c_str(),
                      std::string(24 - filled, '.').c_str(), frac * 100, p->second.iteration());
        l += bar;
      }
      if (!ts.error().empty() && (ts.status == task_status::failed
                                  || ts.status == task_status::compensation_failed))
        l += "  " + ts.error().substr(0, 80);
      line(l);
      ++n;
    }
    drawn = n;
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
  }

  void progress_line(const v1::Progress& p) {
    auto now = clock::now();
    auto& at = last_progress_line[p.task()];
    if (at.time_since_epoch().count() != 0 && now - at < std::chrono::seconds{1})
      return;
    at = now;
    std::printf("%s\n", format_progress(p.task(), p.processed_bytes(), p.total_bytes(),
                                         p.iteration(), p.dirty_bytes_s(), p.elapsed_ms())
                           .c_str());
    std::fflush(stdout);
  }
};

} // namespace

int watch_run(const conn_args& c, const std::string& id, uint64_t from_seq, bool json,
              double reconnect_s) {
  int rc = exit_ok;
  auto cl = connect(c, "watch", rc);
  if (!cl)
    return rc;
  view v;
  v.json = json;
  v.tty = !json && isatty(STDOUT_FILENO);
  uint64_t next = from_seq == 0 ? 1 : from_seq;
  std::optional<run_state> final_state;
  caf::error decode_error;
  auto on_message = [&](const v1::WatchResponse& m) {
    if (json)
      print_json(m);
    if (m.has_run()) {
      auto s = api::from_proto(m.run());
      if (!s) {
        decode_error = s.error();
        return false;
      }
      v.state = std::move(*s);
      if (v.origin == 0)
        v.origin = v.state->created;
    }
    if (m.events_size() > 0 && v.state) {
      auto evs = api::from_proto(m.events(), v.state->def);
      if (!evs) {
        decode_error = evs.error();
        return false;
      }
      for (auto& e : *evs) {
        if (e.seq < next)
          continue; // seen before a reconnect
        next = e.seq + 1;
        if (e.seq > v.state->seq)
          (void) apply(*v.state, e);
        if (!json && !v.tty)
          std::printf("%s\n", format_event(e, *v.state->def, v.origin).c_str());
      }
      if (!json && !v.tty)
        std::fflush(stdout);
      v.draw(true);
    }
    if (m.has_progress()) {
      v.progress[m.progress().task()] = m.progress();
      if (v.tty)
        v.draw(false);
      else if (!json)
        v.progress_line(m.progress());
    }
    if (m.has_final_state() && v.state) {
      auto s = api::from_proto(m.final_state(), v.state->def);
      if (!s) {
        decode_error = s.error();
        return false;
      }
      final_state = std::move(*s);
      v.state = final_state;
      v.draw(true);
    }
    return true;
  };
  auto deadline = clock::now();
  bool reconnecting = false;
  for (;;) {
    v1::WatchRequest req;
    req.set_run_id(id);
    req.set_from_seq(next);
    auto err = cl->watch(req, on_message);
    if (decode_error)
      return fail("watch", decode_error);
    if (!err && final_state)
      break;
    if (!err) // the stream ended without the final state: ferryd is stopping
      err = make_error(errc::unavailable, "the watch ended before the run came to rest");
    if (code_of(err) != errc::unavailable)
      return fail("watch", err);
    // ferryd went away: wait for it to be back, then watch again from the next event.
    if (!reconnecting) {
      reconnecting = true;
      deadline = clock::now() + std::chrono::milliseconds{static_cast<int64_t>(reconnect_s * 1000)};
      std::fprintf(stderr, "ferry watch: %s; reconnecting for up to %.0f s\n",
                   message_of(err).c_str(), reconnect_s);
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0)
      return fail("watch", err);
    if (cl->wait_connected(left))
      reconnecting = false;
  }
  if (!json) {
    std::printf("\n%s", format_summary(*final_state).c_str());
    std::fflush(stdout);
  }
  return exit_of_status(static_cast<int>(final_state->status));
}

void add_watch(CLI::App& app, std::function<int()>& action) {
  struct watch_args {
    conn_args conn;
    std::string run;
    uint64_t from = 1;
    bool json = false;
    double reconnect_s = 60;
  };
  auto args = std::make_shared<watch_args>();
  auto* w = app.add_subcommand("watch", "Follow a run on ferryd until it is at rest");
  w->add_option("run", args->run, "Run id")->required();
  w->add_option("--from", args->from, "First event to show (sequence number; default 1)")
    ->transform(whole_number(1));
  w->add_option("--reconnect", args->reconnect_s,
                "Seconds to keep reconnecting when ferryd goes away (default 60)")
    ->check(finite_number(false));
  w->add_flag("--json", args->json, "The API's messages as JSON lines");
  add_conn(w, args->conn);
  w->callback([&action, args] {
    action = [args] {
      return watch_run(args->conn, args->run, args->from, args->json, args->reconnect_s);
    };
  });
}

} // namespace ferry::cli
