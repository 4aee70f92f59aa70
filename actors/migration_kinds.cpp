#include "actors/migration_kinds.hpp"
#include "actors/fleet_kind_base.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>

#include <caf/all.hpp>

#include "actors/fleet_messages.hpp"
#include "actors/log.hpp"
#include "actors/metrics.hpp"
#include "common/errc.hpp"
#include "fleet/state_codec.hpp"

namespace ferry {

namespace {

constexpr double mib = 1024.0 * 1024.0;

hv::call call_of(const task_call& c) {
  return hv::call{c.key, time_left(c)};
}

task_result bad_request(const std::string& msg) {
  return task_result::failure(errc::invalid_argument, msg, false);
}

task_result refused(errc code, const std::string& msg) {
  return task_result::failure(code, msg, false);
}

class kind_base : public fleet_kind_base {
public:
  using fleet_kind_base::fleet_kind_base;

protected:
  fleet::index vm_index(const std::string& name, completion& done) const {
    auto v = model().find_vm(name);
    if (v == fleet::npos)
      done(refused(errc::not_found, "VM \"" + name + "\" is not in the fleet"));
    return v;
  }
};

// -- vm.migrate --------------------------------------------------------------------------

/// What the progress watcher decided, shared between the driver's threads.
struct prediction {
  std::mutex mtx;
  bool cancelled = false;
  std::string reason;
  uint64_t last_processed = 0;
  uint64_t last_elapsed_ms = 0;
};

class migrate_kind final : public kind_base {
public:
  migrate_kind(caf::actor_system& sys, fleet_handles_ptr fleet, kind_spec spec,
               progress_fn progress, engine_metrics* metrics)
    : kind_base(sys, std::move(fleet), std::move(spec)),
      progress_(std::move(progress)),
      metrics_(metrics) {
  }

  void execute(const task_call& call, completion done) override {
    auto vm = string_param(call, "vm");
    auto from_name = string_param(call, "from");
    auto to_name = string_param(call, "to");
    auto from = host_index(from_name, done);
    if (from == fleet::npos)
      return;
    auto to = host_index(to_name, done);
    if (to == fleet::npos)
      return;
    if (from == to)
      return done(bad_request("param \"to\": the VM's source host \"" + from_name
                              + "\" is not a migration target"));
    auto& m = model();
    hv::migrate_request req;
    req.domain = vm;
    req.destination_uri = m.hosts[to].peer_uri.empty() ? m.hosts[to].driver
                                                       : m.hosts[to].peer_uri;
    req.destination_control_uri = m.hosts[to].driver;
    req.migrate_uri = m.hosts[to].migrate_uri;
    req.mode = string_param(call, "mode") == "postcopy" ? hv::migration_mode::postcopy
                                                        : hv::migration_mode::precopy;
    req.copy_storage = flag_param(call, "copy_storage");
    req.paused_handover = flag_param(call, "paused_handover");
    req.bandwidth_mib_s = static_cast<uint64_t>(number_param(call, "bandwidth_mib_s", 0));
    req.max_downtime_ms = static_cast<uint32_t>(
      number_param(call, "max_downtime_ms", static_cast<double>(m.limits.max_downtime_ms)));
    auto budget_ms = static_cast<uint64_t>(
      number_param(call, "time_budget_s", static_cast<double>(m.limits.max_migration_s)) * 1000);
    auto src = fleet_->drivers[from];
    auto pred = std::make_shared<prediction>();
    bool predict = flag_param(call, "predict_failure");
    auto gate = fleet_->gate;
    if (predict || progress_)
      req.on_progress = [pred, src, vm, budget_ms, predict, key = call.key,
                         timeout = time_left(call), report = progress_, run = call.run,
                         task = call.task_id(), attempt = call.attempt,
                         gate](const hv::job_progress& p) {
        if (report)
          gate->pass([&] {
            report(task_progress{run, task, attempt, p.total_bytes, p.processed_bytes,
                                 p.remaining_bytes, p.iteration, p.dirty_bytes_s, p.elapsed_ms});
          });
        if (predict)
          watch(*pred, p, budget_ms, [&] {
            src->abort_migration(vm, hv::call{key + "/cancel", timeout}, [](auto) {});
          });
      };
    auto out_host = fleet_->hosts[from];
    auto in_host = fleet_->hosts[to];
    auto slot_key = call.run + "/" + vm;
    auto c = call_of(call);
    auto deadline = call.deadline;
    auto* metrics = metrics_;
    // The slots, then the migration, asked from the fleet's caller actor; the slots go back
    // whatever happens (a slot request still queued is withdrawn). The hosts answer a slot
    // request still queued at the attempt's deadline with deadline_exceeded.
    caller_job job{[=](caf::event_based_actor* self) {
      // Also from the driver's thread: through the gate.
      auto give_back = [=] {
        gate->pass([&] {
          caf::anon_send(out_host, unslot_atom::value, slot_dir::out, slot_key);
          caf::anon_send(in_host, unslot_atom::value, slot_dir::in, slot_key);
        });
      };
      auto failed = [=](caf::error& err) {
        give_back();
        done(failure_from(err));
      };
      self->request(out_host, caf::infinite, acquire_atom::value, slot_dir::out, slot_key,
                    to_name, deadline)
        .then(
          [=](bool) {
            self->request(in_host, caf::infinite, acquire_atom::value, slot_dir::in, slot_key,
                          from_name, deadline)
              .then(
                [=](bool) {
                  src->migrate(req, c, [=](caf::expected<hv::migration_result> r) {
                    give_back();
                    if (!r) {
                      std::lock_guard<std::mutex> g{pred->mtx};
                      if (pred->cancelled)
                        return done(refused(errc::failed_precondition,
                                            "migration of " + vm + " predicted to fail and "
                                              "cancelled (" + pred->reason
                                              + "); the VM runs on " + from_name));
                      return done(failure_from(r.error()));
                    }
                    if (metrics)
                      gate->pass([&] {
                        metrics->migration_duration.record(r->duration_ms);
                        metrics->migration_downtime.record(r->downtime_ms);
                      });
                    char out[256];
                    std::snprintf(out, sizeof out,
                                  "{\"duration_ms\":%llu,\"downtime_ms\":%llu,\"iterations\":%u,"
                                  "\"transferred_bytes\":%llu,\"mode\":\"%s\"}",
                                  static_cast<unsigned long long>(r->duration_ms),
                                  static_cast<unsigned long long>(r->downtime_ms),
                                  r->iterations,
                                  static_cast<unsigned long long>(r->transferred_bytes),
                                  r->mode == hv::migration_mode::postcopy ? "postcopy"
                                                                          : "precopy");
                    done(task_result::success(out));
                  });
                },
                failed);
          },
          failed);
    }};
    caf::anon_send(fleet_->caller, std::move(job));
  }

