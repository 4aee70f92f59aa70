#include <catch2/catch.hpp>

#include <string>

#include "common/errc.hpp"
#include "fleet/fleet_codec.hpp"
#include "fleet/validate.hpp"

using namespace ferry;
using namespace ferry::fleet;

namespace {

std::string example_path() {
  return std::string{FERRY_SOURCE_DIR} + "/examples/fleet.textproto";
}

// A valid fleet to break in one place at a time.
const char* base = R"(
zones { name: "a" } zones { name: "b" }
links { a: "a" b: "b" bandwidth_mib_s: 100 }
vm_types { name: "t1" vcpus: 2 memory_mib: 2048 }
vm_types { name: "t2" vcpus: 4 memory_mib: 4096 generations: "g2" }
hosts { name: "h1" zone: "a" driver: "sim://a/h1" generation: "g1"
        capacity { vcpus: 8 memory_mib: 8192 slots: 4 } }
hosts { name: "h2" zone: "b" driver: "test:///tmp/h2.xml" generation: "g2"
        capacity { vcpus: 8 memory_mib: 8192 slots: 4 } }
partitions { name: "p1" zone: "a" master: "s1" replicas: "s2" }
volumes { name: "v1" zone: "a" partitions: "p1" }
vms { name: "vm1" type: "t1" host: "h1" volumes: "v1" address: "10.0.0.1" }
)";

std::string load_error(const std::string& extra) {
  auto m = load_fleet(std::string{base} + extra);
  REQUIRE_FALSE(m);
  CHECK(code_of(m.error()) == errc::invalid_argument);
  return message_of(m.error());
}

} // namespace

TEST_CASE("the example fleet loads with every entity resolved") {
  auto m = load_fleet_file(example_path());
  REQUIRE(m);
  auto& f = **m;
  CHECK(f.zones.size() == 3);
  CHECK(f.hosts.size() == 6);
  CHECK(f.vms.size() == 4);
  auto web = f.find_vm("web-1");
  REQUIRE(web != npos);
  CHECK(f.hosts[f.vms[web].host].name == "a1");
  REQUIRE(f.vms[web].volumes.size() == 1);
  CHECK(f.volumes[f.vms[web].volumes[0]].partitions.size() == 2);
  CHECK(f.hosts[f.find_host("b2")].migrations_in == 4);
  CHECK(f.hosts[f.find_host("a1")].migrations_in == 2);
  CHECK(f.hosts[f.find_host("a1")].nic_mib_s == 1250);
  REQUIRE(f.find_link(f.find_zone("zone-a"), f.find_zone("zone-c")) != nullptr);
  CHECK(f.find_link(f.find_zone("zone-a"), f.find_zone("zone-c"))->compressed_mib_s == 300);
}

TEST_CASE("a fleet renders to JSON and loads back the same") {
  auto m = load_fleet_file(example_path());
  REQUIRE(m);
  auto json = render_fleet(**m, fleet_format::json);
  auto again = load_fleet(json);
  REQUIRE(again);
  CHECK(render_fleet(**again, fleet_format::text) == render_fleet(**m, fleet_format::text));
  auto bin = load_fleet(render_fleet(**m, fleet_format::binary), fleet_format::binary);
  REQUIRE(bin);
  CHECK((*bin)->vms.size() == 4);
}

TEST_CASE("an unknown host, zone, type or partition is named with its entity") {
  CHECK_THAT(load_error(R"(vms { name: "vm2" type: "t1" host: "h9" })"),
             Catch::Contains("vms[1] \"vm2\": host \"h9\" does not exist"));
  CHECK_THAT(load_error(R"(hosts { name: "h3" zone: "z" driver: "sim://z/h3"
                             capacity { vcpus: 1 memory_mib: 1 slots: 1 } })"),
             Catch::Contains("hosts[2] \"h3\": zone \"z\" does not exist"));
  CHECK_THAT(load_error(R"(vms { name: "vm2" type: "t9" host: "h1" })"),
             Catch::Contains("vms[1] \"vm2\": type \"t9\" is not in vm_types"));
  CHECK_THAT(load_error(R"(volumes { name: "v2" zone: "a" partitions: "p9" })"),
             Catch::Contains("volumes[1] \"v2\": partition \"p9\" does not exist"));
}

TEST_CASE("duplicate names, addresses and attachments are reported") {
  CHECK_THAT(load_error(R"(zones { name: "a" })"), Catch::Contains("duplicate name \"a\""));
  CHECK_THAT(load_error(R"(vms { name: "vm2" type: "t1" host: "h1" address: "10.0.0.1" })"),
             Catch::Contains("address \"10.0.0.1\" is used by another VM"));
  CHECK_THAT(load_error(R"(vms { name: "vm2" type: "t1" host: "h1" volumes: "v1" })"),
             Catch::Contains("volume \"v1\" is already attached to \"vm1\""));
  CHECK_THAT(load_error(R"(volumes { name: "v2" zone: "a" partitions: "p1" })"),
             Catch::Contains("partition \"p1\" already belongs to volume \"v1\""));
  CHECK_THAT(load_error(R"(partitions { name: "p2" zone: "a" master: "s1" replicas: "s1" })"),
             Catch::Contains("replica \"s1\" is listed twice or is the master"));
}

