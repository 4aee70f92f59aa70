// Checks of numeric command-line options, shared by `ferry` and the benchmarks. CLI11 reads
// integers with strtoull in base 0 ("-1" is 2^64-1, "0x10" is 16, "010" is 8) and its own
// PositiveNumber and NonNegativeNumber let nan and inf through.
#pragma once

#include <cstdint>

#include <CLI/CLI.hpp>

namespace ferry {

/// An option's number: greater than 0 (`positive`) or 0 or more, and at most 1e9 (seconds:
/// 31 years; larger ones overflow the clocks).
CLI::Validator finite_number(bool positive);

/// An option's whole number, written in decimal digits only, between `min` and `max`. Give it
/// with Option::transform, not check: it writes the number back without its leading zeros,
/// and check would drop that ("010" would then be 8).
CLI::Validator whole_number(uint64_t min = 0, uint64_t max = UINT64_MAX);

} // namespace ferry
