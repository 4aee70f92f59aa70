#include "hypervisor/driver.hpp"

namespace ferry::hv {

driver::~driver() = default;

const char* to_string(domain_status s) noexcept {
  switch (s) {
    case domain_status::absent: return "absent";
    case domain_status::shut_off: return "shut_off";
    case domain_status::running: return "running";
    case domain_status::paused: return "paused";
    case domain_status::migrating: return "migrating";
    case domain_status::crashed: return "crashed";
  }
  return "unknown";
}

} // namespace ferry::hv
