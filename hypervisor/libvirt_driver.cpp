// The libvirt driver: process setup (virInitialize, the event loop keepalive needs), the
// connection (session: one per driver, reopened when it died, with the lifecycle events of
// its domains when the event loop runs), the domain queries every call
// answers with, the lifecycle calls (define, config, start, pause, resume, destroy), disk
// snapshots, save and restore, query and list, and open_libvirt_driver(). Live changes are in
// libvirt_live.cpp, migration in libvirt_migrate.cpp, the domain XML in libvirt_xml.cpp, the
// translation of libvirt's errors in libvirt_errors.cpp; what they share is declared in
// libvirt_internal.hpp. The driver's calls only queue a job and return; every libvirt call
// here runs on a call_pool thread (libvirt's event loop, when keepalive asks for it, on a
// process-wide thread of its own).
#include "hypervisor/libvirt_driver.hpp"

#include <cstdlib>
#include <future>
#include <mutex>
#include <thread>

#include "hypervisor/libvirt_internal.hpp"

#include <cstdlib>

#include <libvirt/libvirt-qemu.h>

#include "common/thread_name.hpp"

namespace ferry::hv {

namespace libvirt_detail {

namespace {

// -- process setup ---------------------------------------------------------------------------

void ignore_error(void*, virErrorPtr) {
  // Errors are read per thread with virGetLastError(); libvirt must not print them.
}

/// virInitialize once; with keepalive, libvirt's default event loop on a thread of its own
/// (process-wide, never stopped: libvirt offers no way to unregister it).
void init_libvirt(bool event_loop) {
  static std::once_flag base;
  std::call_once(base, [] {
    virInitialize();
    virSetErrorFunc(nullptr, ignore_error);
  });
  if (!event_loop)
    return;
  static std::once_flag loop;
  std::call_once(loop, [] {
    if (virEventRegisterDefaultImpl() < 0) {
      virResetLastError();
      return;
    }
    std::thread t{[] {
      for (;;)
        if (virEventRunDefaultImpl() < 0)
          virResetLastError();
    }};
    name_thread(t, "ferry.virevent");
    t.detach();
  });
}

/// "test" for test:///x.xml, "qemu" for qemu+unix:///system.
std::string kind_of(const std::string& uri) {
  auto scheme = uri.substr(0, uri.find(':'));
  return scheme.substr(0, scheme.find('+'));
}

} // namespace

// -- the connection --------------------------------------------------------------------------

session::session(std::string uri, libvirt_driver_options opts)
  : uri_(std::move(uri)), kind_(kind_of(uri_)), opts_(std::move(opts)) {
  opts_.pool.reset(); // the driver holds the pool; jobs holding the session need not
}

session::~session() {
  if (conn_ != nullptr) {
    if (callback_ >= 0 && virConnectDomainEventDeregisterAny(conn_, callback_) < 0)
      virResetLastError();
    virConnectClose(conn_);
  }
}

namespace {

int on_lifecycle(virConnectPtr, virDomainPtr d, int event, int detail, void* opaque) {
  if (auto* name = virDomainGetName(d))
    static_cast<session*>(opaque)->record(name, event, detail);
  return 0;
}

} // namespace

bool session::events_on() const {
  std::lock_guard<std::mutex> g{ev_mtx_};
  return callback_ >= 0;
}

void session::record(const std::string& domain, int event, int detail) {
  {
    std::lock_guard<std::mutex> g{ev_mtx_};
    auto& q = events_[domain];
    q.push_back({event, detail, steady::now()});
    if (q.size() > 16)
      q.pop_front();
  }
  ev_cv_.notify_all();
}

bool session::wait_event(const std::string& domain, int event, int detail,
                         steady::time_point since, steady::time_point until) {
  std::unique_lock<std::mutex> lk{ev_mtx_};
  return ev_cv_.wait_until(lk, until, [&] {
    auto i = events_.find(domain);
    if (i == events_.end())
      return false;
    for (auto& e : i->second)
      if (e.event == event && e.detail == detail && e.at >= since)
        return true;
    return false;
  });
}

caf::expected<conn_ptr> session::connection() {
  std::lock_guard<std::mutex> g{mtx_};
  if (conn_ != nullptr && virConnectIsAlive(conn_) == 1) {
    virConnectRef(conn_);
    return conn_ptr{conn_};
  }
  if (conn_ != nullptr) {
    virConnectClose(conn_);
    conn_ = nullptr;
  }
  virResetLastError();
  auto c = virConnectOpen(uri_.c_str());
  if (c == nullptr)
    return last_error(make_op("connect", ""));
  if (opts_.keepalive_interval_s > 0
      && virConnectSetKeepAlive(c, opts_.keepalive_interval_s, opts_.keepalive_count) < 0)
    virResetLastError(); // local drivers (test://, qemu:///) have no keepalive
  // Lifecycle events need libvirt's event loop, which keepalive starts.
  int cb = -1;
  if (opts_.keepalive_interval_s > 0) {
    cb = virConnectDomainEventRegisterAny(c, nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                          VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), this,
                                          nullptr);
    if (cb < 0)
      virResetLastError();
  }
  {
    std::lock_guard<std::mutex> g{ev_mtx_};
    callback_ = cb;
  }
  conn_ = c;
  virConnectRef(conn_);
  return conn_ptr{conn_};
}

// -- domains -------------------------------------------------------------------------------

caf::expected<dom_ptr> lookup(virConnectPtr c, const std::string& name, const op& o) {
  dom_ptr d{virDomainLookupByName(c, name.c_str())};
  if (!d)
    return last_error(o);
  return d;
}

bool is_active(virDomainPtr d) {
  auto r = virDomainIsActive(d);
  if (r < 0)
    virResetLastError();
  return r == 1;
}

caf::expected<int> state_of(virDomainPtr d, const op& o) {
  int state = 0;
  int reason = 0;
  if (virDomainGetState(d, &state, &reason, 0) < 0)
    return last_error(o);
  return state;
}

caf::expected<std::string> xml_of(virDomainPtr d, unsigned flags, const op& o) {
  text_ptr x{virDomainGetXMLDesc(d, flags)};
  if (!x)
    return last_error(o);
  return std::string{x.get()};
}

/// The domain's XML as its live changes see it: live when it runs, persistent otherwise.
caf::expected<std::string> current_xml(virDomainPtr d, const op& o) {
  return xml_of(d, is_active(d) ? 0 : VIR_DOMAIN_XML_INACTIVE, o);
}

bool migrating_out(virDomainPtr d) {
  int type = VIR_DOMAIN_JOB_NONE;
  params ps;
  if (virDomainGetJobStats(d, &type, &ps.p, &ps.n, 0) < 0) {
    virResetLastError();
    return false;
  }
  int operation = 0;
  if (virTypedParamsGetInt(ps.p, ps.n, VIR_DOMAIN_JOB_OPERATION, &operation) != 1)
    virResetLastError();
  return type != VIR_DOMAIN_JOB_NONE && operation == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT;
}

namespace {

domain_status status_of(int state) {
  switch (state) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED:
    case VIR_DOMAIN_SHUTDOWN:
      return domain_status::running;
    case VIR_DOMAIN_PAUSED:
    case VIR_DOMAIN_PMSUSPENDED:
      return domain_status::paused;
    case VIR_DOMAIN_CRASHED:
      return domain_status::crashed;
    default:
      return domain_status::shut_off;
  }
}

} // namespace

