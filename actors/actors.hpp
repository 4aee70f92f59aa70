// Every typed actor interface of Ferry, and the messages they exchange. Actors refer to each
// other only through these handles. Each message is commented where it is declared.
//
// Threads: the journal runs detached (its own thread, it blocks on fsync); every other actor
// runs on CAF's scheduler and must never block.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/actor_control_block.hpp>
#include <caf/atom.hpp>
#include <caf/expected.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>

#include "common/errc.hpp"
#include "actors/fleet_messages.hpp"
#include "common/ids.hpp"
#include "persistence/codec.hpp"
#include "persistence/store.hpp"
#include "templates/batch.hpp"
#include "workflows/commands.hpp"
#include "workflows/run_state.hpp"

// Definitions are shared in memory and travel between processes by digest, never inline:
// inspectors skip them.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::definition_ptr)
// Task texts stay in the process too (state crosses processes as a checkpoint, not as this).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::task_text)
// Batches are kept in the journal as their encoding; in messages they stay in the process.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::batch_record)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::batch_status)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<ferry::batch_status>)
// A callback: stays in the process.
namespace ferry {
class submit_reply;
}
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::submit_reply)

namespace ferry {

// -- atoms (10 characters at most) --------------------------------------------------------

using flush_atom = caf::atom_constant<caf::atom("flush")>;
using committed_atom = caf::atom_constant<caf::atom("committed")>;
using result_atom = caf::atom_constant<caf::atom("result")>;
using wakeup_atom = caf::atom_constant<caf::atom("wakeup")>;
using control_atom = caf::atom_constant<caf::atom("control")>;
using get_atom = caf::atom_constant<caf::atom("get")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
using submit_atom = caf::atom_constant<caf::atom("submit")>;
using watch_atom = caf::atom_constant<caf::atom("watch")>;
using events_atom = caf::atom_constant<caf::atom("events")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using recover_atom = caf::atom_constant<caf::atom("recover")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using template_atom = caf::atom_constant<caf::atom("template")>;
using batch_atom = caf::atom_constant<caf::atom("batch")>;
using observe_atom = caf::atom_constant<caf::atom("observe")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using submitted_atom = caf::atom_constant<caf::atom("submitted")>;
using archive_atom = caf::atom_constant<caf::atom("archive")>;
// the fleet
using reserve_atom = caf::atom_constant<caf::atom("reserve")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using adopt_atom = caf::atom_constant<caf::atom("adopt")>;
using evict_atom = caf::atom_constant<caf::atom("evict")>;
using acquire_atom = caf::atom_constant<caf::atom("acquire")>;
using unslot_atom = caf::atom_constant<caf::atom("unslot")>;
using driver_atom = caf::atom_constant<caf::atom("driver")>;
using place_atom = caf::atom_constant<caf::atom("place")>;
using capacity_atom = caf::atom_constant<caf::atom("capacity")>;
using offer_atom = caf::atom_constant<caf::atom("offer")>;
using lease_atom = caf::atom_constant<caf::atom("lease")>;
using io_atom = caf::atom_constant<caf::atom("io")>;
using fault_atom = caf::atom_constant<caf::atom("fault")>;
using timeout_atom = caf::atom_constant<caf::atom("timeout")>;
using route_atom = caf::atom_constant<caf::atom("route")>;
using forward_atom = caf::atom_constant<caf::atom("forward")>;
using move_atom = caf::atom_constant<caf::atom("move")>;
using locate_atom = caf::atom_constant<caf::atom("locate")>;
using recommend_atom = caf::atom_constant<caf::atom("recommend")>;

// -- messages -------------------------------------------------------------------------------

/// One transition for the journal: the record to write and when it took its commit-window
/// slot (steady clock, ns), from which the journal measures its commit latency and the run
/// its acknowledgement latency.
struct commit_request {
  transition_record record;
  int64_t sent_ns = 0;
};

/// An operator's action on a run.
struct control_request {
  enum class op : uint8_t { cancel, abort, pause, resume, approve, retry };
  op action = op::cancel;
  /// approve, retry: the task's id.
  std::string task;
  /// Who asks ("operator", a user name, "api").
  std::string actor;
  /// abort: why.
  std::string reason;
};

/// The answer to a control request: the run's last sequence number once the action is
/// durable.
struct control_ack {
  uint64_t seq = 0;
  run_status status = run_status::pending;
};

/// A run to start.
struct submit_request {
  definition_ptr def;
  /// Empty: the engine names the run. Given: submitting the same id and definition again
  /// returns the existing run (idempotent); another definition is already_exists.
  run_id id;
  /// Seed of the retry jitter; 0 = drawn by the engine.
  uint64_t seed = 0;
  /// The run waits in SCHEDULED until then; 0 = at once.
  time_ms not_before = 0;
  std::string actor;
};

/// Where the answer to a submission sent as a message (rather than as a request) goes: the
/// run's id once its first transition is durable, or why it did not start. Called once, on an
/// engine thread; when every copy is dropped uncalled (the engine stopped first), called with
/// `unavailable` where the last copy goes. For a sender with many submissions in flight at
/// once (a batch, submit_async): CAF 0.17 keeps the handlers of an actor's requests awaiting an
/// answer in a flat array it searches and closes up on every answer, so thousands of requests
/// in flight make each answer cost thousands of steps.
class submit_reply {
public:
  using callback = std::function<void(caf::expected<run_id>)>;

