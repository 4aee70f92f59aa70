// Admission and recommendations for moving a VM to a zone: each zone's offer (what its
// capacity index says about the VM's type), an estimate of the move's duration (memory by
// pre-copy over the link, volumes and local disks over the link or over the compressed
// path when that is faster), and a decision with its reason. A request is denied when no
// zone has capacity, when there is no link, when the copy will not converge, or when the
// estimated duration exceeds the fleet's limit. Pure: the zone actors supply the offers and
// the caller supplies the pre-copy model (hypervisor/precopy.hpp) as `estimator`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fleet/model.hpp"
#include "fleet/placement.hpp"

namespace ferry::fleet {

/// What one zone can do for a VM type now.
struct zone_offer {
  index zone = npos;
  /// Hosts that can take the type now, and the host placement would choose.
  size_t hosts_fitting = 0;
  index host = npos;
  capacity free;
  capacity total;
  /// VMs of the request's group already in the zone.
  size_t group_vms = 0;
  /// Why no host fits, when none does.
  std::string no_fit;
};

/// The pre-copy model's answer for one memory copy.
struct copy_estimate {
  bool converges = true;
  std::string reason;
  uint64_t duration_ms = 0;
  uint64_t downtime_ms = 0;
};

/// memory bytes, dirty bytes/s, bandwidth bytes/s, max downtime ms -> estimate.
using estimator = std::function<copy_estimate(uint64_t, double, double, uint32_t)>;

enum class preference : uint8_t { spread, colocate };

struct move_request {
  index vm = npos;
  /// The type to run as (a morph changes it); npos: the VM's own type.
  index type = npos;
  preference pref = preference::spread;
  /// Where the VM runs now; npos: the host the model places it on.
  index from = npos;

  index source(const model& m) const { return from == npos ? m.vms[vm].host : from; }
};

enum class denial : uint8_t { none, no_capacity, no_link, not_converging, too_long };

const char* to_string(denial d) noexcept;

struct decision {
  index zone = npos;
  bool admitted = false;
  denial why = denial::none;
  /// The reason, for admitted and denied zones alike.
  std::string reason;
  uint64_t estimated_ms = 0;
  uint64_t downtime_ms = 0;
  /// Higher is better among admitted zones.
  double score = 0;
  index host = npos;
};

/// The decision for moving `req.vm` to the zone of `offer`.
decision admit(const model& m, const move_request& req, const zone_offer& offer,
               const estimator& est);

/// Every zone but the VM's own, ranked: admitted first (by preference, then by estimated
/// duration), then denied, each with its reason.
std::vector<decision> rank_zones(const model& m, const move_request& req,
                                 const std::vector<zone_offer>& offers, const estimator& est);

} // namespace ferry::fleet
