// embed — a control plane embedding ferry::engine. It registers its own task kind,
// `define_domain`, whose executor completes asynchronously from its own std::thread and honours
// the idempotency key: a tiny in-process "fake hypervisor" remembers what each key did, so a
// re-dispatch of the same attempt (after a crash) reconciles instead of acting twice. It opens
// the engine on a RocksDB journal in a temporary directory, loads a definition from an inline
// text-format string (the custom kind plus the built-in `noop`), submits it, prints each event
// once it is durable, waits for the run with engine::wait and a timeout, prints the final state
// and closes. Exit status 0 when the run succeeded; 1 with a message otherwise.
//   example_embed [JOURNAL_DIR]   (given: the journal is kept there, for journal_reader.cpp)
#include <stdlib.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "actors/engine.hpp"

using namespace ferry;

namespace {

/// A fake hypervisor whose only operation, `define_domain`, completes on its own thread.
class fake_hypervisor final : public task_executor {
public:
  fake_hypervisor() : worker_([this] { loop(); }) {
  }
  ~fake_hypervisor() override { stop(); }

  kind_spec spec() const override {
    return kind_spec{"define_domain",
                     {{"domain", param_type::string, true, "The domain's name."},
                      {"host", param_type::string, true, "The host to define it on."}},
                     false, "Defines a domain on a host."};
  }

  // Called on a CAF scheduler thread: queue the work, never block.
  void execute(const task_call& call, completion done) override {
    auto what = find_param(call.parameters(), "domain")->s + " on "
                + find_param(call.parameters(), "host")->s;
    std::lock_guard<std::mutex> guard{mtx_};
    jobs_.push_back(job{call.key, std::move(what), std::move(done)});
    cv_.notify_one();
  }

  /// Joins the worker; queued attempts are dropped (the next engine re-dispatches them).
  void stop() {
    std::unique_lock<std::mutex> lock{mtx_};
    stopping_ = true;
    cv_.notify_one();
    lock.unlock();
    if (worker_.joinable())
      worker_.join();
  }

private:
  struct job {
    std::string key, what;
    completion done;
  };

  void loop() {
    std::unique_lock<std::mutex> lock{mtx_};
    while (cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); }), !stopping_) {
      auto j = std::move(jobs_.front());
      jobs_.pop_front();
      // Check the world before acting: a re-dispatched attempt carries the same key.
      bool again = !defined_.emplace(j.key, j.what).second;
      lock.unlock();
      j.done(task_result::success((again ? "already defined " : "defined ") + j.what));
      lock.lock();
    }
  }

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<job> jobs_;
  std::map<std::string, std::string> defined_; // idempotency key -> what it defined
  bool stopping_ = false;
  std::thread worker_; // last: starts once the members above exist
};

const char* definition_text = R"(
name: "embed-define-domain"
tasks { id: "prepare" kind: "noop" }
tasks {
  id: "define_target"  kind: "define_domain"  depends_on: "prepare"
  params { fields { key: "domain" value { string_value: "web-1" } }
           fields { key: "host" value { string_value: "host-b" } } }
  retry { max_attempts: 3 initial_backoff_ms: 50 }  timeout_ms: 5000
  compensation { kind: "noop" }
}
tasks { id: "flip" kind: "noop" depends_on: "define_target" point_of_no_return: true }
)";

int fail(const std::string& what) {
  std::fprintf(stderr, "embed: %s\n", what.c_str());
  return 1;
}

/// Submits the definition, watches and waits for the run; 0 when it succeeded.
int run(engine& e) {
  auto def = e.load(definition_text);
  if (!def)
    return fail("load: " + describe(def.error()));
  auto id = e.submit(*def);
  if (!id)
    return fail("submit: " + describe(id.error()));
  std::printf("run %s submitted\n", id->c_str());
  // Callbacks run on the engine's threads: keep them short, never call the engine from them.
  auto watched = std::make_shared<std::promise<void>>();
  auto watch = e.watch(
    *id, 1,
    [d = *def](const std::vector<event>& evs) {
      for (auto& ev : evs)
        std::printf("  #%-2u %-17s %-13s %s\n", static_cast<unsigned>(ev.seq), to_string(ev.type),
                    ev.task < d->tasks.size() ? d->tasks[ev.task].id.c_str() : "",
                    (ev.output.empty() ? ev.message : ev.output).c_str());
    },
    [watched](const run_state&) { watched->set_value(); });
  auto final_state = e.wait(*id, std::chrono::seconds{30});
  if (!final_state)
    return fail("wait: " + describe(final_state.error()));
  // wait() and the watch hear of the end separately: let the watch print its last events.
  if (watched->get_future().wait_for(std::chrono::seconds{5}) != std::future_status::ready)
    return fail("watch: no end after the run came to rest");
  std::printf("run %s: %s\n", id->c_str(), to_string(final_state->status));
  for (size_t i = 0; i < final_state->tasks.size(); ++i)
    std::printf("  %-14s %-10s attempts %u\n", (*def)->tasks[i].id.c_str(),
                to_string(final_state->tasks[i].status), final_state->tasks[i].attempt);
  if (final_state->status != run_status::succeeded)
    return fail("run " + *id + ": " + final_state->reason);
  return 0;
} // the watch handle ends here, before the engine closes: it must not outlive it

} // namespace

int main(int argc, char** argv) {
  char tmp[] = "/tmp/ferry-embed-XXXXXX";
  bool keep = argc > 1;
  std::string dir = keep ? argv[1] : "";
  if (keep) {
    std::filesystem::remove_all(dir);
  } else {
    if (::mkdtemp(tmp) == nullptr)
      return fail("cannot create a temporary directory");
    dir = tmp;
  }
  auto hv = std::make_shared<fake_hypervisor>();
  engine_options opts;
  opts.journal_path = dir;
  opts.executors.push_back(hv);
  auto eng = engine::open(opts);
  int rc = eng ? run(**eng) : fail("open: " + describe(eng.error()));
  hv->stop(); // no completion may arrive once the engine is closed
  if (eng)
    (*eng)->close();
  if (!keep)
    std::filesystem::remove_all(dir);
  if (rc == 0)
    std::printf("ok\n");
  return rc;
}
