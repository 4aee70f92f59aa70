// The fleet's actors (host, zone, storage_partition, network, directory) over the example
// fleet, with the simulator on a manual clock; and the fleet's state kept durable by the
// journal through an engine restart. Every wait is on a reply with a deadline.
#include <catch2/catch.hpp>

#include <fstream>
#include <future>

#include <caf/all.hpp>

#include "actors/engine.hpp"
#include "actors/fleet_runtime.hpp"
#include "fleet/fleet_codec.hpp"
#include "hypervisor/sim_world.hpp"
#include "templates/template.hpp"
#include "tests/support/test_kinds.hpp"

using namespace ferry;
using namespace std::chrono_literals;

namespace {

fleet::model_ptr example_fleet() {
  auto m = fleet::load_fleet_file(std::string{FERRY_SOURCE_DIR} + "/examples/fleet.textproto");
  REQUIRE(m);
  return *m;
}

struct fleet_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<fleet_runtime> rt;
  std::shared_ptr<hv::sim_world> world = std::make_shared<hv::sim_world>();

  explicit fleet_fixture(partition_options popts = {}) {
    cfg.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    fleet_options opts;
    opts.sim = world;
    opts.partitions = popts;
    auto r = fleet_runtime::start(*sys, example_fleet(), {}, opts);
    INFO((r ? "" : describe(r.error())));
    REQUIRE(r);
    rt = std::move(*r);
  }

  ~fleet_fixture() {
    rt.reset();
  }

