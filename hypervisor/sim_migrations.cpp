// sim_world, the migrations in flight: starting one (or rejoining it for the same key) and
// aborting it, the fluid bandwidth model (concurrent migrations share the NICs and the links
// between zones), stepping each one's precopy_job through virtual time, and its progress,
// post-copy switch, finish and failure. Owns, of sim_world's state: migrations_,
// next_migration_, finished_ (answers a re-dispatch after the finish) and the migration
// counters of metrics_; moves domains between hosts as migrations switch, finish or fail.
//
// Threads: migrate() and abort_migration() come from any thread and only schedule the call.
// Everything else runs with mtx_ held, on the thread stepping the world (the caller of
// advance() or run_until_idle() with the manual clock, the world thread with scaled real
// time); replies and progress are collected in `out` and run after mtx_ is released.
#include "hypervisor/sim_world.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ferry::hv {

namespace {

constexpr double mib = 1024.0 * 1024.0;

} // namespace

// -- starting and aborting --------------------------------------------------------------

void sim_world::migrate(const std::string& host_uri, migrate_request req, std::string key,
                        reply<migration_result> r) {
  std::lock_guard<std::mutex> g(mtx_);
  schedule(clock_us(), [this, host_uri, req = std::move(req), key = std::move(key),
                        r = std::move(r)](deliveries& out) mutable {
    begin_migration(host_uri, req, key, r, out);
  });
}

void sim_world::abort_migration(const std::string& host_uri, const std::string& name,
                                reply<done> r) {
  std::lock_guard<std::mutex> g(mtx_);
  schedule(clock_us(), [this, host_uri, name, r = std::move(r)](deliveries& out) mutable {
    begin_abort(host_uri, name, r, out);
  });
}

void sim_world::begin_migration(const std::string& host_uri, migrate_request& req,
                                const std::string& key, reply<migration_result>& r,
                                deliveries& out) {
  auto fail = [&out, &r](errc code, std::string msg) {
    out.push_back([r, e = make_error(code, std::move(msg))] { r(e); });
  };
  auto what = "migrate " + req.domain + " from " + host_uri + " to " + req.destination_uri;
  auto* src = find_host(host_uri);
  if (src == nullptr)
    return fail(errc::not_found, host_uri + ": no such host");
  caf::error err;
  caf::error lost;
  bool hang = false;
  if (take_fault(*src, "migrate", err, hang, lost, out) && hang)
    return;
  if (err)
    return out.push_back([r, err] { r(err); });
  if (lost) // the migration goes on; its answer, whatever it is, is lost
    r = [r, lost](caf::expected<migration_result>) { r(lost); };
  if (!src->up)
    return fail(errc::unavailable, host_uri + ": host is down");
  auto* dst = find_host(req.destination_uri);
  if (dst == nullptr)
    return fail(errc::invalid_argument, what + ": no such destination host");
  if (dst == src)
    return fail(errc::invalid_argument, what + ": the destination is the source");
  if (!dst->up)
    return fail(errc::unavailable, what + ": " + dst->uri + " is down");
  auto s = src->domains.find(req.domain);
  auto d = dst->domains.find(req.domain);
  bool on_src = s != src->domains.end() && active(s->second.status);
  bool on_dst = d != dst->domains.end() && active(d->second.status);
  if (on_src && s->second.status == domain_status::migrating) {
    for (auto& [id, m] : migrations_)
      if (m.src == host_uri && m.domain == req.domain) {
        if (!key.empty() && m.key == key) {
          m.replies.push_back(std::move(r)); // a re-dispatch joins the migration in flight
          return;
        }
        return fail(errc::failed_precondition, what + ": already migrating to " + m.dst);
      }
  }
  // A re-dispatch after the migration finished: the domain runs there already, or, after a
  // paused handover, waits paused on both sides for the caller's decision. Answered with the
  // finished migration's result when the key is known.
  bool handed_over = on_src && on_dst && req.paused_handover
                     && s->second.status == domain_status::paused
                     && d->second.status == domain_status::paused;
  if ((!on_src && on_dst) || handed_over) {
    migration_result res;
    res.mode = req.mode;
    auto f = finished_.find(key);
    if (!key.empty() && f != finished_.end() && f->second.domain == req.domain
        && f->second.dst == dst->uri)
      res = f->second.result;
    return out.push_back([r, res] { r(res); });
  }
  if (on_src && on_dst)
    return fail(errc::failed_precondition, what + ": the domain runs on both hosts");
  if (s == src->domains.end())
    return fail(errc::not_found, what + ": no such domain");
  if (!on_src)
    return fail(errc::failed_precondition,
                what + ": the domain is " + to_string(s->second.status) + ", not running");
  auto& cfg = s->second.config;
  precopy_input in;
  in.memory_bytes = cfg.memory_mib * 1024 * 1024;
  in.dirty_bytes_s = s->second.status == domain_status::paused ? 0 : cfg.dirty_mib_s * mib;
  in.max_downtime_ms = req.max_downtime_ms;
  in.max_iterations = opts_.max_iterations;
  in.switch_overhead_ms = opts_.switch_overhead_ms;
  if (req.copy_storage)
    for (auto& disk : cfg.disks)
      if (disk.local)
        in.storage_bytes += disk.size_bytes;
  migration m{key,
              req.domain,
              host_uri,
              dst->uri,
              cfg,
              s->second.status,
              req.paused_handover,
              precopy_job{in, req.mode},
              static_cast<double>(req.bandwidth_mib_s) * mib,
              0,
              {"tx:" + host_uri, "rx:" + dst->uri},
              {},
              std::move(req.on_progress)};
  if (src->zone != dst->zone)
    m.resources.push_back("link:" + link_key(src->zone, dst->zone));
  m.replies.push_back(std::move(r));
  s->second.status = domain_status::migrating;
  migrations_.emplace(next_migration_++, std::move(m));
  ++metrics_.migrations_started;
  recompute_rates();
}

