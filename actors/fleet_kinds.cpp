#include "actors/fleet_kinds.hpp"
#include "actors/fleet_kind_base.hpp"

#include <caf/all.hpp>

#include "common/errc.hpp"
#include "hypervisor/driver.hpp"

namespace ferry {

namespace {

class fleet_kind : public fleet_kind_base {
public:
  using fleet_kind_base::fleet_kind_base;

protected:
  // Looks `name` up with `find`; reports not_found through `done` when absent.
  template <class Find>
  bool lookup(Find find, const std::string& what, const std::string& name, fleet::index& out,
              completion& done) const {
    out = find(name);
    if (out == fleet::npos) {
      done(task_result::failure(errc::not_found, what + " \"" + name + "\" is not in the fleet",
                                false));
      return false;
    }
    return true;
  }
};

task_result changes_only(state_changes& c) {
  auto r = task_result::success();
  r.changes = std::move(c);
  return r;
}

// A lease change's result: the partition's epoch after it, with the change's records.
task_result lease_result(lease_reply& r) {
  auto res = task_result::success(std::to_string(r.table.epoch));
  res.changes = std::move(r.changes);
  return res;
}

class reserve_kind final : public fleet_kind {
public:
  using fleet_kind::fleet_kind;
  void execute(const task_call& call, completion done) override {
    auto& m = model();
    fleet::index z, v;
    if (!lookup([&](auto& n) { return m.find_zone(n); }, "zone", string_param(call, "zone"), z, done)
        || !lookup([&](auto& n) { return m.find_vm(n); }, "VM", string_param(call, "vm"), v, done))
      return;
    reserve_request req;
    req.vm = m.vms[v].name;
    req.key = string_param(call, "key", call.run + "/" + req.vm);
    req.type = string_param(call, "type", m.types[m.vms[v].type].name);
    req.host = string_param(call, "host");
    req.from = string_param(call, "from");
    req.strategy = string_param(call, "strategy") == "pack" ? fleet::strategy::pack
                                                    : fleet::strategy::spread;
    // Never the host the VM leaves: the one named, else (when placement chooses) where the
    // fleet description has it.
    auto exclude = string_param(call, "exclude");
    if (!exclude.empty())
      req.exclude.push_back(exclude);
    else if (req.host.empty())
      req.exclude.push_back(m.hosts[m.vms[v].host].name);
    // Through the directory: it refuses a VM that another run is moving.
    fleet_ask<reserve_reply>(*fleet_, std::move(done), fleet_->directory,
                             [](reserve_reply& r) {
                               auto res = task_result::success(r.host);
                               res.changes = std::move(r.changes);
                               return res;
                             },
                             reserve_atom::value, req, static_cast<uint32_t>(z));
  }
};

class release_kind final : public fleet_kind {
public:
  using fleet_kind::fleet_kind;
  void execute(const task_call& call, completion done) override {
    auto& m = model();
    fleet::index z;
    if (!lookup([&](auto& n) { return m.find_zone(n); }, "zone", string_param(call, "zone"), z, done))
      return;
    auto key = string_param(call, "key", call.run + "/" + string_param(call, "vm"));
    // The host the reservation was made on (the reserve task's output), when known: the
    // zone needs it to say the release again once it no longer remembers the key.
    fleet_ask<state_changes>(*fleet_, std::move(done), fleet_->directory, changes_only,
                             release_atom::value, static_cast<uint32_t>(z),
                             string_param(call, "host"), key);
  }
};

class adopt_kind final : public fleet_kind {
public:
  using fleet_kind::fleet_kind;
  void execute(const task_call& call, completion done) override {
    vm_request req{string_param(call, "vm"), string_param(call, "host"), string_param(call, "type"),
                   string_param(call, "reservation", call.run + "/" + string_param(call, "vm"))};
    fleet_ask<state_changes>(*fleet_, std::move(done), fleet_->directory, changes_only,
                             adopt_atom::value, req);
  }
};

class lease_kind final : public fleet_kind {
public:
  lease_kind(caf::actor_system& sys, fleet_handles_ptr fleet, kind_spec spec,
             lease_request::op op)
    : fleet_kind(sys, std::move(fleet), std::move(spec)), op_(op) {
  }
  void execute(const task_call& call, completion done) override {
    auto& m = model();
    fleet::index p;
    if (!lookup([&](auto& n) { return m.find_partition(n); }, "partition",
                string_param(call, "partition"), p, done))
      return;
    lease_request req;
    req.action = op_;
    if (op_ == lease_request::op::flip) {
      req.host = string_param(call, "from");
      req.to = string_param(call, "to");
    } else {
      req.host = string_param(call, "host");
      if (op_ == lease_request::op::connect_standby && string_param(call, "role") == "primary")
        req.action = lease_request::op::connect_primary;
    }
    fleet_ask<lease_reply>(*fleet_, std::move(done), fleet_->partitions[p], lease_result,
                           lease_atom::value, req);
  }

private:
  lease_request::op op_;
};

// lease.retire: forgets a host's DEACTIVATED (or TERMINATED) lease once the VM's copy there
// is gone, so that the VM may come back to that host later under a new lease. Asks the
// host's driver first: while the VM is still defined there, that copy could use the lease
// again, and nothing is retired (retryable: the run destroying it may not have finished).
class retire_kind final : public fleet_kind {
public:
  using fleet_kind::fleet_kind;
  void execute(const task_call& call, completion done) override {
    auto& m = model();
    fleet::index p;
    if (!lookup([&](auto& n) { return m.find_partition(n); }, "partition",
                string_param(call, "partition"), p, done))
      return;
    auto host = string_param(call, "host");
    auto d = driver(host, done);
    if (!d)
      return;
    auto vm = string_param(call, "vm");
    lease_request req{lease_request::op::retire, host, {}};
    d->query(
      vm, hv::call{call.key, time_left(call)},
      [fleet = fleet_, target = fleet_->partitions[p], req, vm, host,
       done](caf::expected<hv::domain_info> there) mutable {
        if (!there)
          return done(failure_from(there.error()));
        if (there->status != hv::domain_status::absent)
          return done(task_result::failure(
            errc::failed_precondition,
            "VM \"" + vm + "\" is still defined on host \"" + host + "\" ("
              + hv::to_string(there->status)
              + "): its lease is retired only once that copy is destroyed",
            true));
        // From the driver's thread: through the gate (send_gate.hpp).
        fleet->gate->pass([&] {
          fleet_ask<lease_reply>(*fleet, std::move(done), target, lease_result,
                                 lease_atom::value, req);
        });
      });
  }
};

class net_kind final : public fleet_kind {
public:
  net_kind(caf::actor_system& sys, fleet_handles_ptr fleet, kind_spec spec, bool move)
    : fleet_kind(sys, std::move(fleet), std::move(spec)), move_(move) {
  }
  void execute(const task_call& call, completion done) override {
    auto address = string_param(call, "address");
    if (move_)
      fleet_ask<state_changes>(*fleet_, std::move(done), fleet_->network, changes_only,
                               move_atom::value, address, string_param(call, "host"));
    else
      fleet_ask<state_changes>(*fleet_, std::move(done), fleet_->network, changes_only,
                               forward_atom::value, address, string_param(call, "to"));
  }

private:
  bool move_;
};

param_spec req_str(const char* name, const char* what) {
  return {name, param_type::string, true, what};
}

param_spec opt_str(const char* name, const char* what) {
  return {name, param_type::string, false, what};
}

} // namespace

caf::actor spawn_caller(caf::actor_system& sys) {
  return sys.spawn([](caf::event_based_actor* self) -> caf::behavior {
    return {[=](caller_job& job) { job.run(self); }};
  });
}

std::vector<kind_spec> fleet_kind_specs() {
  auto partition = req_str("partition", "The storage partition.");
  return {
    kind_spec{"fleet.reserve",
              {req_str("vm", "The VM to make room for."), req_str("zone", "The target zone."),
               opt_str("type", "The type to reserve for. Default: the VM's type."),
               opt_str("host", "This host or none. Default: placement chooses."),
               opt_str("strategy", "spread or pack. Default: spread."),
               opt_str("exclude", "A host not to choose (the one the VM leaves). Default: the "
                                  "VM's host in the fleet description when `host` is empty."),
               opt_str("key", "The reservation's key. Default: RUN/VM."),
               opt_str("from", "Where the VM must run now (the run's source); refused when "
                               "it runs elsewhere. Default: not checked.")},
              false,
              "Reserves capacity for a VM on a host of a zone; output: the host."},
    kind_spec{"fleet.release",
              {req_str("zone", "The zone of the reservation."),
               opt_str("vm", "The VM (for the default key)."),
               opt_str("key", "The reservation's key. Default: RUN/VM."),
               opt_str("host", "The host it was made on (the reserve task's output), so "
                               "that a release said again, its first answer lost, is reported "
                               "again. Default: where the zone has the key.")},
              false,
              "Gives a reservation back."},
    kind_spec{"vm.adopt",
              {req_str("vm", "The VM."), req_str("host", "Where it runs now."),
               opt_str("type", "Its type now. Default: unchanged."),
               opt_str("reservation", "The reservation it uses. Default: RUN/VM.")},
              false,
              "Records that a VM runs on a host (evicting it from the old one)."},
    kind_spec{"lease.connect",
              {partition, req_str("host", "The host to connect."),
               opt_str("role", "standby or primary. Default: standby.")},
              false,
              "Connects a host to a storage partition with a lease."},
    kind_spec{"lease.flip",
              {partition, req_str("from", "The PRIMARY host."),
               req_str("to", "The STANDBY host that becomes PRIMARY.")},
              false,
              "Flips a partition's PRIMARY lease once pending I/O drained."},
    kind_spec{"lease.revoke", {partition, req_str("host", "The host.")}, false,
              "Revokes a host's lease (TERMINATED)."},
    kind_spec{"lease.disconnect", {partition, req_str("host", "The host.")}, false,
              "Drops a STANDBY host's lease."},
    kind_spec{"lease.retire",
              {partition, req_str("host", "The host the VM left."),
               req_str("vm", "The VM, which must no longer be defined on the host.")},
              false,
              "Forgets a DEACTIVATED or TERMINATED lease once the VM's copy on the host is "
              "gone, so the VM may come back to that host later."},
    kind_spec{"net.forward",
              {req_str("address", "The VM's address."), req_str("to", "The new host.")},
              false,
              "Forwards packets for an address from its host to another host."},
    kind_spec{"net.move",
              {req_str("address", "The VM's address."), req_str("host", "The new host.")},
              false,
              "Moves an address to a host, ending any forwarding."},
  };
}

void add_fleet_kinds(executor_registry& reg, caf::actor_system& sys, fleet_handles_ptr fleet) {
  using op = lease_request::op;
  for (auto& spec : fleet_kind_specs()) {
    auto& n = spec.name;
    std::shared_ptr<task_executor> e;
    if (n == "fleet.reserve")
      e = std::make_shared<reserve_kind>(sys, fleet, spec);
    else if (n == "fleet.release")
      e = std::make_shared<release_kind>(sys, fleet, spec);
    else if (n == "vm.adopt")
      e = std::make_shared<adopt_kind>(sys, fleet, spec);
    else if (n == "lease.connect")
      e = std::make_shared<lease_kind>(sys, fleet, spec, op::connect_standby);
    else if (n == "lease.flip")
      e = std::make_shared<lease_kind>(sys, fleet, spec, op::flip);
    else if (n == "lease.revoke")
      e = std::make_shared<lease_kind>(sys, fleet, spec, op::revoke);
    else if (n == "lease.disconnect")
      e = std::make_shared<lease_kind>(sys, fleet, spec, op::disconnect);
    else if (n == "lease.retire")
      e = std::make_shared<retire_kind>(sys, fleet, spec);
    else if (n == "net.forward")
      e = std::make_shared<net_kind>(sys, fleet, spec, false);
    else if (n == "net.move")
      e = std::make_shared<net_kind>(sys, fleet, spec, true);
    reg.add(std::move(e));
  }
}

} // namespace ferry
