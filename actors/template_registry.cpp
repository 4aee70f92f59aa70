#include "actors/template_registry.hpp"

#include "common/errc.hpp"
#include "persistence/store.hpp"

namespace ferry {

caf::error template_registry::load_builtin(const std::vector<std::string>& dirs,
                                           const kind_catalog& kinds) {
  for (auto& dir : dirs) {
    auto files = template_files(dir);
    if (!files)
      return files.error();
    for (auto& f : *files) {
      auto t = load_template_file(f, kinds);
      if (!t)
        return t.error();
      std::lock_guard<std::mutex> guard{mtx_};
      if (templates_.count((*t)->name))
        return make_error(errc::already_exists, f + ": template \"" + (*t)->name
                                                  + "\" is defined twice among the built-in ones");
      templates_[(*t)->name] = entry{*t, true};
    }
  }
  return caf::none;
}

caf::expected<std::vector<std::string>> template_registry::load_stored(const store& st,
                                                                       const kind_catalog& kinds) {
  std::vector<std::string> skipped;
  auto err = st.for_each_template([&](std::string_view name, std::string_view encoded) {
    auto t = load_template(encoded, kinds, template_format::binary);
    std::lock_guard<std::mutex> guard{mtx_};
    if (!t)
      skipped.push_back(std::string{name} + ": " + message_of(t.error()));
    else if (templates_.count((*t)->name) && templates_[(*t)->name].builtin)
      skipped.push_back(std::string{name} + ": a built-in template has that name");
    else
      templates_[(*t)->name] = entry{*t, false};
    return true;
  });
  if (err)
    return err;
  return skipped;
}

caf::expected<template_ptr> template_registry::put(std::string_view source,
                                                   const kind_catalog& kinds,
                                                   const writer& write) {
  auto t = load_template(source, kinds);
  if (!t)
    return t.error();
  auto& name = (*t)->name;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto i = templates_.find(name); i != templates_.end()) {
      auto& old = *i->second.t;
      if (i->second.builtin)
        return make_error(errc::failed_precondition, "template \"" + name
                                                       + "\" is built in: it cannot be replaced");
      if (old.version == (*t)->version && old.encoded == (*t)->encoded)
        return i->second.t;
      if ((*t)->version <= old.version)
        return make_error(errc::failed_precondition,
                          "template \"" + name + "\": field \"version\": "
                            + std::to_string((*t)->version) + " does not replace version "
                            + std::to_string(old.version) + "; give a higher version");
    }
  }
  if (auto err = write(name, (*t)->encoded))
    return err;
  std::lock_guard<std::mutex> guard{mtx_};
  templates_[name] = entry{*t, false};
  return *t;
}

caf::expected<template_ptr> template_registry::get(const std::string& name) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = templates_.find(name);
  if (i == templates_.end())
    return make_error(errc::not_found, "template \"" + name + "\" is not registered");
  return i->second.t;
}

std::vector<template_ptr> template_registry::list() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<template_ptr> out;
  for (auto& [n, e] : templates_)
    out.push_back(e.t);
  return out;
}

caf::error template_registry::remove(const std::string& name, const writer& write) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = templates_.find(name);
    if (i == templates_.end())
      return make_error(errc::not_found, "template \"" + name + "\" is not registered");
    if (i->second.builtin)
      return make_error(errc::failed_precondition,
                        "template \"" + name + "\" is built in: it cannot be deleted");
  }
  if (auto err = write(name, {}))
    return err;
  std::lock_guard<std::mutex> guard{mtx_};
  templates_.erase(name);
  return caf::none;
}

bool template_registry::is_builtin(const std::string& name) const {
  std::lock_guard<std::mutex> g{mtx_};
  auto i = templates_.find(name);
  return i != templates_.end() && i->second.builtin;
}

} // namespace ferry
