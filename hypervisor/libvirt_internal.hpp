// The libvirt driver's private header: what its files share. Only hypervisor/libvirt*.cpp
// include it (libvirt_driver.cpp, libvirt_errors.cpp, libvirt_xml.cpp, libvirt_live.cpp,
// libvirt_migrate.cpp); no other header or component may. It includes <libvirt/...>, which is
// allowed only in hypervisor/libvirt*.cpp and here; the rest of Ferry sees the driver through
// libvirt_driver.hpp, which does not.
//
// It declares the libvirt handles, the one translation of virErrorPtr (libvirt_errors.cpp),
// the domain XML writer and scanner (libvirt_xml.cpp), the connection (session) and the
// domain queries (libvirt_driver.cpp), and the driver class, whose calls are defined by
// concern: lifecycle and the rest in libvirt_driver.cpp, vCPUs, memory and devices in
// libvirt_live.cpp, migrate, progress polling and abort in libvirt_migrate.cpp. It owns no
// state; a session is shared by its driver and the driver's jobs. The driver's calls only
// queue a job and return; everything else declared here runs on a call_pool thread.
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "hypervisor/call_pool.hpp"
#include "hypervisor/deadline.hpp"
#include "hypervisor/driver.hpp"
#include "hypervisor/libvirt_driver.hpp"

namespace ferry::hv::libvirt_detail {

using steady = std::chrono::steady_clock;

// -- libvirt handles -------------------------------------------------------------------------

struct conn_closer {
  void operator()(virConnectPtr c) const {
    virConnectClose(c);
  }
};
using conn_ptr = std::unique_ptr<virConnect, conn_closer>;

struct dom_freer {
  void operator()(virDomainPtr d) const {
    virDomainFree(d);
  }
};
using dom_ptr = std::unique_ptr<virDomain, dom_freer>;

struct text_freer {
  void operator()(char* p) const {
    std::free(p);
  }
};
using text_ptr = std::unique_ptr<char, text_freer>;

/// Typed parameters, freed on scope exit.
struct params {
  virTypedParameterPtr p = nullptr;
  int n = 0;
  int max = 0;
  params() = default;
  params(const params&) = delete;
  params& operator=(const params&) = delete;
  ~params() {
    virTypedParamsFree(p, n);
  }
  uint64_t get(const char* name, uint64_t fallback = 0) const {
    unsigned long long v = 0;
    if (virTypedParamsGetULLong(p, n, name, &v) == 1)
      return v;
    virResetLastError();
    return fallback;
  }
};

// -- errors (libvirt_errors.cpp) ---------------------------------------------------------------

/// One call: the host, the operation and its domain, for messages.
struct op {
  std::string uri;
  std::string kind;
  std::string name;
  std::string domain;

  std::string what() const {
    return uri + ": " + name + (domain.empty() ? "" : " " + domain);
  }
};

/// `code` with the message "<uri>: <op> <domain>: <why>".
caf::error fail(errc code, const op& o, const std::string& why);

/// The one place a virErrorPtr becomes a Ferry error: this thread's last libvirt error, for
/// the call `o`. Resets it.
caf::error last_error(const op& o);

// -- domain XML (libvirt_xml.cpp) ------------------------------------------------------------
// Reads what libvirt writes (attributes quoted, '<' and '>' escaped in values); not a general
// XML parser.

/// `s` with XML's five special characters as entities, for attribute values and text.
std::string escape(std::string_view s);

/// What Ferry reads from a domain XML; the device elements are kept for detach.
struct parsed_domain {
  std::string name;
  domain_config cfg;
  std::vector<std::string> disk_elements;
  std::vector<std::string> nic_elements;
};

parsed_domain parse_domain(std::string_view xml);

/// Index of the disk with target `target`, or -1.
int find_disk(const parsed_domain& d, const std::string& target);

/// Index of the NIC with MAC address `mac` (compared without case), or -1.
int find_nic(const parsed_domain& d, const std::string& mac);

/// The `<disk>` element for `d` (qcow2 when the source ends in ".qcow2", raw otherwise).
std::string disk_xml(const disk_spec& d);

/// The `<interface>` element for `n` (user networking when its network is empty or "user").
std::string nic_xml(const nic_spec& n);

/// A domain XML built from the configuration's fields, for a host of kind `kind` ("qemu"
/// gives type='qemu', never kvm; the test driver takes type='test').
std::string domain_xml(const domain_config& cfg, const std::string& kind);

// -- the connection (libvirt_driver.cpp) -------------------------------------------------------

/// The driver's connection and options, shared by its jobs (they may outlive the driver).
class session {
public:
  session(std::string uri, libvirt_driver_options opts);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  const std::string& uri() const {
    return uri_;
  }
  const libvirt_driver_options& opts() const {
    return opts_;
  }
  op make_op(std::string name, std::string domain) const {
    return op{uri_, kind_, std::move(name), std::move(domain)};
  }

  /// The live connection (a reference of the caller's), reopened when it died. Calls wait
  /// here while one of them reopens it; their deadlines answer them meanwhile.
  caf::expected<conn_ptr> connection();

  // Lifecycle events of this host's domains (VIR_DOMAIN_EVENT_*), as libvirt sends them on
  // the connection; only when libvirt's event loop runs (keepalive on). Each domain keeps its
  // last few.

  /// Whether events are received on the current connection.
  bool events_on() const;
  /// Called from libvirt's event loop.
  void record(const std::string& domain, int event, int detail);
  /// Waits until `domain` had event (`event`, `detail`) at or after `since`, or `until`.
  bool wait_event(const std::string& domain, int event, int detail, steady::time_point since,
                  steady::time_point until);

private:
  struct lifecycle_event {
    int event;
    int detail;
    steady::time_point at;
  };