  /// Decides from one progress report whether the copy will fail; calls `cancel` once.
  template <class Cancel>
  static void watch(prediction& st, const hv::job_progress& p, uint64_t budget_ms,
                    Cancel cancel) {
    std::unique_lock<std::mutex> g{st.mtx};
    if (st.cancelled)
      return;
    auto dt = p.elapsed_ms > st.last_elapsed_ms ? p.elapsed_ms - st.last_elapsed_ms : 0;
    auto sent = p.processed_bytes > st.last_processed ? p.processed_bytes - st.last_processed : 0;
    st.last_elapsed_ms = p.elapsed_ms;
    st.last_processed = p.processed_bytes;
    // The first pass copies everything once; judge from the second pass on.
    if (p.iteration < 2 || dt == 0)
      return;
    double rate = static_cast<double>(sent) * 1000.0 / static_cast<double>(dt);
    double dirty = static_cast<double>(p.dirty_bytes_s);
    char why[200];
    if (dirty >= 0.9 * rate) {
      std::snprintf(why, sizeof why,
                    "dirty rate %.0f MiB/s against %.0f MiB/s sent after pass %u",
                    dirty / mib, rate / mib, p.iteration);
    } else {
      // Each pass sends what the previous one left dirty: passes shrink by dirty / rate, so
      // what is left takes about dt * r / (1 - r) (or the reported remainder's time).
      auto r = dirty / rate;
      auto left_ms = p.remaining_bytes > 0
                       ? static_cast<double>(p.remaining_bytes) / (rate - dirty) * 1000.0
                       : static_cast<double>(dt) * r / (1.0 - r);
      if (budget_ms == 0 || static_cast<double>(p.elapsed_ms) + left_ms <= budget_ms)
        return;
      std::snprintf(why, sizeof why, "would take %.0f s, over the budget of %.0f s",
                    (static_cast<double>(p.elapsed_ms) + left_ms) / 1000.0,
                    static_cast<double>(budget_ms) / 1000.0);
    }
    st.cancelled = true;
    st.reason = why;
    g.unlock();
    cancel();
  }

private:
  progress_fn progress_;
  engine_metrics* metrics_;
};

// -- vm.handback -------------------------------------------------------------------------

class handback_kind final : public kind_base {
public:
  using kind_base::kind_base;

