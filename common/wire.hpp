// The protobuf wire format, written by hand for the hot encoders (the journal's events and
// checkpoints, a definition's canonical encoding): field by field in field-number order and
// skipping proto3 defaults, exactly as the generated code serializes (their tests compare the
// two byte for byte), with no message objects to build and free. Integers of every width,
// enums and bools are varints; a negative int64 is its two's complement, as protobuf writes
// it. Header only; any thread.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/utf8.hpp"

namespace ferry {

inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

/// Appends a length-delimited field: the wire form of a bytes, string or message field.
inline void put_field(std::string& out, uint32_t number, std::string_view bytes) {
  put_varint(out, (uint64_t{number} << 3) | 2);
  put_varint(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

/// Appends a length-delimited field whose content `write()` appends to `out` in place, no
/// temporary string: the length goes before it once it is known.
template <class Write>
void put_nested(std::string& out, uint32_t number, Write write) {
  put_varint(out, (uint64_t{number} << 3) | 2);
  auto at = out.size();
  out.append(5, '\0'); // room for the longest length a string can have on the wire
  write();
  auto len = out.size() - at - 5;
  char buf[5];
  size_t n = 0;
  for (auto v = len; ; v >>= 7) {
    buf[n++] = static_cast<char>(v < 0x80 ? v : (v & 0x7f) | 0x80);
    if (v < 0x80)
      break;
  }
  std::memcpy(&out[at], buf, n);
  out.erase(at + n, 5 - n);
}

/// Appends a varint field even when it is 0 (a field with explicit presence, a oneof member).
inline void put_varint_field(std::string& out, uint32_t number, uint64_t v) {
  put_varint(out, uint64_t{number} << 3);
  put_varint(out, v);
}

/// Appends a double field (fixed64, little endian), whatever its value.
inline void put_double_field(std::string& out, uint32_t number, double v) {
  put_varint(out, (uint64_t{number} << 3) | 1);
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

/// Appends proto3 fields with implicit presence: nothing for a default value.
struct wire {
  std::string& out;

  void varint(uint32_t number, uint64_t v) {
    if (v != 0)
      put_varint_field(out, number, v);
  }
  void int64(uint32_t number, int64_t v) { varint(number, static_cast<uint64_t>(v)); }
  void boolean(uint32_t number, bool v) { varint(number, v ? 1 : 0); }
  void bytes(uint32_t number, std::string_view v) {
    if (!v.empty())
      put_field(out, number, v);
  }
  /// A string field: protobuf refuses to parse one that is not UTF-8, so text from outside
  /// (a task's output or error, an operator's name or reason) that is not is written with
  /// its stray bytes replaced by U+FFFD: a record the journal cannot read back would stop
  /// the run's recovery.
  void text(uint32_t number, std::string_view v) {
    if (valid_utf8(v))
      bytes(number, v);
    else
      bytes(number, to_valid_utf8(v));
  }
};

} // namespace ferry
