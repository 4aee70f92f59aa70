// ferry::template_registry — the migration templates an engine knows: the built-in ones
// (read from directories when the engine opens; they cannot be replaced or deleted) and
// those operators keep in the journal (column family `templates`). Every template is
// validated against the engine's task kinds before it is kept. A template is replaced only
// by a higher version of itself (the same version with the same content again is a
// success). Thread-safe: the engine's callers use it from any thread; writes go through
// `write` (the journal actor) before the registry changes.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "templates/template.hpp"

namespace ferry {

class store;

class template_registry {
public:
  /// Keeps (name, encoding) durably; an empty encoding removes the name.
  using writer = std::function<caf::error(const std::string&, const std::string&)>;

  /// Loads every *.textproto, *.txtpb and *.json of `dirs` as built-in templates. An invalid
  /// file is an error naming it.
  caf::error load_builtin(const std::vector<std::string>& dirs, const kind_catalog& kinds);

  /// Loads the templates the journal keeps. One that no longer validates (a kind is gone) is
  /// skipped and named in the returned list; a built-in template of the same name wins.
  caf::expected<std::vector<std::string>> load_stored(const store& st,
                                                      const kind_catalog& kinds);

  /// Validates `source` (text format or JSON) and keeps it.
  caf::expected<template_ptr> put(std::string_view source, const kind_catalog& kinds,
                                  const writer& write);
  caf::expected<template_ptr> get(const std::string& name) const;
  /// Every template, by name.
  std::vector<template_ptr> list() const;
  /// Whether `name` is a built-in template.
  bool is_builtin(const std::string& name) const;
  caf::error remove(const std::string& name, const writer& write);

private:
  struct entry {
    template_ptr t;
    bool builtin = false;
  };
  mutable std::mutex mtx_;
  std::map<std::string, entry> templates_;
};

} // namespace ferry