  void execute(const task_call& call, completion done) override {
    auto vm = string_param(call, "vm");
    auto from_name = string_param(call, "from");
    auto src = driver(from_name, done);
    if (!src)
      return;
    auto dst = driver(string_param(call, "to"), done);
    if (!dst)
      return;
    auto c = call_of(call);
    auto fail = [done](const caf::error& e) { done(failure_from(e)); };
    src->abort_migration(vm, c, [=](caf::expected<hv::done> a) {
      if (!a)
        return fail(a.error());
      src->query(vm, c, [=](caf::expected<hv::domain_info> q) {
        if (!q)
          return fail(q.error());
        auto destroy_target = [=](caf::expected<hv::domain_info> r) {
          if (!r)
            return fail(r.error());
          dst->destroy(vm, c, [=](caf::expected<hv::done> d) {
            done(d ? task_result::success("runs on " + from_name) : failure_from(d.error()));
          });
        };
        switch (q->status) {
          case hv::domain_status::running: return destroy_target(*q);
          case hv::domain_status::paused: return src->resume(vm, c, destroy_target);
          case hv::domain_status::shut_off: return src->start(vm, c, destroy_target);
          default:
            // Absent or crashed: the copy on the target may be the only one. Leave both for
            // an operator rather than destroy it.
            return done(refused(errc::failed_precondition,
                                "VM " + vm + " is " + hv::to_string(q->status) + " on "
                                  + from_name + ": not destroying its copy on the target"));
        }
      });
    });
  }
};

// -- vm.stop, vm.resize ------------------------------------------------------------------

class stop_kind final : public kind_base {
public:
  using kind_base::kind_base;
  void execute(const task_call& call, completion done) override {
    auto d = driver(string_param(call, "host"), done);
    if (!d)
      return;
    d->stop(string_param(call, "vm"), call_of(call), [done](caf::expected<hv::domain_info> r) {
      done(r ? task_result::success() : failure_from(r.error()));
    });
  }
};

class resize_kind final : public kind_base {
public:
  using kind_base::kind_base;
  void execute(const task_call& call, completion done) override {
    auto vm_name = string_param(call, "vm");
    auto v = vm_index(vm_name, done);
    if (v == fleet::npos)
      return;
    auto d = driver(string_param(call, "host"), done);
    if (!d)
      return;
    auto& m = model();
    auto t = m.find_type(string_param(call, "type"));
    if (t == fleet::npos)
      return done(bad_request("param \"type\": VM type \"" + string_param(call, "type")
                              + "\" is not in the catalog"));
    auto what = string_param(call, "what");
    if (what != "vcpus" && what != "memory")
      return done(bad_request("param \"what\": expected vcpus or memory, got \"" + what + "\""));
    auto& vm = m.vms[v];
    auto caps = vm.agent && vm.agent_authorized ? vm.capabilities : fleet::agent_capabilities{};
    auto vcpus = m.types[t].vcpus;
    auto memory = m.types[t].memory_mib;
    auto check_only = flag_param(call, "check_only");
    auto c = call_of(call);
    d->query(vm_name, c, [=](caf::expected<hv::domain_info> q) {
      if (!q)
        return done(failure_from(q.error()));
      bool live = q->status == hv::domain_status::running || q->status == hv::domain_status::paused;
      auto reply = [done](caf::expected<hv::domain_info> r) {
        done(r ? task_result::success() : failure_from(r.error()));
      };
      if (what == "vcpus") {
        if (q->vcpus == vcpus)
          return done(task_result::success());
        bool up = vcpus > q->vcpus;
        if (live && !(up ? caps.cpu_hotplug : caps.cpu_unplug))
          return done(refused(errc::failed_precondition,
                              "VM " + vm_name + ": its agent did not report CPU "
                                + (up ? "hot-plug" : "unplug")
                                + "; a live change to " + std::to_string(vcpus)
                                + " vCPUs is not safe (use a reboot morph)"));
        if (check_only)
          return done(task_result::success());
        return d->set_vcpus(vm_name, vcpus, c, reply);
      }
      if (q->memory_mib == memory)
        return done(task_result::success());
      bool up = memory > q->memory_mib;
      if (live && !(up ? caps.memory_hotplug : caps.memory_unplug))
        return done(refused(errc::failed_precondition,
                            "VM " + vm_name + ": its agent did not report memory "
                              + (up ? "hot-plug" : "unplug") + "; a live change to "
                              + std::to_string(memory) + " MiB is not safe (use a reboot morph)"));
      if (check_only)
        return done(task_result::success());
      d->set_memory(vm_name, memory, c, reply);
    });
  }
};

// -- agent.* -----------------------------------------------------------------------------

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\')
      out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
      continue;
    }
    out += ch;
  }
  return out + "\"";
}

