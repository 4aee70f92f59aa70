// `ferry run FILE [--db DIR] [--fleet FILE]`, or `ferry run --template FILE -p NAME=VALUE...`:
// runs a workflow definition (or a rendered migration template) on the embedded engine, shows each
// event as it becomes durable and a summary at the end. With --db, the journal is kept in
// DIR: a run interrupted by a crash resumes when the same command runs again.
#include <cstdio>
#include <map>
#include <algorithm>
#include <mutex>
#include <thread>

#include "actors/engine.hpp"
#include "apps/ferry/commands.hpp"
#include "apps/ferry/output.hpp"
#include "fleet/fleet_codec.hpp"
#include "templates/template.hpp"

namespace ferry::cli {

namespace {

struct run_args {
  std::string file;
  std::string db;
  std::string fleet;
  std::string template_file;
  std::vector<std::string> params;
  std::string run_id;
  uint64_t seed = 0;
  double timeout_s = 3600;
  bool quiet = false;
  std::vector<std::string> approve;
};

int exit_for(run_status s) {
  switch (s) {
    case run_status::succeeded: return exit_ok;
    case run_status::rolled_back: return exit_rolled_back;
    case run_status::failed: return exit_failed;
    case run_status::aborted: return exit_aborted;
    default: return exit_engine_error;
  }
}

/// Prints a running copy's progress, at most one line a second per task attempt.
struct progress_printer {
  std::mutex mtx;
  std::map<std::string, std::chrono::steady_clock::time_point> last;

