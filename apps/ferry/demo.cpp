// ferry demo — the scenario `make demo` runs on an embedded, simulated fleet of three zones
// (examples/demo-fleet.textproto) with the built-in templates: a live migration, a cross-zone
// migration with a volume and address move, a morph to a larger type, a live migration whose
// copy fails (an injected fault) and rolls back, then a drain of host a4 (20 VMs) by the
// scheduler under limits (2 out of a4, 1 into each host, 3 in all). Progress is printed as it
// happens; a table sums up every run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/engine.hpp"
#include "actors/fleet_runtime.hpp"
#include "actors/log.hpp"
#include "apps/ferry/commands.hpp"
#include "apps/ferry/output.hpp"
#include "fleet/fleet_codec.hpp"
#include "hypervisor/sim_world.hpp"

namespace ferry::cli {

namespace {

struct demo_args {
  std::string fleet = std::string{FERRY_SOURCE_DIR} + "/examples/demo-fleet.textproto";
  std::string templates = FERRY_BUILTIN_TEMPLATES;
  std::string db;
  double speed = 25;
  bool verbose = false;
};

struct demo_run {
  demo_run(std::string l, std::string t, std::string v, template_args a,
           run_status e = run_status::succeeded)
    : label(std::move(l)), template_name(std::move(t)), vm(std::move(v)), args(std::move(a)),
      expected(e) {
  }
  std::string label;
  std::string template_name;
  std::string vm;
  template_args args;
  run_status expected = run_status::succeeded;
  run_id id;
  run_state state;
  bool drain = false;
};

double seconds(time_ms ms) {
  return static_cast<double>(ms) / 1000.0;
}

/// A number field of a task output written as flat JSON ("downtime_ms":12).
long long json_number(const std::string& json, const std::string& key) {
  auto at = json.find("\"" + key + "\":");
  if (at == std::string::npos)
    return -1;
  return std::atoll(json.c_str() + at + key.size() + 3);
}

const task_state* task_named(const run_state& s, const std::string& id) {
  auto i = s.def ? s.def->index_of(id) : -1;
  return i < 0 ? nullptr : &s.tasks[static_cast<size_t>(i)];
}

/// The most drain runs at once out of their source host, from the journal: each run counts
/// from its first event to the event that put it at rest.
size_t peak_out(engine& e, const std::vector<demo_run>& runs) {
  std::map<std::string, std::vector<std::pair<time_ms, int>>> edges;
  for (auto& r : runs) {
    if (!r.drain || !r.state.def)
      continue;
    std::mutex m;
    std::vector<event> evs;
    auto done = std::make_shared<std::promise<void>>();
    auto fut = done->get_future();
    auto h = e.watch(
      r.id, 1,
      [&](const std::vector<event>& xs) {
        std::lock_guard<std::mutex> g{m};
        evs.insert(evs.end(), xs.begin(), xs.end());
      },
      [done](const run_state&) { done->set_value(); });
    fut.wait_for(std::chrono::seconds(10));
    h.cancel();
    std::lock_guard<std::mutex> g{m};
    if (evs.empty())
      continue;
    auto src = r.state.def->labels.count("param.source") ? r.state.def->labels.at("param.source")
                                                         : "";
    edges[src].emplace_back(evs.front().at, +1);
    edges[src].emplace_back(evs.back().at, -1);
  }
  int peak = 0;
  for (auto& [src, e] : edges) {
    std::sort(e.begin(), e.end());
    int now = 0;
    for (auto& [at, d] : e)
      peak = std::max(peak, now += d);
  }
  return static_cast<size_t>(peak);
}

int demo(const demo_args& a) {
  auto t0 = std::chrono::steady_clock::now();
  // The engine's log (every run's outcome, the batch's) only with --verbose: the demo prints
  // its own progress.
  if (!a.verbose)
    log().set_level(spdlog::level::warn);
  auto model = fleet::load_fleet_file(a.fleet);
  if (!model) {
    std::fprintf(stderr, "ferry demo: %s\n", describe(model.error()).c_str());
    return exit_bad_input;
  }
  hv::sim_options so;
  so.speed = a.speed;
  auto world = std::make_shared<hv::sim_world>(so);
  engine_options opts;
  opts.journal_path = a.db;
  opts.fleet = *model;
  opts.fleet_opts.sim = world;
  opts.template_dirs = {a.templates};
  std::mutex out_mtx;
  opts.notify = [&out_mtx, &a, t0](const notification& n) {
    // The drain's runs are the scheduler's: their notifications are their progress.
    bool drain = n.run.rfind("drain-a4.", 0) == 0;
    if (!a.verbose && !drain)
      return;
    std::lock_guard<std::mutex> g{out_mtx};
    auto since = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0);
    std::printf("%6.2fs  %-20s %-18s %s: %s\n", since.count(),
                drain ? ("drain " + n.run.substr(9)).c_str() : "notify", "",
                n.event.c_str(), n.message.c_str());
    std::fflush(stdout);
  };
  new_journal_guard journal{a.db};
  // The scenario starts from the fleet file: a journal of an earlier demo holds the fleet as
  // that demo left it (VMs moved, a4 drained), and the runs failed against it (exit 5).
  if (!a.db.empty() && !journal.fresh()) {
    std::fprintf(stderr, "ferry demo: --db %s: not a new or empty directory (a journal of an "
                         "earlier demo?); the demo starts from its fleet file: give a new or "
                         "empty one\n", a.db.c_str());
    return exit_bad_input;
  }
  auto opened = engine::open(opts);
  if (!opened) {
    std::fprintf(stderr, "ferry demo: %s\n", describe(opened.error()).c_str());
    return embedded_exit_of(opened.error());
  }
  journal.keep();
  auto& e = **opened;
  auto str = [](const char* s) { return value::of(std::string{s}); };