void sim_world::begin_abort(const std::string& host_uri, const std::string& name,
                            reply<done>& r, deliveries& out) {
  auto fail = [&out, &r](caf::error e) { out.push_back([r, e] { r(e); }); };
  auto* h = find_host(host_uri);
  if (h == nullptr)
    return fail(make_error(errc::not_found, host_uri + ": no such host"));
  caf::error err;
  caf::error lost;
  bool hang = false;
  if (take_fault(*h, "abort_migration", err, hang, lost, out) && hang)
    return;
  if (err)
    return fail(std::move(err));
  if (lost)
    r = [r, lost](caf::expected<done>) { r(lost); };
  if (!h->up)
    return fail(make_error(errc::unavailable, host_uri + ": host is down"));
  for (auto& [id, m] : migrations_) {
    if (m.src != host_uri || m.domain != name)
      continue;
    if (m.job.switched())
      return fail(make_error(errc::failed_precondition,
                             "migration of " + name + " to " + m.dst
                               + ": post-copy has switched to the destination; it can no "
                                 "longer be aborted"));
    fail_migration(id,
                   make_error(errc::cancelled,
                              "migration of " + name + " from " + host_uri + " to " + m.dst
                                + ": aborted"),
                   true, out);
    break;
  }
  out.push_back([r] { r(done{}); });
}

// -- the fluid model --------------------------------------------------------------------

void sim_world::transfer_progress(uint32_t ms, uint64_t bytes,
                                  std::function<void(const job_progress&)> f) {
  if (!f || ms == 0)
    return;
  std::lock_guard<std::mutex> g(mtx_);
  auto start = clock_us();
  // Up to 80%: an operation may take a tenth less than its nominal time (jitter), and a
  // report never comes after the copy's end.
  for (uint64_t k = 1; k <= 8; ++k) {
    job_progress p;
    p.total_bytes = bytes;
    p.processed_bytes = bytes / 10 * k;
    p.remaining_bytes = bytes - p.processed_bytes;
    p.iteration = 1;
    p.elapsed_ms = ms * k / 10;
    schedule(start + uint64_t{ms} * 100 * k,
             [f, p](deliveries& out) { out.push_back([f, p] { f(p); }); });
  }
}

uint32_t sim_world::transfer_ms(const std::string& src_uri, const std::string& dst_uri,
                                uint64_t wire_bytes) const {
  std::lock_guard<std::mutex> g(mtx_);
  auto* s = find_host(src_uri);
  auto* d = find_host(dst_uri);
  double rate = opts_.nic_bytes_s;
  if (s != nullptr)
    rate = std::min(rate, s->nic_bytes_s);
  if (d != nullptr)
    rate = std::min(rate, d->nic_bytes_s);
  if (s != nullptr && d != nullptr && s->zone != d->zone)
    rate = std::min(rate, capacity("link:" + link_key(s->zone, d->zone)));
  auto ms = rate > 0 ? static_cast<double>(wire_bytes) / rate * 1000.0 : 0.0;
  return opts_.transfer_setup_ms + static_cast<uint32_t>(std::min(ms, 4.0e9));
}

double sim_world::capacity(const std::string& resource) const {
  auto colon = resource.find(':');
  auto kind = resource.substr(0, colon);
  auto name = resource.substr(colon + 1);
  if (kind == "link") {
    auto i = links_.find(name);
    return i == links_.end() ? opts_.link_bytes_s : i->second;
  }
  auto* h = find_host(name);
  return h == nullptr ? 0 : h->nic_bytes_s;
}

