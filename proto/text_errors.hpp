// The first error of a protobuf text-format parse, as "line L column C: message" (1-based),
// for the codecs that load text files (workflow definitions, fleets). Included only by
// codecs, like the generated headers.
#pragma once

#include <string>

#include <google/protobuf/io/tokenizer.h>

namespace ferry {

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

} // namespace ferry
