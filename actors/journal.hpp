// The journal actor: the only writer of the store. Runs detached (its own thread), since a
// write blocks on fsync. See actors.hpp for its interface.
#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "actors/actors.hpp"

namespace ferry {

struct journal_options {
  /// Sync the write-ahead log on every batch. Default: true.
  bool sync = true;
  /// Most transitions in one batch. Default: 4096.
  size_t max_batch = 4096;
};

struct engine_metrics;
class commit_window;

/// Spawns the journal over `st` (detached). It takes the transitions ready in `window` when
/// sent flush, records commit latencies into `metrics`, and gives each written transition's
/// slot back to `window`; both must outlive it.
journal_actor spawn_journal(caf::actor_system& sys, std::shared_ptr<store> st,
                            journal_options opts, engine_metrics* metrics,
                            commit_window* window);

} // namespace ferry