void sim_world::recompute_rates() {
  std::map<std::string, uint32_t> users;
  for (auto& [id, m] : migrations_)
    for (auto& res : m.resources)
      ++users[res];
  for (auto& [id, m] : migrations_) {
    double rate = m.cap_bytes_s > 0 ? m.cap_bytes_s : std::numeric_limits<double>::infinity();
    for (auto& res : m.resources)
      rate = std::min(rate, capacity(res) / users[res]);
    m.rate_bytes_s = rate;
  }
}

void sim_world::advance_migrations(uint64_t dt_us, deliveries& out) {
  std::vector<std::pair<uint64_t, std::vector<precopy_event>>> happened;
  for (auto& [id, m] : migrations_) {
    auto evs = m.job.advance(dt_us / 1e6, m.rate_bytes_s);
    if (!evs.empty())
      happened.emplace_back(id, std::move(evs));
  }
  for (auto& [id, evs] : happened) {
    for (auto& ev : evs) {
      auto i = migrations_.find(id);
      if (i == migrations_.end())
        break;
      auto& m = i->second;
      switch (ev.what) {
        case precopy_event::kind::iteration_finished:
          report_progress(m, ev.progress, out);
          break;
        case precopy_event::kind::switched:
          on_switched(m);
          report_progress(m, ev.progress, out);
          break;
        case precopy_event::kind::converged:
          finish_migration(id, out);
          break;
        case precopy_event::kind::not_converging:
          fail_migration(id,
                         make_error(errc::aborted, "migration of " + m.domain + " from "
                                                     + m.src + " to " + m.dst
                                                     + " does not converge: "
                                                     + m.job.result().reason),
                         false, out);
          break;
      }
    }
  }
}

void sim_world::report_progress(const migration& m, const job_progress& p, deliveries& out) {
  if (m.on_progress)
    out.push_back([f = m.on_progress, p] { f(p); });
}

void sim_world::on_switched(migration& m) {
  // Post-copy: the guest runs on the destination; the source keeps the memory not yet pulled.
  if (auto* dst = find_host(m.dst))
    dst->domains[m.domain] = sim_domain{m.config, m.was, {}};
  if (auto* src = find_host(m.src)) {
    auto s = src->domains.find(m.domain);
    if (s != src->domains.end())
      s->second.status = domain_status::paused;
  }
}

void sim_world::finish_migration(uint64_t id, deliveries& out) {
  auto& m = migrations_.at(id);
  auto e = m.job.result();
  if (auto* src = find_host(m.src)) {
    if (m.handover) {
      auto s = src->domains.find(m.domain);
      if (s != src->domains.end())
        s->second.status = domain_status::paused;
    } else {
      src->domains.erase(m.domain);
    }
  }
  if (auto* dst = find_host(m.dst)) {
    auto& d = dst->domains[m.domain];
    d.config = m.config;
    d.status = m.handover ? domain_status::paused : m.was;
  }
  migration_result res;
  res.duration_ms = e.duration_ms;
  res.downtime_ms = e.downtime_ms;
  res.transferred_bytes = e.transferred_bytes;
  res.iterations = e.iterations;
  res.mode = m.job.mode();
  if (!m.key.empty())
    finished_[m.key] = finished_migration{m.domain, m.dst, res};
  ++metrics_.migrations_finished;
  metrics_.bytes_moved += e.transferred_bytes;
  for (auto& r : m.replies)
    out.push_back([r, res] { r(res); });
  migrations_.erase(id);
  recompute_rates();
}

void sim_world::fail_migration(uint64_t id, caf::error err, bool cancelled, deliveries& out) {
  auto& m = migrations_.at(id);
  metrics_.bytes_moved += m.job.result().transferred_bytes;
  ++(cancelled ? metrics_.migrations_cancelled : metrics_.migrations_failed);
  for (auto uri : {m.src, m.dst}) {
    auto* h = find_host(uri);
    if (h == nullptr || !h->up)
      continue;
    auto d = h->domains.find(m.domain);
    if (d == h->domains.end())
      continue;
    if (m.job.switched())
      d->second.status = domain_status::crashed; // post-copy: memory split across two hosts
    else if (uri == m.src && d->second.status == domain_status::migrating)
      d->second.status = m.was; // pre-copy: the source runs on
  }
  for (auto& r : m.replies)
    out.push_back([r, err] { r(err); });
  migrations_.erase(id);
  recompute_rates();
}

} // namespace ferry::hv
