// The built-in migration templates (templates/builtin/) end to end on the simulated fleet of
// examples/fleet.textproto, and a failure injected at every task of every template: before
// the point of no return the run rolls back and the VM runs exactly once on its source;
// after it the run waits for an operator, and a retry finishes it with the VM running
// exactly once on the target. Either way no partition has two PRIMARY leases, the run holds
// no reservation, and the address is routed to where the VM runs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "actors/engine.hpp"
#include "actors/fleet_runtime.hpp"
#include "common/cli_numbers.hpp"
#include "fleet/fleet_codec.hpp"
#include "hypervisor/sim_world.hpp"
#include "tests/support/fault_plan.hpp"
#include "tests/support/fleet_invariants.hpp"
#include "tests/support/test_kinds.hpp"
#include "workflows/definition_codec.hpp"

using namespace ferry;
using namespace std::chrono_literals;

namespace {

const std::string source_dir = FERRY_SOURCE_DIR;

using testing::fault_plan;

struct sim_fleet {
  std::shared_ptr<hv::sim_world> world;
  fleet::model_ptr model;
  std::shared_ptr<fault_plan> faults = std::make_shared<fault_plan>();
  /// A second plan, consulted after `faults` (a task refused, another's compensation hit).
  std::shared_ptr<fault_plan> more_faults = std::make_shared<fault_plan>();
  std::shared_ptr<std::mutex> notes_mtx = std::make_shared<std::mutex>();
  std::shared_ptr<std::vector<notification>> notes = std::make_shared<std::vector<notification>>();
  std::shared_ptr<std::vector<task_progress>> progress =
    std::make_shared<std::vector<task_progress>>();
  std::unique_ptr<engine> eng;
  /// The journal's directory; empty: in memory.
  std::string journal;

  explicit sim_fleet(std::string journal_dir = {}) : journal(std::move(journal_dir)) {
    hv::sim_options so;
    so.speed = 1000; // virtual seconds per real second
    world = std::make_shared<hv::sim_world>(so);
    auto f = fleet::load_fleet_file(source_dir + "/examples/fleet.textproto");
    REQUIRE(f);
    model = *f;
    open();
  }

  /// A controller restart: the engine closes and opens again on the same journal, the
  /// simulated hosts running on.
  void reopen() {
    eng->close();
    eng.reset();
    open();
  }

  void open() {
    engine_options opts;
    opts.journal_path = journal;
    opts.threads = 2;
    opts.fleet = model;
    opts.fleet_opts.sim = world;
    opts.template_dirs = {source_dir + "/templates/builtin"};
    opts.notify = [m = notes_mtx, n = notes](const notification& x) {
      std::lock_guard<std::mutex> g{*m};
      n->push_back(x);
    };
    opts.inject_fault = [f = faults, g = more_faults](const task_call& c) {
      auto r = (*f)(c);
      return r ? r : (*g)(c);
    };
    opts.inject_lost_answer = [f = faults, g = more_faults](const task_call& c,
                                                            const task_result& r) {
      auto x = (*f)(c, r);
      return x ? x : (*g)(c, r);
    };
    opts.on_progress = [m = notes_mtx, p = progress](const task_progress& x) {
      std::lock_guard<std::mutex> g{*m};
      p->push_back(x);
    };
    auto e = engine::open(opts);
    INFO((e ? "" : describe(e.error())));
    REQUIRE(e);
    eng = std::move(*e);
  }

  definition_ptr render(const std::string& name, const template_args& args) {
    auto d = eng->render_template(name, args);
    INFO((d ? "" : describe(d.error())));
    REQUIRE(d);
    // The renderer's encoding, written directly, is protobuf's byte for byte.
    CHECK((*d)->encoded == encode_definition_with_protobuf(**d));
    return *d;
  }

  run_state run(const std::string& name, const template_args& args) {
    auto id = eng->submit(render(name, args));
    REQUIRE(id);
    auto s = eng->wait(*id, 60s);
    INFO((s ? "" : describe(s.error())));
    REQUIRE(s);
    return *s;
  }

  const std::string& output(const run_state& s, const std::string& task) {
    auto i = s.def->index_of(task);
    REQUIRE(i >= 0);
    return s.tasks[static_cast<size_t>(i)].output();
  }

  /// Every host where the VM is defined, with its status.
  std::vector<std::pair<std::string, hv::domain_info>> where(const std::string& vm) {
    std::vector<std::pair<std::string, hv::domain_info>> out;
    for (auto& h : model->hosts) {
      auto d = world->domain(h.driver, vm);
      if (d.status != hv::domain_status::absent)
        out.emplace_back(h.name, d);
    }
    return out;
  }

  /// Checks the invariants after a run came to rest and returns the host the VM runs on.
  std::string runs_once(const std::string& vm, const run_id& run) {
    auto r = testing::check_invariants(*eng, *world, *model, vm, run);
    for (auto& v : r.violations)
      FAIL_CHECK(v);
    REQUIRE(!r.host.empty());
    return r.host;
  }

  std::string host_of(const std::string& vm) {
    auto loc = eng->fleet()->locate(vm);
    REQUIRE(loc);
    return loc->host;
  }
};

template_args args(std::initializer_list<std::pair<const char*, const char*>> xs) {
  template_args a;
  for (auto& [k, v] : xs)
    a[k] = value::of(std::string{v});
  return a;
}

std::string zone_of(const fleet::model& m, const std::string& host) {
  return m.zones[m.hosts[m.find_host(host)].zone].name;
}

} // namespace

TEST_CASE("every built-in template is loaded and validated") {
  sim_fleet s;
  std::set<std::string> names;
  for (auto& t : s.eng->list_templates())
    names.insert(t->name);
  for (auto n : {"live-network-storage", "live-precopy", "reboot", "cross-zone",
                 "postcopy-storage-sync", "morph", "morph-migrate"})
    CHECK(names.count(n) == 1);
}