  void operator()(const task_progress& p) {
    if (p.total_bytes == 0) // the job has not started moving yet
      return;
    auto now = std::chrono::steady_clock::now();
    auto key = p.run + "/" + p.task + "/" + std::to_string(p.attempt);
    std::lock_guard<std::mutex> g{mtx};
    auto& at = last[key];
    if (at.time_since_epoch().count() != 0 && now - at < std::chrono::seconds{1})
      return;
    at = now;
    std::printf("%s\n", format_progress(p.task, p.processed_bytes, p.total_bytes, p.iteration,
                                         p.dirty_bytes_s, p.elapsed_ms)
                           .c_str());
    std::fflush(stdout);
  }
};

int run(const run_args& args) {
  engine_options opts;
  opts.journal_path = args.db;
  auto printer = std::make_shared<progress_printer>();
  if (!args.quiet)
    opts.on_progress = [printer](const task_progress& p) { (*printer)(p); };
  if (!args.fleet.empty()) {
    auto f = fleet::load_fleet_file(args.fleet);
    if (!f) {
      std::fprintf(stderr, "ferry run: %s\n", describe(f.error()).c_str());
      return exit_bad_input;
    }
    opts.fleet = *f;
  }
  // With a journal, the simulated hosts are kept beside it (the journal's open makes the
  // directory): running again resumes the run against the world as the last process left it.
  if (opts.fleet && !args.db.empty())
    opts.fleet_opts.sim_state_file = args.db + "/sim-state";
  new_journal_guard journal{args.db};
  auto eng = engine::open(opts);
  if (!eng) {
    std::fprintf(stderr, "ferry run: %s\n", describe(eng.error()).c_str());
    return embedded_exit_of(eng.error());
  }
  auto& e = **eng;
  caf::expected<definition_ptr> def{caf::error{}};
  if (!args.template_file.empty()) {
    // A template rendered with the parameters (names checked against the fleet, if any).
    auto t = find_template(args.template_file, FERRY_BUILTIN_TEMPLATES, e.kinds());
    if (!t) {
      std::fprintf(stderr, "ferry run: %s\n", describe(t.error()).c_str());
      return exit_bad_input;
    }
    auto targs = parse_template_args(**t, args.params);
    if (!targs) {
      std::fprintf(stderr, "ferry run: %s\n", describe(targs.error()).c_str());
      return exit_bad_input;
    }
    def = e.render(**t, *targs);
  } else if (args.file.empty()) {
    std::fprintf(stderr, "ferry run: give a definition FILE or --template FILE\n");
    return exit_bad_input;
  } else {
    def = e.load_file(args.file);
  }
  if (!def) {
    std::fprintf(stderr, "ferry run: %s\n", describe(def.error()).c_str());
    return exit_bad_input;
  }
  if (e.recovered() > 0 && !args.quiet)
    std::printf("resumed %llu run(s) from the journal in %s\n",
                static_cast<unsigned long long>(e.recovered()), args.db.c_str());
  submit_options sopts;
  sopts.id = args.run_id;
  sopts.seed = args.seed;
  sopts.actor = "ferry-run";
  auto id = e.submit(*def, sopts);
  if (!id) {
    std::fprintf(stderr, "ferry run: %s\n", describe(id.error()).c_str());
    return embedded_exit_of(id.error());
  }
  journal.keep();
  if (!args.quiet)
    std::printf("run %s: %s (%zu tasks)\n", id->c_str(), (*def)->name.c_str(),
                (*def)->tasks.size());
  std::mutex out_mtx;
  // Approvals run on their own threads (a watch callback must never call the engine).
  std::vector<std::thread> approvers;
  bool closing = false;
  time_ms origin = 0;
  auto d = *def;
  auto approvals = args.approve;
  auto* ep = &e;
  auto rid = *id;
  auto handle = e.watch(
    *id, 1,
    [&, d, ep, rid, approvals](const std::vector<event>& evs) {
      std::lock_guard<std::mutex> guard{out_mtx};
      if (closing)
        return;
      for (auto& ev : evs) {
        if (origin == 0)
          origin = ev.at;
        if (!args.quiet)
          std::printf("%s\n", format_event(ev, *d, origin).c_str());
        // Approve listed gates as they are reached (asynchronously: never block here).
        if (ev.type == event_type::task_scheduled && ev.deadline == 0 && !ev.compensation
            && ev.task < d->tasks.size()
            && std::find(approvals.begin(), approvals.end(), d->tasks[ev.task].id)
                 != approvals.end()) {
          auto task = d->tasks[ev.task].id;
          approvers.emplace_back([ep, rid, task] { (void) ep->approve(rid, task, "ferry-run"); });
        }
      }
      std::fflush(stdout);
    },
    nullptr);
  auto timeout = std::chrono::milliseconds{static_cast<int64_t>(args.timeout_s * 1000)};
  auto final_state = e.wait(*id, timeout);
  handle.cancel();
  {
    std::lock_guard<std::mutex> guard{out_mtx};
    closing = true;
    for (auto& t : approvers)
      t.join();
  }
  if (!final_state) {
    std::fprintf(stderr, "ferry run: %s\n", describe(final_state.error()).c_str());
    return code_of(final_state.error()) == errc::deadline_exceeded ? exit_timeout
                                                                   : exit_engine_error;
  }
  {
    std::lock_guard<std::mutex> guard{out_mtx};
    std::printf("\n%s", format_summary(*final_state).c_str());
    std::fflush(stdout);
  }
  e.close();
  auto rc = exit_for(final_state->status);
  if (!is_resting(final_state->status))
    // Its run actor stopped (the journal could not be written, say; the log says why).
    std::fprintf(stderr, "ferry run: run %s stopped while %s, without coming to rest (the log "
                         "above says why); it resumes from its last durable state when its "
                         "journal is opened again\n",
                 final_state->id.c_str(), to_string(final_state->status));
  else if (rc != exit_ok)
    std::fprintf(stderr, "ferry run: run %s %s: %s\n", final_state->id.c_str(),
                 to_string(final_state->status), final_state->reason.c_str());
  return rc;
}

} // namespace

void add_run(CLI::App& app, std::function<int()>& action) {
  auto args = std::make_shared<run_args>();
  auto* cmd = app.add_subcommand("run", "Run a workflow definition on the embedded engine");
  cmd->add_option("file", args->file, "Definition (protobuf text format or JSON)");
  cmd->add_option("--template", args->template_file,
                  "Run this migration template (a file, or a built-in template's name) instead of a "
                  "definition (docs/templates.md)");
  cmd->add_option("-p,--param", args->params, "A template parameter: NAME=VALUE (lists: a,b)")
    ->take_all();
  cmd->add_option("--db", args->db,
                  "Journal directory (RocksDB); without it the journal is in memory");
  cmd->add_option("--fleet", args->fleet,
                  "Fleet file: the run's tasks may use the fleet's kinds (fleet.reserve, "
                  "lease.flip, ...)");
  cmd->add_option("--run-id", args->run_id,
                  "Name of the run; running again with the same name and definition "
                  "resumes or shows that run instead of starting another");
  cmd->add_option("--seed", args->seed, "Seed of the retry jitter")->transform(whole_number());
  cmd->add_option("--timeout", args->timeout_s, "Seconds to wait for the run (default 3600)")
    ->check(finite_number(true));
  cmd->add_option("--approve", args->approve,
                  "Approve this gate when it is reached (repeat for several gates)")
    ->allow_extra_args(false)
    ->take_all();
  cmd->add_flag("-q,--quiet", args->quiet, "Print only the summary");
  cmd->callback([&action, args] { action = [args] { return run(*args); }; });
}

} // namespace ferry::cli
