// ferry — the command-line interface. `ferry run FILE` runs a workflow definition on the
// embedded engine; `ferry fleet FILE` and `ferry recommend FILE VM` show a fleet and rank
// zones for a VM; `ferry templates` lists, shows, validates and renders migration templates;
// `ferry batch FILE` and `ferry drain` run batches of migrations under limits; `ferry journal`
// lists, dumps, verifies, replays, exports and imports a journal;
// `ferry submit|list|show|watch|cancel|abort|pause|resume|approve|retry` work on ferryd's runs,
// and `fleet`, `recommend`, `options` and `templates` ask ferryd when given no local file.
#include <cstdio>
#include <exception>

#include "apps/ferry/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"ferry: moves running virtual machines, durably"};
  app.require_subcommand(1);
  std::function<int()> action;
  ferry::cli::add_run(app, action);
  ferry::cli::add_fleet(app, action);
  ferry::cli::add_templates(app, action);
  ferry::cli::add_batch(app, action);
  ferry::cli::add_journal(app, action);
  ferry::cli::add_demo(app, action);
  ferry::cli::add_remote(app, action);
  ferry::cli::add_watch(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    auto rc = app.exit(e);
    return rc == 0 ? 0 : ferry::cli::exit_bad_input;
  }
  if (!action)
    return ferry::cli::exit_bad_input;
  // The last resort: an exception no command expected ends with its message and exit 5, not
  // with std::terminate's abort (exit 134).
  try {
    return action();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ferry: internal error: %s\n", e.what());
    return ferry::cli::exit_engine_error;
  }
}
