// commit_window — how many transitions may be on their way to the journal at once. A run
// takes a slot before it sends a transition; the journal gives the slot back once that
// transition is durable; a run that finds no slot free queues and is sent flush_atom when one
// is handed to it.
// Bounding what is in flight bounds the journal's batches and its commit latency, and keeps
// memory flat when more runs want to commit than the disk can take: the wait moves before the
// journal, where it is measured separately. Thread-safe; shared by the runs of one engine.
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>
#include <unordered_set>

#include <caf/actor_addr.hpp>

#include "actors/actors.hpp"

namespace ferry {

class commit_window {
public:
  explicit commit_window(size_t capacity)
    : capacity_(capacity == 0 ? 1 : capacity), free_(capacity_) {
  }

  /// Transitions on their way to the journal now.
  size_t in_flight() {
    std::lock_guard<std::mutex> g{mtx_};
    return capacity_ - free_;
  }

  /// Runs waiting for a slot now.
  size_t waiting() {
    std::lock_guard<std::mutex> g{mtx_};
    return queued_.size();
  }

  /// Takes a slot (true), or queues `waiter`, which will be sent flush_atom once a slot is
  /// handed to it (false).
  bool acquire_or_wait(const migration_actor& waiter);

  /// Gives `n` slots back: to the first waiters if there are any.
  void release(size_t n = 1);

  /// `waiter` stops waiting (it is quitting). If a slot was already handed to it, that slot
  /// is released again.
  void cancel(const migration_actor& waiter);

private:
  std::mutex mtx_;
  size_t capacity_;
  size_t free_;
  /// In arrival order; may hold runs that cancelled (not in `queued_`), skipped on release.
  std::deque<migration_actor> waiters_;
  /// The runs waiting: cancel() is O(1) even with every run of a journal queued.
  std::unordered_set<caf::actor_addr> queued_;
};

} // namespace ferry