std::string capabilities_json(const fleet::agent_capabilities& c) {
  auto b = [](bool x) { return x ? "true" : "false"; };
  char out[256];
  std::snprintf(out, sizeof out,
                "{\"cpu_hotplug\":%s,\"cpu_unplug\":%s,\"memory_hotplug\":%s,"
                "\"memory_unplug\":%s,\"disk_hotplug\":%s,\"nic_hotplug\":%s}",
                b(c.cpu_hotplug), b(c.cpu_unplug), b(c.memory_hotplug), b(c.memory_unplug),
                b(c.disk_hotplug), b(c.nic_hotplug));
  return out;
}

class agent_kind final : public kind_base {
public:
  enum class op : uint8_t { detect, augment, reconfigure, action };
  agent_kind(caf::actor_system& sys, fleet_handles_ptr fleet, kind_spec spec, op o)
    : kind_base(sys, std::move(fleet), std::move(spec)), op_(o) {
  }

  void execute(const task_call& call, completion done) override {
    auto vm_name = string_param(call, "vm");
    auto v = vm_index(vm_name, done);
    if (v == fleet::npos)
      return;
    auto d = driver(string_param(call, "host"), done);
    if (!d)
      return;
    auto& vm = model().vms[v];
    if (!vm.agent)
      return done(refused(errc::failed_precondition,
                          "VM " + vm_name + " has no migration agent (fail-safe defaults: no "
                                            "live reconfiguration)"));
    std::string command;
    std::string output;
    switch (op_) {
      case op::detect:
        command = R"({"execute":"guest-info"})";
        output = capabilities_json(vm.agent_authorized ? vm.capabilities
                                                       : fleet::agent_capabilities{});
        break;
      case op::augment: {
        if (!vm.agent_authorized)
          return done(refused(errc::permission_denied,
                              "VM " + vm_name + ": the administrator has not authorized its "
                                                "agent to augment the guest"));
        auto cap = string_param(call, "capability");
        command = guest_exec("augment", cap);
        output = "augmented " + cap;
        break;
      }
      case op::reconfigure: {
        auto action = string_param(call, "action");
        command = guest_exec("reconfigure", action);
        output = "reconfigured: " + action;
        break;
      }
      case op::action:
        command = string_param(call, "command");
        if (command.empty() || command.front() != '{')
          return done(bad_request("param \"command\": expected a JSON agent command, got \""
                                  + command + "\""));
        break;
    }
    d->agent_command(vm_name, command, call_of(call),
                     [done, output](caf::expected<std::string> r) {
                       if (!r)
                         return done(failure_from(r.error()));
                       done(task_result::success(output.empty() ? *r : output));
                     });
  }

private:
  // The agent's helper inside the guest, run through the guest agent.
  static std::string guest_exec(const std::string& verb, const std::string& arg) {
    return R"({"execute":"guest-exec","arguments":{"path":"/usr/lib/ferry/agent","arg":[)"
           + json_string(verb) + "," + json_string(arg) + R"(],"capture-output":true}})";
  }

  op op_;
};

// -- storage.sync, volume.move, volume.return --------------------------------------------

/// The progress of a copy (transfer) of `call`'s attempt, reported to `report`; empty when
/// nobody listens.
std::function<void(const hv::job_progress&)> copy_progress(const task_call& call,
                                                           const progress_fn& report,
                                                           send_gate_ptr gate) {
  if (!report)
    return {};
  return [report, run = call.run, task = call.task_id(), attempt = call.attempt,
          gate = std::move(gate)](const hv::job_progress& p) {
    gate->pass([&] {
      report(task_progress{run, task, attempt, p.total_bytes, p.processed_bytes,
                           p.remaining_bytes, p.iteration, p.dirty_bytes_s, p.elapsed_ms});
    });
  };
}

