// ferry::store — the journal's storage: the interface, and how to open the RocksDB and the
// in-memory implementations. Records are already encoded (codec.hpp); a store only keeps
// bytes under keys (keys.hpp). Writes come from the journal actor alone; reads from any
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "common/ids.hpp"
#include "common/state_change.hpp"

namespace ferry {

/// One transition of one run: its new events and its checkpoint after them.
struct transition_record {
  run_id run;
  /// Sequence number of the first event in `events` (the events record's key).
  uint64_t first_seq = 0;
  /// Encoded ferry.v1.EventBatch.
  std::string events;
  /// Encoded ferry.v1.RunCheckpoint.
  std::string checkpoint;
  /// When not empty: a definition to keep under its digest (a run's first transition).
  std::string definition_digest;
  std::string definition;
  /// Fleet state the transition changed (column family `fleet`), written in the same batch.
  state_changes fleet;
};

class store {
public:
  virtual ~store();

  /// Writes every record of `batch` in one atomic batch; with `sync`, the write-ahead log is
  /// synced before this returns. Either all records are written or none.
  virtual caf::error write(const std::vector<const transition_record*>& batch, bool sync) = 0;

  /// The checkpoint of `run`; not_found if there is none.
  virtual caf::expected<std::string> checkpoint(const run_id& run) const = 0;

  /// Calls `f(run, checkpoint)` for every run in key order until it returns false.
  virtual caf::error for_each_checkpoint(
    const std::function<bool(std::string_view, std::string_view)>& f) const = 0;

  /// Calls `f(first_seq, batch)` for the event records of `run`, in order, starting with the
  /// record that holds `from_seq`, until it returns false.
  virtual caf::error for_each_event_batch(
    const run_id& run, uint64_t from_seq,
    const std::function<bool(uint64_t, std::string_view)>& f) const = 0;

  /// The definition stored under `digest`; not_found if there is none.
  virtual caf::expected<std::string> definition(const std::string& digest) const = 0;

  /// Calls `f(key, value)` for every record of the fleet's durable state, in key order,
  /// until it returns false.
  virtual caf::error for_each_fleet_record(
    const std::function<bool(std::string_view, std::string_view)>& f) const = 0;

  /// Keeps a migration template (its encoding) under its name; an empty encoding removes it.
  /// With `sync`, durable before this returns.
  virtual caf::error write_template(const std::string& name, const std::string& encoded,
                                    bool sync) = 0;

  /// Calls `f(name, encoded)` for every template, in name order, until it returns false.
  virtual caf::error for_each_template(
    const std::function<bool(std::string_view, std::string_view)>& f) const = 0;

  /// Keeps a batch (actors/batch.hpp: its spec and whether it finished) under its name; an
  /// empty encoding removes it. With `sync`, durable before this returns.
  virtual caf::error write_batch(const std::string& name, const std::string& encoded,
                                 bool sync) = 0;

  /// Calls `f(name, encoded)` for every batch, in name order, until it returns false.
  virtual caf::error for_each_batch(
    const std::function<bool(std::string_view, std::string_view)>& f) const = 0;

  /// Calls `f(key, FleetHistory)` for every fleet_history record, in write order, until it
  /// returns false. (Journals written before the column family existed have none.)
  virtual caf::error for_each_fleet_history(
    const std::function<bool(std::string_view, std::string_view)>& f) const = 0;

  /// Removes fleet_history records by key (retention).
  virtual caf::error remove_fleet_history(const std::vector<std::string>& keys) = 0;

  /// Removes a run's events and checkpoint (retention). Definitions stay.
  virtual caf::error remove_run(const run_id& run) = 0;

  /// Compacts the events and checkpoints, so that removed runs free their space.
  virtual caf::error compact() = 0;
};

struct rocksdb_store_options {
  /// Create the database if it does not exist. Default: true.
  bool create_if_missing = true;
  /// Open read-only (tools on a copy or next to a live daemon). Default: false.
  bool read_only = false;
  /// Memtable size per column family, in bytes. Default: 32 MiB.
  size_t write_buffer_bytes = 32u << 20;
  /// Background flush and compaction threads. Default: 2.
  int background_jobs = 2;
  /// Where RocksDB's warnings and errors go (its other messages are dropped). Default: empty,
  /// to stderr. RocksDB writes no LOG file into the journal's directory: those piled up, one
  /// per open, and on a full disk this build of RocksDB ended the process on an assertion
  /// when it logged the failed write into its LOG.
  std::function<void(const std::string&)> log;
};

/// Opens (or creates) a RocksDB journal at `path` with the column families `events`, `runs`,
/// `definitions`, `fleet`, `templates`, `batches` and `fleet_history`. Errors name the path and
/// RocksDB's reason. A directory that holds no journal is not_found for a reader
/// (`create_if_missing` false or `read_only`); a writer creates one only in a new directory
/// (made with its parents; invalid_argument when it cannot be, a file in the way) or an empty
/// one (invalid_argument when it holds other files, which are left alone). Opened to
/// write, a journal of an earlier version that lacks some column families gets them; opened
/// read-only, it is read with those it has.
caf::expected<std::unique_ptr<store>> open_rocksdb_store(const std::string& path,
                                                         const rocksdb_store_options& opts
                                                         = {});

/// A store in memory, for unit tests and dry runs. Thread-safe.
std::unique_ptr<store> make_memory_store();

} // namespace ferry