TEST_CASE("a number outside what a task kind takes is refused before anything is journaled") {
  sim_fleet s;
  // A negative downtime or a zero budget used to reach the copy as a wrapped 32-bit number.
  struct {
    const char* name;
    double n;
    const char* refusal;
  } cases[] = {
    {"max_downtime_ms", -5, "must be between 1 and 4294967295, got -5"},
    {"max_downtime_ms", 1e10, "must be between 1 and 4294967295, got 10000000000"},
    {"time_budget_s", 0, "must be between 1 and 4294967295, got 0"},
    {"bandwidth_mib_s", -1, "must be between 0 and 9007199254740991, got -1"},
  };
  for (auto& c : cases) {
    auto a = args({{"vm", "web-1"}});
    a[c.name] = value::of(c.n);
    auto d = s.eng->render_template("live-precopy", a);
    REQUIRE(!d);
    CHECK(code_of(d.error()) == errc::invalid_argument);
    CHECK_THAT(message_of(d.error()), Catch::Contains("task \"precopy\": field \"params."
                                                      + std::string{c.name} + "\": "
                                                      + c.refusal));
  }
  auto def = s.eng->load(R"({"name": "shrink", "tasks": [{"id": "cpus", "kind": "vm.set_vcpus",
      "params": {"vm": "web-1", "host": "a1", "vcpus": 0}}]})");
  REQUIRE(!def);
  CHECK_THAT(message_of(def.error()),
             Catch::Contains("task \"cpus\": field \"params.vcpus\": must be between 1 and "
                             "4294967295, got 0"));
  auto runs = s.eng->list();
  REQUIRE(runs);
  CHECK(runs->empty());
  // In range, the same parameters render.
  auto a = args({{"vm", "web-1"}});
  a["max_downtime_ms"] = value::of(1.0);
  a["time_budget_s"] = value::of(4294967295.0);
  a["bandwidth_mib_s"] = value::of(0.0);
  CHECK(s.eng->render_template("live-precopy", a));
}

TEST_CASE("live migration with network storage flips the leases and resumes on the target") {
  sim_fleet s;
  auto r = s.run("live-network-storage", args({{"vm", "web-1"}}));
  INFO(r.reason);
  REQUIRE(r.status == run_status::succeeded);
  auto host = s.runs_once("web-1", r.id);
  CHECK(host != "a1");
  CHECK(zone_of(*s.model, host) == "zone-a");
  CHECK(s.output(r, "reserve") == host);
  CHECK_THAT(s.output(r, "precopy"), Catch::Contains("\"downtime_ms\":"));
  auto snap = s.eng->fleet()->snapshot();
  REQUIRE(snap);
  // a1's DEACTIVATED lease was retired once web-1's copy there was destroyed.
  for (auto& l : snap->leases)
    if (l.partition.rfind("vol-web", 0) == 0) {
      CHECK(l.table.state_of("a1") == fleet::lease_state::none);
      CHECK(l.table.state_of(host) == fleet::lease_state::primary);
    }
  CHECK(s.output(r, "retire-0") == std::to_string(snap->leases[0].table.epoch));
  CHECK(r.tasks[static_cast<size_t>(r.def->index_of("retire-1"))].finished
        <= r.tasks[static_cast<size_t>(r.def->index_of("notify"))].started);
  CHECK(r.tasks[static_cast<size_t>(r.def->index_of("destroy_source"))].finished
        <= r.tasks[static_cast<size_t>(r.def->index_of("retire-0"))].started);
  std::lock_guard<std::mutex> g{*s.notes_mtx};
  REQUIRE(s.notes->size() == 1);
  CHECK(s.notes->at(0).event == "migrated");
  CHECK(s.notes->at(0).message == "web-1: a1 -> " + host);
}

TEST_CASE("live pre-copy forwards packets and moves the address with the VM") {
  sim_fleet s;
  auto r = s.run("live-precopy", args({{"vm", "web-2"}, {"target", "a3"}}));
  INFO(r.reason);
  REQUIRE(r.status == run_status::succeeded);
  CHECK(s.runs_once("web-2", r.id) == "a3");
  CHECK(s.output(r, "forward").empty());
}

TEST_CASE("a migration's copy reports its progress to the embedding application") {
  sim_fleet s;
  auto r = s.run("live-precopy", args({{"vm", "web-2"}, {"target", "a3"}}));
  REQUIRE(r.status == run_status::succeeded);
  std::lock_guard<std::mutex> g{*s.notes_mtx};
  REQUIRE_FALSE(s.progress->empty());
  uint64_t last_elapsed = 0;
  for (auto& p : *s.progress) {
    CHECK(p.run == r.id);
    CHECK(p.task == "precopy");
    CHECK(p.attempt == 1);
    CHECK(p.processed_bytes <= p.total_bytes);
    CHECK(p.iteration >= 1);
    CHECK(p.elapsed_ms >= last_elapsed);
    last_elapsed = p.elapsed_ms;
  }
  CHECK(s.progress->back().processed_bytes > 0);
}

TEST_CASE("live pre-copy is cancelled early when it is predicted to fail; the VM runs on") {
  sim_fleet s;
  // web-1 dirties 20 MiB/s; capped at 21 MiB/s the copy would take its 30 passes and fail.
  auto a = args({{"vm", "web-1"}});
  a["bandwidth_mib_s"] = value::of(21);
  auto r = s.run("live-precopy", a);
  CHECK(r.status == run_status::rolled_back);
  CHECK_THAT(r.reason, Catch::Contains("predicted to fail"));
  CHECK_THAT(r.reason, Catch::Contains("dirty rate 20 MiB/s"));
  CHECK(s.runs_once("web-1", r.id) == "a1");
  auto m = s.world->metrics();
  CHECK(m.migrations_cancelled == 1);
  CHECK(m.migrations_failed == 0);

  // Or when it would not finish within the time budget.
  auto b = args({{"vm", "web-2"}});
  b["bandwidth_mib_s"] = value::of(30);
  b["time_budget_s"] = value::of(100);
  auto slow = s.run("live-precopy", b);
  CHECK(slow.status == run_status::rolled_back);
  CHECK_THAT(slow.reason, Catch::Contains("over the budget of 100 s"));
  CHECK(s.runs_once("web-2", slow.id) == "a2");
}

