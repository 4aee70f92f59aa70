// ferry::fleet::capacity_index — the free capacity of one zone's hosts, indexed for
// placement: choosing a target host for a VM type, by spreading (the host with the most free
// memory) or packing (the fullest host that still fits), in O(log hosts) for the usual case.
// Reservations and releases keep it current. Pure; owned by one zone actor.
#pragma once

#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "fleet/model.hpp"

namespace ferry::fleet {

enum class strategy : uint8_t { spread, pack };

struct placement {
  /// The chosen host; npos when none fits.
  index host = npos;
  /// When none fits: why ("no host of generation gen3 ..."); else empty.
  std::string reason;
};

class capacity_index {
public:
  capacity_index() = default;
  /// The hosts of `zone`, with `used[h]` (by host index in the model) already taken.
  capacity_index(model_ptr m, index zone, const std::vector<capacity>& used);

  /// A host of this zone that can take `type`, other than those in `exclude`; hosts tagged
  /// "maintenance" or marked down are never chosen.
  placement choose(const vm_type& type, strategy s, const std::vector<index>& exclude = {}) const;

  /// Takes or gives back capacity on `host`.
  void take(index host, const capacity& c);
  void give(index host, const capacity& c);
  /// Sets `host`'s free capacity to what its host actor reports.
  void set_free(index host, const capacity& free);
  /// A host that is down takes no placement until it is up again.
  void set_down(index host, bool down);

  capacity free(index host) const;
  capacity total_free() const noexcept { return free_total_; }
  capacity total() const noexcept { return total_; }
  /// Hosts that can take `type` now (a count, for recommendations; O(hosts)).
  size_t hosts_fitting(const vm_type& type) const;
  size_t hosts() const noexcept { return free_.size(); }

private:
  using by_memory = std::set<std::pair<uint64_t, index>>;
  void index_host(index host);
  void unindex_host(index host);
  bool eligible(index host, const capacity& need, const std::vector<index>& exclude) const;

  model_ptr model_;
  index zone_ = npos;
  std::unordered_map<index, capacity> free_;
  std::unordered_map<index, bool> down_;
  // Per host generation: hosts ordered by free memory.
  std::map<std::string, by_memory> by_generation_;
  capacity free_total_;
  capacity total_;
};

} // namespace ferry::fleet
