#include "hypervisor/deadline.hpp"

#include "common/thread_name.hpp"

namespace ferry::hv {

deadline_timer::deadline_timer() : thread_([this] { loop(); }) {
  name_thread(thread_, "ferry.deadline");
}

deadline_timer::~deadline_timer() {
  {
    std::lock_guard<std::mutex> g(mtx_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

deadline_timer& deadline_timer::shared() {
  static deadline_timer instance;
  return instance;
}

uint64_t deadline_timer::at(clock::time_point due, std::function<void()> f) {
  uint64_t id;
  bool first;
  {
    std::lock_guard<std::mutex> g(mtx_);
    id = next_id_++;
    first = due_.empty() || due < due_.begin()->first;
    due_.emplace(due, id);
    jobs_.emplace(id, std::make_pair(due, std::move(f)));
  }
  if (first)
    cv_.notify_all();
  return id;
}

void deadline_timer::cancel(uint64_t id) {
  std::lock_guard<std::mutex> g(mtx_);
  auto i = jobs_.find(id);
  if (i == jobs_.end())
    return;
  auto [lo, hi] = due_.equal_range(i->second.first);
  for (auto j = lo; j != hi; ++j)
    if (j->second == id) {
      due_.erase(j);
      break;
    }
  jobs_.erase(i);
}

void deadline_timer::loop() {
  std::unique_lock<std::mutex> lk(mtx_);
  while (!stop_) {
    if (due_.empty()) {
      cv_.wait(lk);
      continue;
    }
    auto first = due_.begin();
    // A copy: cancel() may erase the entry while this thread waits.
    auto due = first->first;
    if (clock::now() < due) {
      cv_.wait_until(lk, due);
      continue;
    }
    auto id = first->second;
    due_.erase(first);
    auto i = jobs_.find(id);
    auto f = std::move(i->second.second);
    jobs_.erase(i);
    lk.unlock();
    f();
    lk.lock();
  }
}

} // namespace ferry::hv
