#include "actors/commit_window.hpp"

#include <vector>

#include <caf/send.hpp>

namespace ferry {

bool commit_window::acquire_or_wait(const migration_actor& waiter) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (free_ > 0 && queued_.empty()) {
    --free_;
    return true;
  }
  waiters_.push_back(waiter);
  queued_.insert(waiter.address());
  return false;
}

void commit_window::release(size_t n) {
  std::vector<migration_actor> next;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    while (next.size() < n && !waiters_.empty()) {
      auto w = std::move(waiters_.front());
      waiters_.pop_front();
      if (queued_.erase(w.address()) != 0)
        next.push_back(std::move(w));
    }
    free_ += n - next.size();
  }
  for (auto& w : next)
    caf::anon_send(w, flush_atom::value);
}

void commit_window::cancel(const migration_actor& waiter) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    // Still queued: forget it (its deque entry is skipped on release).
    if (queued_.erase(waiter.address()) != 0)
      return;
  }
  // The slot was handed over already (the flush_atom is in its mailbox): pass it on.
  release();
}

} // namespace ferry
