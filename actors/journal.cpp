#include "actors/journal.hpp"

#include "persistence/journal_export.hpp"

#include <chrono>
#include <unordered_set>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/log.hpp"

#include "actors/commit_window.hpp"
#include "actors/metrics.hpp"
#include "common/clock.hpp"
#include "common/thread_name.hpp"

namespace ferry {

namespace {

struct journal_state {
  std::shared_ptr<store> st;
  journal_options opts;
  engine_metrics* metrics = nullptr;
  commit_window* window = nullptr;
  /// The batch being written (reused).
  std::vector<pending_commit> pending;
  /// Definitions known to be in the store: written once.
  std::unordered_set<std::string> known_definitions;
  journal_stats stats;
  /// Set once a write failed: the journal refuses everything after.
  caf::error broken;
  static inline const char* name = "ferry.journal";
};

using journal_ptr = journal_actor::stateful_pointer<journal_state>;

/// Writes the transitions ready in the commit window (up to max_batch) in one batch; the number
/// written (or failed).
size_t flush(journal_ptr self) {
  auto& st = self->state;
  st.pending.clear();
  auto n = st.window->take(st.opts.max_batch, st.pending);
  if (n == 0)
    return 0;
  std::vector<const transition_record*> batch;
  batch.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto& r = st.pending[i].req.record;
    if (!r.definition_digest.empty() && st.known_definitions.count(r.definition_digest) != 0) {
      r.definition_digest.clear();
      r.definition.clear();
    }
    batch.push_back(&r);
  }
  caf::error err = st.broken;
  if (!err)
    err = st.st->write(batch, st.opts.sync);
  if (err && !st.broken) {
    st.broken = err;
    log().error("journal: a write of {} transitions failed; the journal takes no more "
                "(their runs stop and resume from their last durable state on the next "
                "open): {}",
                n, describe(err));
  }
  if (!err) {
    auto now = steady_now_ns();
    for (size_t i = 0; i < n; ++i)
      st.metrics->commit_latency.record(now - st.pending[i].req.sent_ns);
    ++st.stats.batches;
    st.stats.transitions += n;
    st.stats.largest_batch = std::max<uint64_t>(st.stats.largest_batch, n);
    for (auto* r : batch)
      if (!r->definition_digest.empty())
        st.known_definitions.insert(r->definition_digest);
  }
  // Written (or failed): these transitions no longer occupy the window; waiting ones take
  // their slots and go into the next batch.
  auto again = st.window->release(n);
  for (auto& p : st.pending)
    self->send(p.from, committed_atom::value, p.req.record.first_seq, p.req.sent_ns, err);
  st.pending.clear();
  if (again)
    self->send(self, flush_atom::value);
  return n;
}

journal_actor::behavior_type journal(journal_ptr self, std::shared_ptr<store> st,
                                     journal_options opts, engine_metrics* metrics,
                                     commit_window* window) {
  // Detached: this runs on the journal's own thread, which keeps the name.
  name_this_thread("ferry.journal");
  self->state.st = std::move(st);
  self->state.opts = opts;
  self->state.metrics = metrics;
  self->state.window = window;
  if (self->state.opts.max_batch == 0)
    self->state.opts.max_batch = 1;
  return {
    [=](flush_atom) { flush(self); },
    [=](stats_atom) { return self->state.stats; },
    [=](template_atom, const std::string& name,
        const std::string& encoded) -> caf::result<bool> {
      auto& s = self->state;
      // Transitions received before go first.
      flush(self);
      if (auto err = s.st->write_template(name, encoded, s.opts.sync))
        return err;
      return true;
    },
    [=](batch_atom, const std::string& name,
        const std::string& encoded) -> caf::result<bool> {
      auto& s = self->state;
      flush(self);
      if (auto err = s.st->write_batch(name, encoded, s.opts.sync))
        return err;
      return true;
    },
    [=](archive_atom, const std::vector<run_id>& runs,
        const std::string& path) -> caf::result<uint64_t> {
      auto& s = self->state;
      flush(self);
      // Synced to disk before the runs leave the journal.
      auto r = archive_runs_to_file(*s.st, runs, path);
      if (!r)
        return r.error();
      return r->events;
    },
    [=](stop_atom) {
      while (flush(self) != 0)
        continue;
      auto stats = self->state.stats;
      self->quit();
      return stats;
    },
  };
}

} // namespace

journal_actor spawn_journal(caf::actor_system& sys, std::shared_ptr<store> st,
                            journal_options opts, engine_metrics* metrics,
                            commit_window* window) {
  return sys.spawn<caf::detached>(journal, std::move(st), opts, metrics, window);
}

} // namespace ferry
