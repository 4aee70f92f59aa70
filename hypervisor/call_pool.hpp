// ferry::hv::call_pool — a pool of plain threads for blocking calls (libvirt's C API), so that
// they never run on CAF's scheduler threads. It owns its threads and their queue of jobs.
// submit() may be called from any thread; jobs run on the pool's threads.
//
// A hung job must not stall the others: when every thread is busy and a job waits, the pool
// starts another thread (up to max_threads); threads beyond `threads` exit after idling for
// `idle_timeout`.
//
// Destruction runs the jobs already submitted and joins every thread, so it waits for jobs
// in flight. A libvirt call hung on a dead remote connection therefore blocks destruction
// until libvirt's keepalive gives up on the connection (keepalive interval × count, see
// libvirt_driver_options) and the call returns. This was chosen over detaching hung threads:
// a detached thread would outlive the objects its job uses. When the last reference to a
// pool is dropped on one of its own threads, that thread is detached instead of joined; it
// finishes using only state it shares with the pool.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

namespace ferry::hv {

struct call_pool_options {
  /// Threads started at once and kept while idle. Default: 4
  size_t threads = 4;
  /// Upper bound on threads while jobs are blocked. Default: 32
  size_t max_threads = 32;
  /// How long a thread beyond `threads` stays idle before it exits. Default: 10 s
  std::chrono::milliseconds idle_timeout{10000};
};

class call_pool {
public:
  explicit call_pool(call_pool_options opts = {});
  /// Runs the jobs already submitted, then joins the threads (see the file comment).
  ~call_pool();
  call_pool(const call_pool&) = delete;
  call_pool& operator=(const call_pool&) = delete;

  /// Queues `job`; it runs on a pool thread. Starts a thread when none is idle and the
  /// pool is below max_threads. Thread-safe.
  void submit(std::function<void()> job);

  /// Threads alive now (for tests and metrics). Thread-safe.
  size_t size() const;

private:
  struct shared;
  std::shared_ptr<shared> st_;
};

} // namespace ferry::hv
