// Without a FILE, each of these asks ferryd instead (remote_fleet.cpp).
// `ferry fleet FILE [--db DIR] [--json]`: the fleet as its actors see it — zones, hosts
// (capacity, VMs, migration slots, reservations), VMs, leases and forwarded addresses — with
// the state a journal holds when --db is given. `ferry recommend FILE VM [--type T]
// [--zone Z] [--colocate] [--db DIR] [--json]`: the zones ranked for a VM (or one zone's
// admission), each admitted or denied with its reason. `ferry options FILE VM [--db DIR] [--json]`: the types the VM can morph to,
// each with how and why. All run the fleet on the embedded engine.
#include <cstdio>
#include <sstream>

#include "actors/engine.hpp"
#include "actors/fleet_runtime.hpp"
#include "apps/ferry/commands.hpp"
#include "apps/ferry/output.hpp"
#include "apps/ferry/remote.hpp"
#include "fleet/fleet_codec.hpp"
#include "fleet/options.hpp"

namespace ferry::cli {

namespace {

struct fleet_args {
  conn_args conn;
  std::vector<std::string> positional;
  std::string file;
  std::string db;
  std::string vm;
  std::string type;
  std::string zone;
  bool colocate = false;
  bool json = false;
};

std::string gib(uint64_t mib) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(mib) / 1024.0);
  return buf;
}

std::string capacity_json(const fleet::capacity& c) {
  return "{\"vcpus\":" + std::to_string(c.vcpus) + ",\"memory_mib\":"
         + std::to_string(c.memory_mib) + ",\"slots\":" + std::to_string(c.slots) + "}";
}

// Opens the engine with the fleet (and the journal, when given).
caf::expected<std::unique_ptr<engine>> open_fleet(const fleet_args& args, int& rc) {
  auto f = fleet::load_fleet_file(args.file);
  if (!f) {
    rc = exit_bad_input;
    return f.error();
  }
  engine_options opts;
  opts.journal_path = args.db;
  opts.recover = false;
  opts.threads = 2;
  opts.fleet = *f;
  auto e = engine::open(opts);
  if (!e)
    rc = exit_engine_error;
  return e;
}

std::string lease_list(const lease_reply& l) {
  std::string out;
  for (auto& x : l.table.leases)
    out += (out.empty() ? "" : " ") + x.host + ":" + fleet::to_string(x.state);
  return out;
}

