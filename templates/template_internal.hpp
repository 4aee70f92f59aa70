// Shared by the template codec and the renderer (templates/*.cpp only): rendering from the
// MigrationTemplate message with arguments already checked and converted.
#pragma once

#include <map>
#include <string>

#include <google/protobuf/struct.pb.h>

#include "ferry/v1/template.pb.h"
#include "workflows/definition.hpp"

namespace ferry {

/// Every parameter has a value in `args` (given, default, or empty of its type).
caf::expected<definition_ptr>
render_proto(const v1::MigrationTemplate& t,
             const std::map<std::string, google::protobuf::Value>& args,
             const kind_catalog& kinds);

} // namespace ferry
