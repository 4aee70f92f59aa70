#include "common/cli_numbers.hpp"

#include <charconv>
#include <cmath>
#include <string>

namespace ferry {

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

} // namespace ferry
