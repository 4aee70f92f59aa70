// Spawning the fleet's actors. Each actor receives the shared fleet_handles, which the fleet
// runtime fills with every handle before it hands any out, and its own part of the durable
// state read back from the journal. Light on purpose: the behaviors live in host.cpp,
// zone.cpp, storage_partition.cpp, network.cpp and fleet_directory.cpp.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "actors/actors.hpp"
#include "actors/fleet_options.hpp"
#include "actors/send_gate.hpp"
#include "fleet/model.hpp"
#include "fleet/state_codec.hpp"

namespace ferry {

/// Every fleet actor, by model index. Filled once, read-only afterwards.
struct fleet_handles {
  fleet::model_ptr model;
  std::vector<host_actor> hosts;
  std::vector<zone_actor> zones;
  std::vector<partition_actor> partitions;
  network_actor network;
  fleet_actor directory;
  /// Each host's driver (the host actor owns it; tasks call it directly: drivers are
  /// thread-safe and asynchronous).
  std::vector<hv::driver_ptr> drivers;
  /// The actor the fleet task kinds send their single requests from (see spawn_caller).
  caf::actor caller;
  /// What a driver's answer passes through before it sends into the actor system
  /// (send_gate.hpp): shut when the engine closes.
  send_gate_ptr gate;
};

/// Run in the caller actor: sends requests from it and handles their answers there.
struct caller_job {
  std::function<void(caf::event_based_actor*)> run;
};

/// A long-lived actor that runs the caller_jobs it is sent. One actor for every task's
/// request spares a spawn, and the clock's bookkeeping of a dying actor, per task.
caf::actor spawn_caller(caf::actor_system& sys);

} // namespace ferry

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::caller_job)

namespace ferry {

using fleet_handles_ptr = std::shared_ptr<const fleet_handles>;

/// `vms`: the VMs running on the host (name -> capacity) when it starts.
host_actor spawn_host(caf::actor_system& sys, fleet_handles_ptr handles, fleet::index host,
                      hv::driver_ptr driver,
                      std::vector<std::pair<std::string, fleet::capacity>> vms,
                      std::vector<fleet::reservation> reservations);

/// `used`: capacity taken on each host of the model (by host index); `reserved`: the
/// reservations held on the zone's hosts (key -> host index).
zone_actor spawn_zone(caf::actor_system& sys, fleet_handles_ptr handles, fleet::index zone,
                      const std::vector<fleet::capacity>& used,
                      std::map<std::string, fleet::index> reserved);

/// `restored`: the acknowledged table and master from the journal (nullptr: a fresh one).
partition_actor spawn_partition(caf::actor_system& sys, fleet_handles_ptr handles,
                                fleet::index partition,
                                const std::pair<fleet::lease_table, std::string>* restored,
                                partition_options opts);

network_actor spawn_network(caf::actor_system& sys,
                            std::unordered_map<std::string, fleet::address_route> routes);

/// `held`: the reservations held in the journal, whose VMs are being moved (VM -> key).
fleet_actor spawn_directory(caf::actor_system& sys, fleet_handles_ptr handles,
                            std::unordered_map<std::string, fleet::vm_location> vms,
                            std::unordered_map<std::string, std::string> held);

} // namespace ferry
