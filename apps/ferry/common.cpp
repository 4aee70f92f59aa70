// What the subcommands share: the checks of their numeric options and the exit code of an
// error from the embedded engine (commands.hpp).
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>

#include "apps/ferry/commands.hpp"
#include "common/errc.hpp"

namespace ferry::cli {

CLI::Validator finite_number(bool positive) {
  return CLI::Validator(
    [positive](std::string& s) -> std::string {
      double v = 0;
      if (!CLI::detail::lexical_cast(s, v))
        return "expected a number, got \"" + s + "\"";
      if (!std::isfinite(v) || v < 0 || (positive && v == 0) || v > 1e9)
        return std::string{positive ? "must be a number greater than 0"
                                    : "must be a number, 0 or more"}
               + " and at most 1e9, got " + s;
      return {};
    },
    positive ? "POSITIVE" : "NONNEGATIVE");
}

CLI::Validator whole_number(uint64_t min, uint64_t max) {
  return CLI::Validator(
    [min, max](std::string& s) -> std::string {
      uint64_t v = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
      bool digits = !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
      if (digits && ec == std::errc{} && end == s.data() + s.size() && v >= min && v <= max) {
        s = std::to_string(v); // "010" is 10: CLI11 would read a leading 0 as octal
        return {};
      }
      return "must be a whole number from " + std::to_string(min) + " to " + std::to_string(max)
             + ", written in decimal digits, got \"" + s + "\"";
    },
    "");
}

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
