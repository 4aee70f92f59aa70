// The morph options of a VM: every other type of the catalog, each feasible or not, with how
// (live in place, reboot in place, live migration to another host, reboot migration) and the
// reason. Live changes are allowed only as far as the VM's agent reported it can take them
// (vCPUs and memory, added or removed) and only when the agent is authorized; otherwise
// fail-safe defaults apply: no live change, every change needs a reboot. A type the current
// host's generation cannot run, or that does not fit in the host's free capacity, needs a
// migration to a host that can take it. Pure; any thread.
#pragma once

#include <string>
#include <vector>

#include "fleet/model.hpp"

namespace ferry::fleet {

enum class morph_method : uint8_t { none, live_in_place, reboot_in_place, live_migration,
                                    reboot_migration };

const char* to_string(morph_method m) noexcept;

struct morph_option {
  index type = npos;
  bool feasible = false;
  morph_method method = morph_method::none;
  /// A host that can take it when a migration is needed.
  index host = npos;
  std::string reason;
};

/// The options of VM `vm`, in catalog order. `free`: free capacity per host (by index), as the
/// host actors report it; empty: the fleet file's (capacity minus the VMs placed there).
std::vector<morph_option> morph_options(const model& m, index vm,
                                        const std::vector<capacity>& free = {});

} // namespace ferry::fleet
