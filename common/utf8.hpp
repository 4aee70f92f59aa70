// UTF-8 checks for text that enters the engine from outside (a task's output or error, an
// operator's name or reason): protobuf refuses to parse a string field that is not UTF-8, so
// such text is made valid before it is journaled or served. Pure; any thread.
#pragma once

#include <string>
#include <string_view>

namespace ferry {

/// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view s) noexcept;

/// `s` with every byte that is not part of a well-formed sequence replaced by U+FFFD.
std::string to_valid_utf8(std::string_view s);

/// Replaces `s` by to_valid_utf8(s) when it is not valid; returns whether it did.
bool make_valid_utf8(std::string& s);

} // namespace ferry
