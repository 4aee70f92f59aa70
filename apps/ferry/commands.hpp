// The ferry CLI's subcommands: each registers itself on the CLI11 app and runs when chosen.
// Exit codes (README.md): 0 success; 1 the run rolled back; 2 the run failed and waits for
// an operator; 3 the run was aborted; 4 bad input (usage, definition, file, unknown run);
// 5 the engine or journal failed; 6 timed out; 7 denied (recommend: no zone admits the VM);
// 8 not allowed (no token, unknown token, or a role without the right); 9 ferryd cannot be
// reached.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>
#include <caf/expected.hpp>

#include "common/cli_numbers.hpp"
#include "templates/template.hpp"

namespace ferry::cli {

enum exit_code : int {
  exit_ok = 0,
  exit_rolled_back = 1,
  exit_failed = 2,
  exit_aborted = 3,
  exit_bad_input = 4,
  exit_engine_error = 5,
  exit_timeout = 6,
  exit_denied = 7,
  exit_not_allowed = 8,
  exit_unavailable = 9,
};

/// Registers `ferry run`; sets `action` to run it when chosen.
void add_run(CLI::App& app, std::function<int()>& action);

/// Registers `ferry fleet`, `ferry recommend` and `ferry options`.
void add_fleet(CLI::App& app, std::function<int()>& action);

/// The exit code of an error from the embedded engine or the journal: 4 for bad input
/// (`invalid_argument`, `not_found`, `already_exists`, `failed_precondition`, `out_of_range`),
/// 6 for a deadline, 5 otherwise.
int embedded_exit_of(const caf::error& err);

/// The journal directory (--db) of an embedded command, which opening the engine creates.
/// Unless keep() is called (once something was submitted to it), the journal is removed again
/// when the guard goes, if the directory did not exist or was empty before: input refused
/// before anything started leaves no journal behind. A directory that held anything is never
/// touched. Declare it before the engine, so that the engine is closed first.
class new_journal_guard {
public:
  explicit new_journal_guard(std::string db);
  ~new_journal_guard();
  new_journal_guard(const new_journal_guard&) = delete;
  new_journal_guard& operator=(const new_journal_guard&) = delete;

  void keep() { keep_ = true; }

  /// The directory did not exist, or was empty: no journal was there before.
  bool fresh() const { return absent_ || empty_; }

private:
  std::string db_;
  bool absent_ = false; // the directory did not exist
  bool empty_ = false;  // it existed, empty
  bool keep_ = false;
};

/// A template by file path, or by name among the files of `dir` (the built-in ones by
/// default).
caf::expected<template_ptr> find_template(const std::string& what, const std::string& dir,
                                          const kind_catalog& kinds);

/// Registers `ferry batch` and `ferry drain`.
void add_batch(CLI::App& app, std::function<int()>& action);

/// Registers `ferry journal list|dump|verify|replay|export|import`.
void add_journal(CLI::App& app, std::function<int()>& action);

/// Registers `ferry demo`.
void add_demo(CLI::App& app, std::function<int()>& action);

/// Registers `ferry templates list|show|validate|render|put|delete`.
void add_templates(CLI::App& app, std::function<int()>& action);

/// Registers the commands that talk to ferryd: `ferry submit`, `list`, `show`, `cancel`,
/// `abort`, `pause`, `resume`, `approve`, `retry` (remote.cpp), and `ferry watch` (watch.cpp).
void add_remote(CLI::App& app, std::function<int()>& action);
void add_watch(CLI::App& app, std::function<int()>& action);

} // namespace ferry::cli
