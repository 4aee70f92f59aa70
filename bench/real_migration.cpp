// real_migration: --runs live migrations (default 10) of the 128 MiB test guest between two
// real libvirt hosts, alternately h1 -> h2 and back, each a run of a built-in template
// (default live-precopy) on the engine with a journal. Prints one JSON object:
// median_job_ms (libvirt's migration job, from the run's output), median_downtime_ms (as
// libvirt measured it on the destination), median_overhead_ms (the run's wall time minus the
// time spent inside libvirt calls: the engine, the journal, the actors; the target: at most
// 20 ms), median_run_ms, median_libvirt_ms, runs, failed, heartbeat_ok (the guest counted on
// without a gap or a restart through every move, and still counts after the last).
// Needs root and the packages of scripts/install-deps.sh: when --hosts-dir holds no
// hosts.env, it starts the hosts there (scripts/real-hosts.sh) and tears them down after.
//   build/bench/real_migration [--runs 10] [--hosts-dir /run/ferry-real]
//                              [--template live-precopy] [--guest bench-guest]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include <CLI/CLI.hpp>

#include "actors/engine.hpp"
#include "actors/fleet_runtime.hpp"
#include "bench/bench_util.hpp"
#include "common/cli_numbers.hpp"
#include "fleet/fleet_codec.hpp"
#include "hypervisor/libvirt_driver.hpp"
#include "templates/template.hpp"
#include "tests/e2e/real_support.hpp"

using namespace ferry;
using namespace std::chrono_literals;

