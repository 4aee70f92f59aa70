// The RocksDB store: column families `events`, `runs`, `definitions`, `fleet`, `templates`,
// `batches` and `fleet_history`; one WriteBatch per call to write(), synced through the WAL when asked. The only file (with its
// reader side) that includes <rocksdb/...>; rocksdb::Status is translated here, once.
// Opening checks the directory first: no journal there is said so, and a directory of other
// files is never filled with RocksDB's.
#include <algorithm>
#include <cctype>
#include <cstdarg>
#include <cstdio>
#include <filesystem>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>

#include "common/errc.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"
#include "persistence/store.hpp"

namespace ferry {

namespace {

errc code_of(const rocksdb::Status& st) {
  if (st.IsNotFound())
    return errc::not_found;
  if (st.IsCorruption())
    return errc::data_loss;
  if (st.IsIOError() || st.IsBusy() || st.IsTryAgain() || st.IsTimedOut())
    return errc::unavailable;
  if (st.IsInvalidArgument())
    return errc::invalid_argument;
  if (st.IsNotSupported())
    return errc::unimplemented;
  return errc::internal;
}

caf::error translate(const rocksdb::Status& st, const std::string& what) {
  return make_error(code_of(st), what + ": " + st.ToString());
}

/// RocksDB's info log, handed to `fn` (warnings and errors only) instead of a LOG file in the
/// journal's directory. Never throws into RocksDB.
class forwarding_logger final : public rocksdb::Logger {
public:
  forwarding_logger(std::function<void(const std::string&)> fn, std::string path)
    : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), fn_(std::move(fn)),
      path_(std::move(path)) {
  }

  using rocksdb::Logger::Logv;

  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::WARN_LEVEL, format, ap);
  }

  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    // HEADER_LEVEL is the options dump at every open.
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL)
      return;
    char buf[1024];
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(buf, sizeof buf, format, copy);
    va_end(copy);
    if (n < 0)
      return;
    auto len = std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
      --len;
    try {
      auto text = "journal " + path_ + ": rocksdb: " + std::string{buf, len};
      if (fn_)
        fn_(text);
      else
        std::fprintf(stderr, "%s\n", text.c_str());
    } catch (...) {
      // A message lost rather than an exception through RocksDB.
    }
  }

private:
  std::function<void(const std::string&)> fn_;
  std::string path_;
};

/// The run id part of an events key (everything but the 8-byte sequence number): the
/// memtables hash on it, so a commit's inserts land in small per-run lists instead of one
/// large skiplist (the dominant cost of a write otherwise).
class run_prefix final : public rocksdb::SliceTransform {
public:
  const char* Name() const override { return "ferry.run_prefix.v1"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice{key.data(), key.size() - 8};
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return key.size() >= 9 && key[key.size() - 9] == '\0';
  }
};

/// Whether `name` is a file RocksDB keeps in a database directory (or Ferry's simulated
/// fleet's state, which `ferry run --db` and `ferry batch --db` keep next to the journal).
bool journal_file(const std::string& name) {
  auto digits = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
      return std::isdigit(c) != 0;
    });
  };
  auto numbered = [&](std::string_view prefix) {
    return name.rfind(prefix, 0) == 0 && digits(std::string_view{name}.substr(prefix.size()));
  };
  std::string_view n = name;
  // Files being written (CURRENT and OPTIONS are written as NNNNNN.dbtmp, then renamed).
  if (n.size() > 6 && n.substr(n.size() - 6) == ".dbtmp")
    return true;
  for (std::string_view ext : {".log", ".sst", ".blob"})
    if (n.size() > ext.size() && n.substr(n.size() - ext.size()) == ext
        && digits(n.substr(0, n.size() - ext.size())))
      return true;
  return name == "CURRENT" || name == "IDENTITY" || name == "LOCK" || name == "LOG"
         || name.rfind("LOG.old.", 0) == 0 || numbered("MANIFEST-") || numbered("OPTIONS-")
         || name == "sim-state" || name == "sim-state.tmp";
}