TEST_CASE("a copy the hypervisor finds cannot converge fails at once; the VM runs on") {
  sim_fleet s;
  // batch-1 dirties 1500 MiB/s; a host's NIC sends 1192 MiB/s.
  auto r = s.run("live-precopy", args({{"vm", "batch-1"}}));
  CHECK(r.status == run_status::rolled_back);
  CHECK_THAT(r.reason, Catch::Contains("does not converge"));
  CHECK(s.runs_once("batch-1", r.id) == "b1");
}

TEST_CASE("reboot migration stops, flips and boots the VM on the target") {
  sim_fleet s;
  auto r = s.run("reboot", args({{"vm", "web-1"}, {"target", "a2"}}));
  INFO(r.reason);
  REQUIRE(r.status == run_status::succeeded);
  CHECK(s.runs_once("web-1", r.id) == "a2");
}

TEST_CASE("cross-zone migration moves the volumes over the compressed path and the address") {
  sim_fleet s;
  auto r = s.run("cross-zone", args({{"vm", "web-1"}, {"zone", "zone-c"}}));
  INFO(r.reason);
  REQUIRE(r.status == run_status::succeeded);
  auto host = s.runs_once("web-1", r.id);
  CHECK(zone_of(*s.model, host) == "zone-c");
  CHECK(s.output(r, "admit") == "zone-c");
  // zone-a to zone-c: 100 MiB/s direct, 300 MiB/s compressed.
  CHECK_THAT(s.output(r, "move_volume-0"), Catch::Contains("\"path\":\"compressed\""));
}

TEST_CASE("cross-zone migration to a recommended zone") {
  sim_fleet s;
  auto r = s.run("cross-zone", args({{"vm", "web-2"}}));
  INFO(r.reason);
  REQUIRE(r.status == run_status::succeeded);
  auto host = s.runs_once("web-2", r.id);
  CHECK(zone_of(*s.model, host) != "zone-a");
  CHECK(zone_of(*s.model, host) == s.output(r, "admit"));
}

TEST_CASE("a cross-zone move that would not converge is denied with the reason") {
  sim_fleet s;
  auto r = s.run("cross-zone", args({{"vm", "batch-1"}, {"zone", "zone-c"}}));
  CHECK(r.status == run_status::rolled_back);
  CHECK_THAT(r.reason, Catch::Contains("denied"));
  CHECK_THAT(r.reason, Catch::Contains("converge"));
  CHECK(s.runs_once("batch-1", r.id) == "b1");
  CHECK(s.world->metrics().migrations_started == 0);
}

TEST_CASE("post-copy storage sync switches first and releases the source after the sync") {
  sim_fleet s;
  auto r = s.run("postcopy-storage-sync", args({{"vm", "db-1"}, {"target", "a3"}}));
  INFO(r.reason);
  REQUIRE(r.status == run_status::succeeded);
  CHECK(s.runs_once("db-1", r.id) == "a3");
  CHECK_THAT(s.output(r, "sync-0"), Catch::Contains("\"wire_bytes\":53687091200"));
  auto at = [&](const char* t) { return r.tasks[static_cast<size_t>(r.def->index_of(t))]; };
  CHECK(at("snapshot-0").finished <= at("precopy").started);
  CHECK(at("resume").finished <= at("sync-0").started);
  CHECK(at("sync-0").finished <= at("destroy_source").started);
}

TEST_CASE("a local disk's sync and a volume's move report their progress as the copy does") {
  sim_fleet s;
  auto r = s.run("postcopy-storage-sync", args({{"vm", "db-1"}, {"target", "a3"}}));
  REQUIRE(r.status == run_status::succeeded);
  auto v = s.run("cross-zone", args({{"vm", "web-1"}, {"zone", "zone-c"}}));
  REQUIRE(v.status == run_status::succeeded);
  std::lock_guard<std::mutex> g{*s.notes_mtx};
  std::map<std::string, std::vector<task_progress>> by_task;
  for (auto& p : *s.progress)
    by_task[p.task].push_back(p);
  for (auto task : {"sync-0", "move_volume-0"}) {
    INFO(task);
    auto& ps = by_task[task];
    REQUIRE(ps.size() == 8); // every tenth of the copy, up to 80%
    for (size_t i = 0; i < ps.size(); ++i) {
      CHECK(ps[i].total_bytes > 0);
      CHECK(ps[i].processed_bytes == ps[i].total_bytes / 10 * (i + 1));
      CHECK(ps[i].processed_bytes + ps[i].remaining_bytes == ps[i].total_bytes);
    }
  }
  CHECK(by_task["sync-0"].front().total_bytes == 53687091200ULL);
}

TEST_CASE("morph in place follows the agent's capabilities") {
  sim_fleet s;
  auto r = s.run("morph", args({{"vm", "web-1"}, {"type", "medium"}}));
  INFO(r.reason);
  REQUIRE(r.status == run_status::succeeded);
  CHECK(s.runs_once("web-1", r.id) == "a1");
  auto d = s.world->domain("sim://zone-a/a1", "web-1");
  CHECK(d.vcpus == 4);
  CHECK(d.memory_mib == 8192);
  auto loc = s.eng->fleet()->locate("web-1");
  REQUIRE(loc);
  CHECK(loc->type == "medium");
  CHECK_THAT(s.output(r, "detect"), Catch::Contains("\"cpu_hotplug\":true"));

  // web-2 has no agent: no live change is safe, the run rolls back untouched.
  auto no = s.run("morph", args({{"vm", "web-2"}, {"type", "medium"}}));
  CHECK(no.status == run_status::rolled_back);
  CHECK_THAT(no.reason, Catch::Contains("did not report CPU hot-plug"));
  CHECK(s.world->domain("sim://zone-a/a2", "web-2").vcpus == 2);
  CHECK(s.runs_once("web-2", no.id) == "a2");
}

TEST_CASE("morph with a host change migrates, then resizes on the target") {
  sim_fleet s;
  auto r = s.run("morph-migrate", args({{"vm", "web-1"}, {"type", "medium"}}));
  INFO(r.reason);
  REQUIRE(r.status == run_status::succeeded);
  auto host = s.runs_once("web-1", r.id);
  CHECK(host != "a1");
  auto d = s.world->domain(s.model->hosts[s.model->find_host(host)].driver, "web-1");
  CHECK(d.vcpus == 4);
  CHECK(s.eng->fleet()->locate("web-1")->type == "medium");
}

