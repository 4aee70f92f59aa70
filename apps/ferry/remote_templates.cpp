// `ferry templates list|show|render` against ferryd's registry (when a server is named), and
// `ferry templates put FILE` and `delete NAME`, which only ferryd has (admin).
#include <cstdio>
#include <fstream>

#include <google/protobuf/util/json_util.h>

#include "apps/ferry/commands.hpp"
#include "apps/ferry/remote.hpp"
#include "common/errc.hpp"
#include "common/file.hpp"
#include "ferry/v1/api.pb.h"
#include "workflows/definition_codec.hpp"

namespace ferry::cli {

namespace {

size_t tasks_of(const v1::MigrationTemplate& t) {
  return static_cast<size_t>(t.pre_reconfigure().tasks_size() + t.hot_unplug().tasks_size()
                             + t.migrate().tasks_size() + t.in_migration_reconfigure().tasks_size()
                             + t.hot_plug().tasks_size() + t.post_reconfigure().tasks_size()
                             + t.cleanup().tasks_size());
}

} // namespace

int remote_templates_list(const conn_args& c, bool json) {
  int rc = exit_ok;
  auto cl = connect(c, "templates list", rc);
  if (!cl)
    return rc;
  auto r = cl->list_templates();
  if (!r)
    return fail("templates list", r.error());
  if (json) {
    print_json(*r);
    return exit_ok;
  }
  std::printf("%-28s %7s %-8s  %s\n", "NAME", "VERSION", "BUILTIN", "DESCRIPTION");
  for (auto& t : r->templates())
    std::printf("%-28s %7u %-8s  %s\n", t.name().c_str(), t.version(),
                t.builtin() ? "yes" : "no", t.description().c_str());
  return exit_ok;
}

int remote_templates_show(const conn_args& c, const std::string& name, bool json) {
  int rc = exit_ok;
  auto cl = connect(c, "templates show", rc);
  if (!cl)
    return rc;
  auto r = cl->get_template(name);
  if (!r)
    return fail("templates show", r.error());
  if (json) {
    print_json(*r);
    return exit_ok;
  }
  auto& x = r->template_();
  std::printf("template %s, version %u%s\n%s\n\n", x.name().c_str(), x.version(),
              r->builtin() ? " (built-in)" : "", x.description().c_str());
  std::printf("%-20s %-12s %-9s %-14s %s\n", "PARAMETER", "TYPE", "REQUIRED", "DEFAULT",
              "DESCRIPTION");
  for (auto& p : x.parameters()) {
    std::string def;
    if (p.has_default_value())
      (void) google::protobuf::util::MessageToJsonString(p.default_value(), &def);
    if (def.empty())
      def = "-";
    std::printf("%-20s %-12s %-9s %-14s %s\n", p.name().c_str(),
                v1::ParameterType_Name(p.type()).c_str(), p.required() ? "yes" : "no",
                def.c_str(), p.description().c_str());
  }
  std::printf("\n%zu tasks\n", tasks_of(x));
  return exit_ok;
}

int remote_templates_render(const conn_args& c, const std::string& name,
                            const std::vector<std::string>& params, bool json) {
  v1::TemplateCall call;
  call.set_name(name);
  if (!split_params(params, *call.mutable_parameters(), "templates render"))
    return exit_bad_input;
  int rc = exit_ok;
  auto cl = connect(c, "templates render", rc);
  if (!cl)
    return rc;
  auto r = cl->render_template(call);
  if (!r)
    return fail("templates render", r.error());
  auto def = decode_definition(r->definition().SerializeAsString());
  if (!def)
    return fail("templates render", def.error());
  std::printf("%s", render_definition(**def, json ? definition_format::json
                                                  : definition_format::text)
                      .c_str());
  return exit_ok;
}

int remote_templates_put(const conn_args& c, const std::string& file) {
  auto text = read_file(file);
  if (!text) {
    std::fprintf(stderr, "ferry templates put: %s: %s\n", file.c_str(),
                 message_of(text.error()).c_str());
    return exit_bad_input;
  }
  int rc = exit_ok;
  auto cl = connect(c, "templates put", rc);
  if (!cl)
    return rc;
  auto r = cl->put_template(*text);
  if (!r)
    return fail("templates put", r.error());
  std::printf("template %s version %u registered\n", r->template_().name().c_str(),
              r->template_().version());
  return exit_ok;
}

int remote_templates_delete(const conn_args& c, const std::string& name) {
  int rc = exit_ok;
  auto cl = connect(c, "templates delete", rc);
  if (!cl)
    return rc;
  if (auto err = cl->delete_template(name))
    return fail("templates delete", err);
  std::printf("template %s deleted\n", name.c_str());
  return exit_ok;
}

} // namespace ferry::cli
