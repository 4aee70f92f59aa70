// `ferry fleet FILE [--db DIR] [--json]`: the fleet as its actors see it — zones, hosts
// (capacity, VMs, migration slots, reservations), VMs, leases and forwarded addresses — with
// the state a journal holds when --db is given. `ferry recommend FILE VM [--type T]
// [--zone Z] [--colocate] [--db DIR] [--json]`: the zones ranked for a VM (or one zone's
// admission), each admitted or denied with its reason. `ferry options FILE VM [--db DIR]
// [--json]`: the types the VM can morph to, each with how and why. All run the fleet on the
// embedded engine and build the API's messages as ferryd does (apps/ferryd/convert.hpp);
// fleet_output.cpp prints them. Without a FILE, each asks ferryd instead.
#include <cstdio>

#include "actors/engine.hpp"
#include "actors/fleet_runtime.hpp"
#include "apps/ferry/commands.hpp"
#include "apps/ferry/remote.hpp"
#include "apps/ferryd/convert.hpp"
#include "fleet/fleet_codec.hpp"

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

// Opens the engine with the fleet (and the journal, when given).
caf::expected<std::unique_ptr<engine>> open_fleet(const fleet_args& args, int& rc) {
  auto f = fleet::load_fleet_file(args.file);
  if (!f) {
    rc = exit_bad_input;
    return f.error();
  }
  engine_options opts;
  opts.journal_path = args.db;
  // Shows what the journal holds: a missing one is not made (it was, empty, with its parents).
  opts.create_journal = false;
  opts.recover = false;
  opts.threads = 2;
  opts.fleet = *f;
  auto e = engine::open(opts);
  if (!e)
    rc = embedded_exit_of(e.error());
  return e;
}

int show_fleet(const fleet_args& args) {
  int rc = exit_ok;
  auto eng = open_fleet(args, rc);
  if (!eng) {
    std::fprintf(stderr, "ferry fleet: %s\n", describe(eng.error()).c_str());
    return rc;
  }
  v1::FleetResponse f;
  if (auto err = api::fleet_of(*(*eng)->fleet(), f))
    return fail("fleet", err);
  return print_fleet(f, args.json);
}

v1::RecommendRequest recommend_request_of(const fleet_args& args) {
  v1::RecommendRequest req;
  req.set_vm(args.vm);
  req.set_type(args.type);
  req.set_zone(args.zone);
  req.set_colocate(args.colocate);
  return req;
}

int recommend(const fleet_args& args) {
  int rc = exit_ok;
  auto eng = open_fleet(args, rc);
  if (!eng) {
    std::fprintf(stderr, "ferry recommend: %s\n", describe(eng.error()).c_str());
    return rc;
  }
  v1::RecommendResponse r;
  if (auto err = api::recommend_of(*(*eng)->fleet(), recommend_request_of(args), r))
    return fail("recommend", err);
  return print_recommend(r, args.json);
}

int options(const fleet_args& args) {
  int rc = exit_ok;
  auto eng = open_fleet(args, rc);
  if (!eng) {
    std::fprintf(stderr, "ferry options: %s\n", describe(eng.error()).c_str());
    return rc;
  }
  v1::OptionsResponse r;
  if (auto err = api::options_of(*(*eng)->fleet(), args.vm, r))
    return fail("options", err);
  return print_options(r, args.json);
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
      return remote_recommend(args->conn, recommend_request_of(*args), args->json);
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
