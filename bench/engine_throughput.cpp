// engine_throughput: N concurrent runs of a five-task workflow (hot_unplug, copy, flip,
// hot_plug, cleanup; kind noop) on a RocksDB journal synced on every commit. Prints one JSON
// object: runs_per_s, durable_transitions_per_s, p50_run_ms, p99_run_ms, p99_commit_ms,
// peak_rss_bytes, the process's CPU per run and per durable transition (what the engine costs
// with tasks that do nothing) split by thread, and more.
//   build/bench/engine_throughput [--runs 10000] [--threads 0] [--max-batch 4096]
//     [--window 384] [--policy sharing|stealing] [--no-sync] [--db DIR]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>

#include "actors/engine.hpp"
#include "bench/bench_util.hpp"
#include "common/cli_numbers.hpp"

using namespace ferry;


int main(int argc, char** argv) {
  CLI::App app{"engine_throughput"};
  size_t runs = 10000;
  size_t threads = 0;
  size_t max_batch = 4096;
  size_t window = 384;
  std::string policy = "sharing";
  std::string db;
  bool no_sync = false;
  app.add_option("--runs", runs, "Concurrent runs (default 10000)")
    ->transform(ferry::whole_number(1));
  app.add_option("--threads", threads, "Scheduler threads (default: one per core)")
    ->transform(ferry::whole_number());
  app.add_option("--max-batch", max_batch, "Most transitions per journal batch")
    ->transform(ferry::whole_number());
  app.add_option("--db", db, "Journal directory (default: a fresh temporary one)");
  app.add_option("--window", window, "Transitions in flight to the journal (default 384)")
    ->transform(ferry::whole_number());
  app.add_option("--policy", policy, "Scheduler policy: sharing or stealing");
  app.add_flag("--no-sync", no_sync, "Do not sync the WAL (for comparison only)");
  CLI11_PARSE(app, argc, argv);

  bench::temp_dir tmp{"ferry-bench-throughput"};
  engine_options opts;
  opts.journal_path = db.empty() ? tmp.path() : db;
  opts.sync = !no_sync;
  opts.threads = threads;
  opts.max_batch = max_batch;
  opts.max_inflight_commits = window;
  opts.scheduler_policy = policy;
  auto eng = bench::must(engine::open(opts), "engine_throughput");
  auto& e = *eng;
  auto def = bench::must(e.load(bench::five_task_noop), "engine_throughput");
  std::atomic<size_t> submitted{0};
  std::atomic<size_t> failed{0};
  std::atomic<int64_t> submitted_ns{0};
  auto cpu0 = bench::process_cpu_s();
  auto threads0 = bench::cpu_by_thread();
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < runs; ++i)
    e.submit_async(def, {}, [&](caf::expected<run_id> id) {
      if (!id)
        failed.fetch_add(1);
      if (submitted.fetch_add(1) + 1 == runs)
        submitted_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count());
    });
  auto& m = e.metrics();
  auto deadline = start + std::chrono::minutes{10};
  while (m.runs_succeeded.load() + failed.load() < runs
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto cpu = bench::process_cpu_s() - cpu0;
  auto threads1 = bench::cpu_by_thread();
  auto split = bench::split_engine_cpu(threads0, threads1);
  auto done = m.runs_succeeded.load();
  auto transitions = m.transitions.load();
  auto per_transition = [&](double s) {
    return transitions == 0 ? 0.0 : s * 1e6 / static_cast<double>(transitions);
  };
  auto p99_commit_ms = static_cast<double>(m.commit_latency.quantile(0.99)) / 1e6;
  auto p50_commit_ms = static_cast<double>(m.commit_latency.quantile(0.50)) / 1e6;
  auto p99_window_ms = static_cast<double>(m.window_wait.quantile(0.99)) / 1e6;
  auto p99_ack_ms = static_cast<double>(m.ack_latency.quantile(0.99)) / 1e6;
  auto jstats = e.journal_statistics();
  // Per-run durations from the journal's checkpoints (created -> last transition).
  std::vector<int64_t> durations;
  list_filter all;
  if (auto list = e.list(all)) {
    for (auto& s : *list)
      if (s.status == run_status::succeeded)
        durations.push_back(s.updated - s.created);
  }
  std::sort(durations.begin(), durations.end());
  auto peak = bench::peak_rss_bytes();
  e.close();
  bench::json_object out;
  out.add("benchmark", std::string{"engine_throughput"})
    .add("runs", static_cast<uint64_t>(runs))
    .add("runs_succeeded", done)
    .add("submit_errors", static_cast<uint64_t>(failed.load()))
    .add("elapsed_s", elapsed)
    .add("all_submitted_s", static_cast<double>(submitted_ns.load()) / 1e9)
    .add("runs_per_s", static_cast<double>(done) / elapsed)
    .add("durable_transitions_per_s", static_cast<double>(transitions) / elapsed)
    .add("transitions", transitions)
    .add("cpu_us_per_run", done == 0 ? 0.0 : cpu * 1e6 / static_cast<double>(done))
    .add("cpu_us_per_transition", per_transition(cpu))
    .add("workers_cpu_us_per_transition", per_transition(split.workers))
    .add("journal_cpu_us_per_transition", per_transition(split.journal))
    .add("rocksdb_cpu_us_per_transition", per_transition(split.rocksdb))
    .add("p50_run_ms", static_cast<double>(bench::quantile(durations, 0.50)))
    .add("p99_run_ms", static_cast<double>(bench::quantile(durations, 0.99)))
    .add("p50_commit_ms", p50_commit_ms)
    .add("p99_commit_ms", p99_commit_ms)
    .add("p99_ack_ms", p99_ack_ms)
    .add("p99_window_wait_ms", p99_window_ms)
    .add("journal_batches", jstats ? jstats->batches : 0)
    .add("largest_batch", jstats ? jstats->largest_batch : 0)
    .add("peak_rss_bytes", peak)
    .add("synced", !no_sync);
  out.print();
  return done == runs ? 0 : 1;
}