/// Refuses, before RocksDB touches anything, a path that is not a journal: with the name of
/// what is wrong, so that `--db /var/lib` for `/var/lib/ferry` does not scatter a database
/// among other files, and a tool given the wrong directory says there is no journal there.
/// For a writer, makes a missing directory with its parents.
caf::error check_journal_dir(const std::string& path, const rocksdb_store_options& opts) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto st = fs::status(path, ec);
  bool creating = opts.create_if_missing && !opts.read_only;
  if (!fs::exists(st)) {
    if (!creating)
      return make_error(errc::not_found, "journal " + path + ": no such directory");
    // The directory and its parents are made here (RocksDB makes only the last one, and said
    // "IO error: While mkdir if missing" for the rest, or for a file in the way).
    fs::create_directories(path, ec);
    if (ec)
      return make_error(errc::invalid_argument,
                        "journal " + path + ": cannot be created: " + ec.message());
    return {};
  }
  if (!fs::is_directory(st))
    return {}; // RocksDB's own error names it
  if (fs::exists(fs::path{path} / "CURRENT", ec))
    return {};
  std::string foreign;
  for (fs::directory_iterator it{path, ec}, end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    if (!journal_file(name)) {
      foreign = name;
      break;
    }
  }
  if (!creating)
    return make_error(errc::not_found,
                      "journal " + path + ": the directory holds no journal"
                        + (foreign.empty() ? "" : " (it holds other files: " + foreign + ")"));
  if (!foreign.empty())
    return make_error(errc::invalid_argument,
                      "journal " + path + ": the directory is not empty and holds no journal ("
                        + foreign + "); give a new or empty directory, or an existing journal's");
  return {};
}

