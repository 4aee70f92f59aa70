// The journal's codec: events and run checkpoints to and from their protobuf encodings
// (ferry.v1.EventBatch, ferry.v1.RunCheckpoint). The only place besides the definition codec
// that sees generated protobuf code. Pure; any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "common/state_change.hpp"
#include "workflows/run_state.hpp"

namespace ferry {

/// Finds a definition by digest (from a cache, or the `definitions` column family).
using definition_lookup = std::function<caf::expected<definition_ptr>(const std::string&)>;

/// How a RUN_STARTED event carries its run's definition.
enum class run_definition {
  /// In full, in the event: self-contained (API responses, exports).
  embedded,
  /// By its digest only: the journal, which writes the definition itself into the
  /// `definitions` column family in the same atomic batch as the event.
  by_digest,
};

/// Encodes the events of one transition of a run pinned to `def`.
std::string encode_events(const definition& def, const std::vector<event>& events,
                          run_definition how = run_definition::embedded);

/// Same, for a slice of events.
std::string encode_events(const definition& def, const event* first, size_t count,
                          run_definition how = run_definition::embedded);

/// Decodes an EventBatch. A RUN_STARTED event's definition is taken from `lookup` by its
/// digest when it knows it, else decoded from the event itself (journals written before
/// definitions were stored once, exports); data_loss when neither has it. `def` is the run's
/// definition for the other events' task indices (may be null when the batch starts with
/// RUN_STARTED).
caf::expected<std::vector<event>> decode_events(std::string_view bytes, definition_ptr def,
                                                const definition_lookup& lookup);

std::string encode_checkpoint(const run_state& s);

/// Decodes a checkpoint; its definition comes from `lookup`.
caf::expected<run_state> decode_checkpoint(std::string_view bytes,
                                           const definition_lookup& lookup);

/// One transition's fleet records, for the fleet_history column family (FleetHistory).
struct fleet_history_entry {
  std::string run;
  uint64_t first_seq = 0;
  state_changes changes;
};
std::string encode_fleet_history(const std::string& run, uint64_t first_seq,
                                 const state_changes& changes);
caf::expected<fleet_history_entry> decode_fleet_history(std::string_view bytes);

/// A checkpoint's run id, status and definition name without building the state.
struct checkpoint_summary {
  run_id id;
  run_status status = run_status::pending;
  std::string definition_name;
  std::string definition_digest;
  uint64_t last_seq = 0;
  time_ms created = 0;
  time_ms updated = 0;
  std::string reason;
};

caf::expected<checkpoint_summary> summarize_checkpoint(std::string_view bytes);

/// The same summary, of a state in memory.
checkpoint_summary summarize(const run_state& s);

} // namespace ferry
