#include "actors/engine_actor.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "persistence/journal_reader.hpp"
#include "workflows/definition_codec.hpp"

namespace ferry {

struct submit_reply::state {
  callback fn;
  std::atomic<bool> called{false};

  ~state() {
    if (!called.load(std::memory_order_acquire) && fn)
      fn(make_error(errc::unavailable, "the engine stopped before the run started"));
  }
};

submit_reply::submit_reply(callback fn) : st_(std::make_shared<state>()) {
  st_->fn = std::move(fn);
}

void submit_reply::operator()(caf::expected<run_id> outcome) const {
  if (st_ && !st_->called.exchange(true, std::memory_order_acq_rel) && st_->fn)
    st_->fn(std::move(outcome));
}

namespace {

/// What the engine keeps of every run in the journal: enough to list it, kept small (a run
/// costs this much memory for as long as the engine runs; its definition is not kept).
struct run_entry {
  /// Null when the run is at rest and has no actor.
  migration_actor actor;
  /// Its definition's name (interned: shared by every run of that name) and digest.
  const std::string* name = nullptr;
  std::string digest;
  run_status status = run_status::pending;
  uint64_t last_seq = 0;
  time_ms created = 0;
  time_ms updated = 0;
  std::string reason;
};

struct engine_state {
  std::shared_ptr<migration_env> env;
  std::shared_ptr<const store> st;
  std::map<run_id, run_entry> runs;
  /// Definitions in use, by digest: equal submissions share one, and a run read back from
  /// its checkpoint finds it here. Held by the runs (and callers) that use them; an entry
  /// whose definition is gone is dropped by prune().
  std::unordered_map<std::string, std::weak_ptr<const definition>> definitions;
  size_t prune_at = 1024;
  /// Definition names (never removed: there are few).
  std::set<std::string> names;
  uint64_t next_id = 0;
  uint64_t next_seed = 0;
  bool stopping = false;
  /// Told of every run that comes to rest (the scheduler).
  std::vector<caf::actor> observers;
  static inline const char* name = "ferry.engine";
};

using engine_ptr = engine_actor::stateful_pointer<engine_state>;

/// Drops the cache entries of definitions no run uses any more, once the cache has doubled.
void prune(engine_state& st) {
  if (st.definitions.size() < st.prune_at)
    return;
  for (auto i = st.definitions.begin(); i != st.definitions.end();)
    i = i->second.expired() ? st.definitions.erase(i) : std::next(i);
  st.prune_at = std::max<size_t>(1024, 2 * st.definitions.size());
}

definition_ptr intern(engine_state& st, definition_ptr def) {
  auto& slot = st.definitions[def->digest];
  if (auto known = slot.lock())
    return known;
  slot = def;
  prune(st);
  return def;
}

const std::string* intern_name(engine_state& st, const std::string& name) {
  return &*st.names.insert(name).first;
}

caf::expected<definition_ptr> find_definition(engine_state& st, const std::string& digest) {
  if (auto i = st.definitions.find(digest); i != st.definitions.end())
    if (auto known = i->second.lock())
      return known;
  auto bytes = st.st->definition(digest);
  if (!bytes)
    return bytes.error();
  auto def = decode_definition(*bytes);
  if (!def)
    return def.error();
  return intern(st, *def);
}

run_summary summarize(const run_id& id, const run_entry& e) {
  run_summary s;
  s.id = id;
  s.status = e.status;
  if (e.name)
    s.definition_name = *e.name;
  s.definition_digest = e.digest;
  s.last_seq = e.last_seq;
  s.created = e.created;
  s.updated = e.updated;
  s.reason = e.reason;
  return s;
}

/// Takes a run's summary into its entry.
void update(engine_state& st, run_entry& e, run_summary& s) {
  e.status = s.status;
  e.last_seq = s.last_seq;
  e.created = s.created;
  e.updated = s.updated;
  e.reason = std::move(s.reason);
  if (!e.name || *e.name != s.definition_name)
    e.name = intern_name(st, s.definition_name);
  if (e.digest != s.definition_digest)
    e.digest = std::move(s.definition_digest);
}

caf::expected<run_state> load_run(engine_state& st, const run_id& id) {
  auto bytes = st.st->checkpoint(id);
  if (!bytes)
    return bytes.error();
  return decode_checkpoint(*bytes, [&st](const std::string& d) {
    return find_definition(st, d);
  });
}

std::string generate_id(engine_state& st, const definition& def) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(st.next_id++));
  auto prefix = def.name.substr(0, 40);
  return prefix + "-" + buf;
}

caf::error not_found(const run_id& id) {
  return make_error(errc::not_found, "run \"" + id + "\": no such run");
}