  // A request's answer, or its error.
  template <class T, class Handle, class... Ts>
  caf::expected<T> ask(const Handle& h, Ts&&... xs) {
    caf::scoped_actor self{*sys};
    caf::expected<T> out{caf::error{}};
    self->request(h, 10s, std::forward<Ts>(xs)...)
      .receive([&](T& x) { out = std::move(x); }, [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  template <class T, class Handle, class... Ts>
  T must(const Handle& h, Ts&&... xs) {
    auto r = ask<T>(h, std::forward<Ts>(xs)...);
    INFO((r ? "" : describe(r.error())));
    REQUIRE(r);
    return std::move(*r);
  }

  host_status host(const std::string& name) {
    return must<host_status>(rt->host(name), status_atom::value);
  }

  /// Takes both outbound slots of `h` (limit 2) for keys r1 and r2 of peer b1.
  void fill_out_slots(const host_actor& h) {
    for (auto key : {"r1", "r2"})
      CHECK(must<bool>(h, acquire_atom::value, slot_dir::out, std::string{key},
                       std::string{"b1"}, time_ms{0}));
  }

  /// Asks `h` for an outbound slot without a deadline from another actor; returns once the
  /// request is in h's mailbox (ahead of what the caller sends next). The future holds
  /// errc::ok when the slot is granted, else the answer's error code.
  std::future<errc> queue_out_slot(const host_actor& h, const std::string& key,
                                   const std::string& peer) {
    auto answer = std::make_shared<std::promise<errc>>();
    auto sent = std::make_shared<std::promise<void>>();
    auto sent_done = sent->get_future();
    sys->spawn([=](caf::event_based_actor* c) {
      c->request(h, caf::infinite, acquire_atom::value, slot_dir::out, key, peer, time_ms{0})
        .then([=](bool) { answer->set_value(errc::ok); },
              [=](caf::error& err) { answer->set_value(code_of(err)); });
      sent->set_value();
    });
    REQUIRE(sent_done.wait_for(10s) == std::future_status::ready);
    return answer->get_future();
  }
};

} // namespace

TEST_CASE("a zone reserves on the host placement chooses, once per key, and releases it") {
  fleet_fixture f;
  reserve_request req{"run-1/web-1", "web-1", "small", fleet::strategy::pack, {"a1"}, {}, {}};
  auto r = f.must<reserve_reply>(f.rt->zone("zone-a"), reserve_atom::value, req);
  CHECK(r.host == "a2"); // a1 excluded (the source), a2 fuller than a3
  REQUIRE(r.changes.size() == 1);
  CHECK(r.changes[0].key == "resv/a2/run-1/web-1");
  auto a2 = f.host("a2");
  REQUIRE(a2.reservations.size() == 1);
  CHECK(a2.free.memory_mib == a2.total.memory_mib - 4096 - 32768 - 4096);
  // The same key again: the same host, nothing more held. The reservation is reported
  // again, for a journal that missed the first answer (lost, or late).
  auto again = f.must<reserve_reply>(f.rt->zone("zone-a"), reserve_atom::value, req);
  CHECK(again.host == "a2");
  REQUIRE(again.changes.size() == 1);
  CHECK(again.changes[0].key == r.changes[0].key);
  CHECK(again.changes[0].value == r.changes[0].value);
  CHECK(f.host("a2").reservations.size() == 1);
  auto released = f.must<state_changes>(f.rt->zone("zone-a"), release_atom::value,
                                        std::string{}, std::string{"run-1/web-1"});
  REQUIRE(released.size() == 1);
  CHECK(released[0].value.empty());
  CHECK(f.host("a2").free.memory_mib == a2.free.memory_mib + 4096);
  // Released already: a success that frees nothing more, and says the erase again.
  auto twice = f.must<state_changes>(f.rt->zone("zone-a"), release_atom::value, std::string{},
                                     std::string{"run-1/web-1"});
  REQUIRE(twice.size() == 1);
  CHECK(twice[0].key == released[0].key);
  CHECK(twice[0].value.empty());
  CHECK(f.host("a2").free.memory_mib == a2.free.memory_mib + 4096);
  // Never reserved here: nothing.
  CHECK(f.must<state_changes>(f.rt->zone("zone-a"), release_atom::value, std::string{},
                              std::string{"run-9/web-1"})
          .empty());
}

TEST_CASE("a release said again long after the zone let the key go is reported again when it "
          "names the host") {
  // The zone remembers the last 4,096 keys it released. A release repeated after more than
  // that (its first answer lost) learns from the host it names, the reserve task's output,
  // so the journal still gets the erase.
  fleet_fixture f;
  auto zone = f.rt->zone("zone-a");
  reserve_request req{"run-1/web-1", "web-1", "small", fleet::strategy::pack, {"a1"}, {}, {}};
  auto r = f.must<reserve_reply>(zone, reserve_atom::value, req);
  auto free_before = f.host(r.host).free.memory_mib;
  auto first = f.must<state_changes>(zone, release_atom::value, std::string{}, req.key);
  REQUIRE(first.size() == 1);
  auto freed = f.host(r.host).free.memory_mib;
  CHECK(freed == free_before + 4096);
  for (int i = 0; i < 4100; ++i) {
    reserve_request other{"other-" + std::to_string(i), "web-1", "small", fleet::strategy::pack,
                          {"a1"}, {}, {}};
    f.must<reserve_reply>(zone, reserve_atom::value, other);
    REQUIRE(f.must<state_changes>(zone, release_atom::value, std::string{}, other.key).size()
            == 1);
  }
  // Without the host, the zone no longer knows where the key was.
  CHECK(f.must<state_changes>(zone, release_atom::value, std::string{}, req.key).empty());
  // With it, the erase again, and nothing freed twice.
  auto again = f.must<state_changes>(zone, release_atom::value, r.host, req.key);
  REQUIRE(again.size() == 1);
  CHECK(again[0].key == first[0].key);
  CHECK(again[0].value.empty());
  CHECK(f.host(r.host).free.memory_mib == freed);
  // A host the zone does not have is refused, naming it.
  auto bad = f.ask<state_changes>(zone, release_atom::value, std::string{"b1"}, req.key);
  REQUIRE_FALSE(bad);
  CHECK(code_of(bad.error()) == errc::not_found);
  CHECK_THAT(message_of(bad.error()), Catch::Contains("no host \"b1\""));
}

TEST_CASE("a zone without room for a type denies with the reason") {
  fleet_fixture f;
  // zone-c has one gen1 host: "large" needs gen2.
  reserve_request req{"k", "db-1", "large", fleet::strategy::spread, {}, {}, {}};
  auto r = f.ask<reserve_reply>(f.rt->zone("zone-c"), reserve_atom::value, req);
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::resource_exhausted);
  CHECK_THAT(message_of(r.error()), Catch::Contains("no host of generation gen2"));
  // A host refuses what does not fit, naming what it has.
  fleet::reservation big{"k2", "x", {1000, 1, 1}};
  auto h = f.ask<state_changes>(f.rt->host("c1"), reserve_atom::value, big);
  REQUIRE_FALSE(h);
  CHECK_THAT(message_of(h.error()), Catch::Contains("host \"c1\": cannot reserve 1000 vCPUs"));
}

TEST_CASE("migration slots are limited per direction and granted fairly across peers") {
  fleet_fixture f;
  auto a1 = f.rt->host("a1"); // outbound limit 2
  caf::scoped_actor self{*f.sys};
  auto me = caf::actor_cast<caf::actor>(self);
  // One client sends every request, so a1 sees them in the order sent; it forwards each
  // grant (the key) and each status to the test.
  auto client = f.sys->spawn([=](caf::event_based_actor* c) -> caf::behavior {
    return {
      [=](acquire_atom, const std::string& key, const std::string& peer) {
        c->request(a1, 10s, acquire_atom::value, slot_dir::out, key, peer, time_ms{0})
          .then([=](bool) { c->send(me, key); });
      },
      [=](unslot_atom, const std::string& key) {
        c->send(a1, unslot_atom::value, slot_dir::out, key);
      },
      [=](status_atom) {
        c->request(a1, 10s, status_atom::value).then([=](host_status& s) { c->send(me, s); });
      },
    };
  });
  std::vector<std::string> granted;
  auto next_grant = [&] {
    self->receive([&](std::string& k) { granted.push_back(k); },
                  caf::after(10s) >> [&] { FAIL("no slot granted in 10 s"); });
  };
  auto status = [&] {
    host_status s;
    self->send(client, status_atom::value);
    self->receive([&](host_status& x) { s = std::move(x); },
                  caf::after(10s) >> [&] { FAIL("no status in 10 s"); });
    return s;
  };
  auto take = [&](const std::string& key, const std::string& peer) {
    self->send(client, acquire_atom::value, key, peer);
  };
  // Two slots go at once; then peer b1 queues two requests and peer c1 one.
  take("r1", "b1");
  take("r2", "b1");
  next_grant();
  next_grant();
  take("r3", "b1");
  take("r4", "b1");
  take("r5", "c1");
  auto s = status();
  CHECK(s.out_active == 2);
  CHECK(s.out_queued == 3);
  // Each release grants the next peer in turn: b1, then c1 (before b1's second).
  self->send(client, unslot_atom::value, std::string{"r1"});
  next_grant();
  self->send(client, unslot_atom::value, std::string{"r2"});
  next_grant();
  CHECK(granted == std::vector<std::string>{"r1", "r2", "r3", "r5"});
  // Idempotent: a key that holds a slot gets it again at once.
  CHECK(f.must<bool>(a1, acquire_atom::value, slot_dir::out, std::string{"r3"},
                     std::string{"b1"}, time_ms{0}));
  self->send(client, unslot_atom::value, std::string{"r3"});
  next_grant();
  CHECK(granted.back() == "r4");
  caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
}

TEST_CASE("a slot request still queued at its deadline is answered deadline_exceeded and never "
          "granted") {
  fleet_fixture f;
  auto a1 = f.rt->host("a1"); // outbound limit 2
  caf::scoped_actor self{*f.sys};
  f.fill_out_slots(a1);
  // Full: a request whose deadline has passed is refused at once.
  auto late = f.ask<bool>(a1, acquire_atom::value, slot_dir::out, std::string{"r3"},
                          std::string{"c1"}, wall_now_ms() - 1);
  REQUIRE_FALSE(late);
  CHECK(code_of(late.error()) == errc::deadline_exceeded);
  CHECK_THAT(message_of(late.error()),
             Catch::Contains("host \"a1\": no outbound migration slot free before the "
                             "attempt's deadline"));
  // One that waits is answered at its deadline by the host's own timer; one without a
  // deadline keeps waiting.
  auto deadline = wall_now_ms() + 150;
  auto forever_answer = f.queue_out_slot(a1, "r5", "c1");
  auto expired = f.ask<bool>(a1, acquire_atom::value, slot_dir::out, std::string{"r4"},
                             std::string{"b1"}, deadline);
  REQUIRE_FALSE(expired);
  CHECK(code_of(expired.error()) == errc::deadline_exceeded);
  CHECK(wall_now_ms() >= deadline);
  auto s = f.must<host_status>(a1, status_atom::value);
  CHECK(s.out_active == 2);
  CHECK(s.out_queued == 1);
  // A slot given back goes to the waiter without a deadline, not to the expired one.
  self->send(a1, unslot_atom::value, slot_dir::out, std::string{"r1"});
  REQUIRE(forever_answer.wait_for(10s) == std::future_status::ready);
  CHECK(forever_answer.get() == errc::ok);
  s = f.must<host_status>(a1, status_atom::value);
  CHECK(s.out_active == 2);
  CHECK(s.out_queued == 0);
}

TEST_CASE("a withdrawn slot request leaves its peer's queue, and the next slot given back is "
          "granted to nobody") {
  fleet_fixture f;
  auto a1 = f.rt->host("a1"); // outbound limit 2
  caf::scoped_actor self{*f.sys};
  f.fill_out_slots(a1);
  // r3 waits (the only waiter of peer c1), then is withdrawn.
  auto answered = f.queue_out_slot(a1, "r3", "c1");
  self->send(a1, unslot_atom::value, slot_dir::out, std::string{"r3"});
  REQUIRE(answered.wait_for(10s) == std::future_status::ready);
  CHECK(answered.get() == errc::cancelled);
  // A slot given back now finds no waiter (peer c1's queue is gone with its last waiter).
  self->send(a1, unslot_atom::value, slot_dir::out, std::string{"r1"});
  auto s = f.must<host_status>(a1, status_atom::value);
  CHECK(s.out_active == 1);
  CHECK(s.out_queued == 0);
  CHECK(f.must<bool>(a1, acquire_atom::value, slot_dir::out, std::string{"r4"},
                     std::string{"c1"}, time_ms{0}));
  s = f.must<host_status>(a1, status_atom::value);
  CHECK(s.out_active == 2);
}

TEST_CASE("a flip waits for pending I/O to drain, and fails at its deadline with nothing "
          "changed") {
  fleet_fixture f{partition_options{300ms}};
  auto p = f.rt->partition("vol-web-p0");
  using op = lease_request::op;
  f.must<lease_reply>(p, lease_atom::value, lease_request{op::connect_primary, "a1", {}});
  auto standby = f.must<lease_reply>(p, lease_atom::value,
                                     lease_request{op::connect_standby, "b1", {}});
  REQUIRE(standby.changes.size() == 1);
  CHECK(standby.changes[0].key == "lease/vol-web-p0");
  auto epoch = standby.table.find("a1")->epoch;
  REQUIRE(f.must<bool>(p, io_atom::value, std::string{"a1"}, epoch, true));
  // The I/O never ends: the flip gives up at its deadline and the leases are unchanged.
  auto stuck = f.ask<lease_reply>(p, lease_atom::value, lease_request{op::flip, "a1", "b1"});
  REQUIRE_FALSE(stuck);
  CHECK(code_of(stuck.error()) == errc::deadline_exceeded);
  CHECK_THAT(message_of(stuck.error()), Catch::Contains("1 I/O still pending after 300 ms"));
  auto now = f.must<lease_reply>(p, get_atom::value);
  CHECK(now.table.state_of("a1") == fleet::lease_state::primary);
  CHECK(now.table.state_of("b1") == fleet::lease_state::standby);
  // Again, and the I/O completes while the flip waits: then it goes through. One actor
  // sends both, so the partition sees the flip first.
  caf::scoped_actor self{*f.sys};
  auto me = caf::actor_cast<caf::actor>(self);
  f.sys->spawn([=](caf::event_based_actor* c) {
    c->request(p, 10s, lease_atom::value, lease_request{op::flip, "a1", "b1"})
      .then([=](lease_reply& r) { c->send(me, r); }, [=](caf::error& e) { c->send(me, e); });
    c->request(p, 10s, io_atom::value, std::string{"a1"}, epoch, false).then([](bool) {});
  });
  std::optional<lease_reply> flipped;
  self->receive([&](lease_reply& r) { flipped = std::move(r); },
                [&](caf::error& e) { FAIL(describe(e)); },
                caf::after(10s) >> [] { FAIL("flip did not complete"); });
  REQUIRE(flipped);
  CHECK(flipped->table.state_of("b1") == fleet::lease_state::primary);
  CHECK(flipped->table.state_of("a1") == fleet::lease_state::deactivated);
  // The old primary is fenced.
  auto fenced = f.ask<bool>(p, io_atom::value, std::string{"a1"}, epoch, true);
  REQUIRE_FALSE(fenced);
  CHECK(code_of(fenced.error()) == errc::permission_denied);
}

TEST_CASE("when a partition's master does not answer, the change goes to a replica") {
  fleet_fixture f;
  auto p = f.rt->partition("vol-db-p0");
  using op = lease_request::op;
  // The VM using the volume runs on a2: a2 holds the PRIMARY lease from the start.
  CHECK(f.must<lease_reply>(p, get_atom::value).table.state_of("a2")
        == fleet::lease_state::primary);
  REQUIRE(f.must<bool>(p, fault_atom::value, storage_fault{storage_fault::kind::master_silent, {}}));
  auto r = f.must<lease_reply>(p, lease_atom::value, lease_request{op::connect_standby, "b2", {}});
  CHECK(r.master == "store-a1"); // the first replica took over from store-a3
  CHECK(r.table.state_of("b2") == fleet::lease_state::standby);
  CHECK(r.table.state_of("a2") == fleet::lease_state::primary);
  // With every replica down too, the change is refused and nothing changes.
  REQUIRE(f.must<bool>(p, fault_atom::value, storage_fault{storage_fault::kind::node_down, "store-a2"}));
  auto refused = f.ask<lease_reply>(p, lease_atom::value,
                                    lease_request{op::connect_standby, "c1", {}});
  REQUIRE_FALSE(refused);
  CHECK(code_of(refused.error()) == errc::unavailable);
  CHECK(f.must<lease_reply>(p, get_atom::value).table.version == r.table.version);
}

TEST_CASE("the network forwards an address to the new host until the address moves") {
  fleet_fixture f;
  auto& net = f.rt->handles().network;
  auto r = f.must<fleet::address_route>(net, route_atom::value, std::string{"10.0.0.11"});
  CHECK(r.host == "a1");
  auto fw = f.must<state_changes>(net, forward_atom::value, std::string{"10.0.0.11"},
                                  std::string{"b2"});
  REQUIRE(fw.size() == 1);
  CHECK(f.must<fleet::address_route>(net, route_atom::value, std::string{"10.0.0.11"}).forward_to
        == "b2");
  f.must<state_changes>(net, move_atom::value, std::string{"10.0.0.11"}, std::string{"b2"});
  r = f.must<fleet::address_route>(net, route_atom::value, std::string{"10.0.0.11"});
  CHECK(r.host == "b2");
  CHECK(r.forward_to.empty());
  auto unknown = f.ask<fleet::address_route>(net, route_atom::value, std::string{"10.9.9.9"});
  REQUIRE_FALSE(unknown);
  CHECK(code_of(unknown.error()) == errc::not_found);
}

TEST_CASE("the fleet ranks zones for a VM, with the reason for each") {
  fleet_fixture f;
  auto ranked = f.rt->recommend(recommend_request{"web-1", {}, fleet::preference::spread, {}});
  REQUIRE(ranked);
  REQUIRE(ranked->size() == 2);
  auto& m = f.rt->model();
  // Spreading: the emptiest zone first; its narrow link carries the volume's 40 GiB over the
  // compressed path.
  CHECK(m.zones[(*ranked)[0].zone].name == "zone-c");
  CHECK((*ranked)[0].admitted);
  CHECK_THAT((*ranked)[0].reason, Catch::Contains("40 GiB of disk data over the compressed path"));
  CHECK(m.zones[(*ranked)[1].zone].name == "zone-b");
  CHECK((*ranked)[1].admitted);
  CHECK((*ranked)[1].estimated_ms < (*ranked)[0].estimated_ms);
  // batch-1 dirties memory faster than any link: denied everywhere, with the reason.
  auto hot = f.rt->recommend(recommend_request{"batch-1", {}, fleet::preference::spread, {}});
  REQUIRE(hot);
  for (auto& d : *hot) {
    CHECK_FALSE(d.admitted);
    CHECK_THAT(d.reason, Catch::Contains("will not converge"));
  }
  // A request naming its target zone gets that zone's decision alone.
  auto one = f.rt->recommend(recommend_request{"web-1", "large", fleet::preference::spread, "zone-c"});
  REQUIRE(one);
  REQUIRE(one->size() == 1);
  CHECK((*one)[0].why == fleet::denial::no_capacity);
  CHECK_THAT((*one)[0].reason, Catch::Contains("no host of generation gen2"));
  auto nowhere = f.rt->recommend(recommend_request{"web-1", {}, fleet::preference::spread, "zone-x"});
  REQUIRE_FALSE(nowhere);
  CHECK(code_of(nowhere.error()) == errc::not_found);
  auto missing = f.rt->recommend(recommend_request{"nope", {}, fleet::preference::spread, {}});
  REQUIRE_FALSE(missing);
  CHECK(code_of(missing.error()) == errc::not_found);
}

TEST_CASE("a VM adopted by another host moves there and frees its old host") {
  fleet_fixture f;
  auto before = f.host("a1").free;
  auto changes = f.must<state_changes>(f.rt->handles().directory, adopt_atom::value,
                                       vm_request{"web-1", "b2", {}, {}});
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].key == "vm/web-1");
  auto loc = f.must<fleet::vm_location>(f.rt->handles().directory, locate_atom::value,
                                        std::string{"web-1"});
  CHECK(loc.host == "b2");
  auto b2 = f.host("b2");
  CHECK(std::find(b2.vms.begin(), b2.vms.end(), "web-1") != b2.vms.end());
  // The directory sent a1 the eviction before it answered: a1 has it before our request.
  CHECK(f.host("a1").free.memory_mib == before.memory_mib + 4096);
}

