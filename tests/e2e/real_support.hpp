// What the end-to-end tests on real libvirt hosts share: the hosts scripts/real-hosts.sh
// started (DIR/hosts.env), commands run with a deadline, the guest's heartbeat read from its
// serial log, a fleet file for the hosts, and synchronous driver calls for checks;
// bench/real_migration.cpp uses them too.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "hypervisor/driver.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/dir_watch.hpp"
#include "hypervisor/libvirt_driver.hpp"

namespace ferry::e2e {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using test::child;
using test::cmd_result;
using test::run_cmd;

inline std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The hosts of DIR/hosts.env.
struct real_hosts {
  std::string dir;
  std::map<std::string, std::string> env;

  static std::optional<real_hosts> load(const std::string& dir) {
    std::ifstream in{dir + "/hosts.env"};
    if (!in)
      return std::nullopt;
    real_hosts h;
    h.dir = dir;
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq == std::string::npos || line[0] == '#')
        continue;
      auto v = line.substr(eq + 1);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"')
        v = v.substr(1, v.size() - 2);
      h.env[line.substr(0, eq)] = v;
    }
    return h;
  }
  std::string get(const std::string& key) const {
    auto i = env.find(key);
    return i == env.end() ? std::string{} : i->second;
  }
  /// How Ferry reaches host `h` (its unix socket).
  std::string uri(const std::string& h) const { return get("FERRY_REAL_" + h + "_URI"); }
  /// How the other host's libvirt reaches `h` (qemu+tcp inside the private network).
  std::string peer_uri(const std::string& h) const { return get("FERRY_REAL_" + h + "_PEER_URI"); }
  std::string serial_log(const std::string& guest) const {
    return dir + "/guests/" + guest + ".serial.log";
  }
};

/// The reason the hosts could not start here (DIR/skip-reason), when they could not.
inline std::optional<std::string> skip_reason(const std::string& dir) {
  std::ifstream in{dir + "/skip-reason"};
  if (!in)
    return std::nullopt;
  std::string line;
  std::getline(in, line);
  return line;
}

// -- the guest's heartbeat -------------------------------------------------------------------

/// The counters of the "ferry-heartbeat N" lines of a serial log, in order.
inline std::vector<uint64_t> heartbeats(const std::string& log) {
  std::vector<uint64_t> out;
  std::istringstream in{read_file(log)};
  std::string line;
  const std::string tag = "ferry-heartbeat ";
  while (std::getline(in, line)) {
    auto at = line.find(tag);
    if (at == std::string::npos)
      continue;
    try {
      out.push_back(std::stoull(line.substr(at + tag.size())));
    } catch (...) {
      // A line cut by a console write from the kernel: not a counter.
    }
  }
  return out;
}

/// Empty when the counters run 1, 2, 3... without a gap, a repeat or a restart (the guest
/// ran exactly once, without a reboot); else what is wrong.
inline std::string heartbeat_problem(const std::vector<uint64_t>& beats) {
  if (beats.empty())
    return "no heartbeat at all";
  if (beats[0] != 1)
    return "first heartbeat is " + std::to_string(beats[0]);
  for (size_t i = 1; i < beats.size(); ++i)
    if (beats[i] != beats[i - 1] + 1)
      return "heartbeat " + std::to_string(beats[i - 1]) + " followed by " + std::to_string(beats[i])
             + " (line " + std::to_string(i + 1) + ")";
  return {};
}

inline uint64_t last_beat(const std::string& log) {
  auto b = heartbeats(log);
  return b.empty() ? 0 : b.back();
}

/// Waits until the guest counted past `n`: the log is read again each time a file of its
/// directory changes (inotify), until `timeout`.
inline bool wait_beat_past(const std::string& log, uint64_t n, std::chrono::milliseconds timeout) {
  return test::wait_in_dir(log.substr(0, log.find_last_of('/')),
                           [&] { return last_beat(log) > n; }, timeout);
}

// -- synchronous driver calls -----------------------------------------------------------------

template <class T, class F>
caf::expected<T> sync_call(F start) {
  auto p = std::make_shared<std::promise<caf::expected<T>>>();
  auto f = p->get_future();
  start([p](caf::expected<T> r) { p->set_value(std::move(r)); });
  return f.get();
}

/// Host name -> driver, for checks beside the engine.
struct host_drivers {
  std::map<std::string, hv::driver_ptr> by_host;

  explicit host_drivers(const real_hosts& h) {
    for (auto name : {"h1", "h2"}) {
      auto d = hv::open_libvirt_driver(h.uri(name));
      if (d)
        by_host[name] = *d;
    }
  }
  hv::domain_status status(const std::string& host, const std::string& vm) {
    auto r = sync_call<hv::domain_info>(
      [&](auto cb) { by_host.at(host)->query(vm, hv::call{"e2e/query", 20s}, cb); });
    return r ? r->status : hv::domain_status::crashed;
  }
  caf::expected<hv::domain_info> info(const std::string& host, const std::string& vm) {
    return sync_call<hv::domain_info>(
      [&](auto cb) { by_host.at(host)->query(vm, hv::call{"e2e/query", 20s}, cb); });
  }
  /// The hosts where the VM runs (running or paused).
  std::vector<std::string> running(const std::string& vm) {
    std::vector<std::string> out;
    for (auto& [h, d] : by_host) {
      auto s = status(h, vm);
      if (s == hv::domain_status::running || s == hv::domain_status::paused
          || s == hv::domain_status::migrating)
        out.push_back(h);
    }
    return out;
  }
  void destroy_everywhere(const std::string& vm) {
    for (auto& [h, d] : by_host)
      (void) sync_call<hv::done>([&](auto cb) { d->destroy(vm, hv::call{"e2e/cleanup", 30s}, cb); });
  }
};

/// A fleet file for the real hosts with one VM `vm` of type "tiny" on h1.
inline std::string fleet_text(const real_hosts& h, const std::string& vm, bool with_volume = false) {
  std::string f = R"(zones { name: "lab" }
vm_types { name: "tiny" vcpus: 1 memory_mib: 128 }
vm_types { name: "tiny-2" vcpus: 2 memory_mib: 128 }
policy { max_migration_s: 120 max_downtime_ms: 500 }
)";
  for (auto name : {"h1", "h2"})
    f += std::string{"hosts { name: \""} + name + "\" zone: \"lab\" driver: \"" + h.uri(name)
         + "\" peer_uri: \"" + h.peer_uri(name)
         + "\" capacity { vcpus: 8 memory_mib: 4096 slots: 8 } }\n";
  if (with_volume) {
    f += R"(partitions { name: "data-p0" zone: "lab" master: "store-1" replicas: "store-2" size_gib: 1 }
volumes { name: "data" zone: "lab" partitions: "data-p0" }
)";
  }
  f += "vms { name: \"" + vm + "\" type: \"tiny\" host: \"h1\""
       + (with_volume ? std::string{" volumes: \"data\""} : std::string{}) + " }\n";
  return f;
}

} // namespace ferry::e2e
