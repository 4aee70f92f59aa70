// apply(state, event): the fold that turns a run's journal into its state. The live engine,
// recovery and the replay tools all use this one function. Pure; any thread.
#pragma once

#include <caf/error.hpp>

#include "workflows/run_state.hpp"

namespace ferry {

/// Applies `e` to `s` in place. Returns a data_loss error naming the event when `e` cannot
/// follow `s` (sequence gap, unknown task, a transition the state machine does not have);
/// `s` is then unchanged.
caf::error apply(run_state& s, const event& e);

} // namespace ferry
