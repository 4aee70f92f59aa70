#include "hypervisor/sim_driver.hpp"

#include <algorithm>
#include <cmath>

#include "hypervisor/deadline.hpp"

namespace ferry::hv {

namespace {

using expected_info = caf::expected<domain_info>;

bool active(domain_status s) {
  return s == domain_status::running || s == domain_status::paused
         || s == domain_status::migrating;
}

const sim_domain* find(const sim_host& h, const std::string& name) {
  auto i = h.domains.find(name);
  return i == h.domains.end() ? nullptr : &i->second;
}

sim_domain* find(sim_host& h, const std::string& name) {
  auto i = h.domains.find(name);
  return i == h.domains.end() ? nullptr : &i->second;
}

template <class Pred>
bool has(const std::vector<disk_spec>& xs, Pred p) {
  return std::any_of(xs.begin(), xs.end(), p);
}

uint32_t copy_ms(uint64_t memory_mib, double bytes_s) {
  return static_cast<uint32_t>(std::llround(memory_mib * 1048576.0 / bytes_s * 1000.0));
}

class sim_driver final : public driver {
public:
  sim_driver(const std::shared_ptr<sim_world>& world, std::string uri)
    : world_(world), raw_(world.get()), uri_(std::move(uri)), opts_(world->options()) {
  }

  const std::string& uri() const override {
    return uri_;
  }

  void define(const domain_config& cfg, const call& c, reply<domain_info> r) override {
    run<domain_info>(
      "define", cfg.name, c, std::move(r),
      [cfg, o = opts_](const sim_host& h) {
        return find(h, cfg.name) != nullptr ? o.query_ms : o.define_ms;
      },
      [cfg, what = what("define", cfg.name)](sim_host& h) -> expected_info {
        if (cfg.name.empty())
          return make_error(errc::invalid_argument, what + ": name is empty");
        if (auto* d = find(h, cfg.name))
          return sim_world::info_of(*d);
        auto& d = h.domains[cfg.name];
        d.config = cfg;
        d.status = domain_status::shut_off;
        return sim_world::info_of(d);
      });
  }

  void config(const std::string& name, const call& c, reply<domain_config> r) override {
    run<domain_config>(
      "config", name, c, std::move(r), [o = opts_](const sim_host&) { return o.query_ms; },
      [name, what = what("config", name)](sim_host& h) -> caf::expected<domain_config> {
        if (auto* d = find(h, name))
          return d->config;
        return make_error(errc::not_found, what + ": no such domain");
      });
  }

  void start(const std::string& name, const call& c, reply<domain_info> r) override {
    change(
      "start", name, c, std::move(r),
      [](const sim_domain& d) { return !active(d.status); }, opts_.start_ms,
      [](sim_domain& d, const std::string&) -> caf::error {
        if (!active(d.status))
          d.status = domain_status::running;
        return {};
      });
  }

  void pause(const std::string& name, const call& c, reply<domain_info> r) override {
    change(
      "pause", name, c, std::move(r),
      [](const sim_domain& d) { return d.status == domain_status::running; }, opts_.pause_ms,
      [](sim_domain& d, const std::string& what) -> caf::error {
        if (d.status == domain_status::running)
          d.status = domain_status::paused;
        else if (d.status != domain_status::paused)
          return make_error(errc::failed_precondition,
                            what + ": the domain is " + to_string(d.status));
        return {};
      });
  }

  void resume(const std::string& name, const call& c, reply<domain_info> r) override {
    change(
      "resume", name, c, std::move(r),
      [](const sim_domain& d) { return d.status == domain_status::paused; }, opts_.resume_ms,
      [](sim_domain& d, const std::string& what) -> caf::error {
        if (d.status == domain_status::paused)
          d.status = domain_status::running;
        else if (d.status != domain_status::running)
          return make_error(errc::failed_precondition,
                            what + ": the domain is " + to_string(d.status));
        return {};
      });
  }

  void stop(const std::string& name, const call& c, reply<domain_info> r) override {
    change(
      "stop", name, c, std::move(r),
      [](const sim_domain& d) { return d.status != domain_status::shut_off; }, opts_.destroy_ms,
      [](sim_domain& d, const std::string& what) -> caf::error {
        if (d.status == domain_status::migrating)
          return make_error(errc::failed_precondition,
                            what + ": the domain is migrating; abort the migration first");
        d.status = domain_status::shut_off;
        return {};
      });
  }

