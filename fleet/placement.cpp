#include "fleet/placement.hpp"

#include <algorithm>

namespace ferry::fleet {

capacity_index::capacity_index(model_ptr m, index zone, const std::vector<capacity>& used)
  : model_(std::move(m)), zone_(zone) {
  for (auto h : model_->zones[zone].hosts) {
    auto& host = model_->hosts[h];
    auto f = host.total;
    if (h < used.size())
      f -= used[h];
    free_[h] = f;
    total_ += host.total;
    free_total_ += f;
    index_host(h);
  }
}

void capacity_index::index_host(index h) {
  auto& host = model_->hosts[h];
  if (down_[h] || std::find(host.tags.begin(), host.tags.end(), "maintenance") != host.tags.end())
    return;
  by_generation_[host.generation].emplace(free_[h].memory_mib, h);
}

void capacity_index::unindex_host(index h) {
  auto i = by_generation_.find(model_->hosts[h].generation);
  if (i != by_generation_.end())
    i->second.erase({free_[h].memory_mib, h});
}

bool capacity_index::eligible(index h, const capacity& need,
                              const std::vector<index>& exclude) const {
  return free_.at(h).fits(need)
         && std::find(exclude.begin(), exclude.end(), h) == exclude.end();
}

placement capacity_index::choose(const vm_type& type, strategy s,
                                 const std::vector<index>& exclude) const {
  auto need = type.need();
  index best = npos;
  uint64_t best_mem = 0;
  auto consider = [&](const by_memory& hosts) {
    if (s == strategy::pack) {
      for (auto i = hosts.lower_bound({need.memory_mib, 0}); i != hosts.end(); ++i)
        if (eligible(i->second, need, exclude)) {
          if (best == npos || i->first < best_mem) {
            best = i->second;
            best_mem = i->first;
          }
          return;
        }
    } else {
      for (auto i = hosts.rbegin(); i != hosts.rend() && i->first >= need.memory_mib; ++i)
        if (eligible(i->second, need, exclude)) {
          if (best == npos || i->first > best_mem) {
            best = i->second;
            best_mem = i->first;
          }
          return;
        }
    }
  };
  if (type.generations.empty()) {
    for (auto& [gen, hosts] : by_generation_)
      consider(hosts);
  } else {
    for (auto& gen : type.generations)
      if (auto i = by_generation_.find(gen); i != by_generation_.end())
        consider(i->second);
  }
  placement p;
  p.host = best;
  if (best == npos) {
    auto& z = model_->zones[zone_].name;
    std::string gens;
    for (auto& g : type.generations)
      gens += (gens.empty() ? "" : ", ") + g;
    p.reason = "zone \"" + z + "\": no host" + (gens.empty() ? "" : " of generation " + gens)
               + " has " + std::to_string(need.vcpus) + " vCPUs, "
               + std::to_string(need.memory_mib) + " MiB and a slot free for type \""
               + type.name + "\"";
  }
  return p;
}

void capacity_index::take(index h, const capacity& c) {
  unindex_host(h);
  free_[h] -= c;
  free_total_ -= c;
  index_host(h);
}

void capacity_index::give(index h, const capacity& c) {
  unindex_host(h);
  free_[h] += c;
  free_total_ += c;
  index_host(h);
}

void capacity_index::set_free(index h, const capacity& f) {
  unindex_host(h);
  free_total_ -= free_[h];
  free_[h] = f;
  free_total_ += f;
  index_host(h);
}

void capacity_index::set_down(index h, bool down) {
  unindex_host(h);
  down_[h] = down;
  index_host(h);
}

capacity capacity_index::free(index h) const {
  auto i = free_.find(h);
  return i == free_.end() ? capacity{} : i->second;
}

size_t capacity_index::hosts_fitting(const vm_type& type) const {
  auto need = type.need();
  size_t n = 0;
  for (auto& [gen, hosts] : by_generation_) {
    if (!type.runs_on(gen))
      continue;
    for (auto i = hosts.lower_bound({need.memory_mib, 0}); i != hosts.end(); ++i)
      if (free_.at(i->second).fits(need))
        ++n;
  }
  return n;
}

} // namespace ferry::fleet
