// Time as Ferry records it: milliseconds since the Unix epoch in an int64. `workflows/` never
// reads a clock: callers pass `now` in. Vocabulary only; any thread.
#pragma once

#include <chrono>
#include <cstdint>

namespace ferry {

/// Milliseconds since the Unix epoch.
using time_ms = int64_t;

/// The wall clock, in ms since the epoch.
inline time_ms wall_now_ms() noexcept {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// The steady clock in ns, for measuring latencies within the process.
inline int64_t steady_now_ns() noexcept {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

} // namespace ferry
