// Compares two journal exports (JSON lines of ferry.v1.ExportedEvent) as messages: protobuf
// prints the fields of a definition's parameters (google.protobuf.Struct, a map) in no fixed
// order, so equal exports need not be equal text.
#pragma once

#include <sstream>
#include <string>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include "ferry/v1/journal.pb.h"

namespace ferry::test {

/// Empty when `a` and `b` hold the same events in the same order, else the first difference.
inline std::string export_difference(const std::string& a, const std::string& b) {
  std::istringstream x{a};
  std::istringstream y{b};
  std::string lx;
  std::string ly;
  for (size_t line = 1;; ++line) {
    bool more_x = static_cast<bool>(std::getline(x, lx));
    bool more_y = static_cast<bool>(std::getline(y, ly));
    if (!more_x && !more_y)
      return {};
    if (more_x != more_y)
      return "line " + std::to_string(line) + ": only in the " + (more_x ? "first" : "second");
    v1::ExportedEvent ex;
    v1::ExportedEvent ey;
    if (!google::protobuf::util::JsonStringToMessage(lx, &ex).ok()
        || !google::protobuf::util::JsonStringToMessage(ly, &ey).ok())
      return "line " + std::to_string(line) + ": not an exported event";
    std::string diff;
    google::protobuf::util::MessageDifferencer d;
    d.ReportDifferencesToString(&diff);
    if (!d.Compare(ex, ey))
      return "line " + std::to_string(line) + ": " + diff;
  }
}

} // namespace ferry::test
