// Verifying a journal: each run's events replayed through the engine's own apply() and
// compared with its checkpoint, and the journal's invariants checked (docs/journal-format.md,
// "What a reader may rely on"): events gapless from 1, RUN_STARTED first, nothing after a
// terminal event, a compensation only for a task that was started, and every record
// readable. Pure over a store; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "common/ids.hpp"

namespace ferry {

class journal_reader;

struct verify_report {
  uint64_t runs = 0;
  uint64_t events = 0;
  /// Each names the run and what diverged ("run r1: event 7 after the terminal event 6");
  /// empty when the journal is sound.
  std::vector<std::string> problems;
};

/// Verifies `runs` (every run when empty), stopping after `max_problems` problems (0: no
/// limit). Errors only when the journal cannot be read at all, or a run named is not in it
/// (not_found, before anything is verified); a run that cannot be read is a problem.
caf::expected<verify_report> verify_journal(const journal_reader& reader,
                                            const std::vector<run_id>& runs,
                                            size_t max_problems = 1);

} // namespace ferry
