// The fleet's primitive task kinds: each asks one fleet actor for one change and reports the
// change's journal records with its result, so the change is durable in the same batch as the
// task's transition. Idempotent by the world's state (a repeated reservation key, a lease
// already in the asked state, a VM already adopted: success). Migration templates build on
// them.
//   fleet.reserve   params: vm, zone, [type], [host], [strategy spread|pack], [key]
//                   reserves capacity for the VM in the zone; output: the host. Through
//                   the directory, which refuses a VM that another run's reservation holds.
//   fleet.release   params: zone, key | vm    gives a reservation back.
//   vm.adopt        params: vm, host, [type], [reservation]   the VM now runs on the host.
//   lease.connect   params: partition, host, [role standby|primary]
//   lease.flip      params: partition, from, to   (waits for pending I/O to drain)
//   lease.revoke    params: partition, host
//   lease.disconnect params: partition, host
//   lease.retire    params: partition, host, vm   forgets a DEACTIVATED lease once the VM is
//                   no longer defined on the host, so it may come back there later.
//   net.forward     params: address, to    forward packets for the address to a host.
//   net.move        params: address, host  move the address (ends forwarding).
// Execution: execute() runs on a CAF thread and never blocks: each call is one request to a
// fleet actor, sent from the fleet's caller actor (fleet_actors.hpp) (lease.retire asks the
// host's driver first); the run keeps the attempt's deadline.
#pragma once

#include <vector>

#include <caf/fwd.hpp>

#include "actors/executor.hpp"
#include "actors/fleet_actors.hpp"

namespace ferry {

/// The fleet kinds' names and parameters (for validating definitions and templates without a
/// running fleet).
std::vector<kind_spec> fleet_kind_specs();

/// Adds the fleet kinds to `reg`. `sys` and the handles must outlive the executors.
void add_fleet_kinds(executor_registry& reg, caf::actor_system& sys, fleet_handles_ptr fleet);

} // namespace ferry
