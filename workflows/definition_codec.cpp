#include "workflows/definition_codec.hpp"

#include <algorithm>
#include <fstream>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "common/errc.hpp"
#include "common/file.hpp"
#include "common/wire.hpp"
#include "ferry/v1/workflow.pb.h"
#include "proto/text_io.hpp"
#include "workflows/validate.hpp"
#include "workflows/sha256.hpp"

namespace ferry {

namespace pb = google::protobuf;

namespace {

value from_proto(const pb::Value& v) {
  value r;
  switch (v.kind_case()) {
    case pb::Value::kBoolValue: r = value::of(v.bool_value()); break;
    case pb::Value::kNumberValue: r = value::of(v.number_value()); break;
    case pb::Value::kStringValue: r = value::of(v.string_value()); break;
    case pb::Value::kListValue:
      r.kind = value::type::list;
      for (auto& x : v.list_value().values())
        r.items.push_back(from_proto(x));
      break;
    case pb::Value::kStructValue:
      r.kind = value::type::object;
      for (auto& [k, x] : v.struct_value().fields())
        r.fields.emplace_back(k, from_proto(x));
      std::sort(r.fields.begin(), r.fields.end(),
                [](auto& a, auto& b) { return a.first < b.first; });
      break;
    default:
      break;
  }
  return r;
}

void to_proto(const value& x, pb::Value& v) {
  switch (x.kind) {
    case value::type::null: v.set_null_value(pb::NULL_VALUE); break;
    case value::type::boolean: v.set_bool_value(x.b); break;
    case value::type::number: v.set_number_value(x.n); break;
    case value::type::string: v.set_string_value(x.s); break;
    case value::type::list: {
      auto* l = v.mutable_list_value();
      for (auto& i : x.items)
        to_proto(i, *l->add_values());
      break;
    }
    case value::type::object: {
      auto* s = v.mutable_struct_value();
      for (auto& [k, i] : x.fields)
        to_proto(i, (*s->mutable_fields())[k]);
      break;
    }
  }
}

params from_proto(const pb::Struct& s) {
  params ps;
  for (auto& [k, v] : s.fields())
    ps.emplace_back(k, from_proto(v));
  // Maps have no order: sort so that equal definitions compare equal.
  std::sort(ps.begin(), ps.end(), [](auto& a, auto& b) { return a.first < b.first; });
  return ps;
}

void to_proto(const params& ps, pb::Struct& s) {
  for (auto& [k, v] : ps)
    to_proto(v, (*s.mutable_fields())[k]);
}

retry_spec from_proto(const v1::RetryPolicy& p) {
  retry_spec r;
  if (p.has_max_attempts()) r.max_attempts = p.max_attempts();
  if (p.has_initial_backoff_ms()) r.initial_backoff_ms = p.initial_backoff_ms();
  if (p.has_max_backoff_ms()) r.max_backoff_ms = p.max_backoff_ms();
  if (p.has_backoff_multiplier()) r.backoff_multiplier = p.backoff_multiplier();
  if (p.has_jitter()) r.jitter = p.jitter();
  if (p.has_budget_ms()) r.budget_ms = p.budget_ms();
  return r;
}

bool to_proto(const retry_spec& r, v1::RetryPolicy& p) {
  if (r.max_attempts) p.set_max_attempts(*r.max_attempts);
  if (r.initial_backoff_ms) p.set_initial_backoff_ms(*r.initial_backoff_ms);
  if (r.max_backoff_ms) p.set_max_backoff_ms(*r.max_backoff_ms);
  if (r.backoff_multiplier) p.set_backoff_multiplier(*r.backoff_multiplier);
  if (r.jitter) p.set_jitter(*r.jitter);
  if (r.budget_ms) p.set_budget_ms(*r.budget_ms);
  return r.max_attempts || r.initial_backoff_ms || r.max_backoff_ms || r.backoff_multiplier
         || r.jitter || r.budget_ms;
}

definition from_proto(const v1::WorkflowDefinition& p) {
  definition d;
  d.name = p.name();
  d.version = p.version();
  d.default_retry = from_proto(p.default_retry());
  d.default_timeout_ms = p.default_timeout_ms();
  d.retry_budget = p.retry_budget();
  for (auto& [k, v] : p.labels())
    d.labels.emplace(k, v);
  for (auto& pt : p.tasks()) {
    task_def t;
    t.id = pt.id();
    t.kind = pt.kind();
    t.parameters = from_proto(pt.params());
    t.depends_on.assign(pt.depends_on().begin(), pt.depends_on().end());
    t.retry_written = from_proto(pt.retry());
    t.timeout_ms = pt.timeout_ms();
    if (pt.has_compensation()) {
      compensation_def c;
      c.kind = pt.compensation().kind();
      c.parameters = from_proto(pt.compensation().params());
      c.retry_written = from_proto(pt.compensation().retry());
      c.timeout_ms_written = pt.compensation().timeout_ms();
      t.compensation = std::move(c);
    }
    t.point_of_no_return = pt.point_of_no_return();
    t.gate = pt.gate();
    t.description = pt.description();
    d.tasks.push_back(std::move(t));
  }
  return d;
}

v1::WorkflowDefinition to_proto(const definition& d) {
  v1::WorkflowDefinition p;
  p.set_name(d.name);
  p.set_version(d.version);
  if (!to_proto(d.default_retry, *p.mutable_default_retry()))
    p.clear_default_retry();
  p.set_default_timeout_ms(d.default_timeout_ms);
  p.set_retry_budget(d.retry_budget);
  for (auto& [k, v] : d.labels)
    (*p.mutable_labels())[k] = v;
  for (auto& t : d.tasks) {
    auto* pt = p.add_tasks();
    pt->set_id(t.id);
    pt->set_kind(t.kind);
    if (!t.parameters.empty())
      to_proto(t.parameters, *pt->mutable_params());
    for (auto& dep : t.depends_on)
      pt->add_depends_on(dep);
    if (!to_proto(t.retry_written, *pt->mutable_retry()))
      pt->clear_retry();
    pt->set_timeout_ms(t.timeout_ms);
    if (t.compensation) {
      auto* c = pt->mutable_compensation();
      c->set_kind(t.compensation->kind);
      if (!t.compensation->parameters.empty())
        to_proto(t.compensation->parameters, *c->mutable_params());
      if (!to_proto(t.compensation->retry_written, *c->mutable_retry()))
        c->clear_retry();
      c->set_timeout_ms(t.compensation->timeout_ms_written);
    }
    pt->set_point_of_no_return(t.point_of_no_return);
    pt->set_gate(t.gate);
    pt->set_description(t.description);
  }
  return p;
}

std::string canonical(const v1::WorkflowDefinition& p) {
  std::string out;
  pb::io::StringOutputStream sos{&out};
  {
    pb::io::CodedOutputStream cos{&sos};
    cos.SetSerializationDeterministic(true);
    p.SerializeToCodedStream(&cos);
  }
  return out;
}

// The canonical encoding written directly from a definition (common/wire.hpp), as
// canonical(to_proto(d)) writes it: every definition a drain renders is encoded without
// building its protobuf. Struct fields are maps, which the deterministic serialization writes
// in key order with both key and value, as it writes the labels; a Value's kind is a oneof,
// written even when it holds its type's default.

/// Keys in strictly increasing order at every depth: what the direct encoder needs to write
/// maps as the protobuf's deterministic serialization does (a definition decoded from
/// protobuf always has them so; one built in code may not, and is encoded through protobuf).
bool ordered(const params& fields);

bool ordered(const value& v) {
  if (v.kind == value::type::list) {
    for (auto& x : v.items)
      if (!ordered(x))
        return false;
    return true;
  }
  return v.kind != value::type::object || ordered(v.fields);
}

bool ordered(const params& fields) {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0 && !(fields[i - 1].first < fields[i].first))
      return false;
    if (!ordered(fields[i].second))
      return false;
  }
  return true;
}

