// The task-executor extension point. An executor runs one kind of task: it is handed an
// attempt (with its idempotency key `run/task/attempt` and a deadline) and reports the result
// through `done`, once, from any thread, whenever it is finished. execute() is called on a
// CAF scheduler thread and must not block: do slow work elsewhere (a thread, a driver's
// pool) and call `done` from there. Executors are shared by every run and must be
// thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "workflows/commands.hpp"
#include "workflows/definition.hpp"

namespace ferry {

/// One attempt of one task (or of its compensation).
struct task_call {
  run_id run;
  definition_ptr def;
  uint32_t task = 0;
  uint32_t attempt = 0;
  bool compensation = false;
  /// "run/task/attempt" ("run/task/undo-attempt" for compensations): the same on a
  /// re-dispatch after a crash, so the executor can check the world before acting.
  std::string key;
  /// Wall-clock deadline (ms since the epoch); the engine fails the attempt after it.
  time_ms deadline = 0;
  /// The parameters with every "@{task}" replaced by that task's output, when they name any.
  std::shared_ptr<const params> resolved;

  const task_def& spec() const { return def->tasks[task]; }
  const std::string& task_id() const { return spec().id; }
  const std::string& kind() const {
    return compensation ? spec().compensation->kind : spec().kind;
  }
  const params& parameters() const {
    if (resolved)
      return *resolved;
    return compensation ? spec().compensation->parameters : spec().parameters;
  }
};

/// What a `notify` task tells the embedding application (engine_options::notify).
struct notification {
  run_id run;
  std::string task;
  std::string event;
  std::string message;
};

using notify_fn = std::function<void(const notification&)>;

/// Progress of a long task while it runs (a migration's copy, from the hypervisor's job
/// statistics), for live displays; not journaled (engine_options::on_progress).
struct task_progress {
  run_id run;
  std::string task;
  uint32_t attempt = 0;
  /// Bytes to move so far, moved, and left.
  uint64_t total_bytes = 0;
  uint64_t processed_bytes = 0;
  uint64_t remaining_bytes = 0;
  /// Pre-copy pass (1: the first full pass).
  uint32_t iteration = 0;
  /// How fast the guest dirties memory, bytes/s.
  uint64_t dirty_bytes_s = 0;
  uint64_t elapsed_ms = 0;
};

using progress_fn = std::function<void(const task_progress&)>;

// -- helpers for executors ----------------------------------------------------------------

/// Parameter `name` of the attempt as a string, number or flag; `fallback` (false) when it is
/// absent or of another type.
std::string string_param(const task_call& call, const char* name, std::string fallback = {});
double number_param(const task_call& call, const char* name, double fallback = 0);
bool flag_param(const task_call& call, const char* name);

/// Time left before the attempt's deadline, at least 1 ms: the deadline of the calls it makes.
std::chrono::milliseconds time_left(const task_call& call);

/// A failed call as the attempt's result. Retryable when the world may change by itself
/// (unavailable, deadline_exceeded, resource_exhausted, unknown); not when the request is
/// wrong or the state forbids it (a copy that will not converge, a refused lease change...).
task_result failure_from(const caf::error& err);

/// Reports an attempt's result. Call once; callable from any thread.
using completion = std::function<void(task_result)>;

class task_executor {
public:
  virtual ~task_executor();

  /// The kind's name and parameters, for validation.
  virtual kind_spec spec() const = 0;

  /// Starts the attempt. Must not block; calls `done` exactly once.
  virtual void execute(const task_call& call, completion done) = 0;
};

/// The executors an engine knows, by kind. Filled before the engine opens, read-only after.
class executor_registry {
public:
  /// Adds (or replaces) the executor of `exec->spec().name`.
  void add(std::shared_ptr<task_executor> exec);

  task_executor* find(const std::string& kind) const;

  /// The catalog validation checks definitions against.
  const kind_catalog& catalog() const { return catalog_; }

private:
  std::map<std::string, std::shared_ptr<task_executor>> executors_;
  kind_catalog catalog_;
};

} // namespace ferry
