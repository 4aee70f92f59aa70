#include "apps/ferryd/convert.hpp"

#include <map>

#include "common/errc.hpp"
#include "ferry/v1/journal.pb.h"
#include "persistence/codec.hpp"
#include "workflows/definition_codec.hpp"

namespace ferry::api {

namespace {

void capacity(const fleet::capacity& c, v1::CapacityStatus& out) {
  out.set_vcpus(c.vcpus);
  out.set_memory_mib(c.memory_mib);
  out.set_slots(c.slots);
}

std::string name_or_empty(const std::vector<fleet::host>& hosts, fleet::index i) {
  return i == fleet::npos ? std::string{} : hosts[i].name;
}

} // namespace

v1::RunStatus to_proto(run_status s) noexcept {
  return static_cast<v1::RunStatus>(static_cast<int>(s));
}

run_status from_proto(v1::RunStatus s) noexcept {
  return static_cast<run_status>(static_cast<int>(s));
}

void to_proto(const run_state& s, v1::RunCheckpoint& out) {
  out.ParseFromString(encode_checkpoint(s));
}

void to_proto(const run_state& s, v1::Run& out, bool with_definition) {
  to_proto(s, *out.mutable_state());
  if (s.def && with_definition)
    out.mutable_definition()->ParseFromString(s.def->encoded);
}

void to_proto(const run_summary& s, v1::RunSummary& out) {
  out.set_run_id(s.id);
  out.set_definition_name(s.definition_name);
  out.set_status(to_proto(s.status));
  out.set_created_ms(s.created);
  out.set_updated_ms(s.updated);
  out.set_last_seq(s.last_seq);
  out.set_reason(s.reason);
}

void to_proto(const task_progress& p, v1::Progress& out) {
  out.set_task(p.task);
  out.set_attempt(p.attempt);
  out.set_processed_bytes(p.processed_bytes);
  out.set_remaining_bytes(p.remaining_bytes);
  out.set_total_bytes(p.total_bytes);
  out.set_iteration(p.iteration);
  out.set_dirty_bytes_s(p.dirty_bytes_s);
  out.set_elapsed_ms(p.elapsed_ms);
}

void to_proto(const definition& def, const std::vector<event>& events,
              google::protobuf::RepeatedPtrField<v1::Event>& out) {
  v1::EventBatch batch;
  batch.ParseFromString(encode_events(def, events));
  for (auto& e : *batch.mutable_events())
    out.Add(std::move(e));
}

void to_proto(const fleet_snapshot& s, const fleet::model& m, v1::FleetResponse& out) {
  std::map<std::string, std::string> zone_of_host;
  for (auto& z : s.zones) {
    auto* p = out.add_zones();
    p->set_name(z.name);
    p->set_hosts(z.hosts);
    capacity(z.total, *p->mutable_total());
    capacity(z.free, *p->mutable_free());
  }
  for (auto& h : s.hosts) {
    zone_of_host[h.name] = h.zone;
    auto* p = out.add_hosts();
    p->set_name(h.name);
    p->set_zone(h.zone);
    p->set_driver(h.driver);
    capacity(h.total, *p->mutable_total());
    capacity(h.free, *p->mutable_free());
    p->set_vms(static_cast<uint32_t>(h.vms.size()));
    p->mutable_migrations_in()->set_active(h.in_active);
    p->mutable_migrations_in()->set_queued(h.in_queued);
    p->mutable_migrations_in()->set_limit(h.in_limit);
    p->mutable_migrations_out()->set_active(h.out_active);
    p->mutable_migrations_out()->set_queued(h.out_queued);
    p->mutable_migrations_out()->set_limit(h.out_limit);
    for (auto& r : h.reservations) {
      auto* pr = p->add_reservations();
      pr->set_key(r.key);
      pr->set_vm(r.vm);
      capacity(r.need, *pr->mutable_capacity());
    }
  }
  for (auto& v : s.vms) {
    auto* p = out.add_vms();
    p->set_name(v.vm);
    p->set_type(v.type);
    p->set_host(v.host);
    p->set_zone(zone_of_host[v.host]);
    auto vi = m.find_vm(v.vm);
    if (vi != fleet::npos) {
      p->set_address(m.vms[vi].address);
      p->set_agent(m.vms[vi].agent);
      p->set_agent_authorized(m.vms[vi].agent_authorized);
    }
  }
  for (auto& l : s.leases) {
    if (l.table.leases.empty())
      continue;
    auto* p = out.add_partitions();
    p->set_name(l.partition);
    p->set_master(l.master);
    p->set_epoch(l.table.epoch);
    for (auto& x : l.table.leases) {
      auto* pl = p->add_leases();
      pl->set_host(x.host);
      pl->set_state(static_cast<v1::LeaseState>(static_cast<int>(x.state)));
      pl->set_epoch(x.epoch);
    }
  }
  for (auto& r : s.routes) {
    auto* p = out.add_routes();
    p->set_address(r.address);
    p->set_host(r.host);
    p->set_forward_to(r.forward_to);
  }
}

void to_proto(const std::vector<fleet::decision>& ranked, const fleet::model& m,
              v1::RecommendResponse& out) {
  uint32_t rank = 0;
  for (auto& d : ranked) {
    auto* p = out.add_zones();
    p->set_rank(++rank);
    p->set_zone(m.zones[d.zone].name);
    p->set_admitted(d.admitted);
    if (!d.admitted)
      p->set_denial(fleet::to_string(d.why));
    p->set_host(name_or_empty(m.hosts, d.host));
    p->set_estimated_ms(d.estimated_ms);
    p->set_downtime_ms(d.downtime_ms);
    p->set_reason(d.reason);
  }
}

void to_proto(const std::vector<fleet::morph_option>& opts, const fleet::model& m,
              v1::OptionsResponse& out) {
  for (auto& x : opts) {
    auto& t = m.types[x.type];
    auto* p = out.add_options();
    p->set_type(t.name);
    p->set_vcpus(t.vcpus);
    p->set_memory_mib(t.memory_mib);
    p->set_feasible(x.feasible);
    p->set_method(fleet::to_string(x.method));
    p->set_host(name_or_empty(m.hosts, x.host));
    p->set_reason(x.reason);
  }
}

caf::error fleet_of(const fleet_runtime& rt, v1::FleetResponse& out) {
  auto snap = rt.snapshot();
  if (!snap)
    return snap.error();
  to_proto(*snap, rt.model(), out);
  return caf::none;
}

caf::error recommend_of(const fleet_runtime& rt, const v1::RecommendRequest& req,
                        v1::RecommendResponse& out) {
  if (req.vm().empty())
    return make_error(errc::invalid_argument, "vm: required");
  auto ranked = rt.recommend(recommend_request{
    req.vm(), req.type(),
    req.colocate() ? fleet::preference::colocate : fleet::preference::spread, req.zone()});
  if (!ranked)
    return ranked.error();
  out.set_vm(req.vm());
  to_proto(*ranked, rt.model(), out);
  return caf::none;
}

caf::error options_of(const fleet_runtime& rt, const std::string& vm, v1::OptionsResponse& out) {
  if (vm.empty())
    return make_error(errc::invalid_argument, "vm: required");
  auto& m = rt.model();
  auto vi = m.find_vm(vm);
  if (vi == fleet::npos)
    return make_error(errc::not_found, "vm: \"" + vm + "\" is not in the fleet");
  auto snap = rt.snapshot();
  if (!snap)
    return snap.error();
  std::vector<fleet::capacity> free(m.hosts.size());
  for (auto& h : snap->hosts)
    free[m.find_host(h.name)] = h.free;
  out.set_vm(vm);
  out.set_type(m.types[m.vms[vi].type].name);
  to_proto(fleet::morph_options(m, vi, free), m, out);
  return caf::none;
}

caf::expected<run_state> from_proto(const v1::RunCheckpoint& cp, const definition_ptr& def) {
  return decode_checkpoint(cp.SerializeAsString(),
                           [&](const std::string&) -> caf::expected<definition_ptr> {
                             if (!def)
                               return make_error(errc::data_loss, "the run has no definition");
                             return def;
                           });
}

caf::expected<run_state> from_proto(const v1::Run& run) {
  auto def = decode_definition(run.definition().SerializeAsString());
  if (!def)
    return def.error();
  return from_proto(run.state(), *def);
}

caf::expected<std::vector<event>>
from_proto(const google::protobuf::RepeatedPtrField<v1::Event>& evs, const definition_ptr& def) {
  v1::EventBatch batch;
  *batch.mutable_events() = evs;
  return decode_events(batch.SerializeAsString(), def,
                       [&](const std::string&) -> caf::expected<definition_ptr> { return def; });
}

} // namespace ferry::api