TEST_CASE("a morph the guest cannot take live is refused before anything moves") {
  sim_fleet s;
  // db-1's agent reported no CPU unplug: large -> medium cannot be taken live. Before, the
  // check came with the resize after the migration, past the point of no return: the run
  // waited for an operator with db-1 moved to a3 and still large.
  auto r = s.run("morph-migrate", args({{"vm", "db-1"}, {"type", "medium"}, {"target", "a3"}}));
  CHECK(r.status == run_status::rolled_back);
  CHECK_FALSE(r.passed_point_of_no_return);
  CHECK_THAT(r.reason, Catch::Contains("task \"check_vcpus\"")
                         && Catch::Contains("its agent did not report CPU unplug"));
  CHECK(s.runs_once("db-1", r.id) == "a2");
  CHECK(s.world->metrics().migrations_started == 0);
  CHECK(s.world->domain("sim://zone-a/a2", "db-1").vcpus == 8);
  // In place too: refused before any change.
  auto in_place = s.run("morph", args({{"vm", "db-1"}, {"type", "medium"}}));
  CHECK(in_place.status == run_status::rolled_back);
  CHECK_FALSE(in_place.passed_point_of_no_return);
  CHECK(s.world->domain("sim://zone-a/a2", "db-1").vcpus == 8);
}

// -- failure at every task ----------------------------------------------------------------

namespace {

struct scenario {
  const char* name;
  template_args args;
};

std::vector<scenario> scenarios() {
  return {
    {"live-network-storage", args({{"vm", "web-1"}, {"target", "a3"}})},
    {"live-precopy", args({{"vm", "web-1"}, {"target", "a3"}})},
    {"reboot", args({{"vm", "web-1"}, {"target", "a3"}})},
    {"cross-zone", args({{"vm", "web-1"}, {"zone", "zone-b"}})},
    {"postcopy-storage-sync", args({{"vm", "db-1"}, {"target", "a3"}})},
    {"morph", args({{"vm", "web-1"}, {"type", "medium"}})},
    {"morph-migrate", args({{"vm", "web-1"}, {"type", "medium"}, {"target", "a3"}})},
  };
}

/// The second leg of a round trip: the same template, back to the host the VM came from.
template_args back_to(const scenario& sc, const std::string& source) {
  auto a = sc.args;
  a["target"] = value::of(source);
  if (std::string{sc.name} == "cross-zone")
    a["zone"] = value::of(std::string{"zone-a"});
  if (std::string{sc.name} == "morph-migrate")
    a["type"] = value::of(std::string{"large"}); // web-1's agent grows it, never shrinks it
  return a;
}

/// A task that every point-of-no-return task depends on (so it fails before any of them).
bool before_every_pnr(const definition& d, uint32_t task) {
  auto& deps = d.tasks[task].transitive_dependents;
  for (uint32_t i = 0; i < d.tasks.size(); ++i)
    if (d.tasks[i].point_of_no_return && !std::binary_search(deps.begin(), deps.end(), i))
      return false;
  return true;
}

} // namespace

TEST_CASE("every built-in template that moves a VM can move it back to the host it left") {
  for (auto& sc : scenarios()) {
    if (std::string{sc.name} == "morph")
      continue; // stays on its host
    DYNAMIC_SECTION(sc.name) {
      sim_fleet s;
      auto vm = sc.args.at("vm").s;
      auto source = s.host_of(vm);
      // The lease tables of the VM's partitions.
      auto tables = [&] {
        std::map<std::string, fleet::lease_table> out;
        auto snap = s.eng->fleet()->snapshot();
        REQUIRE(snap);
        auto& m = *s.model;
        for (auto vol : m.vms[m.find_vm(vm)].volumes)
          for (auto part : m.volumes[vol].partitions)
            for (auto& l : snap->leases)
              if (l.partition == m.partitions[part].name)
                out[l.partition] = l.table;
        return out;
      };
      // Only the host the VM runs on holds a lease: PRIMARY.
      auto only_primary_on = [&](const std::string& host) {
        auto t = tables();
        CHECK(!t.empty());
        for (auto& [p, table] : t) {
          INFO(p);
          REQUIRE(table.leases.size() == 1);
          CHECK(table.leases[0].host == host);
          CHECK(table.leases[0].state == fleet::lease_state::primary);
        }
        return t;
      };
      auto before = only_primary_on(source);
      auto out = s.run(sc.name, sc.args);
      INFO(out.reason);
      REQUIRE(out.status == run_status::succeeded);
      auto there = s.runs_once(vm, out.id);
      REQUIRE(there != source);
      only_primary_on(there); // the source's DEACTIVATED lease was retired
      auto back = s.run(sc.name, back_to(sc, source));
      INFO(back.reason);
      REQUIRE(back.status == run_status::succeeded);
      CHECK(s.runs_once(vm, back.id) == source);
      // Back under a new epoch: I/O issued under the lease it held before it left stays
      // fenced.
      for (auto& [p, table] : only_primary_on(source)) {
        INFO(p);
        CHECK(table.leases[0].epoch > before[p].leases[0].epoch);
      }
    }
  }
}

TEST_CASE("a move to the host the VM runs on is refused at its reservation; the VM runs on") {
  sim_fleet s;
  for (auto name : {"live-precopy", "live-network-storage", "reboot"}) {
    INFO(name);
    auto r = s.run(name, args({{"vm", "web-1"}, {"target", "a1"}}));
    CHECK(r.status == run_status::rolled_back);
    CHECK_THAT(r.reason, Catch::Contains("host \"a1\" is the one web-1 leaves (\"exclude\"): a "
                                         "move needs another target"));
    CHECK(s.runs_once("web-1", r.id) == "a1");
  }
}