  void transfer(const transfer_request& req, const call& c, reply<transfer_result> r) override {
    auto wire = req.compress ? static_cast<uint64_t>(static_cast<double>(req.bytes)
                                                     * opts_.compress_ratio)
                             : req.bytes;
    auto w = world();
    if (!w)
      return gone(what("transfer", req.domain), std::move(r));
    auto ms = w->transfer_ms(uri_, req.destination_uri, wire);
    w->transfer_progress(ms, req.bytes, req.on_progress);
    run<transfer_result>(
      "transfer", req.domain, c, std::move(r), [ms](const sim_host&) { return ms; },
      [req, wire, ms, what = what("transfer " + req.what + " of", req.domain)](
        sim_host& h) -> caf::expected<transfer_result> {
        (void) h;
        (void) what;
        return transfer_result{ms, wire};
      });
  }

  void agent_command(const std::string& name, const std::string& command, const call& c,
                     reply<std::string> r) override {
    run<std::string>(
      "agent_command", name, c, std::move(r),
      [o = opts_](const sim_host&) { return o.agent_ms; },
      [name, command, what = what("agent_command", name)](
        sim_host& h) -> caf::expected<std::string> {
        auto* d = find(h, name);
        if (d == nullptr)
          return make_error(errc::not_found, what + ": no such domain");
        if (d->status != domain_status::running)
          return make_error(errc::failed_precondition,
                            what + ": the domain is " + to_string(d->status));
        if (!d->config.agent)
          return make_error(errc::unavailable, what + ": no agent answers in the guest");
        if (command.find("guest-info") != std::string::npos)
          return std::string{"{\"return\":{\"version\":\"sim\"}}"};
        return std::string{"{\"return\":{}}"};
      });
  }

  void destroy(const std::string& name, const call& c, reply<done> r) override {
    run<done>(
      "destroy", name, c, std::move(r),
      [name, o = opts_](const sim_host& h) {
        return find(h, name) != nullptr ? o.destroy_ms : o.query_ms;
      },
      [name, what = what("destroy", name)](sim_host& h) -> caf::expected<done> {
        auto* d = find(h, name);
        if (d != nullptr && d->status == domain_status::migrating)
          return make_error(errc::failed_precondition,
                            what + ": the domain is migrating; abort the migration first");
        h.domains.erase(name);
        return done{};
      });
  }

  void set_vcpus(const std::string& name, uint32_t vcpus, const call& c,
                 reply<domain_info> r) override {
    change(
      "set_vcpus", name, c, std::move(r),
      [vcpus](const sim_domain& d) { return d.config.vcpus != vcpus; }, opts_.set_vcpus_ms,
      [vcpus](sim_domain& d, const std::string& what) -> caf::error {
        auto max = d.config.max_vcpus > 0 ? d.config.max_vcpus : d.config.vcpus;
        if (vcpus == 0 || vcpus > max)
          return make_error(errc::out_of_range, what + ": vcpus " + std::to_string(vcpus)
                                                  + " is outside 1.." + std::to_string(max));
        d.config.max_vcpus = max;
        d.config.vcpus = vcpus;
        return {};
      });
  }

  void set_memory(const std::string& name, uint64_t mib, const call& c,
                  reply<domain_info> r) override {
    change(
      "set_memory", name, c, std::move(r),
      [mib](const sim_domain& d) { return d.config.memory_mib != mib; }, opts_.set_memory_ms,
      [mib](sim_domain& d, const std::string& what) -> caf::error {
        auto max = d.config.max_memory_mib > 0 ? d.config.max_memory_mib : d.config.memory_mib;
        if (mib == 0 || mib > max)
          return make_error(errc::out_of_range, what + ": memory_mib " + std::to_string(mib)
                                                  + " is outside 1.." + std::to_string(max));
        d.config.max_memory_mib = max;
        d.config.memory_mib = mib;
        return {};
      });
  }

  void attach_disk(const std::string& name, const disk_spec& disk, const call& c,
                   reply<domain_info> r) override {
    auto same = [t = disk.target](const disk_spec& x) { return x.target == t; };
    change(
      "attach_disk", name, c, std::move(r),
      [same](const sim_domain& d) { return !has(d.config.disks, same); }, opts_.attach_ms,
      [disk, same](sim_domain& d, const std::string& what) -> caf::error {
        if (disk.target.empty())
          return make_error(errc::invalid_argument, what + ": disk target is empty");
        if (!has(d.config.disks, same))
          d.config.disks.push_back(disk);
        return {};
      });
  }

  void detach_disk(const std::string& name, const std::string& target, const call& c,
                   reply<domain_info> r) override {
    auto same = [target](const disk_spec& x) { return x.target == target; };
    change(
      "detach_disk", name, c, std::move(r),
      [same](const sim_domain& d) { return has(d.config.disks, same); }, opts_.attach_ms,
      [same](sim_domain& d, const std::string&) -> caf::error {
        auto& xs = d.config.disks;
        xs.erase(std::remove_if(xs.begin(), xs.end(), same), xs.end());
        return {};
      });
  }

