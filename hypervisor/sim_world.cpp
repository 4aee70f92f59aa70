// sim_world, everything but the migrations: the virtual clock (manual or scaled real time) and
// its timer queue, the fleet (hosts, zones, links, domains), injected faults and host crashes,
// inspection, and driver operations taken through submit(). Owns, of sim_world's state: the
// clock and its thread, timers_, hosts_, links_, faults_ and the jitter seed. The migrations in
// flight (migrations_, finished_) are sim_migrations.cpp's.
//
// Threads: public calls come from any thread and take mtx_. Scheduled events run in
// virtual-time order with mtx_ held, on the thread that calls advance() or run_until_idle()
// (manual clock) or on the world's own thread, loop() (scaled real time); the callbacks they
// collect run after mtx_ is released.
#include "hypervisor/sim_world.hpp"

#include <cstdio>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/thread_name.hpp"

namespace ferry::hv {

namespace {

constexpr uint64_t never = std::numeric_limits<uint64_t>::max();

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// Splits "sim://<zone>/<host>".
bool parse_uri(const std::string& uri, std::string& zone) {
  static const std::string scheme = "sim://";
  if (uri.compare(0, scheme.size(), scheme) != 0)
    return false;
  auto rest = uri.substr(scheme.size());
  auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size()
      || rest.find('/', slash + 1) != std::string::npos)
    return false;
  zone = rest.substr(0, slash);
  return true;
}

} // namespace

std::string sim_world::link_key(const std::string& a, const std::string& b) {
  return a < b ? a + "|" + b : b + "|" + a;
}

bool sim_world::active(domain_status s) {
  return s == domain_status::running || s == domain_status::paused
         || s == domain_status::migrating;
}

sim_world::sim_world(sim_options opts)
  : opts_(std::move(opts)), real_clock_(opts_.real_clock), jitter_state_(opts_.seed) {
  if (!opts_.state_file.empty()) {
    bool found = false;
    if (auto err = load_state(found)) {
      std::fprintf(stderr, "%s; starting with an empty world\n", message_of(err).c_str());
      hosts_.clear();
      finished_.clear();
      now_us_ = 0;
    } else {
      restored_ = found;
    }
    base_us_ = now_us_;
  }
  if (!real_clock_)
    real_clock_ = [] { return std::chrono::steady_clock::now(); };
  if (opts_.speed > 0) {
    base_real_ = real_clock_();
    thread_ = std::thread([this] { loop(); });
    // Named, so that tools (and the benchmarks) can tell the simulator's CPU from the engine's.
    name_thread(thread_, "ferry.sim");
  }
}