int show_fleet(const fleet_args& args) {
  int rc = exit_ok;
  auto eng = open_fleet(args, rc);
  if (!eng) {
    std::fprintf(stderr, "ferry fleet: %s\n", describe(eng.error()).c_str());
    return rc;
  }
  auto snap = (*eng)->fleet()->snapshot();
  if (!snap) {
    std::fprintf(stderr, "ferry fleet: %s\n", describe(snap.error()).c_str());
    return exit_engine_error;
  }
  auto& s = *snap;
  auto& m = (*eng)->fleet()->model();
  std::map<std::string, std::string> zone_of_host;
  for (auto& h : s.hosts)
    zone_of_host[h.name] = h.zone;
  if (args.json) {
    std::ostringstream o;
    o << "{\"zones\":[";
    for (size_t i = 0; i < s.zones.size(); ++i)
      o << (i ? "," : "") << "{\"name\":" << json_quote(s.zones[i].name)
        << ",\"hosts\":" << s.zones[i].hosts << ",\"total\":" << capacity_json(s.zones[i].total)
        << ",\"free\":" << capacity_json(s.zones[i].free) << "}";
    o << "],\"hosts\":[";
    for (size_t i = 0; i < s.hosts.size(); ++i) {
      auto& h = s.hosts[i];
      o << (i ? "," : "") << "{\"name\":" << json_quote(h.name) << ",\"zone\":" << json_quote(h.zone)
        << ",\"driver\":" << json_quote(h.driver) << ",\"total\":" << capacity_json(h.total)
        << ",\"free\":" << capacity_json(h.free) << ",\"vms\":" << h.vms.size()
        << ",\"migrations_in\":{\"active\":" << h.in_active << ",\"queued\":" << h.in_queued
        << ",\"limit\":" << h.in_limit << "},\"migrations_out\":{\"active\":" << h.out_active
        << ",\"queued\":" << h.out_queued << ",\"limit\":" << h.out_limit
        << "},\"reservations\":[";
      for (size_t j = 0; j < h.reservations.size(); ++j)
        o << (j ? "," : "") << "{\"key\":" << json_quote(h.reservations[j].key)
          << ",\"vm\":" << json_quote(h.reservations[j].vm)
          << ",\"capacity\":" << capacity_json(h.reservations[j].need) << "}";
      o << "]}";
    }
    o << "],\"vms\":[";
    for (size_t i = 0; i < s.vms.size(); ++i) {
      auto& v = s.vms[i];
      auto& spec = m.vms[m.find_vm(v.vm)];
      o << (i ? "," : "") << "{\"name\":" << json_quote(v.vm) << ",\"type\":" << json_quote(v.type)
        << ",\"host\":" << json_quote(v.host) << ",\"zone\":" << json_quote(zone_of_host[v.host])
        << ",\"address\":" << json_quote(spec.address) << ",\"agent\":" << (spec.agent ? "true" : "false")
        << "}";
    }
    o << "],\"leases\":[";
    bool first = true;
    for (auto& l : s.leases) {
      if (l.table.leases.empty())
        continue;
      o << (first ? "" : ",") << "{\"partition\":" << json_quote(l.partition)
        << ",\"master\":" << json_quote(l.master) << ",\"epoch\":" << l.table.epoch << ",\"leases\":[";
      first = false;
      for (size_t j = 0; j < l.table.leases.size(); ++j)
        o << (j ? "," : "") << "{\"host\":" << json_quote(l.table.leases[j].host)
          << ",\"state\":" << json_quote(fleet::to_string(l.table.leases[j].state))
          << ",\"epoch\":" << l.table.leases[j].epoch << "}";
      o << "]}";
    }
    o << "],\"routes\":[";
    for (size_t i = 0; i < s.routes.size(); ++i)
      o << (i ? "," : "") << "{\"address\":" << json_quote(s.routes[i].address)
        << ",\"host\":" << json_quote(s.routes[i].host)
        << ",\"forward_to\":" << json_quote(s.routes[i].forward_to) << "}";
    o << "]}";
    std::printf("%s\n", o.str().c_str());
    return exit_ok;
  }
  std::printf("%-12s %6s %15s %19s %13s\n", "ZONE", "HOSTS", "VCPUS FREE/ALL", "MEMORY GiB FREE/ALL",
              "SLOTS FREE/ALL");
  for (auto& z : s.zones)
    std::printf("%-12s %6u %15s %19s %13s\n", z.name.c_str(), z.hosts,
                (std::to_string(z.free.vcpus) + "/" + std::to_string(z.total.vcpus)).c_str(),
                (gib(z.free.memory_mib) + "/" + gib(z.total.memory_mib)).c_str(),
                (std::to_string(z.free.slots) + "/" + std::to_string(z.total.slots)).c_str());
  std::printf("\n%-12s %-10s %-22s %11s %15s %9s %4s %7s %7s %5s\n", "HOST", "ZONE", "DRIVER",
              "VCPUS FREE", "MEMORY GiB FREE", "SLOTS", "VMS", "MIG IN", "MIG OUT", "RESV");
  for (auto& h : s.hosts)
    std::printf("%-12s %-10s %-22s %11s %15s %9s %4zu %7s %7s %5zu\n", h.name.c_str(),
                h.zone.c_str(), h.driver.c_str(),
                (std::to_string(h.free.vcpus) + "/" + std::to_string(h.total.vcpus)).c_str(),
                (gib(h.free.memory_mib) + "/" + gib(h.total.memory_mib)).c_str(),
                (std::to_string(h.free.slots) + "/" + std::to_string(h.total.slots)).c_str(),
                h.vms.size(),
                (std::to_string(h.in_active) + "/" + std::to_string(h.in_limit)).c_str(),
                (std::to_string(h.out_active) + "/" + std::to_string(h.out_limit)).c_str(),
                h.reservations.size());
  std::printf("\n%-16s %-8s %-12s %-10s %-16s %s\n", "VM", "TYPE", "HOST", "ZONE", "ADDRESS",
              "AGENT");
  for (auto& v : s.vms) {
    auto& spec = m.vms[m.find_vm(v.vm)];
    std::printf("%-16s %-8s %-12s %-10s %-16s %s\n", v.vm.c_str(), v.type.c_str(),
                v.host.c_str(), zone_of_host[v.host].c_str(), spec.address.c_str(),
                spec.agent ? (spec.agent_authorized ? "authorized" : "yes") : "-");
  }
  size_t quiet = 0;
  bool header = false;
  for (auto& l : s.leases) {
    if (l.table.leases.empty()) {
      ++quiet;
      continue;
    }
    if (!header) {
      std::printf("\n%-16s %-12s %6s %s\n", "PARTITION", "MASTER", "EPOCH", "LEASES");
      header = true;
    }
    std::printf("%-16s %-12s %6llu %s\n", l.partition.c_str(), l.master.c_str(),
                static_cast<unsigned long long>(l.table.epoch), lease_list(l).c_str());
  }
  std::printf("\n%zu partition(s) without leases\n", quiet);
  for (auto& r : s.routes)
    if (!r.forward_to.empty())
      std::printf("address %s on %s forwarded to %s\n", r.address.c_str(), r.host.c_str(),
                  r.forward_to.c_str());
  return exit_ok;
}