  void attach_nic(const std::string& name, const nic_spec& nic, const call& c,
                  reply<domain_info> r) override {
    auto same = [mac = nic.mac](const nic_spec& x) { return x.mac == mac; };
    change(
      "attach_nic", name, c, std::move(r),
      [same](const sim_domain& d) {
        return std::none_of(d.config.nics.begin(), d.config.nics.end(), same);
      },
      opts_.attach_ms,
      [nic, same](sim_domain& d, const std::string& what) -> caf::error {
        if (nic.mac.empty())
          return make_error(errc::invalid_argument, what + ": nic mac is empty");
        auto& xs = d.config.nics;
        if (std::none_of(xs.begin(), xs.end(), same))
          xs.push_back(nic);
        return {};
      });
  }

  void detach_nic(const std::string& name, const std::string& mac, const call& c,
                  reply<domain_info> r) override {
    auto same = [mac](const nic_spec& x) { return x.mac == mac; };
    change(
      "detach_nic", name, c, std::move(r),
      [same](const sim_domain& d) {
        return std::any_of(d.config.nics.begin(), d.config.nics.end(), same);
      },
      opts_.attach_ms,
      [same](sim_domain& d, const std::string&) -> caf::error {
        auto& xs = d.config.nics;
        xs.erase(std::remove_if(xs.begin(), xs.end(), same), xs.end());
        return {};
      });
  }

  void migrate(const migrate_request& req, const call& c, reply<migration_result> r) override {
    auto w = world();
    if (!w)
      return gone(what("migrate", req.domain), std::move(r));
    w->migrate(uri_, req, c.key, with_deadline(c, what("migrate", req.domain), std::move(r)));
  }

  void abort_migration(const std::string& name, const call& c, reply<done> r) override {
    auto w = world();
    if (!w)
      return gone(what("abort_migration", name), std::move(r));
    w->abort_migration(uri_, name, with_deadline(c, what("abort_migration", name), std::move(r)));
  }

  void snapshot_disk(const std::string& name, const std::string& target,
                     const std::string& snapshot, const call& c, reply<done> r) override {
    auto tag = target + "@" + snapshot;
    run<done>(
      "snapshot_disk", name, c, std::move(r),
      [name, tag, o = opts_](const sim_host& h) {
        auto* d = find(h, name);
        return d != nullptr && d->snapshots.count(tag) == 0 ? o.snapshot_ms : o.query_ms;
      },
      [name, target, tag, what = what("snapshot_disk", name)](
        sim_host& h) -> caf::expected<done> {
        auto* d = find(h, name);
        if (d == nullptr)
          return make_error(errc::not_found, what + ": no such domain");
        if (!has(d->config.disks, [&](const disk_spec& x) { return x.target == target; }))
          return make_error(errc::not_found, what + ": no disk " + target);
        d->snapshots.insert(tag);
        return done{};
      });
  }

  void save(const std::string& name, const std::string& path, const call& c,
            reply<done> r) override {
    run<done>(
      "save", name, c, std::move(r),
      [name, o = opts_](const sim_host& h) {
        auto* d = find(h, name);
        return d != nullptr && active(d->status) ? copy_ms(d->config.memory_mib, o.disk_bytes_s)
                                                 : o.query_ms;
      },
      [name, path, what = what("save", name)](sim_host& h) -> caf::expected<done> {
        auto* d = find(h, name);
        auto image = h.images.find(path);
        bool saved = image != h.images.end() && image->second.name == name;
        if (d == nullptr || !active(d->status)) {
          if (saved)
            return done{};
          return make_error(d == nullptr ? errc::not_found : errc::failed_precondition,
                            what + (d == nullptr ? ": no such domain" : ": not running"));
        }
        if (d->status == domain_status::migrating)
          return make_error(errc::failed_precondition, what + ": the domain is migrating");
        h.images[path] = d->config;
        d->status = domain_status::shut_off;
        return done{};
      });
  }

  void restore(const std::string& path, const call& c, reply<domain_info> r) override {
    run<domain_info>(
      "restore", path, c, std::move(r),
      [path, o = opts_](const sim_host& h) {
        auto image = h.images.find(path);
        if (image == h.images.end())
          return o.query_ms;
        auto* d = find(h, image->second.name);
        return d != nullptr && active(d->status)
                 ? o.query_ms
                 : copy_ms(image->second.memory_mib, o.disk_bytes_s);
      },
      [path, what = what("restore", path)](sim_host& h) -> expected_info {
        auto image = h.images.find(path);
        if (image == h.images.end())
          return make_error(errc::not_found, what + ": no saved image there");
        auto& d = h.domains[image->second.name];
        if (!active(d.status)) {
          d.config = image->second;
          d.status = domain_status::running;
        }
        return sim_world::info_of(d);
      });
  }

