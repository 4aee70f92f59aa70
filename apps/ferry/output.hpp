// How the CLI shows runs: one line per event as it happens, and a summary table per run.
// Plain functions over workflows/ types; called from whatever thread delivers events.
#pragma once

#include <cstdio>
#include <string>

#include "workflows/run_state.hpp"

namespace ferry::cli {

/// "  +1.234s  copy          started       attempt 1" — relative to `origin`.
std::string format_event(const event& e, const definition& def, time_ms origin);

/// A table: task, status, attempts, duration, error; then the run's outcome and reason.
std::string format_summary(const run_state& s);

/// `s` as a JSON string literal, quotes included.
std::string json_quote(const std::string& s);

/// "1.234s" or "250ms".
std::string format_duration(time_ms ms);

/// "  precopy        copy  45.2%  57.6 / 128.0 MiB  pass 2  dirty 3.1 MiB/s  4.2 s": a running
/// copy's progress, as `ferry run` and `ferry watch` print it.
std::string format_progress(const std::string& task, uint64_t processed_bytes,
                            uint64_t total_bytes, uint32_t iteration, uint64_t dirty_bytes_s,
                            uint64_t elapsed_ms);

} // namespace ferry::cli