TEST_CASE("two runs submitted at once for one VM: one moves it, the other is refused at its "
          "reservation, and the VM runs exactly once") {
  sim_fleet s;
  std::string at = "a1";
  for (auto target : {"a2", "a3", "a2"}) {
    INFO(target);
    auto def = s.render("live-precopy", args({{"vm", "web-1"}, {"target", target}}));
    auto a = s.eng->submit(def);
    submit_options second;
    second.id = "second-" + std::string{target} + "-from-" + at;
    auto b = s.eng->submit(def, second);
    REQUIRE(a);
    REQUIRE(b);
    auto ra = s.eng->wait(*a, 60s);
    auto rb = s.eng->wait(*b, 60s);
    REQUIRE(ra);
    REQUIRE(rb);
    auto moved = ra->status == run_status::succeeded ? *ra : *rb;
    auto refused = ra->status == run_status::succeeded ? *rb : *ra;
    INFO(refused.reason);
    REQUIRE(moved.status == run_status::succeeded);
    CHECK(refused.status == run_status::rolled_back);
    CHECK_THAT(refused.reason,
               Catch::Contains("task \"reserve\"")
                 && Catch::Contains("is being moved by another run"));
    CHECK(s.runs_once("web-1", refused.id) == target);
    at = target;
  }
}

TEST_CASE("a run rendered before another run moved its VM is refused at its reservation") {
  sim_fleet s;
  // Rendered while web-2 runs on a2: its source is a2.
  auto stale = s.render("live-precopy", args({{"vm", "web-2"}, {"target", "a1"}}));
  auto moved = s.run("live-precopy", args({{"vm", "web-2"}, {"target", "a3"}}));
  REQUIRE(moved.status == run_status::succeeded);
  // Before, the stale run could move the copy left on a2 while the first run's cleanup had
  // not destroyed it yet, and the VM ran twice.
  auto id = s.eng->submit(stale);
  REQUIRE(id);
  auto r = s.eng->wait(*id, 60s);
  REQUIRE(r);
  CHECK(r->status == run_status::rolled_back);
  CHECK_THAT(r->reason, Catch::Contains("VM \"web-2\" runs on a3, not on a2 (the run's source): "
                                        "another run moved it since this one was rendered"));
  CHECK(s.runs_once("web-2", *id) == "a3");
}

TEST_CASE("a VM held by a run that waits for an operator is refused to any other run, also "
          "after a restart, until that run ends") {
  test::temp_dir dir;
  sim_fleet s{dir.file("journal")};
  // The first run fails past its point of no return: it waits for an operator, and its
  // reservation holds web-1.
  s.faults->arm("resume");
  auto first = s.eng->submit(s.render("live-precopy", args({{"vm", "web-1"}, {"target", "a3"}})));
  REQUIRE(first);
  auto r = s.eng->wait(*first, 60s);
  REQUIRE(r);
  REQUIRE(r->status == run_status::failed);
  s.faults->disarm();
  auto refused = [&] {
    auto other = s.run("live-precopy", args({{"vm", "web-1"}, {"target", "a2"}}));
    CHECK(other.status == run_status::rolled_back);
    CHECK_THAT(other.reason, Catch::Contains("VM \"web-1\" is being moved by another run: it "
                                             "holds reservation \"" + *first + "/web-1\""));
    // Refused before anything else ran.
    for (size_t i = 0; i < other.tasks.size(); ++i)
      if (other.def->tasks[i].id != "reserve")
        CHECK(other.tasks[i].attempt == 0);
    CHECK(s.world->domain("sim://zone-a/a2", "web-1").status == hv::domain_status::absent);
  };
  refused();
  // The hold is durable: after a restart, the reservation in the journal holds web-1.
  s.reopen();
  refused();
  // The operator retries: the first run finishes, and web-1 may move again (back to a1).
  auto ack = s.eng->retry(*first, "resume");
  INFO((ack ? "" : describe(ack.error())));
  REQUIRE(ack);
  auto done = s.eng->wait(*first, 60s);
  REQUIRE(done);
  REQUIRE(done->status == run_status::succeeded);
  CHECK(s.runs_once("web-1", *first) == "a3");
  auto back = s.run("live-precopy", args({{"vm", "web-1"}, {"target", "a1"}}));
  INFO(back.reason);
  CHECK(back.status == run_status::succeeded);
  CHECK(s.runs_once("web-1", back.id) == "a1");
}

namespace {

/// The seeds of the random tests: 1 to 10, or FIRST to LAST with
/// FERRY_RANDOM_SEEDS=FIRST-LAST, for a longer search. Each is a whole number in decimal
/// digits, as the command-line options take them (common/cli_numbers.hpp).
std::pair<uint32_t, uint32_t> random_seeds() {
  const char* s = std::getenv("FERRY_RANDOM_SEEDS");
  if (s == nullptr)
    return {1, 10};
  std::string text = s;
  auto dash = text.find('-');
  if (dash == std::string::npos)
    FAIL("FERRY_RANDOM_SEEDS=\"" << text << "\": expected FIRST-LAST");
  auto seed = [&](std::string x, uint64_t min, const char* which) {
    if (auto err = whole_number(min, 1000000000)(x); !err.empty())
      FAIL("FERRY_RANDOM_SEEDS=\"" << text << "\": " << which << " " << err);
    return static_cast<uint32_t>(std::stoul(x));
  };
  auto first = seed(text.substr(0, dash), 1, "FIRST");
  auto last = seed(text.substr(dash + 1), first, "LAST");
  return {first, last};
}

/// Random moves of the VMs of examples/fleet.textproto: any built-in template, any target
/// (none, in the VM's zone or not), any type, so that runs meet on the same VMs and hosts.
struct random_moves {
  const std::vector<const char*> vms{"web-1", "web-2", "db-1"};
  std::mt19937 rng;

  explicit random_moves(uint32_t seed) : rng(seed) {
  }

  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[rng() % v.size()];
  }

