#include "fleet/validate.hpp"

namespace ferry::fleet {

std::string problems::render(const std::string& what, size_t limit) const {
  std::string out = what + ": " + std::to_string(list_.size())
                    + (list_.size() == 1 ? " problem" : " problems");
  for (size_t i = 0; i < list_.size() && i < limit; ++i)
    out += "\n  " + list_[i];
  if (list_.size() > limit)
    out += "\n  and " + std::to_string(list_.size() - limit) + " more";
  return out;
}

std::string check_driver_uri(const std::string& uri) {
  if (uri.empty())
    return "is required";
  auto sep = uri.find("://");
  if (sep == std::string::npos || sep == 0)
    return "is not a URI (SCHEME://...)";
  auto scheme = uri.substr(0, sep);
  auto rest = uri.substr(sep + 3);
  if (scheme == "sim") {
    auto slash = rest.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size())
      return "a simulated host is sim://ZONE/HOST";
    return {};
  }
  if (scheme == "test")
    return rest.empty() || rest[0] != '/' ? "libvirt's test driver is test:///PATH" : "";
  if (scheme == "qemu" || scheme.rfind("qemu+", 0) == 0) {
    auto transport = scheme == "qemu" ? std::string{} : scheme.substr(5);
    if (!transport.empty() && transport != "unix" && transport != "tcp" && transport != "ssh"
        && transport != "tls" && transport != "libssh2" && transport != "libssh")
      return "unknown libvirt transport \"" + transport + "\"";
    if (rest.find("/system") == std::string::npos && rest.find("/session") == std::string::npos)
      return "a QEMU URI ends in /system or /session";
    return {};
  }
  return "unknown driver \"" + scheme + "\" (sim, test, qemu, qemu+unix, qemu+tcp, ...)";
}

void check_capacity(const model& m, problems& p) {
  auto used = m.used_by_vms();
  for (size_t i = 0; i < m.hosts.size(); ++i) {
    auto& h = m.hosts[i];
    auto& u = used[i];
    auto over = [&](const char* field, uint64_t need, uint64_t have) {
      if (need > have)
        p.add("hosts[" + std::to_string(i) + "] \"" + h.name + "\": over-committed: its VMs need "
              + std::to_string(need) + " " + field + ", it has " + std::to_string(have));
    };
    over("vcpus", u.vcpus, h.total.vcpus);
    over("MiB of memory", u.memory_mib, h.total.memory_mib);
    over("slots", u.slots, h.total.slots);
  }
}

} // namespace ferry::fleet
