// Deadlines for driver calls: with_deadline() wraps a reply so that it is answered exactly
// once, either by the driver's result or, when the call's timeout passes first, by
// deadline_exceeded naming the call. A late result is dropped. The timeouts fire on one
// shared timer thread (deadline_timer), never on CAF's scheduler.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "hypervisor/driver.hpp"

namespace ferry::hv {

/// One thread that runs callbacks at their due time. Thread-safe.
class deadline_timer {
public:
  using clock = std::chrono::steady_clock;

  deadline_timer();
  ~deadline_timer();
  deadline_timer(const deadline_timer&) = delete;
  deadline_timer& operator=(const deadline_timer&) = delete;

  /// The process-wide timer the drivers share.
  static deadline_timer& shared();

  /// Runs `f` on the timer thread at `due` unless cancelled first. Returns an id for cancel().
  uint64_t at(clock::time_point due, std::function<void()> f);
  /// Cancels a callback that has not run yet; no effect otherwise.
  void cancel(uint64_t id);

private:
  void loop();

  std::mutex mtx_;
  std::condition_variable cv_;
  std::multimap<clock::time_point, uint64_t> due_;
  std::unordered_map<uint64_t, std::pair<clock::time_point, std::function<void()>>> jobs_;
  uint64_t next_id_ = 1;
  bool stop_ = false;
  std::thread thread_;
};

/// `r`, answered once: by the result, or by deadline_exceeded ("<what>: no answer within
/// <timeout> ms") when `c.timeout` passes first.
template <class T>
reply<T> with_deadline(const call& c, std::string what, reply<T> r) {
  struct state {
    std::atomic<bool> answered{false};
    reply<T> r;
    uint64_t timer = 0;
  };
  auto st = std::make_shared<state>();
  st->r = std::move(r);
  auto& timer = deadline_timer::shared();
  auto ms = c.timeout.count();
  st->timer = timer.at(deadline_timer::clock::now() + c.timeout, [st, what, ms] {
    if (!st->answered.exchange(true))
      st->r(make_error(errc::deadline_exceeded,
                       what + ": no answer within " + std::to_string(ms) + " ms"));
  });
  return [st](caf::expected<T> x) {
    if (st->answered.exchange(true))
      return;
    deadline_timer::shared().cancel(st->timer);
    st->r(std::move(x));
  };
}

} // namespace ferry::hv