  /// Submits `n` random runs at once; returns the ids of those the renderer took (a target in
  /// another zone, say, is refused as rendered and starts nothing).
  std::vector<run_id> submit(engine& eng, int n) {
    static const std::vector<const char*> templates{
      "live-precopy", "live-network-storage", "reboot", "cross-zone", "postcopy-storage-sync",
      "morph", "morph-migrate"};
    static const std::vector<const char*> hosts{"", "a1", "a2", "a3", "b1", "b2"};
    static const std::vector<const char*> types{"small", "medium", "large"};
    std::vector<run_id> ids;
    for (int k = 0; k < n; ++k) {
      std::string name = pick(templates);
      template_args a = args({{"vm", pick(vms)}});
      std::string host = pick(hosts);
      if (name == "cross-zone")
        a["zone"] = value::of(std::string{rng() % 2 ? "zone-b" : "zone-a"});
      else if (!host.empty() && name != "morph")
        a["target"] = value::of(host);
      if (name == "morph" || name == "morph-migrate")
        a["type"] = value::of(std::string{pick(types)});
      auto d = eng.render_template(name, a);
      if (!d)
        continue;
      auto id = eng.submit(*d);
      REQUIRE(id);
      ids.push_back(*id);
    }
    return ids;
  }

  /// Every run of `ids` comes to rest for good (none waits for an operator), then check().
  void settle(sim_fleet& s, const std::vector<run_id>& ids) const {
    for (auto& id : ids) {
      auto r = s.eng->wait(id, 120s);
      REQUIRE(r);
      INFO(id << ": " << to_string(r->status) << ": " << r->reason);
      CHECK(is_terminal(r->status));
    }
    check(s);
  }

  /// Every VM runs exactly once, with its leases, address and reservations in order.
  void check(sim_fleet& s) const {
    for (auto vm : vms) {
      INFO(vm);
      auto rep = testing::check_invariants(*s.eng, *s.world, *s.model, vm, "no-run");
      for (auto& v : rep.violations)
        FAIL_CHECK(v);
    }
  }
};

} // namespace

TEST_CASE("random runs of every built-in template, many at once on the same VMs, leave every "
          "VM running exactly once") {
  sim_fleet s;
  random_moves moves{7};
  size_t succeeded = 0, refused = 0;
  for (int round = 0; round < 12; ++round) {
    auto ids = moves.submit(*s.eng, 5);
    for (auto& id : ids) {
      auto r = s.eng->wait(id, 120s);
      REQUIRE(r);
      INFO(id << ": " << to_string(r->status) << ": " << r->reason);
      REQUIRE(is_terminal(r->status));
      (r->status == run_status::succeeded ? succeeded : refused)++;
    }
    INFO("round " << round);
    moves.check(s);
  }
  CHECK(succeeded > 10);
  CHECK(refused > 10);
}

TEST_CASE("random runs with failures, lost answers and controller restarts: every run ends, "
          "and every VM runs exactly once") {
  // Before, past and at the point of no return, in the fleet, the hypervisor and the cleanup.
  const std::vector<const char*> faults{"check_vcpus", "reserve", "provision", "standby-0",
                                        "forward", "move_volume-0", "precopy", "flip-0",
                                        "resume", "vcpus", "memory", "sync-0", "adopt",
                                        "move_address", "destroy_source", "retire-0", "notify"};
  const std::vector<const char*> undone{"reserve", "provision", "standby-0", "forward",
                                        "move_volume-0", "precopy"};
  size_t restarts = 0, retried = 0, undo_lost = 0;
  const auto [first, last] = random_seeds();
  for (uint32_t seed = first; seed <= last; ++seed) {
    test::temp_dir dir;
    sim_fleet s{dir.file("journal")};
    random_moves moves{seed};
    for (int round = 0; round < 6; ++round) {
      // Before the task acts, or after, its answer lost (in its first 3 attempts).
      s.faults->after = moves.rng() % 2 == 0;
      s.faults->attempts = s.faults->after ? 3 : 0;
      s.faults->arm(moves.pick(faults));
      // And a compensation that acts and loses its answer at its first 2 attempts.
      s.more_faults->compensation = true;
      s.more_faults->after = true;
      s.more_faults->attempts = 2;
      s.more_faults->arm(moves.pick(undone));
      auto ids = moves.submit(*s.eng, 4);
      // A controller restart while the runs are in flight, their calls answered by a
      // simulator that runs on meanwhile.
      if (moves.rng() % 3 == 0) {
        s.reopen();
        ++restarts;
      }
      // Every run comes to rest, the fault armed; then the operator retries, the fault gone,
      // the task of each run that failed past its point of no return.
      std::vector<run_id> waiting;
      for (auto& id : ids) {
        auto r = s.eng->wait(id, 120s);
        REQUIRE(r);
        if (r->status == run_status::failed)
          waiting.push_back(id);
      }
      s.faults->disarm();
      s.more_faults->disarm();
      for (auto& id : waiting)
        for (int tries = 0; tries < 3; ++tries) {
          auto r = s.eng->wait(id, 120s);
          REQUIRE(r);
          if (r->status != run_status::failed)
            break;
          for (size_t i = 0; i < r->tasks.size(); ++i)
            if (r->tasks[i].status == task_status::failed
                || r->tasks[i].status == task_status::compensation_failed) {
              auto ack = s.eng->retry(id, r->def->tasks[i].id);
              INFO((ack ? "" : describe(ack.error())));
              CHECK(ack);
              ++retried;
            }
        }
      INFO("seed " << seed << ", round " << round);
      moves.settle(s, ids);
      undo_lost += s.more_faults->taken;
      s.more_faults->taken = 0;
    }
  }
  // Over 10 seeds (the default) or more, each kind of trouble came often enough.
  if (last - first + 1 >= 10) {
    CHECK(restarts > 5);
    CHECK(retried > 5);
    CHECK(undo_lost > 5);
  }
}

TEST_CASE("random runs cancelled at random moments all come to rest, and every VM runs "
          "exactly once") {
  // A cancel may come before, during or after a point of no return. One that comes while a
  // point-of-no-return task runs, which then succeeds, rolls the run forward: before, the run
  // stopped FAILED with no task to retry, the VM half moved.
  size_t cancelled = 0;
  const auto [first, last] = random_seeds();
  for (uint32_t seed = first; seed <= last; ++seed) {
    sim_fleet s;
    random_moves moves{seed};
    for (int round = 0; round < 6; ++round) {
      auto ids = moves.submit(*s.eng, 5);
      for (auto& id : ids)
        if (moves.rng() % 2) {
          // A moment into the run: a few thousand yields at most.
          for (auto n = moves.rng() % 2000; n > 0; --n)
            std::this_thread::yield();
          if (s.eng->cancel(id))
            ++cancelled;
        }
      INFO("seed " << seed << ", round " << round);
      moves.settle(s, ids);
    }
  }
  CHECK(cancelled > 0);
}

