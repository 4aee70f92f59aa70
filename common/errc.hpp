// ferry::errc — the one error enum of Ferry, mirroring gRPC's canonical codes, and the
// helpers that turn it into caf::error values carrying a message that names the thing and the
// field. Vocabulary only; usable from every thread.
#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>

namespace ferry {

enum class errc : uint8_t {
  ok = 0,
  cancelled = 1,
  unknown = 2,
  invalid_argument = 3,
  deadline_exceeded = 4,
  not_found = 5,
  already_exists = 6,
  permission_denied = 7,
  resource_exhausted = 8,
  /// The system is not in a state for this; do not retry until it has been fixed.
  failed_precondition = 9,
  aborted = 10,
  out_of_range = 11,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
  data_loss = 15,
  unauthenticated = 16,
};

/// Category of Ferry's errors inside caf::error.
using errc_category = caf::atom_constant<caf::atom("ferry")>;

/// snake_case name of a code ("invalid_argument").
const char* to_string(errc x) noexcept;

/// Parses a name produced by to_string; errc::unknown for anything else.
errc errc_from_string(const std::string& name) noexcept;

/// A caf::error of category ferry with `message` as its context.
caf::error make_error(errc code, std::string message);

/// The code of `err` when it is a Ferry error; errc::unknown for other categories, errc::ok
/// for no error.
errc code_of(const caf::error& err) noexcept;

/// The message given to make_error, or CAF's rendering of foreign errors.
std::string message_of(const caf::error& err);

/// "code: message", for logs and the CLI.
std::string describe(const caf::error& err);

} // namespace ferry
