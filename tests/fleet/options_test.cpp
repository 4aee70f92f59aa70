#include <catch2/catch.hpp>

#include <string>

#include "fleet/fleet_codec.hpp"
#include "fleet/options.hpp"

using namespace ferry;
using namespace ferry::fleet;

namespace {

const char* fleet_text = R"(
zones { name: "a" }
vm_types { name: "s" vcpus: 2 memory_mib: 2048 }
vm_types { name: "m" vcpus: 4 memory_mib: 4096 }
vm_types { name: "xs" vcpus: 1 memory_mib: 1024 }
vm_types { name: "g2" vcpus: 4 memory_mib: 4096 generations: "gen2" }
vm_types { name: "huge" vcpus: 64 memory_mib: 262144 }
hosts { name: "h1" zone: "a" driver: "sim://a/h1" generation: "gen1"
        capacity { vcpus: 8 memory_mib: 8192 slots: 4 } }
hosts { name: "h2" zone: "a" driver: "sim://a/h2" generation: "gen2"
        capacity { vcpus: 8 memory_mib: 8192 slots: 4 } }
vms { name: "authorized" type: "s" host: "h1" agent: true agent_authorized: true
      capabilities { cpu_hotplug: true memory_hotplug: true } }
vms { name: "plain" type: "s" host: "h1" }
)";

std::map<std::string, morph_option> options_of(const std::string& vm) {
  auto m = load_fleet(fleet_text);
  REQUIRE(m);
  std::map<std::string, morph_option> out;
  for (auto& o : morph_options(**m, (*m)->find_vm(vm)))
    out[(*m)->types[o.type].name] = o;
  return out;
}

} // namespace

TEST_CASE("an authorized agent's capabilities allow live growth in place, not shrinking") {
  auto o = options_of("authorized");
  CHECK(o.count("s") == 0); // its own type is not an option
  CHECK(o["m"].feasible);
  CHECK(o["m"].method == morph_method::live_in_place);
  CHECK(o["xs"].method == morph_method::reboot_in_place);
  CHECK_THAT(o["xs"].reason, Catch::Contains("the agent reports no vCPU unplug"));
}

TEST_CASE("without an authorized agent every change needs a reboot (fail-safe defaults)") {
  auto o = options_of("plain");
  CHECK(o["m"].method == morph_method::reboot_in_place);
  CHECK_THAT(o["m"].reason, Catch::Contains("no migration agent: fail-safe defaults"));
}

TEST_CASE("a type the host cannot run needs a migration; one no host can take is refused") {
  auto o = options_of("authorized");
  CHECK(o["g2"].feasible);
  CHECK(o["g2"].method == morph_method::live_migration);
  CHECK_THAT(o["g2"].reason, Catch::Contains("host \"h1\" (generation gen1) cannot run it"));
  CHECK_THAT(o["g2"].reason, Catch::Contains("live migration to \"h2\""));
  CHECK_FALSE(o["huge"].feasible);
  CHECK_THAT(o["huge"].reason, Catch::Contains("no other host can take type \"huge\""));
  auto p = options_of("plain");
  CHECK(p["g2"].method == morph_method::reboot_migration);
}
