#include "fleet/state_codec.hpp"

#include "common/errc.hpp"
#include "ferry/v1/fleet.pb.h"

namespace ferry::fleet {

namespace {

std::string bytes(const google::protobuf::Message& m) {
  std::string out;
  m.SerializeToString(&out);
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

} // namespace

state_change encode_lease(const std::string& partition, const lease_table& t,
                          const std::string& master) {
  v1::LeaseTable x;
  x.set_partition(partition);
  x.set_epoch(t.epoch);
  x.set_version(t.version);
  x.set_master(master);
  for (auto& l : t.leases) {
    auto* y = x.add_leases();
    y->set_host(l.host);
    y->set_state(static_cast<v1::LeaseState>(l.state));
    y->set_epoch(l.epoch);
  }
  return {"lease/" + partition, bytes(x)};
}

state_change encode_reservation(const std::string& host, const reservation& r) {
  v1::Reservation x;
  x.set_host(host);
  x.set_key(r.key);
  x.set_vm(r.vm);
  x.mutable_capacity()->set_vcpus(r.need.vcpus);
  x.mutable_capacity()->set_memory_mib(r.need.memory_mib);
  x.mutable_capacity()->set_slots(r.need.slots);
  return {"resv/" + host + "/" + r.key, bytes(x)};
}

state_change erase_reservation(const std::string& host, const std::string& key) {
  return {"resv/" + host + "/" + key, {}};
}

state_change encode_location(const vm_location& v) {
  v1::VmPlacement x;
  x.set_vm(v.vm);
  x.set_host(v.host);
  x.set_type(v.type);
  return {"vm/" + v.vm, bytes(x)};
}

state_change encode_route(const address_route& r) {
  v1::AddressRoute x;
  x.set_address(r.address);
  x.set_host(r.host);
  x.set_forward_to(r.forward_to);
  return {"addr/" + r.address, bytes(x)};
}

std::vector<std::string> lease_problems(const durable_state& s) {
  std::vector<std::string> out;
  for (auto& [partition, entry] : s.leases) {
    auto& table = entry.first;
    auto n = table.count(lease_state::primary);
    if (n <= 1)
      continue;
    std::string hosts;
    for (auto& l : table.leases)
      if (l.state == lease_state::primary)
        hosts += (hosts.empty() ? "" : ", ") + l.host;
    out.push_back("partition " + partition + ": " + std::to_string(n) + " PRIMARY leases ("
                  + hosts + ")");
  }
  return out;
}

state_change encode_volume_zone(const std::string& volume, const std::string& zone) {
  v1::VolumePlacement x;
  x.set_volume(volume);
  x.set_zone(zone);
  return {"vol/" + volume, bytes(x)};
}

caf::error decode_record(std::string_view key, std::string_view value, durable_state& s) {
  auto bad = [&](const char* what) {
    return make_error(errc::data_loss, "fleet record \"" + std::string{key} + "\": not a valid "
                                         + what);
  };
  auto parse = [&](google::protobuf::Message& m) {
    return m.ParseFromArray(value.data(), static_cast<int>(value.size()));
  };
  ++s.records;
  if (starts_with(key, "lease/")) {
    v1::LeaseTable x;
    if (!parse(x))
      return bad("LeaseTable");
    lease_table t;
    t.epoch = x.epoch();
    t.version = x.version();
    for (auto& l : x.leases())
      t.leases.push_back({l.host(), static_cast<lease_state>(l.state()), l.epoch()});
    s.leases[x.partition()] = {std::move(t), x.master()};
  } else if (starts_with(key, "resv/")) {
    v1::Reservation x;
    if (!parse(x))
      return bad("Reservation");
    s.reservations[x.host()].push_back(
      {x.key(), x.vm(), {x.capacity().vcpus(), x.capacity().memory_mib(), x.capacity().slots()}});
  } else if (starts_with(key, "vm/")) {
    v1::VmPlacement x;
    if (!parse(x))
      return bad("VmPlacement");
    s.vms[x.vm()] = {x.vm(), x.host(), x.type()};
  } else if (starts_with(key, "addr/")) {
    v1::AddressRoute x;
    if (!parse(x))
      return bad("AddressRoute");
    s.routes[x.address()] = {x.address(), x.host(), x.forward_to()};
  } else if (starts_with(key, "vol/")) {
    v1::VolumePlacement x;
    if (!parse(x))
      return bad("VolumePlacement");
    s.volume_zones[x.volume()] = x.zone();
  } else {
    return make_error(errc::data_loss, "fleet record \"" + std::string{key}
                                         + "\": unknown kind of record");
  }
  return caf::none;
}

} // namespace ferry::fleet
