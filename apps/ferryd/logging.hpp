// ferryd's logs: the loggers "ferryd" and "ferry" (the engine's) to stderr or a file, as text
// lines or JSON lines ({"time","level","logger","msg"}), at the configured level. Set up once
// on the main thread before anything logs.
#pragma once

#include <string>

#include <caf/error.hpp>

namespace ferry::daemon {

/// `format`: "text" or "json"; `file`: empty = stderr.
caf::error setup_logging(const std::string& format, const std::string& level,
                         const std::string& file);

} // namespace ferry::daemon
