#include "common/utf8.hpp"

namespace ferry {

bool valid_utf8(std::string_view s) noexcept {
  size_t i = 0;
  auto n = s.size();
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  while (i < n) {
    auto c = byte(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
      len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0)
        lo = 0xa0;
      else if (c == 0xed)
        hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0)
        lo = 0x90;
      else if (c == 0xf4)
        hi = 0x8f;
    } else
      return false;
    if (i + len > n || byte(i + 1) < lo || byte(i + 1) > hi)
      return false;
    for (size_t k = 2; k < len; ++k)
      if (byte(i + k) < 0x80 || byte(i + k) > 0xbf)
        return false;
    i += len;
  }
  return true;
}

std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) {
    // The longest well-formed prefix of at most 4 bytes starting here is one code point.
    size_t len = 1;
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0xc0)
      len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (i + len <= s.size() && valid_utf8(s.substr(i, len))) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out.append("\xef\xbf\xbd");
      ++i;
    }
  }
  return out;
}

bool make_valid_utf8(std::string& s) {
  if (valid_utf8(s))
    return false;
  s = to_valid_utf8(s);
  return true;
}

} // namespace ferry
