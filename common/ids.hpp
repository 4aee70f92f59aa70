// Identifiers: run ids and the idempotency key `run/task/attempt` that every task dispatch
// carries. Vocabulary only; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

/// A run's id: [A-Za-z0-9_.-], 1 to 64 characters (so a journal key never contains '\0' or
/// '/').
using run_id = std::string;

inline bool valid_id_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
         || c == '_' || c == '.' || c == '-';
}

/// True when `x` is 1 to `max_len` characters of [A-Za-z0-9_.-].
inline bool valid_id(std::string_view x, size_t max_len = 64) noexcept {
  if (x.empty() || x.size() > max_len)
    return false;
  for (auto c : x)
    if (!valid_id_char(c))
      return false;
  return true;
}

/// The idempotency key of one attempt: "run/task/attempt". Compensation attempts use
/// "run/task/undo-attempt" so they never collide with the task's own keys.
inline std::string idempotency_key(std::string_view run, std::string_view task,
                                   uint32_t attempt, bool compensation = false) {
  std::string key;
  key.reserve(run.size() + task.size() + 16);
  key.append(run).append("/").append(task).append("/");
  if (compensation)
    key.append("undo-");
  key.append(std::to_string(attempt));
  return key;
}

} // namespace ferry