/// The run's actor, spawning one from the checkpoint for a FAILED run an operator acts on.
caf::expected<migration_actor> live_actor(engine_ptr self, const run_id& id, bool revive) {
  auto& st = self->state;
  auto i = st.runs.find(id);
  if (i == st.runs.end())
    return not_found(id);
  if (i->second.actor)
    return i->second.actor;
  if (!revive || is_terminal(i->second.status))
    return make_error(errc::failed_precondition,
                      "run \"" + id + "\" is " + to_string(i->second.status));
  auto state = load_run(st, id);
  if (!state)
    return state.error();
  i->second.actor = spawn_recovered_run(self->system(), st.env, std::move(*state));
  return i->second.actor;
}

void watch_at_rest(engine_ptr self, const run_id& id, uint64_t from, const watcher_actor& w) {
  auto& st = self->state;
  auto state = load_run(st, id);
  if (!state) {
    run_state empty;
    empty.id = id;
    self->send(w, done_atom::value, id, std::move(empty));
    return;
  }
  auto past = journal_reader{st.st}.events(id, from, UINT64_MAX, state->def);
  if (past && !past->empty())
    self->send(w, events_atom::value, id, std::move(*past));
  self->send(w, done_atom::value, id, std::move(*state));
}

/// Starts the run `req` asks for: `reply` gets its id once the run's first transition is
/// durable (at once when the run exists with the same definition), or the error.
void submit(engine_ptr self, submit_request& req, submit_reply reply) {
  auto& st = self->state;
  if (st.stopping)
    return reply(make_error(errc::unavailable, "the engine is shutting down"));
  if (!req.def)
    return reply(make_error(errc::invalid_argument, "submit: field \"definition\": missing"));
  req.def = intern(st, req.def);
  if (!req.id.empty() && !valid_id(req.id))
    return reply(make_error(errc::invalid_argument,
                            "submit: field \"run_id\": must be 1 to 64 characters of "
                            "[A-Za-z0-9_.-], got \"" + req.id + "\""));
  if (req.not_before < 0)
    return reply(make_error(errc::invalid_argument,
                            "submit: field \"not_before\": must be 0 (now) or a time in ms "
                            "since the epoch, got " + std::to_string(req.not_before)));
  auto id = req.id;
  if (id.empty()) {
    do {
      id = generate_id(st, *req.def);
    } while (st.runs.count(id) != 0);
  }
  if (auto i = st.runs.find(id); i != st.runs.end()) {
    if (i->second.digest == req.def->digest)
      return reply(id);
    return reply(make_error(errc::already_exists,
                            "submit: field \"run_id\": run \"" + id
                              + "\" exists with another definition (\""
                              + (i->second.name ? *i->second.name : std::string{"?"}) + "\")"));
  }
  if (req.seed == 0)
    req.seed = (st.next_seed = st.next_seed * 6364136223846793005ULL + 1442695040888963407ULL);
  run_entry entry;
  entry.status = run_status::pending;
  entry.name = intern_name(st, req.def->name);
  entry.digest = req.def->digest;
  entry.actor = spawn_new_run(self->system(), st.env, id, std::move(req), std::move(reply));
  st.runs.emplace(id, std::move(entry));
}

