// The VM task kinds: each drives one hypervisor call on a host of the fleet through that
// host's driver, under the attempt's deadline, and is idempotent by the world's state (the
// drivers check before they act: starting a running VM, destroying an absent one, migrating a
// VM that already runs on the destination are successes), so an attempt handed out again
// after a crash reconciles instead of acting twice. Migration templates build on them, and on
// the migration kinds (migration_kinds.hpp: vm.migrate and the rest).
//   vm.provision     vm, from, to           define the VM on `to` from its configuration on
//                                           `from` (success when `to` has it already)
//   vm.start|pause|resume|destroy  vm, host   (destroy refuses the host where the fleet's
//                                           directory has the VM: it removes only a copy)
//   vm.abort_migration vm, host
//   vm.set_vcpus     vm, host, vcpus        vm.set_memory  vm, host, memory_mib
//   vm.attach_disk   vm, host, target, source, [local]     vm.detach_disk  vm, host, target
//   vm.snapshot      vm, host, target, name
// execute() runs on a CAF thread and only starts the call; the driver answers on its own
// thread.
#pragma once

#include <vector>

#include "actors/executor.hpp"
#include "actors/fleet_actors.hpp"

namespace ferry {

/// The VM kinds' names and parameters.
std::vector<kind_spec> vm_kind_specs();

/// Adds the VM kinds to `reg`. The handles must outlive the executors.
void add_vm_kinds(executor_registry& reg, fleet_handles_ptr fleet);

} // namespace ferry
