#include "workflows/apply.hpp"

#include <string>

namespace ferry {

namespace {

caf::error bad(const event& e, const std::string& why) {
  return make_error(errc::data_loss, "event " + std::to_string(e.seq) + " ("
                                       + to_string(e.type) + "): " + why);
}

bool needs_task(event_type t) {
  switch (t) {
    case event_type::task_scheduled:
    case event_type::task_started:
    case event_type::task_succeeded:
    case event_type::task_failed:
    case event_type::task_compensating:
    case event_type::task_compensated:
    case event_type::compensation_failed:
    case event_type::gate_approved:
    case event_type::retry_requested:
      return true;
    default:
      return false;
  }
}

} // namespace

caf::error apply(run_state& s, const event& e) {
  if (e.seq != s.seq + 1)
    return bad(e, "expected sequence number " + std::to_string(s.seq + 1));
  if (e.type != event_type::run_started && s.status == run_status::pending)
    return bad(e, "the run has not started");
  if (is_terminal(s.status))
    return bad(e, std::string{"the run is already "} + to_string(s.status));
  task_state* t = nullptr;
  const task_def* td = nullptr;
  if (needs_task(e.type)) {
    if (e.task >= s.tasks.size())
      return bad(e, "unknown task index " + std::to_string(e.task));
    t = &s.tasks[e.task];
    td = &s.def->tasks[e.task];
  }
  auto active_attempt = [&](bool compensation) {
    if (compensation)
      return t->status == task_status::compensating && t->deadline != 0
             && e.attempt == t->compensation_attempt;
    return t->status == task_status::running && e.attempt == t->attempt;
  };
  switch (e.type) {
    case event_type::run_started:
      if (s.status != run_status::pending || s.seq != 0)
        return bad(e, "the run has started already");
      if (!e.def)
        return bad(e, "no definition");
      s.def = e.def;
      s.tasks.assign(e.def->tasks.size(), task_state{});
      s.created = e.at;
      s.not_before = e.not_before;
      s.seed = e.seed;
      s.status = e.not_before > e.at ? run_status::scheduled : run_status::running;
      break;
    case event_type::run_activated:
      if (s.status != run_status::scheduled)
        return bad(e, "the run is not SCHEDULED");
      s.status = run_status::running;
      break;
    case event_type::task_scheduled:
      if (e.compensation) {
        if (t->status != task_status::compensation_failed)
          return bad(e, "no failed compensation to retry");
        t->status = task_status::compensating;
        t->deadline = 0;
        t->not_before = e.deadline;
      } else {
        if (t->status != task_status::pending && t->status != task_status::failed)
          return bad(e, std::string{"task is "} + to_string(t->status));
        if (t->status == task_status::failed)
          ++s.retries_used;
        t->status = task_status::scheduled;
        t->not_before = e.deadline;
        t->deadline = 0;
      }
      break;
    case event_type::task_started:
      if (t->status != task_status::pending && t->status != task_status::scheduled)
        return bad(e, std::string{"task is "} + to_string(t->status));
      if (e.attempt != t->attempt + 1)
        return bad(e, "attempt " + std::to_string(e.attempt) + " does not follow "
                        + std::to_string(t->attempt));
      t->status = task_status::running;
      t->attempt = e.attempt;
      t->started = e.at;
      if (t->first_started == 0)
        t->first_started = e.at;
      t->deadline = e.deadline;
      t->not_before = 0;
      break;
    case event_type::task_succeeded:
      if (!active_attempt(false))
        return bad(e, "attempt " + std::to_string(e.attempt) + " is not running");
      t->status = task_status::succeeded;
      t->finished = e.at;
      t->deadline = 0;
      t->code = errc::ok;
      t->text.set({}, e.output);
      if (td->point_of_no_return)
        s.passed_point_of_no_return = true;
      break;
    case event_type::task_failed:
      if (!active_attempt(false))
        return bad(e, "attempt " + std::to_string(e.attempt) + " is not running");
      t->status = task_status::failed;
      t->finished = e.at;
      t->deadline = 0;
      t->code = e.code;
      t->text.set(e.message, {});
      t->retryable = e.retryable;
      break;
    case event_type::task_compensating:
      // From SUCCEEDED, or FAILED with what it did in doubt (a refused task did nothing).
      if (t->status == task_status::succeeded || t->in_doubt()) {
        if (e.attempt != 1)
          return bad(e, "a compensation starts with attempt 1");
        t->attempt_base = 0;
      } else if (t->status != task_status::compensating || t->deadline != 0
                 || e.attempt != t->compensation_attempt + 1) {
        return bad(e, std::string{"task is "} + to_string(t->status)
                        + ", not awaiting compensation attempt " + std::to_string(e.attempt));
      }
      t->status = task_status::compensating;
      t->compensation_attempt = e.attempt;
      t->started = e.at;
      t->deadline = e.deadline;
      t->not_before = 0;
      break;
    case event_type::task_compensated:
      if (!active_attempt(true))
        return bad(e, "compensation attempt " + std::to_string(e.attempt) + " is not running");
      t->status = task_status::compensated;
      t->finished = e.at;
      t->deadline = 0;
      t->code = errc::ok;
      t->text.set({}, e.output);
      break;
    case event_type::compensation_failed:
      if (!active_attempt(true))
        return bad(e, "compensation attempt " + std::to_string(e.attempt) + " is not running");
      t->status = task_status::compensation_failed;
      t->finished = e.at;
      t->deadline = 0;
      t->code = e.code;
      t->text.set(e.message, t->output());
      t->retryable = e.retryable;
      break;
    case event_type::run_paused:
      if (s.status != run_status::running)
        return bad(e, std::string{"the run is "} + to_string(s.status));
      s.status = run_status::paused;
      break;
    case event_type::run_resumed:
      // Also a rollback that a cancel started, abandoned once a point of no return was
      // passed with nothing undone (decide.cpp): the run rolls forward.
      if (s.status != run_status::paused
          && !(s.status == run_status::rolling_back && s.passed_point_of_no_return))
        return bad(e, std::string{"the run is "} + to_string(s.status));
      if (s.status == run_status::rolling_back)
        s.reason = e.message;
      s.status = run_status::running;
      break;
    case event_type::cancel_requested:
      s.cancel_requested = true;
      break;
    case event_type::gate_approved:
      if (!td->gate)
        return bad(e, "the task is not a gate");
      t->gate_approved = true;
      break;
    case event_type::retry_requested:
      if (s.status != run_status::failed)
        return bad(e, std::string{"the run is "} + to_string(s.status));
      if (t->status == task_status::failed) {
        t->status = task_status::scheduled;
        t->attempt_base = t->attempt;
        t->first_started = e.at;
        s.status = run_status::running;
      } else if (t->status == task_status::compensation_failed) {
        t->status = task_status::compensating;
        t->attempt_base = t->compensation_attempt;
        s.status = run_status::rolling_back;
      } else {
        return bad(e, std::string{"task is "} + to_string(t->status));
      }
      t->not_before = e.at;
      t->deadline = 0;
      s.reason.clear();
      break;
    case event_type::rollback_started:
      if (s.status != run_status::running && s.status != run_status::paused
          && s.status != run_status::scheduled)
        return bad(e, std::string{"the run is "} + to_string(s.status));
      s.status = run_status::rolling_back;
      s.reason = e.message;
      break;
    case event_type::run_succeeded:
      if (s.status != run_status::running)
        return bad(e, std::string{"the run is "} + to_string(s.status));
      s.status = run_status::succeeded;
      break;
    case event_type::run_rolled_back:
      if (s.status != run_status::rolling_back)
        return bad(e, std::string{"the run is "} + to_string(s.status));
      s.status = run_status::rolled_back;
      break;
    case event_type::run_failed:
      if (s.status == run_status::failed)
        return bad(e, "the run has failed already");
      s.status = run_status::failed;
      s.reason = e.message;
      break;
    case event_type::run_aborted:
      s.status = run_status::aborted;
      s.reason = e.message;
      break;
    default:
      return bad(e, "unknown event type");
  }
  s.seq = e.seq;
  s.updated = e.at;
  return {};
}

} // namespace ferry
