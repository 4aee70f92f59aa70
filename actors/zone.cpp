// The zone actor: aggregates its hosts' free capacity (each host actor reports after every
// change), chooses target hosts (spreading or packing), reserves through the chosen host
// actor (trying the next host when one refuses) and answers offers for recommendations.
// Runs on CAF's scheduler.
#include <algorithm>
#include <deque>
#include <map>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/fleet_actors.hpp"
#include "common/errc.hpp"

namespace ferry {

namespace {

struct zone_state {
  fleet_handles_ptr handles;
  fleet::index index = fleet::npos;
  fleet::capacity_index capacity;
  /// Reservation key -> host, for idempotent reserve and release.
  std::map<std::string, fleet::index> reserved;
  /// The last keys released -> their host (at most `released_kept`): a release said again
  /// (its first answer lost) is answered with the erase again, for a journal that missed it.
  std::unordered_map<std::string, fleet::index> released;
  std::deque<std::string> released_order;
  static constexpr size_t released_kept = 4096;
  static inline const char* name = "ferry.zone";

  void remember_release(const std::string& key, fleet::index host) {
    if (released.emplace(key, host).second) {
      released_order.push_back(key);
      if (released_order.size() > released_kept) {
        released.erase(released_order.front());
        released_order.pop_front();
      }
    }
  }

