// The fleet directory actor: where each VM runs (moving a VM adopts it on its new host and
// evicts it from the old one), and recommendations: it asks every zone for an offer, counts
// the VM's group in each zone, and ranks the zones with fleet::rank_zones and the pre-copy
// model. Runs on CAF's scheduler.
#include <algorithm>
#include <map>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/fleet_actors.hpp"
#include "common/errc.hpp"
#include "hypervisor/precopy.hpp"

namespace ferry {

namespace {

struct directory_state {
  fleet_handles_ptr handles;
  std::unordered_map<std::string, fleet::vm_location> vms;
  static inline const char* name = "ferry.fleet";
};

using directory_ptr = fleet_actor::stateful_pointer<directory_state>;

fleet::copy_estimate estimate(uint64_t memory, double dirty, double bandwidth,
                              uint32_t downtime) {
  hv::precopy_input in;
  in.memory_bytes = memory;
  in.dirty_bytes_s = dirty;
  in.bandwidth_bytes_s = bandwidth;
  in.max_downtime_ms = downtime;
  auto e = hv::estimate_precopy(in);
  return {e.converges, e.reason, e.duration_ms, e.downtime_ms};
}

fleet_actor::behavior_type directory_behavior(directory_ptr self, fleet_handles_ptr handles,
                                              std::unordered_map<std::string, fleet::vm_location> vms) {
  self->state.handles = std::move(handles);
  self->state.vms = std::move(vms);
  return {
    [=](locate_atom, const std::string& vm) -> caf::result<fleet::vm_location> {
      auto& vms = self->state.vms;
      auto i = vms.find(vm);
      if (i == vms.end())
        return make_error(errc::not_found, "VM \"" + vm + "\" is not in the fleet");
      return i->second;
    },
    [=](adopt_atom, const vm_request& req) -> caf::result<state_changes> {
      auto& st = self->state;
      auto& m = *st.handles->model;
      auto i = st.vms.find(req.vm);
      if (i == st.vms.end())
        return make_error(errc::not_found, "VM \"" + req.vm + "\" is not in the fleet");
      auto to = m.find_host(req.host);
      if (to == fleet::npos)
        return make_error(errc::not_found, "host \"" + req.host + "\" is not in the fleet");
      auto from = m.find_host(i->second.host);
      auto adopt = req;
      if (adopt.type.empty())
        adopt.type = i->second.type;
      auto rp = self->make_response_promise<state_changes>();
      self->request(st.handles->hosts[to], caf::infinite, adopt_atom::value, adopt)
        .then(
          [=](state_changes& changes) mutable {
            auto& loc = self->state.vms[adopt.vm];
            loc.host = adopt.host;
            loc.type = adopt.type;
            if (from != fleet::npos && from != to)
              self->send(self->state.handles->hosts[from], evict_atom::value, adopt.vm);
            rp.deliver(std::move(changes));
          },
          [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](recommend_atom, const recommend_request& req) -> caf::result<std::vector<fleet::decision>> {
      auto& st = self->state;
      auto& m = *st.handles->model;
      auto vi = m.find_vm(req.vm);
      if (vi == fleet::npos)
        return make_error(errc::not_found, "VM \"" + req.vm + "\" is not in the fleet");
      auto loc = st.vms[req.vm];
      auto type = req.type.empty() ? loc.type : req.type;
      auto ti = m.find_type(type);
      if (ti == fleet::npos)
        return make_error(errc::invalid_argument, "type \"" + type + "\" is not in the catalog");
      // Group counts per zone, from where the VMs run now.
      std::vector<size_t> group(m.zones.size(), 0);
      auto& g = m.vms[vi].group;
      if (!g.empty())
        for (auto& [name, l] : st.vms) {
          auto v = m.find_vm(name);
          auto h = m.find_host(l.host);
          if (v != fleet::npos && h != fleet::npos && m.vms[v].group == g && name != req.vm)
            ++group[m.hosts[h].zone];
        }
      auto target = fleet::npos;
      if (!req.zone.empty()) {
        target = m.find_zone(req.zone);
        if (target == fleet::npos)
          return make_error(errc::not_found, "zone \"" + req.zone + "\" is not in the fleet");
      }
      struct gather {
        std::vector<fleet::zone_offer> offers;
        size_t waiting = 0;
        caf::error err;
      };
      auto acc = std::make_shared<gather>();
      acc->waiting = target == fleet::npos ? st.handles->zones.size() : 1;
      auto rp = self->make_response_promise<std::vector<fleet::decision>>();
      // The VM as it runs now (its current host decides the source zone), as the type asked.
      auto model = st.handles->model;
      fleet::move_request mr;
      mr.vm = vi;
      mr.type = ti;
      mr.pref = req.pref;
      mr.from = m.find_host(loc.host);
      auto finish = [=]() mutable {
        if (acc->err) {
          rp.deliver(acc->err);
          return;
        }
        if (target != fleet::npos)
          rp.deliver(std::vector<fleet::decision>{fleet::admit(*model, mr, acc->offers[0], estimate)});
        else
          rp.deliver(fleet::rank_zones(*model, mr, acc->offers, estimate));
      };
      offer_request oreq{type, g, {loc.host}};
      auto zones = target == fleet::npos ? st.handles->zones
                                         : std::vector<zone_actor>{st.handles->zones[target]};
      for (auto& z : zones)
        self->request(z, std::chrono::seconds(10), offer_atom::value, oreq)
          .then(
            [=](fleet::zone_offer& o) mutable {
              o.group_vms = group[o.zone];
              acc->offers.push_back(std::move(o));
              if (--acc->waiting == 0)
                finish();
            },
            [=](caf::error& err) mutable {
              acc->err = err;
              if (--acc->waiting == 0)
                finish();
            });
      return rp;
    },
    [=](list_atom) -> std::vector<fleet::vm_location> {
      std::vector<fleet::vm_location> out;
      for (auto& [n, l] : self->state.vms)
        out.push_back(l);
      std::sort(out.begin(), out.end(), [](auto& x, auto& y) { return x.vm < y.vm; });
      return out;
    },
  };
}

} // namespace

fleet_actor spawn_directory(caf::actor_system& sys, fleet_handles_ptr handles,
                            std::unordered_map<std::string, fleet::vm_location> vms) {
  return sys.spawn(directory_behavior, std::move(handles), std::move(vms));
}

} // namespace ferry
