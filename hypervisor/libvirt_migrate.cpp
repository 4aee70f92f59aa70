// The libvirt driver's migration: migrate() (a live, peer-to-peer migrateToURI3 to the
// destination's peer URI that persists the domain there and undefines it here, or leaves it
// paused there for a paused handover), the confirmation of where the domain ended (the
// source's Stopped(migrated) event or state, the destination asked through its control URI),
// following a migration an earlier attempt started (after a controller crash), its progress
// poller (job statistics, the switch to post-copy), and abort_migration(). It owns the state the migrate job and its
// poller share (migration_watch). Both run on call_pool threads: the migrate job blocks in
// virDomainMigrateToURI3 while the poller, a second pool job, polls every
// progress_interval until the migrate job ends; on_progress is called from the poller's thread.
#include "hypervisor/libvirt_internal.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

namespace ferry::hv::libvirt_detail {

namespace {

job_progress progress_of(const params& ps) {
  job_progress p;
  p.total_bytes = ps.get(VIR_DOMAIN_JOB_DATA_TOTAL);
  p.processed_bytes = ps.get(VIR_DOMAIN_JOB_DATA_PROCESSED);
  p.remaining_bytes = ps.get(VIR_DOMAIN_JOB_DATA_REMAINING);
  p.iteration = static_cast<uint32_t>(ps.get(VIR_DOMAIN_JOB_MEMORY_ITERATION));
  p.dirty_bytes_s = ps.get(VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE)
                    * ps.get(VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE, 4096);
  p.elapsed_ms = ps.get(VIR_DOMAIN_JOB_TIME_ELAPSED);
  return p;
}

/// What the migrate job and its progress poller share.
struct migration_watch {
  std::mutex mtx;
  std::condition_variable cv;
  bool started = false;
  bool done = false;
  bool postcopy = false;
  job_progress last;

  void finish() {
    {
      std::lock_guard<std::mutex> g{mtx};
      done = true;
    }
    cv.notify_all();
  }
};

/// Ends the watch when the migrate job is destroyed, however it ended (or if it never ran).
struct watch_end {
  std::shared_ptr<migration_watch> w;
  ~watch_end() {
    if (w)
      w->finish();
  }
};

/// Polls the running job every `interval` for progress; switches to post-copy after the
/// first pass when asked. Runs on its own pool job until the migrate job ends.
void poll_migration(session& s, const op& o, const migrate_request& req,
                    migration_watch& w) {
  auto conn = s.connection();
  if (!conn)
    return;
  dom_ptr d;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk{w.mtx};
      if (w.cv.wait_for(lk, s.opts().progress_interval, [&] { return w.done; }))
        return;
      if (!w.started)
        continue;
    }
    if (!d) {
      d.reset(virDomainLookupByName(conn->get(), req.domain.c_str()));
      if (!d) {
        virResetLastError();
        continue;
      }
    }
    int type = VIR_DOMAIN_JOB_NONE;
    params ps;
    if (virDomainGetJobStats(d.get(), &type, &ps.p, &ps.n, 0) < 0) {
      virResetLastError();
      continue;
    }
    if (type == VIR_DOMAIN_JOB_NONE)
      continue;
    auto p = progress_of(ps);
    bool switch_now = false;
    {
      std::lock_guard<std::mutex> g{w.mtx};
      w.last = p;
      switch_now = req.mode == migration_mode::postcopy && !w.postcopy && p.iteration >= 2;
    }
    if (req.on_progress)
      req.on_progress(p);
    if (switch_now) {
      if (virDomainMigrateStartPostCopy(d.get(), 0) == 0) {
        std::lock_guard<std::mutex> g{w.mtx};
        w.postcopy = true;
      } else {
        virResetLastError(); // retried at the next poll
      }
    }
  }
}

