// drain_zone: drains a zone of the simulated fleet through the scheduler — by default 30,000
// VMs on 1,000 hosts of zone z0 moved to the 1,000 hosts of zone z1 with the built-in
// live-precopy template, at most 2 migrations out of and 2 into each host at once (the
// batch's limits and the hosts' own slots), every transition journaled in RocksDB with the
// WAL synced. Prints one JSON object: wall_s (submit to the batch's end), simulated_s (the
// simulator's clock over the drain), cpu_us_per_migration (the whole process),
// engine_cpu_us_per_migration (the process less the simulator's thread) and its split by
// thread (CAF's workers, the journal's thread, RocksDB's background threads, the rest),
// resident memory before and after the drain and at its peak, the batch's outcome, and what
// each migration cost the journal (transitions, events, tasks dispatched, journal write
// batches). Targets: engine CPU per migration under 100 µs, the whole drain under 60 s of
// wall time. Exits 1 when a migration fails or a limit was exceeded.
//   build/bench/drain_zone [--vms 30000] [--hosts 1000] [--host-out 2] [--host-in 2]
//     [--template live-precopy] [--speed 20000] [--threads 2] [--journal rocksdb|memory]
//     [--policy sharing|stealing] [--window 384]
#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "actors/log.hpp"
#include "bench/bench_util.hpp"
#include "common/cli_numbers.hpp"
#include "fleet/fleet_codec.hpp"
#include "hypervisor/sim_world.hpp"

using namespace ferry;

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
  app.add_option("--vms", vms, "VMs in the drained zone (default 30000)")
    ->transform(ferry::whole_number(1));
  app.add_option("--hosts", hosts, "Hosts per zone (default 1000)")
    ->transform(ferry::whole_number(1));
  app.add_option("--host-out", host_out, "Migrations out of one host at once (default 2)")
    ->transform(ferry::whole_number());
  app.add_option("--host-in", host_in, "Migrations into one host at once (default 2)")
    ->transform(ferry::whole_number());
  app.add_option("--template", template_name, "Template of each migration (default live-precopy)");
  app.add_option("--speed", speed, "Simulated seconds per real second (default 20000)")
    ->check(ferry::finite_number(true));
  app.add_option("--threads", threads, "Engine threads (default 2)")
    ->transform(ferry::whole_number());
  app.add_option("--journal", journal, "rocksdb (default) or memory")
    ->check(CLI::IsMember({"rocksdb", "memory"}));
  app.add_option("--policy", policy, "CAF scheduler policy: sharing (default) or stealing")
    ->check(CLI::IsMember({"sharing", "stealing"}));
  app.add_option("--window", window,
                 "Transitions in flight to the journal at once (default: the engine's, "
                   + std::to_string(window) + ")")
    ->transform(ferry::whole_number());
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
  auto rss0 = bench::rss_bytes();
  auto cpu0 = bench::process_cpu_s();
  auto threads0 = bench::cpu_by_thread();
  auto t0 = std::chrono::steady_clock::now();
  auto started = bench::must(e->drain(req), "drain_zone");
  auto s = bench::must(e->wait_batch(started.name, std::chrono::hours(2)), "drain_zone");
  auto wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto cpu = bench::process_cpu_s() - cpu0;
  auto rss1 = bench::rss_bytes();
  auto threads1 = bench::cpu_by_thread();
  auto sim_cpu = bench::cpu_of(threads0, threads1, "ferry.sim");
  // The engine's share by thread; the rest (CAF's clock, the deadline timer, threads that
  // ended...) is the engine's CPU less these.
  auto split = bench::split_engine_cpu(threads0, threads1);
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
    .add("workers_cpu_us_per_migration", split.workers * 1e6 / n)
    .add("journal_cpu_us_per_migration", split.journal * 1e6 / n)
    .add("rocksdb_cpu_us_per_migration", split.rocksdb * 1e6 / n)
    .add("other_engine_cpu_us_per_migration",
         (cpu - sim_cpu - split.workers - split.journal - split.rocksdb) * 1e6 / n)
    .add("transitions_per_migration", per(transitions0, em.transitions.load()))
    .add("events_per_migration", per(events0, em.events.load()))
    .add("dispatches_per_migration", per(dispatches0, em.dispatches.load()))
    .add("journal_batches_per_migration",
         batches0 && batches1 ? per(batches0->batches, batches1->batches) : 0.0)
    .add("rss_before_drain_bytes", rss0)
    .add("rss_after_drain_bytes", rss1)
    .add("peak_rss_bytes", bench::peak_rss_bytes())
    .print();
  e->close();
  bool ok = s.succeeded == vms && s.peak_host_out <= host_out && s.peak_host_in <= host_in;
  return ok ? 0 : 1;
}
