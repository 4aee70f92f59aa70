#include "workflows/value.hpp"

#include <cmath>
#include <cstdio>

namespace ferry {

const value* find_param(const params& ps, const std::string& key) {
  for (auto& [k, v] : ps)
    if (k == key)
      return &v;
  return nullptr;
}

const value* value::find(const std::string& key) const {
  return kind == type::object ? find_param(fields, key) : nullptr;
}

bool value::operator==(const value& other) const {
  if (kind != other.kind)
    return false;
  switch (kind) {
    case type::null: return true;
    case type::boolean: return b == other.b;
    case type::number: return n == other.n;
    case type::string: return s == other.s;
    case type::list: return items == other.items;
    case type::object: return fields == other.fields;
  }
  return false;
}

const char* to_string(value::type x) noexcept {
  switch (x) {
    case value::type::null: return "null";
    case value::type::boolean: return "bool";
    case value::type::number: return "number";
    case value::type::string: return "string";
    case value::type::list: return "list";
    case value::type::object: return "object";
  }
  return "?";
}

namespace {

void append_quoted(std::string& out, const std::string& s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void append_json(std::string& out, const value& x) {
  switch (x.kind) {
    case value::type::null: out += "null"; break;
    case value::type::boolean: out += x.b ? "true" : "false"; break;
    case value::type::number: {
      char buf[32];
      if (std::floor(x.n) == x.n && std::fabs(x.n) < 1e15)
        std::snprintf(buf, sizeof buf, "%.0f", x.n);
      else
        std::snprintf(buf, sizeof buf, "%.17g", x.n);
      out += buf;
      break;
    }
    case value::type::string: append_quoted(out, x.s); break;
    case value::type::list:
      out.push_back('[');
      for (size_t i = 0; i < x.items.size(); ++i) {
        if (i > 0)
          out.push_back(',');
        append_json(out, x.items[i]);
      }
      out.push_back(']');
      break;
    case value::type::object:
      out.push_back('{');
      for (size_t i = 0; i < x.fields.size(); ++i) {
        if (i > 0)
          out.push_back(',');
        append_quoted(out, x.fields[i].first);
        out.push_back(':');
        append_json(out, x.fields[i].second);
      }
      out.push_back('}');
      break;
  }
}

} // namespace

std::string to_json(const value& x) {
  std::string out;
  append_json(out, x);
  return out;
}

std::vector<std::string> output_refs(const value& v) {
  std::vector<std::string> out;
  switch (v.kind) {
    case value::type::string:
      for (size_t at = 0;;) {
        auto b = v.s.find("@{", at);
        if (b == std::string::npos)
          break;
        auto e = v.s.find('}', b + 2);
        if (e == std::string::npos)
          break;
        out.push_back(v.s.substr(b + 2, e - b - 2));
        at = e + 1;
      }
      break;
    case value::type::list:
      for (auto& x : v.items)
        for (auto& r : output_refs(x))
          out.push_back(std::move(r));
      break;
    case value::type::object:
      for (auto& f : v.fields)
        for (auto& r : output_refs(f.second))
          out.push_back(std::move(r));
      break;
    default:
      break;
  }
  return out;
}

} // namespace ferry
