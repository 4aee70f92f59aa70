// Loading and checking migration templates, checking and converting arguments, and
// rendering (the substitution itself is in render.cpp).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "common/errc.hpp"
#include "common/file.hpp"
#include "common/ids.hpp"
#include "proto/text_io.hpp"
#include "templates/template.hpp"
#include "templates/template_internal.hpp"

namespace ferry {

namespace pb = google::protobuf;

const char* const template_phases[7] = {"pre_reconfigure", "hot_unplug", "migrate",
                                        "in_migration_reconfigure", "hot_plug",
                                        "post_reconfigure", "cleanup"};

const char* to_string(template_param_type t) noexcept {
  switch (t) {
    case template_param_type::string: return "STRING";
    case template_param_type::integer: return "INTEGER";
    case template_param_type::number: return "NUMBER";
    case template_param_type::boolean: return "BOOLEAN";
    case template_param_type::vm: return "VM";
    case template_param_type::host: return "HOST";
    case template_param_type::zone: return "ZONE";
    case template_param_type::vm_type: return "VM_TYPE";
    case template_param_type::partition: return "PARTITION";
    case template_param_type::string_list: return "STRING_LIST";
  }
  return "?";
}

const template_param* migration_template::find(const std::string& n) const {
  for (auto& p : params)
    if (p.name == n)
      return &p;
  return nullptr;
}

namespace {

value from_pb(const pb::Value& v) {
  switch (v.kind_case()) {
    case pb::Value::kBoolValue: return value::of(v.bool_value());
    case pb::Value::kNumberValue: return value::of(v.number_value());
    case pb::Value::kStringValue: return value::of(v.string_value());
    case pb::Value::kListValue: {
      value r;
      r.kind = value::type::list;
      for (auto& x : v.list_value().values())
        r.items.push_back(from_pb(x));
      return r;
    }
    default: return {};
  }
}

value empty_of(template_param_type t) {
  switch (t) {
    case template_param_type::integer:
    case template_param_type::number: return value::of(0.0);
    case template_param_type::boolean: return value::of(false);
    case template_param_type::string_list: {
      value v;
      v.kind = value::type::list;
      return v;
    }
    default: return value::of(std::string{});
  }
}

// Checks `v` against parameter `p`; "" when it fits, else what is wrong.
std::string check_arg(const template_param& p, const value& v, const fleet::model* fleet) {
  using t = template_param_type;
  auto got = [&] { return std::string{" (got "} + to_string(v.kind) + ")"; };
  switch (p.type) {
    case t::integer:
      if (v.kind != value::type::number || std::floor(v.n) != v.n || !std::isfinite(v.n))
        return "expected an integer" + (v.kind == value::type::number ? std::string{} : got());
      return {};
    case t::number:
      if (v.kind == value::type::number && !std::isfinite(v.n))
        return "expected a finite number";
      return v.kind == value::type::number ? "" : "expected a number" + got();
    case t::boolean:
      return v.kind == value::type::boolean ? "" : "expected true or false" + got();
    case t::string_list:
      if (v.kind != value::type::list)
        return "expected a list of strings" + got();
      for (auto& i : v.items)
        if (i.kind != value::type::string)
          return "expected a list of strings (an element is " + std::string{to_string(i.kind)}
                 + ")";
      return {};
    default:
      break;
  }
  if (v.kind != value::type::string)
    return "expected a string" + got();
  if (!p.choices.empty()
      && std::find(p.choices.begin(), p.choices.end(), v.s) == p.choices.end()) {
    std::string list;
    for (auto& c : p.choices)
      list += (list.empty() ? "" : ", ") + c;
    return "\"" + v.s + "\" is not one of " + list;
  }
  if (fleet && !v.s.empty()) {
    auto missing = [&](const char* what) {
      return std::string{what} + " \"" + v.s + "\" is not in the fleet";
    };
    if (p.type == t::vm && fleet->find_vm(v.s) == fleet::npos)
      return missing("VM");
    if (p.type == t::host && fleet->find_host(v.s) == fleet::npos)
      return missing("host");
    if (p.type == t::zone && fleet->find_zone(v.s) == fleet::npos)
      return missing("zone");
    if (p.type == t::vm_type && fleet->find_type(v.s) == fleet::npos)
      return missing("VM type");
    if (p.type == t::partition && fleet->find_partition(v.s) == fleet::npos)
      return missing("partition");
  }
  return {};
}

// A fact about a VM from the fleet (and where it runs now, from `locate`); false when the
// fleet does not know the VM.
bool derive(const template_param& p, const std::string& vm_name, const fleet::model& m,
            const vm_locator& locate, value& out) {
  auto v = m.find_vm(vm_name);
  if (v == fleet::npos)
    return false;
  auto& vm = m.vms[v];
  std::string host = vm.host == fleet::npos ? std::string{} : m.hosts[vm.host].name;
  std::string type = vm.type == fleet::npos ? std::string{} : m.types[vm.type].name;
  if (locate) {
    std::string h, ty;
    if (locate(vm_name, h, ty)) {
      if (!h.empty())
        host = h;
      if (!ty.empty())
        type = ty;
    }
  }
  auto list = [](std::vector<std::string> xs) {
    value l;
    l.kind = value::type::list;
    for (auto& x : xs)
      l.items.push_back(value::of(std::move(x)));
    return l;
  };
  auto& f = p.from_vm_fact;
  if (f == "host") {
    out = value::of(host);
  } else if (f == "zone") {
    auto h = m.find_host(host);
    out = value::of(h == fleet::npos ? std::string{} : m.zones[m.hosts[h].zone].name);
  } else if (f == "type") {
    out = value::of(type);
  } else if (f == "address") {
    out = value::of(vm.address);
  } else if (f == "partitions") {
    std::vector<std::string> xs;
    for (auto vol : vm.volumes)
      for (auto part : m.volumes[vol].partitions)
        xs.push_back(m.partitions[part].name);
    out = list(std::move(xs));
  } else if (f == "volumes") {
    std::vector<std::string> xs;
    for (auto vol : vm.volumes)
      xs.push_back(m.volumes[vol].name);
    out = list(std::move(xs));
  } else if (f == "local_disks") {
    std::vector<std::string> xs;
    for (auto& d : vm.local_disks)
      xs.push_back(d.target);
    out = list(std::move(xs));
  } else if (f == "agent") {
    out = value::of(vm.agent);
  } else {
    out = value::of(vm.agent && vm.agent_authorized);
  }
  return true;
}

// Every parameter's value: given, derived from the fleet, default, or empty; errors name the
// parameter.
caf::expected<template_args> resolve(const migration_template& t,
                                                        const template_args& args,
                                                        const fleet::model* fleet,
                                                        const vm_locator& locate) {
  auto head = "template \"" + t.name + "\": parameter \"";
  for (auto& [k, v] : args)
    if (!t.find(k))
      return make_error(errc::invalid_argument, head + k + "\": not a parameter of the template");
  template_args out;
  for (auto& p : t.params) {
    auto i = args.find(p.name);
    value v;
    auto vm_arg = p.from_vm_param.empty() ? args.end() : args.find(p.from_vm_param);
    if (i != args.end())
      v = i->second;
    else if (fleet && vm_arg != args.end() && vm_arg->second.kind == value::type::string
             && derive(p, vm_arg->second.s, *fleet, locate, v))
      ;
    else if (p.default_value)
      v = *p.default_value;
    else if (p.required)
      return make_error(errc::invalid_argument, head + p.name + "\": required ("
                                                  + to_string(p.type) + ")");
    else
      v = empty_of(p.type);
    if (auto err = check_arg(p, v, fleet); !err.empty())
      return make_error(errc::invalid_argument, head + p.name + "\": " + err);
    out.emplace(p.name, std::move(v));
  }
  return out;
}

// A value for every parameter that exercises every task (when: true; for_each: two items).
template_args samples(const migration_template& t) {
  template_args a;
  for (auto& p : t.params) {
    if (p.default_value) {
      a[p.name] = *p.default_value;
      if (p.type == template_param_type::boolean)
        a[p.name] = value::of(true);
      continue;
    }
    switch (p.type) {
      case template_param_type::integer:
      case template_param_type::number: a[p.name] = value::of(1.0); break;
      case template_param_type::boolean: a[p.name] = value::of(true); break;
      case template_param_type::string_list: {
        value v;
        v.kind = value::type::list;
        v.items = {value::of("sample-0"), value::of("sample-1")};
        a[p.name] = v;
        break;
      }
      default:
        a[p.name] = value::of(p.choices.empty() ? std::string{"sample"} : p.choices.front());
    }
  }
  return a;
}

caf::expected<template_ptr> build(const v1::MigrationTemplate& proto, const kind_catalog& kinds) {
  auto t = std::make_shared<migration_template>();
  t->name = proto.name();
  t->version = proto.version();
  t->description = proto.description();
  auto head = "template \"" + t->name + "\"";
  auto bad = [&](const std::string& m) { return make_error(errc::invalid_argument, head + ": " + m); };
  if (!valid_id(t->name, 128))
    return bad("field \"name\": must be 1 to 128 characters of [A-Za-z0-9_.-]");
  std::set<std::string> names;
  for (auto& p : proto.parameters()) {
    auto where = "parameter \"" + p.name() + "\"";
    if (!valid_id(p.name()) || p.name().find_first_of(".-") != std::string::npos)
      return bad(where + ": name must be 1 to 64 characters of [A-Za-z0-9_]");
    if (p.name() == "item")
      return bad(where + ": \"item\" is reserved for for_each");
    if (!names.insert(p.name()).second)
      return bad(where + ": declared twice");
    if (p.type() == v1::PARAMETER_TYPE_UNSPECIFIED)
      return bad(where + ": field \"type\" is required");
    template_param x;
    x.name = p.name();
    x.type = static_cast<template_param_type>(p.type() - 1);
    x.required = p.required();
    x.description = p.description();
    x.choices.assign(p.choices().begin(), p.choices().end());
    if (!x.choices.empty() && x.type != template_param_type::string)
      return bad(where + ": choices are only for STRING parameters");
    if (p.has_default_value()) {
      x.default_value = from_pb(p.default_value());
      if (auto err = check_arg(x, *x.default_value, nullptr); !err.empty())
        return bad(where + ": default_value: " + err);
    }
    if (!p.from_vm().empty()) {
      auto dot = p.from_vm().find('.');
      x.from_vm_param = p.from_vm().substr(0, dot);
      x.from_vm_fact = dot == std::string::npos ? std::string{} : p.from_vm().substr(dot + 1);
    }
    t->params.push_back(std::move(x));
  }
  for (auto& x : t->params) {
    if (x.from_vm_param.empty())
      continue;
    auto where = "parameter \"" + x.name + "\": from_vm \"" + x.from_vm_param + "."
                 + x.from_vm_fact + "\"";
    auto* vm = t->find(x.from_vm_param);
    if (!vm || vm->type != template_param_type::vm)
      return bad(where + ": \"" + x.from_vm_param + "\" is not a VM parameter");
    using tp = template_param_type;
    auto& f = x.from_vm_fact;
    tp want;
    if (f == "host" || f == "zone" || f == "type" || f == "address")
      want = f == "host" ? tp::host : f == "zone" ? tp::zone : f == "type" ? tp::vm_type
                                                                         : tp::string;
    else if (f == "partitions" || f == "volumes" || f == "local_disks")
      want = tp::string_list;
    else if (f == "agent" || f == "agent_authorized")
      want = tp::boolean;
    else
      return bad(where + ": unknown fact \"" + f
                 + "\" (host, zone, type, address, partitions, volumes, local_disks, agent, "
                   "agent_authorized)");
    if (x.type != want && !(want != tp::string_list && want != tp::boolean
                            && x.type == tp::string))
      return bad(where + ": a " + to_string(want) + " fact for a " + to_string(x.type)
                 + " parameter");
  }
  std::set<std::string> ids;
  const v1::Phase* phases[7] = {&proto.pre_reconfigure(), &proto.hot_unplug(), &proto.migrate(),
                                &proto.in_migration_reconfigure(), &proto.hot_plug(),
                                &proto.post_reconfigure(), &proto.cleanup()};
  size_t total = 0;
  for (int i = 0; i < 7; ++i) {
    for (auto& tt : phases[i]->tasks()) {
      auto where = "phase \"" + std::string{template_phases[i]} + "\" task \"" + tt.task().id()
                   + "\"";
      if (!valid_id(tt.task().id()))
        return bad(where + ": id must be 1 to 64 characters of [A-Za-z0-9_.-]");
      if (!ids.insert(tt.task().id()).second)
        return bad(where + ": id used twice in the template");
      if (!tt.when().empty() && !t->find(tt.when()))
        return bad(where + ": when \"" + tt.when() + "\": not a parameter");
      if (!tt.for_each().empty()) {
        auto* p = t->find(tt.for_each());
        if (!p || p->type != template_param_type::string_list)
          return bad(where + ": for_each \"" + tt.for_each()
                     + "\": not a STRING_LIST parameter");
      }
    }
    t->tasks_per_phase[i] = static_cast<size_t>(phases[i]->tasks_size());
    total += t->tasks_per_phase[i];
  }
  if (total == 0)
    return bad("no task in any phase");
  proto.SerializeToString(&t->encoded);
  auto body = compile_template(proto);
  if (!body)
    return body.error();
  t->body = std::make_shared<const template_body>(std::move(*body));
  // Render with sample values: placeholders, dependencies and the definition rules.
  auto sample = resolve(*t, samples(*t), nullptr, {});
  if (!sample)
    return sample.error();
  auto d = render_body(*t->body, *sample, kinds);
  if (!d)
    return d.error();
  return template_ptr{std::move(t)};
}

} // namespace

caf::expected<template_ptr> load_template(std::string_view source, const kind_catalog& kinds,
                                          template_format format) {
  if (format == template_format::automatic) {
    auto first = source.find_first_not_of(" \t\r\n");
    format = first != std::string_view::npos && source[first] == '{' ? template_format::json
                                                                     : template_format::text;
  }
  v1::MigrationTemplate proto;
  if (format == template_format::binary) {
    if (!proto.ParseFromArray(source.data(), static_cast<int>(source.size())))
      return make_error(errc::invalid_argument, "template (binary): not a MigrationTemplate");
  } else {
    auto json = format == template_format::json;
    if (auto err = parse_text_or_json(source, proto, json); !err.empty())
      return make_error(errc::invalid_argument,
                        std::string{"template ("} + (json ? "JSON" : "text format") + "): " + err);
  }
  return build(proto, kinds);
}

caf::expected<std::vector<std::string>> template_files(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  // Every step with an error_code: the throwing forms end the process on an unreadable entry.
  for (std::filesystem::directory_iterator i{dir, ec}, end; !ec && i != end; i.increment(ec)) {
    auto ext = i->path().extension().string();
    std::error_code type_ec;
    if (i->is_regular_file(type_ec) && (ext == ".textproto" || ext == ".txtpb" || ext == ".json"))
      files.push_back(i->path().string());
  }
  if (ec)
    return make_error(errc::not_found, "template directory " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

caf::expected<template_ptr> load_template_file(const std::string& path,
                                               const kind_catalog& kinds) {
  auto text = read_file(path);
  if (!text)
    return make_error(code_of(text.error()),
                      "template file " + path + ": " + message_of(text.error()));
  auto json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  auto t = load_template(*text, kinds,
                         json ? template_format::json : template_format::automatic);
  if (!t)
    return make_error(code_of(t.error()), path + ": " + message_of(t.error()));
  return t;
}

namespace {

/// `text` as a number when it is written as one in decimal: an optional minus, digits, an
/// optional fraction and an optional exponent (no spaces, signs before digits, hex, inf or nan).
std::optional<double> decimal(const std::string& text) {
  size_t i = text.size() > 0 && text[0] == '-' ? 1 : 0;
  auto digits = [&] {
    auto from = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9')
      ++i;
    return i > from;
  };
  if (!digits())
    return std::nullopt;
  if (i < text.size() && text[i] == '.' && (++i, !digits()))
    return std::nullopt;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-'))
      ++i;
    if (!digits())
      return std::nullopt;
  }
  if (i != text.size())
    return std::nullopt;
  return std::strtod(text.c_str(), nullptr);
}

} // namespace

caf::expected<definition_ptr> render(const migration_template& t, const template_args& args,
                                     const kind_catalog& kinds, const fleet::model* fleet,
                                     const vm_locator& locate) {
  auto resolved = resolve(t, args, fleet, locate);
  if (!resolved)
    return resolved.error();
  return render_body(*t.body, *resolved, kinds);
}

caf::expected<template_args> parse_template_args(const migration_template& t,
                                                 const std::vector<std::string>& args) {
  template_args out;
  for (auto& a : args) {
    auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0)
      return make_error(errc::invalid_argument, "argument \"" + a + "\": expected NAME=VALUE");
    auto name = a.substr(0, eq);
    auto text = a.substr(eq + 1);
    auto* p = t.find(name);
    if (!p)
      return make_error(errc::invalid_argument, "template \"" + t.name + "\": parameter \""
                                                  + name + "\": not a parameter of the template");
    if (out.count(name) > 0)
      return make_error(errc::invalid_argument, "template \"" + t.name + "\": parameter \""
                                                  + name + "\": given more than once");
    auto bad = [&](const char* what) {
      return make_error(errc::invalid_argument, "template \"" + t.name + "\": parameter \""
                                                  + name + "\": \"" + text + "\" is not " + what);
    };
    switch (p->type) {
      case template_param_type::integer:
      case template_param_type::number: {
        auto n = decimal(text);
        if (!n)
          return bad("a number");
        if (!std::isfinite(*n))
          return bad("a number in range");
        if (p->type == template_param_type::integer && std::floor(*n) != *n)
          return bad("an integer");
        out[name] = value::of(*n);
        break;
      }
      case template_param_type::boolean:
        if (text != "true" && text != "false")
          return bad("true or false");
        out[name] = value::of(text == "true");
        break;
      case template_param_type::string_list: {
        value v;
        v.kind = value::type::list;
        size_t pos = 0;
        while (!text.empty() && pos <= text.size()) {
          auto comma = text.find(',', pos);
          v.items.push_back(value::of(text.substr(pos, comma - pos)));
          if (comma == std::string::npos)
            break;
          pos = comma + 1;
        }
        out[name] = v;
        break;
      }
      default:
        out[name] = value::of(text);
    }
  }
  return out;
}

std::string render_template_source(const migration_template& t, template_format format) {
  v1::MigrationTemplate proto;
  proto.ParseFromString(t.encoded);
  return print_text_or_json(proto, format == template_format::json);
}

} // namespace ferry