class sync_kind final : public kind_base {
public:
  sync_kind(caf::actor_system& sys, fleet_handles_ptr fleet, kind_spec spec, progress_fn progress)
    : kind_base(sys, std::move(fleet), std::move(spec)), progress_(std::move(progress)) {
  }
  void execute(const task_call& call, completion done) override {
    auto vm_name = string_param(call, "vm");
    auto v = vm_index(vm_name, done);
    if (v == fleet::npos)
      return;
    auto src = driver(string_param(call, "from"), done);
    if (!src)
      return;
    auto to = host_index(string_param(call, "to"), done);
    if (to == fleet::npos)
      return;
    auto disk = string_param(call, "disk");
    auto& vm = model().vms[v];
    auto i = std::find_if(vm.local_disks.begin(), vm.local_disks.end(),
                          [&](auto& d) { return d.target == disk; });
    if (i == vm.local_disks.end())
      return done(bad_request("param \"disk\": VM " + vm_name + " has no local disk \"" + disk
                              + "\""));
    hv::transfer_request req{vm_name, "disk " + disk, model().hosts[to].driver,
                             i->size_gib << 30, false,
                             copy_progress(call, progress_, fleet_->gate)};
    src->transfer(req, call_of(call), report(std::move(done), {}));
  }

  static hv::reply<hv::transfer_result> report(completion done, std::string extra) {
    return [done = std::move(done), extra](caf::expected<hv::transfer_result> r) {
      if (!r)
        return done(failure_from(r.error()));
      char out[160];
      std::snprintf(out, sizeof out, "{\"duration_ms\":%llu,\"wire_bytes\":%llu%s}",
                    static_cast<unsigned long long>(r->duration_ms),
                    static_cast<unsigned long long>(r->wire_bytes), extra.c_str());
      done(task_result::success(out));
    };
  }

private:
  progress_fn progress_;
};

class volume_kind final : public kind_base {
public:
  volume_kind(caf::actor_system& sys, fleet_handles_ptr fleet, kind_spec spec, bool move,
              progress_fn progress)
    : kind_base(sys, std::move(fleet), std::move(spec)),
      move_(move),
      progress_(std::move(progress)) {
  }
  void execute(const task_call& call, completion done) override {
    auto& m = model();
    auto name = string_param(call, "volume");
    auto vol = m.find_volume(name);
    if (vol == fleet::npos)
      return done(refused(errc::not_found, "volume \"" + name + "\" is not in the fleet"));
    auto zone_name = string_param(call, "zone");
    auto z = m.find_zone(zone_name);
    if (z == fleet::npos)
      return done(refused(errc::not_found, "zone \"" + zone_name + "\" is not in the fleet"));
    auto change = fleet::encode_volume_zone(name, zone_name);
    if (!move_) {
      // Back to a zone whose copy is intact (the move is undone before the switch-over).
      auto r = task_result::success("in " + zone_name);
      r.changes.push_back(std::move(change));
      return done(std::move(r));
    }
    auto from = host_index(string_param(call, "from"), done);
    if (from == fleet::npos)
      return;
    auto to = host_index(string_param(call, "to"), done);
    if (to == fleet::npos)
      return;
    if (m.hosts[to].zone != z)
      return done(bad_request("param \"to\": host \"" + m.hosts[to].name + "\" is not in zone \""
                              + zone_name + "\""));
    uint64_t bytes = 0;
    for (auto p : m.volumes[vol].partitions)
      bytes += m.partitions[p].size_gib << 30;
    // The compressed path when it moves data faster than the direct link.
    auto mode = string_param(call, "compress", "auto");
    if (mode != "auto" && mode != "always" && mode != "never")
      return done(bad_request("param \"compress\": expected auto, always or never, got \""
                              + mode + "\""));
    bool compress = mode == "always";
    if (mode == "auto") {
      auto za = m.hosts[from].zone;
      for (auto& l : m.links)
        if ((l.a == za && l.b == z) || (l.a == z && l.b == za))
          compress = l.compressed_mib_s > l.bandwidth_mib_s;
    }
    hv::transfer_request req{name, "volume " + name, m.hosts[to].driver, bytes, compress,
                             copy_progress(call, progress_, fleet_->gate)};
    auto path = std::string{",\"path\":\""} + (compress ? "compressed" : "direct") + "\"";
    fleet_->drivers[from]->transfer(
      req, call_of(call),
      sync_kind::report(
        [done, change](task_result r) mutable {
          if (r.code == errc::ok)
            r.changes.push_back(change);
          done(std::move(r));
        },
        path));
  }

private:
  bool move_;
  progress_fn progress_;
};

