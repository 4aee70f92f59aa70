// render(): a template and its arguments to a validated workflow definition. Works on the
// protobuf messages (MigrationTemplate in, WorkflowDefinition out) and hands the result to
// the definition codec, which validates it like any submitted definition.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <set>

#include <google/protobuf/struct.pb.h>

#include "common/errc.hpp"
#include "ferry/v1/template.pb.h"
#include "templates/template.hpp"
#include "templates/template_internal.hpp"
#include "workflows/definition_codec.hpp"

namespace ferry {

namespace pb = google::protobuf;

namespace {

using values = std::map<std::string, pb::Value>;

std::string text_of(const pb::Value& v) {
  switch (v.kind_case()) {
    case pb::Value::kStringValue: return v.string_value();
    case pb::Value::kBoolValue: return v.bool_value() ? "true" : "false";
    case pb::Value::kNumberValue: {
      auto n = v.number_value();
      char buf[64];
      if (std::floor(n) == n && std::fabs(n) < 1e15)
        std::snprintf(buf, sizeof buf, "%.0f", n);
      else
        std::snprintf(buf, sizeof buf, "%g", n);
      return buf;
    }
    case pb::Value::kListValue: {
      std::string out;
      for (auto& x : v.list_value().values())
        out += (out.empty() ? "" : ",") + text_of(x);
      return out;
    }
    default: return {};
  }
}

struct substituter {
  const values& args;
  const pb::Value* item = nullptr;

  const pb::Value* lookup(const std::string& name) const {
    if (name == "item" && item)
      return item;
    auto i = args.find(name);
    return i == args.end() ? nullptr : &i->second;
  }

  // Replaces every ${name} in `s`; errors name `where`.
  caf::expected<std::string> text(const std::string& s, const std::string& where) const {
    std::string out;
    size_t pos = 0;
    for (;;) {
      auto open = s.find("${", pos);
      if (open == std::string::npos) {
        out.append(s, pos, std::string::npos);
        return out;
      }
      auto close = s.find('}', open);
      if (close == std::string::npos)
        return make_error(errc::invalid_argument,
                          where + ": unterminated placeholder in \"" + s + "\"");
      auto name = s.substr(open + 2, close - open - 2);
      auto* v = lookup(name);
      if (!v)
        return make_error(errc::invalid_argument, where + ": unknown parameter \"" + name
                                                    + "\" in \"" + s + "\"");
      out.append(s, pos, open - pos);
      out += text_of(*v);
      pos = close + 1;
    }
  }

  caf::error value(pb::Value& v, const std::string& where) const {
    switch (v.kind_case()) {
      case pb::Value::kStringValue: {
        auto& s = v.string_value();
        // Exactly one placeholder: the parameter's value, with its type.
        if (s.size() > 3 && s.compare(0, 2, "${") == 0 && s.back() == '}'
            && s.find("${", 2) == std::string::npos) {
          auto* x = lookup(s.substr(2, s.size() - 3));
          if (x) {
            v = *x;
            return caf::none;
          }
        }
        auto t = text(s, where);
        if (!t)
          return t.error();
        v.set_string_value(*t);
        return caf::none;
      }
      case pb::Value::kListValue:
        for (auto& x : *v.mutable_list_value()->mutable_values())
          if (auto err = value(x, where))
            return err;
        return caf::none;
      case pb::Value::kStructValue:
        for (auto& [k, x] : *v.mutable_struct_value()->mutable_fields())
          if (auto err = value(x, where + ": field \"" + k + "\""))
            return err;
        return caf::none;
      default:
        return caf::none;
    }
  }

