// Checks of a fleet description that go beyond single fields: driver URIs and host capacity
// against the VMs placed on it. `problems` collects every problem found so that a fleet file
// is reported in full, not one error at a time. Pure; any thread.
#pragma once

#include <string>
#include <vector>

#include "fleet/model.hpp"

namespace ferry::fleet {

class problems {
public:
  void add(std::string p) { list_.push_back(std::move(p)); }
  bool empty() const noexcept { return list_.empty(); }

  /// "WHAT: N problems:\n  first\n  second..." (at most `limit` listed, then "and N more").
  std::string render(const std::string& what, size_t limit = 50) const;

private:
  std::vector<std::string> list_;
};

/// Empty when `uri` is a driver URI Ferry can use: sim://ZONE/HOST, test:///PATH,
/// qemu:///system, qemu+unix:///system?socket=PATH, qemu+tcp://ADDRESS/system,
/// qemu+ssh://..., qemu+tls://...; else what is wrong with it.
std::string check_driver_uri(const std::string& uri);

/// Reports every host whose VMs need more vCPUs, memory or slots than it has.
void check_capacity(const model& m, problems& p);

} // namespace ferry::fleet
