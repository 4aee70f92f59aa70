// Exporting a journal's events as JSON lines, importing such an export into an empty
// journal (for offline analysis, archives, and moving runs between journals), and retention
// (archive_runs: export, then remove and compact). One line per
// event: a ferry.v1.ExportedEvent in JSON with the proto's field names —
//   {"run":"r1","batch":"3","event":{"seq":"4","time_ms":"1700000000000","type":"TASK_STARTED",...}}
// (64-bit numbers are strings, as in protobuf's JSON mapping). The export of a run holds its
// whole definition (in its RUN_STARTED event); an import rebuilds every record of the run:
// the same event batches, its definition, and its checkpoint replayed from the events.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "common/clock.hpp"
#include "common/ids.hpp"

namespace ferry {

class store;

/// Writes the events of `runs` (every run, in id order, when empty) to `out`; returns how
/// many. Errors: not_found naming a run that is not in the journal, data_loss naming a record
/// that cannot be read.
caf::expected<uint64_t> export_jsonl(const store& st, const std::vector<run_id>& runs,
                                     std::ostream& out);

/// Reads an export and writes its runs into `st`, which must hold no run. Returns how many
/// events. Errors name the line (invalid_argument: not an ExportedEvent; a run whose events
/// are not gapless from 1 or do not start with RUN_STARTED; events that do not replay), and
/// nothing is written unless every line is good.
caf::expected<uint64_t> import_jsonl(std::istream& in, store& st);

struct archive_result {
  uint64_t runs = 0;
  uint64_t events = 0;
};

/// Retention: exports every run at rest (SUCCEEDED, ROLLED_BACK, ABORTED) last updated at or before
/// `before` (ms since the epoch) to `out` (flushed and checked, then `durable` is called, before
/// anything is removed), then removes those runs from the journal and compacts it. A run still
/// in flight, or FAILED (waiting for an operator), is kept whatever its age. When `durable`
/// returns an error, nothing is removed and archive_runs returns it.
caf::expected<archive_result> archive_runs(store& st, time_ms before, std::ostream& out,
                                           const std::function<caf::error()>& durable = {});

/// The same for the runs named (the engine's retention, which knows which runs are at rest).
caf::expected<archive_result> archive_runs(store& st, const std::vector<run_id>& runs,
                                           std::ostream& out,
                                           const std::function<caf::error()>& durable = {});

/// The same into the file at `path`, appended to (created when missing), which is synced to
/// disk (sync_file, common/file.hpp) before anything is removed: the removal from the journal
/// is synced, so the runs leave it only once their archive would survive a crash as well.
/// Errors: invalid_argument "archive: PATH: cannot write: REASON" when the file cannot be
/// opened; unavailable "archive: PATH: ..." when it cannot be written or synced (nothing is
/// removed).
caf::expected<archive_result> archive_runs_to_file(store& st, time_ms before,
                                                   const std::string& path);
caf::expected<archive_result> archive_runs_to_file(store& st, const std::vector<run_id>& runs,
                                                   const std::string& path);

} // namespace ferry