caf::expected<domain_info> info_of(virDomainPtr d, const op& o) {
  auto state = state_of(d, o);
  if (!state)
    return state.error();
  virDomainInfo vi;
  if (virDomainGetInfo(d, &vi) < 0)
    return last_error(o);
  auto xml = xml_of(d, 0, o);
  if (!xml)
    return xml.error();
  auto parsed = parse_domain(*xml);
  domain_info i;
  i.name = virDomainGetName(d);
  i.status = status_of(*state);
  if ((i.status == domain_status::running || i.status == domain_status::paused)
      && migrating_out(d))
    i.status = domain_status::migrating;
  i.vcpus = vi.nrVirtCpu;
  i.memory_mib = vi.memory / 1024;
  i.disks = std::move(parsed.cfg.disks);
  i.nics = std::move(parsed.cfg.nics);
  return i;
}

caf::expected<domain_info> info_of(virConnectPtr c, const std::string& name, const op& o) {
  auto d = lookup(c, name, o);
  if (!d)
    return d.error();
  return info_of(d->get(), o);
}

// -- the driver --------------------------------------------------------------------------------

libvirt_driver::libvirt_driver(std::shared_ptr<session> s, std::shared_ptr<call_pool> pool)
  : s_(std::move(s)), pool_(std::move(pool)) {
}