// -- fleet.admit -------------------------------------------------------------------------

class admit_kind final : public kind_base {
public:
  using kind_base::kind_base;
  void execute(const task_call& call, completion done) override {
    recommend_request req;
    req.vm = string_param(call, "vm");
    if (vm_index(req.vm, done) == fleet::npos)
      return;
    req.type = string_param(call, "type");
    req.zone = string_param(call, "zone");
    auto pref = string_param(call, "preference", "spread");
    if (pref != "spread" && pref != "colocate")
      return done(bad_request("param \"preference\": expected spread or colocate, got \"" + pref
                              + "\""));
    req.pref = pref == "colocate" ? fleet::preference::colocate : fleet::preference::spread;
    auto dir = fleet_->directory;
    auto timeout = time_left(call);
    auto model = fleet_->model;
    sys_.spawn([=](caf::event_based_actor* self) {
      self->request(dir, timeout, recommend_atom::value, req)
        .then(
          [=](std::vector<fleet::decision>& ds) {
            for (auto& d : ds)
              if (d.admitted)
                return done(task_result::success(model->zones[d.zone].name));
            std::string why;
            for (auto& d : ds)
              why += (why.empty() ? "" : "; ") + model->zones[d.zone].name + ": " + d.reason;
            done(refused(errc::failed_precondition,
                         "move of " + req.vm + " denied: "
                           + (why.empty() ? std::string{"no other zone"} : why)));
          },
          [=](caf::error& err) { done(failure_from(err)); });
    });
  }
};

// -- notify ------------------------------------------------------------------------------

class notify_kind final : public task_executor {
public:
  notify_kind(notify_fn fn) : fn_(std::move(fn)) {
  }
  kind_spec spec() const override {
    return notify_spec();
  }
  static kind_spec notify_spec() {
    return {"notify",
            {{"event", param_type::string, true, "What happened (\"migrated\", ...)."},
             {"message", param_type::string, false, "Details."}},
            false,
            "Tells the embedding application (engine_options::notify), or logs."};
  }
  void execute(const task_call& call, completion done) override {
    notification n{call.run, call.task_id(), string_param(call, "event"),
                   string_param(call, "message")};
    if (fn_)
      fn_(n);
    else
      log().info("run {}: {}: {}", n.run, n.event, n.message);
    done(task_result::success(n.event + (n.message.empty() ? "" : ": " + n.message)));
  }

private:
  notify_fn fn_;
};

// -- the catalog -------------------------------------------------------------------------

template <class T>
struct type_tag {
  using type = T;
};

param_spec req(const char* name, const char* what, param_type t = param_type::string) {
  return {name, t, true, what};
}

param_spec opt(const char* name, const char* what, param_type t = param_type::string) {
  return {name, t, false, what};
}

} // namespace

