// ferry::fleet::model — the fleet as loaded from its description: zones, hosts, links,
// storage partitions, volumes, the VM type catalog and the VMs, with name indexes. Entities
// refer to each other by index. Immutable once loaded (the live state — reservations,
// leases, placement — lives in the fleet's actors); shared read-only by every thread.
// Pure: no clock, I/O or actors.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ferry::fleet {

using index = uint32_t;
constexpr index npos = UINT32_MAX;

struct capacity {
  uint32_t vcpus = 0;
  uint64_t memory_mib = 0;
  uint32_t slots = 0;

  bool fits(const capacity& need) const noexcept {
    return vcpus >= need.vcpus && memory_mib >= need.memory_mib && slots >= need.slots;
  }
  capacity& operator+=(const capacity& x) noexcept {
    vcpus += x.vcpus;
    memory_mib += x.memory_mib;
    slots += x.slots;
    return *this;
  }
  capacity& operator-=(const capacity& x) noexcept {
    vcpus -= x.vcpus;
    memory_mib -= x.memory_mib;
    slots -= x.slots;
    return *this;
  }
  friend bool operator==(const capacity& a, const capacity& b) noexcept {
    return a.vcpus == b.vcpus && a.memory_mib == b.memory_mib && a.slots == b.slots;
  }
};

struct zone {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<index> hosts;
  std::vector<index> partitions;
};

struct host {
  std::string name;
  index zone = npos;
  std::string driver;
  capacity total;
  /// Concurrent migrations. Default: 2 and 2.
  uint32_t migrations_in = 2;
  uint32_t migrations_out = 2;
  std::vector<std::string> tags;
  std::string generation;
  /// Default: 1250 MiB/s.
  uint64_t nic_mib_s = 1250;
  std::string migrate_uri;
  /// How other hosts' hypervisors reach this one to migrate to it. Empty: `driver`.
  std::string peer_uri;
};

struct link {
  index a = npos;
  index b = npos;
  uint64_t bandwidth_mib_s = 0;
  uint64_t compressed_mib_s = 0;
};

struct vm_type {
  std::string name;
  uint32_t vcpus = 0;
  uint64_t memory_mib = 0;
  std::vector<std::string> features;
  /// Empty: every generation.
  std::vector<std::string> generations;

  capacity need() const noexcept { return {vcpus, memory_mib, 1}; }
  bool runs_on(const std::string& generation) const;
};

struct partition {
  std::string name;
  index zone = npos;
  std::string master;
  std::vector<std::string> replicas;
  uint64_t size_gib = 0;
  /// The volume it belongs to (npos: none).
  index volume = npos;
};

struct volume {
  std::string name;
  index zone = npos;
  std::vector<index> partitions;
  /// The VM it is attached to (npos: none).
  index vm = npos;
};

struct local_disk {
  std::string target;
  uint64_t size_gib = 0;
};

/// What a VM's agent reported it can change live.
struct agent_capabilities {
  bool cpu_hotplug = false;
  bool cpu_unplug = false;
  bool memory_hotplug = false;
  bool memory_unplug = false;
  bool disk_hotplug = false;
  bool nic_hotplug = false;
};

struct vm {
  std::string name;
  index type = npos;
  index host = npos;
  std::vector<index> volumes;
  std::vector<local_disk> local_disks;
  std::string address;
  bool agent = false;
  bool agent_authorized = false;
  double dirty_mib_s = 0;
  std::string group;
  agent_capabilities capabilities;
};

struct policy {
  /// Default: 600 s.
  uint32_t max_migration_s = 600;
  /// Default: 300 ms.
  uint32_t max_downtime_ms = 300;
};

struct model {
  std::vector<zone> zones;
  std::vector<host> hosts;
  std::vector<link> links;
  std::vector<vm_type> types;
  std::vector<partition> partitions;
  std::vector<volume> volumes;
  std::vector<vm> vms;
  policy limits;

  /// Indexes by name; npos when absent.
  index find_zone(std::string_view name) const { return find(zone_by_name, name); }
  index find_host(std::string_view name) const { return find(host_by_name, name); }
  index find_type(std::string_view name) const { return find(type_by_name, name); }
  index find_partition(std::string_view name) const { return find(partition_by_name, name); }
  index find_volume(std::string_view name) const { return find(volume_by_name, name); }
  index find_vm(std::string_view name) const { return find(vm_by_name, name); }

  /// The link between two zones; nullptr when there is none (same zone: nullptr too).
  const link* find_link(index a, index b) const;

  /// Capacity the VMs placed on each host use (by host index).
  std::vector<capacity> used_by_vms() const;

  using name_index = std::unordered_map<std::string, index>;
  name_index zone_by_name, host_by_name, type_by_name, partition_by_name, volume_by_name,
    vm_by_name;

private:
  static index find(const name_index& m, std::string_view name) {
    auto i = m.find(std::string{name});
    return i == m.end() ? npos : i->second;
  }
};

using model_ptr = std::shared_ptr<const model>;

} // namespace ferry::fleet
