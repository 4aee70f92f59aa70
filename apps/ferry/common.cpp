// What the subcommands share: the checks of their numeric options and the exit code of an
// error from the embedded engine (commands.hpp).
#include <cmath>

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

} // namespace ferry::cli
