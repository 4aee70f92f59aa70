// Between the engine's types and the API's messages (proto/ferry/v1/api.proto), both ways:
// ferryd fills responses from the engine; the ferry CLI reads them back into the engine's
// types to print them with the same code as `ferry run`. Pure functions; any thread.
// Runs, checkpoints and events go through the journal's codec (persistence/codec.hpp), so the
// API carries exactly what the journal holds.
#pragma once

#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actors/engine.hpp"
#include "actors/fleet_runtime.hpp"
#include "ferry/v1/api.pb.h"
#include "fleet/options.hpp"
#include "fleet/recommend.hpp"

namespace ferry::api {

// -- engine -> API ------------------------------------------------------------------------

/// `with_definition`: false for RUN_VIEW_STATE.
void to_proto(const run_state& s, v1::Run& out, bool with_definition = true);
void to_proto(const run_state& s, v1::RunCheckpoint& out);
void to_proto(const run_summary& s, v1::RunSummary& out);
void to_proto(const task_progress& p, v1::Progress& out);
/// The events of a run pinned to `def`, appended to `out`.
void to_proto(const definition& def, const std::vector<event>& events,
              google::protobuf::RepeatedPtrField<v1::Event>& out);
void to_proto(const fleet_snapshot& s, const fleet::model& m, v1::FleetResponse& out);
void to_proto(const std::vector<fleet::decision>& ranked, const fleet::model& m,
              v1::RecommendResponse& out);
void to_proto(const std::vector<fleet::morph_option>& opts, const fleet::model& m,
              v1::OptionsResponse& out);

// -- Fleet, Recommend and Options, answered from a fleet's actors -------------------------
// (ferryd, and the local `ferry fleet|recommend|options FILE`, print the same messages)

caf::error fleet_of(const fleet_runtime& rt, v1::FleetResponse& out);
/// invalid_argument without a VM; the runtime's errors (unknown VM, type or zone).
caf::error recommend_of(const fleet_runtime& rt, const v1::RecommendRequest& req,
                        v1::RecommendResponse& out);
/// With the hosts' free capacity as their actors have it now; not_found for an unknown VM.
caf::error options_of(const fleet_runtime& rt, const std::string& vm, v1::OptionsResponse& out);

// -- API -> engine ------------------------------------------------------------------------

/// The run's state with its definition.
caf::expected<run_state> from_proto(const v1::Run& run);
/// Events of the run pinned to `def`.
caf::expected<std::vector<event>> from_proto(const google::protobuf::RepeatedPtrField<v1::Event>& evs,
                                             const definition_ptr& def);
/// A checkpoint of the run pinned to `def`.
caf::expected<run_state> from_proto(const v1::RunCheckpoint& cp, const definition_ptr& def);

/// RUN_RUNNING <-> run_status::running.
v1::RunStatus to_proto(run_status s) noexcept;
run_status from_proto(v1::RunStatus s) noexcept;

} // namespace ferry::api
