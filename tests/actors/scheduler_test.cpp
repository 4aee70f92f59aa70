// The scheduler: batches and drains on the simulated fleet of examples/demo-fleet.textproto
// with the built-in templates. Limits are checked from the journal (each run counts from its
// first event to the event that put it at rest), never from the scheduler's own counters.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <unistd.h>

#include "actors/engine.hpp"
#include "actors/fleet_runtime.hpp"
#include "fleet/fleet_codec.hpp"
#include "hypervisor/sim_world.hpp"
#include "tests/support/fault_plan.hpp"
#include "tests/support/fleet_invariants.hpp"

using namespace ferry;
using namespace std::chrono_literals;

namespace {

const std::string source_dir = FERRY_SOURCE_DIR;

using testing::fault_plan;

struct fleet_env {
  std::string dir;
  std::shared_ptr<hv::sim_world> world;
  fleet::model_ptr model;
  std::shared_ptr<fault_plan> faults = std::make_shared<fault_plan>();
  std::unique_ptr<engine> eng;

  /// `durable`: a RocksDB journal and the simulator's state file in a fresh directory.
  explicit fleet_env(bool durable = false) {
    auto f = fleet::load_fleet_file(source_dir + "/examples/demo-fleet.textproto");
    REQUIRE(f);
    model = *f;
    if (durable) {
      dir = (std::filesystem::temp_directory_path()
             / ("ferry-scheduler-" + std::to_string(::getpid())))
              .string();
      std::filesystem::remove_all(dir);
      std::filesystem::create_directories(dir);
    }
    open();
  }

  ~fleet_env() {
    eng.reset();
    if (!dir.empty())
      std::filesystem::remove_all(dir);
  }

  void open() {
    hv::sim_options so;
    so.speed = 1000;
    if (!dir.empty())
      so.state_file = dir + "/sim-state";
    world = std::make_shared<hv::sim_world>(so);
    engine_options opts;
    opts.threads = 2;
    opts.fleet = model;
    opts.fleet_opts.sim = world;
    if (!dir.empty())
      opts.journal_path = dir + "/journal";
    opts.template_dirs = {source_dir + "/templates/builtin"};
    opts.inject_fault = [f = faults](const task_call& c) { return (*f)(c); };
    auto e = engine::open(opts);
    INFO((e ? "" : describe(e.error())));
    REQUIRE(e);
    eng = std::move(*e);
  }

  batch_status finish(const std::string& name) {
    auto s = eng->wait_batch(name, 120s);
    INFO((s ? "" : describe(s.error())));
    REQUIRE(s);
    CHECK(s->finished);
    return *s;
  }

  std::string host_of(const std::string& vm) {
    auto loc = eng->fleet()->locate(vm);
    REQUIRE(loc);
    return loc->host;
  }

  std::vector<event> events(const run_id& id) {
    std::mutex m;
    std::vector<event> evs;
    std::promise<void> done;
    auto fut = done.get_future();
    auto h = eng->watch(
      id, 1,
      [&](const std::vector<event>& xs) {
        std::lock_guard<std::mutex> g{m};
        evs.insert(evs.end(), xs.begin(), xs.end());
      },
      [&](const run_state&) { done.set_value(); });
    REQUIRE(fut.wait_for(30s) == std::future_status::ready);
    h.cancel();
    std::lock_guard<std::mutex> g{m};
    return evs;
  }

  /// When the run was submitted and when it came to rest, from its journal.
  std::pair<time_ms, time_ms> span(const run_id& id) {
    auto evs = events(id);
    REQUIRE(!evs.empty());
    time_ms end = 0;
    for (auto& ev : evs)
      if (ev.type == event_type::run_succeeded || ev.type == event_type::run_rolled_back
          || ev.type == event_type::run_failed || ev.type == event_type::run_aborted)
        end = ev.at;
    REQUIRE(end != 0);
    return {evs.front().at, end};
  }