  void query(const std::string& name, const call& c, reply<domain_info> r) override {
    run<domain_info>(
      "query", name, c, std::move(r), [o = opts_](const sim_host&) { return o.query_ms; },
      [name](sim_host& h) -> expected_info {
        if (auto* d = find(h, name))
          return sim_world::info_of(*d);
        domain_info x;
        x.name = name;
        return x;
      });
  }

  void list(const call& c, reply<std::vector<domain_info>> r) override {
    run<std::vector<domain_info>>(
      "list", {}, c, std::move(r), [o = opts_](const sim_host&) { return o.query_ms; },
      [](sim_host& h) -> caf::expected<std::vector<domain_info>> {
        std::vector<domain_info> xs;
        for (auto& [name, d] : h.domains)
          xs.push_back(sim_world::info_of(d));
        return xs;
      });
  }

private:
  /// "<uri>: <op> <name>", the name of a call in deadlines and errors.
  std::string what(const std::string& op, const std::string& name) const {
    return uri_ + ": " + op + (name.empty() ? "" : " " + name);
  }

  /// Submits `op` to the world: `duration` decides its virtual time when it is taken,
  /// `apply` makes it happen (and its result) when that time has passed.
  template <class T>
  void run(const std::string& op, const std::string& name, const call& c, reply<T> r,
           std::function<uint32_t(const sim_host&)> duration,
           std::function<caf::expected<T>(sim_host&)> apply) {
    auto rr = with_deadline(c, what(op, name), std::move(r));
    sim_task t;
    t.duration_ms = std::move(duration);
    t.apply = [rr, apply = std::move(apply)](sim_host& h) -> std::function<void()> {
      return [rr, x = apply(h)]() mutable { rr(std::move(x)); };
    };
    t.fail = [rr](caf::error e) { rr(std::move(e)); };
    auto w = world();
    if (!w)
      return gone(what(op, name), std::move(rr));
    w->submit(uri_, op, std::move(t));
  }

  /// Answers a call made after the world was destroyed.
  template <class T>
  static void gone(const std::string& what, reply<T> r) {
    r(make_error(errc::unavailable, what + ": the simulator is gone"));
  }

  /// An operation on an existing domain that answers with its info: it takes `ms` when
  /// `needed` says there is something to do, and `mutate` does it (or refuses).
  void change(const std::string& op, const std::string& name, const call& c,
              reply<domain_info> r, std::function<bool(const sim_domain&)> needed, uint32_t ms,
              std::function<caf::error(sim_domain&, const std::string&)> mutate) {
    run<domain_info>(
      op, name, c, std::move(r),
      [name, needed, ms, quick = opts_.query_ms](const sim_host& h) {
        auto* d = find(h, name);
        return d != nullptr && needed(*d) ? ms : quick;
      },
      [name, mutate, what = what(op, name)](sim_host& h) -> expected_info {
        auto* d = find(h, name);
        if (d == nullptr)
          return make_error(errc::not_found, what + ": no such domain");
        if (auto err = mutate(*d, what))
          return err;
        return sim_world::info_of(*d);
      });
  }

  /// The world for one call; empty when it is gone.
  struct world_ref {
    std::shared_ptr<sim_world> held;
    sim_world* at = nullptr;
    sim_world* operator->() const { return at; }
    explicit operator bool() const { return at != nullptr; }
  };

  /// On the world's own thread (an answer it delivers making another call), no reference is
  /// taken: the world lives at least until that answer returns (its destructor joins the
  /// thread), and a reference released there, the owner having let the world go meanwhile,
  /// would destroy the world on the thread its destructor joins. Elsewhere, a reference held
  /// for the call.
  world_ref world() const {
    // Not expired: the world at raw_ is ours (not another one at the same address).
    if (sim_world::delivering(raw_) && !world_.expired())
      return {nullptr, raw_};
    auto w = world_.lock();
    return {w, w.get()};
  }

  // Weak: a call's answer, held in the world's queue until it is delivered on the world's
  // thread, holds the driver; were the driver to hold the world, the world's last owner could
  // be that answer, and the world's thread would destroy the world, joining itself.
  std::weak_ptr<sim_world> world_;
  sim_world* raw_;
  std::string uri_;
  sim_options opts_;
};

} // namespace

driver_ptr make_sim_driver(std::shared_ptr<sim_world> world, const std::string& uri) {
  return std::make_shared<sim_driver>(std::move(world), uri);
}

} // namespace ferry::hv
