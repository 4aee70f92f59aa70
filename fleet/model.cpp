#include "fleet/model.hpp"

#include <algorithm>

namespace ferry::fleet {

bool vm_type::runs_on(const std::string& generation) const {
  return generations.empty()
         || std::find(generations.begin(), generations.end(), generation) != generations.end();
}

const link* model::find_link(index a, index b) const {
  if (a == b)
    return nullptr;
  for (auto& l : links)
    if ((l.a == a && l.b == b) || (l.a == b && l.b == a))
      return &l;
  return nullptr;
}

std::vector<capacity> model::used_by_vms() const {
  std::vector<capacity> used(hosts.size());
  for (auto& v : vms)
    if (v.host != npos && v.type != npos)
      used[v.host] += types[v.type].need();
  return used;
}

} // namespace ferry::fleet