const std::string& libvirt_driver::uri() const {
  return s_->uri();
}

void libvirt_driver::define(const domain_config& cfg, const call& c, reply<domain_info> r) {
  run<domain_info>("define", cfg.name, c, std::move(r),
                   [cfg](virConnectPtr conn, session& s, const op& o)
                     -> caf::expected<domain_info> {
                     if (cfg.name.empty())
                       return fail(errc::invalid_argument, o, "the configuration has no name");
                     auto d = lookup(conn, cfg.name, o);
                     if (d)
                       return info_of(d->get(), o);
                     if (code_of(d.error()) != errc::not_found)
                       return d.error();
                     if (!cfg.native.empty()) {
                       auto named = parse_domain(cfg.native).name;
                       if (named != cfg.name)
                         return fail(errc::invalid_argument, o,
                                     "the native XML names domain \"" + named + "\"");
                     }
                     auto xml = cfg.native.empty() ? domain_xml(cfg, o.kind) : cfg.native;
                     dom_ptr defined{virDomainDefineXML(conn, xml.c_str())};
                     if (!defined)
                       return last_error(o);
                     return info_of(defined.get(), o);
                   });
}

void libvirt_driver::config(const std::string& name, const call& c, reply<domain_config> r) {
  run<domain_config>("config", name, c, std::move(r),
                     [name](virConnectPtr conn, session&, const op& o)
                       -> caf::expected<domain_config> {
                       auto d = lookup(conn, name, o);
                       if (!d)
                         return d.error();
                       auto xml = xml_of(d->get(),
                                         VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE, o);
                       if (!xml)
                         return xml.error();
                       auto cfg = parse_domain(*xml).cfg;
                       cfg.native = std::move(*xml);
                       return cfg;
                     });
}

void libvirt_driver::start(const std::string& name, const call& c, reply<domain_info> r) {
  on_domain("start", name, c, std::move(r), [](virDomainPtr d, const op& o) -> caf::error {
    // Running or paused: started already.
    if (!is_active(d) && virDomainCreate(d) < 0)
      return last_error(o);
    return caf::none;
  });
}

void libvirt_driver::pause(const std::string& name, const call& c, reply<domain_info> r) {
  on_domain("pause", name, c, std::move(r), [](virDomainPtr d, const op& o) -> caf::error {
    auto state = state_of(d, o);
    if (!state)
      return state.error();
    if (*state == VIR_DOMAIN_PAUSED)
      return caf::none;
    if (!is_active(d))
      return fail(errc::failed_precondition, o, "domain is not running");
    return virDomainSuspend(d) < 0 ? last_error(o) : caf::none;
  });
}

void libvirt_driver::resume(const std::string& name, const call& c, reply<domain_info> r) {
  on_domain("resume", name, c, std::move(r), [](virDomainPtr d, const op& o) -> caf::error {
    auto state = state_of(d, o);
    if (!state)
      return state.error();
    if (*state == VIR_DOMAIN_RUNNING)
      return caf::none;
    if (!is_active(d))
      return fail(errc::failed_precondition, o, "domain is not running");
    return virDomainResume(d) < 0 ? last_error(o) : caf::none;
  });
}

void libvirt_driver::stop(const std::string& name, const call& c, reply<domain_info> r) {
  on_domain("stop", name, c, std::move(r), [](virDomainPtr d, const op& o) -> caf::error {
    if (!is_active(d))
      return caf::none;
    if (virDomainDestroy(d) < 0) {
      auto err = last_error(o);
      if (code_of(err) != errc::failed_precondition) // stopped meanwhile
        return err;
    }
    return caf::none;
  });
}