TEST_CASE("an over-committed host is reported with what it lacks") {
  auto msg = load_error(R"(
    vms { name: "vm2" type: "t1" host: "h1" } vms { name: "vm3" type: "t1" host: "h1" }
    vms { name: "vm4" type: "t1" host: "h1" } vms { name: "vm5" type: "t1" host: "h1" })");
  CHECK_THAT(msg, Catch::Contains("hosts[0] \"h1\": over-committed: its VMs need 10 vcpus, "
                                  "it has 8"));
  CHECK_THAT(msg, Catch::Contains("need 5 slots, it has 4"));
}

TEST_CASE("every problem of a fleet is listed, not only the first") {
  auto msg = load_error(R"(
    vms { name: "vm2" type: "t2" host: "h1" }
    hosts { name: "h4" zone: "a" driver: "ftp://x" capacity { vcpus: 1 memory_mib: 1 slots: 1 } }
    links { a: "a" b: "a" bandwidth_mib_s: 0 })");
  CHECK_THAT(msg, Catch::StartsWith("fleet: 4 problems"));
  CHECK_THAT(msg, Catch::Contains("host \"h1\" (generation \"g1\") cannot run type \"t2\""));
  CHECK_THAT(msg, Catch::Contains("driver \"ftp://x\": unknown driver \"ftp\""));
  CHECK_THAT(msg, Catch::Contains("a link joins two different zones"));
  CHECK_THAT(msg, Catch::Contains("bandwidth_mib_s must be at least 1"));
}

TEST_CASE("a volume in another zone than its VM's host is refused") {
  CHECK_THAT(load_error(R"(
    partitions { name: "p2" zone: "b" master: "s1" replicas: "s2" }
    volumes { name: "v2" zone: "b" partitions: "p2" }
    vms { name: "vm2" type: "t1" host: "h1" volumes: "v2" })"),
             Catch::Contains("volume \"v2\" is in zone \"b\", the host in \"a\""));
}

TEST_CASE("driver URIs are checked per scheme") {
  CHECK(check_driver_uri("sim://a/h1").empty());
  CHECK(check_driver_uri("test:///tmp/h.xml").empty());
  CHECK(check_driver_uri("qemu+unix:///system?socket=/run/h1/libvirt-sock").empty());
  CHECK(check_driver_uri("qemu+tcp://10.0.0.2/system").empty());
  CHECK_THAT(check_driver_uri("sim://a"), Catch::Contains("sim://ZONE/HOST"));
  CHECK_THAT(check_driver_uri("qemu+foo:///system"), Catch::Contains("unknown libvirt transport"));
  CHECK_THAT(check_driver_uri(""), Catch::Contains("required"));
}

TEST_CASE("a host's peer URI is checked, kept, and only libvirt hosts have one") {
  auto ok = load_fleet(std::string{base} + R"(
hosts { name: "h3" zone: "b" driver: "qemu+unix:///system?socket=/run/h3/sock"
        peer_uri: "qemu+tcp://10.77.0.13/system" capacity { vcpus: 8 memory_mib: 8192 slots: 4 } }
)");
  INFO((ok ? "" : message_of(ok.error())));
  REQUIRE(ok);
  auto& h3 = (*ok)->hosts[(*ok)->find_host("h3")];
  CHECK(h3.peer_uri == "qemu+tcp://10.77.0.13/system");
  auto again = load_fleet(render_fleet(**ok, fleet_format::text));
  REQUIRE(again);
  CHECK((*again)->hosts[(*again)->find_host("h3")].peer_uri == h3.peer_uri);

  CHECK_THAT(load_error(R"(hosts { name: "h3" zone: "b" driver: "qemu:///system" peer_uri: "qemu+foo://x/system"
        capacity { vcpus: 8 memory_mib: 8192 slots: 4 } })"),
             Catch::Contains("hosts[2] \"h3\": peer_uri: unknown libvirt transport"));
  CHECK_THAT(load_error(R"(hosts { name: "h3" zone: "a" driver: "sim://a/h3" peer_uri: "qemu+tcp://x/system"
        capacity { vcpus: 8 memory_mib: 8192 slots: 4 } })"),
             Catch::Contains("peer_uri: only libvirt hosts have one"));
}

TEST_CASE("a syntax error names the line and column") {
  auto m = load_fleet("zones { name: \"a\" }\nhosts { nme: 1 }");
  REQUIRE_FALSE(m);
  CHECK_THAT(message_of(m.error()), Catch::Contains("line 2"));
  auto missing = load_fleet_file("/nonexistent/fleet.textproto");
  REQUIRE_FALSE(missing);
  CHECK(code_of(missing.error()) == errc::not_found);
}
