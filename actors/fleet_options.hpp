// How the fleet's actors are started: the simulated world, how drivers are opened, partition
// timings. Plain options; light enough for the embedding API's header.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "fleet/model.hpp"
#include "hypervisor/call_pool.hpp"
#include "hypervisor/driver.hpp"

namespace ferry::hv {
class sim_world;
}

namespace ferry {

struct partition_options {
  /// How long a flip waits for the source's pending I/O to drain. Default: 5 s.
  std::chrono::milliseconds flip_deadline{5000};
};

struct fleet_options {
  /// The simulated world for sim:// hosts; empty: the runtime makes one running at
  /// `sim_speed`. Default: empty.
  std::shared_ptr<hv::sim_world> sim;
  /// Virtual seconds per real second of the world the runtime makes. Default: 100.
  double sim_speed = 100;
  /// The state file of the world the runtime makes (hv::sim_options::state_file): set it
  /// next to the journal so a restarted engine finds the simulated hosts as they were.
  /// Default: "" (the world starts from the fleet file each time).
  std::string sim_state_file;
  /// Opens the driver of a host; empty: sim:// hosts get a sim driver, the others a libvirt
  /// driver (which connects at once, under its connect timeout). Default: empty.
  std::function<caf::expected<hv::driver_ptr>(const fleet::host&)> open_driver;
  /// The call pool every libvirt host shares (threads grow while calls hang). Default:
  /// 4 threads, at most 64.
  hv::call_pool_options libvirt_pool{4, 64};
  partition_options partitions;
  /// Deadline of the synchronous helpers' requests. Default: 10 s.
  std::chrono::milliseconds call_timeout{10000};
};

} // namespace ferry
