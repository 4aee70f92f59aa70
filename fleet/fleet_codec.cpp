#include "fleet/fleet_codec.hpp"

#include <fstream>
#include <set>


#include "common/errc.hpp"
#include "common/file.hpp"
#include "common/ids.hpp"
#include "ferry/v1/fleet.pb.h"
#include "fleet/validate.hpp"
#include "proto/text_io.hpp"

namespace ferry::fleet {

namespace pb = google::protobuf;

namespace {

// Copies the proto into a model, resolving names to indexes. Every unresolved or invalid
// reference is reported through `p`.
model build(const v1::Fleet& f, problems& p) {
  model m;
  auto quoted = [](const std::string& s) { return "\"" + s + "\""; };
  auto check_name = [&](const std::string& what, const std::string& name,
                        model::name_index& idx, index i) {
    if (!valid_id(name)) {
      p.add(what + ": name " + quoted(name)
            + " must be 1 to 64 characters of [A-Za-z0-9_.-]");
      return;
    }
    if (!idx.emplace(name, i).second)
      p.add(what + ": duplicate name " + quoted(name));
  };
  auto label = [&](const char* kind, size_t i, const std::string& name) {
    return std::string{kind} + "[" + std::to_string(i) + "] " + quoted(name);
  };

  m.zones.reserve(f.zones_size());
  for (int i = 0; i < f.zones_size(); ++i) {
    auto& z = f.zones(i);
    zone x;
    x.name = z.name();
    for (auto& [k, v] : z.labels())
      x.labels.emplace_back(k, v);
    m.zones.push_back(std::move(x));
    check_name(label("zones", i, z.name()), z.name(), m.zone_by_name, i);
  }

  m.types.reserve(f.vm_types_size());
  for (int i = 0; i < f.vm_types_size(); ++i) {
    auto& t = f.vm_types(i);
    auto what = label("vm_types", i, t.name());
    vm_type x;
    x.name = t.name();
    x.vcpus = t.vcpus();
    x.memory_mib = t.memory_mib();
    x.features.assign(t.features().begin(), t.features().end());
    x.generations.assign(t.generations().begin(), t.generations().end());
    if (x.vcpus == 0)
      p.add(what + ": vcpus must be at least 1");
    if (x.memory_mib == 0)
      p.add(what + ": memory_mib must be at least 1");
    m.types.push_back(std::move(x));
    check_name(what, t.name(), m.type_by_name, i);
  }

  m.hosts.reserve(f.hosts_size());
  for (int i = 0; i < f.hosts_size(); ++i) {
    auto& h = f.hosts(i);
    auto what = label("hosts", i, h.name());
    host x;
    x.name = h.name();
    x.zone = m.find_zone(h.zone());
    if (x.zone == npos)
      p.add(what + ": zone " + quoted(h.zone()) + " does not exist");
    x.driver = h.driver();
    if (auto err = check_driver_uri(x.driver); !err.empty())
      p.add(what + ": driver " + quoted(x.driver) + ": " + err);
    x.total = {h.capacity().vcpus(), h.capacity().memory_mib(), h.capacity().slots()};
    if (x.total.vcpus == 0 || x.total.memory_mib == 0 || x.total.slots == 0)
      p.add(what + ": capacity must give vcpus, memory_mib and slots");
    x.migrations_in = h.has_migrations_in() ? h.migrations_in() : 2;
    x.migrations_out = h.has_migrations_out() ? h.migrations_out() : 2;
    if (x.migrations_in == 0 || x.migrations_out == 0)
      p.add(what + ": migrations_in and migrations_out must be at least 1");
    x.tags.assign(h.tags().begin(), h.tags().end());
    x.generation = h.generation();
    x.nic_mib_s = h.has_nic_mib_s() ? h.nic_mib_s() : 1250;
    if (x.nic_mib_s == 0)
      p.add(what + ": nic_mib_s must be at least 1");
    x.migrate_uri = h.migrate_uri();
    x.peer_uri = h.peer_uri();
    if (!x.peer_uri.empty()) {
      if (x.peer_uri.rfind("sim://", 0) == 0 || x.driver.rfind("sim://", 0) == 0)
        p.add(what + ": peer_uri: only libvirt hosts have one");
      else if (auto err = check_driver_uri(x.peer_uri); !err.empty())
        p.add(what + ": peer_uri: " + err);
    }
    if (x.zone != npos)
      m.zones[x.zone].hosts.push_back(i);
    m.hosts.push_back(std::move(x));
    check_name(what, h.name(), m.host_by_name, i);
  }

  std::set<std::pair<index, index>> linked;
  for (int i = 0; i < f.links_size(); ++i) {
    auto& l = f.links(i);
    auto what = "links[" + std::to_string(i) + "] " + quoted(l.a() + "-" + l.b());
    link x;
    x.a = m.find_zone(l.a());
    x.b = m.find_zone(l.b());
    x.bandwidth_mib_s = l.bandwidth_mib_s();
    x.compressed_mib_s = l.compressed_mib_s();
    if (x.a == npos)
      p.add(what + ": zone a " + quoted(l.a()) + " does not exist");
    if (x.b == npos)
      p.add(what + ": zone b " + quoted(l.b()) + " does not exist");
    if (x.a != npos && x.a == x.b)
      p.add(what + ": a link joins two different zones");
    if (x.bandwidth_mib_s == 0)
      p.add(what + ": bandwidth_mib_s must be at least 1");
    if (x.a != npos && x.b != npos && x.a != x.b
        && !linked.emplace(std::min(x.a, x.b), std::max(x.a, x.b)).second)
      p.add(what + ": the zones are linked twice");
    m.links.push_back(x);
  }

  m.partitions.reserve(f.partitions_size());
  for (int i = 0; i < f.partitions_size(); ++i) {
    auto& s = f.partitions(i);
    auto what = label("partitions", i, s.name());
    partition x;
    x.name = s.name();
    x.zone = m.find_zone(s.zone());
    if (x.zone == npos)
      p.add(what + ": zone " + quoted(s.zone()) + " does not exist");
    x.master = s.master();
    if (x.master.empty())
      p.add(what + ": master is required");
    std::set<std::string> seen{x.master};
    for (auto& r : s.replicas()) {
      if (r.empty())
        p.add(what + ": a replica has an empty name");
      else if (!seen.insert(r).second)
        p.add(what + ": replica " + quoted(r) + " is listed twice or is the master");
      x.replicas.push_back(r);
    }
    x.size_gib = s.size_gib();
    if (x.zone != npos)
      m.zones[x.zone].partitions.push_back(i);
    m.partitions.push_back(std::move(x));
    check_name(what, s.name(), m.partition_by_name, i);
  }

  m.volumes.reserve(f.volumes_size());
  for (int i = 0; i < f.volumes_size(); ++i) {
    auto& v = f.volumes(i);
    auto what = label("volumes", i, v.name());
    volume x;
    x.name = v.name();
    x.zone = m.find_zone(v.zone());
    if (x.zone == npos)
      p.add(what + ": zone " + quoted(v.zone()) + " does not exist");
    if (v.partitions().empty())
      p.add(what + ": partitions must name at least one partition");
    for (auto& name : v.partitions()) {
      auto pi = m.find_partition(name);
      if (pi == npos) {
        p.add(what + ": partition " + quoted(name) + " does not exist");
        continue;
      }
      auto& part = m.partitions[pi];
      if (part.volume != npos)
        p.add(what + ": partition " + quoted(name) + " already belongs to volume "
              + quoted(m.volumes[part.volume].name));
      else if (x.zone != npos && part.zone != npos && part.zone != x.zone)
        p.add(what + ": partition " + quoted(name) + " is in zone "
              + quoted(m.zones[part.zone].name) + ", not " + quoted(v.zone()));
      else
        part.volume = i;
      x.partitions.push_back(pi);
    }
    m.volumes.push_back(std::move(x));
    check_name(what, v.name(), m.volume_by_name, i);
  }

  std::set<std::string> addresses;
  m.vms.reserve(f.vms_size());
  for (int i = 0; i < f.vms_size(); ++i) {
    auto& v = f.vms(i);
    auto what = label("vms", i, v.name());
    vm x;
    x.name = v.name();
    x.type = m.find_type(v.type());
    if (x.type == npos)
      p.add(what + ": type " + quoted(v.type()) + " is not in vm_types");
    x.host = m.find_host(v.host());
    if (x.host == npos)
      p.add(what + ": host " + quoted(v.host()) + " does not exist");
    if (x.type != npos && x.host != npos && !m.types[x.type].runs_on(m.hosts[x.host].generation))
      p.add(what + ": host " + quoted(v.host()) + " (generation "
            + quoted(m.hosts[x.host].generation) + ") cannot run type " + quoted(v.type()));
    for (auto& name : v.volumes()) {
      auto vi = m.find_volume(name);
      if (vi == npos) {
        p.add(what + ": volume " + quoted(name) + " does not exist");
        continue;
      }
      auto& vol = m.volumes[vi];
      if (vol.vm != npos)
        p.add(what + ": volume " + quoted(name) + " is already attached to "
              + quoted(m.vms[vol.vm].name));
      else
        vol.vm = i;
      if (x.host != npos && vol.zone != npos && vol.zone != m.hosts[x.host].zone)
        p.add(what + ": volume " + quoted(name) + " is in zone " + quoted(m.zones[vol.zone].name)
              + ", the host in " + quoted(m.zones[m.hosts[x.host].zone].name));
      x.volumes.push_back(vi);
    }
    std::set<std::string> targets;
    for (auto& d : v.local_disks()) {
      if (d.target().empty())
        p.add(what + ": a local disk has no target");
      else if (!targets.insert(d.target()).second)
        p.add(what + ": local disk target " + quoted(d.target()) + " is used twice");
      x.local_disks.push_back({d.target(), d.size_gib()});
    }
    x.address = v.address();
    if (!x.address.empty() && !addresses.insert(x.address).second)
      p.add(what + ": address " + quoted(x.address) + " is used by another VM");
    x.agent = v.agent();
    x.agent_authorized = v.agent_authorized();
    if (x.agent_authorized && !x.agent)
      p.add(what + ": agent_authorized needs agent");
    x.dirty_mib_s = v.dirty_mib_s();
    if (x.dirty_mib_s < 0)
      p.add(what + ": dirty_mib_s must not be negative");
    x.group = v.group();
    auto& c = v.capabilities();
    x.capabilities = {c.cpu_hotplug(), c.cpu_unplug(), c.memory_hotplug(), c.memory_unplug(),
                      c.disk_hotplug(), c.nic_hotplug()};
    m.vms.push_back(std::move(x));
    check_name(what, v.name(), m.vm_by_name, i);
  }

  if (f.policy().has_max_migration_s())
    m.limits.max_migration_s = f.policy().max_migration_s();
  if (f.policy().has_max_downtime_ms())
    m.limits.max_downtime_ms = f.policy().max_downtime_ms();
  if (m.limits.max_migration_s == 0)
    p.add("policy: max_migration_s must be at least 1");
  if (m.limits.max_downtime_ms == 0)
    p.add("policy: max_downtime_ms must be at least 1");

  check_capacity(m, p);
  return m;
}

} // namespace

caf::expected<model_ptr> load_fleet(std::string_view source, fleet_format format) {
  v1::Fleet f;
  if (format == fleet_format::automatic) {
    auto i = source.find_first_not_of(" \t\r\n");
    format = i != std::string_view::npos && source[i] == '{' ? fleet_format::json
                                                               : fleet_format::text;
  }
  switch (format) {
    case fleet_format::binary:
      if (!f.ParseFromArray(source.data(), static_cast<int>(source.size())))
        return make_error(errc::invalid_argument, "fleet (binary): not a ferry.v1.Fleet");
      break;
    default: {
      auto json = format == fleet_format::json;
      if (auto err = parse_text_or_json(source, f, json); !err.empty())
        return make_error(errc::invalid_argument,
                          std::string{"fleet ("} + (json ? "JSON" : "text format") + "): " + err);
    }
  }
  problems p;
  auto m = std::make_shared<model>(build(f, p));
  if (!p.empty())
    return make_error(errc::invalid_argument, p.render("fleet"));
  return model_ptr{std::move(m)};
}

caf::expected<model_ptr> load_fleet_file(const std::string& path) {
  // Fleet files can be tens of MB: read_file reads a regular file into a string of its size.
  auto text = read_file(path);
  if (!text)
    return make_error(code_of(text.error()), "fleet file " + path + ": " + message_of(text.error()));
  auto ends_with = [&](std::string_view suffix) {
    return path.size() >= suffix.size()
           && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  auto format = ends_with(".json")                        ? fleet_format::json
                : ends_with(".pb") || ends_with(".binpb") ? fleet_format::binary
                                                          : fleet_format::text;
  auto m = load_fleet(*text, format);
  if (!m)
    return make_error(code_of(m.error()), path + ": " + message_of(m.error()));
  return m;
}

std::string render_fleet(const model& m, fleet_format format) {
  v1::Fleet f;
  for (auto& z : m.zones) {
    auto* x = f.add_zones();
    x->set_name(z.name);
    for (auto& [k, v] : z.labels)
      (*x->mutable_labels())[k] = v;
  }
  for (auto& h : m.hosts) {
    auto* x = f.add_hosts();
    x->set_name(h.name);
    x->set_zone(m.zones[h.zone].name);
    x->set_driver(h.driver);
    x->mutable_capacity()->set_vcpus(h.total.vcpus);
    x->mutable_capacity()->set_memory_mib(h.total.memory_mib);
    x->mutable_capacity()->set_slots(h.total.slots);
    x->set_migrations_in(h.migrations_in);
    x->set_migrations_out(h.migrations_out);
    for (auto& t : h.tags)
      x->add_tags(t);
    x->set_generation(h.generation);
    x->set_nic_mib_s(h.nic_mib_s);
    x->set_migrate_uri(h.migrate_uri);
    x->set_peer_uri(h.peer_uri);
  }
  for (auto& l : m.links) {
    auto* x = f.add_links();
    x->set_a(m.zones[l.a].name);
    x->set_b(m.zones[l.b].name);
    x->set_bandwidth_mib_s(l.bandwidth_mib_s);
    x->set_compressed_mib_s(l.compressed_mib_s);
  }
  for (auto& t : m.types) {
    auto* x = f.add_vm_types();
    x->set_name(t.name);
    x->set_vcpus(t.vcpus);
    x->set_memory_mib(t.memory_mib);
    for (auto& s : t.features)
      x->add_features(s);
    for (auto& s : t.generations)
      x->add_generations(s);
  }
  for (auto& s : m.partitions) {
    auto* x = f.add_partitions();
    x->set_name(s.name);
    x->set_zone(m.zones[s.zone].name);
    x->set_master(s.master);
    for (auto& r : s.replicas)
      x->add_replicas(r);
    x->set_size_gib(s.size_gib);
  }
  for (auto& v : m.volumes) {
    auto* x = f.add_volumes();
    x->set_name(v.name);
    x->set_zone(m.zones[v.zone].name);
    for (auto pi : v.partitions)
      x->add_partitions(m.partitions[pi].name);
  }
  for (auto& v : m.vms) {
    auto* x = f.add_vms();
    x->set_name(v.name);
    x->set_type(m.types[v.type].name);
    x->set_host(m.hosts[v.host].name);
    for (auto vi : v.volumes)
      x->add_volumes(m.volumes[vi].name);
    for (auto& d : v.local_disks) {
      auto* ld = x->add_local_disks();
      ld->set_target(d.target);
      ld->set_size_gib(d.size_gib);
    }
    x->set_address(v.address);
    x->set_agent(v.agent);
    x->set_agent_authorized(v.agent_authorized);
    x->set_dirty_mib_s(v.dirty_mib_s);
    x->set_group(v.group);
    auto* c = x->mutable_capabilities();
    c->set_cpu_hotplug(v.capabilities.cpu_hotplug);
    c->set_cpu_unplug(v.capabilities.cpu_unplug);
    c->set_memory_hotplug(v.capabilities.memory_hotplug);
    c->set_memory_unplug(v.capabilities.memory_unplug);
    c->set_disk_hotplug(v.capabilities.disk_hotplug);
    c->set_nic_hotplug(v.capabilities.nic_hotplug);
  }
  f.mutable_policy()->set_max_migration_s(m.limits.max_migration_s);
  f.mutable_policy()->set_max_downtime_ms(m.limits.max_downtime_ms);
  if (format == fleet_format::binary) {
    std::string out;
    f.SerializeToString(&out);
    return out;
  }
  return print_text_or_json(f, format == fleet_format::json);
}

} // namespace ferry::fleet
