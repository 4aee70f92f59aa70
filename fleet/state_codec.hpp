// The fleet's durable state as journal records (column family `fleet`, messages in
// proto/ferry/v1/fleet.proto): encoding each change as a state_change, and decoding every
// record read back at recovery into one durable_state. Keys: "lease/PARTITION",
// "resv/HOST/KEY", "vm/VM", "addr/ADDRESS". Pure; any thread.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "common/state_change.hpp"
#include "fleet/lease.hpp"
#include "fleet/model.hpp"

namespace ferry::fleet {

struct reservation {
  std::string key;
  std::string vm;
  capacity need;
};

struct vm_location {
  std::string vm;
  std::string host;
  std::string type;
};

struct address_route {
  std::string address;
  std::string host;
  /// Packets arriving at `host` are forwarded here (empty: none).
  std::string forward_to;
};

/// Everything the journal holds about the fleet.
struct durable_state {
  /// partition -> (table, master)
  std::map<std::string, std::pair<lease_table, std::string>> leases;
  /// host -> its reservations
  std::map<std::string, std::vector<reservation>> reservations;
  std::map<std::string, vm_location> vms;
  std::map<std::string, address_route> routes;
  /// volume -> the zone its data was moved to.
  std::map<std::string, std::string> volume_zones;
  size_t records = 0;
};

state_change encode_lease(const std::string& partition, const lease_table& t,
                          const std::string& master);
state_change encode_reservation(const std::string& host, const reservation& r);
/// The change that erases a reservation.
state_change erase_reservation(const std::string& host, const std::string& key);
state_change encode_location(const vm_location& v);
state_change encode_route(const address_route& r);
/// A volume's data now lives in `zone`.
state_change encode_volume_zone(const std::string& volume, const std::string& zone);

/// What is wrong with the fleet's durable state on its own (for `ferry journal verify`): a
/// partition with more than one PRIMARY lease ("partition p0: 2 PRIMARY leases (h1, h2)").
std::vector<std::string> lease_problems(const durable_state& s);

/// Adds one record read back from the journal to `s`. Errors (data_loss) name the key.
caf::error decode_record(std::string_view key, std::string_view value, durable_state& s);

} // namespace ferry::fleet