  /// When its first task started.
  time_ms first_start(const run_id& id) {
    for (auto& ev : events(id))
      if (ev.type == event_type::task_started)
        return ev.at;
    FAIL("run " << id << " started no task");
    return 0;
  }
};

/// The most intervals open at once per key; an end and a start at the same instant do not
/// overlap (the scheduler starts a run only after the end of another is durable).
std::map<std::string, int> peaks(
  const std::vector<std::pair<std::string, std::pair<time_ms, time_ms>>>& spans) {
  std::map<std::string, std::vector<std::pair<time_ms, int>>> edges;
  for (auto& [key, s] : spans) {
    edges[key].emplace_back(s.first, +1);
    edges[key].emplace_back(s.second, -1);
  }
  std::map<std::string, int> out;
  for (auto& [key, e] : edges) {
    std::sort(e.begin(), e.end());
    int now = 0;
    for (auto& [at, d] : e)
      out[key] = std::max(out[key], now += d);
  }
  return out;
}

std::vector<std::string> drain_vms() {
  std::vector<std::string> out;
  for (int i = 0; i < 20; ++i) {
    char b[16];
    std::snprintf(b, sizeof b, "drain-%02d", i);
    out.emplace_back(b);
  }
  return out;
}

} // namespace

TEST_CASE("a drain of a host under limits moves every VM and never exceeds a limit") {
  fleet_env f;
  drain_request req;
  req.host = "a4";
  req.limits.host_out = 2;
  req.limits.host_in = 1;
  req.limits.global = 3;
  auto started = f.eng->drain(req);
  INFO((started ? "" : describe(started.error())));
  REQUIRE(started);
  CHECK(started->name == "drain-a4");
  CHECK(started->total == 20);
  auto s = f.finish("drain-a4");
  CHECK(s.succeeded == 20);
  CHECK(s.failed == 0);
  CHECK(f.world->domains("sim://zone-a/a4").empty());
  // From the journal: out of a4, into each host, and in all.
  std::vector<std::pair<std::string, std::pair<time_ms, time_ms>>> spans;
  for (auto& it : s.items) {
    CHECK(it.state == "succeeded");
    CHECK(it.source == "a4");
    CHECK(it.target == f.host_of(it.vm));
    auto sp = f.span(it.run);
    spans.push_back({"out:a4", sp});
    spans.push_back({"in:" + it.target, sp});
    spans.push_back({"all", sp});
    auto r = testing::check_invariants(*f.eng, *f.world, *f.model, it.vm, it.run);
    for (auto& v : r.violations)
      FAIL_CHECK(v);
  }
  auto p = peaks(spans);
  CHECK(p["out:a4"] <= 2);
  CHECK(p["all"] <= 3);
  for (auto& [key, n] : p)
    if (key.rfind("in:", 0) == 0)
      CHECK(n <= 1);
  // The limits were used, not just respected: two at once out of a4.
  CHECK(p["out:a4"] == 2);
  CHECK(s.peak_host_out == 2);
  CHECK(s.peak_host_in == 1);
}

TEST_CASE("waves and dependencies order the runs; priorities order what may start") {
  fleet_env f;
  batch_spec b;
  b.name = "ordered";
  b.template_name = "live-precopy";
  b.limits.global = 1;
  auto vms = drain_vms();
  // Wave 0: drain-00..03 by priority (03 first); wave 1: drain-04 after drain-05.
  for (int i = 0; i < 4; ++i)
    b.items.push_back({vms[i], {}, {{"target", "a1"}}, i, 0, {}});
  b.items.push_back({vms[4], {}, {{"target", "a2"}}, 100, 1, {vms[5]}});
  b.items.push_back({vms[5], {}, {{"target", "a2"}}, 0, 1, {}});
  REQUIRE(f.eng->submit_batch(b));
  auto s = f.finish("ordered");
  CHECK(s.succeeded == 6);
  std::map<std::string, std::pair<time_ms, time_ms>> sp;
  for (auto& it : s.items)
    sp[it.vm] = f.span(it.run);
  // One at a time, highest priority first within wave 0.
  CHECK(sp[vms[3]].second <= sp[vms[2]].first);
  CHECK(sp[vms[2]].second <= sp[vms[1]].first);
  CHECK(sp[vms[1]].second <= sp[vms[0]].first);
  // Wave 1 after every run of wave 0; drain-04 (priority 100) after drain-05.
  CHECK(sp[vms[0]].second <= sp[vms[5]].first);
  CHECK(sp[vms[5]].second <= sp[vms[4]].first);
  CHECK(f.host_of(vms[4]) == "a2");
}

