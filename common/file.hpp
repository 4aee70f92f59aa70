// Reading a whole input file (a definition, template, batch, fleet, configuration, PEM or
// journal export), opening an output file, and making a written file durable, each with an
// error that says why it cannot. Any thread.
#pragma once

#include <fstream>
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

/// Opens `out` to write the file at `path`: appended to with `append`, else emptied; created
/// when missing. Errors carry only the reason, as read_file's: "is a directory", "its
/// directory does not exist", "permission denied", or the system's reason.
caf::error open_for_writing(std::ofstream& out, const std::string& path, bool append);

/// Makes what was written to the file at `path` survive a crash: syncs its data and, for a
/// regular file, the directory that holds its name (where a new file's name lives). A file
/// that is not a regular one (a pipe, /dev/null) has nothing to make durable: none. Errors
/// carry only the reason, as read_file's; unavailable "cannot be synced: ..." when the system
/// refuses the sync.
caf::error sync_file(const std::string& path);

} // namespace ferry
