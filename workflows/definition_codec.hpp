// Reading and writing workflow definitions: protobuf text format or JSON in, validated
// ferry::definition out, and the canonical protobuf encoding (whose SHA-256 names the
// definition in the journal). The only file of workflows/ that sees generated protobuf code.
// Pure, but for load_definition_file, which reads its file; any thread.
#pragma once

#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "workflows/definition.hpp"

namespace ferry {

enum class definition_format { automatic, text, json, binary };

/// Parses `source` (JSON when it starts with '{', else text format, unless told; binary: the
/// protobuf wire encoding, as the template renderer produces it), validates
/// it against `kinds` and encodes it. Errors are invalid_argument and name the line and
/// column, or the task and field.
caf::expected<definition_ptr> load_definition(std::string_view source,
                                              const kind_catalog& kinds,
                                              definition_format format
                                              = definition_format::automatic);

/// Reads a file and calls load_definition (format from the extension: .json, else text).
caf::expected<definition_ptr> load_definition_file(const std::string& path,
                                                   const kind_catalog& kinds);

/// Decodes a canonical encoding read back from a journal (kinds are not checked again).
caf::expected<definition_ptr> decode_definition(std::string_view encoded);

/// Decodes an encoding as written: no linking, no validation, no `encoded` or `digest`
/// (the task skeletons of a migration template, whose parameters still hold placeholders).
caf::expected<definition> decode_definition_as_written(std::string_view encoded);

/// Fills in `encoded` and `digest` of a definition built in code, validating it first.
caf::expected<definition_ptr> finish_definition(definition def, const kind_catalog& kinds);

/// The canonical encoding of a definition's written fields (what `encoded` holds once it is
/// finished): the deterministic protobuf serialization of its WorkflowDefinition, written
/// directly.
std::string encode_definition(const definition& def);

/// The same bytes through the generated protobuf code: what encode_definition() is tested
/// against.
std::string encode_definition_with_protobuf(const definition& def);

/// The definition in protobuf text format, or JSON.
std::string render_definition(const definition& def, definition_format format);

} // namespace ferry
