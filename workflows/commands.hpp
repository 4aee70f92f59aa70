// What the outside world may ask of a run, turned into events: an executor's result, and
// the operator's cancel, abort, pause, resume, approve and retry. Each either refuses with a
// precise error (and changes nothing) or applies its events to the state and appends them.
// Pure; the caller passes `now`.
#pragma once

#include <string>
#include <vector>

#include <caf/error.hpp>

#include "common/state_change.hpp"
#include "workflows/run_state.hpp"

namespace ferry {

/// What an executor reports for one attempt.
struct task_result {
  /// ok for success.
  errc code = errc::ok;
  std::string message;
  /// For failures: whether another attempt may help.
  bool retryable = true;
  std::string output;
  /// Fleet state the attempt changed (leases, reservations, placement): journaled in the same
  /// batch as the result. Dropped with a stale result.
  state_changes changes;

  static task_result success(std::string output = {}) {
    task_result r;
    r.output = std::move(output);
    return r;
  }
  static task_result failure(errc code, std::string message, bool retryable = true) {
    task_result r;
    r.code = code;
    r.message = std::move(message);
    r.retryable = retryable;
    return r;
  }
};

/// Records the result of attempt `attempt` of task `task`. A result for an attempt that is
/// no longer running (it timed out, the run was aborted) is stale: nothing is appended and
/// no error is returned.
caf::error on_result(run_state& s, uint32_t task, uint32_t attempt, bool compensation,
                     const task_result& r, time_ms now, std::vector<event>& out);

/// Stop and compensate. Refused after the point of no return and on resting runs;
/// a second cancel of a run already rolling back is accepted and changes nothing.
caf::error cancel(run_state& s, const std::string& actor, time_ms now,
                  std::vector<event>& out);

/// Stop now and compensate nothing. Refused on terminal runs.
caf::error abort(run_state& s, const std::string& actor, const std::string& reason,
                 time_ms now, std::vector<event>& out);

/// RUNNING -> PAUSED: no new attempt starts; attempts in flight finish and are recorded.
caf::error pause(run_state& s, const std::string& actor, time_ms now,
                 std::vector<event>& out);

/// PAUSED -> RUNNING.
caf::error resume(run_state& s, const std::string& actor, time_ms now,
                  std::vector<event>& out);

/// Approves the gate on task `task_id` (before it is reached, or while it waits).
caf::error approve(run_state& s, const std::string& task_id, const std::string& actor,
                   time_ms now, std::vector<event>& out);

/// On a FAILED run: gives task `task_id` (failed, or whose compensation failed) a fresh set
/// of attempts. A failed task is refused once the rollback has reached any task: only
/// compensations may then be retried.
caf::error retry(run_state& s, const std::string& task_id, const std::string& actor,
                 time_ms now, std::vector<event>& out);

} // namespace ferry