  std::vector<demo_run> runs;
  runs.push_back({"live", "live-network-storage", "web-1", {{"vm", str("web-1")}}});
  runs.push_back({"cross-zone", "cross-zone", "db-1",
                  {{"vm", str("db-1")}, {"zone", str("zone-b")}}});
  runs.push_back({"morph", "morph", "app-1", {{"vm", str("app-1")}, {"type", str("large")}}});
  runs.push_back({"failure", "live-precopy", "web-2", {{"vm", str("web-2")}},
                  run_status::rolled_back});
  // The injected failure: web-2's copy breaks (a2's migration stream), non-retryably.
  world->inject("sim://zone-a/a2", "migrate",
                hv::sim_fault::fail(errc::aborted, "injected fault: the migration stream broke"));
  // db-1 also leaves a2; keep the fault for web-2 by starting db-1 only once web-2 failed.

  std::printf("ferry demo: %zu hosts in 3 zones, simulated time x%.0f; templates from %s\n\n",
              (*model)->hosts.size(), a.speed, a.templates.c_str());
  std::vector<watch_handle> watches;
  auto submit = [&](demo_run& r) -> bool {
    auto d = e.render_template(r.template_name, r.args);
    if (!d) {
      std::fprintf(stderr, "ferry demo: %s\n", describe(d.error()).c_str());
      return false;
    }
    auto id = e.submit(*d);
    if (!id) {
      std::fprintf(stderr, "ferry demo: %s\n", describe(id.error()).c_str());
      return false;
    }
    r.id = *id;
    auto def = *d;
    auto label = r.label + " " + r.vm;
    auto drain = r.drain;
    watches.push_back(e.watch(
      *id, 1,
      [&out_mtx, def, label, drain, &a, t0](const std::vector<event>& evs) {
        std::lock_guard<std::mutex> g{out_mtx};
        for (auto& ev : evs) {
          auto since = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0);
          bool task_end = ev.type == event_type::task_succeeded
                          || ev.type == event_type::task_failed
                          || ev.type == event_type::task_compensated;
          bool run_end = ev.type == event_type::run_succeeded
                         || ev.type == event_type::run_rolled_back
                         || ev.type == event_type::run_failed
                         || ev.type == event_type::rollback_started;
          if (run_end || (task_end && (!drain || a.verbose))) {
            std::string what = ev.task < def->tasks.size() ? def->tasks[ev.task].id : "";
            std::printf("%6.2fs  %-20s %-18s %s%s%s\n", since.count(), label.c_str(),
                        what.c_str(), to_string(ev.type),
                        ev.message.empty() ? "" : ": ", ev.message.c_str());
          }
        }
        std::fflush(stdout);
      },
      nullptr));
    return true;
  };
  auto wait_all = [&](size_t from, size_t to) -> bool {
    for (size_t i = from; i < to; ++i) {
      auto s = e.wait(runs[i].id, std::chrono::minutes(5));
      if (!s) {
        std::fprintf(stderr, "ferry demo: %s\n", describe(s.error()).c_str());
        return false;
      }
      runs[i].state = *s;
    }
    return true;
  };
  // The four kinds at once (web-2 before db-1: both leave a2 and the fault is web-2's).
  if (!submit(runs[3]) || !wait_all(3, 4))
    return exit_engine_error;
  world->clear_faults();
  for (size_t i = 0; i < 3; ++i)
    if (!submit(runs[i]))
      return exit_engine_error;
  if (!wait_all(0, 3))
    return exit_engine_error;
  {
    std::lock_guard<std::mutex> g{out_mtx};
    std::printf("\ndraining host a4 (batch drain-a4): 20 VMs with live-precopy; at most 2 out "
                "of a4, 1 into each host, 3 in all\n");
  }
  drain_request dr;
  dr.host = "a4";
  dr.limits.host_out = 2;
  dr.limits.host_in = 1;
  dr.limits.global = 3;
  if (auto b = e.drain(dr); !b) {
    std::fprintf(stderr, "ferry demo: %s\n", describe(b.error()).c_str());
    return exit_engine_error;
  }
  auto batch = e.wait_batch("drain-a4", std::chrono::minutes(5));
  if (!batch) {
    std::fprintf(stderr, "ferry demo: %s\n", describe(batch.error()).c_str());
    return exit_engine_error;
  }
  for (auto& it : batch->items) {
    demo_run r{"drain", "live-precopy", it.vm, {}};
    r.drain = true;
    r.id = it.run;
    if (auto st = e.get(it.run))
      r.state = *st;
    runs.push_back(std::move(r));
  }
  watches.clear();
  auto peak = peak_out(e, runs);

