#include "actors/migration.hpp"

#include <chrono>
#include <functional>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/commit_window.hpp"
#include "actors/executor.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "actors/timer_service.hpp"
#include "common/clock.hpp"
#include "common/utf8.hpp"
#include "persistence/journal_reader.hpp"
#include "workflows/decide.hpp"

namespace ferry {

namespace {

/// Called once the events it waited for are durable (or failed to be): error, and the
/// sequence number durable by then.
using reply_hook = std::function<void(const caf::error&, uint64_t)>;

// Kept small: a run costs this much for as long as it is in flight (bench/memory_per_run).
struct migration_state {
  /// Owned by the engine, which outlives every run actor.
  const migration_env* env = nullptr;
  run_state run;
  /// Applied to `run`: the first `inflight_events` are on their way to the journal, the rest
  /// wait for the next transition.
  std::vector<event> events;
  /// Fleet state changed by task results in `events`, journaled with them.
  state_changes changes;
  /// Hooks in the same order: the first `inflight_replies` wait for the transition in flight.
  std::vector<reply_hook> replies;
  /// get requests waiting for the run to have nothing in flight.
  std::vector<caf::typed_response_promise<run_state>> gets;
  std::vector<watcher_actor> watchers;
  /// The armed wakeup (its id doubles as the generation a wakeup message carries).
  uint64_t timer_id = 0;
  time_ms timer_at = 0;
  uint32_t inflight_events = 0;
  uint32_t inflight_replies = 0;
  /// A transition is in the commit window or being written.
  bool committing = false;
  run_status reported = run_status::pending;
  static inline const char* name = "ferry.migration";