TEST_CASE("cross-zone runs share an inter-zone link within the batch's share") {
  fleet_env f;
  batch_spec b;
  b.name = "to-zone-c";
  b.template_name = "cross-zone";
  b.args = {{"zone", "zone-c"}};
  // Link zone-a <-> zone-c: 100 MiB/s; each run counts 60: one at a time.
  b.limits.link_share = 1;
  b.limits.run_bandwidth_mib_s = 60;
  auto vms = drain_vms();
  for (int i = 0; i < 4; ++i)
    b.items.push_back({vms[i], {}, {}, 0, 0, {}});
  auto started = f.eng->submit_batch(b);
  INFO((started ? "" : describe(started.error())));
  REQUIRE(started);
  auto s = f.finish("to-zone-c");
  CHECK(s.succeeded == 4);
  std::vector<std::pair<std::string, std::pair<time_ms, time_ms>>> spans;
  for (auto& it : s.items) {
    CHECK((it.target == "c1" || it.target == "c2"));
    CHECK(f.host_of(it.vm) == it.target);
    spans.push_back({"link", f.span(it.run)});
  }
  CHECK(peaks(spans)["link"] == 1);
}

TEST_CASE("a zone limit holds across the runs touching the zone") {
  fleet_env f;
  batch_spec b;
  b.name = "zoned";
  b.template_name = "live-precopy";
  b.limits.zone = 1;
  auto vms = drain_vms();
  for (int i = 0; i < 4; ++i)
    b.items.push_back({vms[i], {}, {}, 0, 0, {}});
  REQUIRE(f.eng->submit_batch(b));
  auto s = f.finish("zoned");
  CHECK(s.succeeded == 4);
  std::vector<std::pair<std::string, std::pair<time_ms, time_ms>>> spans;
  for (auto& it : s.items)
    spans.push_back({"zone-a", f.span(it.run)});
  CHECK(peaks(spans)["zone-a"] == 1);
}

TEST_CASE("a run admitted outside the maintenance window waits in SCHEDULED for it") {
  fleet_env f;
  batch_spec b;
  b.name = "windowed";
  b.template_name = "live-precopy";
  auto now = wall_now_ms();
  // Wide enough that the runs start inside it on a slow machine too.
  b.windows.push_back({now + 1500, now + 600000});
  b.items.push_back({"drain-00", {}, {}, 0, 0, {}});
  b.items.push_back({"drain-01", {}, {}, 0, 0, {}});
  auto started = f.eng->submit_batch(b);
  REQUIRE(started);
  CHECK(started->running == 2);
  auto r = f.eng->get(batch_run_id("windowed", "drain-00"));
  REQUIRE(r);
  CHECK(r->status == run_status::scheduled);
  CHECK(r->not_before == now + 1500);
  auto s = f.finish("windowed");
  CHECK(s.succeeded == 2);
  for (auto& it : s.items)
    CHECK(f.first_start(it.run) >= now + 1500);
}

TEST_CASE("a batch whose windows have all passed starts nothing") {
  fleet_env f;
  batch_spec b;
  b.name = "too-late";
  b.template_name = "live-precopy";
  b.windows.push_back({1000, 2000});
  b.items.push_back({"drain-00", {}, {}, 0, 0, {}});
  REQUIRE(f.eng->submit_batch(b));
  auto s = f.finish("too-late");
  CHECK(s.skipped == 1);
  CHECK(s.items[0].reason == "no maintenance window left");
  CHECK(f.host_of("drain-00") == "a4");
}