std::vector<kind_spec> migration_kind_specs() {
  auto vm = req("vm", "The VM (its domain name).");
  auto host = req("host", "The host it runs on.");
  auto from = req("from", "The source host.");
  auto to = req("to", "The target host.");
  auto b = param_type::boolean;
  auto i = param_type::integer;
  return {
    {"vm.migrate",
     {vm, from, to, opt("mode", "precopy or postcopy. Default: precopy."),
      opt("copy_storage", "Copy local disks too. Default: false.", b),
      within(opt("max_downtime_ms", "Longest pause at switch-over. Default: the fleet's policy.",
                 i),
             1, uint32_limit),
      within(opt("bandwidth_mib_s", "Bandwidth cap. Default: none.", i), 0, exact_integer_limit),
      opt("paused_handover", "End paused on the target, the source kept. Default: false.", b),
      opt("predict_failure", "Cancel early when the copy will not converge. Default: false.", b),
      within(opt("time_budget_s", "Longest copy before cancelling. Default: the fleet's policy.",
                 i),
             1, uint32_limit)},
     false,
     "Takes the hosts' migration slots and migrates the VM; output: duration, downtime, "
     "iterations, bytes, mode."},
    {"vm.handback", {vm, from, to}, false,
     "Undoes a paused handover: the VM resumes on `from`, its copy on `to` is destroyed."},
    {"vm.stop", {vm, host}, false, "Stops the VM, keeping its definition."},
    {"vm.resize",
     {vm, host, req("type", "The VM type whose size to take."),
      req("what", "vcpus or memory."),
      opt("check_only",
          "Only check that the change would be taken, changing nothing (a morph checks before "
          "its point of no return). Default: false.",
          b)},
     false, "Sets the VM's vCPUs or memory to a type's, live only when its agent can take it."},
    {"agent.detect", {vm, host}, false, "Asks the VM's agent; output: its capabilities."},
    {"agent.augment", {vm, host, req("capability", "What to enable in the guest.")}, false,
     "Augments the guest's capabilities (only when the administrator authorized it)."},
    {"agent.reconfigure", {vm, host, req("action", "The reconfiguration.")}, false,
     "Has the agent reconfigure the guest (online CPUs, memory...)."},
    {"agent.action", {vm, host, req("command", "A JSON agent command.")}, false,
     "Runs a custom agent command."},
    {"storage.sync", {vm, from, to, req("disk", "The local disk (its target, vdb).")}, false,
     "Copies a local disk from the source (secondary) to the target (primary)."},
    {"volume.move",
     {req("volume", "The volume."), req("zone", "The target zone."),
      req("from", "A host of the source zone."), req("to", "A host of the target zone."),
      opt("compress", "auto, always or never. Default: auto (when the link is constrained).")},
     false, "Moves a volume's data to another zone; output: duration, wire bytes, path."},
    {"volume.return", {req("volume", "The volume."), req("zone", "Its original zone.")}, false,
     "Records a volume back in its original zone (the move's compensation)."},
    {"fleet.admit",
     {vm, opt("zone", "The target zone. Default: the best other zone."),
      opt("type", "The type to run as. Default: the VM's."),
      opt("preference", "spread or colocate. Default: spread.")},
     false, "Admission to a zone; output: the zone, or a failure naming the denial."},
    notify_kind::notify_spec(),
  };
}

std::shared_ptr<task_executor> make_notify_kind(notify_fn notify) {
  return std::make_shared<notify_kind>(std::move(notify));
}

void add_migration_kinds(executor_registry& reg, caf::actor_system& sys,
                         fleet_handles_ptr fleet, notify_fn notify, progress_fn progress,
                         engine_metrics* metrics) {
  using aop = agent_kind::op;
  using maker = std::function<std::shared_ptr<task_executor>(const kind_spec&)>;
  auto of = [&](auto tag) -> maker {
    using T = typename decltype(tag)::type;
    return [&](const kind_spec& spec) { return std::make_shared<T>(sys, fleet, spec); };
  };
  auto agent = [&](aop o) -> maker {
    return [&, o](const kind_spec& spec) {
      return std::make_shared<agent_kind>(sys, fleet, spec, o);
    };
  };
  auto volume = [&](bool move) -> maker {
    return [&, move](const kind_spec& spec) {
      return std::make_shared<volume_kind>(sys, fleet, spec, move, progress);
    };
  };
  std::map<std::string, maker> makers{
    {"vm.migrate",
     [&](const kind_spec& spec) {
       return std::make_shared<migrate_kind>(sys, fleet, spec, progress, metrics);
     }},
    {"vm.handback", of(type_tag<handback_kind>{})},
    {"vm.stop", of(type_tag<stop_kind>{})},
    {"vm.resize", of(type_tag<resize_kind>{})},
    {"agent.detect", agent(aop::detect)},
    {"agent.augment", agent(aop::augment)},
    {"agent.reconfigure", agent(aop::reconfigure)},
    {"agent.action", agent(aop::action)},
    {"storage.sync",
     [&](const kind_spec& spec) { return std::make_shared<sync_kind>(sys, fleet, spec, progress); }},
    {"volume.move", volume(true)},
    {"volume.return", volume(false)},
    {"fleet.admit", of(type_tag<admit_kind>{})},
    {"notify", [&](const kind_spec&) { return make_notify_kind(notify); }},
  };
  for (auto& spec : migration_kind_specs())
    reg.add(makers.at(spec.name)(spec));
}

} // namespace ferry
