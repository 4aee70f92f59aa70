// Key encoding of the journal (docs/journal-format.md):
//   events:      run id, 0x00, big-endian uint64 sequence of the batch's first event
//   runs:        run id
//   definitions: hex SHA-256 digest of the definition's canonical encoding
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

} // namespace ferry
