// Reading and writing protobuf messages as text format or JSON, for the codecs that load and
// print human-written files (workflow definitions, fleets, migration templates). Parse errors
// come back as "line L column C: message" (1-based) for text format, or the JSON parser's
// message. Included only by codecs, like the generated headers.
#pragma once

#include <string>
#include <string_view>

#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

namespace ferry {

/// Parses `source` into `m` (text format, or JSON when `json`); empty on success, else the
/// error. A key given twice in one JSON object, or twice in one map of a text-format message,
/// is an error too (each parser keeps the last one silently): "line 4 column 3: "args": key
/// "a" given more than once", "items[1].vm: given more than once".
std::string parse_text_or_json(std::string_view source, google::protobuf::Message& m, bool json);

/// `m` in text format, or as indented JSON with the proto's field names.
inline std::string print_text_or_json(const google::protobuf::Message& m, bool json) {
  std::string out;
  if (json) {
    google::protobuf::util::JsonPrintOptions opts;
    opts.add_whitespace = true;
    opts.preserve_proto_field_names = true;
    (void) google::protobuf::util::MessageToJsonString(m, &out, opts);
  } else {
    google::protobuf::TextFormat::PrintToString(m, &out);
  }
  return out;
}

} // namespace ferry
