// The fleet simulator: the pre-copy model, migrations sharing bandwidth on the virtual clock,
// idempotent lifecycle calls through the sim driver, and injected faults. Manual clock
// throughout (except the one test of scaled real time); replies are awaited with deadlines.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hypervisor/precopy.hpp"
#include "hypervisor/sim_driver.hpp"
#include "hypervisor/sim_world.hpp"

using namespace ferry;
using namespace ferry::hv;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t mib = 1024 * 1024;

/// One reply, awaited with a deadline.
template <class T>
class answer {
public:
  reply<T> cb() {
    auto p = p_;
    return [p](caf::expected<T> x) { p->set_value(std::move(x)); };
  }
  bool ready() {
    return f_.wait_for(0ms) == std::future_status::ready;
  }
  caf::expected<T> get(std::chrono::milliseconds deadline = 10s) {
    REQUIRE(f_.wait_for(deadline) == std::future_status::ready);
    return f_.get();
  }

private:
  std::shared_ptr<std::promise<caf::expected<T>>> p_
    = std::make_shared<std::promise<caf::expected<T>>>();
  std::future<caf::expected<T>> f_ = p_->get_future();
};

sim_options exact() {
  sim_options o;
  o.jitter = 0;
  return o;
}

domain_config vm(const std::string& name, uint64_t memory_mib, double dirty_mib_s = 0) {
  domain_config c;
  c.name = name;
  c.vcpus = 2;
  c.max_vcpus = 4;
  c.memory_mib = memory_mib;
  c.dirty_mib_s = dirty_mib_s;
  return c;
}

call with_key(std::string key, std::chrono::milliseconds timeout = 10s) {
  return call{std::move(key), timeout};
}

migrate_request to(const std::string& domain, const std::string& dst,
                   migration_mode mode = migration_mode::precopy) {
  migrate_request req;
  req.domain = domain;
  req.destination_uri = dst;
  req.mode = mode;
  return req;
}

/// Issues a call, runs the manual clock until idle, returns the reply.
template <class T, class F>
caf::expected<T> sync(sim_world& w, F issue) {
  answer<T> a;
  issue(a.cb());
  w.run_until_idle();
  return a.get();
}

/// A world with two hosts in zone a and two in zone b, NICs of `nic` bytes/s.
std::shared_ptr<sim_world> fleet(sim_options o = exact(), double nic = 0) {
  auto w = std::make_shared<sim_world>(o);
  for (auto uri : {"sim://a/h1", "sim://a/h2", "sim://b/h3", "sim://b/h4"})
    REQUIRE(!w->add_host(uri, nic));
  return w;
}

caf::expected<migration_result> migrate_once(sim_world& w, driver& d, migrate_request req) {
  return sync<migration_result>(w, [&](auto r) { d.migrate(req, with_key("run/mig/1"), r); });
}

} // namespace

// -- the pre-copy model -------------------------------------------------------------------

TEST_CASE("a higher dirty rate gives more pre-copy iterations and a longer downtime") {
  precopy_input in;
  in.memory_bytes = 4096 * mib;
  in.bandwidth_bytes_s = 1024.0 * mib;
  in.max_downtime_ms = 300;
  std::vector<precopy_estimate> es;
  for (double dirty : {0.0, 100.0, 200.0, 400.0}) {
    in.dirty_bytes_s = dirty * mib;
    es.push_back(estimate_precopy(in));
    REQUIRE(es.back().converges);
  }
  // An idle guest: one pass of 4 s, nothing left, the switch overhead only.
  CHECK(es[0].iterations == 1);
  CHECK(es[0].downtime_ms == 20);
  CHECK(es[0].duration_ms == 4020);
  CHECK(es[0].transferred_bytes == 4096 * mib);
  for (size_t i = 1; i < es.size(); ++i) {
    INFO("dirty rate #" << i);
    CHECK(es[i].iterations >= es[i - 1].iterations);
    CHECK(es[i].downtime_ms > es[i - 1].downtime_ms);
    CHECK(es[i].transferred_bytes > es[i - 1].transferred_bytes);
  }
  CHECK(es[3].iterations > es[1].iterations);
  CHECK(es[3].downtime_ms <= 300 + 20);
}

TEST_CASE("a dirty rate at or above the bandwidth is estimated as non-converging") {
  precopy_input in;
  in.memory_bytes = 4096 * mib;
  in.bandwidth_bytes_s = 500.0 * mib;
  in.dirty_bytes_s = 800.0 * mib;
  auto e = estimate_precopy(in);
  CHECK(!e.converges);
  CHECK(e.reason == "dirty rate 800 MiB/s is at or above the bandwidth 500 MiB/s");
  in.dirty_bytes_s = 500.0 * mib;
  e = estimate_precopy(in);
  CHECK(!e.converges);
  CHECK(e.reason == "dirty rate 500 MiB/s is at or above the bandwidth 500 MiB/s");
}