  size_t pending_events() const { return events.size() - inflight_events; }
};

using migration_ptr = migration_actor::stateful_pointer<migration_state>;

void dispatch_one(migration_ptr self, const dispatch& d) {
  auto& st = self->state;
  auto& td = st.run.def->tasks[d.task];
  const auto& kind = d.compensation ? td.compensation->kind : td.kind;
  auto handle = caf::actor_cast<migration_actor>(self);
  auto task = d.task;
  auto attempt = d.attempt;
  auto comp = d.compensation;
  completion done = [handle, task, attempt, comp, gate = st.env->gate](task_result r) {
    // Text from outside, held and served as the journal keeps it (common/utf8.hpp).
    make_valid_utf8(r.output);
    make_valid_utf8(r.message);
    // An answer after the engine closed goes nowhere: the run resumes on the next open.
    gate->pass(
      [&] { caf::anon_send(handle, result_atom::value, task, attempt, comp, std::move(r)); });
  };
  st.env->metrics->dispatches.fetch_add(1, std::memory_order_relaxed);
  auto* exec = st.env->registry->find(kind);
  if (exec == nullptr) {
    done(task_result::failure(errc::unimplemented,
                              "no executor is registered for kind \"" + kind + "\"", false));
    return;
  }
  task_call call;
  call.run = st.run.id;
  call.def = st.run.def;
  call.task = task;
  call.attempt = attempt;
  call.compensation = comp;
  call.key = idempotency_key(st.run.id, td.id, attempt, comp);
  call.deadline = d.deadline;
  if (td.uses_outputs) {
    auto& run = st.run;
    auto output_of = [&run](const std::string& id) -> std::string {
      auto i = run.def->index_of(id);
      return i < 0 ? std::string{} : run.tasks[static_cast<size_t>(i)].output();
    };
    auto resolved = std::make_shared<params>(call.parameters());
    for (auto& p : *resolved)
      p.second = substitute_outputs(p.second, output_of);
    call.resolved = std::move(resolved);
  }
  if (st.env->inject_fault)
    if (auto r = st.env->inject_fault(call))
      return done(std::move(*r));
  if (st.env->inject_lost_answer)
    done = [done = std::move(done), call, lose = st.env->inject_lost_answer](task_result r) {
      if (auto x = lose(call, r))
        r = std::move(*x);
      done(std::move(r));
    };
  exec->execute(call, std::move(done));
}

/// Stops the run after an error it cannot carry on from, saying so.
void stop_on_error(migration_ptr self, const caf::error& err) {
  log().error("run {}: stopped: {}", self->state.run.id, describe(err));
  self->quit(err);
}

void rearm(migration_ptr self) {
  auto& st = self->state;
  auto at = next_wakeup(st.run);
  // A timer armed for an earlier time stays: waking early only re-arms. Most transitions
  // push the next deadline later, so this spares the timer service a cancel and an arm per
  // transition.
  if (at == 0 || (st.timer_id != 0 && st.timer_at <= at))
    return;
  if (st.timer_id != 0)
    st.env->timers->cancel(st.timer_id);
  st.timer_at = at;
  auto handle = caf::actor_cast<migration_actor>(self);
  st.timer_id = st.env->timers->arm(at, [handle](uint64_t id) {
    caf::anon_send(handle, wakeup_atom::value, id);
  });
}

void stop_timer(migration_ptr self) {
  auto& st = self->state;
  if (st.timer_id != 0)
    st.env->timers->cancel(st.timer_id);
  st.timer_id = 0;
  st.timer_at = 0;
}

bool idle(const migration_state& st) {
  return !st.committing && st.events.empty();
}

/// Leaves the commit window: a transition still waiting for a slot is dropped (the run
/// resumes from what is durable).
void leave_window(migration_ptr self) {
  auto& st = self->state;
  if (st.committing)
    st.env->window->cancel(caf::actor_cast<migration_actor>(self));
}

/// Hands what is pending to the journal, unless a transition is in flight.
void flush(migration_ptr self) {
  auto& st = self->state;
  if (st.committing || st.pending_events() == 0)
    return;
  commit_request req;
  auto& rec = req.record;
  rec.run = st.run.id;
  rec.first_seq = st.events.front().seq;
  // A run's first transition carries its definition, which the journal keeps once under its
  // digest in the same atomic batch: RUN_STARTED names it by that digest.
  rec.events = encode_events(*st.run.def, st.events, run_definition::by_digest);
  rec.checkpoint = encode_checkpoint(st.run);
  if (st.events.front().type == event_type::run_started) {
    rec.definition_digest = st.run.def->digest;
    rec.definition = st.run.def->encoded;
  }
  rec.fleet = std::move(st.changes);
  st.changes.clear();
  st.inflight_events = static_cast<uint32_t>(st.events.size());
  st.inflight_replies = static_cast<uint32_t>(st.replies.size());
  st.committing = true;
  // Into the journal's next batch when the window has a slot, else queued for one; the
  // journal is sent a message only when it has not been told of a ready transition yet.
  if (st.env->window->submit(caf::actor_cast<migration_actor>(self), std::move(req)))
    self->send(st.env->journal, flush_atom::value);
}

/// Decides what is due now and sends it.
void step(migration_ptr self) {
  auto& st = self->state;
  if (auto err = advance(st.run, wall_now_ms(), st.events)) {
    // A bug in workflows/: stop this run where its journal is consistent.
    stop_timer(self);
    leave_window(self);
    stop_on_error(self, err);
    return;
  }
  flush(self);
  rearm(self);
}

void finish_watch(migration_ptr self, const watcher_actor& w) {
  self->send(w, done_atom::value, self->state.run.id, self->state.run);
}

void on_committed(migration_ptr self, int64_t sent_ns, const caf::error& err) {
  auto& st = self->state;
  st.committing = false;
  if (err) {
    for (auto& r : st.replies)
      r(err, 0);
    for (auto& g : st.gets)
      g.deliver(err);
    // The run stops in this process: its watches end too (with the state it had reached,
    // which may be ahead of the journal).
    for (auto& w : st.watchers)
      finish_watch(self, w);
    st.watchers.clear();
    stop_timer(self);
    // What is durable is consistent: the run resumes from it on the next open.
    stop_on_error(self, err);
    return;
  }
  auto& m = *st.env->metrics;
  m.transitions.fetch_add(1, std::memory_order_relaxed);
  m.events.fetch_add(st.inflight_events, std::memory_order_relaxed);
  m.ack_latency.record(steady_now_ns() - sent_ns);
  auto n = st.inflight_events;
  auto durable = st.events[n - 1].seq;
  std::vector<event> committed{std::make_move_iterator(st.events.begin()),
                               std::make_move_iterator(st.events.begin() + n)};
  st.events.erase(st.events.begin(), st.events.begin() + n);
  st.inflight_events = 0;
  // The engine learns of a durable status change before anything it caused (a dispatch, an
  // answer) can be seen: whoever reacts to those and then asks the engine sees the change.
  if (st.events.empty() && st.run.status != st.reported) {
    st.reported = st.run.status;
    self->send(st.env->engine, status_atom::value, summarize(st.run));
    switch (st.run.status) {
      case run_status::succeeded: m.runs_succeeded.fetch_add(1); break;
      case run_status::rolled_back: m.runs_rolled_back.fetch_add(1); break;
      case run_status::failed: m.runs_failed.fetch_add(1); break;
      case run_status::aborted: m.runs_aborted.fetch_add(1); break;
      default: break;
    }
  }
  for (auto& d : dispatches_of(committed))
    dispatch_one(self, d);
  for (auto& w : st.watchers)
    self->send(w, events_atom::value, st.run.id, committed);
  // Once nothing is pending, every hook's events are durable.
  auto k = st.events.empty() ? st.replies.size() : size_t{st.inflight_replies};
  for (size_t i = 0; i < k; ++i)
    st.replies[i](caf::error{}, durable);
  st.replies.erase(st.replies.begin(), st.replies.begin() + static_cast<ptrdiff_t>(k));
  st.inflight_replies = 0;
  if (!st.events.empty()) {
    flush(self);
    return;
  }
  for (auto& g : st.gets)
    g.deliver(st.run);
  st.gets.clear();
  if (is_resting(st.run.status)) {
    for (auto& w : st.watchers)
      finish_watch(self, w);
    st.watchers.clear();
  }
  if (is_terminal(st.run.status)) {
    stop_timer(self);
    self->quit();
    return;
  }
  rearm(self);
}

/// The run's durable events from `from` up to `until`, read back from the journal.
std::vector<event> history(const migration_state& st, uint64_t from, uint64_t until) {
  if (from > until || !st.env->history)
    return {};
  auto evs = journal_reader{st.env->history}.events(st.run.id, from, until, st.run.def);
  return evs ? std::move(*evs) : std::vector<event>{};
}

caf::error apply_control(run_state& run, const control_request& req, std::vector<event>& out) {
  auto now = wall_now_ms();
  switch (req.action) {
    case control_request::op::cancel: return cancel(run, req.actor, now, out);
    case control_request::op::abort: return abort(run, req.actor, req.reason, now, out);
    case control_request::op::pause: return pause(run, req.actor, now, out);
    case control_request::op::resume: return resume(run, req.actor, now, out);
    case control_request::op::approve: return approve(run, req.task, req.actor, now, out);
    case control_request::op::retry: return retry(run, req.task, req.actor, now, out);
  }
  return make_error(errc::invalid_argument, "unknown control action");
}

migration_actor::behavior_type migration_behavior(migration_ptr self) {
  return {
    [=](committed_atom, uint64_t, int64_t sent_ns, const caf::error& err) {
      on_committed(self, sent_ns, err);
    },
    [=](result_atom, uint32_t task, uint32_t attempt, bool comp, const task_result& r) {
      auto& st = self->state;
      auto before = st.events.size();
      if (auto err = on_result(st.run, task, attempt, comp, r, wall_now_ms(), st.events)) {
        stop_timer(self);
        leave_window(self);
        stop_on_error(self, err);
        return;
      }
      // A stale result appends nothing, and its changes are dropped with it.
      if (st.events.size() > before)
        st.changes.insert(st.changes.end(), r.changes.begin(), r.changes.end());
      step(self);
    },
    [=](wakeup_atom, uint64_t id) {
      auto& st = self->state;
      if (id != st.timer_id)
        return;
      st.timer_id = 0;
      st.timer_at = 0;
      step(self);
    },
    [=](control_atom, const control_request& req) -> caf::result<control_ack> {
      auto& st = self->state;
      auto before = st.events.size();
      if (auto err = apply_control(st.run, req, st.events))
        return err;
      if (st.events.size() == before && idle(st))
        return control_ack{st.run.seq, st.run.status};
      auto rp = self->make_response_promise<control_ack>();
      st.replies.emplace_back([rp, self](const caf::error& err, uint64_t seq) mutable {
        if (err)
          rp.deliver(err);
        else
          rp.deliver(control_ack{seq, self->state.run.status});
      });
      step(self);
      return rp;
    },
    [=](get_atom) -> caf::result<run_state> {
      auto& st = self->state;
      if (idle(st))
        return st.run;
      auto rp = self->make_response_promise<run_state>();
      st.gets.push_back(rp);
      return rp;
    },
    [=](watch_atom, uint64_t from, const watcher_actor& w) {
      auto& st = self->state;
      auto durable = st.run.seq - st.events.size();
      auto past = history(st, std::max<uint64_t>(from, 1), durable);
      if (!past.empty())
        self->send(w, events_atom::value, st.run.id, std::move(past));
      if (is_resting(st.run.status) && idle(st))
        finish_watch(self, w);
      else
        st.watchers.push_back(w);
      return true;
    },
    [=](recover_atom) {
      auto& st = self->state;
      // A recovered run's attempts in flight have a durable TASK_STARTED: hand them out
      // again with the same keys, so the executors reconcile with the world rather than act
      // twice. (A new run has none yet.)
      if (!is_terminal(st.run.status))
        for (auto& d : in_flight(st.run))
          dispatch_one(self, d);
      step(self);
    },
    [=](stop_atom) {
      stop_timer(self);
      leave_window(self);
      self->quit();
    },
  };
}

migration_actor::behavior_type new_run(migration_ptr self, const migration_env* env, run_id id,
                                       submit_request req, submit_reply reply) {
  auto& st = self->state;
  st.env = env;
  st.run.id = id;
  event e;
  e.type = event_type::run_started;
  e.at = wall_now_ms();
  e.def = req.def;
  e.seed = req.seed;
  e.not_before = req.not_before;
  e.actor = req.actor;
  if (auto err = emit(st.run, std::move(e), st.events)) {
    reply(err);
    self->quit(err);
    return migration_behavior(self);
  }
  st.replies.emplace_back([reply, id](const caf::error& err, uint64_t) {
    if (err)
      reply(err);
    else
      reply(id);
  });
  self->send(self, recover_atom::value);
  return migration_behavior(self);
}

migration_actor::behavior_type resumed_run(migration_ptr self, const migration_env* env,
                                             run_state state) {
  auto& st = self->state;
  st.env = env;
  st.run = std::move(state);
  st.reported = st.run.status;
  self->send(self, recover_atom::value);
  return migration_behavior(self);
}

/// Counts the run in the census until its actor ends (at once when it has ended already).
migration_actor counted(const migration_env& env, migration_actor a) {
  env.census->enter();
  caf::actor_cast<caf::abstract_actor*>(a)->attach_functor(
    [c = env.census](const caf::error&) { c->leave(); });
  return a;
}

} // namespace

migration_actor spawn_new_run(caf::actor_system& sys, std::shared_ptr<const migration_env> env,
                              run_id id, submit_request req, submit_reply reply) {
  return counted(*env, sys.spawn(new_run, env.get(), std::move(id), std::move(req),
                                 std::move(reply)));
}

migration_actor spawn_recovered_run(caf::actor_system& sys,
                                    std::shared_ptr<const migration_env> env,
                                    run_state state) {
  return counted(*env, sys.spawn(resumed_run, env.get(), std::move(state)));
}

} // namespace ferry
