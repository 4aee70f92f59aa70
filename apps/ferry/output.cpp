#include "apps/ferry/output.hpp"

#include <algorithm>
#include <cstdio>

namespace ferry::cli {

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string format_duration(time_ms ms) {
  char buf[32];
  if (ms < 1000)
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  else
    std::snprintf(buf, sizeof buf, "%.3fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

namespace {

std::string what(const event& e) {
  switch (e.type) {
    case event_type::run_started: return "run started";
    case event_type::run_activated: return "run activated";
    case event_type::task_scheduled:
      if (e.compensation)
        return "undo retry #" + std::to_string(e.attempt) + " scheduled";
      if (e.deadline == 0)
        return "waiting for approval";
      return "retry #" + std::to_string(e.attempt) + " scheduled";
    case event_type::task_started: return "started (attempt " + std::to_string(e.attempt) + ")";
    case event_type::task_succeeded: return "succeeded";
    case event_type::task_failed: return "failed";
    case event_type::task_compensating:
      return "compensating (attempt " + std::to_string(e.attempt) + ")";
    case event_type::task_compensated: return "compensated";
    case event_type::compensation_failed: return "compensation failed";
    case event_type::run_paused: return "run paused";
    case event_type::run_resumed: return "run resumed";
    case event_type::cancel_requested: return "cancel requested";
    case event_type::gate_approved: return "gate approved";
    case event_type::retry_requested: return "retry requested";
    case event_type::rollback_started: return "rollback started";
    case event_type::run_succeeded: return "run succeeded";
    case event_type::run_rolled_back: return "run rolled back";
    case event_type::run_failed: return "run failed";
    case event_type::run_aborted: return "run aborted";
  }
  return to_string(e.type);
}

} // namespace

std::string format_event(const event& e, const definition& def, time_ms origin) {
  char head[64];
  std::snprintf(head, sizeof head, "  +%7.3fs  ",
                static_cast<double>(e.at - origin) / 1000.0);
  std::string task = e.task < def.tasks.size() ? def.tasks[e.task].id : "";
  std::string line = head;
  char col[64];
  std::snprintf(col, sizeof col, "%-16s ", task.c_str());
  line += col;
  line += what(e);
  if (e.code != errc::ok)
    line += std::string{": "} + to_string(e.code) + ": " + e.message;
  else if (!e.message.empty())
    line += ": " + e.message;
  return line;
}

std::string format_summary(const run_state& s) {
  std::string out;
  size_t width = 4;
  for (auto& t : s.def->tasks)
    width = std::max(width, t.id.size());
  char buf[512];
  std::snprintf(buf, sizeof buf, "  %-*s  %-20s %8s  %10s  %s\n", static_cast<int>(width),
                "TASK", "STATUS", "ATTEMPTS", "DURATION", "ERROR");
  out += buf;
  for (size_t i = 0; i < s.tasks.size(); ++i) {
    auto& t = s.tasks[i];
    auto duration = t.first_started != 0 && t.finished >= t.first_started
                      ? format_duration(t.finished - t.first_started)
                      : std::string{"-"};
    std::string attempts = std::to_string(t.attempt);
    if (t.compensation_attempt != 0)
      attempts += "+" + std::to_string(t.compensation_attempt);
    std::string err = t.code != errc::ok ? std::string{to_string(t.code)} + ": " + t.error() : "";
    std::snprintf(buf, sizeof buf, "  %-*s  %-20s %8s  %10s  %s\n", static_cast<int>(width),
                  s.def->tasks[i].id.c_str(), to_string(t.status), attempts.c_str(),
                  duration.c_str(), err.c_str());
    out += buf;
  }
  out += "run " + s.id + ": " + to_string(s.status) + " in "
         + format_duration(s.updated - s.created);
  if (!s.reason.empty())
    out += " (" + s.reason + ")";
  out += "\n";
  return out;
}

std::string format_progress(const std::string& task, uint64_t processed_bytes,
                            uint64_t total_bytes, uint32_t iteration, uint64_t dirty_bytes_s,
                            uint64_t elapsed_ms) {
  constexpr double mib = 1024.0 * 1024.0;
  double pct = total_bytes == 0 ? 0.0
                                : 100.0 * static_cast<double>(processed_bytes)
                                    / static_cast<double>(total_bytes);
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "  %-14s copy %5.1f%%  %.1f / %.1f MiB  pass %u  dirty %.1f MiB/s  %.1f s",
                task.c_str(), std::min(pct, 100.0), static_cast<double>(processed_bytes) / mib,
                static_cast<double>(total_bytes) / mib, iteration,
                static_cast<double>(dirty_bytes_s) / mib, static_cast<double>(elapsed_ms) / 1000.0);
  return buf;
}

} // namespace ferry::cli