TEST_CASE("a host hands out its driver, which reaches the simulated domain") {
  fleet_fixture f;
  auto drv = f.must<hv::driver_ptr>(f.rt->host("a1"), driver_atom::value);
  REQUIRE(drv);
  CHECK(drv->uri() == "sim://zone-a/a1");
  CHECK(f.world->domain("sim://zone-a/a1", "web-1").status == hv::domain_status::running);
}

TEST_CASE("the fleet's state is journaled with the transitions and restored on open") {
  test::temp_dir dir;
  auto journal = dir.file("journal");
  auto open = [&] {
    engine_options opts;
    opts.journal_path = journal;
    opts.threads = 2;
    opts.fleet = example_fleet();
    opts.fleet_opts.sim = std::make_shared<hv::sim_world>();
    auto e = engine::open(opts);
    INFO((e ? "" : describe(e.error())));
    REQUIRE(e);
    return std::move(*e);
  };
  const char* def = R"({
    "name": "fleet-state",
    "tasks": [
      {"id": "reserve", "kind": "fleet.reserve",
       "params": {"vm": "web-1", "zone": "zone-b", "key": "m1"}},
      {"id": "standby", "kind": "lease.connect",
       "params": {"partition": "vol-web-p0", "host": "b2"}},
      {"id": "primary", "kind": "lease.connect",
       "params": {"partition": "vol-web-p1", "host": "a1", "role": "primary"}},
      {"id": "forward", "kind": "net.forward",
       "params": {"address": "10.0.0.11", "to": "b2"}, "depends_on": ["reserve"]},
      {"id": "adopt", "kind": "vm.adopt",
       "params": {"vm": "web-2", "host": "a3"}}
    ]})";
  {
    auto eng = open();
    auto d = eng->load(def);
    INFO((d ? "" : describe(d.error())));
    REQUIRE(d);
    auto id = eng->submit(*d);
    REQUIRE(id);
    auto s = eng->wait(*id, 20s);
    REQUIRE(s);
    REQUIRE(s->status == run_status::succeeded);
  }
  auto eng = open();
  REQUIRE(eng->fleet());
  auto snap = eng->fleet()->snapshot();
  REQUIRE(snap);
  auto host = [&](const std::string& name) {
    for (auto& h : snap->hosts)
      if (h.name == name)
        return h;
    FAIL("no host " << name);
    return host_status{};
  };
  auto b2 = host("b2");
  REQUIRE(b2.reservations.size() == 1);
  CHECK(b2.reservations[0].key == "m1");
  CHECK(b2.free.memory_mib == b2.total.memory_mib - 4096);
  auto lease_of = [&](const std::string& p) {
    for (auto& l : snap->leases)
      if (l.partition == p)
        return l.table;
    FAIL("no partition " << p);
    return fleet::lease_table{};
  };
  CHECK(lease_of("vol-web-p0").state_of("b2") == fleet::lease_state::standby);
  CHECK(lease_of("vol-web-p1").state_of("a1") == fleet::lease_state::primary);
  for (auto& v : snap->vms)
    if (v.vm == "web-2")
      CHECK(v.host == "a3");
  CHECK(std::find(host("a3").vms.begin(), host("a3").vms.end(), "web-2") != host("a3").vms.end());
  for (auto& r : snap->routes)
    if (r.address == "10.0.0.11")
      CHECK(r.forward_to == "b2");
  // A fleet.release task for m1, with `host` when not empty.
  auto release = [&](const std::string& h) {
    auto host = h.empty() ? std::string{} : R"(, "host": ")" + h + R"(")";
    auto d = eng->load(R"({"name": "release", "tasks": [{"id": "release",
      "kind": "fleet.release", "params": {"zone": "zone-b", "key": "m1")" + host
                       + R"(}, "retry": {"max_attempts": 1}}]})");
    REQUIRE(d);
    auto id = eng->submit(*d);
    REQUIRE(id);
    auto r = eng->wait(*id, 20s);
    REQUIRE(r);
    return *r;
  };
  // A restored reservation is released by key, as a rollback would.
  REQUIRE(release("").status == run_status::succeeded);
  auto after = eng->fleet()->snapshot();
  REQUIRE(after);
  for (auto& h : after->hosts)
    if (h.name == "b2")
      CHECK(h.reservations.empty());
  // Said again naming its host (a release whose first answer was lost): a success. The host
  // is handed to the zone, which refuses one it does not have.
  CHECK(release("b2").status == run_status::succeeded);
  auto wrong = release("a1");
  CHECK(wrong.status == run_status::rolled_back);
  CHECK_THAT(wrong.reason, Catch::Contains("zone \"zone-b\": no host \"a1\""));
}