/// The destination's record of the finished job (downtime), best effort.
void read_completed(virDomainPtr d, migration_result& res) {
  int type = VIR_DOMAIN_JOB_NONE;
  params ps;
  if (virDomainGetJobStats(d, &type, &ps.p, &ps.n, VIR_DOMAIN_JOB_STATS_COMPLETED) < 0) {
    virResetLastError();
    return;
  }
  res.downtime_ms = ps.get(VIR_DOMAIN_JOB_DOWNTIME, res.downtime_ms);
  res.transferred_bytes = ps.get(VIR_DOMAIN_JOB_DATA_PROCESSED, res.transferred_bytes);
  res.iterations = static_cast<uint32_t>(ps.get(VIR_DOMAIN_JOB_MEMORY_ITERATION, res.iterations));
}

/// Whether `req.domain` is active on the destination; fills `res` from its completed job.
/// Asks the destination the way Ferry reaches it (destination_control_uri).
caf::expected<bool> active_on_destination(const migrate_request& req, migration_result& res,
                                          const op& o) {
  auto& uri = req.destination_control_uri.empty() ? req.destination_uri
                                                   : req.destination_control_uri;
  conn_ptr dc{virConnectOpen(uri.c_str())};
  if (!dc)
    return last_error(o);
  dom_ptr d{virDomainLookupByName(dc.get(), req.domain.c_str())};
  if (!d) {
    auto err = last_error(o);
    if (code_of(err) == errc::not_found)
      return false;
    return err;
  }
  if (!is_active(d.get()))
    return false;
  read_completed(d.get(), res);
  return true;
}

/// After libvirt reported the migration done: the source's Stopped(migrated) event (or, when
/// it does not come in time, the domain's state here) confirms the domain left this host.
caf::error confirm_left(session& s, virDomainPtr d, const migrate_request& req,
                        steady::time_point since, steady::time_point due, const op& o) {
  if (s.events_on())
    s.wait_event(req.domain, VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED, since,
                 std::min(due, steady::now() + std::chrono::seconds{5}));
  auto st = state_of(d, o);
  if (!st) // undefined here (not a paused handover): gone
    return code_of(st.error()) == errc::not_found ? caf::none : st.error();
  if (*st == VIR_DOMAIN_RUNNING || *st == VIR_DOMAIN_PAUSED)
    return fail(errc::internal, o,
                "libvirt reported the migration done but the domain still runs here");
  return caf::none;
}

caf::expected<migration_result> follow_earlier(virDomainPtr d, session& s,
                                               const migrate_request& req, migration_watch& w,
                                               steady::time_point due, const op& o) {
  {
    std::lock_guard<std::mutex> g{w.mtx};
    w.started = true; // the poller reports its progress meanwhile
  }
  auto t0 = steady::now();
  while (migrating_out(d)) {
    if (steady::now() >= due)
      return fail(errc::deadline_exceeded, o, "the migration an earlier attempt started still runs");
    std::unique_lock<std::mutex> lk{w.mtx};
    w.cv.wait_for(lk, s.opts().progress_interval);
  }
  migration_result res;
  res.mode = req.mode;
  auto there = active_on_destination(req, res, o);
  if (!there)
    return there.error();
  if (!*there)
    return fail(errc::unavailable, o, "the migration an earlier attempt started ended without "
                                      "the domain on the destination");
  if (auto err = confirm_left(s, d, req, t0, due, o))
    return err;
  return res;
}

