// decide(state, now): what a run does next, as events. DAG scheduling with parallel
// branches, retries with capped exponential backoff and deterministic jitter, per-attempt
// timeouts, compensation in reverse dependency order, the point of no return, pause, cancel
// and gates. Pure: time comes in as `now`, randomness from the run's seed.
#pragma once

#include <vector>

#include "workflows/run_state.hpp"

namespace ferry {

/// One round of decisions for `s` at `now`: events that do not depend on each other, in
/// task order, with `at = now` and no sequence numbers yet. Empty when nothing is due.
std::vector<event> decide(const run_state& s, time_ms now);

/// Applies rounds of decide() to `s` until none is due, numbering each event and appending
/// it to `out`. Returns an internal error if an event does not apply (a bug).
caf::error advance(run_state& s, time_ms now, std::vector<event>& out);

/// Numbers `e` after `s`, applies it and appends it to `out`.
caf::error emit(run_state& s, event e, std::vector<event>& out);

/// The earliest time at which decide() may have something new to say without any input
/// (a deadline, a backoff's end, a scheduled start), or 0 for none.
time_ms next_wakeup(const run_state& s);

/// An attempt to hand to an executor.
struct dispatch {
  uint32_t task = no_task;
  uint32_t attempt = 0;
  bool compensation = false;
  time_ms deadline = 0;
};

/// The attempts `events` start (TASK_STARTED, TASK_COMPENSATING).
std::vector<dispatch> dispatches_of(const std::vector<event>& events);

/// The attempts in flight in `s`: what recovery re-dispatches with the same keys.
std::vector<dispatch> in_flight(const run_state& s);

/// Backoff before the attempt after the `failures`-th failure (1 = after the first), with
/// jitter drawn deterministically from (seed, task, failures, compensation).
uint64_t backoff_ms(const retry_policy& p, uint32_t failures, uint64_t seed, uint32_t task,
                    bool compensation);

} // namespace ferry