void libvirt_driver::transfer(const transfer_request& req, const call& c,
                              reply<transfer_result> r) {
  run<transfer_result>("transfer", req.domain, c, std::move(r),
                       [what = req.what](virConnectPtr, session&,
                                         const op& o) -> caf::expected<transfer_result> {
                         return fail(errc::unimplemented, o,
                                     "copying " + what
                                       + " between hosts outside a migration is not "
                                         "supported by the libvirt driver (use copy_storage "
                                         "in the migration)");
                       });
}

void libvirt_driver::agent_command(const std::string& name, const std::string& command,
                                   const call& c, reply<std::string> r) {
  auto seconds = static_cast<int>(std::max<int64_t>(1, c.timeout.count() / 1000));
  run<std::string>("agent_command", name, c, std::move(r),
                   [name, command, seconds](virConnectPtr conn, session&,
                                            const op& o) -> caf::expected<std::string> {
                     auto d = lookup(conn, name, o);
                     if (!d)
                       return d.error();
                     if (!is_active(d->get()))
                       return fail(errc::failed_precondition, o, "domain is not running");
                     char* out = virDomainQemuAgentCommand(d->get(), command.c_str(), seconds, 0);
                     if (out == nullptr)
                       return last_error(o);
                     std::string answer{out};
                     free(out);
                     return answer;
                   });
}

void libvirt_driver::destroy(const std::string& name, const call& c, reply<done> r) {
  run<done>("destroy", name, c, std::move(r),
            [name](virConnectPtr conn, session&, const op& o) -> caf::expected<done> {
              auto d = lookup(conn, name, o);
              if (!d)
                return code_of(d.error()) == errc::not_found ? caf::expected<done>{done{}}
                                                               : d.error();
              if (is_active(d->get()) && virDomainDestroy(d->get()) < 0) {
                auto err = last_error(o);
                if (code_of(err) != errc::failed_precondition) // stopped meanwhile
                  return err;
              }
              auto persistent = virDomainIsPersistent(d->get());
              if (persistent < 0)
                virResetLastError(); // a transient domain is gone once destroyed
              if (persistent != 1)
                return done{};
              // The test driver accepts only these two; qemu also has checkpoints and
              // NVRAM, which must go with the domain.
              unsigned flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                               | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
              if (o.kind != "test")
                flags |= VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM;
              if (virDomainUndefineFlags(d->get(), flags) < 0) {
                auto err = last_error(o);
                if (code_of(err) != errc::not_found)
                  return err;
              }
              return done{};
            });
}

void libvirt_driver::snapshot_disk(const std::string& name, const std::string& target,
                                   const std::string& snapshot, const call& c, reply<done> r) {
  run<done>("snapshot_disk", name, c, std::move(r),
            [name, target, snapshot](virConnectPtr conn, session&,
                                     const op& o) -> caf::expected<done> {
              auto d = lookup(conn, name, o);
              if (!d)
                return d.error();
              if (virDomainSnapshotPtr old =
                    virDomainSnapshotLookupByName(d->get(), snapshot.c_str(), 0)) {
                virDomainSnapshotFree(old);
                return done{};
              }
              if (auto err = last_error(o); code_of(err) != errc::not_found)
                return err;
              auto xml = current_xml(d->get(), o);
              if (!xml)
                return xml.error();
              auto parsed = parse_domain(*xml);
              if (find_disk(parsed, target) < 0)
                return fail(errc::not_found, o, "no disk with target " + target);
              std::string x = "<domainsnapshot><name>" + escape(snapshot) + "</name><disks>";
              for (auto& disk : parsed.cfg.disks)
                x += "<disk name='" + escape(disk.target) + "' snapshot='"
                     + (disk.target == target ? "external" : "no") + "'/>";
              x += "</disks></domainsnapshot>";
              unsigned flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY;
              if (is_active(d->get()))
                flags |= VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
              auto snap = virDomainSnapshotCreateXML(d->get(), x.c_str(), flags);
              if (snap == nullptr)
                return last_error(o);
              virDomainSnapshotFree(snap);
              return done{};
            });
}