class rocksdb_store final : public store {
public:
  rocksdb_store(std::string path, std::unique_ptr<rocksdb::DB> db,
                std::vector<rocksdb::ColumnFamilyHandle*> handles, bool read_only)
    : path_(std::move(path)),
      db_(std::move(db)),
      handles_(std::move(handles)),
      read_only_(read_only) {
    for (auto* h : handles_) {
      if (h->GetName() == "events")
        events_ = h;
      else if (h->GetName() == "runs")
        runs_ = h;
      else if (h->GetName() == "definitions")
        definitions_ = h;
      else if (h->GetName() == "fleet")
        fleet_ = h;
      else if (h->GetName() == "templates")
        templates_ = h;
      else if (h->GetName() == "batches")
        batches_ = h;
      else if (h->GetName() == "fleet_history")
        history_ = h;
    }
    if (history_) {
      std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(rocksdb::ReadOptions{}, history_)};
      it->SeekToLast();
      if (it->Valid() && it->key().size() == 8)
        next_history_ = from_big_endian(it->key().data()) + 1;
    }
  }

  ~rocksdb_store() override {
    // A clean close leaves nothing for the next open to replay from the WAL: restarts after
    // a clean shutdown resume at once. (After a crash the WAL replays, as it must.)
    if (!read_only_) {
      rocksdb::FlushOptions fo;
      fo.allow_write_stall = true;
      db_->Flush(fo, handles_);
    }
    for (auto* h : handles_)
      db_->DestroyColumnFamilyHandle(h);
    db_->Close();
  }

  caf::error write(const std::vector<const transition_record*>& batch, bool sync) override {
    rocksdb::WriteBatch wb;
    uint64_t history_added = 0;
    for (auto* r : batch) {
      if (!r->events.empty())
        wb.Put(events_, event_key(r->run, r->first_seq), r->events);
      wb.Put(runs_, r->run, r->checkpoint);
      if (!r->definition_digest.empty())
        wb.Put(definitions_, r->definition_digest, r->definition);
      for (auto& c : r->fleet) {
        if (c.value.empty())
          wb.Delete(fleet_, c.key);
        else
          wb.Put(fleet_, c.key, c.value);
      }
      if (!r->fleet.empty() && history_)
        wb.Put(history_, big_endian(next_history_ + history_added++),
               encode_fleet_history(r->run, r->first_seq, r->fleet));
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    auto st = db_->Write(wo, &wb);
    if (!st.ok())
      return translate(st, "journal " + path_ + ": write of " + std::to_string(batch.size())
                             + " transitions");
    next_history_ += history_added;
    return {};
  }

  caf::expected<std::string> checkpoint(const run_id& run) const override {
    std::string out;
    auto st = db_->Get(rocksdb::ReadOptions{}, runs_, run, &out);
    if (st.IsNotFound())
      return make_error(errc::not_found, "run " + run + ": no checkpoint");
    if (!st.ok())
      return translate(st, "journal " + path_ + ": read checkpoint of run " + run);
    return out;
  }

  caf::error for_each_checkpoint(
    const std::function<bool(std::string_view, std::string_view)>& f) const override {
    return scan(runs_, f, "scan of runs");
  }

  caf::error for_each_event_batch(
    const run_id& run, uint64_t from_seq,
    const std::function<bool(uint64_t, std::string_view)>& f) const override {
    auto prefix = event_prefix(run);
    rocksdb::ReadOptions ro;
    ro.prefix_same_as_start = true;
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro, events_)};
    // Batches are keyed by their first event: the one holding `from_seq` is the last that
    // starts at or before it. Prefix iterators only go forward, so hold each batch back
    // until the next one shows it is the right one.
    std::string held_value;
    uint64_t held_seq = 0;
    bool holding = false;
    bool go_on = true;
    for (it->Seek(event_key(run, 0)); go_on && it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      std::string_view r;
      uint64_t seq = 0;
      auto k = it->key();
      if (!parse_event_key(std::string_view{k.data(), k.size()}, r, seq) || r != run)
        break;
      auto v = it->value();
      if (seq <= from_seq) {
        held_value.assign(v.data(), v.size());
        held_seq = seq;
        holding = true;
        continue;
      }
      if (holding) {
        holding = false;
        if (!f(held_seq, held_value)) {
          go_on = false;
          break;
        }
      }
      go_on = f(seq, std::string_view{v.data(), v.size()});
    }
    if (go_on && holding)
      f(held_seq, held_value);
    if (!it->status().ok())
      return translate(it->status(), "journal " + path_ + ": read events of run " + run);
    return {};
  }

  caf::expected<std::string> definition(const std::string& digest) const override {
    std::string out;
    auto st = db_->Get(rocksdb::ReadOptions{}, definitions_, digest, &out);
    if (st.IsNotFound())
      return make_error(errc::not_found, "definition " + digest + ": not in the journal");
    if (!st.ok())
      return translate(st, "journal " + path_ + ": read definition " + digest);
    return out;
  }

  caf::error for_each_fleet_record(
    const std::function<bool(std::string_view, std::string_view)>& f) const override {
    return scan(fleet_, f, "read fleet state");
  }

  caf::error write_template(const std::string& name, const std::string& encoded,
                            bool sync) override {
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    auto st = encoded.empty() ? db_->Delete(wo, templates_, name)
                              : db_->Put(wo, templates_, name, encoded);
    if (!st.ok())
      return translate(st, "journal " + path_ + ": write template " + name);
    return {};
  }

  caf::error for_each_template(
    const std::function<bool(std::string_view, std::string_view)>& f) const override {
    return scan(templates_, f, "read templates");
  }

  caf::error write_batch(const std::string& name, const std::string& encoded,
                         bool sync) override {
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    auto st = encoded.empty() ? db_->Delete(wo, batches_, name)
                              : db_->Put(wo, batches_, name, encoded);
    if (!st.ok())
      return translate(st, "journal " + path_ + ": write batch " + name);
    return {};
  }

  caf::error for_each_batch(
    const std::function<bool(std::string_view, std::string_view)>& f) const override {
    return scan(batches_, f, "read batches");
  }

  caf::error for_each_fleet_history(
    const std::function<bool(std::string_view, std::string_view)>& f) const override {
    return scan(history_, f, "read fleet history");
  }

  caf::error remove_fleet_history(const std::vector<std::string>& keys) override {
    if (!history_ || keys.empty())
      return {};
    rocksdb::WriteBatch wb;
    for (auto& k : keys)
      wb.Delete(history_, k);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto st = db_->Write(wo, &wb);
    if (!st.ok())
      return translate(st, "journal " + path_ + ": trim fleet history");
    return {};
  }

  caf::error remove_run(const run_id& run) override {
    rocksdb::WriteBatch wb;
    auto prefix = event_prefix(run);
    auto end = prefix;
    end.back() = '\1';
    wb.DeleteRange(events_, prefix, end);
    wb.Delete(runs_, run);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto st = db_->Write(wo, &wb);
    if (!st.ok())
      return translate(st, "journal " + path_ + ": remove run " + run);
    return {};
  }

  caf::error compact() override {
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    for (auto* cf : {events_, runs_, history_}) {
      if (cf == nullptr)
        continue;
      auto st = db_->CompactRange(co, cf, nullptr, nullptr);
      if (!st.ok())
        return translate(st, "journal " + path_ + ": compact");
    }
    return {};
  }

