// ferry::fleet_runtime — the fleet as actors: one host actor per host (each with its driver:
// the simulator for sim:// hosts, libvirt for the others), one zone actor per zone, one
// storage_partition actor per partition, the network actor and the fleet directory; started
// from a fleet model and the fleet state the journal holds (leases, reservations, where VMs
// run, address routes). The engine starts one when it is given a fleet; the synchronous
// helpers serve the CLI, tests and tools (never call them from an actor).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/fleet_actors.hpp"
#include "actors/fleet_options.hpp"
#include "fleet/model.hpp"
#include "fleet/state_codec.hpp"
#include "hypervisor/driver.hpp"

namespace ferry {

class store;

/// A snapshot of the fleet for display.
struct fleet_snapshot {
  std::vector<zone_status> zones;
  std::vector<host_status> hosts;
  std::vector<lease_reply> leases;
  std::vector<fleet::vm_location> vms;
  std::vector<fleet::address_route> routes;
};

class fleet_runtime {
public:
  ~fleet_runtime();
  fleet_runtime(const fleet_runtime&) = delete;
  fleet_runtime& operator=(const fleet_runtime&) = delete;

  /// Spawns the fleet's actors in `sys` with the state `restored` from the journal. Errors:
  /// a driver that cannot be opened (named with its host), restored state that does not fit
  /// the model (a lease for an unknown partition...). `gate`: the engine's (send_gate.hpp);
  /// none: one of its own, never shut.
  static caf::expected<std::unique_ptr<fleet_runtime>>
  start(caf::actor_system& sys, fleet::model_ptr model, const fleet::durable_state& restored,
        fleet_options opts = {}, send_gate_ptr gate = nullptr);

  const fleet_handles& handles() const noexcept { return *handles_; }
  fleet_handles_ptr shared_handles() const noexcept { return handles_; }
  const fleet::model& model() const noexcept { return *handles_->model; }
  /// The simulated world (nullptr when no host is simulated).
  const std::shared_ptr<hv::sim_world>& sim() const noexcept { return sim_; }

  host_actor host(const std::string& name) const;
  zone_actor zone(const std::string& name) const;
  partition_actor partition(const std::string& name) const;

  // -- synchronous helpers (block the calling thread; not for actors) ------------------------

  caf::expected<fleet_snapshot> snapshot() const;
  caf::expected<std::vector<fleet::decision>> recommend(const recommend_request& req) const;
  /// Where a VM runs now and its type (the directory's answer).
  caf::expected<fleet::vm_location> locate(const std::string& vm) const;
  /// Where every VM runs now and its type (the directory's list): what a drain needs, without
  /// asking every host and partition as snapshot() does.
  caf::expected<std::vector<fleet::vm_location>> vms() const;
  caf::expected<lease_reply> lease(const std::string& partition, const lease_request& req) const;

private:
  fleet_runtime(caf::actor_system& sys, fleet_options opts);

  caf::actor_system& sys_;
  fleet_options opts_;
  std::shared_ptr<fleet_handles> handles_;
  std::shared_ptr<hv::sim_world> sim_;
};

/// Replays the journal's fleet history (the lease records each transition wrote, in write
/// order) and reports every point where a partition had more than one PRIMARY lease, each
/// naming the run and transition ("run r1, transition at event 12: partition p0: 2 PRIMARY
/// leases (h1, h2)"); at most `max_problems` (0: all). Errors: a record that cannot be read.
caf::expected<std::vector<std::string>> fleet_history_problems(const store& st,
                                                               size_t max_problems = 1);

/// Reads the fleet state the journal holds. Errors name the record that cannot be decoded.
caf::expected<fleet::durable_state> read_fleet_state(const store& st);

} // namespace ferry
