// ferry::value — a task parameter: null, bool, number, string, list or object (the JSON data
// model, as google.protobuf.Struct carries it). Immutable once in a definition; any thread.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ferry {

struct value {
  enum class type : uint8_t { null, boolean, number, string, list, object };

  type kind = type::null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<value> items;
  std::vector<std::pair<std::string, value>> fields;

  static value of(bool x) { value v; v.kind = type::boolean; v.b = x; return v; }
  static value of(double x) { value v; v.kind = type::number; v.n = x; return v; }
  static value of(int x) { return of(static_cast<double>(x)); }
  static value of(std::string x) { value v; v.kind = type::string; v.s = std::move(x); return v; }
  static value of(const char* x) { return of(std::string{x}); }

  /// The field named `key` of an object, or nullptr.
  const value* find(const std::string& key) const;

  bool operator==(const value& other) const;
  bool operator!=(const value& other) const { return !(*this == other); }
};

/// An object's fields: the parameters of one task.
using params = std::vector<std::pair<std::string, value>>;

/// The parameter named `key`, or nullptr.
const value* find_param(const params& ps, const std::string& key);

/// The task ids a value refers to with "@{id}" (the output of that task), in strings at any
/// depth, in order of appearance.
std::vector<std::string> output_refs(const value& v);

/// `v` with every "@{id}" replaced by `output_of(id)`. A string that is exactly one reference
/// becomes the output as a string.
template <class F>
value substitute_outputs(const value& v, const F& output_of);

/// "null", "bool", "number", "string", "list", "object".
const char* to_string(value::type x) noexcept;

/// Compact JSON, for logs and the CLI.
std::string to_json(const value& x);

template <class F>
value substitute_outputs(const value& v, const F& output_of) {
  value out = v;
  switch (v.kind) {
    case value::type::string: {
      std::string r;
      size_t at = 0;
      for (;;) {
        auto b = v.s.find("@{", at);
        auto e = b == std::string::npos ? std::string::npos : v.s.find('}', b + 2);
        if (e == std::string::npos) {
          r.append(v.s, at, std::string::npos);
          break;
        }
        r.append(v.s, at, b - at);
        r += output_of(v.s.substr(b + 2, e - b - 2));
        at = e + 1;
      }
      out.s = std::move(r);
      break;
    }
    case value::type::list:
      for (auto& x : out.items)
        x = substitute_outputs(x, output_of);
      break;
    case value::type::object:
      for (auto& f : out.fields)
        f.second = substitute_outputs(f.second, output_of);
      break;
    default:
      break;
  }
  return out;
}

} // namespace ferry