TEST_CASE("a pre-copy that does not reach the downtime or the time budget says why") {
  precopy_input in;
  in.memory_bytes = 8192 * mib;
  in.bandwidth_bytes_s = 500.0 * mib;
  in.dirty_bytes_s = 490.0 * mib;
  auto e = estimate_precopy(in);
  CHECK(!e.converges);
  CHECK(e.iterations == 30);
  CHECK(e.reason == "30 iterations without reaching the 300 ms downtime");
  precopy_input big;
  big.memory_bytes = 102400 * mib;
  big.bandwidth_bytes_s = 125.0 * mib;
  big.time_budget_s = 600;
  e = estimate_precopy(big);
  CHECK(!e.converges);
  CHECK(e.duration_ms == 819220);
  CHECK(e.reason == "estimated 819 s exceeds the time budget 600 s");
}

TEST_CASE("a post-copy estimate converges whatever the dirty rate, with the switch as downtime") {
  precopy_input in;
  in.memory_bytes = 4096 * mib;
  in.bandwidth_bytes_s = 512.0 * mib;
  in.dirty_bytes_s = 800.0 * mib;
  auto e = estimate_postcopy(in);
  CHECK(e.converges);
  CHECK(e.iterations == 0);
  CHECK(e.downtime_ms == 20);
  CHECK(e.duration_ms == 8020);
  CHECK(e.transferred_bytes == 4096 * mib);
}

// -- migrations in the simulator ----------------------------------------------------------

TEST_CASE("a simulated migration moves the domain and takes what the estimate says") {
  auto w = fleet(exact(), 1024.0 * mib);
  REQUIRE(!w->add_domain("sim://a/h1", vm("web", 4096, 200)));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  std::vector<job_progress> seen;
  auto req = to("web", "sim://a/h2");
  req.on_progress = [&](const job_progress& p) { seen.push_back(p); };
  auto res = migrate_once(*w, *h1, req);
  REQUIRE(res);
  precopy_input in;
  in.memory_bytes = 4096 * mib;
  in.dirty_bytes_s = 200.0 * mib;
  in.bandwidth_bytes_s = 1024.0 * mib;
  auto e = estimate_precopy(in);
  CHECK(res->iterations == e.iterations);
  CHECK(res->downtime_ms == Approx(e.downtime_ms).margin(1));
  CHECK(res->duration_ms == Approx(e.duration_ms).margin(2));
  CHECK(res->transferred_bytes == Approx(e.transferred_bytes).margin(64 * 1024));
  CHECK(res->mode == migration_mode::precopy);
  REQUIRE(seen.size() == e.iterations);
  for (size_t i = 0; i < seen.size(); ++i) {
    CHECK(seen[i].iteration == i + 1);
    CHECK(seen[i].remaining_bytes == 0);
  }
  CHECK(seen.front().processed_bytes == 4096 * mib);
  CHECK(seen.front().elapsed_ms == 4000);
  CHECK(seen.front().dirty_bytes_s == 200 * mib);
  CHECK(w->domain("sim://a/h1", "web").status == domain_status::absent);
  CHECK(w->domain("sim://a/h2", "web").status == domain_status::running);
  auto m = w->metrics();
  CHECK(m.migrations_started == 1);
  CHECK(m.migrations_finished == 1);
  CHECK(m.migrations_active == 0);
  CHECK(m.bytes_moved == res->transferred_bytes);
}

TEST_CASE("copy_storage adds the local disks to what a migration moves") {
  auto w = fleet(exact(), 1024.0 * mib);
  auto cfg = vm("store", 1024);
  cfg.disks.push_back({"vda", "/var/lib/vda.img", true, 2048 * mib});
  cfg.disks.push_back({"vdb", "vol-7", false, 8192 * mib}); // network storage: not copied
  REQUIRE(!w->add_domain("sim://a/h1", cfg));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  auto req = to("store", "sim://a/h2");
  req.copy_storage = true;
  auto res = migrate_once(*w, *h1, req);
  REQUIRE(res);
  CHECK(res->transferred_bytes == 3072 * mib);
  CHECK(res->duration_ms == 3020);
  auto moved = w->domain("sim://a/h2", "store");
  CHECK(moved.status == domain_status::running);
  CHECK(moved.disks.size() == 2);
}

