// ferry::hv libvirt driver — implements ferry::hv::driver with libvirt's C API for any libvirt
// URI (qemu+unix:///system?socket=…, qemu+tcp://host/system, test:///path/host.xml). It owns
// one connection to its URI (reopened when it dies) and, unless given a shared one, a
// call_pool. Every call runs on the pool's threads, never on the caller's (CAF's scheduler)
// thread, and is answered exactly once through with_deadline(): by its result, or by
// deadline_exceeded naming "<uri>: <op> <domain>". libvirt's errors are translated to
// ferry::errc in one place (libvirt_errors.cpp). The libvirt headers are not included here.
//
// Calls check the world before they act (start when running, destroy when absent, attach a
// disk whose target is present, migrate when the domain already runs on the destination:
// success). Live changes (vCPUs, memory, devices) affect the running domain only; on a
// shut-off domain they change its persistent definition.
//
// Destroying the driver waits for its calls in flight when it owns its pool (see
// call_pool.hpp: a hung call waits for libvirt's keepalive to give up on the connection).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "hypervisor/call_pool.hpp"
#include "hypervisor/driver.hpp"

namespace ferry::hv {

struct libvirt_driver_options {
  /// How long open_libvirt_driver() waits for the first connection. Default: 10 s
  std::chrono::milliseconds connect_timeout{10000};
  /// Seconds between keepalive probes on remote connections; 0 disables keepalive. The
  /// first driver that asks for keepalive starts libvirt's event loop on a process-wide
  /// thread (keepalive needs it; connections opened before it run without). Default: 5
  int keepalive_interval_s = 5;
  /// Unanswered probes after which libvirt closes a connection and its hung calls return.
  /// Default: 6
  unsigned keepalive_count = 6;
  /// How often a running migration's progress is polled. Default: 200 ms
  std::chrono::milliseconds progress_interval{200};
  /// The pool this driver makes when `pool` is empty. Default: call_pool_options{}
  call_pool_options pool_options;
  /// A pool shared with other drivers. Default: empty (the driver owns a pool)
  std::shared_ptr<call_pool> pool;
  /// Test hook: runs on the pool thread before each call's libvirt work, with the operation
  /// ("start") and the domain ("" for list). Default: empty
  std::function<void(const std::string& op, const std::string& domain)> before_call;
  /// Runs on the pool thread after each call's libvirt work, with the operation, the domain
  /// and how long the work took (metrics; the overhead a benchmark subtracts). Default: empty
  std::function<void(const std::string& op, const std::string& domain,
                     std::chrono::nanoseconds took)>
    after_call;
};

/// Connects to `uri` (on the call pool, waiting at most opts.connect_timeout) and returns a
/// driver for it. Errors: unavailable when libvirt cannot connect, deadline_exceeded when the
/// connection did not open in time.
caf::expected<driver_ptr> open_libvirt_driver(const std::string& uri,
                                              const libvirt_driver_options& opts = {});

} // namespace ferry::hv