TEST_CASE("hosts with libvirt URIs get libvirt drivers that reach their domains") {
  test::temp_dir dir;
  auto node = [&](const std::string& name, const std::string& domains) {
    auto file = dir.file(name + ".xml");
    std::ofstream{file} << "<node><cpu><mhz>2000</mhz><model>x86_64</model><active>4</active>"
                           "<nodes>1</nodes><sockets>1</sockets><cores>4</cores>"
                           "<threads>1</threads></cpu><memory>8388608</memory>"
                        << domains << "</node>\n";
    return "test://" + file;
  };
  auto guest = "<domain type='test'><name>vm1</name><memory unit='MiB'>512</memory>"
               "<vcpu>1</vcpu><os><type>hvm</type></os></domain>";
  auto text = "zones { name: \"z\" }\n"
              "vm_types { name: \"t\" vcpus: 1 memory_mib: 512 }\n"
              "hosts { name: \"h1\" zone: \"z\" driver: \"" + node("h1", guest) + "\""
              " capacity { vcpus: 4 memory_mib: 8192 slots: 4 } }\n"
              "hosts { name: \"h2\" zone: \"z\" driver: \"" + node("h2", "") + "\""
              " capacity { vcpus: 4 memory_mib: 8192 slots: 4 } }\n"
              "vms { name: \"vm1\" type: \"t\" host: \"h1\" }\n";
  auto model = fleet::load_fleet(text);
  INFO((model ? "" : describe(model.error())));
  REQUIRE(model);
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  auto rt = fleet_runtime::start(sys, *model, {});
  INFO((rt ? "" : describe(rt.error())));
  REQUIRE(rt);
  CHECK((*rt)->sim() == nullptr);
  auto driver_of = [&](const std::string& host) {
    caf::scoped_actor self{sys};
    hv::driver_ptr out;
    self->request((*rt)->host(host), 10s, driver_atom::value)
      .receive([&](hv::driver_ptr& d) { out = d; }, [&](caf::error& e) { FAIL(describe(e)); });
    return out;
  };
  auto query = [](const hv::driver_ptr& d, const std::string& name) {
    auto p = std::make_shared<std::promise<caf::expected<hv::domain_info>>>();
    auto fut = p->get_future();
    d->query(name, hv::call{"t/q/1", 5000ms}, [p](caf::expected<hv::domain_info> x) {
      p->set_value(std::move(x));
    });
    REQUIRE(fut.wait_for(10s) == std::future_status::ready);
    return fut.get();
  };
  auto h1 = driver_of("h1");
  REQUIRE(h1);
  auto on_h1 = query(h1, "vm1");
  REQUIRE(on_h1);
  CHECK(on_h1->status == hv::domain_status::running);
  auto on_h2 = query(driver_of("h2"), "vm1");
  REQUIRE(on_h2);
  CHECK(on_h2->status == hv::domain_status::absent);
  // A host whose driver cannot be opened stops the fleet from starting, naming the host.
  auto broken = fleet::load_fleet("zones { name: \"z\" }\nhosts { name: \"h9\" zone: \"z\" "
                                  "driver: \"test:///nonexistent/h9.xml\" capacity { vcpus: 1 "
                                  "memory_mib: 1 slots: 1 } }\n");
  REQUIRE(broken);
  auto failed = fleet_runtime::start(sys, *broken, {});
  REQUIRE_FALSE(failed);
  CHECK_THAT(message_of(failed.error()), Catch::Contains("host \"h9\": driver test:///nonexistent"));
}