TEST_CASE("a migration whose dirty rate outruns the bandwidth fails and the VM runs on") {
  auto w = fleet(exact(), 500.0 * mib);
  REQUIRE(!w->add_domain("sim://a/h1", vm("db", 4096, 800)));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  auto res = migrate_once(*w, *h1, to("db", "sim://a/h2"));
  REQUIRE(!res);
  CHECK(code_of(res.error()) == errc::aborted);
  CHECK_THAT(message_of(res.error()),
             Catch::Contains("dirty rate 800 MiB/s is at or above the bandwidth 500 MiB/s"));
  CHECK(w->domain("sim://a/h1", "db").status == domain_status::running);
  CHECK(w->domain("sim://a/h2", "db").status == domain_status::absent);
  CHECK(w->metrics().migrations_failed == 1);
}

TEST_CASE("two concurrent migrations over one link each take about twice as long as one") {
  auto w = fleet();
  w->set_link("a", "b", 100.0 * mib);
  for (auto name : {"solo", "x", "y"})
    REQUIRE(!w->add_domain(name == std::string{"y"} ? "sim://a/h2" : "sim://a/h1",
                           vm(name, 1024)));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  auto h2 = make_sim_driver(w, "sim://a/h2");
  auto solo = migrate_once(*w, *h1, to("solo", "sim://b/h3"));
  REQUIRE(solo);
  CHECK(solo->duration_ms == 10260); // 1 GiB at 100 MiB/s + 20 ms switch
  answer<migration_result> x, y;
  h1->migrate(to("x", "sim://b/h3"), with_key("run/x/1"), x.cb());
  h2->migrate(to("y", "sim://b/h4"), with_key("run/y/1"), y.cb());
  w->run_until_idle();
  auto rx = x.get();
  auto ry = y.get();
  REQUIRE(rx);
  REQUIRE(ry);
  CHECK(rx->duration_ms / double(solo->duration_ms) == Approx(2.0).epsilon(0.02));
  CHECK(ry->duration_ms / double(solo->duration_ms) == Approx(2.0).epsilon(0.02));
}

TEST_CASE("post-copy switches with a shorter downtime than pre-copy and runs on the destination") {
  auto w = fleet(exact(), 1024.0 * mib);
  REQUIRE(!w->add_domain("sim://a/h1", vm("pre", 4096, 300)));
  REQUIRE(!w->add_domain("sim://a/h1", vm("post", 4096, 300)));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  auto pre = migrate_once(*w, *h1, to("pre", "sim://a/h2"));
  REQUIRE(pre);
  answer<migration_result> post;
  h1->migrate(to("post", "sim://a/h2", migration_mode::postcopy), with_key("run/post/1"),
              post.cb());
  w->advance(1000);
  // Switched after 20 ms: the guest runs on the destination while memory is pulled.
  CHECK(!post.ready());
  CHECK(w->domain("sim://a/h2", "post").status == domain_status::running);
  CHECK(w->domain("sim://a/h1", "post").status == domain_status::paused);
  auto late = sync<done>(*w, [&](auto r) { h1->abort_migration("post", with_key("run/a/1"), r); });
  REQUIRE(!late);
  CHECK(code_of(late.error()) == errc::failed_precondition);
  w->run_until_idle();
  auto res = post.get();
  REQUIRE(res);
  CHECK(res->mode == migration_mode::postcopy);
  CHECK(res->downtime_ms == 20);
  CHECK(res->downtime_ms < pre->downtime_ms);
  CHECK(res->duration_ms == 4020);
  CHECK(w->domain("sim://a/h1", "post").status == domain_status::absent);
}

TEST_CASE("the same seed gives the same results") {
  auto scenario = [](uint64_t seed) {
    sim_options o;
    o.seed = seed;
    o.jitter = 0.2;
    auto w = fleet(o, 800.0 * mib);
    w->set_link("a", "b", 300.0 * mib);
    auto h1 = make_sim_driver(w, "sim://a/h1");
    std::vector<uint64_t> seen;
    auto note = [&seen, clock = w.get()](auto x) {
      seen.push_back(clock->now_ms());
      seen.push_back(x ? 1 : 0);
    };
    for (auto name : {"a", "b", "c"}) {
      h1->define(vm(name, 2048, 150), with_key(std::string{"run/def/"} + name),
                 [note](caf::expected<domain_info> x) { note(x); });
      h1->start(name, with_key(std::string{"run/start/"} + name),
                [note](caf::expected<domain_info> x) { note(x); });
    }
    w->run_until_idle();
    std::vector<migration_result> results(2);
    h1->migrate(to("a", "sim://b/h3"), with_key("run/a/1"),
                [&](caf::expected<migration_result> x) {
                  note(x);
                  if (x)
                    results[0] = *x;
                });
    h1->migrate(to("b", "sim://a/h2"), with_key("run/b/1"),
                [&](caf::expected<migration_result> x) {
                  note(x);
                  if (x)
                    results[1] = *x;
                });
    h1->set_vcpus("c", 3, with_key("run/c/1"), [note](caf::expected<domain_info> x) { note(x); });
    w->run_until_idle();
    for (auto& r : results)
      for (auto v : {r.duration_ms, r.downtime_ms, r.transferred_bytes, uint64_t{r.iterations}})
        seen.push_back(v);
    seen.push_back(w->metrics().bytes_moved);
    return seen;
  };
  auto first = scenario(7);
  CHECK(first.size() == 2 * 9 + 4 * 2 + 1);
  CHECK(first == scenario(7));
  CHECK(first != scenario(8)); // the jitter of the lifecycle calls differs
}

