#include "actors/executor.hpp"

#include <algorithm>

#include "common/errc.hpp"

namespace ferry {

task_executor::~task_executor() = default;

std::string string_param(const task_call& call, const char* name, std::string fallback) {
  auto* v = find_param(call.parameters(), name);
  return v && v->kind == value::type::string ? v->s : fallback;
}

double number_param(const task_call& call, const char* name, double fallback) {
  auto* v = find_param(call.parameters(), name);
  return v && v->kind == value::type::number ? v->n : fallback;
}

bool flag_param(const task_call& call, const char* name) {
  auto* v = find_param(call.parameters(), name);
  return v && v->kind == value::type::boolean && v->b;
}

std::chrono::milliseconds time_left(const task_call& call) {
  return std::chrono::milliseconds{std::max<time_ms>(call.deadline - wall_now_ms(), 1)};
}

task_result failure_from(const caf::error& err) {
  auto code = code_of(err);
  bool retryable = code == errc::unavailable || code == errc::deadline_exceeded
                   || code == errc::resource_exhausted || code == errc::unknown;
  return task_result::failure(code == errc::ok ? errc::unknown : code, message_of(err),
                              retryable);
}

void executor_registry::add(std::shared_ptr<task_executor> exec) {
  auto spec = exec->spec();
  executors_[spec.name] = std::move(exec);
  catalog_.add(std::move(spec));
}

task_executor* executor_registry::find(const std::string& kind) const {
  auto i = executors_.find(kind);
  return i == executors_.end() ? nullptr : i->second.get();
}

} // namespace ferry
