// Ferry on two real libvirt hosts with a real QEMU guest (scripts/real-hosts.sh, started by
// the ctest fixture e2e_hosts_up): the built-in templates and an example template run for
// real, and after each the guest's heartbeat counter (printed once a second on its serial
// console, which both hosts append to) must run on without a gap or a restart — the guest
// ran exactly once, with its memory intact. Each case boots its own guest on h1.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "actors/engine.hpp"
#include "actors/fleet_runtime.hpp"
#include "common/errc.hpp"
#include "fleet/fleet_codec.hpp"
#include "templates/template.hpp"
#include "tests/e2e/real_support.hpp"

using namespace ferry;
using namespace ferry::e2e;

namespace {

const std::string source_dir = FERRY_SOURCE_DIR;
const std::string real_dir = FERRY_REAL_DIR;
const std::string ferry_cli = FERRY_CLI;

const real_hosts& hosts() {
  static real_hosts h = [] {
    auto x = real_hosts::load(real_dir);
    if (!x)
      FAIL("no " << real_dir << "/hosts.env: the e2e_hosts_up fixture did not run");
    return *x;
  }();
  return h;
}

/// A guest booted on h1 for one case, destroyed on both hosts afterwards.
struct guest {
  std::string name;
  std::string log;
  host_drivers drivers{hosts()};

  explicit guest(std::string n, int dirty_mib = 0) : name(std::move(n)) {
    log = hosts().serial_log(name);
    std::filesystem::remove(log);
    auto r = run_cmd({"bash", source_dir + "/scripts/real-guest.sh", "start", real_dir, name,
                      "h1", std::to_string(dirty_mib)},
                     120s);
    INFO(r.out);
    REQUIRE(r.status == 0);
    REQUIRE(drivers.running(name) == std::vector<std::string>{"h1"});
  }
  ~guest() { drivers.destroy_everywhere(name); }

  /// The guest kept counting: `more` beats past the last one seen now, and no gap, repeat
  /// or restart in the whole log.
  void check_heartbeat(uint64_t more = 2) {
    auto now = last_beat(log);
    INFO("guest " << name << " log " << log << ": on h1 " << hv::to_string(drivers.status("h1", name))
                  << ", on h2 " << hv::to_string(drivers.status("h2", name)));
    bool counting = wait_beat_past(log, now + more, 30s);
    if (!counting) {
      // What QEMU says about the silent guest, for the failure's message.
      for (auto h : drivers.running(name))
        for (auto what : {"info status", "info registers", "info irq"}) {
          auto r = run_cmd({"virsh", "-c", hosts().uri(h), "qemu-monitor-command", "--hmp", name,
                            what}, 20s);
          UNSCOPED_INFO(h << ": " << what << ":\n" << r.out);
        }
    }
    REQUIRE(counting);
    auto beats = heartbeats(log);
    INFO("heartbeats: " << beats.size());
    CHECK(heartbeat_problem(beats) == "");
  }

  void check_runs_only_on(const std::string& host) {
    CHECK(drivers.running(name) == std::vector<std::string>{host});
    auto other = host == "h1" ? "h2" : "h1";
    auto st = drivers.status(other, name);
    INFO("on " << other << ": " << hv::to_string(st));
    CHECK((st == hv::domain_status::absent || st == hv::domain_status::shut_off));
  }
};

/// An engine on the real hosts, journal in a fresh directory.
struct real_engine {
  std::string dir;
  fleet::model_ptr model;
  std::unique_ptr<engine> eng;
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<task_progress> progress;

  real_engine(const std::string& vm, bool with_volume = false) {
    dir = real_dir + "/journals/" + vm;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    auto text = fleet_text(hosts(), vm, with_volume);
    auto f = fleet::load_fleet(text);
    INFO(text << (f ? "" : describe(f.error())));
    REQUIRE(f);
    model = *f;
    { std::ofstream{dir + "/fleet.textproto"} << text; }
    engine_options opts;
    opts.journal_path = dir + "/db";
    opts.fleet = model;
    opts.template_dirs = {source_dir + "/templates/builtin"};
    opts.on_progress = [this](const task_progress& p) {
      {
        std::lock_guard<std::mutex> g{mtx};
        progress.push_back(p);
      }
      cv.notify_all();
    };
    auto e = engine::open(opts);
    INFO((e ? "" : describe(e.error())));
    REQUIRE(e);
    eng = std::move(*e);
  }

  run_id submit(const migration_template& t, const std::vector<std::string>& params) {
    auto a = parse_template_args(t, params);
    INFO((a ? "" : describe(a.error())));
    REQUIRE(a);
    auto d = eng->render(t, *a);
    INFO((d ? "" : describe(d.error())));
    REQUIRE(d);
    auto id = eng->submit(*d);
    REQUIRE(id);
    return *id;
  }
  run_id submit(const std::string& builtin, const std::vector<std::string>& params) {
    auto t = eng->get_template(builtin);
    REQUIRE(t);
    return submit(**t, params);
  }

