// ferry::migration_template — a migration template (proto/ferry/v1/template.proto): typed
// parameters and the phases pre_reconfigure, hot_unplug, migrate, in_migration_reconfigure,
// hot_plug, post_reconfigure and cleanup, each a list of task templates. render() turns a
// template and the parameters' values into a validated workflow definition, the one a run is
// pinned to and its journal records. Pure (but for load_template_file, which reads its
// file); any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "fleet/model.hpp"
#include "workflows/definition.hpp"
#include "workflows/value.hpp"

namespace ferry {

enum class template_param_type : uint8_t {
  string, integer, number, boolean, vm, host, zone, vm_type, partition, string_list
};

const char* to_string(template_param_type t) noexcept;

struct template_param {
  std::string name;
  template_param_type type = template_param_type::string;
  bool required = false;
  std::optional<value> default_value;
  std::string description;
  std::vector<std::string> choices;
  /// Derived from the fleet when not given: the VM parameter and the fact ("vm", "host").
  std::string from_vm_param;
  std::string from_vm_fact;
};

/// The phases, in the order they run.
extern const char* const template_phases[7];

struct template_body;

struct migration_template {
  std::string name;
  uint32_t version = 0;
  std::string description;
  std::vector<template_param> params;
  /// Task templates per phase (same order as template_phases).
  size_t tasks_per_phase[7] = {};
  /// The MigrationTemplate's protobuf encoding (the journal's and the API's form).
  std::string encoded;
  /// Its phases and tasks decoded once, in the form render() reads.
  std::shared_ptr<const template_body> body;

  const template_param* find(const std::string& name) const;
};

using template_ptr = std::shared_ptr<const migration_template>;

/// The parameters' values, by name (found by string_view too).
using template_args = std::map<std::string, value, std::less<>>;

/// binary: the encoding kept in `migration_template::encoded` (the journal's templates).
enum class template_format { automatic, text, json, binary };

/// Parses a template (JSON when it starts with '{', else text format, unless told) and
/// validates it: names, parameter types and defaults, placeholders, `when` and `for_each`,
/// and a render with sample values for every parameter, checked against `kinds` (unknown
/// kind, missing task parameter, cycle...). Errors are invalid_argument naming the template,
/// the phase and task, or the parameter, and the field.
caf::expected<template_ptr> load_template(std::string_view source, const kind_catalog& kinds,
                                          template_format format = template_format::automatic);

/// The template files of a directory (*.textproto, *.txtpb, *.json), sorted. Errors name the
/// directory.
caf::expected<std::vector<std::string>> template_files(const std::string& dir);

/// Reads a file and calls load_template (JSON for .json). Errors name the path.
caf::expected<template_ptr> load_template_file(const std::string& path,
                                               const kind_catalog& kinds);

/// Renders the definition: checks every argument against its parameter (type, choices,
/// required; unknown arguments refused; with `fleet`, VM, HOST, ZONE, VM_TYPE and PARTITION
/// values must exist there), substitutes placeholders, expands `for_each`, drops tasks whose
/// `when` is false, links each phase to the previous one, and validates the result against
/// `kinds`. The definition is named after the template and labelled with it, its version and
/// every argument.
/// Where a VM runs now and its type (a fleet's directory knows; the model only knows where it
/// started). Returns false when it does not know the VM.
using vm_locator = std::function<bool(const std::string& vm, std::string& host,
                                      std::string& type)>;

/// `locate`: consulted for derived parameters (from_vm host, zone and type) before the model.
caf::expected<definition_ptr> render(const migration_template& t, const template_args& args,
                                     const kind_catalog& kinds,
                                     const fleet::model* fleet = nullptr,
                                     const vm_locator& locate = {});

/// Parses "name=value" arguments by the parameters' types (lists: comma-separated).
caf::expected<template_args> parse_template_args(const migration_template& t,
                                                 const std::vector<std::string>& args);

/// The template in protobuf text format, or JSON.
std::string render_template_source(const migration_template& t, template_format format);

} // namespace ferry
