// The crash test's worker: opens the journal and the fleet (resuming whatever a killed
// predecessor left),
// submits the workload's runs idempotently, prints one line per durable event batch of any
// run ("event RUN SEQ"), and "done" once every run is at rest. Killed with SIGKILL at random
// points by tests/integration/crash_test.cpp.
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "actors/engine.hpp"
#include "fleet/fleet_codec.hpp"
#include "tests/integration/crash_workload.hpp"

using namespace ferry;

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: crash_worker DB EFFECT_LOG RUNS SEED FLEET\n");
    return 2;
  }
  std::string db = argv[1];
  std::string log = argv[2];
  int runs = std::atoi(argv[3]);
  uint64_t seed = std::strtoull(argv[4], nullptr, 10);
  engine_options opts;
  opts.journal_path = db;
  auto fleet = fleet::load_fleet_file(argv[5]);
  if (!fleet) {
    std::fprintf(stderr, "crash_worker: %s\n", describe(fleet.error()).c_str());
    return 3;
  }
  opts.fleet = *fleet;
  auto eng = engine::open(opts);
  if (!eng) {
    std::fprintf(stderr, "crash_worker: %s\n", describe(eng.error()).c_str());
    return 3;
  }
  auto& e = **eng;
  std::mutex out;
  std::vector<watch_handle> watches;
  std::vector<run_id> ids;
  for (int i = 0; i < runs; ++i) {
    auto def = e.load(test::crash_definition(seed, i, log));
    if (!def) {
      std::fprintf(stderr, "crash_worker: %s\n", describe(def.error()).c_str());
      return 4;
    }
    submit_options so;
    so.id = test::crash_run_id(i);
    so.seed = seed + static_cast<uint64_t>(i);
    auto id = e.submit(*def, so);
    if (!id) {
      std::fprintf(stderr, "crash_worker: %s\n", describe(id.error()).c_str());
      return 5;
    }
    ids.push_back(*id);
    watches.push_back(e.watch(*id, UINT64_MAX,
                              [&out, id = *id](const std::vector<event>& evs) {
                                std::lock_guard<std::mutex> guard{out};
                                std::printf("event %s %llu\n", id.c_str(),
                                            static_cast<unsigned long long>(evs.back().seq));
                                std::fflush(stdout);
                              },
                              nullptr));
  }
  for (auto& id : ids) {
    auto s = e.wait(id, std::chrono::minutes{2});
    if (!s) {
      std::fprintf(stderr, "crash_worker: %s\n", describe(s.error()).c_str());
      return 6;
    }
  }
  watches.clear();
  e.close();
  {
    std::lock_guard<std::mutex> guard{out};
    std::printf("done\n");
    std::fflush(stdout);
  }
  return 0;
}
