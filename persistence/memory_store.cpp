// The in-memory store: the same contract as the RocksDB store, kept in ordered maps behind a
// mutex. For unit tests and dry runs; nothing survives the process.
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "common/errc.hpp"
#include "persistence/codec.hpp"
#include "persistence/keys.hpp"
#include "persistence/store.hpp"

namespace ferry {

store::~store() = default;

namespace {

class memory_store final : public store {
public:
  caf::error write(const std::vector<const transition_record*>& batch, bool) override {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto* r : batch) {
      if (!r->events.empty())
        events_[event_key(r->run, r->first_seq)] = r->events;
      runs_[r->run] = r->checkpoint;
      if (!r->definition_digest.empty())
        definitions_[r->definition_digest] = r->definition;
      for (auto& c : r->fleet) {
        if (c.value.empty())
          fleet_.erase(c.key);
        else
          fleet_[c.key] = c.value;
      }
      if (!r->fleet.empty())
        history_[big_endian(next_history_++)] =
          encode_fleet_history(r->run, r->first_seq, r->fleet);
    }
    return {};
  }

  caf::expected<std::string> checkpoint(const run_id& run) const override {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = runs_.find(run);
    if (i == runs_.end())
      return make_error(errc::not_found, "run " + run + ": no checkpoint");
    return i->second;
  }

  // The iterations copy what they visit and call `f` without the lock (as a RocksDB
  // iterator reads a snapshot): `f` may read the store, e.g. the journal reader looks up a
  // definition while decoding a batch; holding the mutex there deadlocked.
  caf::error for_each_checkpoint(
    const std::function<bool(std::string_view, std::string_view)>& f) const override {
    return visit(runs_, f);
  }

  caf::error for_each_fleet_record(
    const std::function<bool(std::string_view, std::string_view)>& f) const override {
    return visit(fleet_, f);
  }

  caf::error write_template(const std::string& name, const std::string& encoded,
                            bool) override {
    std::lock_guard<std::mutex> guard{mtx_};
    if (encoded.empty())
      templates_.erase(name);
    else
      templates_[name] = encoded;
    return {};
  }

  caf::error for_each_template(
    const std::function<bool(std::string_view, std::string_view)>& f) const override {
    return visit(templates_, f);
  }

  caf::error write_batch(const std::string& name, const std::string& encoded,
                         bool) override {
    std::lock_guard<std::mutex> guard{mtx_};
    if (encoded.empty())
      batches_.erase(name);
    else
      batches_[name] = encoded;
    return {};
  }

  caf::error for_each_batch(
    const std::function<bool(std::string_view, std::string_view)>& f) const override {
    return visit(batches_, f);
  }

  caf::error compact() override {
    return {};
  }

  caf::error for_each_fleet_history(
    const std::function<bool(std::string_view, std::string_view)>& f) const override {
    return visit(history_, f);
  }

  caf::error remove_fleet_history(const std::vector<std::string>& keys) override {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& k : keys)
      history_.erase(k);
    return {};
  }

  caf::error for_each_event_batch(
    const run_id& run, uint64_t from_seq,
    const std::function<bool(uint64_t, std::string_view)>& f) const override {
    std::vector<std::pair<uint64_t, std::string>> visited;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto prefix = event_prefix(run);
      auto i = events_.upper_bound(event_key(run, from_seq));
      if (i != events_.begin()) {
        auto prev = std::prev(i);
        if (prev->first.compare(0, prefix.size(), prefix) == 0)
          i = prev;
      }
      for (; i != events_.end() && i->first.compare(0, prefix.size(), prefix) == 0; ++i) {
        std::string_view r;
        uint64_t seq = 0;
        if (!parse_event_key(i->first, r, seq) || r != run)
          break;
        visited.emplace_back(seq, i->second);
      }
    }
    for (auto& [seq, bytes] : visited)
      if (!f(seq, bytes))
        break;
    return {};
  }

  caf::expected<std::string> definition(const std::string& digest) const override {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = definitions_.find(digest);
    if (i == definitions_.end())
      return make_error(errc::not_found, "definition " + digest + ": not in the journal");
    return i->second;
  }

  caf::error remove_run(const run_id& run) override {
    std::lock_guard<std::mutex> guard{mtx_};
    runs_.erase(run);
    auto prefix = event_prefix(run);
    auto i = events_.lower_bound(prefix);
    while (i != events_.end() && i->first.compare(0, prefix.size(), prefix) == 0)
      i = events_.erase(i);
    return {};
  }

private:
  mutable std::mutex mtx_;
  std::map<std::string, std::string> events_;
  std::map<std::string, std::string> runs_;
  // Copies `m` under the lock, then calls `f` on the copy without it.
  caf::error visit(const std::map<std::string, std::string>& m,
                   const std::function<bool(std::string_view, std::string_view)>& f) const {
    std::vector<std::pair<std::string, std::string>> visited;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      visited.assign(m.begin(), m.end());
    }
    for (auto& [k, v] : visited)
      if (!f(k, v))
        break;
    return {};
  }

  std::map<std::string, std::string> definitions_;
  std::map<std::string, std::string> fleet_;
  std::map<std::string, std::string> templates_;
  std::map<std::string, std::string> batches_;
  std::map<std::string, std::string> history_;
  uint64_t next_history_ = 1;
};

} // namespace

std::unique_ptr<store> make_memory_store() {
  return std::make_unique<memory_store>();
}

} // namespace ferry
