// The migration task kinds: the steps the built-in migration templates are made of, beyond the
// single hypervisor calls of vm_kinds.hpp and the fleet changes of fleet_kinds.hpp. Each is
// idempotent by the world's state and the attempt's key, and names its compensation in the
// templates (templates/builtin/).
//   vm.migrate        vm, from, to, [mode], [copy_storage], [max_downtime_ms],
//                     [bandwidth_mib_s], [paused_handover], [predict_failure],
//                     [time_budget_s]
//                     Takes an outbound slot on `from` and an inbound one on `to` (the hosts'
//                     migration limits, waiting in their fair queues), then migrates. With
//                     predict_failure, it watches the progress of every pass and cancels the
//                     copy as soon as it will not converge (the guest dirties memory about as
//                     fast as it is sent) or will not finish within the time budget: the VM
//                     keeps running on the source. The copy's progress goes to
//                     engine_options::on_progress. Output: duration, downtime, iterations,
//                     bytes, mode.
//   vm.handback       vm, from, to   a paused handover undone: any migration in flight is
//                     aborted, the VM resumes (or starts) on `from`, then is destroyed on `to`.
//                     Refuses to destroy anything when the VM is not on `from`.
//   vm.stop           vm, host       stops the VM, keeping its definition (a cold migration).
//   vm.resize         vm, host, type, what (vcpus|memory)   sets the VM's vCPUs or memory to
//                     those of a type. Live only when the VM's agent reported it can take the
//                     change (a VM without an authorized agent gets no live change).
//   agent.detect      vm, host       asks the migration agent; output: its capabilities.
//   agent.augment     vm, host, capability   only when the administrator authorized it.
//   agent.reconfigure vm, host, action       agent.action vm, host, command (custom, JSON)
//   storage.sync      vm, from, to, disk     copies a local disk from `from` (now secondary)
//                     to `to` (primary) after the switch-over; its progress goes to
//                     engine_options::on_progress (as volume.move's).
//   volume.move       volume, zone, from, to, [compress auto|always|never]   copies a volume's
//                     data to another zone (over the compressed path when the link is
//                     constrained) and records where it lives; volume.return puts it back.
//   fleet.admit       vm, [zone], [type], [preference spread|colocate]   admission to a zone
//                     (named, or the best other zone): output the zone, or a failure naming the
//                     denial (no_capacity, no_link, not_converging, too_long).
//   notify            event, [message]       tells the embedding application (engine_options::
//                     notify), or logs.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/executor.hpp"
#include "actors/fleet_actors.hpp"

namespace ferry {

/// The migration kinds' names and parameters.
std::vector<kind_spec> migration_kind_specs();

struct engine_metrics;

/// Adds the migration kinds to `reg`. `notify` may be empty (notifications are logged);
/// `progress` (may be empty) hears vm.migrate's copy progress; `metrics` (may be null) gets
/// each completed migration's duration and downtime.
void add_migration_kinds(executor_registry& reg, caf::actor_system& sys,
                         fleet_handles_ptr fleet, notify_fn notify, progress_fn progress = {},
                         engine_metrics* metrics = nullptr);

/// `notify` alone (engines without a fleet have it too).
std::shared_ptr<task_executor> make_notify_kind(notify_fn notify);

} // namespace ferry