// -- the driver: idempotency --------------------------------------------------------------

TEST_CASE("lifecycle calls are idempotent by the world's state") {
  auto w = fleet();
  auto h1 = make_sim_driver(w, "sim://a/h1");
  auto info = [&](auto issue) { return sync<domain_info>(*w, issue); };
  auto c = with_key("run/t/1");
  for (int i = 0; i < 2; ++i) {
    auto x = info([&](auto r) { h1->define(vm("v", 512), c, r); });
    REQUIRE(x);
    CHECK(x->status == domain_status::shut_off);
  }
  for (int i = 0; i < 2; ++i) {
    auto x = info([&](auto r) { h1->start("v", c, r); });
    REQUIRE(x);
    CHECK(x->status == domain_status::running);
  }
  for (int i = 0; i < 2; ++i) {
    auto x = info([&](auto r) { h1->pause("v", c, r); });
    REQUIRE(x);
    CHECK(x->status == domain_status::paused);
  }
  for (int i = 0; i < 2; ++i) {
    auto x = info([&](auto r) { h1->resume("v", c, r); });
    REQUIRE(x);
    CHECK(x->status == domain_status::running);
  }
  disk_spec disk{"vdb", "vol-1", false, 10 * mib};
  for (int i = 0; i < 2; ++i) {
    auto x = info([&](auto r) { h1->attach_disk("v", disk, c, r); });
    REQUIRE(x);
    CHECK(x->disks.size() == 1);
  }
  for (int i = 0; i < 2; ++i) {
    auto x = info([&](auto r) { h1->set_vcpus("v", 4, c, r); });
    REQUIRE(x);
    CHECK(x->vcpus == 4);
  }
  auto over = info([&](auto r) { h1->set_vcpus("v", 5, c, r); });
  REQUIRE(!over);
  CHECK(code_of(over.error()) == errc::out_of_range);
  for (int i = 0; i < 2; ++i) {
    auto x = info([&](auto r) { h1->detach_disk("v", "vdb", c, r); });
    REQUIRE(x);
    CHECK(x->disks.empty());
  }
  for (int i = 0; i < 2; ++i)
    CHECK(sync<done>(*w, [&](auto r) { h1->destroy("v", c, r); }));
  auto gone = info([&](auto r) { h1->query("v", c, r); });
  REQUIRE(gone);
  CHECK(gone->status == domain_status::absent);
  auto missing = info([&](auto r) { h1->start("v", c, r); });
  REQUIRE(!missing);
  CHECK(code_of(missing.error()) == errc::not_found);
}

TEST_CASE("a migration re-dispatched after it finished reports the recorded result") {
  auto w = fleet(exact(), 1024.0 * mib);
  REQUIRE(!w->add_domain("sim://a/h1", vm("web", 2048, 100)));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  auto first = migrate_once(*w, *h1, to("web", "sim://a/h2"));
  REQUIRE(first);
  auto again = migrate_once(*w, *h1, to("web", "sim://a/h2"));
  REQUIRE(again);
  CHECK(again->duration_ms == first->duration_ms);
  CHECK(again->iterations == first->iterations);
  CHECK(again->transferred_bytes == first->transferred_bytes);
  auto other = sync<migration_result>(*w, [&](auto r) {
    h1->migrate(to("web", "sim://a/h2"), with_key("run/other/1"), r);
  });
  REQUIRE(other);
  CHECK(other->duration_ms == 0);
  CHECK(w->metrics().migrations_started == 1);
}