private:
  // Calls `f` for every record of a column family, in key order, until it returns false.
  caf::error scan(rocksdb::ColumnFamilyHandle* cf,
                  const std::function<bool(std::string_view, std::string_view)>& f,
                  const char* what) const {
    // A column family a journal written by an earlier version does not have (read-only).
    if (cf == nullptr)
      return {};
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    ro.total_order_seek = true;
    std::unique_ptr<rocksdb::Iterator> it{db_->NewIterator(ro, cf)};
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto k = it->key();
      auto v = it->value();
      if (!f(std::string_view{k.data(), k.size()}, std::string_view{v.data(), v.size()}))
        break;
    }
    if (!it->status().ok())
      return translate(it->status(), "journal " + path_ + ": " + what);
    return {};
  }

  std::string path_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  rocksdb::ColumnFamilyHandle* runs_ = nullptr;
  rocksdb::ColumnFamilyHandle* definitions_ = nullptr;
  rocksdb::ColumnFamilyHandle* fleet_ = nullptr;
  rocksdb::ColumnFamilyHandle* templates_ = nullptr;
  rocksdb::ColumnFamilyHandle* batches_ = nullptr;
  rocksdb::ColumnFamilyHandle* history_ = nullptr;
  /// The key of the next fleet_history record.
  uint64_t next_history_ = 1;
  bool read_only_ = false;
};

} // namespace

caf::expected<std::unique_ptr<store>> open_rocksdb_store(const std::string& path,
                                                         const rocksdb_store_options& opts) {
  if (auto err = check_journal_dir(path, opts))
    return err;
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = opts.create_if_missing;
  // A journal written by an earlier version gets the newer column families when it is opened
  // to write, also by a tool that does not create journals (archive): before, archive refused
  // such a journal ("Column family not found: fleet_history").
  db_opts.create_missing_column_families = !opts.read_only;
  db_opts.info_log = std::make_shared<forwarding_logger>(opts.log, path);
  db_opts.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_opts.max_background_jobs = opts.background_jobs;
  db_opts.IncreaseParallelism(opts.background_jobs);
  // The journal's durability comes from syncing the WAL on every commit; cap its size so
  // recovery after a crash replays little.
  db_opts.max_total_wal_size = 256u << 20;
  // One writer (the journal actor), and hashed memtables, which need it.
  db_opts.allow_concurrent_memtable_write = false;
  rocksdb::ColumnFamilyOptions cf_opts;
  cf_opts.write_buffer_size = opts.write_buffer_bytes;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  cf_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf_opts.compression = rocksdb::kNoCompression;
  // events and runs: hashed memtables keyed by run (see run_prefix).
  auto hashed = cf_opts;
  hashed.memtable_factory.reset(rocksdb::NewHashSkipListRepFactory(1u << 16));
  auto events_opts = hashed;
  events_opts.prefix_extractor = std::make_shared<run_prefix>();
  auto runs_opts = hashed;
  runs_opts.prefix_extractor.reset(rocksdb::NewNoopTransform());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_opts);
  cfs.emplace_back("events", events_opts);
  cfs.emplace_back("runs", runs_opts);
  cfs.emplace_back("definitions", cf_opts);
  cfs.emplace_back("fleet", cf_opts);
  cfs.emplace_back("templates", cf_opts);
  cfs.emplace_back("batches", cf_opts);
  cfs.emplace_back("fleet_history", cf_opts);
  if (opts.read_only) {
    // A journal written by an earlier version may lack the newer column families: open
    // those it has (their readers see nothing).
    std::vector<std::string> present;
    auto ls = rocksdb::DB::ListColumnFamilies(db_opts, path, &present);
    if (!ls.ok())
      return translate(ls, "journal " + path + ": open");
    cfs.erase(std::remove_if(cfs.begin(), cfs.end(),
                             [&](const rocksdb::ColumnFamilyDescriptor& d) {
                               return std::find(present.begin(), present.end(), d.name)
                                      == present.end();
                             }),
              cfs.end());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status st;
  if (opts.read_only)
    st = rocksdb::DB::OpenForReadOnly(db_opts, path, cfs, &handles, &raw);
  else
    st = rocksdb::DB::Open(db_opts, path, cfs, &handles, &raw);
  if (!st.ok())
    return translate(st, "journal " + path + ": open");
  return std::unique_ptr<store>{
    new rocksdb_store(path, std::unique_ptr<rocksdb::DB>{raw}, std::move(handles), opts.read_only)};
}

} // namespace ferry
