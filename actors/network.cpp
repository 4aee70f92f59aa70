// The network actor: which host each address is routed to, and where packets arriving for it
// are forwarded while a VM moves (from its old host to its new one, until the address moves).
// Each change answers with its journal record. Runs on CAF's scheduler.
#include <algorithm>
#include <map>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/fleet_actors.hpp"
#include "common/errc.hpp"

namespace ferry {

namespace {

struct network_state {
  std::unordered_map<std::string, fleet::address_route> routes;
  static inline const char* name = "ferry.network";
};

using network_ptr = network_actor::stateful_pointer<network_state>;

network_actor::behavior_type network_behavior(network_ptr self,
                                              std::unordered_map<std::string, fleet::address_route> routes) {
  self->state.routes = std::move(routes);
  auto unknown = [](const std::string& address) {
    return make_error(errc::not_found, "address \"" + address + "\" is not routed");
  };
  return {
    [=](route_atom, const std::string& address) -> caf::result<fleet::address_route> {
      auto& routes = self->state.routes;
      auto i = routes.find(address);
      if (i == routes.end())
        return unknown(address);
      return i->second;
    },
    [=](forward_atom, const std::string& address,
        const std::string& to) -> caf::result<state_changes> {
      auto& routes = self->state.routes;
      auto i = routes.find(address);
      if (i == routes.end())
        return unknown(address);
      // Moved already (nothing to forward), or forwarding already: the route is reported
      // as it is, for a journal that missed the first answer.
      if (i->second.host != to)
        i->second.forward_to = to;
      return state_changes{fleet::encode_route(i->second)};
    },
    [=](move_atom, const std::string& address,
        const std::string& host) -> caf::result<state_changes> {
      auto& routes = self->state.routes;
      auto& r = routes[address];
      r.address = address;
      r.host = host;
      r.forward_to.clear();
      return state_changes{fleet::encode_route(r)};
    },
    [=](list_atom) -> std::vector<fleet::address_route> {
      std::vector<fleet::address_route> out;
      for (auto& [a, r] : self->state.routes)
        out.push_back(r);
      std::sort(out.begin(), out.end(),
                [](auto& x, auto& y) { return x.address < y.address; });
      return out;
    },
  };
}

} // namespace

network_actor spawn_network(caf::actor_system& sys,
                            std::unordered_map<std::string, fleet::address_route> routes) {
  return sys.spawn(network_behavior, std::move(routes));
}

} // namespace ferry
