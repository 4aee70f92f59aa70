// A run's state and the events it is folded from. The state is exactly what the journal's
// events produce through apply() (apply.hpp); the checkpoint in the `runs` column family is
// its encoding. Plain values owned by one migration actor, or by a replaying tool.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/errc.hpp"
#include "common/ids.hpp"
#include "workflows/definition.hpp"

namespace ferry {

/// Values match ferry.v1.RunStatus.
enum class run_status : uint8_t {
  pending = 1,
  scheduled = 2,
  running = 3,
  paused = 4,
  rolling_back = 5,
  succeeded = 6,
  rolled_back = 7,
  failed = 8,
  aborted = 9,
};

/// Values match ferry.v1.TaskStatus.
enum class task_status : uint8_t {
  pending = 1,
  scheduled = 2,
  running = 3,
  succeeded = 4,
  failed = 5,
  compensating = 6,
  compensated = 7,
  compensation_failed = 8,
};

/// Values match ferry.v1.EventType.
enum class event_type : uint8_t {
  run_started = 1,
  task_scheduled = 2,
  task_started = 3,
  task_succeeded = 4,
  task_failed = 5,
  task_compensating = 6,
  task_compensated = 7,
  compensation_failed = 8,
  run_paused = 9,
  run_resumed = 10,
  cancel_requested = 11,
  gate_approved = 12,
  retry_requested = 13,
  rollback_started = 14,
  run_succeeded = 15,
  run_rolled_back = 16,
  run_failed = 17,
  run_aborted = 18,
  run_activated = 19,
};

const char* to_string(run_status x) noexcept;
const char* to_string(task_status x) noexcept;
const char* to_string(event_type x) noexcept;

/// SUCCEEDED, ROLLED_BACK and ABORTED: nothing more ever happens to the run.
constexpr bool is_terminal(run_status x) noexcept {
  return x == run_status::succeeded || x == run_status::rolled_back
         || x == run_status::aborted;
}

/// Terminal, or FAILED (which waits for an operator): the engine drives it no further.
constexpr bool is_resting(run_status x) noexcept {
  return is_terminal(x) || x == run_status::failed;
}

constexpr uint32_t no_task = UINT32_MAX;

/// One journal record. Which fields are meaningful depends on `type` (see
/// docs/journal-format.md).
struct event {
  uint64_t seq = 0;
  time_ms at = 0;
  event_type type = event_type::run_started;
  uint32_t task = no_task;
  uint32_t attempt = 0;
  /// TASK_STARTED / TASK_COMPENSATING: deadline. TASK_SCHEDULED: earliest start.
  time_ms deadline = 0;
  bool compensation = false;
  errc code = errc::ok;
  bool retryable = false;
  /// Error message, or the reason of a run-level event.
  std::string message;
  std::string output;
  /// Who asked, for operator actions.
  std::string actor;
  // RUN_STARTED only.
  definition_ptr def;
  uint64_t seed = 0;
  time_ms not_before = 0;
};

/// The strings of a task's last outcome: the error of a failure, or the output of a success.
/// Held out of line: most tasks never carry one, and a run's memory is mostly its tasks.
class task_text {
public:
  task_text() = default;
  task_text(const task_text& other)
    : p_(other.p_ ? std::make_unique<std::pair<std::string, std::string>>(*other.p_)
                  : nullptr) {
  }
  task_text(task_text&&) noexcept = default;
  task_text& operator=(const task_text& other) {
    if (this != &other)
      p_ = other.p_ ? std::make_unique<std::pair<std::string, std::string>>(*other.p_)
                    : nullptr;
    return *this;
  }
  task_text& operator=(task_text&&) noexcept = default;

  const std::string& error() const { return p_ ? p_->first : empty(); }
  const std::string& output() const { return p_ ? p_->second : empty(); }

  void set(std::string error, std::string output) {
    if (error.empty() && output.empty())
      p_.reset();
    else
      p_ = std::make_unique<std::pair<std::string, std::string>>(std::move(error),
                                                                 std::move(output));
  }

  bool operator==(const task_text& other) const {
    return error() == other.error() && output() == other.output();
  }

private:
  static const std::string& empty() {
    static const std::string e;
    return e;
  }
  std::unique_ptr<std::pair<std::string, std::string>> p_;
};

struct task_state {
  task_status status = task_status::pending;
  bool gate_approved = false;
  /// The last attempt started (0 = none yet).
  uint32_t attempt = 0;
  /// The last compensation attempt started.
  uint32_t compensation_attempt = 0;
  /// Attempts made before the last operator retry.
  uint32_t attempt_base = 0;
  time_ms first_started = 0;
  time_ms started = 0;
  /// Deadline of the running attempt.
  time_ms deadline = 0;
  /// SCHEDULED, or waiting COMPENSATING: the earliest next start.
  time_ms not_before = 0;
  time_ms finished = 0;
  errc code = errc::ok;
  /// Whether the last failure may be retried.
  bool retryable = false;
  /// The last failure's message, or the last success's output.
  task_text text;

  const std::string& error() const { return text.error(); }
  const std::string& output() const { return text.output(); }

  /// FAILED without knowing what its last attempt did: no answer in time (deadline_exceeded),
  /// none at all (unavailable: the connection dropped, maybe after the call acted), or an
  /// error that says nothing (unknown). A rollback compensates such a task as if it had
  /// succeeded, and a point of no return in doubt stops the run for an operator rather than
  /// rolling it back.
  bool in_doubt() const {
    return status == task_status::failed && attempt > 0
           && (code == errc::unavailable || code == errc::deadline_exceeded
               || code == errc::unknown);
  }

  bool operator==(const task_state& other) const;
};

struct run_state {
  run_id id;
  definition_ptr def;
  run_status status = run_status::pending;
  /// Sequence number of the last event applied.
  uint64_t seq = 0;
  time_ms created = 0;
  time_ms updated = 0;
  time_ms not_before = 0;
  uint64_t seed = 0;
  bool passed_point_of_no_return = false;
  bool cancel_requested = false;
  uint32_t retries_used = 0;
  /// Why the run rolled back, failed or was aborted.
  std::string reason;
  std::vector<task_state> tasks;

  /// Field-by-field equality, the definition compared by digest.
  bool operator==(const run_state& other) const;
  bool operator!=(const run_state& other) const { return !(*this == other); }
};

/// First difference between two states ("task \"copy\": status RUNNING != SUCCEEDED"), or
/// empty when equal. Used by verification and tests.
std::string diff(const run_state& expected, const run_state& actual);

} // namespace ferry