bool ordered(const definition& d) {
  for (auto& t : d.tasks)
    if (!ordered(t.parameters) || (t.compensation && !ordered(t.compensation->parameters)))
      return false;
  return true;
}

void encode_struct(std::string& out, const params& fields);

/// A google.protobuf.Value's fields.
void encode_value(std::string& out, const value& v) {
  using V = pb::Value;
  switch (v.kind) {
    case value::type::null: put_varint_field(out, V::kNullValueFieldNumber, 0); return;
    case value::type::boolean: put_varint_field(out, V::kBoolValueFieldNumber, v.b); return;
    case value::type::number: put_double_field(out, V::kNumberValueFieldNumber, v.n); return;
    case value::type::string: put_field(out, V::kStringValueFieldNumber, v.s); return;
    case value::type::list:
      put_nested(out, V::kListValueFieldNumber, [&] {
        for (auto& x : v.items)
          put_nested(out, pb::ListValue::kValuesFieldNumber, [&] { encode_value(out, x); });
      });
      return;
    case value::type::object:
      put_nested(out, V::kStructValueFieldNumber, [&] { encode_struct(out, v.fields); });
      return;
  }
}

/// A google.protobuf.Struct's fields: its map, in key order, each entry with its key (1) and
/// value (2) whatever they hold.
void encode_struct(std::string& out, const params& fields) {
  for (auto& [k, x] : fields)
    put_nested(out, pb::Struct::kFieldsFieldNumber, [&] {
      put_field(out, 1, k);
      put_nested(out, 2, [&] { encode_value(out, x); });
    });
}

