#include "hypervisor/call_pool.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/thread_name.hpp"

namespace ferry::hv {

// What the pool's threads share with it. The threads hold it by shared_ptr, so a thread
// detached by a destructor running on it can finish safely.
struct call_pool::shared {
  call_pool_options opts;
  mutable std::mutex mtx;
  std::condition_variable cv;
  std::deque<std::function<void()>> jobs;
  /// Threads in their loop, by id.
  std::unordered_map<std::thread::id, std::thread> workers;
  /// Threads that left their loop and still need a join.
  std::vector<std::thread> exited;
  /// Threads not running a job (a thread just started counts as idle).
  size_t idle = 0;
  bool stop = false;

  /// Starts a thread. Requires mtx (the new thread waits for it before it looks around).
  void spawn_locked(const std::shared_ptr<shared>& self) {
    std::thread t{[self] { self->work(); }};
    name_thread(t, "ferry.libvirt");
    auto id = t.get_id();
    workers.emplace(id, std::move(t));
    ++idle;
  }

  void work() {
    std::unique_lock<std::mutex> lk{mtx};
    for (;;) {
      if (!jobs.empty()) {
        auto job = std::move(jobs.front());
        jobs.pop_front();
        --idle;
        lk.unlock();
        try {
          job();
        } catch (...) {
          // A job reports through its own reply; an escaping exception must not end the
          // thread (its caller is answered by the call's deadline).
        }
        // Destroying the job may drop the last reference to the pool; not under mtx.
        job = nullptr;
        lk.lock();
        ++idle;
        continue;
      }
      if (stop)
        break;
      auto ready = [this] { return stop || !jobs.empty(); };
      bool woke = true;
      if (workers.size() > opts.threads)
        woke = cv.wait_for(lk, opts.idle_timeout, ready);
      else
        cv.wait(lk, ready);
      if (!woke && workers.size() > opts.threads)
        break;
    }
    --idle;
    // Still under mtx. The destructor may have taken this thread already.
    auto i = workers.find(std::this_thread::get_id());
    if (i != workers.end()) {
      exited.push_back(std::move(i->second));
      workers.erase(i);
    }
  }
};

call_pool::call_pool(call_pool_options opts) : st_(std::make_shared<shared>()) {
  opts.threads = std::max<size_t>(opts.threads, 1);
  opts.max_threads = std::max(opts.max_threads, opts.threads);
  st_->opts = opts;
  std::lock_guard<std::mutex> g{st_->mtx};
  for (size_t i = 0; i < opts.threads; ++i)
    st_->spawn_locked(st_);
}

call_pool::~call_pool() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> g{st_->mtx};
    st_->stop = true;
    for (auto& [id, t] : st_->workers)
      threads.push_back(std::move(t));
    st_->workers.clear();
    for (auto& t : st_->exited)
      threads.push_back(std::move(t));
    st_->exited.clear();
  }
  st_->cv.notify_all();
  auto self = std::this_thread::get_id();
  for (auto& t : threads) {
    if (t.get_id() == self)
      t.detach();
    else
      t.join();
  }
}

void call_pool::submit(std::function<void()> job) {
  std::vector<std::thread> exited;
  {
    std::lock_guard<std::mutex> g{st_->mtx};
    st_->jobs.push_back(std::move(job));
    if (st_->jobs.size() > st_->idle && st_->workers.size() < st_->opts.max_threads)
      st_->spawn_locked(st_);
    exited.swap(st_->exited);
  }
  st_->cv.notify_one();
  // These threads have left their loop; the joins are short.
  for (auto& t : exited)
    t.join();
}

size_t call_pool::size() const {
  std::lock_guard<std::mutex> g{st_->mtx};
  return st_->workers.size();
}

} // namespace ferry::hv
