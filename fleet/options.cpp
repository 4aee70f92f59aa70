#include "fleet/options.hpp"

namespace ferry::fleet {

const char* to_string(morph_method x) noexcept {
  switch (x) {
    case morph_method::none: return "none";
    case morph_method::live_in_place: return "live_in_place";
    case morph_method::reboot_in_place: return "reboot_in_place";
    case morph_method::live_migration: return "live_migration";
    case morph_method::reboot_migration: return "reboot_migration";
  }
  return "?";
}

namespace {

// Why the change from `from` to `to` cannot be made live ("" when it can).
std::string not_live(const vm& v, const vm_type& from, const vm_type& to) {
  if (!v.agent)
    return "no migration agent: fail-safe defaults allow no live change";
  if (!v.agent_authorized)
    return "the agent is not authorized: fail-safe defaults allow no live change";
  auto& c = v.capabilities;
  if (to.vcpus > from.vcpus && !c.cpu_hotplug)
    return "the agent reports no vCPU hot-plug";
  if (to.vcpus < from.vcpus && !c.cpu_unplug)
    return "the agent reports no vCPU unplug";
  if (to.memory_mib > from.memory_mib && !c.memory_hotplug)
    return "the agent reports no memory hot-plug";
  if (to.memory_mib < from.memory_mib && !c.memory_unplug)
    return "the agent reports no memory unplug";
  return {};
}

} // namespace

std::vector<morph_option> morph_options(const model& m, index vi,
                                        const std::vector<capacity>& given_free) {
  auto& v = m.vms[vi];
  auto& from = m.types[v.type];
  auto& host = m.hosts[v.host];
  std::vector<capacity> free = given_free;
  if (free.empty()) {
    auto used = m.used_by_vms();
    free.resize(m.hosts.size());
    for (size_t h = 0; h < m.hosts.size(); ++h) {
      free[h] = m.hosts[h].total;
      free[h] -= used[h];
    }
  }
  std::vector<morph_option> out;
  for (index ti = 0; ti < m.types.size(); ++ti) {
    if (ti == v.type)
      continue;
    auto& to = m.types[ti];
    morph_option o;
    o.type = ti;
    auto why_not_live = not_live(v, from, to);
    bool live = why_not_live.empty();
    // In place: the host's generation runs it and its free capacity covers the growth.
    std::string in_place_no;
    if (!to.runs_on(host.generation)) {
      in_place_no = "host \"" + host.name + "\" (generation " + host.generation
                    + ") cannot run it";
    } else {
      auto f = free[v.host];
      f += from.need();
      if (!f.fits(to.need()))
        in_place_no = "host \"" + host.name + "\" has not the room ("
                      + std::to_string(f.vcpus) + " vCPUs, " + std::to_string(f.memory_mib)
                      + " MiB free with the VM's own)";
    }
    if (in_place_no.empty()) {
      o.feasible = true;
      o.method = live ? morph_method::live_in_place : morph_method::reboot_in_place;
      o.host = v.host;
      o.reason = live ? "in place, live: the agent can take the change"
                      : "in place, with a reboot: " + why_not_live;
      out.push_back(std::move(o));
      continue;
    }
    // Elsewhere: a host of a generation that runs it, with room (same zone first).
    index best = npos;
    for (int pass = 0; pass < 2 && best == npos; ++pass)
      for (index h = 0; h < m.hosts.size(); ++h) {
        auto& x = m.hosts[h];
        if (h == v.host || (pass == 0) != (x.zone == host.zone))
          continue;
        if (to.runs_on(x.generation) && free[h].fits(to.need())) {
          best = h;
          break;
        }
      }
    if (best == npos) {
      o.reason = in_place_no + ", and no other host can take type \"" + to.name + "\"";
      out.push_back(std::move(o));
      continue;
    }
    o.feasible = true;
    o.host = best;
    o.method = live ? morph_method::live_migration : morph_method::reboot_migration;
    o.reason = in_place_no + ": " + (live ? "live migration" : "reboot migration") + " to \""
               + m.hosts[best].name + "\"" + (live ? "" : " (" + why_not_live + ")");
    out.push_back(std::move(o));
  }
  return out;
}

} // namespace ferry::fleet
