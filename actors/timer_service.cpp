#include "actors/timer_service.hpp"

#include <chrono>
#include <vector>

#include "common/thread_name.hpp"

namespace ferry {

timer_service::timer_service() : thread_([this] { loop(); }) {
  name_thread(thread_, "ferry.timers");
}

timer_service::~timer_service() {
  stop();
}

uint64_t timer_service::arm(time_ms at, callback f) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto id = next_id_++;
  auto pos = by_time_.emplace(at, id);
  entries_.emplace(id, entry{pos, std::move(f)});
  if (pos == by_time_.begin())
    cv_.notify_one();
  return id;
}

void timer_service::cancel(uint64_t id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = entries_.find(id);
  if (i == entries_.end())
    return;
  by_time_.erase(i->second.pos);
  entries_.erase(i);
}

void timer_service::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_ && !thread_.joinable())
      return;
    stopping_ = true;
    by_time_.clear();
    entries_.clear();
  }
  cv_.notify_one();
  if (thread_.joinable())
    thread_.join();
}

uint64_t timer_service::wakeups() const {
  return wakeups_.load(std::memory_order_relaxed);
}

namespace {

constexpr time_ms max_wait_ms = 60000;

} // namespace

void timer_service::loop() {
  std::vector<std::pair<uint64_t, callback>> due;
  std::unique_lock<std::mutex> lock{mtx_};
  while (!stopping_) {
    wakeups_.fetch_add(1, std::memory_order_relaxed);
    if (by_time_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto now = wall_now_ms();
    auto first = by_time_.begin()->first;
    if (first > now) {
      // At most a minute at a time: a time far ahead (a run not before year 292 million)
      // would overflow the clock's nanoseconds and wait for nothing, in a loop.
      auto until = first - now > max_wait_ms ? now + max_wait_ms : first;
      cv_.wait_until(lock, std::chrono::system_clock::time_point{
                             std::chrono::milliseconds{until}});
      continue;
    }
    while (!by_time_.empty() && by_time_.begin()->first <= now) {
      auto id = by_time_.begin()->second;
      by_time_.erase(by_time_.begin());
      auto i = entries_.find(id);
      due.emplace_back(id, std::move(i->second.fn));
      entries_.erase(i);
    }
    lock.unlock();
    for (auto& [id, f] : due)
      f(id);
    due.clear();
    lock.lock();
  }
}

} // namespace ferry
