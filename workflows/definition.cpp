#include "workflows/definition.hpp"

namespace ferry {

int definition::index_of(const std::string& id) const {
  for (size_t i = 0; i < tasks.size(); ++i)
    if (tasks[i].id == id)
      return static_cast<int>(i);
  return -1;
}

const char* to_string(param_type x) noexcept {
  switch (x) {
    case param_type::any: return "any";
    case param_type::boolean: return "bool";
    case param_type::number: return "number";
    case param_type::integer: return "integer";
    case param_type::string: return "string";
    case param_type::list: return "list";
    case param_type::object: return "object";
  }
  return "?";
}

void kind_catalog::add(kind_spec spec) {
  auto name = spec.name;
  kinds_[name] = std::move(spec);
}

const kind_spec* kind_catalog::find(const std::string& name) const {
  auto i = kinds_.find(name);
  return i == kinds_.end() ? nullptr : &i->second;
}

std::vector<std::string> kind_catalog::names() const {
  std::vector<std::string> result;
  for (auto& [k, v] : kinds_)
    result.push_back(k);
  return result;
}

} // namespace ferry
