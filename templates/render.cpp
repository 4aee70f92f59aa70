// render(): a template and its arguments to a validated workflow definition. Works on the
// template as compiled when it was loaded (template_body: the tasks already in the engine's
// own types), substitutes placeholders, expands for_each, drops what `when` excludes, links
// the phases, and hands the result to the definition codec, which validates and encodes it
// like any submitted definition. A drain renders once per VM: no protobuf is built here, nor
// by the codec, which writes the canonical encoding directly.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "common/errc.hpp"
#include "templates/template.hpp"
#include "templates/template_internal.hpp"
#include "workflows/definition_codec.hpp"

namespace ferry {

namespace {

using values = template_args;

void append_text(std::string& out, const value& v) {
  switch (v.kind) {
    case value::type::string: out += v.s; return;
    case value::type::boolean: out += v.b ? "true" : "false"; return;
    case value::type::number: {
      char buf[64];
      if (std::floor(v.n) == v.n && std::fabs(v.n) < 1e15)
        std::snprintf(buf, sizeof buf, "%.0f", v.n);
      else
        std::snprintf(buf, sizeof buf, "%g", v.n);
      out += buf;
      return;
    }
    case value::type::list: {
      bool first = true;
      for (auto& x : v.items) {
        if (!first)
          out += ',';
        first = false;
        append_text(out, x);
      }
      return;
    }
    default: return;
  }
}

std::string text_of(const value& v) {
  std::string out;
  append_text(out, v);
  return out;
}

/// Where a value sits, for error messages; spelled out only when one is reported:
/// `base` (or `outer`'s place), then `prefix`, then `key` and a closing quote.
struct place {
  const std::string* base = nullptr;
  const place* outer = nullptr;
  const char* prefix = nullptr; // ": param \"", ": field \"", ": label \"", ": compensation"
  const std::string* key = nullptr;

  std::string str() const {
    std::string s = outer ? outer->str() : *base;
    if (prefix)
      s += prefix;
    if (key)
      s += *key + "\"";
    return s;
  }
};

struct substituter {
  const values& args;
  const value* item = nullptr;

  const value* lookup(std::string_view name) const {
    if (name == "item" && item)
      return item;
    auto i = args.find(name);
    return i == args.end() ? nullptr : &i->second;
  }

  // Replaces every ${name} in `s`; errors name `where`.
  caf::expected<std::string> text(const std::string& s, const place& where) const {
    auto open = s.find("${");
    if (open == std::string::npos)
      return s;
    std::string out;
    size_t pos = 0;
    for (;;) {
      if (open == std::string::npos) {
        out.append(s, pos, std::string::npos);
        return out;
      }
      auto close = s.find('}', open);
      if (close == std::string::npos)
        return make_error(errc::invalid_argument,
                          where.str() + ": unterminated placeholder in \"" + s + "\"");
      auto name = std::string_view{s}.substr(open + 2, close - open - 2);
      auto* v = lookup(name);
      if (!v)
        return make_error(errc::invalid_argument, where.str() + ": unknown parameter \""
                                                    + std::string{name} + "\" in \"" + s
                                                    + "\"");
      out.append(s, pos, open - pos);
      append_text(out, *v);
      pos = close + 1;
      open = s.find("${", pos);
    }
  }

  caf::error substitute(value& v, const place& where) const {
    switch (v.kind) {
      case value::type::string: {
        auto& s = v.s;
        if (s.find("${") == std::string::npos)
          return caf::none;
        // Exactly one placeholder: the parameter's value, with its type.
        if (s.size() > 3 && s.compare(0, 2, "${") == 0 && s.back() == '}'
            && s.find("${", 2) == std::string::npos) {
          if (auto* x = lookup(std::string_view{s}.substr(2, s.size() - 3))) {
            v = *x;
            return caf::none;
          }
        }
        auto t = text(s, where);
        if (!t)
          return t.error();
        s = std::move(*t);
        return caf::none;
      }
      case value::type::list:
        for (auto& x : v.items)
          if (auto err = substitute(x, where))
            return err;
        return caf::none;
      case value::type::object:
        for (auto& [k, x] : v.fields)
          if (auto err = substitute(x, place{nullptr, &where, ": field \"", &k}))
            return err;
        return caf::none;
      default:
        return caf::none;
    }
  }