  std::string uri_;
  std::string kind_;
  libvirt_driver_options opts_;
  std::mutex mtx_;
  virConnectPtr conn_ = nullptr;
  int callback_ = -1;
  mutable std::mutex ev_mtx_;
  std::condition_variable ev_cv_;
  std::map<std::string, std::deque<lifecycle_event>> events_;
};

// -- domains (libvirt_driver.cpp) --------------------------------------------------------------

caf::expected<dom_ptr> lookup(virConnectPtr c, const std::string& name, const op& o);

bool is_active(virDomainPtr d);

/// Whether an outgoing migration job runs (one an earlier attempt started, before a
/// controller crash: libvirt drives a peer-to-peer migration on its own). Drivers without
/// job statistics: no.
bool migrating_out(virDomainPtr d);

caf::expected<int> state_of(virDomainPtr d, const op& o);

caf::expected<std::string> xml_of(virDomainPtr d, unsigned flags, const op& o);

/// The domain's XML as its live changes see it: live when it runs, persistent otherwise.
caf::expected<std::string> current_xml(virDomainPtr d, const op& o);

caf::expected<domain_info> info_of(virDomainPtr d, const op& o);

caf::expected<domain_info> info_of(virConnectPtr c, const std::string& name, const op& o);

// -- the driver --------------------------------------------------------------------------------

class libvirt_driver final : public driver {
public:
  libvirt_driver(std::shared_ptr<session> s, std::shared_ptr<call_pool> pool);

  const std::string& uri() const override;

  // Lifecycle and the rest (libvirt_driver.cpp).
  void define(const domain_config& cfg, const call& c, reply<domain_info> r) override;
  void config(const std::string& name, const call& c, reply<domain_config> r) override;
  void start(const std::string& name, const call& c, reply<domain_info> r) override;
  void pause(const std::string& name, const call& c, reply<domain_info> r) override;
  void resume(const std::string& name, const call& c, reply<domain_info> r) override;
  void stop(const std::string& name, const call& c, reply<domain_info> r) override;
  void destroy(const std::string& name, const call& c, reply<done> r) override;
  void transfer(const transfer_request& req, const call& c, reply<transfer_result> r) override;
  void agent_command(const std::string& name, const std::string& command, const call& c,
                     reply<std::string> r) override;
  void snapshot_disk(const std::string& name, const std::string& target,
                     const std::string& snapshot, const call& c, reply<done> r) override;
  void save(const std::string& name, const std::string& path, const call& c,
            reply<done> r) override;
  void restore(const std::string& path, const call& c, reply<domain_info> r) override;
  void query(const std::string& name, const call& c, reply<domain_info> r) override;
  void list(const call& c, reply<std::vector<domain_info>> r) override;

  // Live changes (libvirt_live.cpp).
  void set_vcpus(const std::string& name, uint32_t vcpus, const call& c,
                 reply<domain_info> r) override;
  void set_memory(const std::string& name, uint64_t mib, const call& c,
                  reply<domain_info> r) override;
  void attach_disk(const std::string& name, const disk_spec& disk, const call& c,
                   reply<domain_info> r) override;
  void detach_disk(const std::string& name, const std::string& target, const call& c,
                   reply<domain_info> r) override;
  void attach_nic(const std::string& name, const nic_spec& nic, const call& c,
                  reply<domain_info> r) override;
  void detach_nic(const std::string& name, const std::string& mac, const call& c,
                  reply<domain_info> r) override;

  // Migration (libvirt_migrate.cpp).
  void migrate(const migrate_request& req, const call& c, reply<migration_result> r) override;
  void abort_migration(const std::string& name, const call& c, reply<done> r) override;

private:
  /// Runs `body(conn, session, op)` on the pool and answers `r` once, under `c`'s deadline.
  /// A job that starts after its deadline does nothing (the caller was answered already).
  template <class T, class F>
  void run(const char* name, std::string domain, const call& c, reply<T> r, F body) {
    auto o = s_->make_op(name, std::move(domain));
    auto answer = with_deadline<T>(c, o.what(), std::move(r));
    auto due = steady::now() + c.timeout;
    pool_->submit([s = s_, o = std::move(o), answer = std::move(answer),
                   body = std::move(body), due] {
      if (steady::now() >= due) {
        answer(fail(errc::deadline_exceeded, o, "not started before its deadline"));
        return;
      }
      if (s->opts().before_call)
        s->opts().before_call(o.name, o.domain);
      auto t0 = steady::now();
      auto conn = s->connection();
      if (!conn) {
        answer(conn.error());
        return;
      }
      auto result = body(conn->get(), *s, o);
      if (s->opts().after_call)
        s->opts().after_call(o.name, o.domain, steady::now() - t0);
      answer(std::move(result));
    });
  }

  /// A call on an existing domain that changes it with `change(dom, op)` and answers with
  /// its info afterwards.
  template <class F>
  void on_domain(const char* name, const std::string& domain, const call& c,
                 reply<domain_info> r, F change) {
    run<domain_info>(name, domain, c, std::move(r),
                     [domain, change](virConnectPtr conn, session&, const op& o)
                       -> caf::expected<domain_info> {
                       auto d = lookup(conn, domain, o);
                       if (!d)
                         return d.error();
                       if (auto err = change(d->get(), o))
                         return err;
                       return info_of(d->get(), o);
                     });
  }

  /// Hot-plugs (`attach`) or unplugs a device: live when the domain runs, else persistent.
  static caf::error change_device(virDomainPtr d, const std::string& xml, bool attach,
                                  const op& o);

  std::shared_ptr<session> s_;
  std::shared_ptr<call_pool> pool_;
};

} // namespace ferry::hv::libvirt_detail
