// The built-in task kinds, for tests, benchmarks and examples:
//   noop    succeeds at once.
//   sleep   succeeds after params.ms milliseconds (on the timer service).
//   fail    fails attempts 1..params.attempts (default 1), or every attempt with
//           params.forever; params.message, params.code (an errc name), params.retryable.
//   effect  appends its idempotency key to the file params.log, first checking the key is not
//           there: the model of an idempotent real effect. File I/O runs on its own thread.
#pragma once

#include <memory>
#include <vector>

#include "actors/executor.hpp"
#include "actors/timer_service.hpp"

namespace ferry {

/// The built-in kinds' names and parameters (for validating without an engine).
std::vector<kind_spec> builtin_kind_specs();

/// Adds noop, sleep, fail and effect to `reg`. `timers` must outlive the executors.
void add_builtin_kinds(executor_registry& reg, timer_service& timers);

} // namespace ferry
