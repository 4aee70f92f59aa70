// Loading a fleet description (ferry.v1.Fleet, proto/ferry/v1/fleet.proto) from protobuf text
// format, JSON or binary, validating it, and building the model. Validation names every
// problem it finds (up to a limit), each with the entity and the field: an unknown host, a
// duplicate name, an over-committed host, a volume on a missing partition... Nothing is
// loaded when there is any. The only file of fleet/ that sees generated protobuf code besides
// state_codec.cpp. Pure, but for load_fleet_file, which reads its file; any thread.
#pragma once

#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "fleet/model.hpp"

namespace ferry::fleet {

enum class fleet_format { automatic, text, json, binary };

/// Parses and validates a fleet. `automatic`: JSON when the text starts with '{', else text
/// format. Errors are invalid_argument; the message lists the problems, one per line.
caf::expected<model_ptr> load_fleet(std::string_view source,
                                    fleet_format format = fleet_format::automatic);

/// Reads a file and calls load_fleet (format from the extension: .json, .pb/.binpb binary,
/// else text format). Errors name the path.
caf::expected<model_ptr> load_fleet_file(const std::string& path);

/// The model as a ferry.v1.Fleet in text format or JSON (binary: the wire encoding).
std::string render_fleet(const model& m, fleet_format format);

} // namespace ferry::fleet
