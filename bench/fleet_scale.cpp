// fleet_scale: one process holding a large fleet — by default 3 zones of 3,000 simulated hosts,
// 100,000 VMs and 30,000 storage partitions (each kept by a master and two replica storage
// servers, one partition per volume, the volumes attached to 30% of the VMs). The fleet is
// generated from a fixed seed and written with render_fleet; then timed: loading it
// (load_fleet_file, then fleet_runtime::start on a simulator with a manual clock), placement
// decisions sent to the zone actors (spread and pack alternating, random VM types) and lease
// flips on distinct partitions, each with at most --concurrency requests unanswered. Prints
// one JSON object: load_s (parse_s + spawn_s), peak_rss_bytes, placements_per_s,
// lease_flips_per_s, and more. Targets: load_s < 3, peak_rss_bytes < 1 GiB,
// placements_per_s >= 50,000. Exits 1 when a request fails or a flip leaves the wrong leases.
//   build/bench/fleet_scale [--zones 3] [--hosts-per-zone 3000] [--vms 100000]
//     [--partitions 30000] [--placements 200000] [--flips 30000] [--concurrency 64]
//     [--format text|binary] [--threads 2] [--drivers N] [--fleet FILE] [--keep]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>

#include "actors/fleet_runtime.hpp"
#include "bench/bench_util.hpp"
#include "common/cli_numbers.hpp"
#include "common/errc.hpp"
#include "fleet/fleet_codec.hpp"
#include "hypervisor/sim_world.hpp"

using namespace ferry;

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// splitmix64: the same numbers on every platform (std:: distributions are not).
struct rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }
};

struct sizes {
  size_t zones = 3;
  size_t hosts_per_zone = 3000;
  size_t vms = 100000;
  size_t partitions = 30000;
  size_t partitions_per_volume = 1;
  size_t storage_servers_per_zone = 100;
  uint64_t seed = 42;
};

std::string zone_name(size_t z) { return "z" + std::to_string(z); }

