// Key encoding of the journal (docs/journal-format.md):
//   events:      run id, 0x00, big-endian uint64 sequence of the batch's first event
//   runs:        run id
//   definitions: hex SHA-256 digest of the definition's canonical encoding
//   fleet_history: big-endian uint64, from 1, in write order
// Run ids never contain 0x00, so one run's events are one contiguous, ordered key range.
// Pure; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

inline std::string event_key(std::string_view run, uint64_t seq) {
  std::string key;
  key.reserve(run.size() + 9);
  key.append(run);
  key.push_back('\0');
  for (int shift = 56; shift >= 0; shift -= 8)
    key.push_back(static_cast<char>((seq >> shift) & 0xff));
  return key;
}

/// The prefix every event key of `run` starts with.
inline std::string event_prefix(std::string_view run) {
  std::string key{run};
  key.push_back('\0');
  return key;
}

/// Splits an event key; false when `key` is not one.
inline bool parse_event_key(std::string_view key, std::string_view& run, uint64_t& seq) {
  if (key.size() < 10 || key[key.size() - 9] != '\0')
    return false;
  run = key.substr(0, key.size() - 9);
  seq = 0;
  for (size_t i = key.size() - 8; i < key.size(); ++i)
    seq = (seq << 8) | static_cast<unsigned char>(key[i]);
  return true;
}

/// A fleet_history key: big-endian, so that keys sort in write order.
inline std::string big_endian(uint64_t n) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i, n >>= 8)
    key[static_cast<size_t>(i)] = static_cast<char>(n & 0xff);
  return key;
}

inline uint64_t from_big_endian(const char* p) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n = (n << 8) | static_cast<unsigned char>(p[i]);
  return n;
}

} // namespace ferry
