#include "fleet/recommend.hpp"

#include <algorithm>
#include <cstdio>

namespace ferry::fleet {

const char* to_string(denial d) noexcept {
  switch (d) {
    case denial::none: return "none";
    case denial::no_capacity: return "no_capacity";
    case denial::no_link: return "no_link";
    case denial::not_converging: return "not_converging";
    case denial::too_long: return "too_long";
  }
  return "?";
}

namespace {

std::string seconds(uint64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

} // namespace

decision admit(const model& m, const move_request& req, const zone_offer& offer,
               const estimator& est) {
  decision d;
  d.zone = offer.zone;
  d.host = offer.host;
  auto& v = m.vms[req.vm];
  auto& type = m.types[req.type == npos ? v.type : req.type];
  auto src_host = req.source(m);
  auto src = m.hosts[src_host].zone;
  auto& zname = m.zones[offer.zone].name;
  auto head = "zone \"" + zname + "\": ";
  if (offer.hosts_fitting == 0 || offer.host == npos) {
    d.why = denial::no_capacity;
    d.reason = head + "denied: no capacity: "
               + (offer.no_fit.empty() ? "no host fits type \"" + type.name + "\"" : offer.no_fit);
    return d;
  }
  // Bandwidth for memory, and for data (volumes move only between zones).
  double mem_mib_s;
  double data_mib_s;
  bool compressed = false;
  uint64_t data_gib = 0;
  for (auto& disk : v.local_disks)
    data_gib += disk.size_gib;
  std::string path;
  if (src == offer.zone) {
    mem_mib_s = static_cast<double>(m.hosts[src_host].nic_mib_s);
    data_mib_s = mem_mib_s;
    path = "within the zone at " + std::to_string(m.hosts[src_host].nic_mib_s) + " MiB/s";
  } else {
    auto* l = m.find_link(src, offer.zone);
    if (!l) {
      d.why = denial::no_link;
      d.reason = head + "denied: no link from zone \"" + m.zones[src].name + "\"";
      return d;
    }
    for (auto vi : v.volumes)
      for (auto pi : m.volumes[vi].partitions)
        data_gib += m.partitions[pi].size_gib;
    mem_mib_s = static_cast<double>(l->bandwidth_mib_s);
    data_mib_s = mem_mib_s;
    if (l->compressed_mib_s > l->bandwidth_mib_s) {
      data_mib_s = static_cast<double>(l->compressed_mib_s);
      compressed = true;
    }
    path = "link " + m.zones[src].name + "-" + zname + " at "
           + std::to_string(l->bandwidth_mib_s) + " MiB/s";
  }
  constexpr double mib = 1024.0 * 1024.0;
  auto copy = est(type.memory_mib * 1024 * 1024, v.dirty_mib_s * mib, mem_mib_s * mib,
                  m.limits.max_downtime_ms);
  if (!copy.converges) {
    d.why = denial::not_converging;
    d.reason = head + "denied: the memory copy will not converge: " + copy.reason;
    return d;
  }
  auto data_ms = static_cast<uint64_t>(static_cast<double>(data_gib) * 1024.0 / data_mib_s * 1000.0);
  d.estimated_ms = copy.duration_ms + data_ms;
  d.downtime_ms = copy.downtime_ms;
  auto limit_ms = uint64_t{m.limits.max_migration_s} * 1000;
  std::string data = data_gib == 0 ? std::string{}
                                   : ", " + std::to_string(data_gib) + " GiB of disk data"
                                       + (compressed ? " over the compressed path" : "");
  if (d.estimated_ms > limit_ms) {
    d.why = denial::too_long;
    d.reason = head + "denied: estimated " + seconds(d.estimated_ms) + " exceeds the limit "
               + std::to_string(m.limits.max_migration_s) + " s (" + path + data + ")";
    return d;
  }
  d.admitted = true;
  auto free_share = offer.total.memory_mib == 0
                      ? 0.0
                      : static_cast<double>(offer.free.memory_mib)
                          / static_cast<double>(offer.total.memory_mib);
  // Spread: prefer free capacity and few VMs of the group; colocate: many VMs of the group.
  double group = static_cast<double>(offer.group_vms);
  d.score = req.pref == preference::spread ? free_share - group * 1e-3 : group + free_share * 1e-3;
  char share[16];
  std::snprintf(share, sizeof share, "%.0f%%", free_share * 100);
  d.reason = head + "admitted: " + std::to_string(offer.hosts_fitting) + " hosts fit type \""
             + type.name + "\", " + share + " memory free, " + path + data + ", estimated "
             + seconds(d.estimated_ms);
  if (!v.group.empty())
    d.reason += ", " + std::to_string(offer.group_vms) + " VMs of group \"" + v.group + "\"";
  return d;
}

std::vector<decision> rank_zones(const model& m, const move_request& req,
                                 const std::vector<zone_offer>& offers, const estimator& est) {
  std::vector<decision> out;
  auto own = m.hosts[req.source(m)].zone;
  for (auto& o : offers)
    if (o.zone != own)
      out.push_back(admit(m, req, o, est));
  std::stable_sort(out.begin(), out.end(), [](const decision& a, const decision& b) {
    if (a.admitted != b.admitted)
      return a.admitted;
    if (a.score != b.score)
      return a.score > b.score;
    return a.estimated_ms < b.estimated_ms;
  });
  return out;
}

} // namespace ferry::fleet
