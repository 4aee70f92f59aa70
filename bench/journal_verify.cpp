// journal_verify: writes a journal of about --events events through the engine (runs of a
// --tasks-task noop workflow: RUN_STARTED, each task's start and success, RUN_SUCCEEDED), then
// verifies it as `ferry journal verify` does (every run's events replayed through apply() and
// compared with its checkpoint, the invariants checked) and prints one JSON object:
// events_per_s (the target: at least 500,000), events, runs, verify_s, write_s, problems,
// peak_rss_bytes. Exits 1 when the journal does not verify.
//   build/bench/journal_verify [--events 1000000] [--tasks 4] [--db DIR]
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include <CLI/CLI.hpp>

#include "bench/bench_util.hpp"
#include "common/cli_numbers.hpp"
#include "persistence/journal_reader.hpp"
#include "persistence/journal_verify.hpp"

using namespace ferry;

int main(int argc, char** argv) {
  CLI::App app{"journal_verify: verify a journal of N events"};
  uint64_t events = 1000000;
  size_t tasks = 4;
  std::string db;
  app.add_option("--events", events, "Events in the journal (default 1000000)")
    ->transform(ferry::whole_number(1));
  app.add_option("--tasks", tasks, "Tasks per run (default 4; a run has 2 + 2 x tasks events)")
    ->transform(ferry::whole_number(1));
  app.add_option("--db", db, "Journal directory (default: a temporary one, removed after)");
  CLI11_PARSE(app, argc, argv);
  bench::temp_dir tmp{"ferry-journal-verify"};
  auto path = db.empty() ? tmp.path() + "/journal" : db;
  auto per_run = 2 + 2 * tasks;
  auto runs = static_cast<size_t>((events + per_run - 1) / per_run);

  std::string text = "name: \"bench\"\n";
  for (size_t t = 0; t < tasks; ++t)
    text += "tasks { id: \"t" + std::to_string(t) + "\" kind: \"noop\""
            + (t ? " depends_on: \"t" + std::to_string(t - 1) + "\"" : std::string{}) + " }\n";
  auto t0 = std::chrono::steady_clock::now();
  {
    engine_options opts;
    opts.journal_path = path;
    opts.threads = 2;
    auto e = bench::must(engine::open(opts), "journal_verify");
    auto def = bench::must(e->load(text), "journal_verify");
    // Every run at rest before the engine closes: count them from the engine's metrics.
    std::mutex m;
    std::condition_variable cv;
    size_t done = 0;
    std::vector<run_id> ids(runs);
    for (size_t i = 0; i < runs; ++i)
      ids[i] = "r" + std::to_string(i);
    std::atomic<size_t> failed{0};
    for (size_t i = 0; i < runs; ++i) {
      submit_options so;
      so.id = ids[i];
      e->submit_async(def, so, [&](caf::expected<run_id> id) {
        if (!id)
          failed.fetch_add(1);
        std::lock_guard<std::mutex> g{m};
        ++done;
        cv.notify_all();
      });
      if (i % 4096 == 4095) {
        std::unique_lock<std::mutex> lk{m};
        cv.wait(lk, [&] { return done + 2048 >= i + 1; });
      }
    }
    {
      std::unique_lock<std::mutex> lk{m};
      cv.wait(lk, [&] { return done == runs; });
    }
    for (auto& id : ids)
      bench::must(e->wait(id, std::chrono::minutes(10)), "journal_verify");
    if (failed.load() != 0) {
      std::fprintf(stderr, "journal_verify: %zu submissions failed\n", failed.load());
      return 1;
    }
    e->close();
  }
  auto write_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  auto t1 = std::chrono::steady_clock::now();
  auto reader = bench::must(journal_reader::open(path), "journal_verify");
  auto rep = bench::must(verify_journal(reader, {}, 0), "journal_verify");
  auto verify_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  bench::json_object()
    .add("benchmark", std::string{"journal_verify"})
    .add("runs", rep.runs)
    .add("events", rep.events)
    .add("problems", static_cast<uint64_t>(rep.problems.size()))
    .add("write_s", write_s)
    .add("verify_s", verify_s)
    .add("events_per_s", static_cast<double>(rep.events) / verify_s)
    .add("peak_rss_bytes", bench::peak_rss_bytes())
    .print();
  for (size_t i = 0; i < rep.problems.size() && i < 5; ++i)
    std::fprintf(stderr, "%s\n", rep.problems[i].c_str());
  return rep.problems.empty() ? 0 : 1;
}
