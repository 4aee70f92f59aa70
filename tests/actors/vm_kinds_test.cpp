// The VM task kinds on the simulated fleet: a migration that goes through, and one that will
// not converge and rolls back, leaving the VM running on its source exactly once.
#include <catch2/catch.hpp>

#include "actors/engine.hpp"
#include "actors/fleet_runtime.hpp"
#include "fleet/fleet_codec.hpp"
#include "hypervisor/sim_world.hpp"

using namespace ferry;
using namespace std::chrono_literals;

namespace {

struct sim_engine {
  std::shared_ptr<hv::sim_world> world;
  std::unique_ptr<engine> eng;

  sim_engine() {
    hv::sim_options so;
    so.speed = 1000; // virtual seconds per real second
    world = std::make_shared<hv::sim_world>(so);
    engine_options opts;
    opts.threads = 2;
    auto f = fleet::load_fleet_file(std::string{FERRY_SOURCE_DIR} + "/examples/fleet.textproto");
    REQUIRE(f);
    opts.fleet = *f;
    opts.fleet_opts.sim = world;
    auto e = engine::open(opts);
    INFO((e ? "" : describe(e.error())));
    REQUIRE(e);
    eng = std::move(*e);
  }

  run_state run(const std::string& json) {
    auto d = eng->load(json);
    INFO((d ? "" : describe(d.error())));
    REQUIRE(d);
    auto id = eng->submit(*d);
    REQUIRE(id);
    auto s = eng->wait(*id, 30s);
    REQUIRE(s);
    return *s;
  }

  hv::domain_status status(const std::string& host, const std::string& vm) {
    return world->domain("sim://" + host, vm).status;
  }
};

std::string move(const std::string& vm, const std::string& from, const std::string& to) {
  return R"({"name": "move", "default_retry": {"max_attempts": 2, "initial_backoff_ms": 10},
    "tasks": [
    {"id": "provision", "kind": "vm.provision",
     "params": {"vm": ")" + vm + R"(", "from": ")" + from + R"(", "to": ")" + to + R"("},
     "compensation": {"kind": "vm.destroy", "params": {"vm": ")" + vm + R"(", "host": ")" + to + R"("}}},
    {"id": "migrate", "kind": "vm.migrate", "depends_on": ["provision"],
     "params": {"vm": ")" + vm + R"(", "from": ")" + from + R"(", "to": ")" + to + R"("},
     "point_of_no_return": true},
    {"id": "adopt", "kind": "vm.adopt", "depends_on": ["migrate"],
     "params": {"vm": ")" + vm + R"(", "host": ")" + to + R"("}}]})";
}

} // namespace

TEST_CASE("vm kinds provision a target and migrate a VM to it on the simulated fleet") {
  sim_engine s;
  auto r = s.run(move("web-2", "a2", "b2"));
  INFO(r.reason);
  REQUIRE(r.status == run_status::succeeded);
  CHECK(s.status("zone-b/b2", "web-2") == hv::domain_status::running);
  CHECK(s.status("zone-a/a2", "web-2") == hv::domain_status::absent);
  auto out = r.tasks[static_cast<size_t>(r.def->index_of("migrate"))].output();
  CHECK_THAT(out, Catch::Contains("\"downtime_ms\":"));
  CHECK_THAT(out, Catch::Contains("\"mode\":\"precopy\""));
  // Running it again reconciles: everything is where it should be, nothing moves twice.
  auto again = s.run(move("web-2", "a2", "b2"));
  CHECK(again.status == run_status::succeeded);
  CHECK(s.status("zone-b/b2", "web-2") == hv::domain_status::running);
  CHECK(s.world->metrics().migrations_finished == 1);
}

TEST_CASE("a copy that will not converge rolls back: the target is cleaned, the VM runs on "
          "its source") {
  sim_engine s;
  // batch-1 dirties 1500 MiB/s; the link from zone-b to zone-a carries 1250 MiB/s.
  auto r = s.run(move("batch-1", "b1", "a3"));
  CHECK(r.status == run_status::rolled_back);
  CHECK_THAT(r.reason, Catch::Contains("dirty rate"));
  CHECK(s.status("zone-b/b1", "batch-1") == hv::domain_status::running);
  CHECK(s.status("zone-a/a3", "batch-1") == hv::domain_status::absent);
}

TEST_CASE("vm.destroy never destroys a VM on the host where the fleet has it running") {
  sim_engine s;
  auto destroy = [](const std::string& vm, const std::string& host) {
    return R"({"name": "destroy", "default_retry": {"max_attempts": 1}, "tasks": [
      {"id": "destroy", "kind": "vm.destroy", "params": {"vm": ")" + vm + R"(", "host": ")"
           + host + R"("}}]})";
  };
  auto r = s.run(destroy("web-2", "a2"));
  CHECK(r.status == run_status::rolled_back);
  CHECK_THAT(r.reason, Catch::Contains("VM web-2 runs on a2 (the fleet has it there): "
                                       "vm.destroy removes only a copy the VM left"));
  CHECK(s.status("zone-a/a2", "web-2") == hv::domain_status::running);
  // A run whose target is the VM's own host: the provision finds it there (success), and
  // when the run then rolls back, its compensation must not destroy the VM.
  auto same = s.run(R"({"name": "same-host", "default_retry": {"max_attempts": 1}, "tasks": [
    {"id": "provision", "kind": "vm.provision",
     "params": {"vm": "web-2", "from": "a2", "to": "a2"},
     "compensation": {"kind": "vm.destroy", "params": {"vm": "web-2", "host": "a2"},
                      "retry": {"max_attempts": 1}}},
    {"id": "fail", "kind": "vm.start", "depends_on": ["provision"],
     "params": {"vm": "no-such-vm", "host": "a2"}}]})");
  CHECK(same.status != run_status::succeeded);
  CHECK(s.status("zone-a/a2", "web-2") == hv::domain_status::running);
  // Once the VM has moved, the copy it left is destroyed as before.
  auto moved = s.run(move("web-2", "a2", "b2"));
  REQUIRE(moved.status == run_status::succeeded);
  auto left = s.run(destroy("web-2", "a2"));
  CHECK(left.status == run_status::succeeded);
  CHECK(s.status("zone-b/b2", "web-2") == hv::domain_status::running);
}