TEST_CASE("a run that rolls back falls back to the batch's fallback template") {
  fleet_env f;
  f.faults->arm("precopy", batch_run_id("fallback", "drain-00"));
  batch_spec b;
  b.name = "fallback";
  b.template_name = "live-precopy";
  b.fallback_template = "reboot";
  b.items.push_back({"drain-00", {}, {{"target", "a3"}}, 0, 0, {}});
  b.items.push_back({"drain-01", {}, {{"target", "a3"}}, 0, 0, {}});
  REQUIRE(f.eng->submit_batch(b));
  auto s = f.finish("fallback");
  CHECK(s.succeeded == 2);
  auto& it = s.items[0];
  CHECK(it.fallback);
  CHECK(it.run == batch_fallback_run_id("fallback", "drain-00"));
  auto first = f.eng->get(batch_run_id("fallback", "drain-00"));
  REQUIRE(first);
  CHECK(first->status == run_status::rolled_back);
  auto second = f.eng->get(it.run);
  REQUIRE(second);
  CHECK(second->status == run_status::succeeded);
  CHECK(second->def->labels.at("template") == "reboot");
  CHECK(f.host_of("drain-00") == "a3");
  auto r = testing::check_invariants(*f.eng, *f.world, *f.model, "drain-00", it.run);
  for (auto& v : r.violations)
    FAIL_CHECK(v);
  CHECK_FALSE(s.items[1].fallback);
}

TEST_CASE("stop_on_failure skips what has not started after a failure") {
  fleet_env f;
  f.faults->arm("precopy", batch_run_id("careful", "drain-00"));
  batch_spec b;
  b.name = "careful";
  b.template_name = "live-precopy";
  b.stop_on_failure = true;
  b.limits.global = 1;
  for (auto& vm : {"drain-00", "drain-01", "drain-02"})
    b.items.push_back({vm, {}, {}, 0, 0, {}});
  b.items[0].priority = 1;
  REQUIRE(f.eng->submit_batch(b));
  auto s = f.finish("careful");
  CHECK(s.items[0].state == "rolled_back");
  CHECK(s.items[1].state == "skipped");
  CHECK(s.items[2].state == "skipped");
  CHECK(f.host_of("drain-01") == "a4");
}

TEST_CASE("cancelling a batch cancels its runs in flight and starts nothing more") {
  fleet_env f;
  batch_spec b;
  b.name = "cancelled";
  b.template_name = "live-precopy";
  b.limits.global = 1;
  // A window in the future: the first run waits in SCHEDULED, so the cancel finds it there.
  b.windows.push_back({wall_now_ms() + 600000, wall_now_ms() + 1200000});
  for (auto& vm : drain_vms())
    b.items.push_back({vm, {}, {}, 0, 0, {}});
  auto started = f.eng->submit_batch(b);
  REQUIRE(started);
  CHECK(started->running == 1);
  auto c = f.eng->cancel_batch("cancelled");
  REQUIRE(c);
  CHECK(c->cancelled);
  auto s = f.finish("cancelled");
  CHECK(s.skipped == 19);
  CHECK(s.succeeded == 0);
  auto first = std::find_if(s.items.begin(), s.items.end(),
                            [](const batch_item_status& x) { return !x.run.empty(); });
  REQUIRE(first != s.items.end());
  CHECK(first->state == "rolled_back");
  CHECK(f.world->domains("sim://zone-a/a4").size() == 20);
}

/// A template whose VM must be of type medium: its definition renders for some VMs, not for
/// others.
const char* picky_template = R"(
name: "picky"
version: 1
parameters { name: "vm" type: VM required: true }
parameters { name: "size" type: STRING from_vm: "vm.type" choices: "medium" }
migrate { tasks { task { id: "check" kind: "noop" } } }
)";

