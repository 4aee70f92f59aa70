#include "actors/vm_kinds.hpp"

#include <algorithm>
#include <cstdio>

#include <caf/all.hpp>

#include "common/errc.hpp"

namespace ferry {

namespace {

hv::call call_of(const task_call& c) {
  return hv::call{c.key, time_left(c)};
}

template <class T>
hv::reply<T> reporting(completion done) {
  return [done = std::move(done)](caf::expected<T> x) {
    done(x ? task_result::success() : failure_from(x.error()));
  };
}

enum class op : uint8_t {
  provision, start, pause, resume, destroy, abort, set_vcpus, set_memory,
  attach_disk, detach_disk, snapshot
};

class vm_kind final : public task_executor {
public:
  vm_kind(fleet_handles_ptr fleet, kind_spec spec, op o)
    : fleet_(std::move(fleet)), spec_(std::move(spec)), op_(o) {
  }
  kind_spec spec() const override {
    return spec_;
  }

  void execute(const task_call& call, completion done) override {
    auto vm = string_param(call, "vm");
    auto two_hosts = op_ == op::provision;
    auto host = driver(string_param(call, two_hosts ? "from" : "host"), done);
    if (!host)
      return;
    auto c = call_of(call);
    switch (op_) {
      case op::provision: {
        auto to = driver(string_param(call, "to"), done);
        if (!to)
          return;
        // Defined on the target already (a re-dispatch, or the VM moved there): done.
        to->query(vm, c, [host, to, vm, c, done](caf::expected<hv::domain_info> there) mutable {
          if (!there)
            return done(failure_from(there.error()));
          if (there->status != hv::domain_status::absent)
            return done(task_result::success());
          host->config(vm, c, [to, c, done](caf::expected<hv::domain_config> cfg) mutable {
            if (!cfg)
              return done(failure_from(cfg.error()));
            to->define(*cfg, c, reporting<hv::domain_info>(std::move(done)));
          });
        });
        return;
      }
      case op::start: return host->start(vm, c, reporting<hv::domain_info>(std::move(done)));
      case op::pause: return host->pause(vm, c, reporting<hv::domain_info>(std::move(done)));
      case op::resume: return host->resume(vm, c, reporting<hv::domain_info>(std::move(done)));
      case op::destroy: return destroy(vm, string_param(call, "host"), host, c, std::move(done));
      case op::abort:
        return host->abort_migration(vm, c, reporting<hv::done>(std::move(done)));
      case op::set_vcpus:
        return host->set_vcpus(vm, static_cast<uint32_t>(number_param(call, "vcpus", 1)), c,
                               reporting<hv::domain_info>(std::move(done)));
      case op::set_memory:
        return host->set_memory(vm, static_cast<uint64_t>(number_param(call, "memory_mib", 0)), c,
                                reporting<hv::domain_info>(std::move(done)));
      case op::attach_disk: {
        hv::disk_spec d{string_param(call, "target"), string_param(call, "source"), flag_param(call, "local"), 0};
        return host->attach_disk(vm, d, c, reporting<hv::domain_info>(std::move(done)));
      }
      case op::detach_disk:
        return host->detach_disk(vm, string_param(call, "target"), c,
                                 reporting<hv::domain_info>(std::move(done)));
      case op::snapshot:
        return host->snapshot_disk(vm, string_param(call, "target"), string_param(call, "name"), c,
                                   reporting<hv::done>(std::move(done)));
    }
  }

private:
  // Destroys the VM on `host_name`, unless the fleet's directory has it running there: a
  // compensation or a cleanup destroys a copy the VM left or never used, never the VM (a
  // run whose target was the VM's own host would otherwise destroy it on rolling back).
  void destroy(const std::string& vm, const std::string& host_name, hv::driver_ptr host,
               hv::call c, completion done) const {
    if (!fleet_->directory)
      return host->destroy(vm, c, reporting<hv::done>(std::move(done)));
    // The job runs in the caller actor after execute() returned: it holds what it uses, not
    // this executor (which close() destroys while the actor system still runs).
    caller_job job{[vm, host_name, host, c, done,
                    directory = fleet_->directory](caf::event_based_actor* self) {
      self->request(caf::actor_cast<caf::actor>(directory), caf::infinite, locate_atom::value, vm)
        .then(
          [=](fleet::vm_location& loc) {
            if (loc.host == host_name)
              return done(task_result::failure(
                errc::failed_precondition,
                "VM " + vm + " runs on " + host_name
                  + " (the fleet has it there): vm.destroy removes only a copy the VM left, "
                    "never the VM",
                false));
            host->destroy(vm, c, reporting<hv::done>(done));
          },
          [=](caf::error& err) {
            if (code_of(err) == errc::not_found) // not one of the fleet's VMs
              return host->destroy(vm, c, reporting<hv::done>(done));
            done(failure_from(err));
          });
    }};
    caf::anon_send(fleet_->caller, std::move(job));
  }