void libvirt_driver::save(const std::string& name, const std::string& path, const call& c,
                          reply<done> r) {
  run<done>("save", name, c, std::move(r),
            [name, path](virConnectPtr conn, session&, const op& o) -> caf::expected<done> {
              auto d = lookup(conn, name, o);
              if (!d)
                return d.error();
              if (is_active(d->get()))
                return virDomainSave(d->get(), path.c_str()) < 0 ? last_error(o)
                                                                 : caf::expected<done>{done{}};
              // Stopped: saved already when `path` holds this domain's image.
              text_ptr image{virDomainSaveImageGetXMLDesc(conn, path.c_str(), 0)};
              if (image && parse_domain(image.get()).name == name)
                return done{};
              virResetLastError();
              return fail(errc::failed_precondition, o,
                          "domain is not running and " + path + " holds no image of it");
            });
}

void libvirt_driver::restore(const std::string& path, const call& c, reply<domain_info> r) {
  run<domain_info>("restore", path, c, std::move(r),
                   [path](virConnectPtr conn, session&, const op& o)
                     -> caf::expected<domain_info> {
                     text_ptr image{virDomainSaveImageGetXMLDesc(conn, path.c_str(), 0)};
                     if (!image)
                       return last_error(o);
                     auto name = parse_domain(image.get()).name;
                     // Running already: restored before.
                     if (auto d = lookup(conn, name, o); d && is_active(d->get()))
                       return info_of(d->get(), o);
                     virResetLastError();
                     if (virDomainRestore(conn, path.c_str()) < 0)
                       return last_error(o);
                     return info_of(conn, name, o);
                   });
}

void libvirt_driver::query(const std::string& name, const call& c, reply<domain_info> r) {
  run<domain_info>("query", name, c, std::move(r),
                   [name](virConnectPtr conn, session&, const op& o)
                     -> caf::expected<domain_info> {
                     auto d = lookup(conn, name, o);
                     if (!d && code_of(d.error()) == errc::not_found) {
                       domain_info absent;
                       absent.name = name;
                       return absent;
                     }
                     if (!d)
                       return d.error();
                     return info_of(d->get(), o);
                   });
}

void libvirt_driver::list(const call& c, reply<std::vector<domain_info>> r) {
  run<std::vector<domain_info>>(
    "list", "", c, std::move(r),
    [](virConnectPtr conn, session&, const op& o) -> caf::expected<std::vector<domain_info>> {
      virDomainPtr* doms = nullptr;
      auto n = virConnectListAllDomains(conn, &doms, 0);
      if (n < 0)
        return last_error(o);
      std::vector<dom_ptr> owned;
      for (int i = 0; i < n; ++i)
        owned.emplace_back(doms[i]);
      std::free(doms);
      std::vector<domain_info> out;
      for (auto& d : owned) {
        auto i = info_of(d.get(), o);
        if (i)
          out.push_back(std::move(*i));
        else if (code_of(i.error()) != errc::not_found) // undefined meanwhile
          return i.error();
      }
      return out;
    });
}

} // namespace libvirt_detail

caf::expected<driver_ptr> open_libvirt_driver(const std::string& uri,
                                              const libvirt_driver_options& opts) {
  libvirt_detail::init_libvirt(opts.keepalive_interval_s > 0);
  auto pool = opts.pool ? opts.pool : std::make_shared<call_pool>(opts.pool_options);
  auto s = std::make_shared<libvirt_detail::session>(uri, opts);
  auto opened = std::make_shared<std::promise<caf::error>>();
  auto result = opened->get_future();
  // The job holds the pool: if the wait below gives up, this function's reference goes and
  // the pool ends on its own thread once virConnectOpen returns, without blocking here.
  pool->submit([s, opened, pool] {
    auto conn = s->connection();
    opened->set_value(conn ? caf::error{} : conn.error());
  });
  if (result.wait_for(opts.connect_timeout) != std::future_status::ready)
    return make_error(errc::deadline_exceeded,
                      uri + ": connect: no answer within "
                        + std::to_string(opts.connect_timeout.count()) + " ms");
  if (auto err = result.get())
    return err;
  return driver_ptr{
    std::make_shared<libvirt_detail::libvirt_driver>(std::move(s), std::move(pool))};
}

} // namespace ferry::hv
