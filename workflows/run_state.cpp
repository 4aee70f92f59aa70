#include "workflows/run_state.hpp"

namespace ferry {

const char* to_string(run_status x) noexcept {
  switch (x) {
    case run_status::pending: return "PENDING";
    case run_status::scheduled: return "SCHEDULED";
    case run_status::running: return "RUNNING";
    case run_status::paused: return "PAUSED";
    case run_status::rolling_back: return "ROLLING_BACK";
    case run_status::succeeded: return "SUCCEEDED";
    case run_status::rolled_back: return "ROLLED_BACK";
    case run_status::failed: return "FAILED";
    case run_status::aborted: return "ABORTED";
  }
  return "?";
}

const char* to_string(task_status x) noexcept {
  switch (x) {
    case task_status::pending: return "PENDING";
    case task_status::scheduled: return "SCHEDULED";
    case task_status::running: return "RUNNING";
    case task_status::succeeded: return "SUCCEEDED";
    case task_status::failed: return "FAILED";
    case task_status::compensating: return "COMPENSATING";
    case task_status::compensated: return "COMPENSATED";
    case task_status::compensation_failed: return "COMPENSATION_FAILED";
  }
  return "?";
}

const char* to_string(event_type x) noexcept {
  switch (x) {
    case event_type::run_started: return "run_started";
    case event_type::task_scheduled: return "task_scheduled";
    case event_type::task_started: return "task_started";
    case event_type::task_succeeded: return "task_succeeded";
    case event_type::task_failed: return "task_failed";
    case event_type::task_compensating: return "task_compensating";
    case event_type::task_compensated: return "task_compensated";
    case event_type::compensation_failed: return "compensation_failed";
    case event_type::run_paused: return "run_paused";
    case event_type::run_resumed: return "run_resumed";
    case event_type::cancel_requested: return "cancel_requested";
    case event_type::gate_approved: return "gate_approved";
    case event_type::retry_requested: return "retry_requested";
    case event_type::rollback_started: return "rollback_started";
    case event_type::run_succeeded: return "run_succeeded";
    case event_type::run_rolled_back: return "run_rolled_back";
    case event_type::run_failed: return "run_failed";
    case event_type::run_aborted: return "run_aborted";
    case event_type::run_activated: return "run_activated";
  }
  return "?";
}

bool task_state::operator==(const task_state& o) const {
  return status == o.status && gate_approved == o.gate_approved && attempt == o.attempt
         && compensation_attempt == o.compensation_attempt && attempt_base == o.attempt_base
         && first_started == o.first_started && started == o.started
         && deadline == o.deadline && not_before == o.not_before && finished == o.finished
         && code == o.code && retryable == o.retryable && text == o.text;
}

bool run_state::operator==(const run_state& other) const {
  return diff(*this, other).empty();
}

namespace {

template <class T>
std::string field_diff(const char* name, const T& a, const T& b) {
  if (a == b)
    return {};
  return std::string{name} + " " + std::to_string(a) + " != " + std::to_string(b);
}

std::string str_diff(const char* name, const std::string& a, const std::string& b) {
  if (a == b)
    return {};
  return std::string{name} + " \"" + a + "\" != \"" + b + "\"";
}

} // namespace

std::string diff(const run_state& a, const run_state& b) {
  std::string d;
  auto check = [&d](std::string x) {
    if (d.empty() && !x.empty())
      d = std::move(x);
  };
  check(str_diff("run id", a.id, b.id));
  check(str_diff("definition digest", a.def ? a.def->digest : "", b.def ? b.def->digest : ""));
  if (a.status != b.status)
    check(std::string{"status "} + to_string(a.status) + " != " + to_string(b.status));
  check(field_diff("seq", a.seq, b.seq));
  check(field_diff("created", a.created, b.created));
  check(field_diff("updated", a.updated, b.updated));
  check(field_diff("not_before", a.not_before, b.not_before));
  check(field_diff("seed", a.seed, b.seed));
  check(field_diff("passed_point_of_no_return", a.passed_point_of_no_return,
                   b.passed_point_of_no_return));
  check(field_diff("cancel_requested", a.cancel_requested, b.cancel_requested));
  check(field_diff("retries_used", a.retries_used, b.retries_used));
  check(str_diff("reason", a.reason, b.reason));
  check(field_diff("task count", a.tasks.size(), b.tasks.size()));
  for (size_t i = 0; d.empty() && i < a.tasks.size() && i < b.tasks.size(); ++i) {
    auto& x = a.tasks[i];
    auto& y = b.tasks[i];
    if (x == y)
      continue;
    std::string name = "task \"" + (a.def && i < a.def->tasks.size() ? a.def->tasks[i].id
                                                                      : std::to_string(i))
                       + "\": ";
    std::string f;
    if (x.status != y.status)
      f = std::string{"status "} + to_string(x.status) + " != " + to_string(y.status);
    if (f.empty()) f = field_diff("attempt", x.attempt, y.attempt);
    if (f.empty()) f = field_diff("compensation_attempt", x.compensation_attempt,
                                  y.compensation_attempt);
    if (f.empty()) f = field_diff("attempt_base", x.attempt_base, y.attempt_base);
    if (f.empty()) f = field_diff("gate_approved", x.gate_approved, y.gate_approved);
    if (f.empty()) f = field_diff("first_started", x.first_started, y.first_started);
    if (f.empty()) f = field_diff("started", x.started, y.started);
    if (f.empty()) f = field_diff("deadline", x.deadline, y.deadline);
    if (f.empty()) f = field_diff("not_before", x.not_before, y.not_before);
    if (f.empty()) f = field_diff("finished", x.finished, y.finished);
    if (f.empty() && x.code != y.code)
      f = std::string{"error code "} + to_string(x.code) + " != " + to_string(y.code);
    if (f.empty()) f = field_diff("retryable", x.retryable, y.retryable);
    if (f.empty()) f = str_diff("error", x.error(), y.error());
    if (f.empty()) f = str_diff("output", x.output(), y.output());
    check(name + f);
  }
  return d;
}

} // namespace ferry
