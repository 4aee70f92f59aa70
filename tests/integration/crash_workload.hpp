// The crash test's workload: 200 runs (by default) whose definitions are drawn from a seed —
// chains and diamonds of `effect` tasks (each appends its idempotency key to one log), with
// transient failures that retries absorb, permanent failures that roll back (their
// compensations are effects too), and points of no return — and, in each run, two fleet
// changes journaled with its transitions: a capacity reservation in zone "zb" (key RUN) and a
// STANDBY lease for host "hb0" on the run's own partition, each undone by its compensation.
// Every run ends SUCCEEDED or ROLLED_BACK. Shared by the worker process and the test that
// checks its journal.
#pragma once

#include <random>
#include <string>

namespace ferry::test {

inline std::string crash_run_id(int i) {
  return "crash-" + std::to_string(i);
}

/// The fleet of `runs` VMs the workload moves: VM vm-I on host ha0 in zone za with volume
/// v-I on partition p-I; zone zb has room for all of them.
inline std::string crash_fleet(int runs) {
  std::string f = "zones { name: \"za\" } zones { name: \"zb\" }\n"
                  "links { a: \"za\" b: \"zb\" bandwidth_mib_s: 1000 }\n"
                  "vm_types { name: \"small\" vcpus: 2 memory_mib: 4096 }\n";
  auto n = std::to_string(runs);
  f += "hosts { name: \"ha0\" zone: \"za\" driver: \"sim://za/ha0\" capacity { vcpus: "
       + std::to_string(2 * runs) + " memory_mib: " + std::to_string(4096 * runs)
       + " slots: " + n + " } }\n";
  for (int h = 0; h < 4; ++h)
    f += "hosts { name: \"hb" + std::to_string(h) + "\" zone: \"zb\" driver: \"sim://zb/hb"
         + std::to_string(h) + "\" capacity { vcpus: " + n + " memory_mib: "
         + std::to_string(2048 * runs) + " slots: " + n + " } }\n";
  for (int i = 0; i < runs; ++i) {
    auto k = std::to_string(i);
    f += "partitions { name: \"p-" + k + "\" zone: \"za\" master: \"s0\" replicas: \"s1\" "
         "replicas: \"s2\" }\n";
    f += "volumes { name: \"v-" + k + "\" zone: \"za\" partitions: \"p-" + k + "\" }\n";
    f += "vms { name: \"vm-" + k + "\" type: \"small\" host: \"ha0\" volumes: \"v-" + k
         + "\" }\n";
  }
  return f;
}

/// The definition (text format) of run `i`.
inline std::string crash_definition(uint64_t seed, int i, const std::string& log) {
  std::mt19937_64 rng{seed * 1000003 + static_cast<uint64_t>(i)};
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  auto effect = [&](const std::string& id, const std::string& deps, bool ponr,
                    bool compensate) {
    std::string t = "tasks { id: \"" + id + "\" kind: \"effect\" params { fields { key: \"log\" "
                    "value { string_value: \"" + log + "\" } } }" + deps;
    if (ponr)
      t += " point_of_no_return: true";
    if (compensate)
      t += " compensation { kind: \"effect\" params { fields { key: \"log\" value { "
           "string_value: \"" + log + "\" } } } }";
    return t + " }\n";
  };
  auto dep = [](const std::string& d) { return " depends_on: \"" + d + "\""; };
  std::string def = "name: \"crash-def-" + std::to_string(i) + "\"\n"
                    "default_retry { max_attempts: 4 initial_backoff_ms: 2 max_backoff_ms: 20 }\n"
                    "default_timeout_ms: 20000\n";
  auto k = std::to_string(i);
  def += "tasks { id: \"reserve\" kind: \"fleet.reserve\" params {"
         " fields { key: \"vm\" value { string_value: \"vm-" + k + "\" } }"
         " fields { key: \"zone\" value { string_value: \"zb\" } }"
         " fields { key: \"key\" value { string_value: \"" + crash_run_id(i) + "\" } } }"
         " compensation { kind: \"fleet.release\" params {"
         " fields { key: \"zone\" value { string_value: \"zb\" } }"
         " fields { key: \"key\" value { string_value: \"" + crash_run_id(i) + "\" } } } } }\n";
  def += "tasks { id: \"standby\" kind: \"lease.connect\" params {"
         " fields { key: \"partition\" value { string_value: \"p-" + k + "\" } }"
         " fields { key: \"host\" value { string_value: \"hb0\" } } }"
         " compensation { kind: \"lease.disconnect\" params {"
         " fields { key: \"partition\" value { string_value: \"p-" + k + "\" } }"
         " fields { key: \"host\" value { string_value: \"hb0\" } } } } }\n";
  int shape = pick(3);
  bool doomed = pick(4) == 0;  // a permanent failure: the run rolls back
  bool ponr = !doomed && pick(2) == 0;
  if (shape == 0) {
    // A chain of 3 to 5 effects.
    int n = 3 + pick(3);
    for (int k = 0; k < n; ++k)
      def += effect("e" + std::to_string(k),
                    k > 0 ? dep("e" + std::to_string(k - 1)) : dep("reserve") + dep("standby"),
                    ponr && k == n - 2, true);
  } else {
    // A diamond: a -> {b, c} -> d.
    def += effect("a", dep("reserve") + dep("standby"), false, true);
    def += effect("b", dep("a"), false, true);
    def += effect("c", dep("a"), false, true);
    def += effect("d", dep("b") + dep("c"), ponr, true);
  }
  // A transient failure the retries absorb.
  def += "tasks { id: \"flaky\" kind: \"fail\" params { fields { key: \"attempts\" value { "
         "number_value: " + std::to_string(1 + pick(2)) + " } } }" +
         (shape == 0 ? dep("e1") : dep("a")) + " }\n";
  if (doomed)
    def += "tasks { id: \"doom\" kind: \"fail\" params { fields { key: \"forever\" value { "
           "bool_value: true } } } retry { max_attempts: 2 }" + dep("flaky") + " }\n";
  return def;
}

} // namespace ferry::test
