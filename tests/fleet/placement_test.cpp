#include <catch2/catch.hpp>

#include <string>

#include "fleet/fleet_codec.hpp"
#include "fleet/placement.hpp"
#include "fleet/recommend.hpp"

using namespace ferry;
using namespace ferry::fleet;

namespace {

const char* fleet_text = R"(
zones { name: "a" } zones { name: "b" } zones { name: "c" } zones { name: "d" }
links { a: "a" b: "b" bandwidth_mib_s: 1000 }
links { a: "a" b: "c" bandwidth_mib_s: 10 compressed_mib_s: 40 }
vm_types { name: "small" vcpus: 2 memory_mib: 2048 }
vm_types { name: "big" vcpus: 16 memory_mib: 65536 generations: "g2" }
hosts { name: "a1" zone: "a" driver: "sim://a/a1" generation: "g1"
        capacity { vcpus: 16 memory_mib: 32768 slots: 8 } }
hosts { name: "b1" zone: "b" driver: "sim://b/b1" generation: "g1"
        capacity { vcpus: 16 memory_mib: 16384 slots: 8 } }
hosts { name: "b2" zone: "b" driver: "sim://b/b2" generation: "g2"
        capacity { vcpus: 32 memory_mib: 131072 slots: 8 } }
hosts { name: "b3" zone: "b" driver: "sim://b/b3" generation: "g1"
        capacity { vcpus: 16 memory_mib: 65536 slots: 8 } tags: "maintenance" }
hosts { name: "c1" zone: "c" driver: "sim://c/c1" generation: "g1"
        capacity { vcpus: 16 memory_mib: 32768 slots: 8 } }
hosts { name: "d1" zone: "d" driver: "sim://d/d1" generation: "g1"
        capacity { vcpus: 16 memory_mib: 32768 slots: 8 } }
partitions { name: "p1" zone: "a" master: "s1" replicas: "s2" size_gib: 200 }
volumes { name: "v1" zone: "a" partitions: "p1" }
vms { name: "web" type: "small" host: "a1" volumes: "v1" dirty_mib_s: 5 group: "g" }
vms { name: "hot" type: "small" host: "a1" dirty_mib_s: 2000 }
vms { name: "peer" type: "small" host: "b1" group: "g" }
)";

model_ptr load() {
  auto m = load_fleet(fleet_text);
  REQUIRE(m);
  return *m;
}

capacity_index zone_index(const model_ptr& m, const std::string& zone) {
  return capacity_index{m, m->find_zone(zone), m->used_by_vms()};
}

// A plain pre-copy estimate: converges when the dirty rate is below the bandwidth.
copy_estimate simple_estimate(uint64_t mem, double dirty, double bw, uint32_t) {
  copy_estimate e;
  if (dirty >= bw) {
    e.converges = false;
    e.reason = "dirty rate at or above the bandwidth";
    return e;
  }
  e.duration_ms = static_cast<uint64_t>(static_cast<double>(mem) / (bw - dirty) * 1000.0);
  e.downtime_ms = 50;
  return e;
}

zone_offer offer_of(const model_ptr& m, const std::string& zone, const vm_type& t,
                    const std::string& group = "g") {
  auto idx = zone_index(m, zone);
  zone_offer o;
  o.zone = m->find_zone(zone);
  auto p = idx.choose(t, strategy::spread);
  o.host = p.host;
  o.no_fit = p.reason;
  o.hosts_fitting = idx.hosts_fitting(t);
  o.free = idx.total_free();
  o.total = idx.total();
  for (auto& v : m->vms)
    if (v.group == group && m->hosts[v.host].zone == o.zone)
      ++o.group_vms;
  return o;
}

} // namespace

TEST_CASE("spreading picks the host with the most free memory, packing the fullest that fits") {
  auto m = load();
  auto idx = zone_index(m, "b");
  auto& small = m->types[m->find_type("small")];
  CHECK(m->hosts[idx.choose(small, strategy::spread).host].name == "b2");
  CHECK(m->hosts[idx.choose(small, strategy::pack).host].name == "b1");
  // Excluded hosts and hosts in maintenance are never chosen.
  CHECK(m->hosts[idx.choose(small, strategy::pack, {m->find_host("b1")}).host].name == "b2");
}