TEST_CASE("a migration re-dispatched with its key while in flight joins it") {
  auto w = fleet(exact(), 1024.0 * mib);
  REQUIRE(!w->add_domain("sim://a/h1", vm("web", 2048, 100)));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  answer<migration_result> first, second, stranger;
  h1->migrate(to("web", "sim://a/h2"), with_key("run/mig/1"), first.cb());
  w->advance(500);
  h1->migrate(to("web", "sim://a/h2"), with_key("run/mig/1"), second.cb());
  h1->migrate(to("web", "sim://a/h2"), with_key("run/other/1"), stranger.cb());
  w->run_until_idle();
  auto a = first.get();
  auto b = second.get();
  auto c = stranger.get();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->duration_ms == b->duration_ms);
  REQUIRE(!c);
  CHECK(code_of(c.error()) == errc::failed_precondition);
  CHECK(w->metrics().migrations_started == 1);
}

// -- faults -------------------------------------------------------------------------------

TEST_CASE("an injected failure fails the next calls with its code and message") {
  auto w = fleet();
  REQUIRE(!w->add_domain("sim://a/h1", vm("v", 512), domain_status::shut_off));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  w->inject("sim://a/h1", "start", sim_fault::fail(errc::resource_exhausted, "no slots", 1));
  auto c = with_key("run/t/1");
  auto x = sync<domain_info>(*w, [&](auto r) { h1->start("v", c, r); });
  REQUIRE(!x);
  CHECK(code_of(x.error()) == errc::resource_exhausted);
  CHECK(message_of(x.error()) == "no slots");
  CHECK(w->domain("sim://a/h1", "v").status == domain_status::shut_off);
  x = sync<domain_info>(*w, [&](auto r) { h1->start("v", c, r); });
  REQUIRE(x);
  CHECK(x->status == domain_status::running);
  w->inject("sim://a/h1", "*", sim_fault::fail(errc::internal, {}, 0));
  for (int i = 0; i < 3; ++i) {
    x = sync<domain_info>(*w, [&](auto r) { h1->query("v", c, r); });
    REQUIRE(!x);
    CHECK(message_of(x.error()) == "sim://a/h1: query: injected failure");
  }
  w->clear_faults("sim://a/h1");
  CHECK(sync<domain_info>(*w, [&](auto r) { h1->query("v", c, r); }));
}

TEST_CASE("a lost answer: the call takes effect, the caller is told it failed") {
  auto w = fleet();
  REQUIRE(!w->add_domain("sim://a/h1", vm("v", 512), domain_status::shut_off));
  REQUIRE(!w->add_domain("sim://a/h1", vm("m", 512)));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  auto c = with_key("run/t/1");
  w->inject("sim://a/h1", "start", sim_fault::lose_answer());
  auto x = sync<domain_info>(*w, [&](auto r) { h1->start("v", c, r); });
  REQUIRE(!x);
  CHECK(code_of(x.error()) == errc::unavailable);
  CHECK(message_of(x.error()) == "sim://a/h1: start: the answer was lost");
  CHECK(w->domain("sim://a/h1", "v").status == domain_status::running);
  // A migration runs to its end; only its answer is lost. A re-dispatch with the same key
  // learns what happened.
  w->inject("sim://a/h1", "migrate", sim_fault::lose_answer());
  auto req = to("m", "sim://a/h2");
  auto mkey = with_key("run/mig/1");
  auto m = sync<migration_result>(*w, [&](auto r) { h1->migrate(req, mkey, r); });
  REQUIRE(!m);
  CHECK(code_of(m.error()) == errc::unavailable);
  CHECK(w->domain("sim://a/h1", "m").status == domain_status::absent);
  CHECK(w->domain("sim://a/h2", "m").status == domain_status::running);
  m = sync<migration_result>(*w, [&](auto r) { h1->migrate(to("m", "sim://a/h2"), mkey, r); });
  CHECK(m);
  CHECK(w->metrics().faults_taken == 2);
}

TEST_CASE("a hung call is answered with deadline_exceeded within the call's timeout") {
  auto w = fleet();
  REQUIRE(!w->add_domain("sim://a/h1", vm("v", 512)));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  w->inject("sim://a/h1", "query", sim_fault::hang());
  answer<domain_info> a;
  h1->query("v", with_key("run/t/1", 200ms), a.cb());
  w->run_until_idle();
  auto x = a.get(10s);
  REQUIRE(!x);
  CHECK(code_of(x.error()) == errc::deadline_exceeded);
  CHECK(message_of(x.error()) == "sim://a/h1: query v: no answer within 200 ms");
  // The fault hit once: the next call is answered.
  CHECK(sync<domain_info>(*w, [&](auto r) { h1->query("v", with_key("run/t/2", 200ms), r); }));
}