  // The driver of host `name`; reports not_found through `done` when there is none.
  hv::driver_ptr driver(const std::string& name, completion& done) const {
    auto h = fleet_->model->find_host(name);
    if (h == fleet::npos || h >= fleet_->drivers.size()) {
      done(task_result::failure(errc::not_found, "host \"" + name + "\" is not in the fleet",
                                false));
      return nullptr;
    }
    return fleet_->drivers[h];
  }

  fleet_handles_ptr fleet_;
  kind_spec spec_;
  op op_;
};

param_spec req(const char* name, param_type t, const char* what) {
  return {name, t, true, what};
}

param_spec opt(const char* name, param_type t, const char* what) {
  return {name, t, false, what};
}

struct entry {
  op o;
  kind_spec spec;
};

std::vector<entry> entries() {
  auto s = param_type::string;
  auto vm = req("vm", s, "The VM (its domain name).");
  auto host = req("host", s, "The host.");
  auto from = req("from", s, "The source host.");
  auto to = req("to", s, "The target host.");
  return {
    {op::provision, {"vm.provision", {vm, from, to}, false,
                     "Defines the VM on the target from its configuration on the source."}},
    {op::start, {"vm.start", {vm, host}, false, "Starts the VM."}},
    {op::pause, {"vm.pause", {vm, host}, false, "Pauses the VM."}},
    {op::resume, {"vm.resume", {vm, host}, false, "Resumes the VM."}},
    {op::destroy, {"vm.destroy", {vm, host}, false, "Stops and undefines the VM."}},
    {op::abort, {"vm.abort_migration", {vm, host}, false,
                 "Aborts the VM's outgoing migration; it stays on the host."}},
    {op::set_vcpus, {"vm.set_vcpus",
                     {vm, host, within(req("vcpus", param_type::integer, "vCPUs."), 1,
                                       uint32_limit)},
                     false, "Sets the VM's vCPUs live."}},
    {op::set_memory, {"vm.set_memory",
                      {vm, host, within(req("memory_mib", param_type::integer, "Memory, MiB."), 1,
                                      exact_integer_limit)},
                      false, "Sets the VM's memory live."}},
    {op::attach_disk, {"vm.attach_disk",
                       {vm, host, req("target", s, "Device in the guest (vdb)."),
                        req("source", s, "File or volume."),
                        opt("local", param_type::boolean, "A local disk. Default: false.")},
                       false, "Hot-plugs a disk."}},
    {op::detach_disk, {"vm.detach_disk", {vm, host, req("target", s, "Device in the guest.")},
                       false, "Hot-unplugs a disk."}},
    {op::snapshot, {"vm.snapshot",
                    {vm, host, req("target", s, "The local disk."),
                     req("name", s, "The snapshot's name.")},
                    false, "Snapshots a local disk."}},
  };
}

} // namespace

std::vector<kind_spec> vm_kind_specs() {
  std::vector<kind_spec> out;
  for (auto& e : entries())
    out.push_back(e.spec);
  return out;
}

void add_vm_kinds(executor_registry& reg, fleet_handles_ptr fleet) {
  for (auto& e : entries())
    reg.add(std::make_shared<vm_kind>(fleet, e.spec, e.o));
}

} // namespace ferry
