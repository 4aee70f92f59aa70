// How `ferry fleet`, `ferry recommend` and `ferry options` print: tables (or, with --json, the
// message) from the API's FleetResponse, RecommendResponse and OptionsResponse, whether ferryd
// answered or the local command (fleet.cpp) built them from a fleet file; and the commands
// against ferryd.
#include <cstdio>
#include <string>

#include "apps/ferry/commands.hpp"
#include "apps/ferry/remote.hpp"
#include "ferry/v1/api.pb.h"

namespace ferry::cli {

namespace {

std::string gib(uint64_t mib) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(mib) / 1024.0);
  return buf;
}

std::string frac(uint64_t a, uint64_t b) {
  return std::to_string(a) + "/" + std::to_string(b);
}

const char* lease_name(int s) {
  switch (s) {
    case 1: return "primary";
    case 2: return "standby";
    case 3: return "deactivated";
    case 4: return "terminated";
    default: return "none";
  }
}

} // namespace

int print_fleet(const v1::FleetResponse& f, bool json) {
  if (json) {
    print_json(f);
    return exit_ok;
  }
  std::printf("%-12s %6s %15s %19s %13s\n", "ZONE", "HOSTS", "VCPUS FREE/ALL",
              "MEMORY GiB FREE/ALL", "SLOTS FREE/ALL");
  for (auto& z : f.zones())
    std::printf("%-12s %6u %15s %19s %13s\n", z.name().c_str(), z.hosts(),
                frac(z.free().vcpus(), z.total().vcpus()).c_str(),
                (gib(z.free().memory_mib()) + "/" + gib(z.total().memory_mib())).c_str(),
                frac(z.free().slots(), z.total().slots()).c_str());
  std::printf("\n%-12s %-10s %-22s %11s %15s %9s %4s %7s %7s %5s\n", "HOST", "ZONE", "DRIVER",
              "VCPUS FREE", "MEMORY GiB FREE", "SLOTS", "VMS", "MIG IN", "MIG OUT", "RESV");
  for (auto& h : f.hosts())
    std::printf("%-12s %-10s %-22s %11s %15s %9s %4u %7s %7s %5d\n", h.name().c_str(),
                h.zone().c_str(), h.driver().c_str(),
                frac(h.free().vcpus(), h.total().vcpus()).c_str(),
                (gib(h.free().memory_mib()) + "/" + gib(h.total().memory_mib())).c_str(),
                frac(h.free().slots(), h.total().slots()).c_str(), h.vms(),
                frac(h.migrations_in().active(), h.migrations_in().limit()).c_str(),
                frac(h.migrations_out().active(), h.migrations_out().limit()).c_str(),
                h.reservations_size());
  std::printf("\n%-16s %-8s %-12s %-10s %-16s %s\n", "VM", "TYPE", "HOST", "ZONE", "ADDRESS",
              "AGENT");
  for (auto& v : f.vms())
    std::printf("%-16s %-8s %-12s %-10s %-16s %s\n", v.name().c_str(), v.type().c_str(),
                v.host().c_str(), v.zone().c_str(), v.address().c_str(),
                v.agent() ? (v.agent_authorized() ? "authorized" : "yes") : "-");
  if (f.partitions_size() > 0) {
    std::printf("\n%-16s %-12s %6s %s\n", "PARTITION", "MASTER", "EPOCH", "LEASES");
    for (auto& p : f.partitions()) {
      std::string leases;
      for (auto& l : p.leases())
        leases += (leases.empty() ? "" : " ") + l.host() + ":" + lease_name(l.state());
      std::printf("%-16s %-12s %6llu %s\n", p.name().c_str(), p.master().c_str(),
                  static_cast<unsigned long long>(p.epoch()), leases.c_str());
    }
  }
  for (auto& r : f.routes())
    if (!r.forward_to().empty())
      std::printf("address %s on %s forwarded to %s\n", r.address().c_str(), r.host().c_str(),
                  r.forward_to().c_str());
  return exit_ok;
}

int print_recommend(const v1::RecommendResponse& r, bool json) {
  bool any = false;
  for (auto& d : r.zones())
    any = any || d.admitted();
  if (json) {
    print_json(r);
  } else {
    std::printf("%-4s %-10s %-8s %-15s %-10s %s\n", "RANK", "ZONE", "DECISION", "DENIAL", "HOST",
                "REASON");
    for (auto& d : r.zones())
      std::printf("%-4u %-10s %-8s %-15s %-10s %s\n", d.rank(), d.zone().c_str(),
                  d.admitted() ? "admit" : "deny", d.admitted() ? "-" : d.denial().c_str(),
                  d.host().empty() ? "-" : d.host().c_str(), d.reason().c_str());
  }
  return any ? exit_ok : exit_denied;
}

int print_options(const v1::OptionsResponse& r, bool json) {
  if (json) {
    print_json(r);
    return exit_ok;
  }
  std::printf("%-10s %5s %10s %-8s %-17s %-8s %s\n", "TYPE", "VCPUS", "MEMORY MiB", "FEASIBLE",
              "METHOD", "HOST", "REASON");
  for (auto& x : r.options())
    std::printf("%-10s %5u %10llu %-8s %-17s %-8s %s\n", x.type().c_str(), x.vcpus(),
                static_cast<unsigned long long>(x.memory_mib()), x.feasible() ? "yes" : "no",
                x.method().c_str(), x.host().empty() ? "-" : x.host().c_str(),
                x.reason().c_str());
  return exit_ok;
}

int remote_fleet(const conn_args& c, bool json) {
  int rc = exit_ok;
  auto cl = connect(c, "fleet", rc);
  if (!cl)
    return rc;
  auto f = cl->fleet();
  return f ? print_fleet(*f, json) : fail("fleet", f.error());
}

int remote_recommend(const conn_args& c, const v1::RecommendRequest& req, bool json) {
  int rc = exit_ok;
  auto cl = connect(c, "recommend", rc);
  if (!cl)
    return rc;
  auto r = cl->recommend(req);
  return r ? print_recommend(*r, json) : fail("recommend", r.error());
}

int remote_options(const conn_args& c, const std::string& vm, bool json) {
  int rc = exit_ok;
  auto cl = connect(c, "options", rc);
  if (!cl)
    return rc;
  v1::OptionsRequest req;
  req.set_vm(vm);
  auto r = cl->options(req);
  return r ? print_options(*r, json) : fail("options", r.error());
}

} // namespace ferry::cli
