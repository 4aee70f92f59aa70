// Fault injection for tests (engine_options::inject_fault and inject_lost_answer): fails
// every attempt of one task (or, with `compensation`, of its compensation) of one run, or of
// every run, while armed: before the task acts, or (`after`) once it has acted, its answer
// lost.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "actors/executor.hpp"

namespace ferry::testing {

struct fault_plan {
  std::mutex mtx;
  std::string task;
  /// Empty: every run.
  std::string run;
  bool armed = false;
  errc code = errc::unavailable;
  /// The task acts, then fails.
  bool after = false;
  /// Fails only the first `attempts` attempts; 0: every one.
  uint32_t attempts = 0;
  /// Hits the task's compensation instead of the task.
  bool compensation = false;
  /// The attempts failed so far.
  size_t taken = 0;

  /// Before the attempt (engine_options::inject_fault).
  std::optional<task_result> operator()(const task_call& c) {
    std::lock_guard<std::mutex> g{mtx};
    if (!hits(c) || after)
      return std::nullopt;
    ++taken;
    return task_result::failure(code, "injected failure at " + task, false);
  }
  /// After it (engine_options::inject_lost_answer).
  std::optional<task_result> operator()(const task_call& c, const task_result&) {
    std::lock_guard<std::mutex> g{mtx};
    if (!hits(c) || !after)
      return std::nullopt;
    ++taken;
    return task_result::failure(code, "injected lost answer at " + task, true);
  }
  bool hits(const task_call& c) const {
    return armed && c.compensation == compensation && c.task_id() == task
           && (run.empty() || c.run == run) && (attempts == 0 || c.attempt <= attempts);
  }
  void arm(std::string t, std::string r = {}) {
    std::lock_guard<std::mutex> g{mtx};
    task = std::move(t);
    run = std::move(r);
    armed = true;
  }
  void disarm() {
    std::lock_guard<std::mutex> g{mtx};
    armed = false;
  }
};

} // namespace ferry::testing