TEST_CASE("a crashed host answers unavailable and its domains are gone until it recovers") {
  auto w = fleet();
  REQUIRE(!w->add_domain("sim://a/h1", vm("v", 512)));
  REQUIRE(!w->add_domain("sim://a/h1", vm("w", 512), domain_status::shut_off));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  auto c = with_key("run/t/1");
  w->inject("sim://a/h1", "start", sim_fault::crash());
  auto x = sync<domain_info>(*w, [&](auto r) { h1->start("w", c, r); });
  REQUIRE(!x);
  CHECK(code_of(x.error()) == errc::unavailable);
  CHECK(!w->host_up("sim://a/h1"));
  CHECK(w->domain("sim://a/h1", "v").status == domain_status::crashed);
  CHECK(w->domain("sim://a/h1", "w").status == domain_status::shut_off);
  auto q = sync<domain_info>(*w, [&](auto r) { h1->query("v", c, r); });
  REQUIRE(!q);
  CHECK(code_of(q.error()) == errc::unavailable);
  auto l = sync<std::vector<domain_info>>(*w, [&](auto r) { h1->list(c, r); });
  REQUIRE(!l);
  CHECK(code_of(l.error()) == errc::unavailable);
  w->recover_host("sim://a/h1");
  q = sync<domain_info>(*w, [&](auto r) { h1->query("v", c, r); });
  REQUIRE(q);
  CHECK(q->status == domain_status::crashed);
  q = sync<domain_info>(*w, [&](auto r) { h1->start("v", c, r); });
  REQUIRE(q);
  CHECK(q->status == domain_status::running);
}

TEST_CASE("a destination crash fails the migration with unavailable and the VM runs on") {
  auto w = fleet(exact(), 1024.0 * mib);
  REQUIRE(!w->add_domain("sim://a/h1", vm("v", 4096, 100)));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  answer<migration_result> a;
  h1->migrate(to("v", "sim://a/h2"), with_key("run/m/1"), a.cb());
  w->advance(1000);
  CHECK(w->domain("sim://a/h1", "v").status == domain_status::migrating);
  w->crash_host("sim://a/h2");
  auto x = a.get();
  REQUIRE(!x);
  CHECK(code_of(x.error()) == errc::unavailable);
  CHECK(w->domain("sim://a/h1", "v").status == domain_status::running);
  CHECK(w->metrics().migrations_failed == 1);
}

TEST_CASE("abort_migration stops a pre-copy and leaves the VM running on the source") {
  auto w = fleet(exact(), 1024.0 * mib);
  REQUIRE(!w->add_domain("sim://a/h1", vm("v", 4096, 100)));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  answer<migration_result> m;
  h1->migrate(to("v", "sim://a/h2"), with_key("run/m/1"), m.cb());
  w->advance(1000);
  CHECK(!m.ready());
  auto aborted = sync<done>(*w, [&](auto r) { h1->abort_migration("v", with_key("run/a/1"), r); });
  CHECK(aborted);
  auto x = m.get();
  REQUIRE(!x);
  CHECK(code_of(x.error()) == errc::cancelled);
  CHECK(w->domain("sim://a/h1", "v").status == domain_status::running);
  CHECK(w->domain("sim://a/h2", "v").status == domain_status::absent);
  CHECK(w->metrics().migrations_cancelled == 1);
  CHECK(w->metrics().migrations_active == 0);
  // Nothing in flight any more: aborting again is a success.
  CHECK(sync<done>(*w, [&](auto r) { h1->abort_migration("v", with_key("run/a/2"), r); }));
}

// -- scaled real time ---------------------------------------------------------------------

TEST_CASE("with scaled real time the world's thread runs operations and answers calls") {
  sim_options o;
  o.speed = 1000;
  auto w = std::make_shared<sim_world>(o);
  REQUIRE(!w->add_host("sim://a/h1"));
  REQUIRE(!w->add_host("sim://a/h2"));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  answer<domain_info> def, start;
  h1->define(vm("v", 1024, 50), with_key("run/d/1"), def.cb());
  REQUIRE(def.get());
  h1->start("v", with_key("run/s/1"), start.cb());
  auto s = start.get();
  REQUIRE(s);
  CHECK(s->status == domain_status::running);
  answer<migration_result> m;
  h1->migrate(to("v", "sim://a/h2"), with_key("run/m/1"), m.cb());
  auto res = m.get();
  REQUIRE(res);
  CHECK(w->domain("sim://a/h2", "v").status == domain_status::running);
  CHECK(w->now_ms() >= res->duration_ms);
}

// -- the state file -----------------------------------------------------------------------

