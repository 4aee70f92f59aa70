// The invariants a migration run must leave behind on the simulated fleet, whatever happened
// to it: the VM is defined on exactly one host and runs there; no partition has two PRIMARY
// leases and the VM's partitions are PRIMARY on its host, with no lease of any other host;
// no reservation of the run is left; its address is routed to its host without forwarding;
// the directory agrees. Shared by the template tests and the crash worker.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "actors/engine.hpp"
#include "actors/fleet_runtime.hpp"
#include "hypervisor/sim_world.hpp"

namespace ferry::testing {

struct invariant_report {
  /// Where the VM runs (empty when it does not run exactly once).
  std::string host;
  /// Every violation found.
  std::vector<std::string> violations;

  bool ok() const {
    return violations.empty();
  }
};

inline invariant_report check_invariants(engine& eng, hv::sim_world& world,
                                         const fleet::model& m, const std::string& vm,
                                         const run_id& run) {
  invariant_report out;
  auto bad = [&](std::string s) { out.violations.push_back(std::move(s)); };
  std::vector<std::pair<std::string, hv::domain_info>> at;
  for (auto& h : m.hosts) {
    auto d = world.domain(h.driver, vm);
    if (d.status != hv::domain_status::absent)
      at.emplace_back(h.name, d);
  }
  if (at.size() != 1 || at[0].second.status != hv::domain_status::running) {
    std::string places;
    for (auto& [h, d] : at)
      places += " " + h + ":" + hv::to_string(d.status);
    bad("VM " + vm + " does not run exactly once; defined on:" + (places.empty() ? " none" : places));
    return out;
  }
  out.host = at[0].first;
  auto snap = eng.fleet()->snapshot();
  if (!snap) {
    bad("fleet snapshot: " + describe(snap.error()));
    return out;
  }
  auto v = m.find_vm(vm);
  std::set<std::string> parts;
  for (auto vol : m.vms[v].volumes)
    for (auto p : m.volumes[vol].partitions)
      parts.insert(m.partitions[p].name);
  for (auto& l : snap->leases) {
    if (l.table.count(fleet::lease_state::primary) > 1)
      bad("partition " + l.partition + " has two PRIMARY leases");
    if (parts.count(l.partition) && l.table.primary() != out.host)
      bad("partition " + l.partition + " is PRIMARY on \"" + l.table.primary() + "\", not "
          + out.host);
    // No other host keeps a lease on them: a target's STANDBY is dropped when the run rolls
    // back, and the source's DEACTIVATED lease is retired once its copy is destroyed.
    if (parts.count(l.partition))
      for (auto& x : l.table.leases)
        if (x.host != out.host)
          bad("partition " + l.partition + ": host " + x.host + " still holds a "
              + fleet::to_string(x.state) + " lease");
  }
  for (auto& h : snap->hosts)
    for (auto& r : h.reservations)
      if (r.key.rfind(run + "/", 0) == 0)
        bad("host " + h.name + " still holds reservation " + r.key);
  for (auto& r : snap->routes)
    if (r.address == m.vms[v].address && (r.host != out.host || !r.forward_to.empty()))
      bad("address " + r.address + " is routed to " + r.host + " forwarding to \""
          + r.forward_to + "\", not " + out.host);
  for (auto& loc : snap->vms)
    if (loc.vm == vm && loc.host != out.host)
      bad("the directory has " + vm + " on " + loc.host + ", not " + out.host);
  return out;
}

} // namespace ferry::testing
