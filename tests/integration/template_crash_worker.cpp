// The template crash test's worker: runs one built-in template on the simulated fleet of
// examples/fleet.textproto with a RocksDB journal and the simulator's state file in DB, and
// prints, once each is durable, "started TASK" / "succeeded TASK" / "compensating TASK" per
// event. Started again on the same DB it resumes the run instead of submitting it. When the
// run is at rest it prints "status STATUS", "host HOST", a "violation ..." line per broken
// invariant (tests/support/fleet_invariants.hpp) and "done".
//   template_crash_worker DB TEMPLATE VM [NAME=VALUE...]
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "actors/engine.hpp"
#include "fleet/fleet_codec.hpp"
#include "hypervisor/sim_world.hpp"
#include "tests/support/fleet_invariants.hpp"

using namespace ferry;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: template_crash_worker DB TEMPLATE VM [NAME=VALUE...]\n");
    return 2;
  }
  std::string db = argv[1];
  std::string name = argv[2];
  std::string vm = argv[3];
  std::filesystem::create_directories(db);
  auto model = fleet::load_fleet_file(std::string{FERRY_SOURCE_DIR} + "/examples/fleet.textproto");
  if (!model) {
    std::fprintf(stderr, "%s\n", describe(model.error()).c_str());
    return 2;
  }
  hv::sim_options so;
  so.speed = 500;
  so.state_file = db + "/sim-state";
  auto world = std::make_shared<hv::sim_world>(so);
  engine_options opts;
  opts.journal_path = db + "/journal";
  opts.threads = 2;
  opts.fleet = *model;
  opts.fleet_opts.sim = world;
  opts.template_dirs = {std::string{FERRY_SOURCE_DIR} + "/templates/builtin"};
  auto e = engine::open(opts);
  if (!e) {
    std::fprintf(stderr, "%s\n", describe(e.error()).c_str());
    return 2;
  }
  auto& eng = **e;
  const run_id id = "crash-run";
  if (!eng.get(id)) {
    auto t = eng.get_template(name);
    if (!t) {
      std::fprintf(stderr, "%s\n", describe(t.error()).c_str());
      return 2;
    }
    std::vector<std::string> raw{"vm=" + vm};
    for (int i = 4; i < argc; ++i)
      raw.emplace_back(argv[i]);
    auto args = parse_template_args(**t, raw);
    if (!args) {
      std::fprintf(stderr, "%s\n", describe(args.error()).c_str());
      return 2;
    }
    auto def = eng.render(**t, *args);
    if (!def) {
      std::fprintf(stderr, "%s\n", describe(def.error()).c_str());
      return 2;
    }
    submit_options so2;
    so2.id = id;
    if (auto r = eng.submit(*def, so2); !r) {
      std::fprintf(stderr, "%s\n", describe(r.error()).c_str());
      return 2;
    }
  }
  auto st = eng.get(id);
  if (!st)
    return 2;
  auto def = st->def;
  std::mutex mtx;
  auto h = eng.watch(
    id, 1,
    [&](const std::vector<event>& evs) {
      std::lock_guard<std::mutex> g{mtx};
      for (auto& ev : evs) {
        if (ev.task >= def->tasks.size())
          continue;
        auto& t = def->tasks[ev.task].id;
        if (ev.type == event_type::task_started && !ev.compensation)
          std::printf("started %s\n", t.c_str());
        else if (ev.type == event_type::task_succeeded)
          std::printf("succeeded %s\n", t.c_str());
        else if (ev.type == event_type::task_compensating)
          std::printf("compensating %s\n", t.c_str());
      }
      std::fflush(stdout);
    },
    nullptr);
  auto final_state = eng.wait(id, std::chrono::minutes(2));
  h.cancel();
  {
    // Not held across close(): a watch callback still in flight takes the same lock.
    std::lock_guard<std::mutex> g{mtx};
    if (!final_state) {
      std::printf("status timeout %s\ndone\n", describe(final_state.error()).c_str());
      std::fflush(stdout);
      return 1;
    }
    std::printf("status %s\n", to_string(final_state->status));
    if (final_state->status == run_status::succeeded
        || final_state->status == run_status::rolled_back) {
      auto r = testing::check_invariants(eng, *world, **model, vm, id);
      std::printf("host %s\n", r.host.c_str());
      for (auto& v : r.violations)
        std::printf("violation %s\n", v.c_str());
    } else {
      std::printf("reason %s\n", final_state->reason.c_str());
    }
    std::printf("done\n");
    std::fflush(stdout);
  }
  eng.close();
  return 0;
}