namespace {

const std::string source_dir = FERRY_SOURCE_DIR;

double median(std::vector<double> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// A number field of the run's task output ({"duration_ms":123,...}).
double field(const std::string& json, const std::string& name) {
  auto at = json.find("\"" + name + "\":");
  if (at == std::string::npos)
    return 0;
  return std::strtod(json.c_str() + at + name.size() + 3, nullptr);
}

/// Time spent inside libvirt calls for one domain, as the drivers report it.
struct libvirt_clock {
  std::mutex mtx;
  std::map<std::string, std::chrono::nanoseconds> by_domain;

  void add(const std::string& domain, std::chrono::nanoseconds took) {
    std::lock_guard<std::mutex> g{mtx};
    by_domain[domain] += took;
  }
  std::chrono::nanoseconds take(const std::string& domain) {
    std::lock_guard<std::mutex> g{mtx};
    auto t = by_domain[domain];
    by_domain[domain] = {};
    return t;
  }
};

int fail(const std::string& msg) {
  std::fprintf(stderr, "real_migration: %s\n", msg.c_str());
  return 1;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"real_migration: live migrations of a real QEMU guest between two libvirt hosts"};
  size_t runs = 10;
  std::string dir = "/run/ferry-real";
  std::string template_name = "live-precopy";
  std::string guest_name = "bench-guest";
  app.add_option("--runs", runs, "Migrations (default 10)")
    ->transform(ferry::whole_number(1));
  app.add_option("--hosts-dir", dir, "Where the real hosts run or are started (default /run/ferry-real)");
  app.add_option("--template", template_name, "Built-in template of each move (default live-precopy)");
  app.add_option("--guest", guest_name, "The guest's name (default bench-guest)");
  CLI11_PARSE(app, argc, argv);

  bool started_hosts = false;
  if (!std::filesystem::exists(dir + "/hosts.env")) {
    auto up = e2e::run_cmd({"bash", source_dir + "/scripts/real-hosts.sh", "up", dir, "2"}, 300s);
    if (up.status != 0)
      return fail("cannot start the real hosts in " + dir + ":\n" + up.out);
    started_hosts = true;
  }
  struct teardown {
    bool on;
    std::string dir;
    ~teardown() {
      if (on)
        e2e::run_cmd({"bash", source_dir + "/scripts/real-hosts.sh", "down", dir}, 120s);
    }
  } down{started_hosts, dir};
  auto hosts = e2e::real_hosts::load(dir);
  if (!hosts)
    return fail("no " + dir + "/hosts.env");
  auto log = hosts->serial_log(guest_name);
  std::filesystem::remove(log);
  auto g = e2e::run_cmd({"bash", source_dir + "/scripts/real-guest.sh", "start", dir, guest_name,
                         "h1", "0"},
                        300s);
  if (g.status != 0)
    return fail("cannot start the guest:\n" + g.out);

  auto clock = std::make_shared<libvirt_clock>();
  bench::temp_dir tmp{"ferry-real-migration"};
  engine_options opts;
  opts.journal_path = tmp.path() + "/journal";
  opts.fleet = bench::must(fleet::load_fleet(e2e::fleet_text(*hosts, guest_name)), "real_migration");
  opts.template_dirs = {source_dir + "/templates/builtin"};
  opts.fleet_opts.open_driver = [clock](const fleet::host& h) {
    hv::libvirt_driver_options lv;
    lv.after_call = [clock](const std::string&, const std::string& domain,
                            std::chrono::nanoseconds took) { clock->add(domain, took); };
    return hv::open_libvirt_driver(h.driver, lv);
  };
  auto eng = bench::must(engine::open(opts), "real_migration");
  auto t = bench::must(eng->get_template(template_name), "real_migration");

  std::vector<double> job_ms, downtime_ms, overhead_ms, run_ms, libvirt_ms;
  size_t failed = 0;
  for (size_t i = 0; i < runs; ++i) {
    auto target = i % 2 == 0 ? "h2" : "h1";
    auto args = bench::must(parse_template_args(*t, {"vm=" + guest_name, std::string{"target="} + target}),
                            "real_migration");
    auto def = bench::must(eng->render(*t, args), "real_migration");
    clock->take(guest_name);
    auto t0 = std::chrono::steady_clock::now();
    auto id = bench::must(eng->submit(def), "real_migration");
    auto st = bench::must(eng->wait(id, 300s), "real_migration");
    auto wall = std::chrono::steady_clock::now() - t0;
    auto in_libvirt = clock->take(guest_name);
    if (st.status != run_status::succeeded) {
      ++failed;
      std::fprintf(stderr, "real_migration: run %s %s: %s\n", id.c_str(), to_string(st.status),
                   st.reason.c_str());
      break;
    }
    auto out = st.tasks[static_cast<size_t>(st.def->index_of("precopy"))].output();
    auto ms = [](auto d) {
      return std::chrono::duration<double, std::milli>(d).count();
    };
    job_ms.push_back(field(out, "duration_ms"));
    downtime_ms.push_back(field(out, "downtime_ms"));
    run_ms.push_back(ms(wall));
    libvirt_ms.push_back(ms(in_libvirt));
    overhead_ms.push_back(ms(wall) - ms(in_libvirt));
  }
  // The guest still counts after the last move, and never skipped or restarted.
  bool alive = e2e::wait_beat_past(log, e2e::last_beat(log) + 1, 30s);
  auto beats = e2e::heartbeats(log);
  bool heartbeat_ok = alive && e2e::heartbeat_problem(beats).empty();
  e2e::host_drivers drivers{*hosts};
  eng->close();
  drivers.destroy_everywhere(guest_name);

  bench::json_object j;
  j.add("runs", static_cast<uint64_t>(job_ms.size()));
  j.add("failed", static_cast<uint64_t>(failed));
  j.add("median_job_ms", median(job_ms));
  j.add("median_downtime_ms", median(downtime_ms));
  j.add("median_overhead_ms", median(overhead_ms));
  j.add("median_run_ms", median(run_ms));
  j.add("median_libvirt_ms", median(libvirt_ms));
  j.add("max_overhead_ms", overhead_ms.empty() ? 0.0 : *std::max_element(overhead_ms.begin(), overhead_ms.end()));
  j.add("heartbeat_ok", heartbeat_ok);
  j.add("heartbeats", static_cast<uint64_t>(beats.size()));
  j.print();
  return failed == 0 && heartbeat_ok ? 0 : 1;
}