TEST_CASE("a world with a state file comes back as it was left, migrations in flight aborted") {
  auto file = std::filesystem::temp_directory_path()
              / ("ferry-sim-state-" + std::to_string(::getpid()));
  std::filesystem::remove(file);
  auto o = exact();
  o.state_file = file.string();
  {
    auto w = fleet(o, 1024.0 * mib);
    CHECK_FALSE(w->restored());
    auto cfg = vm("web", 4096, 100);
    cfg.disks.push_back({"vda", "/var/lib/web.img", true, 1024 * mib});
    cfg.agent = true;
    REQUIRE(!w->add_domain("sim://a/h1", cfg));
    REQUIRE(!w->add_domain("sim://a/h2", vm("db", 8192, 0)));
    auto h1 = make_sim_driver(w, "sim://a/h1");
    auto h2 = make_sim_driver(w, "sim://a/h2");
    REQUIRE(sync<done>(*w, [&](auto r) { h1->snapshot_disk("web", "vda", "s1", with_key("k1"), r); }));
    // db moves to h3 and finishes; web starts moving to h4 and is cut off by the "crash".
    REQUIRE(migrate_once(*w, *h2, to("db", "sim://b/h3")));
    answer<migration_result> lost;
    h1->migrate(to("web", "sim://b/h4"), with_key("run/mig/2"), lost.cb());
    w->advance(500);
    CHECK(w->domain("sim://a/h1", "web").status == domain_status::migrating);
  }
  auto w = std::make_shared<sim_world>(o);
  CHECK(w->restored());
  CHECK(w->host_up("sim://b/h4"));
  auto web = w->domain("sim://a/h1", "web");
  CHECK(web.status == domain_status::running);
  REQUIRE(web.disks.size() == 1);
  CHECK(web.disks[0].size_bytes == 1024 * mib);
  CHECK(w->domain("sim://b/h4", "web").status == domain_status::absent);
  CHECK(w->domain("sim://a/h2", "db").status == domain_status::absent);
  CHECK(w->domain("sim://b/h3", "db").status == domain_status::running);
  CHECK(w->now_ms() >= 500);
  // The finished migration still answers its re-dispatch with its result.
  auto h2 = make_sim_driver(w, "sim://a/h2");
  auto again = migrate_once(*w, *h2, to("db", "sim://b/h3"));
  REQUIRE(again);
  CHECK(again->iterations > 0);
  // The agent flag and the snapshot came back too.
  auto h1 = make_sim_driver(w, "sim://a/h1");
  auto ping = sync<std::string>(*w, [&](auto r) {
    h1->agent_command("web", R"({"execute":"guest-info"})", with_key("k2"), r);
  });
  REQUIRE(ping);
  CHECK_THAT(*ping, Catch::Contains("sim"));
  std::filesystem::remove(file);
}

TEST_CASE("a paused handover ends paused on both hosts; the caller decides where it resumes") {
  auto w = fleet(exact(), 1024.0 * mib);
  REQUIRE(!w->add_domain("sim://a/h1", vm("web", 1024, 10)));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  auto req = to("web", "sim://a/h2");
  req.paused_handover = true;
  REQUIRE(migrate_once(*w, *h1, req));
  CHECK(w->domain("sim://a/h1", "web").status == domain_status::paused);
  CHECK(w->domain("sim://a/h2", "web").status == domain_status::paused);
  // The same call again (a re-dispatch) reports the finished handover.
  REQUIRE(migrate_once(*w, *h1, req));
  CHECK(w->metrics().migrations_started == 1);
  // Stop keeps the definition; transfer takes the link's time.
  REQUIRE(sync<domain_info>(*w, [&](auto r) { h1->stop("web", with_key("k3"), r); }));
  CHECK(w->domain("sim://a/h1", "web").status == domain_status::shut_off);
  transfer_request t{"web", "disk vda", "sim://b/h3", 1000 * mib, false, {}};
  auto plain = sync<transfer_result>(*w, [&](auto r) { h1->transfer(t, with_key("k4"), r); });
  t.compress = true;
  auto packed = sync<transfer_result>(*w, [&](auto r) { h1->transfer(t, with_key("k5"), r); });
  REQUIRE(plain);
  REQUIRE(packed);
  CHECK(plain->wire_bytes == 1000 * mib);
  CHECK(packed->wire_bytes == 400 * mib);
  CHECK(packed->duration_ms < plain->duration_ms);
}

