// Reading a whole input file (a definition, template, batch, fleet, configuration, PEM or
// journal export) with an error that says why it cannot be read. Pure; any thread.
#pragma once

#include <string>

#include <caf/expected.hpp>

namespace ferry {

/// The whole content of the file at `path`. A regular file is read at once into a string of
/// its size; anything else that is not a directory (a pipe, /dev/stdin) until its end.
/// Errors carry only the reason, for the caller to prefix with what the file is:
/// not_found "no such file" (also when a directory in the path does not exist);
/// invalid_argument "is a directory", "permission denied", or the system's reason.
caf::expected<std::string> read_file(const std::string& path);

/// Whether the file at `path` can be opened for reading and is not a directory, for a reader
/// that streams it: none when it can, else the error read_file would give.
caf::error check_readable(const std::string& path);

} // namespace ferry