  run_state wait(const run_id& id, std::chrono::milliseconds timeout = 180s) {
    auto s = eng->wait(id, timeout);
    INFO((s ? "" : describe(s.error())));
    REQUIRE(s);
    return *s;
  }

  static std::string output(const run_state& s, const std::string& task) {
    auto i = s.def->index_of(task);
    REQUIRE(i >= 0);
    return s.tasks[static_cast<size_t>(i)].output();
  }

  size_t progress_reports() {
    std::lock_guard<std::mutex> g{mtx};
    return progress.size();
  }

  /// Waits until a copy reported moving at least `bytes`.
  bool wait_copied(uint64_t bytes, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lk{mtx};
    return cv.wait_for(lk, timeout, [&] {
      return !progress.empty() && progress.back().processed_bytes >= bytes;
    });
  }

  std::string host_of(const std::string& vm) {
    auto loc = eng->fleet()->locate(vm);
    REQUIRE(loc);
    return loc->host;
  }
};

std::string describe_run(const run_state& s) {
  std::string out = std::string{to_string(s.status)} + ": " + s.reason;
  for (size_t i = 0; i < s.tasks.size(); ++i)
    out += "\n  " + s.def->tasks[i].id + " " + to_string(s.tasks[i].status) + " "
           + s.tasks[i].output();
  return out;
}

} // namespace

TEST_CASE("live migration with a virtio disk, there and back", "[live]") {
  guest g{"live"};
  real_engine re{g.name};
  // A data disk on a file both hosts see (network storage: the lease says who writes).
  auto disk = real_dir + "/disks/live-data.qcow2";
  auto mk = run_cmd({"bash", source_dir + "/scripts/real-guest.sh", "disk", real_dir, disk, "64"}, 60s);
  INFO(mk.out);
  REQUIRE(mk.status == 0);
  auto att = sync_call<hv::domain_info>([&](auto cb) {
    g.drivers.by_host.at("h1")->attach_disk(g.name, hv::disk_spec{"vdb", disk, false, 0},
                                           hv::call{"e2e/attach", 30s}, cb);
  });
  INFO((att ? "" : describe(att.error())));
  REQUIRE(att);

  auto there = re.wait(re.submit("live-precopy", {"vm=" + g.name, "target=h2"}));
  INFO(describe_run(there));
  REQUIRE(there.status == run_status::succeeded);
  g.check_runs_only_on("h2");
  CHECK(re.host_of(g.name) == "h2");
  auto info = g.drivers.info("h2", g.name);
  REQUIRE(info);
  bool has_disk = false;
  for (auto& d : info->disks)
    has_disk = has_disk || (d.target == "vdb" && d.source == disk);
  CHECK(has_disk);
  // The copy's progress came from libvirt's job statistics while it ran.
  CHECK(re.progress_reports() > 0);
  auto out = real_engine::output(there, "precopy");
  CHECK(out.find("\"downtime_ms\":") != std::string::npos);
  g.check_heartbeat();

  auto back = re.wait(re.submit("live-precopy", {"vm=" + g.name, "target=h1"}));
  INFO(describe_run(back));
  REQUIRE(back.status == run_status::succeeded);
  g.check_runs_only_on("h1");
  CHECK(re.host_of(g.name) == "h1");
  g.check_heartbeat();
}

TEST_CASE("a disk hot-unplugged before the copy, vCPUs and the disk hot-plugged after", "[morph]") {
  guest g{"morph"};
  real_engine re{g.name};
  auto disk = real_dir + "/disks/morph-data.qcow2";
  auto mk = run_cmd({"bash", source_dir + "/scripts/real-guest.sh", "disk", real_dir, disk, "64"}, 60s);
  REQUIRE(mk.status == 0);
  REQUIRE(sync_call<hv::domain_info>([&](auto cb) {
    g.drivers.by_host.at("h1")->attach_disk(g.name, hv::disk_spec{"vdb", disk, false, 0},
                                           hv::call{"e2e/attach", 30s}, cb);
  }));
  auto src = read_file(source_dir + "/examples/unplug-migrate-plug.template.textproto");
  auto t = load_template(src, re.eng->kinds());
  INFO((t ? "" : describe(t.error())));
  REQUIRE(t);
  auto s = re.wait(re.submit(**t, {"vm=" + g.name, "target=h2", "vcpus=2", "disk_target=vdb",
                                   "disk_source=" + disk}));
  INFO(describe_run(s));
  REQUIRE(s.status == run_status::succeeded);
  g.check_runs_only_on("h2");
  auto info = g.drivers.info("h2", g.name);
  REQUIRE(info);
  CHECK(info->vcpus == 2);
  bool has_disk = false;
  for (auto& d : info->disks)
    has_disk = has_disk || d.target == "vdb";
  CHECK(has_disk);
  g.check_heartbeat();
}