int recommend(const fleet_args& args) {
  int rc = exit_ok;
  auto eng = open_fleet(args, rc);
  if (!eng) {
    std::fprintf(stderr, "ferry recommend: %s\n", describe(eng.error()).c_str());
    return rc;
  }
  auto* rt = (*eng)->fleet();
  auto ranked = rt->recommend(recommend_request{
    args.vm, args.type, args.colocate ? fleet::preference::colocate : fleet::preference::spread,
    args.zone});
  if (!ranked) {
    std::fprintf(stderr, "ferry recommend: %s\n", describe(ranked.error()).c_str());
    auto code = code_of(ranked.error());
    return code == errc::not_found || code == errc::invalid_argument ? exit_bad_input
                                                                     : exit_engine_error;
  }
  auto& m = rt->model();
  bool any = false;
  for (auto& d : *ranked)
    any = any || d.admitted;
  if (args.json) {
    std::ostringstream o;
    o << "{\"vm\":" << json_quote(args.vm) << ",\"zones\":[";
    for (size_t i = 0; i < ranked->size(); ++i) {
      auto& d = (*ranked)[i];
      o << (i ? "," : "") << "{\"rank\":" << i + 1 << ",\"zone\":" << json_quote(m.zones[d.zone].name)
        << ",\"admitted\":" << (d.admitted ? "true" : "false")
        << ",\"denial\":" << json_quote(d.admitted ? "" : fleet::to_string(d.why))
        << ",\"host\":" << json_quote(d.host == fleet::npos ? "" : m.hosts[d.host].name)
        << ",\"estimated_ms\":" << d.estimated_ms << ",\"downtime_ms\":" << d.downtime_ms
        << ",\"reason\":" << json_quote(d.reason) << "}";
    }
    o << "]}";
    std::printf("%s\n", o.str().c_str());
  } else {
    std::printf("%-4s %-10s %-8s %-15s %-10s %s\n", "RANK", "ZONE", "DECISION", "DENIAL", "HOST",
                "REASON");
    for (size_t i = 0; i < ranked->size(); ++i) {
      auto& d = (*ranked)[i];
      std::printf("%-4zu %-10s %-8s %-15s %-10s %s\n", i + 1, m.zones[d.zone].name.c_str(),
                  d.admitted ? "admit" : "deny", d.admitted ? "-" : fleet::to_string(d.why),
                  d.host == fleet::npos ? "-" : m.hosts[d.host].name.c_str(), d.reason.c_str());
    }
  }
  return any ? exit_ok : exit_denied;
}