// The fleet: hosts of two generations (gen2 larger), three VM types ("large" runs on gen2
// only), VMs spread over random hosts of their zone without over-committing any, volumes of
// `partitions_per_volume` partitions attached to VMs of their zone, links between all zones.
caf::expected<fleet::model> generate(const sizes& n) {
  fleet::model m;
  rng r{n.seed};
  for (size_t z = 0; z < n.zones; ++z)
    m.zones.push_back({zone_name(z), {{"region", "bench"}}, {}, {}});
  m.types = {
    {"small", 2, 4096, {}, {}},
    {"medium", 4, 16384, {}, {}},
    {"large", 16, 65536, {"avx512"}, {"gen2"}},
  };
  for (size_t z = 0; z < n.zones; ++z)
    for (size_t i = 0; i < n.hosts_per_zone; ++i) {
      fleet::host h;
      auto hn = "h" + std::to_string(i);
      h.name = zone_name(z) + "-" + hn;
      h.zone = static_cast<fleet::index>(z);
      h.driver = "sim://" + zone_name(z) + "/" + hn;
      bool gen2 = i % 2 == 1;
      h.generation = gen2 ? "gen2" : "gen1";
      h.total = gen2 ? fleet::capacity{128, 524288, 64} : fleet::capacity{96, 393216, 48};
      m.zones[z].hosts.push_back(static_cast<fleet::index>(m.hosts.size()));
      m.hosts.push_back(std::move(h));
    }
  for (size_t a = 0; a < n.zones; ++a)
    for (size_t b = a + 1; b < n.zones; ++b)
      m.links.push_back({static_cast<fleet::index>(a), static_cast<fleet::index>(b), 1250, 0});

  // Partitions, grouped into volumes; a volume and its partitions share a zone.
  auto ppv = std::max<size_t>(1, n.partitions_per_volume);
  auto volumes = n.partitions / ppv;
  auto ss = [&](size_t z, uint64_t i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "ss-%s-%03u", zone_name(z).c_str(),
                  static_cast<unsigned>(i % n.storage_servers_per_zone));
    return std::string{buf};
  };
  for (size_t v = 0; v < volumes; ++v) {
    auto z = v % n.zones;
    fleet::volume vol;
    vol.name = "vol" + std::to_string(v);
    vol.zone = static_cast<fleet::index>(z);
    for (size_t k = 0; k < ppv; ++k) {
      fleet::partition p;
      p.name = "p" + std::to_string(m.partitions.size());
      p.zone = vol.zone;
      auto first = r.below(n.storage_servers_per_zone);
      p.master = ss(z, first);
      p.replicas = {ss(z, first + 1), ss(z, first + 2)};
      p.size_gib = 64;
      p.volume = static_cast<fleet::index>(v);
      vol.partitions.push_back(static_cast<fleet::index>(m.partitions.size()));
      m.zones[z].partitions.push_back(static_cast<fleet::index>(m.partitions.size()));
      m.partitions.push_back(std::move(p));
    }
    m.volumes.push_back(std::move(vol));
  }

  // VMs: zone i % zones, a random host of the zone that runs the type and has room (the next
  // one that does when it has not).
  std::vector<fleet::capacity> used(m.hosts.size());
  std::vector<std::vector<fleet::index>> vms_of_zone(n.zones);
  m.vms.reserve(n.vms);
  for (size_t i = 0; i < n.vms; ++i) {
    auto z = i % n.zones;
    auto pick = r.below(100);
    fleet::index t = pick < 50 ? 0 : pick < 85 ? 1 : 2;
    auto need = m.types[t].need();
    auto& hosts = m.zones[z].hosts;
    auto start = r.below(hosts.size());
    fleet::index host = fleet::npos;
    for (size_t k = 0; k < hosts.size() && host == fleet::npos; ++k) {
      auto h = hosts[(start + k) % hosts.size()];
      if (m.types[t].runs_on(m.hosts[h].generation)
          && (fleet::capacity{m.hosts[h].total} -= used[h]).fits(need))
        host = h;
    }
    if (host == fleet::npos)
      return make_error(errc::resource_exhausted,
                        "generate: no host of zone " + zone_name(z) + " has room for vm"
                          + std::to_string(i) + " (too few hosts for the VMs)");
    used[host] += need;
    fleet::vm v;
    v.name = "vm" + std::to_string(i);
    v.type = t;
    v.host = host;
    v.address = "10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255)
                + "." + std::to_string(i & 255);
    v.dirty_mib_s = static_cast<double>(r.below(2000)) / 10.0;
    v.group = "g" + std::to_string(i % 1000);
    v.agent = i % 4 == 0;
    vms_of_zone[z].push_back(static_cast<fleet::index>(m.vms.size()));
    m.vms.push_back(std::move(v));
  }

  // Each volume to a VM of its zone, spread over the zone's VMs.
  std::vector<size_t> volumes_in_zone(n.zones), next_in_zone(n.zones);
  for (auto& vol : m.volumes)
    ++volumes_in_zone[vol.zone];
  for (size_t vi = 0; vi < m.volumes.size(); ++vi) {
    auto z = m.volumes[vi].zone;
    auto& vz = vms_of_zone[z];
    if (vz.empty())
      continue;
    auto stride = std::max<size_t>(1, vz.size() / std::max<size_t>(1, volumes_in_zone[z]));
    auto k = next_in_zone[z]++;
    auto vm = vz[(k * stride) % vz.size()];
    if (m.vms[vm].volumes.empty()) {
      m.volumes[vi].vm = vm;
      m.vms[vm].volumes.push_back(static_cast<fleet::index>(vi));
    }
  }
  return m;
}

