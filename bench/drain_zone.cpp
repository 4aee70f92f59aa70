// drain_zone: drains a zone of the simulated fleet through the scheduler — by default 30,000
// VMs on 1,000 hosts of zone z0 moved to the 1,000 hosts of zone z1 with the built-in
// live-precopy template, at most 2 migrations out of and 2 into each host at once (the
// batch's limits and the hosts' own slots), every transition journaled in RocksDB with the
// WAL synced. Prints one JSON object: wall_s (submit to the batch's end), simulated_s (the
// simulator's clock over the drain), cpu_us_per_migration (the whole process),
// engine_cpu_us_per_migration (the process less the simulator's thread), peak_rss_bytes,
// the batch's outcome, and what each migration cost the journal (transitions, events,
// tasks dispatched, journal write batches). Targets: engine CPU per migration under 100 µs, the whole drain
// under 60 s of wall time. Exits 1 when a migration fails or a limit was exceeded.
//   build/bench/drain_zone [--vms 30000] [--hosts 1000] [--host-out 2] [--host-in 2]
//     [--template live-precopy] [--speed 20000] [--threads 2] [--journal rocksdb|memory]
//     [--policy sharing|stealing] [--window 384]
#include <sys/resource.h>
#include <dirent.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "actors/log.hpp"
#include "bench/bench_util.hpp"
#include "fleet/fleet_codec.hpp"
#include "hypervisor/sim_world.hpp"

using namespace ferry;

namespace {

double process_cpu_s() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec)
         + static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// CPU seconds of the threads named `name` (/proc/self/task/*/comm).
