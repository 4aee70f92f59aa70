// ferry::engine — the C++ embedding API. Opens a journal (RocksDB, or in memory), resumes
// every run that was not at rest, and lets a control plane submit, inspect, watch and steer
// runs. Owns an actor system, the journal, the engine actor and the timer service.
// Every method is thread-safe. Callbacks (watch, submit_async) run on the engine's threads:
// keep them short and never call the engine synchronously from inside one.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "actors/actors.hpp"
#include "actors/executor.hpp"
#include "actors/fleet_options.hpp"
#include "templates/template.hpp"
#include "actors/metrics.hpp"
#include "workflows/definition_codec.hpp"

namespace ferry {

class fleet_runtime;

/// Retention: runs at rest for longer than `age` are archived (exported as JSON lines, see
/// docs/journal-format.md) and removed from the journal, which is then compacted.
struct retention_options {
  /// 0: never (default).
  std::chrono::milliseconds age{0};
  /// Where each pass writes its archive, "runs-<ms since the epoch>.jsonl". Required with an
  /// age.
  std::string archive_dir;
  /// How often a pass runs. Default: 1 h.
  std::chrono::milliseconds every{3600000};
};

/// The most scheduler threads an engine takes (engine_options::threads).
constexpr size_t max_engine_threads = 1024;

struct engine_options {
  /// Directory of the RocksDB journal; empty = an in-memory journal that does not survive
  /// the process. Default: "".
  std::string journal_path;
  /// Create the journal when `journal_path` holds none. false: open only an existing one
  /// (not_found otherwise), for a program that shows what a journal holds. Default: true.
  bool create_journal = true;
  /// Sync the journal's write-ahead log on every commit. Default: true.
  bool sync = true;
  /// Most transitions per journal batch. Default: 4096.
  size_t max_batch = 4096;
  /// Transitions on their way to the journal at once; runs beyond it queue for a slot.
  /// Bounds commit latency and memory under overload. Default: 384.
  size_t max_inflight_commits = 384;
  /// Scheduler threads; 0 = one per core; at most max_engine_threads. Default: 0.
  size_t threads = 0;
  /// CAF scheduler policy: "sharing" (one queue, idle workers sleep on a condition variable)
  /// or "stealing". Default: "sharing".
  std::string scheduler_policy = "sharing";
  /// Resume the runs that are not at rest on open (they are listed either way; an action on
  /// one of them resumes it). Default: true.
  bool recover = true;
  /// Task kinds besides the built-in noop, sleep, fail and effect (same name: replaces).
  /// The engine holds them until close(), which lets them go once no run can call them.
  std::vector<std::shared_ptr<task_executor>> executors;
  /// Deadline of each synchronous call. Default: 30 s.
  std::chrono::milliseconds call_timeout{30000};
  /// The fleet the engine drives (fleet/fleet_codec.hpp: load_fleet_file); its actors start
  /// with the fleet state the journal holds (leases, reservations, where VMs run, address
  /// routes). Empty: no fleet. Default: empty.
  fleet::model_ptr fleet;
  /// How the fleet's actors and drivers start. Default: fleet_options{}.
  fleet_options fleet_opts;
  /// Directories of built-in migration templates (templates/builtin/ of the source tree, for
  /// instance): loaded on open, read-only in the registry. Default: none.
  std::vector<std::string> template_dirs;
  /// Called by `notify` tasks (a migration finished, was denied...), on an engine thread:
  /// keep it short. At least once: an engine stopped after the call and before the task's
  /// success was durable calls it again on resume; (run, task) names one notification.
  /// Empty: notifications are logged. Default: empty.
  notify_fn notify;
  /// Called while a task reports progress (a migration's copy: bytes moved and left, pass,
  /// dirty rate), on a driver thread, a few times a second; not journaled: keep it short.
  /// Default: empty.
  progress_fn on_progress;
  /// Fault injection (tests, game days): called before each attempt is handed to its
  /// executor; a result it returns is the attempt's result instead (the executor is not
  /// called). Called on engine threads; must be thread-safe and quick. Default: empty.
  std::function<std::optional<task_result>(const task_call&)> inject_fault;
  /// Fault injection of a lost answer: called with each attempt's result once its executor
  /// answered (it acted); a result it returns is reported instead, so what the attempt did
  /// is in doubt, and the fleet changes it carried are lost with it (as with an answer that
  /// came after its deadline). Same rules as inject_fault. Default: empty.
  std::function<std::optional<task_result>(const task_call&, const task_result&)>
    inject_lost_answer;
  /// Archiving old runs, on a thread of its own; each pass that archived runs is told to
  /// `notify` (event "journal.archived"). Default: off.
  retention_options retention;
};

struct submit_options {
  /// Empty: the engine names the run. Given: an idempotency key (same id and definition
  /// again returns the existing run).
  run_id id;
  /// Retry jitter seed; 0 = drawn by the engine.
  uint64_t seed = 0;
  /// Start no earlier than this (ms since the epoch); 0 = now.
  time_ms not_before = 0;
  /// Who submits, recorded in the journal.
  std::string actor;
};

/// Ends a watch when destroyed or cancelled.
class watch_handle {
public:
  watch_handle() = default;
  explicit watch_handle(std::function<void()> cancel) : cancel_(std::move(cancel)) {
  }
  watch_handle(watch_handle&&) = default;
  watch_handle& operator=(watch_handle&&) = default;
  ~watch_handle() { cancel(); }
  void cancel() {
    if (cancel_) {
      cancel_();
      cancel_ = nullptr;
    }
  }

private:
  std::function<void()> cancel_;
};

class engine {
public:
  /// Opens the journal, starts the engine, and (unless told not to) resumes every run that
  /// is not at rest. Errors name the journal path and the reason.
  static caf::expected<std::unique_ptr<engine>> open(engine_options opts = {});

  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  /// The kinds definitions may use.
  const kind_catalog& kinds() const;

