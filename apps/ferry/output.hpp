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

} // namespace ferry::cli