sim_world::~sim_world() {
  if (!thread_.joinable())
    return;
  {
    std::lock_guard<std::mutex> g(mtx_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

// -- fleet ------------------------------------------------------------------------------

caf::error sim_world::add_host(const std::string& uri, double nic_bytes_s) {
  sim_host h;
  if (!parse_uri(uri, h.zone))
    return make_error(errc::invalid_argument,
                      "host \"" + uri + "\": expected sim://<zone>/<host>");
  std::lock_guard<std::mutex> g(mtx_);
  if (hosts_.count(uri) > 0)
    return make_error(errc::already_exists, "host \"" + uri + "\": already registered");
  h.uri = uri;
  h.nic_bytes_s = nic_bytes_s > 0 ? nic_bytes_s : opts_.nic_bytes_s;
  hosts_.emplace(uri, std::move(h));
  dirty_ = true;
  save_state();
  return {};
}

void sim_world::set_link(const std::string& zone_a, const std::string& zone_b,
                         double bytes_s) {
  std::lock_guard<std::mutex> g(mtx_);
  links_[link_key(zone_a, zone_b)] = bytes_s;
  recompute_rates();
}

caf::error sim_world::add_domain(const std::string& host_uri, const domain_config& cfg,
                                 domain_status status) {
  std::lock_guard<std::mutex> g(mtx_);
  auto* h = find_host(host_uri);
  if (h == nullptr)
    return make_error(errc::not_found, host_uri + ": no such host");
  if (cfg.name.empty())
    return make_error(errc::invalid_argument, host_uri + ": domain name is empty");
  if (h->domains.count(cfg.name) > 0)
    return make_error(errc::already_exists, host_uri + ": domain " + cfg.name + " exists");
  h->domains[cfg.name] = sim_domain{cfg, status, {}};
  dirty_ = true;
  save_state();
  return {};
}

// -- clock ------------------------------------------------------------------------------

uint64_t sim_world::clock_us() const {
  if (opts_.speed <= 0)
    return now_us_;
  std::chrono::duration<double, std::micro> real = real_clock_() - base_real_;
  return std::max(now_us_, base_us_ + static_cast<uint64_t>(real.count() * opts_.speed));
}

uint64_t sim_world::now_ms() const {
  std::lock_guard<std::mutex> g(mtx_);
  return clock_us() / 1000;
}

void sim_world::schedule(uint64_t at_us, event_fn f) {
  timers_.emplace(std::make_pair(at_us, seq_++), std::move(f));
  if (opts_.speed > 0)
    cv_.notify_all();
}

uint64_t sim_world::jittered_us(uint32_t ms) {
  double us = ms * 1000.0;
  if (ms > 0 && opts_.jitter > 0) {
    // 53 random bits -> [0, 1) -> [1 - jitter, 1 + jitter).
    double u = (splitmix64(jitter_state_) >> 11) * (1.0 / 9007199254740992.0);
    us *= 1.0 + opts_.jitter * (2.0 * u - 1.0);
  }
  return static_cast<uint64_t>(std::llround(std::max(0.0, us)));
}

void sim_world::advance(uint64_t ms) {
  if (opts_.speed > 0)
    return;
  uint64_t target;
  {
    std::lock_guard<std::mutex> g(mtx_);
    target = now_us_ + ms * 1000;
  }
  run_to(target);
}

void sim_world::run_until_idle() {
  if (opts_.speed > 0)
    return;
  for (;;) {
    uint64_t next;
    {
      std::lock_guard<std::mutex> g(mtx_);
      next = next_event_us();
    }
    if (next == never)
      return;
    run_to(next);
  }
}

bool sim_world::idle() const {
  std::lock_guard<std::mutex> g(mtx_);
  return timers_.empty() && migrations_.empty();
}

uint64_t sim_world::next_event_us() const {
  uint64_t next = timers_.empty() ? never : timers_.begin()->first.first;
  for (auto& [id, m] : migrations_) {
    auto s = m.job.time_to_next_event(m.rate_bytes_s);
    if (!std::isfinite(s) || s > 1e12)
      continue;
    next = std::min(next, now_us_ + static_cast<uint64_t>(std::ceil(s * 1e6)));
  }
  return next;
}

void sim_world::run_to(uint64_t target_us) {
  std::lock_guard<std::mutex> step(step_mtx_);
  for (bool reached = false; !reached;) {
    deliveries out;
    {
      std::lock_guard<std::mutex> g(mtx_);
      target_us = std::max(target_us, now_us_);
      auto next = next_event_us();
      reached = next > target_us;
      auto to = reached ? target_us : next;
      advance_migrations(to - now_us_, out);
      now_us_ = to;
      while (!timers_.empty() && timers_.begin()->first.first <= now_us_) {
        auto f = std::move(timers_.begin()->second);
        timers_.erase(timers_.begin());
        f(out);
        dirty_ = true;
      }
      if (!out.empty())
        dirty_ = true;
      // Durable before anyone hears of it.
      save_state();
    }
    for (auto& d : out)
      d();
  }
}

namespace {

/// The world whose own thread this is (none on any other thread).
thread_local const sim_world* own_world = nullptr;

} // namespace

bool sim_world::delivering(const sim_world* w) {
  return w != nullptr && own_world == w;
}

void sim_world::loop() {
  own_world = this;
  std::unique_lock<std::mutex> lk(mtx_);
  while (!stop_) {
    auto target = clock_us();
    lk.unlock();
    run_to(target);
    lk.lock();
    if (stop_)
      break;
    auto next = next_event_us();
    if (next == never) {
      cv_.wait(lk);
      continue;
    }
    // One reading: with two, time passing between them could put `next` after the first and
    // before the second, and the difference wrap around to a wait of decades.
    auto now = clock_us();
    auto wait_us = static_cast<double>(next > now ? next - now : 0) / opts_.speed;
    cv_.wait_for(lk, std::chrono::duration<double, std::micro>(wait_us));
  }
}

// -- faults -----------------------------------------------------------------------------

void sim_world::inject(const std::string& host_uri, const std::string& operation,
                       sim_fault f) {
  std::lock_guard<std::mutex> g(mtx_);
  auto left = f.count;
  faults_[host_uri].push_back({operation, std::move(f), left});
}

void sim_world::clear_faults(const std::string& host_uri) {
  std::lock_guard<std::mutex> g(mtx_);
  if (host_uri.empty())
    faults_.clear();
  else
    faults_.erase(host_uri);
}

void sim_world::crash_host(const std::string& host_uri) {
  deliveries out;
  {
    std::lock_guard<std::mutex> g(mtx_);
    if (auto* h = find_host(host_uri))
      crash(*h, out);
    dirty_ = true;
    save_state();
  }
  for (auto& d : out)
    d();
}

void sim_world::recover_host(const std::string& host_uri) {
  std::lock_guard<std::mutex> g(mtx_);
  if (auto* h = find_host(host_uri))
    h->up = true;
  dirty_ = true;
  save_state();
}

bool sim_world::take_fault(sim_host& h, const std::string& operation, caf::error& err,
                           bool& hang, caf::error& lost, deliveries& out) {
  auto i = faults_.find(h.uri);
  if (i == faults_.end())
    return false;
  auto& entries = i->second;
  auto e = std::find_if(entries.begin(), entries.end(), [&](const fault_entry& x) {
    return x.operation == operation || x.operation == "*";
  });
  if (e == entries.end())
    return false;
  auto f = e->fault;
  if (f.count > 0 && --e->left == 0)
    entries.erase(e);
  ++metrics_.faults_taken;
  switch (f.what) {
    case sim_fault::kind::fail:
      err = make_error(f.code, f.message.empty()
                                 ? h.uri + ": " + operation + ": injected failure"
                                 : f.message);
      break;
    case sim_fault::kind::lose_answer:
      lost = make_error(f.code, f.message.empty()
                                  ? h.uri + ": " + operation + ": the answer was lost"
                                  : f.message);
      break;
    case sim_fault::kind::hang:
      hang = true;
      break;
    case sim_fault::kind::crash_host:
      crash(h, out);
      err = make_error(errc::unavailable, h.uri + ": host crashed during " + operation);
      break;
  }
  return true;
}

void sim_world::crash(sim_host& h, deliveries& out) {
  h.up = false;
  for (auto& [name, d] : h.domains)
    if (active(d.status))
      d.status = domain_status::crashed;
  std::vector<uint64_t> hit;
  for (auto& [id, m] : migrations_)
    if (m.src == h.uri || m.dst == h.uri)
      hit.push_back(id);
  for (auto id : hit) {
    auto& m = migrations_.at(id);
    fail_migration(id,
                   make_error(errc::unavailable, "migration of " + m.domain + " from " + m.src
                                                   + " to " + m.dst + ": host " + h.uri
                                                   + " crashed"),
                   false, out);
  }
}

// -- inspection -------------------------------------------------------------------------

sim_host* sim_world::find_host(const std::string& uri) {
  auto i = hosts_.find(uri);
  return i == hosts_.end() ? nullptr : &i->second;
}

const sim_host* sim_world::find_host(const std::string& uri) const {
  auto i = hosts_.find(uri);
  return i == hosts_.end() ? nullptr : &i->second;
}

domain_info sim_world::info_of(const sim_domain& d) {
  domain_info x;
  x.name = d.config.name;
  x.status = d.status;
  x.vcpus = d.config.vcpus;
  x.memory_mib = d.config.memory_mib;
  x.disks = d.config.disks;
  x.nics = d.config.nics;
  return x;
}

bool sim_world::host_up(const std::string& host_uri) const {
  std::lock_guard<std::mutex> g(mtx_);
  auto* h = find_host(host_uri);
  return h != nullptr && h->up;
}

domain_info sim_world::domain(const std::string& host_uri, const std::string& name) const {
  std::lock_guard<std::mutex> g(mtx_);
  auto* h = find_host(host_uri);
  if (h != nullptr) {
    auto i = h->domains.find(name);
    if (i != h->domains.end())
      return info_of(i->second);
  }
  domain_info x;
  x.name = name;
  return x;
}

std::vector<domain_info> sim_world::domains(const std::string& host_uri) const {
  std::lock_guard<std::mutex> g(mtx_);
  std::vector<domain_info> xs;
  if (auto* h = find_host(host_uri))
    for (auto& [name, d] : h->domains)
      xs.push_back(info_of(d));
  return xs;
}

sim_metrics sim_world::metrics() const {
  std::lock_guard<std::mutex> g(mtx_);
  auto m = metrics_;
  m.migrations_active = migrations_.size();
  for (auto& [id, x] : migrations_)
    m.bytes_moved += x.job.progress().processed_bytes;
  m.now_ms = clock_us() / 1000;
  return m;
}

// -- operations -------------------------------------------------------------------------

void sim_world::submit(const std::string& host_uri, const std::string& operation,
                       sim_task task) {
  std::lock_guard<std::mutex> g(mtx_);
  schedule(clock_us(), [this, host_uri, operation, task = std::move(task)](
                         deliveries& out) mutable { begin_task(host_uri, operation, task, out); });
}

void sim_world::begin_task(const std::string& host_uri, const std::string& operation,
                           sim_task& task, deliveries& out) {
  auto fail = [&out, f = task.fail](caf::error e) { out.push_back([f, e] { f(e); }); };
  auto* h = find_host(host_uri);
  if (h == nullptr)
    return fail(make_error(errc::not_found, host_uri + ": no such host"));
  caf::error err;
  caf::error lost;
  bool hang = false;
  if (take_fault(*h, operation, err, hang, lost, out) && hang)
    return;
  if (err)
    return fail(std::move(err));
  if (!h->up)
    return fail(make_error(errc::unavailable, host_uri + ": host is down"));
  auto delay = jittered_us(task.duration_ms(*h));
  schedule(now_us_ + delay, [this, host_uri, task, lost](deliveries& out) {
    auto* h = find_host(host_uri);
    if (!h->up) {
      auto e = make_error(errc::unavailable, host_uri + ": host is down");
      out.push_back([f = task.fail, e] { f(e); });
      return;
    }
    auto answer = task.apply(*h);
    if (lost)
      out.push_back([f = task.fail, lost] { f(lost); });
    else
      out.push_back(std::move(answer));
  });
}

} // namespace ferry::hv
