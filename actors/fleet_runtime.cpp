// Starting the fleet's actors from a model and the journal's fleet state, and the synchronous
// helpers over them.
#include "actors/fleet_runtime.hpp"

#include "persistence/codec.hpp"

#include <algorithm>

#include <unordered_map>

#include <caf/all.hpp>

#include "common/errc.hpp"
#include "hypervisor/libvirt_driver.hpp"
#include "hypervisor/sim_driver.hpp"
#include "hypervisor/sim_world.hpp"
#include "persistence/store.hpp"

namespace ferry {

namespace {

constexpr double mib = 1024.0 * 1024.0;

bool is_sim(const std::string& uri) {
  return uri.rfind("sim://", 0) == 0;
}

template <class T, class Handle, class... Ts>
caf::expected<T> ask(caf::actor_system& sys, std::chrono::milliseconds timeout,
                     const Handle& h, Ts&&... xs) {
  caf::scoped_actor self{sys};
  caf::expected<T> out{caf::error{}};
  self->request(h, timeout, std::forward<Ts>(xs)...)
    .receive([&](T& x) { out = std::move(x); }, [&](caf::error& err) { out = std::move(err); });
  return out;
}

} // namespace

fleet_runtime::fleet_runtime(caf::actor_system& sys, fleet_options opts)
  : sys_(sys), opts_(std::move(opts)), handles_(std::make_shared<fleet_handles>()) {
}

fleet_runtime::~fleet_runtime() {
  auto quit = [](auto& h) {
    if (h)
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
  };
  for (auto& h : handles_->hosts)
    quit(h);
  for (auto& z : handles_->zones)
    quit(z);
  for (auto& p : handles_->partitions)
    quit(p);
  quit(handles_->network);
  quit(handles_->directory);
  quit(handles_->caller);
}

caf::expected<std::unique_ptr<fleet_runtime>>
fleet_runtime::start(caf::actor_system& sys, fleet::model_ptr model,
                     const fleet::durable_state& restored, fleet_options opts,
                     send_gate_ptr gate) {
  std::unique_ptr<fleet_runtime> rt{new fleet_runtime(sys, std::move(opts))};
  auto& h = *rt->handles_;
  h.model = model;
  h.gate = gate ? std::move(gate) : std::make_shared<send_gate>();
  auto& m = *model;

  // Restored state must fit the model.
  for (auto& [name, lt] : restored.leases)
    if (m.find_partition(name) == fleet::npos)
      return make_error(errc::failed_precondition, "journal: leases of partition \"" + name
                                                     + "\", which the fleet does not have");
  for (auto& [host, rs] : restored.reservations)
    if (m.find_host(host) == fleet::npos)
      return make_error(errc::failed_precondition, "journal: reservations on host \"" + host
                                                     + "\", which the fleet does not have");
  for (auto& [vm, loc] : restored.vms)
    if (m.find_vm(vm) == fleet::npos || m.find_host(loc.host) == fleet::npos
        || m.find_type(loc.type) == fleet::npos)
      return make_error(errc::failed_precondition, "journal: VM \"" + vm + "\" on host \""
                                                     + loc.host + "\" as type \"" + loc.type
                                                     + "\" does not fit the fleet");

  // Where each VM runs (the model, unless the journal says otherwise) and its address's
  // route, in one pass over the VMs by index.
  std::vector<fleet::index> vm_host(m.vms.size()), vm_type(m.vms.size());
  std::unordered_map<std::string, fleet::vm_location> vms;
  std::unordered_map<std::string, fleet::address_route> routes;
  vms.reserve(m.vms.size());
  routes.reserve(m.vms.size());
  std::vector<std::vector<std::pair<std::string, fleet::capacity>>> on_host(m.hosts.size());
  for (size_t i = 0; i < m.vms.size(); ++i) {
    auto& v = m.vms[i];
    auto hi = v.host;
    auto ti = v.type;
    if (auto r = restored.vms.find(v.name); r != restored.vms.end()) {
      hi = m.find_host(r->second.host);
      ti = m.find_type(r->second.type);
    }
    vm_host[i] = hi;
    vm_type[i] = ti;
    on_host[hi].emplace_back(v.name, m.types[ti].need());
    vms.emplace(v.name, fleet::vm_location{v.name, m.hosts[hi].name, m.types[ti].name});
    if (!v.address.empty())
      routes.emplace(v.address, fleet::address_route{v.address, m.hosts[hi].name, {}});
  }
  for (auto& [a, r] : restored.routes)
    routes[a] = r;
  std::vector<fleet::capacity> used(m.hosts.size());
  for (size_t i = 0; i < m.hosts.size(); ++i)
    for (auto& [vm, c] : on_host[i])
      used[i] += c;
  for (auto& [host, rs] : restored.reservations)
    for (auto& r : rs)
      used[m.find_host(host)] += r.need;

  // The simulated world, for sim:// hosts.
  bool any_sim = false;
  for (auto& x : m.hosts)
    any_sim = any_sim || is_sim(x.driver);
  if (any_sim) {
    rt->sim_ = rt->opts_.sim;
    if (!rt->sim_) {
      hv::sim_options so;
      so.speed = rt->opts_.sim_speed;
      so.state_file = rt->opts_.sim_state_file;
      rt->sim_ = std::make_shared<hv::sim_world>(so);
    }
    for (auto& x : m.hosts)
      if (is_sim(x.driver)) {
        auto err = rt->sim_->add_host(x.driver, static_cast<double>(x.nic_mib_s) * mib);
        if (err && code_of(err) != errc::already_exists)
          return make_error(code_of(err), "host \"" + x.name + "\": " + message_of(err));
      }
    for (auto& l : m.links)
      rt->sim_->set_link(m.zones[l.a].name, m.zones[l.b].name,
                         static_cast<double>(l.bandwidth_mib_s) * mib);
    // A world read back from its state file has its domains where they are now.
    for (size_t i = 0; i < m.vms.size() && !rt->sim_->restored(); ++i) {
      auto& host = m.hosts[vm_host[i]];
      if (!is_sim(host.driver))
        continue;
      auto& v = m.vms[i];
      auto& t = m.types[vm_type[i]];
      hv::domain_config cfg;
      cfg.name = v.name;
      cfg.vcpus = t.vcpus;
      cfg.memory_mib = t.memory_mib;
      // Room to hot-plug up to the largest type of the catalog (a morph in place).
      for (auto& other : m.types) {
        cfg.max_vcpus = std::max(cfg.max_vcpus, other.vcpus);
        cfg.max_memory_mib = std::max(cfg.max_memory_mib, other.memory_mib);
      }
      cfg.dirty_mib_s = v.dirty_mib_s;
      cfg.agent = v.agent;
      for (auto& d : v.local_disks)
        cfg.disks.push_back({d.target, "local:" + v.name + "/" + d.target, true,
                             d.size_gib << 30});
      for (auto vi : v.volumes)
        cfg.disks.push_back({"vd" + std::string(1, static_cast<char>('b' + cfg.disks.size())),
                             m.volumes[vi].name, false, 0});
      auto err = rt->sim_->add_domain(host.driver, cfg);
      if (err && code_of(err) != errc::already_exists)
        return make_error(code_of(err), "VM \"" + v.name + "\": " + message_of(err));
    }
  }

  // Drivers, opened before any actor exists so that a failure leaves nothing running.
  std::vector<hv::driver_ptr> drivers(m.hosts.size());
  // libvirt hosts share one call pool: its threads grow while calls hang, not per host.
  hv::libvirt_driver_options lv;
  for (size_t i = 0; i < m.hosts.size(); ++i) {
    auto& x = m.hosts[i];
    caf::expected<hv::driver_ptr> d{caf::error{}};
    if (rt->opts_.open_driver)
      d = rt->opts_.open_driver(x);
    else if (is_sim(x.driver))
      d = hv::make_sim_driver(rt->sim_, x.driver);
    else {
      if (!lv.pool)
        lv.pool = std::make_shared<hv::call_pool>(rt->opts_.libvirt_pool);
      d = hv::open_libvirt_driver(x.driver, lv);
    }
    if (!d)
      return make_error(code_of(d.error()), "host \"" + x.name + "\": driver " + x.driver + ": "
                                              + message_of(d.error()));
    drivers[i] = std::move(*d);
  }

  // The actors. Zones first: hosts report to them.
  auto handles = std::const_pointer_cast<const fleet_handles>(rt->handles_);
  // The reservations held: by zone (key -> host) for the zones, by VM for the directory.
  std::vector<std::map<std::string, fleet::index>> reserved(m.zones.size());
  std::unordered_map<std::string, std::string> held;
  for (auto& [host, rs] : restored.reservations) {
    auto hi = m.find_host(host);
    for (auto& r : rs) {
      reserved[m.hosts[hi].zone][r.key] = hi;
      held[r.vm] = r.key;
    }
  }
  h.zones.reserve(m.zones.size());
  for (size_t z = 0; z < m.zones.size(); ++z)
    h.zones.push_back(
      spawn_zone(sys, handles, static_cast<fleet::index>(z), used, std::move(reserved[z])));
  h.drivers = drivers;
  h.hosts.reserve(m.hosts.size());
  for (size_t i = 0; i < m.hosts.size(); ++i) {
    std::vector<fleet::reservation> rs;
    if (auto r = restored.reservations.find(m.hosts[i].name); r != restored.reservations.end())
      rs = r->second;
    h.hosts.push_back(spawn_host(sys, handles, static_cast<fleet::index>(i),
                                 std::move(drivers[i]), std::move(on_host[i]), std::move(rs)));
  }
  // A partition without a journaled table starts as the fleet file has it: the host of the
  // VM its volume is attached to holds the PRIMARY lease (the VM runs, so it has its data).
  h.partitions.reserve(m.partitions.size());
  for (size_t i = 0; i < m.partitions.size(); ++i) {
    auto& part = m.partitions[i];
    auto r = restored.leases.find(part.name);
    std::pair<fleet::lease_table, std::string> initial;
    const std::pair<fleet::lease_table, std::string>* state = nullptr;
    if (r != restored.leases.end()) {
      state = &r->second;
    } else if (part.volume != fleet::npos && m.volumes[part.volume].vm != fleet::npos) {
      auto vm = m.volumes[part.volume].vm;
      initial.first.epoch = 1;
      initial.first.leases.push_back({m.hosts[vm_host[vm]].name, fleet::lease_state::primary, 1});
      initial.second = part.master;
      state = &initial;
    }
    h.partitions.push_back(spawn_partition(sys, handles, static_cast<fleet::index>(i), state,
                                           rt->opts_.partitions));
  }
  h.network = spawn_network(sys, std::move(routes));
  h.directory = spawn_directory(sys, handles, std::move(vms), std::move(held));
  h.caller = spawn_caller(sys);
  return rt;
}

host_actor fleet_runtime::host(const std::string& name) const {
  auto i = model().find_host(name);
  return i == fleet::npos ? host_actor{} : handles_->hosts[i];
}

zone_actor fleet_runtime::zone(const std::string& name) const {
  auto i = model().find_zone(name);
  return i == fleet::npos ? zone_actor{} : handles_->zones[i];
}

partition_actor fleet_runtime::partition(const std::string& name) const {
  auto i = model().find_partition(name);
  return i == fleet::npos ? partition_actor{} : handles_->partitions[i];
}

caf::expected<fleet_snapshot> fleet_runtime::snapshot() const {
  fleet_snapshot s;
  auto t = opts_.call_timeout;
  for (auto& z : handles_->zones) {
    auto x = ask<zone_status>(sys_, t, z, status_atom::value);
    if (!x)
      return x.error();
    s.zones.push_back(std::move(*x));
  }
  for (auto& h : handles_->hosts) {
    auto x = ask<host_status>(sys_, t, h, status_atom::value);
    if (!x)
      return x.error();
    s.hosts.push_back(std::move(*x));
  }
  for (auto& p : handles_->partitions) {
    auto x = ask<lease_reply>(sys_, t, p, get_atom::value);
    if (!x)
      return x.error();
    s.leases.push_back(std::move(*x));
  }
  auto vms = this->vms();
  if (!vms)
    return vms.error();
  s.vms = std::move(*vms);
  auto routes = ask<std::vector<fleet::address_route>>(sys_, t, handles_->network,
                                                       list_atom::value);
  if (!routes)
    return routes.error();
  s.routes = std::move(*routes);
  return s;
}

caf::expected<std::vector<fleet::decision>>
fleet_runtime::recommend(const recommend_request& req) const {
  return ask<std::vector<fleet::decision>>(sys_, opts_.call_timeout, handles_->directory,
                                           recommend_atom::value, req);
}

caf::expected<fleet::vm_location> fleet_runtime::locate(const std::string& vm) const {
  return ask<fleet::vm_location>(sys_, opts_.call_timeout, handles_->directory,
                                 locate_atom::value, vm);
}

caf::expected<std::vector<fleet::vm_location>> fleet_runtime::vms() const {
  return ask<std::vector<fleet::vm_location>>(sys_, opts_.call_timeout, handles_->directory,
                                              list_atom::value);
}

caf::expected<lease_reply> fleet_runtime::lease(const std::string& partition,
                                                const lease_request& req) const {
  auto p = this->partition(partition);
  if (!p)
    return make_error(errc::not_found, "partition \"" + partition + "\" is not in the fleet");
  return ask<lease_reply>(sys_, opts_.call_timeout, p, lease_atom::value, req);
}

caf::expected<std::vector<std::string>> fleet_history_problems(const store& st,
                                                               size_t max_problems) {
  fleet::durable_state s;
  std::vector<std::string> out;
  caf::error bad;
  auto err = st.for_each_fleet_history([&](std::string_view, std::string_view bytes) {
    auto h = decode_fleet_history(bytes);
    if (!h) {
      bad = h.error();
      return false;
    }
    for (auto& c : h->changes) {
      if (c.key.rfind("lease/", 0) != 0 || c.value.empty())
        continue;
      if ((bad = fleet::decode_record(c.key, c.value, s)))
        return false;
      fleet::durable_state one;
      auto partition = c.key.substr(6);
      one.leases[partition] = s.leases[partition];
      for (auto& p : fleet::lease_problems(one)) {
        out.push_back("run " + h->run + ", transition at event " + std::to_string(h->first_seq)
                      + ": " + p);
        if (max_problems != 0 && out.size() >= max_problems)
          return false;
      }
    }
    return true;
  });
  if (err)
    return err;
  if (bad)
    return bad;
  return out;
}

caf::expected<fleet::durable_state> read_fleet_state(const store& st) {
  fleet::durable_state s;
  caf::error bad;
  auto err = st.for_each_fleet_record([&](std::string_view k, std::string_view v) {
    bad = fleet::decode_record(k, v, s);
    return !bad;
  });
  if (err)
    return err;
  if (bad)
    return bad;
  return s;
}

} // namespace ferry
