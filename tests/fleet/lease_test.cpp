#include <catch2/catch.hpp>

#include <functional>
#include <random>
#include <set>
#include <string>

#include "common/errc.hpp"
#include "fleet/lease.hpp"

using namespace ferry;
using namespace ferry::fleet;

namespace {

lease_machine make_partition() {
  return lease_machine{"p1", "s0", {"s1", "s2"}};
}

// Checks the invariants that must hold after every step.
void check_invariants(const lease_machine& m, const std::set<std::string>& lost) {
  REQUIRE(m.table().count(lease_state::primary) <= 1);
  for (auto& n : m.nodes()) {
    REQUIRE(n.table.count(lease_state::primary) <= 1);
    if (n.current())
      REQUIRE(n.table == m.table());
  }
  for (auto& h : lost) {
    auto s = m.table().state_of(h);
    REQUIRE((s == lease_state::deactivated || s == lease_state::terminated));
  }
}

} // namespace

TEST_CASE("a host connects as standby, is flipped to primary, and the old primary is fenced") {
  auto m = make_partition();
  REQUIRE_FALSE(m.connect("src", lease_state::primary));
  REQUIRE_FALSE(m.connect("dst", lease_state::standby));
  auto old_epoch = m.table().find("src")->epoch;
  REQUIRE_FALSE(m.io_begin("src", old_epoch));
  REQUIRE_FALSE(m.begin_flip("src", "dst"));
  // New I/O from the source is frozen, and the flip waits for the pending one.
  CHECK(code_of(m.io_begin("src", old_epoch)) == errc::unavailable);
  CHECK(code_of(m.finish_flip("src", "dst")) == errc::unavailable);
  m.io_end("src");
  REQUIRE_FALSE(m.finish_flip("src", "dst"));
  CHECK(m.table().state_of("dst") == lease_state::primary);
  CHECK(m.table().state_of("src") == lease_state::deactivated);
  CHECK(code_of(m.io_begin("src", old_epoch)) == errc::permission_denied);
  CHECK_FALSE(m.io_begin("dst", m.table().find("dst")->epoch));
  // The deactivated host may not come back while its lease stands.
  auto back = m.connect("src", lease_state::standby);
  CHECK(code_of(back) == errc::permission_denied);
  CHECK_THAT(message_of(back), Catch::Contains("may not reconnect until its lease is retired"));
  // Repeating the flip (a re-dispatch) is a success that changes nothing.
  auto version = m.table().version;
  CHECK_FALSE(m.begin_flip("src", "dst"));
  CHECK_FALSE(m.finish_flip("src", "dst"));
  CHECK(m.table().version == version);
}

TEST_CASE("a retired lease lets the host connect again, and its old I/O stays fenced") {
  auto m = make_partition();
  REQUIRE_FALSE(m.connect("src", lease_state::primary));
  REQUIRE_FALSE(m.connect("dst", lease_state::standby));
  auto src_epoch = m.table().find("src")->epoch;
  REQUIRE_FALSE(m.begin_flip("src", "dst"));
  REQUIRE_FALSE(m.finish_flip("src", "dst"));
  // Only a DEACTIVATED or TERMINATED lease is retired; a refusal changes nothing.
  auto before = m.table();
  auto live = m.retire("dst");
  CHECK(code_of(live) == errc::failed_precondition);
  CHECK_THAT(message_of(live), Catch::Contains("host \"dst\" is PRIMARY; only a DEACTIVATED or "
                                               "TERMINATED lease is retired"));
  CHECK(m.table() == before);
  REQUIRE_FALSE(m.retire("src"));
  CHECK(m.table().find("src") == nullptr);
  CHECK(m.table().epoch == before.epoch + 1);
  CHECK(m.nodes()[1].table == m.table()); // replicated like every change
  // Idempotent: retiring again, or a host without a lease, changes nothing.
  auto after = m.table();
  CHECK_FALSE(m.retire("src"));
  CHECK_FALSE(m.retire("nobody"));
  CHECK(m.table() == after);
  // The VM comes back: src connects as STANDBY and is flipped to PRIMARY, under new epochs.
  REQUIRE_FALSE(m.connect("src", lease_state::standby));
  CHECK(m.table().find("src")->epoch > src_epoch);
  REQUIRE_FALSE(m.begin_flip("dst", "src"));
  REQUIRE_FALSE(m.finish_flip("dst", "src"));
  auto* l = m.table().find("src");
  REQUIRE(l != nullptr);
  CHECK(l->state == lease_state::primary);
  // I/O issued under the lease src held before the first flip is still refused.
  auto stale = m.io_begin("src", src_epoch);
  CHECK(code_of(stale) == errc::permission_denied);
  CHECK_THAT(message_of(stale), Catch::Contains("is stale"));
  CHECK_FALSE(m.io_begin("src", l->epoch));
  m.io_end("src");
  // A revoked host is retired the same way.
  REQUIRE_FALSE(m.revoke("dst"));
  REQUIRE_FALSE(m.retire("dst"));
  CHECK(m.table().find("dst") == nullptr);
  CHECK(m.table().count(lease_state::primary) == 1);
}

TEST_CASE("a second primary is refused and nothing changes") {
  auto m = make_partition();
  REQUIRE_FALSE(m.connect("a", lease_state::primary));
  auto before = m.table();
  auto err = m.connect("b", lease_state::primary);
  CHECK(code_of(err) == errc::failed_precondition);
  CHECK_THAT(message_of(err), Catch::Contains("\"a\" holds the PRIMARY lease"));
  CHECK(m.table() == before);
}

