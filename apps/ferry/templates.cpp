// `ferry templates list|show|validate|render`: migration templates from files (built-in ones
// in templates/builtin/), or from ferryd's registry when a server is named (--server or
// FERRY_SERVER; remote_templates.cpp), which also takes `put FILE` and `delete NAME`. Validation and rendering check the task kinds an engine with a
// fleet has: the built-in, fleet and VM kinds (their specs; no engine is started).
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "actors/builtin_kinds.hpp"
#include "actors/fleet_kinds.hpp"
#include "actors/vm_kinds.hpp"
#include "actors/migration_kinds.hpp"
#include "apps/ferry/commands.hpp"
#include "apps/ferry/output.hpp"
#include "apps/ferry/remote.hpp"
#include "fleet/fleet_codec.hpp"
#include "templates/template.hpp"
#include "workflows/definition_codec.hpp"

namespace ferry::cli {

namespace {

struct templates_args {
  conn_args conn;
  std::vector<std::string> files;
  std::string dir = FERRY_BUILTIN_TEMPLATES;
  std::vector<std::string> params;
  std::string fleet;
  bool json = false;
};

// The kinds a template may use: the engine's built-in kinds and the fleet's.
kind_catalog catalog() {
  kind_catalog cat;
  for (auto& k : builtin_kind_specs())
    cat.add(k);
  for (auto& k : fleet_kind_specs())
    cat.add(k);
  for (auto& k : vm_kind_specs())
    cat.add(k);
  for (auto& k : migration_kind_specs())
    cat.add(k);
  return cat;
}

size_t task_count(const migration_template& t) {
  size_t n = 0;
  for (auto x : t.tasks_per_phase)
    n += x;
  return n;
}

int list(const templates_args& a) {
  auto kinds = catalog();
  auto files = template_files(a.dir);
  if (!files) {
    std::fprintf(stderr, "ferry templates list: %s\n", describe(files.error()).c_str());
    return exit_bad_input;
  }
  std::ostringstream json;
  json << "{\"templates\":[";
  if (!a.json)
    std::printf("%-28s %7s %6s %5s  %s\n", "NAME", "VERSION", "PARAMS", "TASKS", "DESCRIPTION");
  int rc = exit_ok;
  bool first = true;
  for (auto& f : *files) {
    auto t = load_template_file(f, kinds);
    if (!t) {
      std::fprintf(stderr, "ferry templates list: %s\n", describe(t.error()).c_str());
      rc = exit_bad_input;
      continue;
    }
    auto& x = **t;
    if (a.json) {
      json << (first ? "" : ",") << "{\"name\":" << json_quote(x.name) << ",\"version\":"
           << x.version << ",\"parameters\":" << x.params.size() << ",\"tasks\":"
           << task_count(x) << ",\"file\":" << json_quote(f) << ",\"description\":"
           << json_quote(x.description) << "}";
      first = false;
    } else {
      std::printf("%-28s %7u %6zu %5zu  %s\n", x.name.c_str(), x.version, x.params.size(),
                  task_count(x), x.description.c_str());
    }
  }
  if (a.json)
    std::printf("%s]}\n", json.str().c_str());
  return rc;
}

int show(const templates_args& a) {
  auto kinds = catalog();
  auto t = find_template(a.files.at(0), a.dir, kinds);
  if (!t) {
    std::fprintf(stderr, "ferry templates show: %s\n", describe(t.error()).c_str());
    return exit_bad_input;
  }
  auto& x = **t;
  if (a.json) {
    std::printf("%s\n", render_template_source(x, template_format::json).c_str());
    return exit_ok;
  }
  std::printf("template %s, version %u\n%s\n\n", x.name.c_str(), x.version,
              x.description.c_str());
  std::printf("%-20s %-12s %-9s %-14s %s\n", "PARAMETER", "TYPE", "REQUIRED", "DEFAULT",
              "DESCRIPTION");
  for (auto& p : x.params)
    std::printf("%-20s %-12s %-9s %-14s %s\n", p.name.c_str(), to_string(p.type),
                p.required ? "yes" : "no",
                p.default_value ? to_json(*p.default_value).c_str() : "-",
                p.description.c_str());
  std::printf("\n%-26s %s\n", "PHASE", "TASKS");
  for (int i = 0; i < 7; ++i)
    std::printf("%-26s %zu\n", template_phases[i], x.tasks_per_phase[i]);
  return exit_ok;
}

int validate(const templates_args& a) {
  auto kinds = catalog();
  int rc = exit_ok;
  for (auto& f : a.files) {
    auto t = load_template_file(f, kinds);
    if (!t) {
      std::fprintf(stderr, "%s\n", describe(t.error()).c_str());
      rc = exit_bad_input;
      continue;
    }
    std::printf("%s: ok: template %s version %u, %zu parameters, %zu tasks\n", f.c_str(),
                (*t)->name.c_str(), (*t)->version, (*t)->params.size(), task_count(**t));
  }
  return rc;
}

int render_cmd(const templates_args& a) {
  auto kinds = catalog();
  auto t = find_template(a.files.at(0), a.dir, kinds);
  if (!t) {
    std::fprintf(stderr, "ferry templates render: %s\n", describe(t.error()).c_str());
    return exit_bad_input;
  }
  fleet::model_ptr fleet;
  if (!a.fleet.empty()) {
    auto f = fleet::load_fleet_file(a.fleet);
    if (!f) {
      std::fprintf(stderr, "ferry templates render: %s\n", describe(f.error()).c_str());
      return exit_bad_input;
    }
    fleet = *f;
  }
  auto args = parse_template_args(**t, a.params);
  if (!args) {
    std::fprintf(stderr, "ferry templates render: %s\n", describe(args.error()).c_str());
    return exit_bad_input;
  }
  auto d = render(**t, *args, kinds, fleet.get());
  if (!d) {
    std::fprintf(stderr, "ferry templates render: %s\n", describe(d.error()).c_str());
    return exit_bad_input;
  }
  std::printf("%s", render_definition(**d, a.json ? definition_format::json
                                                   : definition_format::text)
                      .c_str());
  return exit_ok;
}

} // namespace

// A template by file path, or by name among the files of `dir`.
caf::expected<template_ptr> find_template(const std::string& what, const std::string& dir,
                                          const kind_catalog& kinds) {
  // Without the error_code, a name longer than a path may be (ENAMETOOLONG) threw, and ferry
  // ended on an uncaught exception.
  std::error_code ec;
  if (std::filesystem::exists(what, ec))
    return load_template_file(what, kinds);
  if (auto files = template_files(dir))
    for (auto& f : *files) {
      auto t = load_template_file(f, kinds);
      if (t && (*t)->name == what)
        return t;
    }
  return make_error(errc::not_found, "template \"" + what + "\": no such file, and no template of "
                                       "that name in " + dir);
}

void add_templates(CLI::App& app, std::function<int()>& action) {
  auto args = std::make_shared<templates_args>();
  auto* t = app.add_subcommand("templates",
                               "Migration templates: list, show, validate, render; put, delete "
                               "(ferryd)");
  t->require_subcommand(1);
  auto* l = t->add_subcommand("list", "List the templates of a directory");
  l->add_option("--dir", args->dir, "Directory of templates (default: the built-in ones)");
  l->add_flag("--json", args->json, "One JSON object instead of a table");
  add_conn(l, args->conn);
  l->callback([&action, args] {
    action = [args] {
      return server_named(args->conn) ? remote_templates_list(args->conn, args->json)
                                      : list(*args);
    };
  });
  auto* s = t->add_subcommand("show", "Show a template's parameters and phases");
  s->add_option("template", args->files, "Template file, or a name in --dir")->required();
  s->add_option("--dir", args->dir, "Directory to find a template by name in");
  s->add_flag("--json", args->json, "The template as JSON");
  add_conn(s, args->conn);
  s->callback([&action, args] {
    action = [args] {
      return server_named(args->conn)
               ? remote_templates_show(args->conn, args->files.at(0), args->json)
               : show(*args);
    };
  });
  auto* v = t->add_subcommand("validate", "Check template files");
  v->add_option("files", args->files, "Template files")->required();
  v->callback([&action, args] { action = [args] { return validate(*args); }; });
  auto* r = t->add_subcommand("render", "Render a template into a workflow definition");
  r->add_option("template", args->files, "Template file, or a name in --dir")->required();
  r->add_option("--dir", args->dir, "Directory to find a template by name in");
  r->add_option("-p,--param", args->params, "A parameter's value: NAME=VALUE (lists: a,b,c)")
    ->take_all();
  r->add_option("--fleet", args->fleet, "Check VM, host, zone, type and partition names here");
  r->add_flag("--json", args->json, "The definition as JSON");
  add_conn(r, args->conn);
  r->callback([&action, args] {
    action = [args] {
      return server_named(args->conn)
               ? remote_templates_render(args->conn, args->files.at(0), args->params, args->json)
               : render_cmd(*args);
    };
  });
  auto* p = t->add_subcommand("put", "Register a template in ferryd (admin)");
  p->add_option("file", args->files, "Template file (protobuf text format or JSON)")->required();
  add_conn(p, args->conn);
  p->callback([&action, args] {
    action = [args] { return remote_templates_put(args->conn, args->files.at(0)); };
  });
  auto* d = t->add_subcommand("delete", "Remove a template from ferryd (admin)");
  d->add_option("name", args->files, "Template name")->required();
  add_conn(d, args->conn);
  d->callback([&action, args] {
    action = [args] { return remote_templates_delete(args->conn, args->files.at(0)); };
  });
}

} // namespace ferry::cli
