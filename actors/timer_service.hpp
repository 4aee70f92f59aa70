// timer_service — one thread that calls callbacks at wall-clock times (ms since the epoch).
// Runs arm one timer each (their next wakeup) and cancel it when it changes, so the number
// of pending timers stays at most one per live run. Thread-safe; callbacks run on the
// service's thread and must be quick (they send a message).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/clock.hpp"

namespace ferry {

class timer_service {
public:
  /// Called with the id arm() returned.
  using callback = std::function<void(uint64_t)>;

  timer_service();
  ~timer_service();

  timer_service(const timer_service&) = delete;
  timer_service& operator=(const timer_service&) = delete;

  /// Calls `f` at `at` (or at once if it has passed). Returns an id for cancel().
  uint64_t arm(time_ms at, callback f);

  /// Cancels a timer that has not fired; a no-op otherwise.
  void cancel(uint64_t id);

  /// Cancels everything and joins the thread. Idempotent.
  void stop();

  /// How many times the thread has woken up (a timer due, an earlier one armed, or a wait
  /// ended), for tests: a timer far ahead must not keep it busy.
  uint64_t wakeups() const;

private:
  void loop();

  struct entry {
    std::multimap<time_ms, uint64_t>::iterator pos;
    callback fn;
  };

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::multimap<time_ms, uint64_t> by_time_;
  std::unordered_map<uint64_t, entry> entries_;
  uint64_t next_id_ = 1;
  std::atomic<uint64_t> wakeups_{0};
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace ferry