TEST_CASE("placement honours host generations and follows reservations") {
  auto m = load();
  auto idx = zone_index(m, "b");
  auto& big = m->types[m->find_type("big")];
  auto b2 = m->find_host("b2");
  CHECK(idx.choose(big, strategy::pack).host == b2);
  idx.take(b2, big.need());
  idx.take(b2, big.need());
  auto none = idx.choose(big, strategy::pack);
  CHECK(none.host == npos);
  CHECK_THAT(none.reason, Catch::Contains("no host of generation g2 has 16 vCPUs, 65536 MiB"));
  idx.give(b2, big.need());
  CHECK(idx.choose(big, strategy::pack).host == b2);
  idx.set_down(b2, true);
  CHECK(idx.choose(big, strategy::pack).host == npos);
}

TEST_CASE("slots and vCPUs count as much as memory") {
  auto m = load();
  auto idx = zone_index(m, "c");
  auto& small = m->types[m->find_type("small")];
  auto c1 = m->find_host("c1");
  for (int i = 0; i < 8; ++i) {
    REQUIRE(idx.choose(small, strategy::pack).host == c1);
    idx.take(c1, small.need());
  }
  CHECK(idx.free(c1).slots == 0);
  CHECK(idx.choose(small, strategy::pack).host == npos);
  CHECK(idx.hosts_fitting(small) == 0);
}

TEST_CASE("recommendations rank admitted zones first, each with its reason") {
  auto m = load();
  auto& small = m->types[m->find_type("small")];
  std::vector<zone_offer> offers;
  for (auto z : {"a", "b", "c", "d"})
    offers.push_back(offer_of(m, z, small));
  move_request req;
  req.vm = m->find_vm("web");
  auto ranked = rank_zones(*m, req, offers, simple_estimate);
  REQUIRE(ranked.size() == 3); // its own zone is not a candidate
  CHECK(m->zones[ranked[0].zone].name == "b");
  CHECK(ranked[0].admitted);
  CHECK_THAT(ranked[0].reason, Catch::Contains("zone \"b\": admitted: 2 hosts fit type \"small\""));
  CHECK_THAT(ranked[0].reason, Catch::Contains("200 GiB of disk data"));
  // Zone c's link is narrow: 200 GiB over the 40 MiB/s compressed path is too long.
  auto c = std::find_if(ranked.begin(), ranked.end(),
                        [&](auto& d) { return m->zones[d.zone].name == "c"; });
  REQUIRE(c != ranked.end());
  CHECK_FALSE(c->admitted);
  CHECK(c->why == denial::too_long);
  CHECK_THAT(c->reason, Catch::Contains("exceeds the limit 600 s"));
  CHECK_THAT(c->reason, Catch::Contains("over the compressed path"));
  auto d = std::find_if(ranked.begin(), ranked.end(),
                        [&](auto& x) { return m->zones[x.zone].name == "d"; });
  REQUIRE(d != ranked.end());
  CHECK(d->why == denial::no_link);
  CHECK_THAT(d->reason, Catch::Contains("no link from zone \"a\""));
}

TEST_CASE("co-locating prefers the zone that runs the VM's group") {
  auto m = load();
  auto& small = m->types[m->find_type("small")];
  move_request req;
  req.vm = m->find_vm("web");
  req.pref = preference::colocate;
  std::vector<zone_offer> offers{offer_of(m, "b", small), offer_of(m, "d", small)};
  offers[1].group_vms = 0;
  auto ranked = rank_zones(*m, req, offers, simple_estimate);
  CHECK(m->zones[ranked[0].zone].name == "b");
  CHECK_THAT(ranked[0].reason, Catch::Contains("1 VMs of group \"g\""));
}

TEST_CASE("admission denies with a reason: no capacity, not converging") {
  auto m = load();
  auto& big = m->types[m->find_type("big")];
  move_request req;
  req.vm = m->find_vm("web");
  req.type = m->find_type("big");
  auto no_room = admit(*m, req, offer_of(m, "c", big), simple_estimate);
  CHECK_FALSE(no_room.admitted);
  CHECK(no_room.why == denial::no_capacity);
  CHECK_THAT(no_room.reason, Catch::Contains("denied: no capacity: zone \"c\": no host of "
                                             "generation g2"));
  move_request hot;
  hot.vm = m->find_vm("hot");
  auto& small = m->types[m->find_type("small")];
  auto nc = admit(*m, hot, offer_of(m, "b", small), simple_estimate);
  CHECK(nc.why == denial::not_converging);
  CHECK_THAT(nc.reason, Catch::Contains("will not converge"));
}
