#include "actors/commit_window.hpp"

#include "actors/metrics.hpp"
#include "common/clock.hpp"

namespace ferry {

bool commit_window::submit(const migration_actor& from, commit_request req) {
  auto now = steady_now_ns();
  std::lock_guard<std::mutex> guard{mtx_};
  if (free_ == 0 || !waiting_.empty()) {
    waiting_.push_back(waiter{pending_commit{std::move(req), from}, now});
    by_run_.emplace(from.address(), std::prev(waiting_.end()));
    return false;
  }
  --free_;
  if (wait_ != nullptr)
    wait_->record(0);
  req.sent_ns = now;
  ready_.push_back(pending_commit{std::move(req), from});
  if (flush_sent_)
    return false;
  flush_sent_ = true;
  return true;
}

size_t commit_window::take(size_t max, std::vector<pending_commit>& out) {
  std::lock_guard<std::mutex> guard{mtx_};
  flush_sent_ = false;
  size_t n = 0;
  while (n < max && !ready_.empty()) {
    out.push_back(std::move(ready_.front()));
    ready_.pop_front();
    ++n;
  }
  return n;
}

bool commit_window::release(size_t n) {
  int64_t now = 0;
  std::lock_guard<std::mutex> guard{mtx_};
  free_ += n;
  while (free_ > 0 && !waiting_.empty()) {
    if (now == 0)
      now = steady_now_ns();
    auto& w = waiting_.front();
    if (wait_ != nullptr)
      wait_->record(now - w.since_ns);
    w.commit.req.sent_ns = now;
    by_run_.erase(w.commit.from.address());
    ready_.push_back(std::move(w.commit));
    waiting_.pop_front();
    --free_;
  }
  if (ready_.empty() || flush_sent_)
    return false;
  flush_sent_ = true;
  return true;
}

void commit_window::cancel(const migration_actor& from) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = by_run_.find(from.address());
  if (i == by_run_.end())
    return;
  waiting_.erase(i->second);
  by_run_.erase(i);
}

} // namespace ferry
