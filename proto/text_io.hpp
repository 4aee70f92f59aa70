// Reading and writing protobuf messages as text format or JSON, for the codecs that load and
// print human-written files (workflow definitions, fleets, migration templates). Parse errors
// come back as "line L column C: message" (1-based) for text format, or the JSON parser's
// message. Included only by codecs, like the generated headers.
#pragma once

#include <string>
#include <string_view>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

namespace ferry {

/// Keeps the first error of a text-format parse.
class text_errors : public google::protobuf::io::ErrorCollector {
public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (first_.empty())
      first_ = "line " + std::to_string(line + 1) + " column " + std::to_string(column + 1)
               + ": " + message;
  }
  const std::string& first() const { return first_; }

private:
  std::string first_;
};

/// Parses `source` into `m` (in place for text format); empty on success, else the error.
inline std::string parse_text_or_json(std::string_view source, google::protobuf::Message& m,
                                      bool json) {
  if (json) {
    auto st = google::protobuf::util::JsonStringToMessage(std::string{source}, &m);
    return st.ok() ? std::string{} : std::string{st.message()};
  }
  google::protobuf::TextFormat::Parser parser;
  text_errors errors;
  parser.RecordErrorsTo(&errors);
  google::protobuf::io::ArrayInputStream input{source.data(), static_cast<int>(source.size())};
  if (parser.Parse(&input, &m))
    return {};
  return errors.first().empty() ? std::string{"unreadable"} : errors.first();
}

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