  /// The fleet's actors; nullptr when the engine has no fleet.
  fleet_runtime* fleet() const;

  // -- migration templates: the registry (actors/template_registry.hpp) ------------------

  /// Validates a template (text format or JSON) against kinds() and keeps it in the journal.
  /// A template of the same name is replaced only by a higher version; built-in ones never.
  caf::expected<template_ptr> put_template(std::string_view source);
  caf::expected<template_ptr> get_template(const std::string& name) const;
  /// Every template, built-in and kept, by name.
  std::vector<template_ptr> list_templates() const;
  caf::error delete_template(const std::string& name);
  /// Whether `name` is a built-in template (read-only).
  bool is_builtin_template(const std::string& name) const;
  /// Renders a registered template with `args` (names checked against the fleet, if any).
  caf::expected<definition_ptr> render_template(const std::string& name,
                                                const template_args& args) const;
  /// Renders a template with `args`, checked against the fleet; parameters derived from the
  /// fleet (`from_vm`) see where the VM runs now.
  caf::expected<definition_ptr> render(const migration_template& t,
                                       const template_args& args) const;

  /// Parses and validates a definition (text format or JSON).
  caf::expected<definition_ptr> load(std::string_view source) const;
  caf::expected<definition_ptr> load_file(const std::string& path) const;

  /// Starts a run; returns its id once its first transition is durable.
  caf::expected<run_id> submit(definition_ptr def, submit_options opts = {});

  /// Starts a run without waiting; `done` gets the id once the run's first transition is
  /// durable, or the error: exactly once, also when the engine closes first (unavailable,
  /// then possibly on the thread closing it). Any number may be in flight at once.
  void submit_async(definition_ptr def, submit_options opts,
                    std::function<void(caf::expected<run_id>)> done);

  /// The run's durable state.
  caf::expected<run_state> get(const run_id& id);

  caf::expected<std::vector<run_summary>> list(const list_filter& filter = {});

  caf::expected<control_ack> cancel(const run_id& id, const std::string& actor = "api");
  /// The longest reason abort takes, in bytes; a longer one is refused (invalid_argument).
  static constexpr size_t max_reason_bytes = 4096;

