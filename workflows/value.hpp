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

/// "null", "bool", "number", "string", "list", "object".
const char* to_string(value::type x) noexcept;

/// Compact JSON, for logs and the CLI.
std::string to_json(const value& x);

} // namespace ferry
