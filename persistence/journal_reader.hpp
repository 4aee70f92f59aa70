// ferry::journal_reader — reads a journal for recovery tools: lists runs, iterates a run's
// events, rebuilds a run's state by replaying its events through the engine's own apply().
// Opens the RocksDB journal read-only (or wraps any store). Not thread-safe: one per thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "persistence/codec.hpp"
#include "persistence/store.hpp"

namespace ferry {

class journal_reader {
public:
  /// Opens the RocksDB journal at `path` read-only.
  static caf::expected<journal_reader> open(const std::string& path);

  explicit journal_reader(std::shared_ptr<const store> st);

  /// Every run's summary, in run id order.
  caf::expected<std::vector<checkpoint_summary>> list_runs() const;

  /// Calls `f` for each event of `run` with a sequence number >= `from_seq`, in order,
  /// until it returns false. `def`, the run's definition when the caller knows it, spares
  /// reading the run's checkpoint to find it.
  caf::error for_each_event(const run_id& run, uint64_t from_seq,
                            const std::function<bool(const event&)>& f,
                            definition_ptr def = nullptr) const;

  /// Whether the journal holds anything of `run`: its checkpoint or an event (readable or
  /// not).
  caf::expected<bool> has_run(const run_id& run) const;

  /// The events of `run` from `from_seq` to `until_seq`, both included.
  caf::expected<std::vector<event>> events(const run_id& run, uint64_t from_seq,
                                           uint64_t until_seq = UINT64_MAX,
                                           definition_ptr def = nullptr) const;

  /// The state recorded in `run`'s checkpoint.
  caf::expected<run_state> checkpoint(const run_id& run) const;

  /// The state rebuilt from `run`'s events alone, up to and including `until_seq`.
  caf::expected<run_state> replay(const run_id& run, uint64_t until_seq = UINT64_MAX) const;

  /// The definition stored under `digest` (cached).
  caf::expected<definition_ptr> definition(const std::string& digest) const;

private:
  std::shared_ptr<const store> store_;
  mutable std::map<std::string, definition_ptr> definitions_;
};

} // namespace ferry
