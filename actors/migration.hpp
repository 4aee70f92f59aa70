// The migration actor: one per run. It owns the run's state, turns inputs (executor results,
// timer wakeups, operator actions) into events through workflows/, hands each transition
// (events + checkpoint) to the journal through the commit window, and dispatches the attempts
// a transition starts only once the journal acknowledged it as durable. At most one transition
// of a run is in flight; inputs that arrive meanwhile go into the next one. Runs on CAF's
// scheduler. Every run actor is counted in its environment's census until it ends, so that
// engine::close() can wait for none to be left.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include <caf/fwd.hpp>

#include "actors/actors.hpp"
#include "actors/executor.hpp"
#include "actors/send_gate.hpp"

namespace ferry {

class executor_registry;
class timer_service;
class commit_window;
struct engine_metrics;

/// How many run actors are alive. A run hands its attempts to the executors, the fleet and
/// the timers from its own handlers, so engine::close() waits until none is left before it
/// destroys those. Before, a run still handling a transition the journal had acknowledged
/// could call an executor close() had freed, and the process aborted ("pure virtual method
/// called").
class run_census {
public:
  void enter() {
    std::lock_guard<std::mutex> g{mtx_};
    ++alive_;
  }
  void leave() {
    std::lock_guard<std::mutex> g{mtx_};
    if (--alive_ == 0)
      cv_.notify_all();
  }
  /// Returns once no run actor is alive.
  void wait_none() {
    std::unique_lock<std::mutex> g{mtx_};
    cv_.wait(g, [this] { return alive_ == 0; });
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  size_t alive_ = 0;
};

/// What every run of one engine shares.
struct migration_env {
  journal_actor journal;
  engine_actor engine;
  const executor_registry* registry = nullptr;
  timer_service* timers = nullptr;
  engine_metrics* metrics = nullptr;
  /// The queue to the journal, which bounds the transitions in flight.
  commit_window* window = nullptr;
  /// For reading a run's history when a watcher subscribes.
  std::shared_ptr<const store> history;
  /// engine_options::inject_fault.
  std::function<std::optional<task_result>(const task_call&)> inject_fault;
  /// engine_options::inject_lost_answer.
  std::function<std::optional<task_result>(const task_call&, const task_result&)>
    inject_lost_answer;
  /// Every task's answer passes through it (send_gate.hpp): shut when the engine closes.
  send_gate_ptr gate;
  /// Counts the run actors spawn_new_run and spawn_recovered_run start, until each ends.
  std::shared_ptr<run_census> census = std::make_shared<run_census>();
};

/// Starts a new run: writes RUN_STARTED (with the definition) and its first decisions, then
/// tells `reply` the run's id (or the error that stopped it).
migration_actor spawn_new_run(caf::actor_system& sys, std::shared_ptr<const migration_env> env,
                              run_id id, submit_request req, submit_reply reply);

/// Resumes a run from its checkpoint: re-dispatches its attempts in flight with the same
/// idempotency keys, then carries on.
migration_actor spawn_recovered_run(caf::actor_system& sys,
                                    std::shared_ptr<const migration_env> env, run_state state);

} // namespace ferry
