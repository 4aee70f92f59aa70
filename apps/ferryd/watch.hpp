// Streams that outlive a call's handler: Watch (a run's events, live progress and final
// state) and Get with wait_ms (an answer once the run is at rest). Each keeps its state in a
// shared object, because the engine's callbacks may still arrive after gRPC is done with the
// call. The hub fans the engine's progress reports out to the watches of each run, ends
// every watch when ferryd shuts down, and owns the one deadline thread of every waiting Get
// and GetBatch (expedite(): all answered at once when ferryd stops).
// Thread-safe.
#pragma once

// First: the generated service calls abort() unqualified, which ferry::abort would hide.
#include "ferry/v1/api.grpc.pb.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <grpcpp/grpcpp.h>

#include "actors/engine.hpp"

namespace ferry::daemon {

/// One thread that calls each registered function once its time comes (the deadlines of
/// Get with wait_ms). Adding and removing do not wake the thread unless the earliest deadline
/// changes.
class deadline_timer {
public:
  using clock = std::chrono::steady_clock;
  /// When, and a number that tells entries of the same time apart.
  using entry = std::pair<clock::time_point, uint64_t>;

  deadline_timer();
  ~deadline_timer();

  entry add(clock::time_point at, std::function<void()> fn);
  /// Forgets `e` unless it fired already (true if it was removed).
  bool remove(const entry& e);
  /// Fires nothing more; joins the thread.
  void stop();
  /// Fires every entry now, and those added later at once (ferryd is stopping: the calls
  /// that wait answer with what is true now).
  void expedite();

private:
  void loop();

  std::mutex mtx_;
  std::condition_variable cv_;
  std::map<entry, std::function<void()>> q_;
  uint64_t next_ = 0;
  bool stopping_ = false;
  bool expedite_ = false;
  std::thread thread_;
};

class watch_hub {
public:
  /// The deadlines of waiting Gets.
  deadline_timer& timer() { return timer_; }

  struct watcher {
    virtual ~watcher() = default;
    virtual void progress(const task_progress& p) = 0;
    /// ferryd is stopping: end the stream (the client resumes from its last sequence number).
    virtual void shut_down() = 0;
  };

  /// engine_options::on_progress.
  void publish(const task_progress& p);

  /// Registers a watch of `run`; false once closed (the watch must end at once).
  bool add(const run_id& run, const std::shared_ptr<watcher>& w, uint64_t& key);
  void remove(const run_id& run, uint64_t key);

  /// Ends every watch and refuses new ones.
  void close_all();

  /// Watches open now.
  size_t active() const;

  /// Gets and GetBatches waiting now (wait_ms): one more, one fewer, how many.
  void wait_started() { waiting_.fetch_add(1); }
  void wait_answered() { waiting_.fetch_sub(1); }
  size_t waiting() const { return waiting_.load(); }

private:
  mutable std::mutex mtx_;
  bool closed_ = false;
  uint64_t next_ = 0;
  std::unordered_map<run_id, std::map<uint64_t, std::weak_ptr<watcher>>> watches_;
  size_t count_ = 0;
  std::atomic<size_t> waiting_{0};
  deadline_timer timer_;
};

/// Starts a Watch stream of `req->run_id()` for a caller already authorized.
grpc::ServerWriteReactor<v1::WatchResponse>* start_watch(engine& eng, watch_hub& hub,
                                                         const v1::WatchRequest& req);

/// Answers `resp` once `id` is at rest or after `wait`, with its state then (and its
/// definition, `with_definition`).
void start_wait(engine& eng, watch_hub& hub, grpc::ServerUnaryReactor* r, v1::Run* resp,
                const run_id& id, std::chrono::milliseconds wait, bool with_definition);

} // namespace ferry::daemon