engine_actor::behavior_type engine_fn(engine_ptr self, std::shared_ptr<migration_env> env,
                                      std::shared_ptr<const store> st, uint64_t id_seed) {
  self->state.env = std::move(env);
  self->state.st = std::move(st);
  self->state.next_id = id_seed;
  self->state.next_seed = id_seed * 0x9e3779b97f4a7c15ULL + 1;
  return {
    [=](submit_atom, submit_request& req) -> caf::result<run_id> {
      auto rp = self->make_response_promise<run_id>();
      submit(self, req, submit_reply{[rp](caf::expected<run_id> x) mutable {
               if (x)
                 rp.deliver(std::move(*x));
               else
                 rp.deliver(std::move(x.error()));
             }});
      return rp;
    },
    [=](submit_atom, submit_request& req, submit_reply& reply) {
      submit(self, req, std::move(reply));
    },
    [=](get_atom, const run_id& id) -> caf::result<run_state> {
      auto& st = self->state;
      auto i = st.runs.find(id);
      if (i == st.runs.end())
        return not_found(id);
      if (!i->second.actor)
        return load_run(st, id);
      auto rp = self->make_response_promise<run_state>();
      self->request(i->second.actor, caf::infinite, get_atom::value)
        .then([rp](run_state& s) mutable { rp.deliver(std::move(s)); },
              [self, rp, id](caf::error&) mutable {
                // The run came to rest meanwhile: its checkpoint has the final state.
                auto s = load_run(self->state, id);
                if (s)
                  rp.deliver(std::move(*s));
                else
                  rp.deliver(s.error());
              });
      return rp;
    },
    [=](list_atom, const list_filter& f) {
      auto& st = self->state;
      std::vector<run_summary> result;
      auto i = f.after.empty() ? st.runs.begin() : st.runs.upper_bound(f.after);
      for (; i != st.runs.end(); ++i) {
        auto& e = i->second;
        if (!f.statuses.empty()
            && std::find(f.statuses.begin(), f.statuses.end(), e.status) == f.statuses.end())
          continue;
        if (!f.definition_name.empty() && (!e.name || *e.name != f.definition_name))
          continue;
        result.push_back(summarize(i->first, e));
        if (f.limit != 0 && result.size() >= f.limit)
          break;
      }
      return result;
    },
    [=](control_atom, const run_id& id, const control_request& req)
      -> caf::result<control_ack> {
      auto actor = live_actor(self, id, true);
      if (!actor)
        return actor.error();
      auto rp = self->make_response_promise<control_ack>();
      self->request(*actor, caf::infinite, control_atom::value, req)
        .then([rp](control_ack& ack) mutable { rp.deliver(ack); },
              [rp, id](caf::error& err) mutable {
                if (code_of(err) == errc::unknown)
                  rp.deliver(make_error(errc::failed_precondition,
                                        "run \"" + id + "\" came to rest meanwhile"));
                else
                  rp.deliver(err);
              });
      return rp;
    },
    [=](watch_atom, const run_id& id, uint64_t from, const watcher_actor& w) {
      auto& st = self->state;
      auto i = st.runs.find(id);
      if (i == st.runs.end()) {
        run_state empty;
        empty.id = id;
        self->send(w, done_atom::value, id, std::move(empty));
        return;
      }
      if (!i->second.actor) {
        watch_at_rest(self, id, from, w);
        return;
      }
      self->request(i->second.actor, caf::infinite, watch_atom::value, from, w)
        .then([](bool) {}, [self, id, from, w](caf::error&) { watch_at_rest(self, id, from, w); });
    },
    [=](status_atom, run_summary& s) {
      auto& st = self->state;
      // A run resumed on open may report before it is registered.
      auto i = st.runs.find(s.id);
      if (i == st.runs.end())
        i = st.runs.emplace(s.id, run_entry{}).first;
      bool terminal = is_terminal(s.status);
      if (is_resting(s.status) && !is_resting(i->second.status))
        for (auto& o : st.observers)
          caf::anon_send(o, status_atom::value, s);
      update(st, i->second, s);
      if (terminal)
        i->second.actor = nullptr;
    },
    [=](archive_atom, time_ms before, const std::string& path) -> caf::result<uint64_t> {
      auto& st = self->state;
      std::vector<run_id> old;
      for (auto& [id, e] : st.runs)
        if (!e.actor && is_terminal(e.status) && e.updated <= before)
          old.push_back(id);
      if (old.empty())
        return uint64_t{0};
      auto rp = self->make_response_promise<uint64_t>();
      self->request(st.env->journal, caf::infinite, archive_atom::value, old, path)
        .then(
          [self, old, rp](uint64_t) mutable {
            for (auto& id : old)
              self->state.runs.erase(id);
            rp.deliver(static_cast<uint64_t>(old.size()));
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](observe_atom, caf::actor& o) {
      self->state.observers.push_back(std::move(o));
    },
    [=](recover_atom, std::vector<recovered_run>& runs) {
      auto& st = self->state;
      for (auto& r : runs) {
        auto& e = st.runs[r.summary.id];
        // A resumed run may have reported a newer status already.
        if (!e.name || e.last_seq < r.summary.last_seq)
          update(st, e, r.summary);
        if (r.actor && !is_terminal(e.status))
          e.actor = caf::actor_cast<migration_actor>(r.actor);
      }
      return true;
    },
    [=](stop_atom) -> caf::result<journal_stats> {
      auto& st = self->state;
      st.stopping = true;
      for (auto& [id, entry] : st.runs)
        if (entry.actor) {
          self->send(entry.actor, stop_atom::value);
          entry.actor = nullptr;
        }
      auto rp = self->make_response_promise<journal_stats>();
      self->request(st.env->journal, caf::infinite, stop_atom::value)
        .then(
          [=](journal_stats& stats) mutable {
            rp.deliver(stats);
            self->quit();
          },
          [=](caf::error& err) mutable {
            rp.deliver(err);
            self->quit();
          });
      return rp;
    },
  };
}

} // namespace

engine_actor spawn_engine(caf::actor_system& sys, std::shared_ptr<migration_env> env,
                          std::shared_ptr<const store> st, uint64_t id_seed) {
  auto* e = env.get();
  auto handle = sys.spawn(engine_fn, std::move(env), std::move(st), id_seed);
  e->engine = handle;
  return handle;
}

} // namespace ferry