  /// Stops the run at once and compensates nothing; `reason` is kept in the journal.
  caf::expected<control_ack> abort(const run_id& id, const std::string& reason = {},
                                   const std::string& actor = "api");
  caf::expected<control_ack> pause(const run_id& id, const std::string& actor = "api");
  caf::expected<control_ack> resume(const run_id& id, const std::string& actor = "api");
  caf::expected<control_ack> approve(const run_id& id, const std::string& task,
                                     const std::string& actor = "api");
  caf::expected<control_ack> retry(const run_id& id, const std::string& task,
                                   const std::string& actor = "api");

  /// Calls `on_events` with the run's durable events from `from_seq` on (history first,
  /// then live, in order, without gaps) and `on_done` once with the run's state when it comes
  /// to rest. The watch lasts as long as the handle.
  watch_handle watch(const run_id& id, uint64_t from_seq,
                     std::function<void(const std::vector<event>&)> on_events,
                     std::function<void(const run_state&)> on_done);

  // -- batches and drains (templates/batch.hpp; the scheduler, actors/scheduler.hpp) --------

  /// Checks a batch (every item's template and arguments, its VM in the fleet), keeps it in
  /// the journal and starts it; answers once it is durable. The same batch again returns it
  /// as it is (idempotent); another batch of the same name is already_exists.
  caf::expected<batch_status> submit_batch(const batch_spec& spec);
  /// Builds the batch that empties a host or a zone (templates/batch.hpp: drain_batch) from
  /// where the VMs run now, and submits it.
  caf::expected<batch_status> drain(const drain_request& req);
  caf::expected<batch_status> get_batch(const std::string& name);
  /// Every batch, without their items.
  caf::expected<std::vector<batch_status>> list_batches();
  /// Starts no more of its items and cancels its runs in flight.
  caf::expected<batch_status> cancel_batch(const std::string& name);
  /// Waits until every item of the batch is at rest; deadline_exceeded after `timeout`.
  caf::expected<batch_status> wait_batch(const std::string& name,
                                         std::chrono::milliseconds timeout);
  /// The same without blocking the caller: `done` gets the batch's status once it finished,
  /// or its status then once `timeout` passed (look at `finished`), or the error (not_found,
  /// unavailable once the engine closes). Called once, on an engine thread.
  void wait_batch_async(const std::string& name, std::chrono::milliseconds timeout,
                        std::function<void(caf::expected<batch_status>)> done);

  /// Waits until the run comes to rest (SUCCEEDED, ROLLED_BACK, FAILED or ABORTED) and
  /// returns its state; deadline_exceeded after `timeout`.
  caf::expected<run_state> wait(const run_id& id, std::chrono::milliseconds timeout);

  /// Retention now: archives the runs at rest last updated more than `older_than` ago into
  /// `file` (appended; JSON lines as `ferry journal export`), removes them from the journal
  /// and compacts it. Returns how many runs.
  caf::expected<uint64_t> archive(std::chrono::milliseconds older_than, const std::string& file);

  /// Runs resumed when the engine opened.
  uint64_t recovered() const;

  /// Runs whose checkpoint could not be read when the engine opened: logged and skipped
  /// (the other runs resume).
  uint64_t unreadable_runs() const;

  engine_metrics& metrics();

  /// The commit window now: transitions on their way to the journal, and runs waiting for a
  /// slot (engine_options::max_inflight_commits).
  struct commit_queue {
    size_t in_flight = 0;
    size_t waiting = 0;
  };
  commit_queue commit_queue_depth() const;

  /// What the journal has written so far.
  caf::expected<journal_stats> journal_statistics();

  /// Stops every run (nothing is written on their behalf), lets in-flight commits finish and
  /// closes the journal. It waits for a run still handing out an attempt (its executor is
  /// called before the executors go). An answer to a call of a run that arrives afterwards
  /// (a driver's, a simulator's, an executor's `done`) is dropped, and no callback of the
  /// options is called any more. Called by the destructor; idempotent.
  void close();

  struct impl;

private:
  explicit engine(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace ferry
