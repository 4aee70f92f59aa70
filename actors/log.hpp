// Ferry's log: the spdlog logger "ferry", writing to stderr. The engine logs what an operator
// must hear about and no caller is told: a journal write that failed, a run stopped by an
// error, a checkpoint that could not be read on open. Thread-safe.
#pragma once

#include <spdlog/logger.h>

namespace ferry {

/// The "ferry" logger (created on first use; an embedding program may register its own
/// logger of that name with spdlog before, to send Ferry's lines elsewhere).
spdlog::logger& log();

} // namespace ferry
