// commit_window — the queue between the runs and the journal, and how many transitions may be
// on their way to the journal at once. A run hands its transition to the window: with a slot
// free it is ready for the journal's next batch at once; without one it waits, in arrival
// order, and is made ready when the journal gives a slot back (once a batch is written). The
// journal takes the ready transitions itself when it flushes: a transition costs no message to
// the journal, and only the first one since the journal's last flush sends it `flush`.
// Bounding what is in flight bounds the journal's batches and its commit latency, and keeps
// memory flat when more runs want to commit than the disk can take: the wait moves before the
// journal, where it is measured separately. Thread-safe; shared by the runs of one engine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <caf/actor_addr.hpp>

#include "actors/actors.hpp"

namespace ferry {

class latency_histogram;

/// A transition and the run it is from (which the journal acknowledges).
struct pending_commit {
  commit_request req;
  migration_actor from;
};

class commit_window {
public:
  /// `wait`, when given, records how long each transition waited for a slot.
  explicit commit_window(size_t capacity, latency_histogram* wait = nullptr)
    : capacity_(capacity == 0 ? 1 : capacity), free_(capacity_), wait_(wait) {
  }

  /// Transitions holding a slot now: ready for the journal or being written.
  size_t in_flight() {
    std::lock_guard<std::mutex> g{mtx_};
    return capacity_ - free_;
  }

  /// Transitions waiting for a slot now.
  size_t waiting() {
    std::lock_guard<std::mutex> g{mtx_};
    return waiting_.size();
  }

  /// Hands `req` (from `from`, which has no other transition in the window) to the journal:
  /// ready at once when a slot is free, else waiting for one. True when the caller must send
  /// the journal `flush` (nobody did since the journal last took what was ready).
  bool submit(const migration_actor& from, commit_request req);

  /// The journal takes up to `max` ready transitions, in order, appending them to `out`.
  /// A transition made ready after this call sends the journal `flush` again.
  size_t take(size_t max, std::vector<pending_commit>& out);

  /// The journal gives `n` slots back (their transitions are written, or failed): waiting
  /// transitions get them, in order. True when the journal must flush again (transitions are
  /// ready and no `flush` is on its way).
  bool release(size_t n);

  /// `from` stops (it is quitting): its transition, if it still waits for a slot, is dropped.
  /// One that is ready or being written is written.
  void cancel(const migration_actor& from);

private:
  struct waiter {
    pending_commit commit;
    int64_t since_ns;
  };

  std::mutex mtx_;
  size_t capacity_;
  size_t free_;
  latency_histogram* wait_;
  /// A `flush` is on its way to the journal (or the journal is about to take what is ready).
  bool flush_sent_ = false;
  std::deque<pending_commit> ready_;
  /// In arrival order; `by_run` finds a run's entry for cancel().
  std::list<waiter> waiting_;
  std::unordered_map<caf::actor_addr, std::list<waiter>::iterator> by_run_;
};

} // namespace ferry