TEST_CASE("items whose definitions do not render fail with the reason, and the batch finishes") {
  fleet_env f;
  REQUIRE(f.eng->put_template(picky_template));
  batch_spec b;
  b.name = "picky";
  b.template_name = "picky";
  // db-1 renders; the 20 small VMs on a4 do not. More of them than the scheduler tries from
  // one host at a time: those it did not get to must not be left waiting for a run to end
  // (there is none). db-1 waits for drain-00, and may start once drain-00 has failed.
  b.items.push_back({"db-1", {}, {}, 0, 0, {"drain-00"}});
  for (auto& vm : drain_vms())
    b.items.push_back({vm, {}, {}, 0, 0, {}});
  REQUIRE(f.eng->submit_batch(b));
  auto s = f.finish("picky");
  CHECK(s.succeeded == 1);
  CHECK(s.failed == 20);
  REQUIRE(s.items.size() == 21);
  CHECK(s.items[0].state == "succeeded");
  for (size_t i = 1; i < s.items.size(); ++i) {
    CHECK(s.items[i].state == "failed");
    CHECK(s.items[i].run.empty());
    CHECK_THAT(s.items[i].reason, Catch::Contains("parameter \"size\": \"small\" is not one of "
                                                  "medium"));
  }
  CHECK(f.world->domains("sim://zone-a/a4").size() == 20);
}

TEST_CASE("a batch is checked before anything starts, each error naming its field") {
  fleet_env f;
  auto err = [&](const batch_spec& b) {
    auto r = f.eng->submit_batch(b);
    REQUIRE_FALSE(r);
    CHECK(code_of(r.error()) == errc::invalid_argument);
    return message_of(r.error());
  };
  batch_spec b;
  b.name = "bad";
  b.template_name = "live-precopy";
  b.items.push_back({"drain-00", {}, {}, 0, 0, {}});
  b.items.push_back({"drain-01", {}, {}, 0, 0, {}});
  auto x = b;
  x.items[1].template_name = "no-such";
  CHECK_THAT(err(x), Catch::Contains("items[1].template: no template \"no-such\""));
  x = b;
  x.items[1].vm = "ghost";
  CHECK_THAT(err(x), Catch::Contains("items[1].vm: \"ghost\" is not in the fleet"));
  x = b;
  x.items[0].args = {{"max_downtime_ms", "soon"}};
  CHECK_THAT(err(x), Catch::Contains("items[0].args:"));
  CHECK_THAT(err(x), Catch::Contains("max_downtime_ms"));
  // What the arguments make of the template's tasks is found by rendering it.
  x = b;
  x.items[1].args = {{"max_downtime_ms", "-5"}};
  CHECK_THAT(err(x), Catch::Contains("items[1].args: template \"live-precopy\": rendered "
                                     "definition: task \"precopy\": field "
                                     "\"params.max_downtime_ms\": must be between 1 and "
                                     "4294967295, got -5"));
  x = b;
  x.args = {{"time_budget_s", "0"}};
  CHECK_THAT(err(x), Catch::Contains("items[0].args: "));
  CHECK_THAT(err(x), Catch::Contains("field \"params.time_budget_s\": must be between 1"));
  REQUIRE(f.eng->put_template(picky_template));
  x = b;
  x.fallback_template = "picky";
  CHECK_THAT(err(x), Catch::Contains("items[0].args (fallback_template \"picky\"): template "
                                     "\"picky\": parameter \"size\": \"small\" is not one "
                                     "of medium"));
  x = b;
  x.items[0].after = {"drain-01"};
  x.items[1].after = {"drain-00"};
  CHECK_THAT(err(x), Catch::Contains("a cycle"));
  x = b;
  x.items[1].vm = "drain-00";
  CHECK_THAT(err(x), Catch::Contains("items[1].vm: \"drain-00\" is already items[0]"));
  x = b;
  x.fallback_template = "nope";
  CHECK_THAT(err(x), Catch::Contains("fallback_template: no template \"nope\""));
  // Nothing was kept or started.
  auto all = f.eng->list_batches();
  REQUIRE(all);
  CHECK(all->empty());
  CHECK(f.host_of("drain-00") == "a4");
  // The same batch twice is one batch; another under the same name is refused.
  b.windows.push_back({wall_now_ms() + 600000, wall_now_ms() + 700000});
  auto one = f.eng->submit_batch(b);
  REQUIRE(one);
  auto again = f.eng->submit_batch(b);
  REQUIRE(again);
  CHECK(again->created == one->created);
  auto other = b;
  other.items.pop_back();
  auto r = f.eng->submit_batch(other);
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::already_exists);
  REQUIRE(f.eng->cancel_batch("bad"));
}

