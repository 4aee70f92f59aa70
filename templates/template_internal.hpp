// Shared by the template codec and the renderer (templates/*.cpp only): a template compiled
// to the engine's own types once, when it is loaded, and rendered from that form with
// arguments already checked and converted. Immutable once built; any thread.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "ferry/v1/template.pb.h"
#include "templates/template.hpp"
#include "workflows/definition.hpp"

namespace ferry {

/// One task template: the task as written (placeholders in its parameters, description and
/// compensation; dependencies by template task id) and what decides its instances.
struct template_task {
  int phase = 0;
  /// A BOOLEAN (or other) parameter: rendered only when it is truthy. Empty: always.
  std::string when;
  /// A STRING_LIST parameter: one instance per element ("id-0", "id-1"...). Empty: one.
  std::string for_each;
  task_def task;
  /// `task` without its id, dependencies and description, which every rendering writes anew:
  /// what a rendered task is copied from.
  task_def skeleton;
  /// `template "T": phase "P" task "ID"`: what its errors begin with.
  std::string where;
};

/// A template's definition part, decoded once.
struct template_body {
  std::string name;
  /// `template "T"`: what its errors begin with.
  std::string head;
  uint32_t version = 0;
  retry_spec default_retry;
  uint64_t default_timeout_ms = 0;
  uint32_t retry_budget = 0;
  /// As written (placeholders substituted at render).
  std::map<std::string, std::string> labels;
  /// Every task template, phase by phase in the template's order.
  std::vector<template_task> tasks;
  /// Index in `tasks` by template task id.
  std::map<std::string, size_t> by_id;
};

/// Decodes the definition part of a template. Errors: data_loss when it cannot be decoded.
caf::expected<template_body> compile_template(const v1::MigrationTemplate& t);

/// Every parameter of the template has a value in `args` (given, default, or empty of its
/// type).
caf::expected<definition_ptr> render_body(const template_body& t,
                                          const template_args& args,
                                          const kind_catalog& kinds);

} // namespace ferry