TEST_CASE("with scaled real time, an operation due between two readings of the clock is run "
          "when due, not waited for without end") {
  // A real clock that moves `step` on every reading, so that time passes between the world
  // thread's readings as it does on a loaded machine. For some of the steps the operation
  // (1 virtual ms, 50 ns of real time at speed 20,000) falls due between two readings: the
  // wait before it must not be taken from the later reading minus the due time (which wraps
  // around to a wait of decades).
  for (int64_t step = 5; step <= 60; ++step) {
    INFO("clock step " << step << " ns");
    auto t = std::make_shared<std::atomic<int64_t>>(0);
    sim_options o = exact();
    o.speed = 20000;
    o.define_ms = 1;
    o.real_clock = [t, step] {
      return std::chrono::steady_clock::time_point{}
             + std::chrono::nanoseconds{t->fetch_add(step)};
    };
    auto w = std::make_shared<sim_world>(o);
    REQUIRE(!w->add_host("sim://a/h1"));
    auto h1 = make_sim_driver(w, "sim://a/h1");
    answer<domain_info> def;
    h1->define(vm("v", 1024), with_key("run/d/1", 60s), def.cb());
    auto d = def.get(30s);
    REQUIRE(d);
    CHECK(d->status == domain_status::shut_off);
  }
}

TEST_CASE("a driver does not keep its world alive: an answer holding the driver cannot make "
          "the world's own thread destroy it; calls after the world is gone fail unavailable") {
  // Scaled real time: the world has its own thread, which delivers the answers.
  sim_options o = exact();
  o.speed = 1000;
  auto w = std::make_shared<sim_world>(o);
  REQUIRE(!w->add_host("sim://a/h1"));
  REQUIRE(!w->add_domain("sim://a/h1", vm("v", 512)));
  std::weak_ptr<sim_world> alive = w;
  auto h1 = make_sim_driver(w, "sim://a/h1");
  // The answer holds the driver, as an engine's task does: before, that made the world's
  // thread the world's last owner once the answer was delivered and dropped, and the world's
  // destructor joined its own thread (std::system_error, "Resource deadlock avoided").
  answer<domain_info> a;
  auto cb = a.cb();
  h1->query("v", with_key("run/t/1"),
            [cb, h1](caf::expected<domain_info> x) { cb(std::move(x)); });
  w.reset();
  CHECK(alive.expired());
  // The world went with its owner; the answer of the call in flight went with it, and a new
  // call says why.
  answer<domain_info> late;
  h1->query("v", with_key("run/t/2"), late.cb());
  auto x = late.get();
  REQUIRE(!x);
  CHECK(code_of(x.error()) == errc::unavailable);
  CHECK_THAT(message_of(x.error()), Catch::Contains("the simulator is gone"));
}

namespace {

/// Set by the test's answer, on the world's thread, around the call it chains.
thread_local bool chaining = false;

} // namespace

TEST_CASE("a call chained from an answer as the owner lets the world go: the world is never "
          "destroyed on its own thread") {
  // An answer delivered on the world's thread makes another call (as an engine's task does
  // when it chains operations), and the owner lets the world go while that call is being
  // made. Before, the driver held a reference to the world for the call; it was then the
  // last one, released on the world's thread, and the world's destructor joined its own
  // thread (std::system_error; the process ended). The world's clock is read while the call
  // is being made: there, the test lets the owner go and waits until it has.
  struct gate {
    std::mutex m;
    std::condition_variable cv;
    bool in_call = false;
    bool released = false;
    std::weak_ptr<sim_world> alive;
  };
  auto g = std::make_shared<gate>();
  sim_options o = exact();
  o.speed = 1000;
  o.real_clock = [g] {
    if (chaining) {
      chaining = false;
      std::unique_lock<std::mutex> lk{g->m};
      g->in_call = true;
      g->cv.notify_all();
      // Until the owner has let the world go: released, or (when the owner's destructor waits
      // for this call to end) the world is expiring.
      auto deadline = std::chrono::steady_clock::now() + 10s;
      while (!g->released && !g->alive.expired() && std::chrono::steady_clock::now() < deadline)
        g->cv.wait_for(lk, 1ms);
    }
    return std::chrono::steady_clock::now();
  };
  auto w = std::make_shared<sim_world>(o);
  g->alive = w;
  REQUIRE(!w->add_host("sim://a/h1"));
  REQUIRE(!w->add_domain("sim://a/h1", vm("v", 512)));
  auto h1 = make_sim_driver(w, "sim://a/h1");
  h1->query("v", with_key("run/t/1"), [h1](caf::expected<domain_info>) {
    chaining = true;
    h1->query("v", with_key("run/t/2"), [](caf::expected<domain_info>) {});
    chaining = false;
  });
  {
    std::unique_lock<std::mutex> lk{g->m};
    REQUIRE(g->cv.wait_for(lk, 30s, [&] { return g->in_call; }));
  }
  w.reset();
  {
    std::lock_guard<std::mutex> lk{g->m};
    g->released = true;
    g->cv.notify_all();
  }
  CHECK(g->alive.expired());
}
