// The fleet directory actor: where each VM runs (moving a VM adopts it on its new host and
// evicts it from the old one); which VMs are being moved: a migration's reservation goes
// through it, and a VM that holds one reservation gets no other (under another key) until
// that one is released or adopted, so two runs never move one VM at once; and
// recommendations: it asks every zone for an offer, counts the VM's group in each zone, and
// ranks the zones with fleet::rank_zones and the pre-copy model. Runs on CAF's scheduler.
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
  /// VMs being moved: VM -> the key of the reservation that holds it, and back. A claim is
  /// made before the zone reserves (so a second request meanwhile is refused), dropped when
  /// that reservation fails, is released or is adopted; rebuilt from the journal's
  /// reservations on open.
  std::unordered_map<std::string, std::string> held;
  std::unordered_map<std::string, std::string> held_by_key;
  static inline const char* name = "ferry.fleet";

  void hold(const std::string& vm, const std::string& key) {
    held[vm] = key;
    held_by_key[key] = vm;
  }
  void drop(const std::string& key) {
    auto i = held_by_key.find(key);
    if (i == held_by_key.end())
      return;
    if (auto j = held.find(i->second); j != held.end() && j->second == key)
      held.erase(j);
    held_by_key.erase(i);
  }
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

fleet_actor::behavior_type directory_behavior(
  directory_ptr self, fleet_handles_ptr handles,
  std::unordered_map<std::string, fleet::vm_location> vms,
  std::unordered_map<std::string, std::string> held) {
  self->state.handles = std::move(handles);
  self->state.vms = std::move(vms);
  for (auto& [vm, key] : held)
    self->state.hold(vm, key);
  return {
    [=](reserve_atom, reserve_request& req, uint32_t zone) -> caf::result<reserve_reply> {
      auto& st = self->state;
      if (zone >= st.handles->zones.size())
        return make_error(errc::not_found, "reserve: no zone with index " + std::to_string(zone));
      // A run rendered before another moved the VM names a source it left: moving the copy
      // left there would run the VM twice.
      if (!req.from.empty())
        if (auto v = st.vms.find(req.vm); v != st.vms.end() && v->second.host != req.from)
          return make_error(errc::failed_precondition,
                            "VM \"" + req.vm + "\" runs on " + v->second.host + ", not on "
                              + req.from + " (the run's source): another run moved it since "
                                "this one was rendered; render it again");
      bool claimed = false;
      if (auto i = st.held.find(req.vm); i != st.held.end()) {
        if (i->second != req.key)
          return make_error(errc::failed_precondition,
                            "VM \"" + req.vm + "\" is being moved by another run: it holds "
                              "reservation \"" + i->second + "\" (one move of a VM at a time; "
                              "a run that was aborted keeps it until a fleet.release task with "
                              "that key gives it back)");
      } else {
        st.hold(req.vm, req.key);
        claimed = true;
      }
      auto rp = self->make_response_promise<reserve_reply>();
      auto key = req.key;
      self->request(st.handles->zones[zone], caf::infinite, reserve_atom::value, std::move(req))
        .then([rp](reserve_reply& r) mutable { rp.deliver(std::move(r)); },
              [=](caf::error& err) mutable {
                if (claimed)
                  self->state.drop(key);
                rp.deliver(std::move(err));
              });
      return rp;
    },
    [=](release_atom, uint32_t zone, const std::string& host,
        const std::string& key) -> caf::result<state_changes> {
      auto& st = self->state;
      if (zone >= st.handles->zones.size())
        return make_error(errc::not_found, "release: no zone with index " + std::to_string(zone));
      auto rp = self->make_response_promise<state_changes>();
      self->request(st.handles->zones[zone], caf::infinite, release_atom::value, host, key)
        .then(
          [=](state_changes& c) mutable {
            self->state.drop(key);
            rp.deliver(std::move(c));
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
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
            self->state.drop(adopt.reservation);
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
                            std::unordered_map<std::string, fleet::vm_location> vms,
                            std::unordered_map<std::string, std::string> held) {
  return sys.spawn(directory_behavior, std::move(handles), std::move(vms), std::move(held));
}

} // namespace ferry
