// What the subcommands share: the exit code of an error from the embedded engine, and the
// guard that removes a journal refused input created (commands.hpp).
#include <filesystem>

#include "apps/ferry/commands.hpp"
#include "common/errc.hpp"

namespace ferry::cli {

int embedded_exit_of(const caf::error& err) {
  switch (code_of(err)) {
    case errc::invalid_argument:
    case errc::not_found:
    case errc::already_exists:
    case errc::failed_precondition:
    case errc::out_of_range: return exit_bad_input;
    case errc::deadline_exceeded: return exit_timeout;
    default: return exit_engine_error;
  }
}

new_journal_guard::new_journal_guard(std::string db) : db_(std::move(db)) {
  if (db_.empty())
    return;
  std::error_code ec;
  auto st = std::filesystem::status(db_, ec);
  if (st.type() == std::filesystem::file_type::not_found)
    absent_ = true;
  else if (!ec && std::filesystem::is_directory(st) && std::filesystem::is_empty(db_, ec) && !ec)
    empty_ = true;
}

new_journal_guard::~new_journal_guard() {
  if (keep_ || db_.empty())
    return;
  std::error_code ec;
  if (absent_) {
    std::filesystem::remove_all(db_, ec);
  } else if (empty_) {
    for (auto& e : std::filesystem::directory_iterator{db_, ec})
      std::filesystem::remove_all(e.path(), ec);
  }
}

} // namespace ferry::cli