int options(const fleet_args& args) {
  int rc = exit_ok;
  auto eng = open_fleet(args, rc);
  if (!eng) {
    std::fprintf(stderr, "ferry options: %s\n", describe(eng.error()).c_str());
    return rc;
  }
  auto* rt = (*eng)->fleet();
  auto& m = rt->model();
  auto vi = m.find_vm(args.vm);
  if (vi == fleet::npos) {
    std::fprintf(stderr, "ferry options: not_found: VM \"%s\" is not in the fleet\n",
                 args.vm.c_str());
    return exit_bad_input;
  }
  // Free capacity as the host actors have it now.
  auto snap = rt->snapshot();
  if (!snap) {
    std::fprintf(stderr, "ferry options: %s\n", describe(snap.error()).c_str());
    return exit_engine_error;
  }
  std::vector<fleet::capacity> free(m.hosts.size());
  for (auto& h : snap->hosts)
    free[m.find_host(h.name)] = h.free;
  auto opts = fleet::morph_options(m, vi, free);
  if (args.json) {
    std::ostringstream o;
    o << "{\"vm\":" << json_quote(args.vm) << ",\"type\":"
      << json_quote(m.types[m.vms[vi].type].name) << ",\"options\":[";
    for (size_t i = 0; i < opts.size(); ++i) {
      auto& x = opts[i];
      o << (i ? "," : "") << "{\"type\":" << json_quote(m.types[x.type].name)
        << ",\"feasible\":" << (x.feasible ? "true" : "false")
        << ",\"method\":" << json_quote(fleet::to_string(x.method))
        << ",\"host\":" << json_quote(x.host == fleet::npos ? "" : m.hosts[x.host].name)
        << ",\"reason\":" << json_quote(x.reason) << "}";
    }
    o << "]}";
    std::printf("%s\n", o.str().c_str());
    return exit_ok;
  }
  std::printf("%-10s %5s %10s %-8s %-17s %-8s %s\n", "TYPE", "VCPUS", "MEMORY MiB", "FEASIBLE",
              "METHOD", "HOST", "REASON");
  for (auto& x : opts) {
    auto& t = m.types[x.type];
    std::printf("%-10s %5u %10llu %-8s %-17s %-8s %s\n", t.name.c_str(), t.vcpus,
                static_cast<unsigned long long>(t.memory_mib), x.feasible ? "yes" : "no",
                fleet::to_string(x.method),
                x.host == fleet::npos ? "-" : m.hosts[x.host].name.c_str(), x.reason.c_str());
  }
  return exit_ok;
}

} // namespace

void add_fleet(CLI::App& app, std::function<int()>& action) {
  auto args = std::make_shared<fleet_args>();
  // FILE VM (local) or VM (ferryd): the positional arguments are sorted out when the command
  // runs.
  auto split = [](fleet_args& a) -> bool {
    if (a.positional.size() == 2) {
      a.file = a.positional[0];
      a.vm = a.positional[1];
      return true;
    }
    a.vm = a.positional.empty() ? "" : a.positional[0];
    return false;
  };
  auto* f = app.add_subcommand("fleet", "Show a fleet: zones, hosts, VMs, leases");
  f->add_option("file", args->file,
                "Fleet file (protobuf text format, JSON or binary); without it: ferryd's fleet");
  f->add_option("--db", args->db, "Journal directory whose fleet state to show");
  f->add_flag("--json", args->json, "One JSON object instead of tables");
  add_conn(f, args->conn);
  f->callback([&action, args] {
    action = [args] { return args->file.empty() ? remote_fleet(args->conn, args->json)
                                                : show_fleet(*args); };
  });

  auto* r = app.add_subcommand("recommend", "Rank the zones a VM could move to, with reasons");
  r->add_option("args", args->positional, "[FILE] VM: a fleet file and a VM, or a VM of ferryd")
    ->required()
    ->expected(1, 2);
  r->add_option("--type", args->type, "Rank for this type (a morph); default: the VM's type");
  r->add_option("--zone", args->zone,
                 "Admission to this zone only: admitted or denied, with the reason");
  r->add_flag("--colocate", args->colocate,
              "Prefer zones running the VM's group (default: spread away from it)");
  r->add_option("--db", args->db, "Journal directory whose fleet state to use");
  r->add_flag("--json", args->json, "One JSON object instead of a table");
  add_conn(r, args->conn);
  r->callback([&action, args, split] {
    action = [args, split] {
      if (split(*args))
        return recommend(*args);
      return remote_recommend(args->conn, args->vm, args->type, args->zone, args->colocate,
                              args->json);
    };
  });

  auto* o = app.add_subcommand("options", "The types a VM can morph to, and how");
  o->add_option("args", args->positional, "[FILE] VM: a fleet file and a VM, or a VM of ferryd")
    ->required()
    ->expected(1, 2);
  o->add_option("--db", args->db, "Journal directory whose fleet state to use");
  o->add_flag("--json", args->json, "One JSON object instead of a table");
  add_conn(o, args->conn);
  o->callback([&action, args, split] {
    action = [args, split] {
      if (split(*args))
        return options(*args);
      return remote_options(args->conn, args->vm, args->json);
    };
  });
}

} // namespace ferry::cli