  // The summary.
  std::printf("\n%-11s %-9s %-21s %-8s %-8s %10s %10s  %s\n", "run", "vm", "template", "from",
              "to", "sim. time", "downtime", "outcome");
  bool as_expected = true;
  for (auto& r : runs) {
    auto& s = r.state;
    auto* copy = task_named(s, "precopy");
    auto* reserve = task_named(s, "reserve");
    auto downtime = copy ? json_number(copy->output(), "downtime_ms") : -1;
    auto from = s.def ? s.def->labels.count("param.source") ? s.def->labels.at("param.source")
                                                            : s.def->labels.count("param.host")
                                                                ? s.def->labels.at("param.host")
                                                                : ""
                      : "";
    std::string to = reserve && reserve->status == task_status::succeeded ? reserve->output()
                     : reserve && reserve->status == task_status::compensated ? "(released)"
                                                                              : "-";
    if (s.status == run_status::rolled_back)
      to = "-";
    char dt[32] = "-";
    if (downtime >= 0 && s.status == run_status::succeeded)
      std::snprintf(dt, sizeof dt, "%lldms", downtime);
    char dur[32];
    std::snprintf(dur, sizeof dur, "%.1fs", seconds(s.updated - s.created) * a.speed);
    std::printf("%-11s %-9s %-21s %-8s %-8s %10s %10s  %s\n", r.label.c_str(), r.vm.c_str(),
                r.template_name.c_str(), from.c_str(), to.c_str(), dur, dt,
                to_string(s.status));
    if (s.status != r.expected) {
      as_expected = false;
      std::printf("            expected %s: %s\n", to_string(r.expected), s.reason.c_str());
    }
  }
  auto& failed = runs[3].state;
  std::printf("\nfailure: %s\n", failed.reason.c_str());
  auto a2 = world->domain("sim://zone-a/a2", "web-2");
  std::printf("         web-2 after the rollback: %s on a2\n", hv::to_string(a2.status));
  std::printf("drain:   %u of 20 moved; at most %zu at once out of a4 (journal; limit 2), %u "
              "into one host (limit 1), %u in all (limit 3); a4 runs %zu VMs\n",
              batch->succeeded, peak, batch->peak_host_in, batch->peak_running,
              world->domains("sim://zone-a/a4").size());
  auto wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto m = world->metrics();
  std::printf("         %llu migrations finished, %llu failed; %.1f s simulated in %.1f s\n",
              static_cast<unsigned long long>(m.migrations_finished),
              static_cast<unsigned long long>(m.migrations_failed),
              static_cast<double>(m.now_ms) / 1000.0, wall);
  e.close();
  if (peak > 2 || batch->peak_host_in > 1 || batch->peak_running > 3 || batch->succeeded != 20
      || !as_expected || a2.status != hv::domain_status::running) {
    std::fprintf(stderr, "ferry demo: the scenario did not turn out as expected\n");
    return exit_failed;
  }
  return exit_ok;
}

} // namespace

void add_demo(CLI::App& app, std::function<int()>& action) {
  auto args = std::make_shared<demo_args>();
  auto* cmd = app.add_subcommand(
    "demo", "Run the demo scenario on an embedded simulated fleet (live, cross-zone, morph, "
            "a failure that rolls back, a drain)");
  cmd->add_option("--fleet", args->fleet, "Fleet file (default: examples/demo-fleet.textproto)");
  cmd->add_option("--templates", args->templates, "Template directory (default: built-in)");
  cmd->add_option("--db", args->db, "Journal directory, new or empty (default: in memory)");
  cmd->add_option("--speed", args->speed, "Simulated seconds per real second (default 25)")
    ->check(finite_number(true));
  cmd->add_flag("-v,--verbose", args->verbose, "Every task of the drain, and notifications");
  cmd->callback([&action, args] { action = [args] { return demo(*args); }; });
}

} // namespace ferry::cli
