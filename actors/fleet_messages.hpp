// The messages the fleet's actors (host, zone, storage_partition, network, fleet directory)
// exchange, with their inspect() functions. The interfaces themselves are in actors.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/meta/type_name.hpp>

#include "common/state_change.hpp"
#include "fleet/lease.hpp"
#include "fleet/placement.hpp"
#include "fleet/recommend.hpp"
#include "fleet/state_codec.hpp"
#include "hypervisor/driver.hpp"

// A driver is shared in memory by the host actor that owns it and the tasks that use it.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ferry::hv::driver_ptr)

namespace ferry {

/// Capacity and migration slots of one host, as its actor reports them.
struct host_status {
  std::string name;
  std::string zone;
  std::string driver;
  fleet::capacity total;
  fleet::capacity free;
  std::vector<std::string> vms;
  std::vector<fleet::reservation> reservations;
  uint32_t in_active = 0, out_active = 0, in_queued = 0, out_queued = 0;
  uint32_t in_limit = 0, out_limit = 0;
};

enum class slot_dir : uint8_t { in, out };

/// Asks a zone for a host and reserves capacity there, idempotent by key.
struct reserve_request {
  std::string key;
  std::string vm;
  std::string type;
  fleet::strategy strategy = fleet::strategy::spread;
  /// Hosts not to use (the VM's source).
  std::vector<std::string> exclude;
  /// When set: this host or none.
  std::string host;
  /// When set: where the VM must run now (the directory refuses a run rendered before
  /// another run moved the VM, whose source is stale).
  std::string from;
};

struct reserve_reply {
  std::string host;
  state_changes changes;
};

/// A placement decision without reserving.
struct place_request {
  std::string type;
  fleet::strategy strategy = fleet::strategy::spread;
  std::vector<std::string> exclude;
};

struct place_reply {
  /// Empty when nothing fits; then `reason` says why.
  std::string host;
  std::string reason;
};

/// What a zone is asked about for a recommendation.
struct offer_request {
  std::string type;
  std::string group;
  std::vector<std::string> exclude;
};

struct zone_status {
  std::string name;
  fleet::capacity total;
  fleet::capacity free;
  uint32_t hosts = 0;
};

/// A lease change on a storage partition.
struct lease_request {
  enum class op : uint8_t { connect_standby, connect_primary, flip, revoke, disconnect, retire };
  op action = op::connect_standby;
  /// The host the lease is for (flip: the current primary).
  std::string host;
  /// flip: the standby that becomes primary.
  std::string to;
};

/// A partition's acknowledged leases, and the journal records of the change.
struct lease_reply {
  std::string partition;
  std::string master;
  fleet::lease_table table;
  state_changes changes;
};

/// Storage-server failures to inject into a partition (tests, dry runs).
struct storage_fault {
  enum class kind : uint8_t { node_down, node_up, master_silent };
  kind what = kind::node_down;
  std::string node;
};

/// Where a VM runs and what the fleet holds about it.
struct vm_request {
  std::string vm;
  std::string host;
  std::string type;
  /// The reservation (on `host`) the VM now uses.
  std::string reservation;
};

/// A ranked recommendation request.
struct recommend_request {
  std::string vm;
  /// Empty: the VM's own type.
  std::string type;
  fleet::preference pref = fleet::preference::spread;
  /// When set: admission to this zone only (a request that names its target zone).
  std::string zone;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, host_status& x) {
  return f(caf::meta::type_name("ferry.host_status"), x.name, x.zone, x.driver, x.total, x.free,
           x.vms, x.reservations, x.in_active, x.out_active, x.in_queued, x.out_queued,
           x.in_limit, x.out_limit);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reserve_request& x) {
  return f(caf::meta::type_name("ferry.reserve_request"), x.key, x.vm, x.type, x.strategy,
           x.exclude, x.host, x.from);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reserve_reply& x) {
  return f(caf::meta::type_name("ferry.reserve_reply"), x.host, x.changes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, place_request& x) {
  return f(caf::meta::type_name("ferry.place_request"), x.type, x.strategy, x.exclude);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, place_reply& x) {
  return f(caf::meta::type_name("ferry.place_reply"), x.host, x.reason);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, offer_request& x) {
  return f(caf::meta::type_name("ferry.offer_request"), x.type, x.group, x.exclude);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, zone_status& x) {
  return f(caf::meta::type_name("ferry.zone_status"), x.name, x.total, x.free, x.hosts);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lease_request& x) {
  return f(caf::meta::type_name("ferry.lease_request"), x.action, x.host, x.to);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lease_reply& x) {
  return f(caf::meta::type_name("ferry.lease_reply"), x.partition, x.master, x.table,
           x.changes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, storage_fault& x) {
  return f(caf::meta::type_name("ferry.storage_fault"), x.what, x.node);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, vm_request& x) {
  return f(caf::meta::type_name("ferry.vm_request"), x.vm, x.host, x.type, x.reservation);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recommend_request& x) {
  return f(caf::meta::type_name("ferry.recommend_request"), x.vm, x.type, x.pref, x.zone);
}

namespace fleet {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, capacity& x) {
  return f(caf::meta::type_name("ferry.capacity"), x.vcpus, x.memory_mib, x.slots);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reservation& x) {
  return f(caf::meta::type_name("ferry.reservation"), x.key, x.vm, x.need);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lease& x) {
  return f(caf::meta::type_name("ferry.lease"), x.host, x.state, x.epoch);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lease_table& x) {
  return f(caf::meta::type_name("ferry.lease_table"), x.epoch, x.version, x.leases);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, vm_location& x) {
  return f(caf::meta::type_name("ferry.vm_location"), x.vm, x.host, x.type);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, address_route& x) {
  return f(caf::meta::type_name("ferry.address_route"), x.address, x.host, x.forward_to);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, zone_offer& x) {
  return f(caf::meta::type_name("ferry.zone_offer"), x.zone, x.hosts_fitting, x.host, x.free,
           x.total, x.group_vms, x.no_fit);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, decision& x) {
  return f(caf::meta::type_name("ferry.decision"), x.zone, x.admitted, x.why, x.reason,
           x.estimated_ms, x.downtime_ms, x.score, x.host);
}

} // namespace fleet

} // namespace ferry