  caf::error params(pb::Struct& s, const std::string& where) const {
    for (auto& [k, x] : *s.mutable_fields())
      if (auto err = value(x, where + ": param \"" + k + "\""))
        return err;
    return caf::none;
  }
};

bool truthy(const pb::Value& v) {
  switch (v.kind_case()) {
    case pb::Value::kBoolValue: return v.bool_value();
    case pb::Value::kStringValue: return !v.string_value().empty();
    case pb::Value::kNumberValue: return v.number_value() != 0;
    case pb::Value::kListValue: return v.list_value().values_size() > 0;
    default: return false;
  }
}

const v1::Phase& phase_of(const v1::MigrationTemplate& t, int i) {
  switch (i) {
    case 0: return t.pre_reconfigure();
    case 1: return t.hot_unplug();
    case 2: return t.migrate();
    case 3: return t.in_migration_reconfigure();
    case 4: return t.hot_plug();
    case 5: return t.post_reconfigure();
    default: return t.cleanup();
  }
}

} // namespace

caf::expected<definition_ptr> render_proto(const v1::MigrationTemplate& t, const values& args,
                                           const kind_catalog& kinds) {
  auto head = "template \"" + t.name() + "\"";
  struct entry {
    int phase;
    const v1::TemplateTask* tt;
    bool included;
    std::vector<std::string> ids; // rendered ids (instances)
  };
  std::map<std::string, entry> by_id;
  for (int p = 0; p < 7; ++p)
    for (auto& tt : phase_of(t, p).tasks()) {
      entry e{p, &tt, true, {}};
      if (!tt.when().empty())
        e.included = truthy(args.at(tt.when()));
      if (e.included) {
        if (tt.for_each().empty()) {
          e.ids.push_back(tt.task().id());
        } else {
          auto n = args.at(tt.for_each()).list_value().values_size();
          for (int i = 0; i < n; ++i)
            e.ids.push_back(tt.task().id() + "-" + std::to_string(i));
        }
      }
      by_id.emplace(tt.task().id(), std::move(e));
    }

  // What a dependency on template task `id` means: its instances, or, when it is not
  // rendered, what it would have depended on.
  std::map<std::string, std::vector<std::string>> resolved_deps;
  std::vector<std::string> previous_phase;
  std::function<caf::expected<std::vector<std::string>>(const std::string&, int)> deps_of;
  std::function<caf::expected<std::vector<std::string>>(const std::string&, int)> target;
  std::vector<std::vector<std::string>> phase_ids(7);
  auto last_before = [&](int phase) {
    for (int p = phase - 1; p >= 0; --p)
      if (!phase_ids[p].empty())
        return phase_ids[p];
    return std::vector<std::string>{};
  };
  target = [&](const std::string& id, int depth) -> caf::expected<std::vector<std::string>> {
    auto& e = by_id.at(id);
    // A for_each over an empty list renders nothing: like a task that is not rendered.
    if (e.included && !e.ids.empty())
      return e.ids;
    return deps_of(id, depth + 1);
  };
  deps_of = [&](const std::string& id, int depth) -> caf::expected<std::vector<std::string>> {
    if (auto i = resolved_deps.find(id); i != resolved_deps.end())
      return i->second;
    auto& e = by_id.at(id);
    auto where = head + ": phase \"" + template_phases[e.phase] + "\" task \"" + id + "\"";
    if (depth > 1000)
      return make_error(errc::invalid_argument, where + ": dependencies form a cycle");
    std::vector<std::string> out;
    if (e.tt->task().depends_on().empty()) {
      out = last_before(e.phase);
    } else {
      for (auto& d : e.tt->task().depends_on()) {
        auto j = by_id.find(d);
        if (j == by_id.end())
          return make_error(errc::invalid_argument,
                            where + ": depends_on \"" + d + "\": no such task in the template");
        if (j->second.phase > e.phase)
          return make_error(errc::invalid_argument,
                            where + ": depends_on \"" + d + "\": a task of a later phase ("
                              + template_phases[j->second.phase] + ")");
        auto x = target(d, depth);
        if (!x)
          return x.error();
        out.insert(out.end(), x->begin(), x->end());
      }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    resolved_deps[id] = out;
    return out;
  };

  v1::WorkflowDefinition def;
  def.set_name(t.name());
  def.set_version(t.version());
  *def.mutable_default_retry() = t.default_retry();
  def.set_default_timeout_ms(t.default_timeout_ms());
  def.set_retry_budget(t.retry_budget());
  substituter plain{args};
  for (auto& [k, v] : t.labels()) {
    auto x = plain.text(v, head + ": label \"" + k + "\"");
    if (!x)
      return x.error();
    (*def.mutable_labels())[k] = *x;
  }
  (*def.mutable_labels())["template"] = t.name();
  (*def.mutable_labels())["template_version"] = std::to_string(t.version());
  for (auto& [k, v] : args)
    (*def.mutable_labels())["param." + k] = text_of(v);

  for (int p = 0; p < 7; ++p) {
    for (auto& tt : phase_of(t, p).tasks()) {
      auto& e = by_id.at(tt.task().id());
      if (!e.included)
        continue;
      auto deps = deps_of(tt.task().id(), 0);
      if (!deps)
        return deps.error();
      auto where = head + ": phase \"" + std::string{template_phases[p]} + "\" task \""
                   + tt.task().id() + "\"";
      auto n = e.ids.size();
      for (size_t i = 0; i < n; ++i) {
        substituter sub{args};
        pb::Value item;
        if (!tt.for_each().empty()) {
          item = args.at(tt.for_each()).list_value().values(static_cast<int>(i));
          sub.item = &item;
        }
        auto* task = def.add_tasks();
        *task = tt.task();
        task->set_id(e.ids[i]);
        task->clear_depends_on();
        for (auto& d : *deps)
          task->add_depends_on(d);
        if (auto err = sub.params(*task->mutable_params(), where))
          return err;
        if (task->has_compensation())
          if (auto err = sub.params(*task->mutable_compensation()->mutable_params(),
                                    where + ": compensation"))
            return err;
        auto desc = sub.text(task->description(), where + ": description");
        if (!desc)
          return desc.error();
        task->set_description(*desc);
      }
      phase_ids[p].insert(phase_ids[p].end(), e.ids.begin(), e.ids.end());
    }
  }
  if (def.tasks_size() == 0)
    return make_error(errc::invalid_argument, head + ": renders no task with these parameters");
  std::string wire;
  def.SerializeToString(&wire);
  auto d = load_definition(wire, kinds, definition_format::binary);
  if (!d)
    return make_error(code_of(d.error()), head + ": rendered definition: " + message_of(d.error()));
  return d;
}

} // namespace ferry
