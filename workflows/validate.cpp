#include "workflows/validate.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

#include "common/errc.hpp"
#include "common/ids.hpp"
#include "common/utf8.hpp"

namespace ferry {

namespace {

std::string quote(const std::string& x) {
  return "\"" + x + "\"";
}

caf::error field_error(const std::string& owner, const std::string& field,
                       const std::string& what) {
  return make_error(errc::invalid_argument, owner + ": field " + quote(field) + ": " + what);
}

caf::error task_error(const std::string& task, const std::string& field,
                      const std::string& what) {
  return field_error("task " + quote(task), field, what);
}

bool matches(param_type want, const value& v) {
  switch (want) {
    case param_type::any: return true;
    case param_type::boolean: return v.kind == value::type::boolean;
    case param_type::number: return v.kind == value::type::number;
    case param_type::integer:
      return v.kind == value::type::number && std::floor(v.n) == v.n && std::isfinite(v.n);
    case param_type::string: return v.kind == value::type::string;
    case param_type::list: return v.kind == value::type::list;
    case param_type::object: return v.kind == value::type::object;
  }
  return false;
}

/// Every string in `v`, and every key of its objects, is UTF-8: protobuf, which the journal
/// keeps definitions in, refuses to read back a string that is not.
bool utf8_text(const value& v) {
  switch (v.kind) {
    case value::type::string: return valid_utf8(v.s);
    case value::type::list:
      return std::all_of(v.items.begin(), v.items.end(), [](auto& x) { return utf8_text(x); });
    case value::type::object:
      return std::all_of(v.fields.begin(), v.fields.end(), [](auto& f) {
        return valid_utf8(f.first) && utf8_text(f.second);
      });
    default: return true;
  }
}

caf::error check_text(const std::string& task, const std::string& prefix, const params& ps) {
  for (auto& [name, v] : ps)
    if (!valid_utf8(name) || !utf8_text(v))
      return task_error(task, prefix + to_valid_utf8(name), "text that is not valid UTF-8");
  return {};
}

/// "must be at least 1, got -5", "must be between 1 and 4294967295, got 1e+12".
std::string out_of_range(const param_spec& p, const value& v) {
  auto bound = [](double x) { return to_json(value::of(x)); };
  std::string what = p.min && p.max ? "must be between " + bound(*p.min) + " and " + bound(*p.max)
                     : p.min        ? "must be at least " + bound(*p.min)
                                    : "must be at most " + bound(*p.max);
  return what + ", got " + to_json(v);
}

bool by_name(const std::pair<std::string, value>& a, const std::pair<std::string, value>& b) {
  return a.first < b.first;
}

caf::error check_params(const std::string& task, const std::string& prefix,
                        const kind_spec& spec, const params& ps) {
  // Parameters decoded or rendered are in name order: a duplicate is next to its twin.
  bool sorted = std::is_sorted(ps.begin(), ps.end(), by_name);
  std::set<std::string> seen;
  for (size_t i = 0; i < ps.size(); ++i) {
    auto& [name, v] = ps[i];
    if (sorted ? i > 0 && ps[i - 1].first == name : !seen.insert(name).second)
      return task_error(task, prefix + name, "duplicate parameter");
    const param_spec* ps_spec = nullptr;
    for (auto& p : spec.params)
      if (p.name == name)
        ps_spec = &p;
    if (ps_spec == nullptr) {
      if (spec.open_params)
        continue;
      std::string known;
      for (auto& p : spec.params)
        known += (known.empty() ? "" : ", ") + p.name;
      return task_error(task, prefix + name,
                        "unknown parameter for kind " + quote(spec.name)
                          + (known.empty() ? " (it takes none)" : " (it takes " + known + ")"));
    }
    if (!matches(ps_spec->type, v))
      return task_error(task, prefix + name,
                        std::string{"bad parameter type: expected "} + to_string(ps_spec->type)
                          + ", got " + to_string(v.kind)
                          + (v.kind == value::type::number ? " " + to_json(v) : ""));
    if (v.kind == value::type::number && ((ps_spec->min && v.n < *ps_spec->min)
                                          || (ps_spec->max && v.n > *ps_spec->max)))
      return task_error(task, prefix + name, out_of_range(*ps_spec, v));
  }
  for (auto& p : spec.params)
    if (p.required && find_param(ps, p.name) == nullptr)
      return task_error(task, prefix + p.name,
                        "missing required parameter of kind " + quote(spec.name));
  return {};
}

std::string too_long(uint64_t ms) {
  return "must be at most " + std::to_string(max_duration_ms) + " ms (about 31 years), got "
         + std::to_string(ms);
}

/// `owner`: "task" or "definition"; `name`: its id or name (spelled out only in an error).
caf::error check_retry(const char* owner, const std::string& name, const char* field,
                       const retry_spec& r) {
  auto field_error = [&](const char* f, const std::string& what) {
    return ferry::field_error(owner + (" " + quote(name)), std::string{field} + f, what);
  };
  if (r.max_attempts && *r.max_attempts < 1)
    return field_error(".max_attempts", "must be at least 1");
  if (r.backoff_multiplier && (!std::isfinite(*r.backoff_multiplier)
                               || *r.backoff_multiplier < 1.0))
    return field_error(".backoff_multiplier", "must be at least 1.0");
  if (r.jitter && (!std::isfinite(*r.jitter) || *r.jitter < 0.0 || *r.jitter > 1.0))
    return field_error(".jitter", "must be between 0 and 1");
  if (r.initial_backoff_ms && *r.initial_backoff_ms > max_duration_ms)
    return field_error(".initial_backoff_ms", too_long(*r.initial_backoff_ms));
  if (r.max_backoff_ms && *r.max_backoff_ms > max_duration_ms)
    return field_error(".max_backoff_ms", too_long(*r.max_backoff_ms));
  if (r.budget_ms && *r.budget_ms > max_duration_ms)
    return field_error(".budget_ms", too_long(*r.budget_ms));
  if (r.initial_backoff_ms && r.max_backoff_ms && *r.max_backoff_ms < *r.initial_backoff_ms)
    return field_error(".max_backoff_ms",
                       "must not be less than initial_backoff_ms");
  return {};
}

} // namespace

retry_policy resolve(const retry_spec& written, const retry_spec& defaults) {
  retry_policy p;
  auto pick = [](const auto& a, const auto& b, auto fallback) {
    return a ? *a : (b ? *b : fallback);
  };
  p.max_attempts = pick(written.max_attempts, defaults.max_attempts, p.max_attempts);
  p.initial_backoff_ms = pick(written.initial_backoff_ms, defaults.initial_backoff_ms,
                              p.initial_backoff_ms);
  p.max_backoff_ms = pick(written.max_backoff_ms, defaults.max_backoff_ms, p.max_backoff_ms);
  p.backoff_multiplier = pick(written.backoff_multiplier, defaults.backoff_multiplier,
                              p.backoff_multiplier);
  p.jitter = pick(written.jitter, defaults.jitter, p.jitter);
  p.budget_ms = pick(written.budget_ms, defaults.budget_ms, p.budget_ms);
  if (p.max_backoff_ms < p.initial_backoff_ms)
    p.max_backoff_ms = p.initial_backoff_ms;
  return p;
}

namespace {

caf::expected<definition> check(definition def, const kind_catalog* kinds) {
  if (!valid_id(def.name, 128))
    return make_error(errc::invalid_argument,
                      "definition: field \"name\": "
                        + std::string{def.name.empty() ? "missing"
                                                       : "must be 1 to 128 characters of "
                                                         "[A-Za-z0-9_.-], got " + quote(def.name)});
  if (def.tasks.empty())
    return make_error(errc::invalid_argument,
                      "definition " + quote(def.name) + ": field \"tasks\": no tasks");
  if (auto err = check_retry("definition", def.name, "default_retry",
                             def.default_retry))
    return err;
  if (def.default_timeout_ms > max_duration_ms)
    return field_error("definition " + quote(def.name), "default_timeout_ms",
                       too_long(def.default_timeout_ms));
  for (auto& [k, v] : def.labels)
    if (!valid_utf8(k) || !valid_utf8(v))
      return field_error("definition " + quote(def.name), "labels",
                         "label " + quote(to_valid_utf8(k)) + ": text that is not valid UTF-8");
  std::unordered_map<std::string, uint32_t> index;
  index.reserve(def.tasks.size());
  for (uint32_t i = 0; i < def.tasks.size(); ++i) {
    auto& t = def.tasks[i];
    if (t.id.empty())
      return make_error(errc::invalid_argument,
                        "task #" + std::to_string(i + 1) + ": field \"id\": missing");
    if (!valid_id(t.id))
      return task_error(t.id, "id", "must be 1 to 64 characters of [A-Za-z0-9_.-]");
    if (!index.emplace(t.id, i).second)
      return task_error(t.id, "id", "duplicate task id");
  }
  // Per task: the last task (index) that listed it as a dependency; the same marks then
  // collect each task's transitive dependents without a set.
  constexpr uint32_t none = UINT32_MAX;
  std::vector<uint32_t> listed(def.tasks.size(), none);
  for (uint32_t i = 0; i < def.tasks.size(); ++i) {
    auto& t = def.tasks[i];
    if (t.kind.empty())
      return task_error(t.id, "kind", "missing");
    if (auto err = check_text(t.id, "params.", t.parameters))
      return err;
    if (kinds != nullptr) {
      auto spec = kinds->find(t.kind);
      if (spec == nullptr)
        return task_error(t.id, "kind", "unknown kind " + quote(t.kind));
      if (auto err = check_params(t.id, "params.", *spec, t.parameters))
        return err;
    }
    if (!valid_utf8(t.description))
      return task_error(t.id, "description", "text that is not valid UTF-8");
    if (auto err = check_retry("task", t.id, "retry", t.retry_written))
      return err;
    if (t.timeout_ms > max_duration_ms)
      return task_error(t.id, "timeout_ms", too_long(t.timeout_ms));
    t.retry = resolve(t.retry_written, def.default_retry);
    t.effective_timeout_ms = t.timeout_ms != 0 ? t.timeout_ms
                             : def.default_timeout_ms != 0 ? def.default_timeout_ms
                                                           : default_task_timeout_ms;
    if (t.compensation) {
      auto& c = *t.compensation;
      if (c.kind.empty())
        return task_error(t.id, "compensation.kind", "missing");
      if (auto err = check_text(t.id, "compensation.params.", c.parameters))
        return err;
      if (kinds != nullptr) {
        auto cspec = kinds->find(c.kind);
        if (cspec == nullptr)
          return task_error(t.id, "compensation.kind",
                            "unknown compensation kind " + quote(c.kind));
        if (auto err = check_params(t.id, "compensation.params.", *cspec, c.parameters))
          return err;
      }
      if (auto err = check_retry("task", t.id, "compensation.retry",
                                 c.retry_written))
        return err;
      if (c.timeout_ms_written > max_duration_ms)
        return task_error(t.id, "compensation.timeout_ms", too_long(c.timeout_ms_written));
      // Undoing must be more patient than doing: unless told otherwise, a compensation
      // retries 10 times.
      retry_spec comp_defaults = def.default_retry;
      if (!comp_defaults.max_attempts)
        comp_defaults.max_attempts = 10;
      c.retry = resolve(c.retry_written, comp_defaults);
      c.timeout_ms = c.timeout_ms_written != 0 ? c.timeout_ms_written : t.effective_timeout_ms;
    }
    t.deps.clear();
    for (auto& d : t.depends_on) {
      auto j = index.find(d);
      if (j == index.end())
        return task_error(t.id, "depends_on", "missing dependency " + quote(d)
                                                + ": no task has that id");
      if (j->second == i)
        return task_error(t.id, "depends_on", "depends on itself");
      if (listed[j->second] == i)
        return task_error(t.id, "depends_on", "dependency " + quote(d) + " listed twice");
      listed[j->second] = i;
      t.deps.push_back(j->second);
    }
  }
  // Cycle check (Kahn), and dependents.
  auto n = def.tasks.size();
  std::vector<uint32_t> indegree(n, 0);
  for (auto& t : def.tasks)
    t.dependents.clear();
  for (uint32_t i = 0; i < n; ++i)
    for (auto d : def.tasks[i].deps) {
      def.tasks[d].dependents.push_back(i);
      ++indegree[i];
    }
  std::vector<uint32_t> order;
  order.reserve(n);
  for (uint32_t i = 0; i < n; ++i)
    if (indegree[i] == 0)
      order.push_back(i);
  for (size_t k = 0; k < order.size(); ++k)
    for (auto j : def.tasks[order[k]].dependents)
      if (--indegree[j] == 0)
        order.push_back(j);
  if (order.size() != n) {
    // Name a task on the cycle: follow unfinished dependencies until one repeats.
    uint32_t at = 0;
    while (indegree[at] == 0)
      ++at;
    std::vector<int> visited(n, -1);
    std::vector<uint32_t> path;
    while (visited[at] < 0) {
      visited[at] = static_cast<int>(path.size());
      path.push_back(at);
      for (auto d : def.tasks[at].deps)
        if (indegree[d] != 0) {
          at = d;
          break;
        }
    }
    std::string cycle;
    for (size_t k = static_cast<size_t>(visited[at]); k < path.size(); ++k)
      cycle += def.tasks[path[k]].id + " -> ";
    cycle += def.tasks[at].id;
    return task_error(def.tasks[at].id, "depends_on", "cycle: " + cycle);
  }
  // Transitive dependents, in reverse topological order.
  std::fill(listed.begin(), listed.end(), none);
  for (auto k = order.rbegin(); k != order.rend(); ++k) {
    auto& t = def.tasks[*k];
    auto& all = t.transitive_dependents;
    all.clear();
    auto add = [&](uint32_t j) {
      if (listed[j] != *k) {
        listed[j] = *k;
        all.push_back(j);
      }
    };
    for (auto j : t.dependents) {
      add(j);
      for (auto x : def.tasks[j].transitive_dependents)
        add(x);
    }
    std::sort(all.begin(), all.end());
  }
  // Output references: "@{id}" names the output of a task this one depends on, directly or
  // not (so the output exists, and is still there when this task's compensation runs). A
  // compensation may also name its own task's output: what the task did, to undo (empty
  // when the task failed in doubt, its answer lost).
  for (uint32_t i = 0; i < n; ++i) {
    auto& t = def.tasks[i];
    t.uses_outputs = false;
    auto check_refs = [&](const char* prefix, const params& ps, bool own) -> caf::error {
      for (auto& [name, v] : ps) {
        auto refs = output_refs(v);
        for (auto& r : refs) {
          auto j = index.find(r);
          std::string field = prefix + name;
          if (j == index.end())
            return task_error(t.id, field, "@{" + r + "}: no task has that id");
          if (own && j->second == i) {
            t.uses_outputs = true;
            continue;
          }
          auto& td = def.tasks[j->second].transitive_dependents;
          if (!std::binary_search(td.begin(), td.end(), i))
            return task_error(t.id, field,
                              "@{" + r + "}: the output of a task this one does not depend on");
          t.uses_outputs = true;
        }
      }
      return caf::error{};
    };
    if (auto err = check_refs("params.", t.parameters, false))
      return err;
    if (t.compensation)
      if (auto err = check_refs("compensation.params.", t.compensation->parameters, true))
        return err;
  }
  return def;
}

} // namespace

caf::expected<definition> validate(definition def, const kind_catalog& kinds) {
  return check(std::move(def), &kinds);
}

caf::expected<definition> link(definition def) {
  return check(std::move(def), nullptr);
}

} // namespace ferry