TEST_CASE("a lease change needs a replica, and a lost master fails over to one") {
  auto m = make_partition();
  m.node_down("s1");
  m.node_down("s2");
  CHECK(code_of(m.connect("a", lease_state::standby)) == errc::unavailable);
  CHECK(m.table().leases.empty());
  m.node_up("s1");
  REQUIRE_FALSE(m.connect("a", lease_state::primary));
  m.node_down("s0");
  CHECK(code_of(m.connect("b", lease_state::standby)) == errc::unavailable);
  REQUIRE_FALSE(m.master_timeout());
  CHECK(m.master() == "s1");
  CHECK(m.table().state_of("a") == lease_state::primary);
  m.node_up("s2");
  REQUIRE_FALSE(m.connect("b", lease_state::standby));
  // s2 was re-synchronised from s1 when it came back, then got the change.
  CHECK(m.nodes()[2].table == m.table());
}

TEST_CASE("random sequences of lease operations, failures and crashes keep the invariants") {
  const std::vector<std::string> hosts{"h0", "h1", "h2", "h3"};
  const std::vector<std::string> nodes{"s0", "s1", "s2"};
  size_t flips = 0, refused = 0, crashes = 0, failovers = 0, retired = 0;
  for (uint32_t seed = 1; seed <= 2000; ++seed) {
    std::mt19937 rng{seed};
    auto pick = [&](auto& v) -> const std::string& { return v[rng() % v.size()]; };
    auto m = make_partition();
    // What the journal holds: the acknowledged table and master.
    lease_table durable = m.table();
    std::string durable_master = m.master();
    std::set<std::string> lost;
    std::function<caf::error()> last;
    auto ack = [&] {
      durable = m.table();
      durable_master = m.master();
      for (auto& l : durable.leases)
        if (l.state == lease_state::deactivated || l.state == lease_state::terminated)
          lost.insert(l.host);
    };
    for (int step = 0; step < 40; ++step) {
      std::function<caf::error()> op;
      switch (rng() % 10) {
        case 0:
        case 1: {
          auto h = pick(hosts);
          auto role = rng() % 3 == 0 ? lease_state::primary : lease_state::standby;
          op = [&m, h, role] { return m.connect(h, role); };
          break;
        }
        case 2:
        case 3: {
          auto from = m.table().primary();
          if (from.empty())
            from = pick(hosts);
          auto to = pick(hosts);
          bool io = rng() % 2 == 0;
          op = [&m, from, to, io, &flips]() -> caf::error {
            auto* l = m.table().find(from);
            if (io && l && l->state == lease_state::primary && m.frozen().empty())
              (void) m.io_begin(from, l->epoch);
            if (auto err = m.begin_flip(from, to))
              return err;
            // Pending I/O must drain first: the flip is refused until it has.
            if (m.pending_io() > 0) {
              REQUIRE(code_of(m.finish_flip(from, to)) == errc::unavailable);
              m.io_end(from);
            }
            auto err = m.finish_flip(from, to);
            if (err)
              m.cancel_flip(from);
            else
              ++flips;
            return err;
          };
          break;
        }
        case 4: {
          auto h = pick(hosts);
          op = [&m, h] { return m.revoke(h); };
          break;
        }
        case 8: {
          // Retiring a lost host's lease (its copy destroyed) lets it connect anew later.
          auto h = pick(hosts);
          op = [&m, &lost, &retired, h]() -> caf::error {
            auto had = m.table().find(h) != nullptr;
            auto err = m.retire(h);
            if (!err && had) {
              lost.erase(h);
              ++retired;
            }
            return err;
          };
          break;
        }
        case 5: {
          auto n = pick(nodes);
          if (rng() % 2)
            m.node_down(n);
          else
            m.node_up(n);
          break;
        }
        case 6:
          if (!m.master_timeout())
            ++failovers;
          break;
        case 7: {
          // Controller crash: the in-memory state goes, the acknowledged one comes back, and
          // the last request is sent again with the same intent.
          ++crashes;
          m.restore(durable, durable_master);
          if (last) {
            auto before = m.table();
            if (!last())
              ack();
          }
          break;
        }
        default: {
          // I/O under a stale epoch is always refused.
          for (auto& l : m.table().leases)
            if (l.epoch > 0 && l.state == lease_state::primary && m.frozen().empty())
              REQUIRE(code_of(m.io_begin(l.host, l.epoch - 1)) == errc::permission_denied);
          break;
        }
      }
      if (op) {
        auto before = m.table();
        if (auto err = op()) {
          ++refused;
          REQUIRE(m.table() == before); // refused: nothing half-applied
        } else {
          ack();
          // Idempotent: sending it again succeeds and changes nothing... unless the request
          // was a connect that a later flip superseded (not the case right after).
          auto after = m.table();
          REQUIRE_FALSE(op());
          REQUIRE(m.table() == after);
        }
        last = op;
      }
      check_invariants(m, lost);
    }
  }
  // The sequences exercised the interesting paths.
  CHECK(flips > 1000);
  CHECK(refused > 1000);
  CHECK(crashes > 1000);
  CHECK(failovers > 100);
  CHECK(retired > 100);
}