/// A RetryPolicy field, when any of its fields is set (explicit presence: a field set to 0
/// is written).
void put_retry(std::string& out, uint32_t number, const retry_spec& r) {
  if (!r.max_attempts && !r.initial_backoff_ms && !r.max_backoff_ms && !r.backoff_multiplier
      && !r.jitter && !r.budget_ms)
    return;
  using R = v1::RetryPolicy;
  put_nested(out, number, [&] {
    if (r.max_attempts)
      put_varint_field(out, R::kMaxAttemptsFieldNumber, *r.max_attempts);
    if (r.initial_backoff_ms)
      put_varint_field(out, R::kInitialBackoffMsFieldNumber, *r.initial_backoff_ms);
    if (r.max_backoff_ms)
      put_varint_field(out, R::kMaxBackoffMsFieldNumber, *r.max_backoff_ms);
    if (r.backoff_multiplier)
      put_double_field(out, R::kBackoffMultiplierFieldNumber, *r.backoff_multiplier);
    if (r.jitter)
      put_double_field(out, R::kJitterFieldNumber, *r.jitter);
    if (r.budget_ms)
      put_varint_field(out, R::kBudgetMsFieldNumber, *r.budget_ms);
  });
}

void encode_task(std::string& out, const task_def& t) {
  using T = v1::TaskDefinition;
  wire w{out};
  w.bytes(T::kIdFieldNumber, t.id);
  w.bytes(T::kKindFieldNumber, t.kind);
  if (!t.parameters.empty())
    put_nested(out, T::kParamsFieldNumber, [&] { encode_struct(out, t.parameters); });
  for (auto& dep : t.depends_on)
    put_field(out, T::kDependsOnFieldNumber, dep);
  put_retry(out, T::kRetryFieldNumber, t.retry_written);
  w.varint(T::kTimeoutMsFieldNumber, t.timeout_ms);
  if (t.compensation) {
    using C = v1::Compensation;
    auto& c = *t.compensation;
    put_nested(out, T::kCompensationFieldNumber, [&] {
      w.bytes(C::kKindFieldNumber, c.kind);
      if (!c.parameters.empty())
        put_nested(out, C::kParamsFieldNumber, [&] { encode_struct(out, c.parameters); });
      put_retry(out, C::kRetryFieldNumber, c.retry_written);
      w.varint(C::kTimeoutMsFieldNumber, c.timeout_ms_written);
    });
  }
  w.boolean(T::kPointOfNoReturnFieldNumber, t.point_of_no_return);
  w.boolean(T::kGateFieldNumber, t.gate);
  w.bytes(T::kDescriptionFieldNumber, t.description);
}

