// recovery: a journal holding N runs that are not at rest (each with an attempt in flight)
// is reopened. Prints one JSON object with resume_all_s: from the start of engine::open to
// every run having made its next durable transition (the attempt in flight re-dispatched and
// completed, and the next task dispatched, which only happens once that transition is
// durable).
//   build/bench/recovery [--runs 100000] [--db DIR]
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include <CLI/CLI.hpp>

#include "actors/engine.hpp"
#include "bench/bench_util.hpp"
#include "common/cli_numbers.hpp"

using namespace ferry;

namespace {

/// Phase 1: parks every attempt forever (the controller "dies" with them in flight).
/// Phase 2: completes at once.
class hold_executor : public task_executor {
public:
  explicit hold_executor(bool complete) : complete_(complete) {
  }
  kind_spec spec() const override { return kind_spec{"hold", {}, false, ""}; }
  void execute(const task_call&, completion done) override {
    if (complete_) {
      done(task_result::success());
      return;
    }
    std::lock_guard<std::mutex> guard{mtx_};
    parked_.push_back(std::move(done));
  }

private:
  bool complete_;
  std::mutex mtx_;
  std::vector<completion> parked_;
};

/// Counts its dispatches: the next task's dispatch proves the run's transition is durable.
class mark_executor : public task_executor {
public:
  kind_spec spec() const override { return kind_spec{"mark", {}, false, ""}; }
  void execute(const task_call&, completion done) override {
    count.fetch_add(1);
    done(task_result::success());
  }
  std::atomic<size_t> count{0};
};

const char* definition_text = R"(
name: "recover-me"
tasks { id: "copy" kind: "hold" }
tasks { id: "flip" kind: "mark" depends_on: "copy" }
)";

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"recovery"};
  size_t runs = 100000;
  std::string db;
  app.add_option("--runs", runs, "Runs to resume (default 100000)")
    ->transform(ferry::whole_number(1));
  app.add_option("--db", db, "Journal directory (default: a fresh temporary one)");
  CLI11_PARSE(app, argc, argv);
  bench::temp_dir tmp{"ferry-bench-recovery"};
  auto path = db.empty() ? tmp.path() : db;

  // Phase 1: N runs, each with its first attempt in flight, then the engine goes away.
  {
    engine_options opts;
    opts.journal_path = path;
    opts.executors = {std::make_shared<hold_executor>(false), std::make_shared<mark_executor>()};
    auto eng = bench::must(engine::open(opts), "recovery");
    auto def = bench::must(eng->load(definition_text), "recovery");
    bench::submit_in_waves(*eng, def, runs);
    eng->close();
  }

  // Phase 2: reopen and time until every run made its next transition.
  auto mark = std::make_shared<mark_executor>();
  engine_options opts;
  opts.journal_path = path;
  opts.executors = {std::make_shared<hold_executor>(true), mark};
  auto start = std::chrono::steady_clock::now();
  auto eng = bench::must(engine::open(opts), "recovery");
  auto opened = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::minutes{5};
  while (mark->count.load() < runs && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds{500});
  auto resumed = std::chrono::steady_clock::now();
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  bench::json_object out;
  out.add("benchmark", std::string{"recovery"})
    .add("runs", static_cast<uint64_t>(runs))
    .add("runs_recovered", eng->recovered())
    .add("runs_resumed", static_cast<uint64_t>(mark->count.load()))
    .add("open_s", secs(start, opened))
    .add("resume_all_s", secs(start, resumed))
    .add("peak_rss_bytes", bench::peak_rss_bytes());
  out.print();
  eng->close();
  return mark->count.load() >= runs ? 0 : 1;
}