  const fleet::model& model() const { return *handles->model; }
  const std::string& zone_name() const { return model().zones[index].name; }
};

using zone_ptr = zone_actor::stateful_pointer<zone_state>;

// Names -> host indexes of this model (unknown names are ignored).
std::vector<fleet::index> hosts_of(const fleet::model& m, const std::vector<std::string>& names) {
  std::vector<fleet::index> out;
  for (auto& n : names)
    if (auto h = m.find_host(n); h != fleet::npos)
      out.push_back(h);
  return out;
}

// Chooses a host and asks it to reserve; on resource_exhausted, tries the next one (a host
// whose capacity changed since it last reported).
void try_reserve(zone_ptr self, reserve_request req, fleet::index type,
                 std::vector<fleet::index> exclude, caf::typed_response_promise<reserve_reply> rp,
                 int tries) {
  auto& st = self->state;
  auto& m = st.model();
  fleet::index host;
  if (!req.host.empty()) {
    host = m.find_host(req.host);
    if (host == fleet::npos || m.hosts[host].zone != st.index) {
      rp.deliver(make_error(errc::not_found, "zone \"" + st.zone_name() + "\": no host \""
                                               + req.host + "\""));
      return;
    }
    if (std::find(exclude.begin(), exclude.end(), host) != exclude.end()) {
      rp.deliver(make_error(errc::failed_precondition,
                            "zone \"" + st.zone_name() + "\": host \"" + req.host
                              + "\" is the one " + req.vm
                              + " leaves (\"exclude\"): a move needs another target"));
      return;
    }
  } else {
    auto p = st.capacity.choose(m.types[type], req.strategy, exclude);
    if (p.host == fleet::npos) {
      rp.deliver(make_error(errc::resource_exhausted, p.reason));
      return;
    }
    host = p.host;
  }
  auto need = m.types[type].need();
  st.capacity.take(host, need);
  fleet::reservation r{req.key, req.vm, need};
  self->request(st.handles->hosts[host], caf::infinite, reserve_atom::value, r)
    .then(
      [=](state_changes& changes) mutable {
        self->state.reserved[req.key] = host;
        self->state.released.erase(req.key);
        rp.deliver(reserve_reply{self->state.model().hosts[host].name, std::move(changes)});
      },
      [=](caf::error& err) mutable {
        self->state.capacity.give(host, need);
        if (code_of(err) == errc::resource_exhausted && req.host.empty() && tries > 1) {
          exclude.push_back(host);
          try_reserve(self, std::move(req), type, std::move(exclude), rp, tries - 1);
          return;
        }
        rp.deliver(std::move(err));
      });
}

zone_actor::behavior_type zone_behavior(zone_ptr self, fleet_handles_ptr handles,
                                        fleet::index zone, std::vector<fleet::capacity> used,
                                        std::map<std::string, fleet::index> reserved) {
  auto& s = self->state;
  s.reserved = std::move(reserved);
  s.handles = std::move(handles);
  s.index = zone;
  s.capacity = fleet::capacity_index{s.handles->model, zone, used};
  return {
    [=](place_atom, const place_request& req) -> caf::result<place_reply> {
      auto& st = self->state;
      auto& m = st.model();
      auto t = m.find_type(req.type);
      if (t == fleet::npos)
        return make_error(errc::invalid_argument, "type \"" + req.type + "\" is not in the catalog");
      auto p = st.capacity.choose(m.types[t], req.strategy, hosts_of(m, req.exclude));
      if (p.host == fleet::npos)
        return place_reply{{}, p.reason};
      return place_reply{m.hosts[p.host].name, {}};
    },
    [=](reserve_atom, reserve_request& req) -> caf::result<reserve_reply> {
      auto& st = self->state;
      auto& m = st.model();
      auto t = m.find_type(req.type);
      if (t == fleet::npos)
        return make_error(errc::invalid_argument, "reserve: type \"" + req.type
                                                    + "\" is not in the catalog");
      // Reserved already (an attempt whose answer was lost): the host reports the
      // reservation it holds, so the journal gets it even if it missed the first answer.
      if (auto i = st.reserved.find(req.key); i != st.reserved.end()) {
        auto host = i->second;
        auto rp = self->make_response_promise<reserve_reply>();
        self->request(st.handles->hosts[host], caf::infinite, reserve_atom::value,
                      fleet::reservation{req.key, req.vm, m.types[t].need()})
          .then(
            [=](state_changes& changes) mutable {
              rp.deliver(reserve_reply{self->state.model().hosts[host].name, std::move(changes)});
            },
            [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      }
      auto rp = self->make_response_promise<reserve_reply>();
      auto exclude = hosts_of(m, req.exclude);
      try_reserve(self, std::move(req), t, std::move(exclude), rp, 3);
      return rp;
    },
    [=](release_atom, const std::string& host,
        const std::string& key) -> caf::result<state_changes> {
      // The host the reservation is on: the zone's own record; else the host the caller
      // names (the reserve task's output: a release said again, its first answer lost, after
      // the zone forgot the key); else the zone's memory of the keys it released last.
      auto& st = self->state;
      auto h = fleet::npos;
      if (auto i = st.reserved.find(key); i != st.reserved.end()) {
        h = i->second;
      } else if (!host.empty()) {
        h = st.model().find_host(host);
        if (h == fleet::npos || st.model().hosts[h].zone != st.index)
          return make_error(errc::not_found, "zone \"" + st.zone_name() + "\": no host \""
                                               + host + "\"");
      } else if (auto j = st.released.find(key); j != st.released.end()) {
        h = j->second; // released already: the host says so again
      } else {
        return state_changes{}; // never reserved here
      }
      st.reserved.erase(key);
      st.remember_release(key, h);
      auto rp = self->make_response_promise<state_changes>();
      self->request(st.handles->hosts[h], caf::infinite, release_atom::value, key)
        .then([=](state_changes& c) mutable { rp.deliver(std::move(c)); },
              [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](capacity_atom, uint32_t host, const fleet::capacity& free) {
      self->state.capacity.set_free(host, free);
    },
    [=](offer_atom, const offer_request& req) -> caf::result<fleet::zone_offer> {
      auto& st = self->state;
      auto& m = st.model();
      auto t = m.find_type(req.type);
      if (t == fleet::npos)
        return make_error(errc::invalid_argument, "type \"" + req.type + "\" is not in the catalog");
      fleet::zone_offer o;
      o.zone = st.index;
      auto p = st.capacity.choose(m.types[t], fleet::strategy::spread, hosts_of(m, req.exclude));
      o.host = p.host;
      o.no_fit = p.reason;
      o.hosts_fitting = p.host == fleet::npos ? 0 : st.capacity.hosts_fitting(m.types[t]);
      o.free = st.capacity.total_free();
      o.total = st.capacity.total();
      return o;
    },
    [=](status_atom) -> zone_status {
      auto& st = self->state;
      return zone_status{st.zone_name(), st.capacity.total(), st.capacity.total_free(),
                         static_cast<uint32_t>(st.capacity.hosts())};
    },
  };
}

} // namespace

zone_actor spawn_zone(caf::actor_system& sys, fleet_handles_ptr handles, fleet::index zone,
                      const std::vector<fleet::capacity>& used,
                      std::map<std::string, fleet::index> reserved) {
  return sys.spawn(zone_behavior, std::move(handles), zone, used, std::move(reserved));
}

} // namespace ferry