TEST_CASE("a migration template rendered against the fleet moves capacity, leases, placement "
          "and address, and rolls them back when a flip is refused") {
  engine_options opts;
  opts.threads = 2;
  opts.fleet = example_fleet();
  hv::sim_options so;
  so.speed = 1000; // scaled real time: the VM kinds' calls complete on their own
  opts.fleet_opts.sim = std::make_shared<hv::sim_world>(so);
  auto eng = engine::open(opts);
  REQUIRE(eng);
  auto& e = **eng;
  auto t = load_template_file(std::string{FERRY_SOURCE_DIR}
                                + "/examples/reserve-and-flip.template.textproto",
                              e.kinds());
  INFO((t ? "" : describe(t.error())));
  REQUIRE(t);
  auto run = [&](const std::vector<std::string>& params) {
    auto args = parse_template_args(**t, params);
    REQUIRE(args);
    auto d = render(**t, *args, e.kinds(), opts.fleet.get());
    INFO((d ? "" : describe(d.error())));
    REQUIRE(d);
    auto id = e.submit(*d);
    REQUIRE(id);
    auto s = e.wait(*id, 20s);
    REQUIRE(s);
    return s->status;
  };
  // db-1 on a2 cannot flip from a1 (a2 holds its lease): the run rolls back.
  CHECK(run({"vm=db-1", "source=a1", "zone=zone-b", "target=b2", "partitions=vol-db-p0",
             "copy_ms=1"})
        == run_status::rolled_back);
  auto snap = e.fleet()->snapshot();
  REQUIRE(snap);
  for (auto& h : snap->hosts)
    CHECK(h.reservations.empty());
  for (auto& l : snap->leases)
    if (l.partition == "vol-db-p0") {
      CHECK(l.table.state_of("a2") == fleet::lease_state::primary);
      CHECK(l.table.state_of("b2") == fleet::lease_state::none);
    }
  // web-1 moves to b2 with both partitions and its address.
  CHECK(run({"vm=web-1", "source=a1", "zone=zone-b", "target=b2",
             "partitions=vol-web-p0,vol-web-p1", "address=10.0.0.11", "copy_ms=1"})
        == run_status::succeeded);
  snap = e.fleet()->snapshot();
  REQUIRE(snap);
  for (auto& l : snap->leases)
    if (l.partition == "vol-web-p0" || l.partition == "vol-web-p1") {
      CHECK(l.table.state_of("b2") == fleet::lease_state::primary);
      CHECK(l.table.state_of("a1") == fleet::lease_state::deactivated);
    }
  for (auto& v : snap->vms)
    if (v.vm == "web-1")
      CHECK(v.host == "b2");
  for (auto& r : snap->routes)
    if (r.address == "10.0.0.11") {
      CHECK(r.host == "b2");
      CHECK(r.forward_to.empty());
    }
  for (auto& h : snap->hosts)
    CHECK(h.reservations.empty()); // adopted: the reservation became the VM's own use

  // a1's DEACTIVATED lease is not retired while web-1 is still defined there (the example's
  // copy is a stand-in: the domain never left a1); the refusal changes nothing.
  auto lease_of = [&](const std::string& host) {
    auto snap = e.fleet()->snapshot();
    REQUIRE(snap);
    for (auto& l : snap->leases)
      if (l.partition == "vol-web-p0")
        return l.table.state_of(host);
    FAIL("no lease table for vol-web-p0");
    return fleet::lease_state::none;
  };
  auto one = [&](const std::string& text) {
    auto d = load_definition(text, e.kinds());
    INFO((d ? "" : describe(d.error())));
    REQUIRE(d);
    auto id = e.submit(*d);
    REQUIRE(id);
    auto s = e.wait(*id, 20s);
    INFO((s ? "" : describe(s.error())));
    REQUIRE(s);
    return *s;
  };
  auto retire = R"(name: "retire"
    default_retry { max_attempts: 1 }
    tasks { id: "retire" kind: "lease.retire" params {
      fields { key: "partition" value { string_value: "vol-web-p0" } }
      fields { key: "host" value { string_value: "a1" } }
      fields { key: "vm" value { string_value: "web-1" } } } })";
  auto refused = one(retire);
  CHECK(refused.status == run_status::rolled_back);
  CHECK_THAT(refused.reason, Catch::Contains("VM \"web-1\" is still defined on host \"a1\" "
                                             "(running): its lease is retired only once that "
                                             "copy is destroyed"));
  CHECK(lease_of("a1") == fleet::lease_state::deactivated);
  // Once destroyed there, it is retired, and a1 may connect again.
  auto done = one(R"(name: "destroy-and-retire"
    default_retry { max_attempts: 1 }
    tasks { id: "destroy" kind: "vm.destroy" params {
      fields { key: "host" value { string_value: "a1" } }
      fields { key: "vm" value { string_value: "web-1" } } } }
    tasks { id: "retire" kind: "lease.retire" depends_on: "destroy" params {
      fields { key: "partition" value { string_value: "vol-web-p0" } }
      fields { key: "host" value { string_value: "a1" } }
      fields { key: "vm" value { string_value: "web-1" } } } })");
  INFO(done.reason);
  CHECK(done.status == run_status::succeeded);
  CHECK(lease_of("a1") == fleet::lease_state::none);
  CHECK(lease_of("b2") == fleet::lease_state::primary);
}
