// memory_per_run: N runs in flight at once, each blocked on a gate (the first of its five
// tasks), on a synced RocksDB journal. Prints one JSON object with rss_per_run_bytes: the
// growth of resident memory from the open engine to all N runs durably waiting, per run,
// both read after asking the allocator (jemalloc) to return the pages it holds freed
// (rss_after_submit_bytes is the reading before that).
//   build/bench/memory_per_run [--runs 100000] [--db DIR]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>
#include <jemalloc/jemalloc.h>

#include "actors/engine.hpp"
#include "bench/bench_util.hpp"
#include "common/cli_numbers.hpp"

using namespace ferry;

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

int main(int argc, char** argv) {
  CLI::App app{"memory_per_run"};
  size_t runs = 100000;
  std::string db;
  app.add_option("--runs", runs, "Runs in flight (default 100000)")
    ->transform(ferry::whole_number(1));
  app.add_option("--db", db, "Journal directory (default: a fresh temporary one)");
  CLI11_PARSE(app, argc, argv);

  bench::temp_dir tmp{"ferry-bench-memory"};
  engine_options opts;
  opts.journal_path = db.empty() ? tmp.path() : db;
  auto eng = bench::must(engine::open(opts), "memory_per_run");
  auto& e = *eng;
  auto def = bench::must(e.load(R"(
name: "gated-five"
tasks { id: "hot_unplug" kind: "noop" gate: true }
tasks { id: "copy" kind: "noop" depends_on: "hot_unplug" }
tasks { id: "flip" kind: "noop" depends_on: "copy" point_of_no_return: true }
tasks { id: "hot_plug" kind: "noop" depends_on: "flip" }
tasks { id: "cleanup" kind: "noop" depends_on: "hot_plug" }
)"), "memory_per_run");
  mallctl("arena." STRINGIFY(MALLCTL_ARENAS_ALL) ".purge", nullptr, nullptr, nullptr, 0);
  auto before = bench::rss_bytes();
  auto start = std::chrono::steady_clock::now();
  auto failed = bench::submit_in_waves(e, def, runs);
  auto submit_s =
    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Every run is durably at its gate: its first transition was acknowledged.
  list_filter running;
  running.statuses = {run_status::running};
  auto listed = e.list(running);
  auto after_immediate = bench::rss_bytes();
  // Steady state: the allocator returns pages freed by the submissions (temporary actors,
  // messages, encode buffers) after its decay time; ask it to do so now rather than wait.
  mallctl("arena." STRINGIFY(MALLCTL_ARENAS_ALL) ".purge", nullptr, nullptr, nullptr, 0);
  auto after = bench::rss_bytes();
  auto in_flight = listed ? listed->size() : 0;
  bench::json_object out;
  out.add("benchmark", std::string{"memory_per_run"})
    .add("runs", static_cast<uint64_t>(runs))
    .add("runs_in_flight", static_cast<uint64_t>(in_flight))
    .add("submit_errors", static_cast<uint64_t>(failed))
    .add("submit_s", submit_s)
    .add("rss_before_bytes", before)
    .add("rss_after_submit_bytes", after_immediate)
    .add("rss_after_bytes", after)
    .add("rss_per_run_bytes",
         static_cast<uint64_t>((after > before ? after - before : 0) / (runs ? runs : 1)))
    .add("peak_rss_bytes", bench::peak_rss_bytes());
  out.print();
  e.close();
  return in_flight == runs && failed == 0 ? 0 : 1;
}