TEST_CASE("an engine closed while a migration runs in a simulator that outlives it: the "
          "migration's end reaches nothing, and the run resumes on the next open") {
  test::temp_dir dir;
  sim_fleet s{dir.file("journal")};
  // 4 GiB at 32 MiB/s, the guest dirtying 20 MiB/s: about 340 virtual seconds, a third of
  // a second of real time.
  auto a = args({{"vm", "web-1"}, {"target", "a3"}});
  a["bandwidth_mib_s"] = value::of(32);
  a["time_budget_s"] = value::of(100000);
  auto id = s.eng->submit(s.render("live-precopy", a));
  REQUIRE(id);
  auto until = [&](auto pred) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!pred() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    return pred();
  };
  REQUIRE(until([&] { return s.world->metrics().migrations_started == 1; }));
  s.eng->close();
  s.eng.reset();
  auto reported = [&] {
    std::lock_guard<std::mutex> g{*s.notes_mtx};
    return s.progress->size();
  };
  auto at_close = reported();
  // The copy ends in the simulator; its answer (the migration slots given back, the
  // metrics, the task's result) finds the engine gone. Before, it sent into the destroyed
  // actor system and wrote into freed memory.
  REQUIRE(until([&] { return s.world->metrics().migrations_active == 0; }));
  auto m = s.world->metrics();
  INFO("finished " << m.migrations_finished << ", failed " << m.migrations_failed
                   << ", cancelled " << m.migrations_cancelled);
  CHECK(m.migrations_finished == 1);
  // Nothing reached the application either once the engine was closed: the copy's passes
  // after that reported no progress.
  CHECK(reported() == at_close);
  s.open();
  auto r = s.eng->wait(*id, 60s);
  REQUIRE(r);
  INFO(r->reason);
  CHECK(r->status == run_status::succeeded);
  CHECK(s.runs_once("web-1", *id) == "a3");
}

TEST_CASE("a failure at every task of every built-in template rolls back or waits for an "
          "operator, and the VM runs exactly once") {
  // Refused (aborted): the task did nothing. In doubt (unavailable, as when the connection
  // drops): the rollback undoes it too, and a point of no return in doubt waits for an
  // operator. In doubt, the task did nothing, so undoing it must be harmless then; with its
  // answer lost, it acted at every attempt, so every retry, and the operator's, must find
  // what it did instead of failing or doing it twice.
  for (auto& sc : scenarios()) {
    std::vector<std::string> ids;
    {
      sim_fleet probe;
      auto d = probe.render(sc.name, sc.args);
      for (auto& t : d->tasks)
        ids.push_back(t.id);
    }
    for (auto& id : ids)
      for (auto mode : {"refused", "in doubt", "answer lost"}) {
        DYNAMIC_SECTION(sc.name << ": " << mode << " at " << id) {
          // A journal on disk: the fleet the journal keeps is checked after a restart too.
          test::temp_dir dir;
          sim_fleet s{dir.file("journal")};
          auto vm = sc.args.at("vm").s;
          auto source = s.host_of(vm);
          auto def = s.render(sc.name, sc.args);
          auto task = static_cast<uint32_t>(def->index_of(id));
          auto code = std::string{mode} == "refused" ? errc::aborted : errc::unavailable;
          s.faults->code = code;
          if (std::string{mode} == "answer lost") {
            // Most tasks make 3 attempts: they fail for good. One that makes more (a
            // storage sync) learns at its 4th what the others did, and the run succeeds.
            s.faults->after = true;
            s.faults->attempts = 3;
          }
          s.faults->arm(id);
          auto run = s.eng->submit(def);
          REQUIRE(run);
          auto r = s.eng->wait(*run, 60s);
          REQUIRE(r);
          INFO(r->reason);
          // Where the VM must end: moved, unless the run rolled back.
          auto moved = [&] {
            auto host = s.runs_once(vm, *run);
            if (std::string{sc.name} != "morph")
              CHECK(host != source);
          };
          if (s.faults->after && def->tasks[task].retry.max_attempts > 3) {
            REQUIRE(r->status == run_status::succeeded);
            CHECK(r->tasks[task].attempt == 4);
            moved();
          } else if (before_every_pnr(*def, task)) {
            REQUIRE(r->status == run_status::rolled_back);
          }
          if (r->status == run_status::rolled_back) {
            CHECK(s.runs_once(vm, *run) == source);
          } else if (r->status != run_status::succeeded) {
            // Past the point of no return, or at one in doubt: it waits for an operator, who
            // retries the task.
            REQUIRE(r->status == run_status::failed);
            CHECK((r->passed_point_of_no_return
                   || (code == errc::unavailable && def->tasks[task].point_of_no_return)));
            s.faults->disarm();
            auto ack = s.eng->retry(*run, id);
            INFO((ack ? "" : describe(ack.error())));
            REQUIRE(ack);
            auto again = s.eng->wait(*run, 60s);
            REQUIRE(again);
            INFO(again->reason);
            REQUIRE(again->status == run_status::succeeded);
            moved();
          }
          // What the fleet's actors did is in the journal, even what a lost answer carried.
          auto before = s.host_of(vm);
          s.reopen();
          CHECK(s.runs_once(vm, *run) == before);
        }
      }
  }
}