TEST_CASE("a batch resumes after the engine restarts on the same journal") {
  fleet_env f{true};
  drain_request req;
  req.host = "a4";
  req.limits.global = 2;
  // Answered once its first runs are durable: they can be waited for.
  REQUIRE(f.eng->drain(req));
  // Wait until the first two runs are at rest, then stop the engine with others in flight.
  REQUIRE(f.eng->wait(batch_run_id("drain-a4", "drain-00"), 60s));
  REQUIRE(f.eng->wait(batch_run_id("drain-a4", "drain-01"), 60s));
  auto before = f.eng->get_batch("drain-a4");
  REQUIRE(before);
  CHECK(before->succeeded < 20);
  f.eng->close();
  f.eng.reset();
  f.open();
  // The same drain again (ferry drain --db run again) is the drain under way, though fewer
  // VMs are left on a4 now.
  auto again = f.eng->drain(req);
  INFO((again ? "" : describe(again.error())));
  REQUIRE(again);
  CHECK(again->name == "drain-a4");
  CHECK(again->total == 20);
  auto s = f.finish("drain-a4");
  CHECK(s.succeeded == 20);
  CHECK(f.world->domains("sim://zone-a/a4").empty());
  // Its peaks, across the restart, within the limit (loading it counted none).
  CHECK(s.peak_running <= 2);
  // Finished, it is still the same drain; with other settings it is another batch.
  auto done = f.eng->drain(req);
  REQUIRE(done);
  CHECK(done->finished);
  CHECK(done->succeeded == 20);
  auto other = req;
  other.limits.global = 3;
  auto refused = f.eng->drain(other);
  REQUIRE_FALSE(refused);
  CHECK(code_of(refused.error()) == errc::failed_precondition);
  // A VM moved to a4 since: the finished drain did not move it, so it is not that drain.
  template_args to_a4;
  to_a4["vm"] = value::of("app-1");
  to_a4["target"] = value::of("a4");
  auto def = f.eng->render_template("live-precopy", to_a4);
  REQUIRE(def);
  auto moved = f.eng->submit(*def);
  REQUIRE(moved);
  auto rest = f.eng->wait(*moved, 60s);
  REQUIRE(rest);
  REQUIRE(rest->status == run_status::succeeded);
  auto stale = f.eng->drain(req);
  REQUIRE_FALSE(stale);
  CHECK(code_of(stale.error()) == errc::already_exists);
  CHECK(message_of(stale.error())
        == "batch \"drain-a4\": a finished drain has this name, and host \"a4\" runs VMs it "
           "did not move: give this drain another name");
  auto named = req;
  named.name = "drain-a4-again";
  auto fresh = f.eng->drain(named);
  REQUIRE(fresh);
  CHECK(fresh->total == 1);
  auto last = f.finish("drain-a4-again");
  REQUIRE(last.items.size() == 1);
  INFO(last.items[0].reason);
  CHECK(last.succeeded == 1);
  std::vector<std::pair<std::string, std::pair<time_ms, time_ms>>> spans;
  for (auto& it : s.items) {
    auto r = testing::check_invariants(*f.eng, *f.world, *f.model, it.vm, it.run);
    for (auto& v : r.violations)
      FAIL_CHECK(v);
    spans.push_back({"all", f.span(it.run)});
  }
  // Across the restart too.
  CHECK(peaks(spans)["all"] <= 2);
}