  submit_reply() = default;
  explicit submit_reply(callback fn);

  /// Hands over the outcome; only the first call of all copies counts.
  void operator()(caf::expected<run_id> outcome) const;

private:
  struct state;
  std::shared_ptr<state> st_;
};

/// Which runs list() returns.
struct list_filter {
  /// Empty: every status.
  std::vector<run_status> statuses;
  /// Empty: every definition.
  std::string definition_name;
  /// 0: no limit.
  size_t limit = 0;
  /// Skip the runs whose id sorts at or before this one (paging).
  run_id after;
};

/// A run read back from the journal when the engine opens, for the engine to know it; `actor`
/// is set when the run was resumed.
struct recovered_run {
  checkpoint_summary summary;
  /// Its actor, when it resumes.
  caf::strong_actor_ptr actor;
};

/// What the journal has done.
struct journal_stats {
  uint64_t batches = 0;
  uint64_t transitions = 0;
  uint64_t largest_batch = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, transition_record& x) {
  return f(caf::meta::type_name("ferry.transition_record"), x.run, x.first_seq, x.events,
           x.checkpoint, x.definition_digest, x.definition, x.fleet);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, commit_request& x) {
  return f(caf::meta::type_name("ferry.commit_request"), x.record, x.sent_ns);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, control_request& x) {
  return f(caf::meta::type_name("ferry.control_request"), x.action, x.task, x.actor,
           x.reason);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, control_ack& x) {
  return f(caf::meta::type_name("ferry.control_ack"), x.seq, x.status);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, submit_request& x) {
  return f(caf::meta::type_name("ferry.submit_request"), x.def, x.id, x.seed, x.not_before,
           x.actor);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, list_filter& x) {
  return f(caf::meta::type_name("ferry.list_filter"), x.statuses, x.definition_name, x.limit,
           x.after);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recovered_run& x) {
  return f(caf::meta::type_name("ferry.recovered_run"), x.summary, x.actor);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, journal_stats& x) {
  return f(caf::meta::type_name("ferry.journal_stats"), x.batches, x.transitions,
           x.largest_batch);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_result& x) {
  return f(caf::meta::type_name("ferry.task_result"), x.code, x.message, x.retryable,
           x.output, x.changes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return f(caf::meta::type_name("ferry.event"), x.seq, x.at, x.type, x.task, x.attempt,
           x.deadline, x.compensation, x.code, x.retryable, x.message, x.output, x.actor,
           x.def, x.seed, x.not_before);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_state& x) {
  return f(caf::meta::type_name("ferry.task_state"), x.status, x.gate_approved, x.attempt,
           x.compensation_attempt, x.attempt_base, x.first_started, x.started, x.deadline,
           x.not_before, x.finished, x.code, x.retryable, x.text);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_state& x) {
  return f(caf::meta::type_name("ferry.run_state"), x.id, x.def, x.status, x.seq, x.created,
           x.updated, x.not_before, x.seed, x.passed_point_of_no_return, x.cancel_requested,
           x.retries_used, x.reason, x.tasks);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, checkpoint_summary& x) {
  return f(caf::meta::type_name("ferry.run_summary"), x.id, x.status, x.definition_name,
           x.definition_digest, x.last_seq, x.created, x.updated, x.reason);
}

/// A run as list() shows it.
using run_summary = checkpoint_summary;

// -- interfaces -----------------------------------------------------------------------------

/// Receives a run's events once they are durable. Owned by whoever watches (the embedding
/// API's watch(), ferryd's Watch stream).
using watcher_actor = caf::typed_actor<
  /// Durable events of a run, in order, without gaps.
  caf::reacts_to<events_atom, run_id, std::vector<event>>,
  /// The run reached a resting state (or the watch ended): its final state.
  caf::reacts_to<done_atom, run_id, run_state>>;

/// One actor per run: drives its DAG, timers, retries and compensation.
using migration_actor = caf::typed_actor<
  /// From the journal: the transition with this ticket (its first sequence number), which
  /// took its commit-window slot at this steady-clock time (ns), is durable (or failed to be).
  caf::reacts_to<committed_atom, uint64_t, int64_t, caf::error>,
  /// From an executor: the result of (task index, attempt, compensation?).
  caf::reacts_to<result_atom, uint32_t, uint32_t, bool, task_result>,
  /// From the timer service: the run's next wakeup time came (timer generation).
  caf::reacts_to<wakeup_atom, uint64_t>,
  /// An operator's action; answered once its events are durable.
  caf::replies_to<control_atom, control_request>::with<control_ack>,
  /// The run's durable state.
  caf::replies_to<get_atom>::with<run_state>,
  /// Sends the watcher every durable event from this sequence number on, then live events,
  /// then a done message when the run comes to rest. Answers true once subscribed.
  caf::replies_to<watch_atom, uint64_t, watcher_actor>::with<bool>,
  /// To itself, first thing after spawn: starts the run (hands out again the attempts a
  /// recovered run had in flight, then decides and commits). The spawner only builds the
  /// actor; the work happens on whichever scheduler thread runs the run.
  caf::reacts_to<recover_atom>,
  /// Stops the run's actor without writing anything (engine shutdown).
  caf::reacts_to<stop_atom>>;

/// The only writer of the journal: group commit. Runs hand their transitions to the commit
/// window (actors/commit_window.hpp); every transition made ready while a write is in flight
/// goes into the next batch; each is acknowledged (committed_atom to its run) only once
/// durable.
using journal_actor = caf::typed_actor<
  /// From the commit window's users and itself: write the transitions that are ready.
  caf::reacts_to<flush_atom>,
  caf::replies_to<stats_atom>::with<journal_stats>,
  /// Keeps a migration template (name, encoding; an empty encoding removes it), durable when
  /// answered, after every transition received before it.
  caf::replies_to<template_atom, std::string, std::string>::with<bool>,
  /// Keeps a batch (name, encoded batch_record; empty removes it), durable when answered.
  caf::replies_to<batch_atom, std::string, std::string>::with<bool>,
  /// Retention: appends the runs' events to the file (an export), removes the runs and
  /// compacts; answers with the events archived.
  caf::replies_to<archive_atom, std::vector<run_id>, std::string>::with<uint64_t>,
  /// Writes what is pending, then quits.
  caf::replies_to<stop_atom>::with<journal_stats>>;

/// The front door: starts, finds, lists and steers runs; recovers them on start.
using engine_actor = caf::typed_actor<
  /// Starts a run; answers with its id once its first transition is durable.
  caf::replies_to<submit_atom, submit_request>::with<run_id>,
  /// The same, the answer going to the submit_reply (many submissions in flight at once).
  caf::reacts_to<submit_atom, submit_request, submit_reply>,
  caf::replies_to<get_atom, run_id>::with<run_state>,
  caf::replies_to<list_atom, list_filter>::with<std::vector<run_summary>>,
  caf::replies_to<control_atom, run_id, control_request>::with<control_ack>,
  /// Sends the watcher the run's events from a sequence number on, then a done message.
  caf::reacts_to<watch_atom, run_id, uint64_t, watcher_actor>,
  /// From migration actors: a run's status changed (after the change is durable).
  caf::reacts_to<status_atom, run_summary>,
  /// Sends this actor `(status_atom, run_summary)` whenever a run comes to rest (the
  /// scheduler, which follows its batches' runs).
  caf::reacts_to<observe_atom, caf::actor>,
  /// Retention: archives (journal: archive_atom) the runs at rest (SUCCEEDED, ROLLED_BACK,
  /// ABORTED) last updated at or before the time into the file and forgets them; answers with how
  /// many.
  caf::replies_to<archive_atom, time_ms, std::string>::with<uint64_t>,
  /// From engine::open, which reads the journal (and spawns the runs it resumes) on its own
  /// thread, leaving the scheduler to the runs: registers these runs. Answers once done.
  caf::replies_to<recover_atom, std::vector<recovered_run>>::with<bool>,
  /// Stops every run actor and the journal; answers once the journal is closed.
  caf::replies_to<stop_atom>::with<journal_stats>>;

/// Runs batches (templates/batch.hpp): admits their items in order, within the limits and
/// the maintenance windows, as runs of the engine; resumes them after a restart.
using scheduler_actor = caf::typed_actor<
  /// Starts a batch (true: a new one, kept in the journal first; the same batch again
  /// answers with it, another of the same name is already_exists) or, on open, resumes one
  /// the journal keeps (false). Answers once the runs it started at once are durable.
  caf::replies_to<submit_atom, batch_record, bool>::with<batch_status>,
  caf::replies_to<get_atom, std::string>::with<batch_status>,
  /// Every batch, without their items.
  caf::replies_to<list_atom>::with<std::vector<batch_status>>,
  /// Starts no more items and cancels the runs in flight (they roll back).
  caf::replies_to<cancel_atom, std::string>::with<batch_status>,
  /// Answers once the batch is finished.
  caf::replies_to<done_atom, std::string>::with<batch_status>,
  /// From the engine actor: a run came to rest.
  caf::reacts_to<status_atom, run_summary>,
  /// From a submit_reply: the run of the batch's item started (durable), or the error it did
  /// not start with.
  caf::reacts_to<submitted_atom, std::string, run_id, caf::error>>;

// -- the fleet ------------------------------------------------------------------------------

/// One per host: owns its hypervisor driver; the authority on the host's capacity (the VMs it
/// runs and the reservations held on it) and on its migration slots. Reports its free
/// capacity to its zone after every change.
using host_actor = caf::typed_actor<
  /// Holds capacity for a migration, idempotent by the reservation's key. resource_exhausted
  /// when it does not fit. Answers the journal records of the change.
  caf::replies_to<reserve_atom, fleet::reservation>::with<state_changes>,
  /// Gives a reservation back (success when there is none with that key).
  caf::replies_to<release_atom, std::string>::with<state_changes>,
  /// A VM now runs here (its reservation, if any, becomes the VM's own use).
  caf::replies_to<adopt_atom, vm_request>::with<state_changes>,
  /// A VM no longer runs here.
  caf::reacts_to<evict_atom, std::string>,
  /// Takes an inbound or outbound migration slot for a key (a run) from a peer host, waiting
  /// in a queue that is fair across peer hosts while the limit is reached; a waiter still
  /// queued at its deadline (wall ms, 0: none) is answered deadline_exceeded. Idempotent by
  /// key.
  caf::replies_to<acquire_atom, slot_dir, std::string, std::string, time_ms>::with<bool>,
  /// Gives a slot back, or withdraws a waiting request (answered cancelled); the next waiter
  /// gets the slot.
  caf::reacts_to<unslot_atom, slot_dir, std::string>,
  /// To itself: the earliest deadline of its slot waiters (wall ms) may have come.
  caf::reacts_to<timeout_atom, uint64_t>,
  caf::replies_to<status_atom>::with<host_status>,
  /// The host's driver (thread-safe, asynchronous), for tasks to call.
  caf::replies_to<driver_atom>::with<hv::driver_ptr>>;

/// One per zone: aggregates its hosts' capacity; placement, offers for recommendations.
using zone_actor = caf::typed_actor<
  /// Chooses a host for a type without reserving.
  caf::replies_to<place_atom, place_request>::with<place_reply>,
  /// Chooses a host and reserves on it (trying the next host when one refuses); idempotent
  /// by key.
  caf::replies_to<reserve_atom, reserve_request>::with<reserve_reply>,
  /// Releases (host, key): wherever the zone has the key reserved; else on the host named
  /// (a release said again after the zone forgot the key); else, when the host is empty,
  /// where the zone last released the key.
  caf::replies_to<release_atom, std::string, std::string>::with<state_changes>,
  /// From a host actor: its free capacity now (host index, free).
  caf::reacts_to<capacity_atom, uint32_t, fleet::capacity>,
  /// What this zone can do for a type (recommendations, admission).
  caf::replies_to<offer_atom, offer_request>::with<fleet::zone_offer>,
  caf::replies_to<status_atom>::with<zone_status>>;

/// One per storage partition: the lease state machine, kept by its master and replicas.
using partition_actor = caf::typed_actor<
  /// A lease change, acknowledged once replicated; a flip completes once the source's
  /// pending I/O drained, or fails at the flip deadline with nothing changed.
  caf::replies_to<lease_atom, lease_request>::with<lease_reply>,
  /// I/O of a host under an epoch: begin (true) or end (false). Answers whether allowed.
  caf::replies_to<io_atom, std::string, uint64_t, bool>::with<bool>,
  /// Injects a storage-server failure.
  caf::replies_to<fault_atom, storage_fault>::with<bool>,
  /// The acknowledged leases.
  caf::replies_to<get_atom>::with<lease_reply>,
  /// Internal: the flip with this number reached its deadline.
  caf::reacts_to<timeout_atom, uint64_t>>;

/// The fleet's network: which host each address is routed to, and forwarding rules.
using network_actor = caf::typed_actor<
  caf::replies_to<route_atom, std::string>::with<fleet::address_route>,
  /// Forwards packets for an address from its current host to another host.
  caf::replies_to<forward_atom, std::string, std::string>::with<state_changes>,
  /// Moves an address to a host (ends any forwarding).
  caf::replies_to<move_atom, std::string, std::string>::with<state_changes>,
  caf::replies_to<list_atom>::with<std::vector<fleet::address_route>>>;

/// The fleet's directory: where each VM runs; recommendations across zones.
using fleet_actor = caf::typed_actor<
  caf::replies_to<locate_atom, std::string>::with<fleet::vm_location>,
  /// Reserves for a VM through the zone with this index, refused (failed_precondition) while
  /// the VM holds a reservation under another key: one move of a VM at a time.
  caf::replies_to<reserve_atom, reserve_request, uint32_t>::with<reserve_reply>,
  /// Releases a reservation (zone index, host, key) in the zone with this index; the host
  /// (empty: unknown) is the one the reservation was made on.
  caf::replies_to<release_atom, uint32_t, std::string, std::string>::with<state_changes>,
  /// A VM now runs on another host: adopts it there, evicts it from the old one. Its
  /// reservation, now the VM's own use, no longer holds the VM.
  caf::replies_to<adopt_atom, vm_request>::with<state_changes>,
  /// Zones ranked for a VM, each admitted or denied with its reason; with a zone named, that
  /// zone's admission decision alone.
  caf::replies_to<recommend_atom, recommend_request>::with<std::vector<fleet::decision>>,
  caf::replies_to<list_atom>::with<std::vector<fleet::vm_location>>>;

} // namespace ferry