std::string encode(const definition& d) {
  if (!ordered(d))
    return canonical(to_proto(d));
  using W = v1::WorkflowDefinition;
  std::string out;
  out.reserve(256 + 256 * d.tasks.size());
  wire w{out};
  w.bytes(W::kNameFieldNumber, d.name);
  w.varint(W::kVersionFieldNumber, d.version);
  for (auto& t : d.tasks)
    put_nested(out, W::kTasksFieldNumber, [&] { encode_task(out, t); });
  put_retry(out, W::kDefaultRetryFieldNumber, d.default_retry);
  w.varint(W::kDefaultTimeoutMsFieldNumber, d.default_timeout_ms);
  w.varint(W::kRetryBudgetFieldNumber, d.retry_budget);
  for (auto& [k, v] : d.labels)
    put_nested(out, W::kLabelsFieldNumber, [&] {
      put_field(out, 1, k);
      put_field(out, 2, v);
    });
  return out;
}

caf::expected<definition_ptr> finish(definition d, const kind_catalog* kinds) {
  auto checked = kinds != nullptr ? validate(std::move(d), *kinds) : link(std::move(d));
  if (!checked)
    return checked.error();
  // Validation fills in only what is derived: the written fields it encodes are as given.
  checked->encoded = encode(*checked);
  checked->digest = sha256_hex(checked->encoded);
  return std::make_shared<const definition>(std::move(*checked));
}

} // namespace

caf::expected<definition_ptr> load_definition(std::string_view source,
                                              const kind_catalog& kinds,
                                              definition_format format) {
  if (format == definition_format::automatic) {
    auto first = source.find_first_not_of(" \t\r\n");
    format = first != std::string_view::npos && source[first] == '{' ? definition_format::json
                                                                     : definition_format::text;
  }
  v1::WorkflowDefinition proto;
  if (format == definition_format::binary) {
    if (!proto.ParseFromArray(source.data(), static_cast<int>(source.size())))
      return make_error(errc::invalid_argument, "definition (binary): not a WorkflowDefinition");
  } else {
    auto json = format == definition_format::json;
    if (auto err = parse_text_or_json(source, proto, json); !err.empty())
      return make_error(errc::invalid_argument, std::string{"definition ("}
                                                  + (json ? "JSON" : "text format") + "): " + err);
  }
  return finish(from_proto(proto), &kinds);
}

caf::expected<definition_ptr> load_definition_file(const std::string& path,
                                                   const kind_catalog& kinds) {
  auto text = read_file(path);
  if (!text)
    return make_error(code_of(text.error()),
                      "definition file \"" + path + "\": " + message_of(text.error()));
  auto format = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0
                  ? definition_format::json
                  : definition_format::automatic;
  auto result = load_definition(*text, kinds, format);
  if (!result)
    return make_error(code_of(result.error()), path + ": " + message_of(result.error()));
  return result;
}

caf::expected<definition> decode_definition_as_written(std::string_view encoded) {
  v1::WorkflowDefinition proto;
  if (!proto.ParseFromArray(encoded.data(), static_cast<int>(encoded.size())))
    return make_error(errc::data_loss, "definition: undecodable protobuf");
  return from_proto(proto);
}

caf::expected<definition_ptr> decode_definition(std::string_view encoded) {
  auto d = decode_definition_as_written(encoded);
  if (!d)
    return d.error();
  return finish(std::move(*d), nullptr);
}

caf::expected<definition_ptr> finish_definition(definition def, const kind_catalog& kinds) {
  return finish(std::move(def), &kinds);
}

std::string encode_definition(const definition& def) {
  return encode(def);
}

std::string encode_definition_with_protobuf(const definition& def) {
  return canonical(to_proto(def));
}

std::string render_definition(const definition& def, definition_format format) {
  return print_text_or_json(to_proto(def), format == definition_format::json);
}

} // namespace ferry