TEST_CASE("a finished batch reads back after a restart and starts nothing again") {
  fleet_env f{true};
  batch_spec b;
  b.name = "past";
  b.template_name = "live-precopy";
  b.stop_on_failure = true;
  b.limits.global = 1;
  f.faults->arm("precopy", batch_run_id("past", "drain-00"));
  for (auto& vm : {"drain-00", "drain-01"})
    b.items.push_back({vm, {}, {}, 0, 0, {}});
  b.items[0].priority = 1;
  REQUIRE(f.eng->submit_batch(b));
  auto before = f.finish("past");
  CHECK(before.items[1].state == "skipped");
  f.eng->close();
  f.eng.reset();
  f.faults->disarm();
  f.open();
  auto after = f.eng->get_batch("past");
  REQUIRE(after);
  CHECK(after->finished);
  CHECK(after->items[0].state == "rolled_back");
  CHECK(after->items[1].state == "skipped");
  CHECK(after->running == 0);
  CHECK_FALSE(f.eng->get(batch_run_id("past", "drain-01")));
  CHECK(f.host_of("drain-01") == "a4");
  auto all = f.eng->list_batches();
  REQUIRE(all);
  REQUIRE(all->size() == 1);
  CHECK(all->front().name == "past");
  CHECK(all->front().items.empty());
}

TEST_CASE("a batch's peaks read back after a restart as its runs had them in the journal") {
  fleet_env f{true};
  drain_request req;
  req.host = "a4";
  req.limits.host_out = 2;
  req.limits.host_in = 1;
  req.limits.global = 3;
  REQUIRE(f.eng->drain(req));
  auto before = f.finish("drain-a4");
  REQUIRE(before.succeeded == 20);
  std::vector<std::pair<std::string, std::pair<time_ms, time_ms>>> spans;
  for (auto& it : before.items) {
    auto sp = f.span(it.run);
    spans.push_back({"all", sp});
    spans.push_back({"out:" + it.source, sp});
    spans.push_back({"in:" + it.target, sp});
  }
  auto p = peaks(spans);
  int in = 0;
  for (auto& [key, n] : p)
    if (key.rfind("in:", 0) == 0)
      in = std::max(in, n);
  f.eng->close();
  f.eng.reset();
  f.open();
  auto after = f.eng->get_batch("drain-a4");
  REQUIRE(after);
  CHECK(after->finished);
  // Before, the peaks of its loading: 1, 1 and 1.
  CHECK(after->peak_running == static_cast<uint32_t>(p["all"]));
  CHECK(after->peak_host_out == static_cast<uint32_t>(p["out:a4"]));
  CHECK(after->peak_host_in == static_cast<uint32_t>(in));
  // The limits were used, and the journal says no more than the live counts did.
  CHECK(after->peak_host_out == 2);
  CHECK(after->peak_running <= before.peak_running);
  CHECK(after->peak_host_out <= before.peak_host_out);
  CHECK(after->peak_host_in <= before.peak_host_in);
}

TEST_CASE("two batches submitted at once under one name: one is kept, the other refused") {
  fleet_env f{true};
  auto make = [](size_t n) {
    batch_spec b;
    b.name = "contested";
    b.template_name = "live-precopy";
    // In the future: nothing moves while the test looks.
    b.windows.push_back({wall_now_ms() + 600000, wall_now_ms() + 700000});
    auto vms = drain_vms();
    for (size_t i = 0; i < n; ++i)
      b.items.push_back({vms[i], {}, {}, 0, 0, {}});
    return b;
  };
  auto one = std::async(std::launch::async, [&] { return f.eng->submit_batch(make(2)); });
  auto two = std::async(std::launch::async, [&] { return f.eng->submit_batch(make(3)); });
  auto a = one.get();
  auto b = two.get();
  REQUIRE(static_cast<bool>(a) != static_cast<bool>(b));
  auto& lost = a ? b : a;
  CHECK(code_of(lost.error()) == errc::already_exists);
  auto kept = a ? *a : *b;
  // The journal keeps the one that was accepted.
  f.eng->close();
  f.eng.reset();
  f.open();
  auto back = f.eng->get_batch("contested");
  REQUIRE(back);
  CHECK(back->total == kept.total);
  REQUIRE(f.eng->cancel_batch("contested"));
}