// Writes the fleet file in a child process, so that generating it (the model, the rendered
// text, protobuf's copy) leaves nothing in this process's memory or its peak RSS reading.
caf::expected<uint64_t> write_fleet(const sizes& n, fleet::fleet_format format,
                                    const std::string& path) {
  std::fflush(nullptr);
  auto pid = ::fork();
  if (pid < 0)
    return make_error(errc::internal, "fork failed");
  if (pid == 0) {
    auto m = generate(n);
    if (!m) {
      std::fprintf(stderr, "fleet_scale: %s\n", describe(m.error()).c_str());
      std::fflush(stderr);
      ::_exit(1);
    }
    auto text = fleet::render_fleet(*m, format);
    std::ofstream out{path, std::ios::binary};
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    ::_exit(out ? 0 : 2);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return make_error(errc::internal, "generating the fleet file " + path + " failed");
  std::error_code ec;
  auto bytes = std::filesystem::file_size(path, ec);
  if (ec)
    return make_error(errc::internal, "fleet file " + path + ": " + ec.message());
  return static_cast<uint64_t>(bytes);
}

// -- requests with a window ------------------------------------------------------------------

struct window_shared {
  size_t total = 0;
  std::atomic<size_t> next{0};
  std::atomic<size_t> answered{0};
  std::atomic<size_t> failed{0};
  std::mutex mtx;
  std::string first_error;
  std::promise<void> done;
};

struct window_result {
  size_t failed = 0;
  double seconds = 0;
  std::string first_error;
};

// An event-based actor keeping up to `window` requests in flight: `issue(self, i, answer)`
// sends request i and calls answer(ok, why) when its reply or error arrives. Request numbers
// come from a counter shared by every driver.
template <class Issue>
class window_driver : public caf::event_based_actor {
public:
  struct answer {
    window_driver* d;
    void operator()(bool ok, const std::string& why) const { d->on_answer(ok, why); }
  };

  window_driver(caf::actor_config& cfg, std::shared_ptr<window_shared> sh, Issue issue,
                size_t window)
    : caf::event_based_actor(cfg), sh_(std::move(sh)), issue_(std::move(issue)),
      window_(window) {
  }

  caf::behavior make_behavior() override {
    for (size_t k = 0; k < window_ && issue_next(); ++k)
      ;
    if (inflight_ == 0)
      quit();
    return {[](int) {}};
  }

private:
  bool issue_next() {
    auto i = sh_->next.fetch_add(1);
    if (i >= sh_->total)
      return false;
    ++inflight_;
    issue_(this, i, answer{this});
    return true;
  }

  void on_answer(bool ok, const std::string& why) {
    --inflight_;
    if (!ok) {
      sh_->failed.fetch_add(1);
      std::lock_guard<std::mutex> guard{sh_->mtx};
      if (sh_->first_error.empty())
        sh_->first_error = why.empty() ? "(no reason given)" : why;
    }
    if (sh_->answered.fetch_add(1) + 1 == sh_->total)
      sh_->done.set_value();
    if (!issue_next() && inflight_ == 0)
      quit();
  }

  std::shared_ptr<window_shared> sh_;
  Issue issue_;
  size_t window_;
  size_t inflight_ = 0;
};

// Sends `total` requests through `drivers` actors sharing a window of `window`, and waits
// for every answer.
template <class Issue>
window_result run_window(caf::actor_system& sys, size_t total, size_t window, size_t drivers,
                         Issue issue) {
  window_result out;
  if (total == 0)
    return out;
  auto sh = std::make_shared<window_shared>();
  sh->total = total;
  auto fut = sh->done.get_future();
  drivers = std::max<size_t>(1, std::min(drivers, window));
  auto t0 = clock_type::now();
  for (size_t d = 0; d < drivers; ++d) {
    auto share = window / drivers + (d < window % drivers ? 1 : 0);
    sys.spawn<window_driver<Issue>>(sh, issue, share);
  }
  fut.wait();
  out.seconds = seconds_since(t0);
  out.failed = sh->failed.load();
  out.first_error = sh->first_error;
  return out;
}

std::string why(const caf::error& err) {
  return describe(err);
}

void report_failures(const char* what, const window_result& r) {
  if (r.failed > 0)
    std::fprintf(stderr, "fleet_scale: %s: %zu failed, the first: %s\n", what, r.failed,
                 r.first_error.c_str());
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"fleet_scale"};
  sizes n;
  size_t placements = 200000;
  size_t flips = 30000;
  size_t concurrency = 64;
  size_t threads = 2;
  size_t drivers = 0;
  std::string format = "text";
  std::string fleet_file;
  bool keep = false;
  app.add_option("--zones", n.zones, "Zones (default 3)")
    ->transform(ferry::whole_number(1));
  app.add_option("--hosts-per-zone", n.hosts_per_zone, "Hosts in each zone (default 3000)")
    ->transform(ferry::whole_number(1));
  app.add_option("--vms", n.vms, "VMs (default 100000)")
    ->transform(ferry::whole_number());
  app.add_option("--partitions", n.partitions, "Storage partitions (default 30000)")
    ->transform(ferry::whole_number());
  app.add_option("--partitions-per-volume", n.partitions_per_volume,
                 "Partitions of each volume (default 1)")
    ->transform(ferry::whole_number(1));
  app.add_option("--placements", placements, "Placement decisions (default 200000)")
    ->transform(ferry::whole_number());
  app.add_option("--flips", flips, "Lease flips, each on its own partition (default 30000)")
    ->transform(ferry::whole_number());
  app.add_option("--concurrency", concurrency, "Requests in flight at once (default 64)")
    ->transform(ferry::whole_number(1));
  app.add_option("--format", format, "Fleet file format: text or binary (default text)")
    ->check(CLI::IsMember({"text", "binary"}));
  app.add_option("--threads", threads, "CAF scheduler.max-threads (default 2)")
    ->transform(ferry::whole_number(1));
  app.add_option("--drivers", drivers,
                 "Actors sending the requests, sharing the window (default: --threads)")
    ->transform(ferry::whole_number());
  app.add_option("--seed", n.seed, "Seed of the generated fleet (default 42)")
    ->transform(ferry::whole_number());
  app.add_option("--fleet", fleet_file,
                 "Load this fleet file instead of generating one (the sizes come from it)");
  app.add_flag("--keep", keep, "Keep the generated fleet file (its path goes to stderr)");
  CLI11_PARSE(app, argc, argv);
  const char* program = "fleet_scale";
  if (n.zones == 0 || n.hosts_per_zone == 0 || concurrency == 0 || threads == 0) {
    std::fprintf(stderr, "%s: --zones, --hosts-per-zone, --concurrency and --threads must be "
                         "at least 1\n", program);
    return 2;
  }
  if (fleet_file.empty() && flips > n.partitions) {
    std::fprintf(stderr, "%s: --flips %zu: only %zu partitions\n", program, flips,
                 n.partitions);
    return 2;
  }
  if (drivers == 0)
    drivers = threads;

  // (1) The fleet file.
  bench::temp_dir tmp{"ferry-bench-fleet", keep};
  auto binary = format == "binary";
  auto path = tmp.path() + (binary ? "/fleet.binpb" : "/fleet.txtpb");
  auto t0 = clock_type::now();
  uint64_t file_bytes = 0;
  double generate_s = 0;
  // Errors return (not bench::must, which exits) so that the temporary directory goes.
  auto fail = [&](const caf::error& err) {
    std::fprintf(stderr, "%s: %s\n", program, describe(err).c_str());
    return 1;
  };
  if (fleet_file.empty()) {
    auto written = write_fleet(
      n, binary ? fleet::fleet_format::binary : fleet::fleet_format::text, path);
    if (!written)
      return fail(written.error());
    file_bytes = *written;
    generate_s = seconds_since(t0);
    if (keep)
      std::fprintf(stderr, "%s: fleet file %s\n", program, path.c_str());
  } else {
    path = fleet_file;
    std::error_code ec;
    file_bytes = std::filesystem::file_size(path, ec);
    if (ec) {
      std::fprintf(stderr, "%s: fleet file %s: %s\n", program, path.c_str(),
                   ec.message().c_str());
      return 1;
    }
    auto ext = std::filesystem::path{path}.extension();
    format = ext == ".pb" || ext == ".binpb" ? "binary" : ext == ".json" ? "json" : "text";
  }

  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", threads);
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  auto rss_before_load = bench::rss_bytes();

  // (2) Loading: parse and validate, then spawn every actor.
  t0 = clock_type::now();
  auto loaded = fleet::load_fleet_file(path);
  if (!loaded)
    return fail(loaded.error());
  auto model = std::move(*loaded);
  auto parse_s = seconds_since(t0);
  auto t1 = clock_type::now();
  fleet_options fopts;
  hv::sim_options so;
  so.speed = 0; // manual clock: no world thread
  fopts.sim = std::make_shared<hv::sim_world>(so);
  auto started = fleet_runtime::start(sys, model, fleet::durable_state{}, fopts);
  if (!started)
    return fail(started.error());
  auto rt = std::move(*started);
  auto spawn_s = seconds_since(t1);
  auto load_s = seconds_since(t0);
  auto& h = rt->handles();
  auto& m = *model;

  // Actors initialize on the scheduler after start() returns: one request to each of them
  // (zones, hosts, partitions) tells when the fleet is ready to answer.
  auto ready = run_window(
    sys, h.zones.size() + h.hosts.size() + h.partitions.size(), concurrency, drivers,
    [&h](caf::event_based_actor* self, size_t i, auto answer) {
      auto fail = [answer](caf::error& e) { answer(false, why(e)); };
      if (i < h.zones.size()) {
        self->request(h.zones[i], caf::infinite, status_atom::value)
          .then([answer](zone_status&) { answer(true, {}); }, fail);
        return;
      }
      i -= h.zones.size();
      if (i < h.hosts.size()) {
        self->request(h.hosts[i], caf::infinite, status_atom::value)
          .then([answer](host_status&) { answer(true, {}); }, fail);
        return;
      }
      i -= h.hosts.size();
      self->request(h.partitions[i], caf::infinite, get_atom::value)
        .then([answer](lease_reply&) { answer(true, {}); }, fail);
    });
  report_failures("first requests", ready);
  auto rss_after_load = bench::rss_bytes();

  // (3) Placement decisions, round-robin over the zones.
  std::vector<std::string> type_names;
  for (auto& t : m.types)
    type_names.push_back(t.name);
  auto placed = run_window(
    sys, placements, concurrency, drivers,
    [&h, &type_names, seed = n.seed](caf::event_based_actor* self, size_t i, auto answer) {
      rng r{seed ^ (i * 0x2545f4914f6cdd1dULL)};
      place_request req;
      req.type = type_names[r.below(type_names.size())];
      req.strategy = i % 2 == 0 ? fleet::strategy::spread : fleet::strategy::pack;
      self->request(h.zones[i % h.zones.size()], caf::infinite, place_atom::value,
                    std::move(req))
        .then([answer](place_reply& x) { answer(!x.host.empty(), x.reason); },
              [answer](caf::error& e) { answer(false, why(e)); });
    });
  report_failures("placements", placed);

  // (4) Lease flips on `flips` distinct partitions, spread over all of them, from A to B, as
  // a migration flips them. A is the host of the VM the partition's volume is attached to,
  // which holds its PRIMARY lease from the start (the fleet's initial state); a partition no
  // VM uses gets A PRIMARY first. B, the next host of the zone, connects STANDBY. Neither
  // setup step is timed.
  struct flip_case {
    fleet::index partition;
    std::string a, b;
    bool a_holds = false; // A holds the PRIMARY lease already
  };
  flips = std::min(flips, m.partitions.size());
  std::vector<flip_case> cases;
  cases.reserve(flips);
  for (size_t j = 0; j < flips; ++j) {
    auto p = static_cast<fleet::index>(j * m.partitions.size() / flips);
    auto& hosts = m.zones[m.partitions[p].zone].hosts;
    if (hosts.size() < 2) {
      std::fprintf(stderr, "%s: flips need two hosts in a zone\n", program);
      return 2;
    }
    auto vol = m.partitions[p].volume;
    auto vm = vol == fleet::npos ? fleet::npos : m.volumes[vol].vm;
    auto a = vm != fleet::npos ? m.vms[vm].host : hosts[j % hosts.size()];
    auto at = std::find(hosts.begin(), hosts.end(), a) - hosts.begin();
    auto b = hosts[(static_cast<size_t>(at) + 1) % hosts.size()];
    cases.push_back({p, m.hosts[a].name, m.hosts[b].name, vm != fleet::npos});
  }
  std::vector<std::pair<size_t, bool>> connects; // (case, primary)
  for (size_t i = 0; i < cases.size(); ++i) {
    if (!cases[i].a_holds)
      connects.emplace_back(i, true);
    connects.emplace_back(i, false);
  }
  auto connected = run_window(
    sys, connects.size(), concurrency, drivers,
    [&h, &cases, &connects](caf::event_based_actor* self, size_t i, auto answer) {
      auto [ci, primary] = connects[i];
      auto& c = cases[ci];
      lease_request req;
      req.action = primary ? lease_request::op::connect_primary
                           : lease_request::op::connect_standby;
      req.host = primary ? c.a : c.b;
      self->request(h.partitions[c.partition], caf::infinite, lease_atom::value, std::move(req))
        .then([answer](lease_reply&) { answer(true, {}); },
              [answer](caf::error& e) { answer(false, why(e)); });
    });
  report_failures("connects", connected);
  auto flipped = run_window(
    sys, cases.size(), concurrency, drivers,
    [&h, &cases](caf::event_based_actor* self, size_t i, auto answer) {
      auto& c = cases[i];
      lease_request req{lease_request::op::flip, c.a, c.b};
      self->request(h.partitions[c.partition], caf::infinite, lease_atom::value, std::move(req))
        .then(
          [answer, &c](lease_reply& x) {
            auto ok = x.table.state_of(c.b) == fleet::lease_state::primary
                      && x.table.state_of(c.a) == fleet::lease_state::deactivated;
            answer(ok, ok ? std::string{}
                          : "partition \"" + x.partition + "\": after the flip " + c.a + " is "
                              + fleet::to_string(x.table.state_of(c.a)) + ", " + c.b + " is "
                              + fleet::to_string(x.table.state_of(c.b)));
          },
          [answer](caf::error& e) { answer(false, why(e)); });
    });
  report_failures("flips", flipped);

  // (5) Memory.
  auto peak = bench::peak_rss_bytes();
  auto placements_per_s = placed.seconds > 0 ? static_cast<double>(placements) / placed.seconds
                                             : 0.0;
  auto flips_per_s = flipped.seconds > 0 ? static_cast<double>(cases.size()) / flipped.seconds
                                         : 0.0;
  bool meets = load_s < 3.0 && peak < (uint64_t{1} << 30) && placements_per_s >= 50000;
  bench::json_object out;
  out.add("benchmark", std::string{"fleet_scale"})
    .add("zones", static_cast<uint64_t>(m.zones.size()))
    .add("hosts", static_cast<uint64_t>(m.hosts.size()))
    .add("vms", static_cast<uint64_t>(m.vms.size()))
    .add("partitions", static_cast<uint64_t>(m.partitions.size()))
    .add("volumes", static_cast<uint64_t>(m.volumes.size()))
    .add("vms_with_volumes",
         static_cast<uint64_t>(std::count_if(m.vms.begin(), m.vms.end(),
                                             [](auto& v) { return !v.volumes.empty(); })))
    .add("format", format)
    .add("threads", static_cast<uint64_t>(threads))
    .add("drivers", static_cast<uint64_t>(drivers))
    .add("concurrency", static_cast<uint64_t>(concurrency))
    .add("fleet_file_bytes", file_bytes)
    .add("generate_s", generate_s)
    .add("parse_s", parse_s)
    .add("spawn_s", spawn_s)
    .add("load_s", load_s)
    .add("ready_s", ready.seconds)
    .add("rss_before_load_bytes", rss_before_load)
    .add("rss_after_load_bytes", rss_after_load)
    .add("placements", static_cast<uint64_t>(placements))
    .add("placement_failures", static_cast<uint64_t>(placed.failed))
    .add("placements_s", placed.seconds)
    .add("placements_per_s", placements_per_s)
    .add("flips", static_cast<uint64_t>(cases.size()))
    .add("connect_failures", static_cast<uint64_t>(connected.failed))
    .add("flip_failures", static_cast<uint64_t>(flipped.failed))
    .add("flips_s", flipped.seconds)
    .add("lease_flips_per_s", flips_per_s)
    .add("peak_rss_bytes", peak)
    .add("meets_targets", meets);
  out.print();
  rt.reset();
  bool failures = ready.failed + placed.failed + connected.failed + flipped.failed > 0;
  return failures ? 1 : 0;
}