double thread_cpu_s(const std::string& name) {
  double total = 0;
  auto* dir = ::opendir("/proc/self/task");
  if (!dir)
    return 0;
  auto ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  while (auto* e = ::readdir(dir)) {
    std::string tid = e->d_name;
    if (tid == "." || tid == "..")
      continue;
    std::ifstream comm{"/proc/self/task/" + tid + "/comm"};
    std::string c;
    std::getline(comm, c);
    if (c != name)
      continue;
    std::ifstream stat{"/proc/self/task/" + tid + "/stat"};
    std::string line;
    std::getline(stat, line);
    // Fields after the command (which may hold spaces): state is field 3; utime 14, stime 15.
    auto close = line.rfind(')');
    std::istringstream is{line.substr(close + 2)};
    std::string f;
    double ut = 0, st = 0;
    for (int i = 3; i <= 15 && is >> f; ++i) {
      if (i == 14)
        ut = std::stod(f);
      if (i == 15)
        st = std::stod(f);
    }
    total += (ut + st) / ticks;
  }
  ::closedir(dir);
  return total;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"drain_zone: drain a zone of the simulated fleet through the scheduler"};
  size_t vms = 30000;
  size_t hosts = 1000;
  uint32_t host_out = 2;
  uint32_t host_in = 2;
  std::string template_name = "live-precopy";
  double speed = 20000;
  size_t threads = 2;
  std::string journal = "rocksdb";
  std::string policy = "sharing";
  size_t window = engine_options{}.max_inflight_commits;
  app.add_option("--vms", vms, "VMs in the drained zone (default 30000)");
  app.add_option("--hosts", hosts, "Hosts per zone (default 1000)");
  app.add_option("--host-out", host_out, "Migrations out of one host at once (default 2)");
  app.add_option("--host-in", host_in, "Migrations into one host at once (default 2)");
  app.add_option("--template", template_name, "Template of each migration (default live-precopy)");
  app.add_option("--speed", speed, "Simulated seconds per real second (default 20000)");
  app.add_option("--threads", threads, "Engine threads (default 2)");
  app.add_option("--journal", journal, "rocksdb (default) or memory")
    ->check(CLI::IsMember({"rocksdb", "memory"}));
  app.add_option("--policy", policy, "CAF scheduler policy: sharing (default) or stealing")
    ->check(CLI::IsMember({"sharing", "stealing"}));
  app.add_option("--window", window,
                 "Transitions in flight to the journal at once (default: the engine's, "
                   + std::to_string(window) + ")");
  CLI11_PARSE(app, argc, argv);
  log().set_level(spdlog::level::warn);

  auto model = bench::must(fleet::load_fleet(bench::two_zone_fleet(vms, hosts)), "drain_zone");
  bench::temp_dir dir{"ferry-drain-zone"};
  hv::sim_options so;
  so.speed = speed;
  auto world = std::make_shared<hv::sim_world>(so);
  engine_options opts;
  opts.threads = threads;
  opts.scheduler_policy = policy;
  opts.max_inflight_commits = window;
  if (journal == "rocksdb")
    opts.journal_path = dir.path() + "/journal";
  opts.fleet = model;
  opts.fleet_opts.sim = world;
  // Hosts' own slots as the batch's limits.
  opts.template_dirs = {FERRY_BUILTIN_TEMPLATES};
  auto e = bench::must(engine::open(opts), "drain_zone");

  drain_request req;
  req.zone = "z0";
  req.to_zone = "z1";
  req.template_name = template_name;
  req.limits.host_out = host_out;
  req.limits.host_in = host_in;
  auto& em = e->metrics();
  auto transitions0 = em.transitions.load();
  auto events0 = em.events.load();
  auto dispatches0 = em.dispatches.load();
  auto batches0 = e->journal_statistics();
  auto sim0 = world->metrics().now_ms;
  auto cpu0 = process_cpu_s();
  auto sim_cpu0 = thread_cpu_s("ferry.sim");
  auto t0 = std::chrono::steady_clock::now();
  auto started = bench::must(e->drain(req), "drain_zone");
  auto s = bench::must(e->wait_batch(started.name, std::chrono::hours(2)), "drain_zone");
  auto wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto cpu = process_cpu_s() - cpu0;
  auto sim_cpu = thread_cpu_s("ferry.sim") - sim_cpu0;
  auto simulated = static_cast<double>(world->metrics().now_ms - sim0) / 1000.0;
  auto n = static_cast<double>(std::max<uint32_t>(s.succeeded, 1));
  auto batches1 = e->journal_statistics();
  auto per = [n](uint64_t a, uint64_t b) { return static_cast<double>(b - a) / n; };
  bench::json_object()
    .add("vms", static_cast<uint64_t>(vms))
    .add("hosts_per_zone", static_cast<uint64_t>(hosts))
    .add("template", template_name)
    .add("journal", journal)
    .add("succeeded", static_cast<uint64_t>(s.succeeded))
    .add("failed", static_cast<uint64_t>(s.failed + s.skipped))
    .add("peak_running", static_cast<uint64_t>(s.peak_running))
    .add("peak_host_out", static_cast<uint64_t>(s.peak_host_out))
    .add("peak_host_in", static_cast<uint64_t>(s.peak_host_in))
    .add("wall_s", wall)
    .add("simulated_s", simulated)
    .add("migrations_per_s", s.succeeded / wall)
    .add("cpu_us_per_migration", cpu * 1e6 / n)
    .add("engine_cpu_us_per_migration", (cpu - sim_cpu) * 1e6 / n)
    .add("sim_cpu_us_per_migration", sim_cpu * 1e6 / n)
    .add("transitions_per_migration", per(transitions0, em.transitions.load()))
    .add("events_per_migration", per(events0, em.events.load()))
    .add("dispatches_per_migration", per(dispatches0, em.dispatches.load()))
    .add("journal_batches_per_migration",
         batches0 && batches1 ? per(batches0->batches, batches1->batches) : 0.0)
    .add("peak_rss_bytes", bench::peak_rss_bytes())
    .print();
  e->close();
  bool ok = s.succeeded == vms && s.peak_host_out <= host_out && s.peak_host_in <= host_in;
  return ok ? 0 : 1;
}