TEST_CASE("a copy that cannot converge is cancelled and the VM runs on", "[predict]") {
  // The guest rewrites 16 MiB of its memory every second; the copy may send 6 MiB/s.
  guest g{"predict", 16};
  real_engine re{g.name};
  auto s = re.wait(re.submit("live-precopy", {"vm=" + g.name, "target=h2", "bandwidth_mib_s=6"}));
  INFO(describe_run(s));
  REQUIRE(s.status == run_status::rolled_back);
  auto i = s.def->index_of("precopy");
  REQUIRE(i >= 0);
  CHECK(s.tasks[static_cast<size_t>(i)].error().find("predicted to fail") != std::string::npos);
  g.check_runs_only_on("h1");
  CHECK(g.drivers.status("h2", g.name) == hv::domain_status::absent);
  CHECK(re.host_of(g.name) == "h1");
  g.check_heartbeat();
}

TEST_CASE("the link cut during a migration: the run rolls back, the VM runs on h1 once", "[linkcut]") {
  guest g{"linkcut", 8};
  real_engine re{g.name};
  // A slow copy (capped at 4 MiB/s) so the link goes down while it runs.
  auto id = re.submit("live-precopy", {"vm=" + g.name, "target=h2", "bandwidth_mib_s=4",
                                       "time_budget_s=600"});
  // Wait for the copy to report progress, then take h1's link down.
  REQUIRE(re.wait_copied(4u << 20, 60s));
  auto down = run_cmd({"bash", source_dir + "/scripts/real-hosts.sh", "link", real_dir, "h1", "down"}, 30s);
  INFO(down.out);
  REQUIRE(down.status == 0);
  struct link_up {
    ~link_up() {
      run_cmd({"bash", source_dir + "/scripts/real-hosts.sh", "link", real_dir, "h1", "up"}, 30s);
    }
  } restore;
  auto t0 = steady::now();
  auto s = re.wait(id, 170s);
  auto took = std::chrono::duration_cast<std::chrono::seconds>(steady::now() - t0).count();
  INFO(describe_run(s) << "\nrolled back " << took << " s after the cut");
  REQUIRE(s.status == run_status::rolled_back);
  g.check_runs_only_on("h1");
  CHECK(re.host_of(g.name) == "h1");
  g.check_heartbeat();
}

TEST_CASE("post-copy migration", "[postcopy]") {
  // Dirtier than the capped pre-copy can follow: only the switch to post-copy finishes it.
  guest g{"postcopy", 16};
  real_engine re{g.name};
  auto s = re.wait(re.submit("postcopy-storage-sync",
                             {"vm=" + g.name, "target=h2", "mode=postcopy", "bandwidth_mib_s=8"}));
  INFO(describe_run(s));
  REQUIRE(s.status == run_status::succeeded);
  CHECK(real_engine::output(s, "precopy").find("\"mode\":\"postcopy\"") != std::string::npos);
  g.check_runs_only_on("h2");
  g.check_heartbeat();
}

TEST_CASE("the controller killed during a real migration: the run reconciles and finishes", "[crash]") {
  // An idle guest (docs/real-hosts.md: long copies of a dirtying guest can leave it hung under
  // TCG); the 6 MiB/s cap makes its copy last about 17 s.
  guest g{"crash"};
  auto jdir = real_dir + "/journals/crash-cli";
  std::filesystem::remove_all(jdir);
  std::filesystem::create_directories(jdir);
  auto fleet_file = jdir + "/fleet.textproto";
  { std::ofstream{fleet_file} << fleet_text(hosts(), g.name); }
  std::vector<std::string> argv{ferry_cli, "run", "--fleet", fleet_file, "--db", jdir + "/db",
                                "--template", "live-precopy", "-p", "vm=" + g.name, "-p",
                                "target=h2", "-p", "bandwidth_mib_s=6", "--run-id",
                                "move-crash", "--timeout", "300"};
  {
    child first{argv};
    // `ferry run` prints the copy's progress: kill it (SIGKILL) in the middle of the copy.
    bool copying = first.read_until(
      [](const std::string& out) { return out.find(" copy ") != std::string::npos; },
      steady::now() + 90s);
    INFO(first.out());
    REQUIRE(copying);
    first.kill_now();
  }
  // The migration goes on inside libvirt; the same command again resumes the run.
  auto again = run_cmd(argv, 300s);
  INFO(again.out);
  CHECK(again.out.find("resumed 1 run") != std::string::npos);
  REQUIRE(again.status == 0);
  g.check_runs_only_on("h2");
  g.check_heartbeat();
  auto verify = run_cmd({ferry_cli, "journal", "verify", jdir + "/db"}, 60s);
  INFO(verify.out);
  CHECK(verify.status == 0);
}

int main(int argc, char* argv[]) {
  if (auto why = skip_reason(real_dir)) {
    std::printf("skipped: %s\n", why->c_str());
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