TEST_CASE("a compensation whose answer is lost at its first attempts: its retry finds what "
          "they did, the rollback ends, and the journal keeps the fleet as it is") {
  // A task is refused before every point of no return, so the run rolls back; the
  // compensation of a task it depends on acts at each of its first 2 attempts and is told it
  // failed (unavailable). Its 3rd must find what they did: a reservation given back, a
  // standby lease disconnected, a route moved, a copy destroyed or handed back. And what the
  // fleet's actors did must reach the journal, although the first answers carrying it were
  // lost: a restart on the journal finds the fleet as it is.
  size_t cases = 0;
  for (auto& sc : scenarios()) {
    definition_ptr def;
    {
      sim_fleet probe;
      def = probe.render(sc.name, sc.args);
    }
    for (uint32_t t = 0; t < def->tasks.size(); ++t) {
      auto& td = def->tasks[t];
      if (!td.compensation)
        continue;
      if (td.compensation->kind == "fleet.release") {
        // It names the host its reservation was made on: a release said again is reported
        // again even after the zone forgot the key (fleet_test).
        auto host = find_param(td.compensation->parameters, "host");
        REQUIRE(host != nullptr);
        CHECK(host->s == "@{" + td.id + "}");
      }
      // The latest task that depends on this one and fails before every point of no return.
      int refuse = -1;
      for (auto d : td.transitive_dependents)
        if (before_every_pnr(*def, d))
          refuse = static_cast<int>(d);
      if (refuse < 0)
        continue; // past every point of no return: never compensated
      auto& refused = def->tasks[static_cast<size_t>(refuse)].id;
      DYNAMIC_SECTION(sc.name << ": " << td.compensation->kind << " undoing " << td.id
                              << " loses its answer; " << refused << " refused") {
        ++cases;
        test::temp_dir dir;
        sim_fleet s{dir.file("journal")};
        auto vm = sc.args.at("vm").s;
        auto source = s.host_of(vm);
        s.faults->code = errc::aborted;
        s.faults->arm(refused);
        s.more_faults->after = true;
        s.more_faults->attempts = 2;
        s.more_faults->compensation = true;
        s.more_faults->arm(td.id);
        auto run = s.eng->submit(s.render(sc.name, sc.args));
        REQUIRE(run);
        auto r = s.eng->wait(*run, 60s);
        REQUIRE(r);
        INFO(to_string(r->status) << ": " << r->reason);
        REQUIRE(r->status == run_status::rolled_back);
        CHECK(r->tasks[t].status == task_status::compensated);
        CHECK(r->tasks[t].compensation_attempt == 3);
        CHECK(s.runs_once(vm, *run) == source);
        s.reopen();
        CHECK(s.runs_once(vm, *run) == source);
      }
    }
  }
  CHECK(cases > 0);
}

// -- a lost answer at every hypervisor call -------------------------------------------------

namespace {

/// Every operation a sim driver submits to its world.
const std::vector<const char*> driver_operations{
  "define",      "config",      "start",      "pause",         "resume",        "stop",
  "transfer",    "agent_command", "destroy",  "set_vcpus",     "set_memory",    "attach_disk",
  "detach_disk", "attach_nic",  "detach_nic", "migrate",       "abort_migration", "snapshot_disk",
  "save",        "restore",     "query",      "list"};

/// Injects `f` for `operation` on every host of the fleet.
void inject_everywhere(sim_fleet& s, const std::string& operation, hv::sim_fault f) {
  for (auto& h : s.model->hosts)
    s.world->inject(h.driver, operation, f);
}

} // namespace

TEST_CASE("an answer lost at any hypervisor call of every built-in template: the task's retry "
          "finds what the call did, and the run ends as it would have") {
  // The call takes effect and its caller is told it failed (unavailable), as when the
  // connection to a host drops after the hypervisor acted. The retry, under the same
  // idempotency key, must reconcile with the world instead of acting again or failing.
  size_t hit = 0;
  for (auto& sc : scenarios()) {
    std::string expected;
    {
      sim_fleet clean;
      auto r = clean.run(sc.name, sc.args);
      REQUIRE(r.status == run_status::succeeded);
      expected = clean.runs_once(sc.args.at("vm").s, r.id);
    }
    for (auto op : driver_operations) {
      INFO(sc.name << ": the answer of the first " << op << " on each host lost");
      sim_fleet s;
      auto vm = sc.args.at("vm").s;
      inject_everywhere(s, op, hv::sim_fault::lose_answer());
      auto r = s.run(sc.name, sc.args);
      INFO(r.reason);
      CHECK(r.status == run_status::succeeded);
      CHECK(s.runs_once(vm, r.id) == expected);
      hit += s.world->metrics().faults_taken > 0 ? 1 : 0;
    }
  }
  CHECK(hit > 20);
}

TEST_CASE("every answer of one hypervisor operation lost: the run rolls back or waits for an "
          "operator, and the VM runs exactly once") {
  // Every attempt of a task, and of a compensation that makes the same call, acts and is
  // told it failed. What it did is in doubt, and the rollback must undo it all the same.
  size_t hit = 0;
  for (auto& sc : scenarios()) {
    for (auto op : driver_operations) {
      INFO(sc.name << ": every answer of " << op << " lost");
      sim_fleet s;
      auto vm = sc.args.at("vm").s;
      auto source = s.host_of(vm);
      inject_everywhere(s, op, hv::sim_fault::lose_answer(0));
      auto run = s.eng->submit(s.render(sc.name, sc.args));
      REQUIRE(run);
      auto r = s.eng->wait(*run, 60s);
      REQUIRE(r);
      INFO(to_string(r->status) << ": " << r->reason);
      if (s.world->metrics().faults_taken == 0) {
        CHECK(r->status == run_status::succeeded);
        continue;
      }
      ++hit;
      s.world->clear_faults();
      // Waiting for an operator: the faults gone, they retry what failed.
      for (int tries = 0; tries < 3 && r->status == run_status::failed; ++tries) {
        for (size_t i = 0; i < r->tasks.size(); ++i)
          if (r->tasks[i].status == task_status::failed
              || r->tasks[i].status == task_status::compensation_failed) {
            auto ack = s.eng->retry(*run, r->def->tasks[i].id);
            INFO((ack ? "" : describe(ack.error())));
            CHECK(ack);
          }
        r = s.eng->wait(*run, 60s);
        REQUIRE(r);
      }
      INFO("then " << to_string(r->status) << ": " << r->reason);
      REQUIRE(is_terminal(r->status));
      auto host = s.runs_once(vm, *run);
      if (r->status == run_status::rolled_back)
        CHECK(host == source);
    }
  }
  CHECK(hit > 20);
}