  caf::error parameters(params& ps, const place& where) const {
    for (auto& [k, x] : ps)
      if (auto err = substitute(x, place{nullptr, &where, ": param \"", &k}))
        return err;
    return caf::none;
  }
};

bool truthy(const value& v) {
  switch (v.kind) {
    case value::type::boolean: return v.b;
    case value::type::string: return !v.s.empty();
    case value::type::number: return v.n != 0;
    case value::type::list: return !v.items.empty();
    default: return false;
  }
}

} // namespace

caf::expected<template_body> compile_template(const v1::MigrationTemplate& t) {
  template_body b;
  b.name = t.name();
  b.head = "template \"" + b.name + "\"";
  b.version = t.version();
  b.default_timeout_ms = t.default_timeout_ms();
  b.retry_budget = t.retry_budget();
  for (auto& [k, v] : t.labels())
    b.labels.emplace(k, v);
  // The tasks as one definition, decoded by the definition codec as written.
  v1::WorkflowDefinition w;
  *w.mutable_default_retry() = t.default_retry();
  const v1::Phase* phases[7] = {&t.pre_reconfigure(), &t.hot_unplug(), &t.migrate(),
                                &t.in_migration_reconfigure(), &t.hot_plug(),
                                &t.post_reconfigure(), &t.cleanup()};
  for (int p = 0; p < 7; ++p)
    for (auto& tt : phases[p]->tasks()) {
      *w.add_tasks() = tt.task();
      template_task x;
      x.phase = p;
      x.when = tt.when();
      x.for_each = tt.for_each();
      x.where = b.head + ": phase \"" + template_phases[p] + "\" task \"" + tt.task().id()
                + "\"";
      b.tasks.push_back(std::move(x));
    }
  auto written = decode_definition_as_written(w.SerializeAsString());
  if (!written)
    return make_error(errc::data_loss, "template \"" + b.name + "\": tasks undecodable");
  b.default_retry = written->default_retry;
  for (size_t i = 0; i < b.tasks.size(); ++i) {
    auto& x = b.tasks[i];
    x.task = std::move(written->tasks[i]);
    x.skeleton = x.task;
    x.skeleton.id.clear();
    x.skeleton.depends_on.clear();
    x.skeleton.description.clear();
    b.by_id.emplace(x.task.id, i);
  }
  return b;
}

caf::expected<definition_ptr> render_body(const template_body& t, const values& args,
                                          const kind_catalog& kinds) {
  auto& head = t.head;
  auto n = t.tasks.size();
  // Per task template: rendered at all, and the ids of its instances.
  std::vector<char> included(n, 1);
  std::vector<std::vector<std::string>> ids(n);
  size_t instances = 0;
  for (size_t i = 0; i < n; ++i) {
    auto& tt = t.tasks[i];
    if (!tt.when.empty())
      included[i] = truthy(args.at(tt.when));
    if (!included[i])
      continue;
    if (tt.for_each.empty()) {
      ids[i].push_back(tt.task.id);
    } else {
      auto count = args.at(tt.for_each).items.size();
      for (size_t k = 0; k < count; ++k)
        ids[i].push_back(tt.task.id + "-" + std::to_string(k));
    }
    instances += ids[i].size();
  }

  // What a dependency on template task `i` means: its instances, or, when it is not
  // rendered, what it would have depended on.
  std::vector<std::optional<std::vector<std::string>>> resolved(n);
  std::vector<std::vector<std::string>> phase_ids(7);
  auto last_before = [&](int phase) {
    for (int p = phase - 1; p >= 0; --p)
      if (!phase_ids[p].empty())
        return phase_ids[p];
    return std::vector<std::string>{};
  };
  std::function<caf::expected<std::vector<std::string>>(size_t, int)> deps_of;
  auto target = [&](size_t i, int depth) -> caf::expected<std::vector<std::string>> {
    // A for_each over an empty list renders nothing: like a task that is not rendered.
    if (included[i] && !ids[i].empty())
      return ids[i];
    return deps_of(i, depth + 1);
  };
  deps_of = [&](size_t i, int depth) -> caf::expected<std::vector<std::string>> {
    if (resolved[i])
      return *resolved[i];
    auto& tt = t.tasks[i];
    if (depth > 1000)
      return make_error(errc::invalid_argument, tt.where + ": dependencies form a cycle");
    std::vector<std::string> out;
    if (tt.task.depends_on.empty()) {
      out = last_before(tt.phase);
    } else {
      for (auto& d : tt.task.depends_on) {
        auto j = t.by_id.find(d);
        if (j == t.by_id.end())
          return make_error(errc::invalid_argument, tt.where + ": depends_on \"" + d
                                                      + "\": no such task in the template");
        if (t.tasks[j->second].phase > tt.phase)
          return make_error(errc::invalid_argument,
                            tt.where + ": depends_on \"" + d + "\": a task of a later phase ("
                              + template_phases[t.tasks[j->second].phase] + ")");
        auto x = target(j->second, depth);
        if (!x)
          return x.error();
        out.insert(out.end(), x->begin(), x->end());
      }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    resolved[i] = out;
    return out;
  };

  definition def;
  def.tasks.reserve(instances);
  def.name = t.name;
  def.version = t.version;
  def.default_retry = t.default_retry;
  def.default_timeout_ms = t.default_timeout_ms;
  def.retry_budget = t.retry_budget;
  substituter plain{args};
  for (auto& [k, v] : t.labels) {
    auto x = plain.text(v, place{&head, nullptr, ": label \"", &k});
    if (!x)
      return x.error();
    def.labels[k] = std::move(*x);
  }
  def.labels["template"] = t.name;
  def.labels["template_version"] = std::to_string(t.version);
  for (auto& [k, v] : args)
    def.labels["param." + k] = text_of(v);

  for (size_t i = 0; i < n; ++i) {
    auto& tt = t.tasks[i];
    if (!included[i])
      continue;
    auto deps = deps_of(i, 0);
    if (!deps)
      return deps.error();
    auto& where = t.tasks[i].where;
    place at{&where};
    place comp_at{&where, nullptr, ": compensation"};
    place desc_at{&where, nullptr, ": description"};
    for (size_t k = 0; k < ids[i].size(); ++k) {
      substituter sub{args};
      if (!tt.for_each.empty())
        sub.item = &args.at(tt.for_each).items[k];
      // Its id, dependencies and description are written anew, not copied and replaced.
      auto& task = def.tasks.emplace_back(tt.skeleton);
      task.id = ids[i][k];
      if (k + 1 < ids[i].size())
        task.depends_on = *deps;
      else
        task.depends_on = std::move(*deps);
      if (auto err = sub.parameters(task.parameters, at))
        return err;
      if (task.compensation)
        if (auto err = sub.parameters(task.compensation->parameters, comp_at))
          return err;
      auto desc = sub.text(tt.task.description, desc_at);
      if (!desc)
        return desc.error();
      task.description = std::move(*desc);
    }
    phase_ids[tt.phase].insert(phase_ids[tt.phase].end(), ids[i].begin(), ids[i].end());
  }
  if (def.tasks.empty())
    return make_error(errc::invalid_argument, head + ": renders no task with these parameters");
  auto d = finish_definition(std::move(def), kinds);
  if (!d)
    return make_error(code_of(d.error()), head + ": rendered definition: " + message_of(d.error()));
  return d;
}

} // namespace ferry
