#include "actors/commit_window.hpp"

#include <algorithm>

#include <caf/send.hpp>

namespace ferry {

bool commit_window::acquire_or_wait(const migration_actor& waiter) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (free_ > 0 && waiters_.empty()) {
    --free_;
    return true;
  }
  waiters_.push_back(waiter);
  return false;
}

void commit_window::release() {
  migration_actor next;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (waiters_.empty()) {
      ++free_;
      return;
    }
    next = std::move(waiters_.front());
    waiters_.pop_front();
  }
  caf::anon_send(next, flush_atom::value);
}

void commit_window::cancel(const migration_actor& waiter) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = std::find(waiters_.begin(), waiters_.end(), waiter);
    if (i != waiters_.end()) {
      waiters_.erase(i);
      return;
    }
  }
  // The slot was handed over already (the flush_atom is in its mailbox): pass it on.
  release();
}

size_t commit_window::waiting() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return waiters_.size();
}

} // namespace ferry