caf::expected<migration_result> run_migration(virConnectPtr c, session& s,
                                              const migrate_request& req, migration_watch& w,
                                              steady::time_point due, const op& o) {
  migration_result res;
  res.mode = req.mode;
  auto d = lookup(c, req.domain, o);
  if (!d && code_of(d.error()) != errc::not_found)
    return d.error();
  if (!d || !is_active(d->get())) {
    // Not running here: a re-dispatch after the migration finished finds it there.
    auto there = active_on_destination(req, res, o);
    if (!there)
      return there.error();
    if (*there)
      return res;
    if (!d)
      return fail(errc::not_found, o, "domain is neither here nor running on "
                                        + req.destination_uri);
    return fail(errc::failed_precondition, o, "domain is not running");
  }
  if (migrating_out(d->get()))
    return follow_earlier(d->get(), s, req, w, due, o);
  if (virDomainMigrateSetMaxDowntime(d->get(), req.max_downtime_ms, 0) < 0)
    return last_error(o);
  params ps;
  if (!req.migrate_uri.empty()
      && virTypedParamsAddString(&ps.p, &ps.n, &ps.max, VIR_MIGRATE_PARAM_URI,
                                 req.migrate_uri.c_str()) < 0)
    return last_error(o);
  if (req.bandwidth_mib_s > 0
      && virTypedParamsAddULLong(&ps.p, &ps.n, &ps.max, VIR_MIGRATE_PARAM_BANDWIDTH,
                                 req.bandwidth_mib_s) < 0)
    return last_error(o);
  unsigned flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST;
  // A paused handover ends paused on the destination and keeps the source's definition, so
  // the source can be started again if the caller does not resume the destination. libvirt
  // cannot pause a post-copy migration: there the destination runs from the switch on (past
  // it, the source's memory is no longer whole), and only the definition is kept.
  if (!req.paused_handover)
    flags |= VIR_MIGRATE_UNDEFINE_SOURCE;
  else if (req.mode != migration_mode::postcopy)
    flags |= VIR_MIGRATE_PAUSED;
  if (req.mode == migration_mode::postcopy)
    flags |= VIR_MIGRATE_POSTCOPY;
  // Disks that are not copied are network volumes both hosts see; Ferry's storage leases
  // (one PRIMARY per partition) keep a single writer, which libvirt cannot check.
  flags |= req.copy_storage ? VIR_MIGRATE_NON_SHARED_DISK : VIR_MIGRATE_UNSAFE;
  {
    std::lock_guard<std::mutex> g{w.mtx};
    w.started = true;
  }
  auto t0 = steady::now();
  auto rc = virDomainMigrateToURI3(d->get(), req.destination_uri.c_str(), ps.p, ps.n, flags);
  res.duration_ms = static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count());
  if (rc < 0)
    return last_error(o);
  if (auto err = confirm_left(s, d->get(), req, t0, due, o))
    return err;
  {
    std::lock_guard<std::mutex> g{w.mtx};
    res.transferred_bytes = w.last.processed_bytes;
    res.iterations = w.last.iteration;
    res.mode = w.postcopy ? migration_mode::postcopy : migration_mode::precopy;
  }
  migration_result completed = res;
  if (auto there = active_on_destination(req, completed, o); there && *there)
    res = completed;
  res.duration_ms = std::max(res.duration_ms, completed.duration_ms);
  return res;
}

} // namespace

void libvirt_driver::migrate(const migrate_request& req, const call& c, reply<migration_result> r) {
  auto w = std::make_shared<migration_watch>();
  auto end = std::make_shared<watch_end>();
  end->w = w;
  auto due = steady::now() + c.timeout;
  run<migration_result>("migrate", req.domain, c, std::move(r),
                        [req, w, end, due](virConnectPtr conn, session& s, const op& o) {
                          return run_migration(conn, s, req, *w, due, o);
                        });
  pool_->submit([s = s_, req, w] {
    poll_migration(*s, s->make_op("migrate", req.domain), req, *w);
  });
}

void libvirt_driver::abort_migration(const std::string& name, const call& c, reply<done> r) {
  run<done>("abort_migration", name, c, std::move(r),
            [name](virConnectPtr conn, session&, const op& o) -> caf::expected<done> {
              auto d = lookup(conn, name, o);
              if (!d)
                return d.error();
              if (virDomainAbortJob(d->get()) < 0) {
                auto err = last_error(o);
                // "no job is active": nothing to abort, the domain stays here.
                if (code_of(err) != errc::failed_precondition)
                  return err;
              }
              return done{};
            });
}

} // namespace ferry::hv::libvirt_detail
