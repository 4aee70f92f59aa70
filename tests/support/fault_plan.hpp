// Fault injection for tests (engine_options::inject_fault): fails every attempt of one task
// (not its compensation) of one run, or of every run, while armed.
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

  std::optional<task_result> operator()(const task_call& c) {
    std::lock_guard<std::mutex> g{mtx};
    if (!armed || c.compensation || c.task_id() != task || (!run.empty() && c.run != run))
      return std::nullopt;
    return task_result::failure(code, "injected failure at " + task, false);
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
