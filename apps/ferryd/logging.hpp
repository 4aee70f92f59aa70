// ferryd's logs: the loggers "ferryd" and "ferry" (the engine's) to stderr or a file, as text
// lines or JSON lines ({"time","level","logger","msg"}), at the configured level. Set up once
// on the main thread before anything logs; the file is opened again by its name on SIGHUP
// (reopen_log_file), for logrotate.
#pragma once

#include <string>

#include <caf/error.hpp>

namespace ferry::daemon {

/// `format`: "text" or "json"; `file`: empty = stderr.
caf::error setup_logging(const std::string& format, const std::string& level,
                         const std::string& file);

/// Opens the log file again by its name (after it was moved), appending; the logs go on to the
/// old file when the new one cannot be opened, and the error says why. Nothing to do when the
/// logs go to stderr. Any thread.
caf::error reopen_log_file();

} // namespace ferry::daemon
