#include "workflows/commands.hpp"

#include <caf/expected.hpp>

#include "workflows/decide.hpp"

namespace ferry {

namespace {

caf::error refuse(const run_state& s, const std::string& what) {
  return make_error(errc::failed_precondition, "run " + s.id + ": " + what);
}

caf::error refuse_status(const run_state& s, const std::string& action) {
  return refuse(s, std::string{"cannot "} + action + ": the run is " + to_string(s.status));
}

event make(event_type type, time_ms now, const std::string& actor) {
  event e;
  e.type = type;
  e.at = now;
  e.actor = actor;
  return e;
}

caf::expected<uint32_t> task_named(const run_state& s, const std::string& id) {
  auto i = s.def ? s.def->index_of(id) : -1;
  if (i < 0)
    return make_error(errc::not_found, "run " + s.id + ": field \"task\": no task \"" + id
                                         + "\" in definition \""
                                         + (s.def ? s.def->name : "") + "\"");
  return static_cast<uint32_t>(i);
}

} // namespace

caf::error on_result(run_state& s, uint32_t task, uint32_t attempt, bool compensation,
                     const task_result& r, time_ms now, std::vector<event>& out) {
  if (is_terminal(s.status) || task >= s.tasks.size())
    return {};
  auto& t = s.tasks[task];
  bool live = compensation ? (t.status == task_status::compensating && t.deadline != 0
                              && t.compensation_attempt == attempt)
                           : (t.status == task_status::running && t.attempt == attempt);
  if (!live)
    return {};
  event e;
  e.at = now;
  e.task = task;
  e.attempt = attempt;
  if (r.code == errc::ok) {
    e.type = compensation ? event_type::task_compensated : event_type::task_succeeded;
    e.output = r.output;
  } else {
    e.type = compensation ? event_type::compensation_failed : event_type::task_failed;
    e.code = r.code;
    e.message = r.message;
    e.retryable = r.retryable;
  }
  return emit(s, std::move(e), out);
}

caf::error cancel(run_state& s, const std::string& actor, time_ms now,
                  std::vector<event>& out) {
  if (s.status == run_status::rolling_back)
    return {};
  if (is_resting(s.status) || s.status == run_status::pending)
    return refuse_status(s, "cancel");
  if (s.passed_point_of_no_return) {
    std::string ponr;
    for (size_t i = 0; i < s.tasks.size(); ++i)
      if (s.def->tasks[i].point_of_no_return && s.tasks[i].status == task_status::succeeded)
        ponr = s.def->tasks[i].id;
    return refuse(s, "cannot cancel: the run passed its point of no return at task \"" + ponr
                       + "\"; it only rolls forward (abort stops it without compensation)");
  }
  if (s.cancel_requested)
    return {};
  return emit(s, make(event_type::cancel_requested, now, actor), out);
}

caf::error abort(run_state& s, const std::string& actor, const std::string& reason,
                 time_ms now, std::vector<event>& out) {
  if (is_terminal(s.status) || s.status == run_status::pending)
    return refuse_status(s, "abort");
  auto e = make(event_type::run_aborted, now, actor);
  e.message = reason.empty() ? "aborted by " + (actor.empty() ? std::string{"operator"} : actor)
                             : reason;
  return emit(s, std::move(e), out);
}

caf::error pause(run_state& s, const std::string& actor, time_ms now,
                 std::vector<event>& out) {
  if (s.status == run_status::paused)
    return {};
  if (s.status != run_status::running)
    return refuse_status(s, "pause");
  return emit(s, make(event_type::run_paused, now, actor), out);
}

caf::error resume(run_state& s, const std::string& actor, time_ms now,
                  std::vector<event>& out) {
  if (s.status == run_status::running)
    return {};
  if (s.status != run_status::paused)
    return refuse_status(s, "resume");
  return emit(s, make(event_type::run_resumed, now, actor), out);
}

caf::error approve(run_state& s, const std::string& task_id, const std::string& actor,
                   time_ms now, std::vector<event>& out) {
  auto i = task_named(s, task_id);
  if (!i)
    return i.error();
  if (!s.def->tasks[*i].gate)
    return refuse(s, "field \"task\": task \"" + task_id + "\" is not a gate");
  if (s.tasks[*i].gate_approved)
    return {};
  if (is_resting(s.status) || s.status == run_status::pending)
    return refuse_status(s, "approve");
  auto e = make(event_type::gate_approved, now, actor);
  e.task = *i;
  return emit(s, std::move(e), out);
}

caf::error retry(run_state& s, const std::string& task_id, const std::string& actor,
                 time_ms now, std::vector<event>& out) {
  auto i = task_named(s, task_id);
  if (!i)
    return i.error();
  if (s.status != run_status::failed)
    return refuse_status(s, "retry a task");
  auto st = s.tasks[*i].status;
  if (st != task_status::failed && st != task_status::compensation_failed)
    return refuse(s, "field \"task\": task \"" + task_id + "\" is "
                       + to_string(st) + ", not FAILED or COMPENSATION_FAILED");
  // Once the rollback has undone (or begun undoing) a task, rolling forward again would run
  // on undone work and could never succeed: only the compensation may be retried.
  if (st == task_status::failed)
    for (size_t j = 0; j < s.tasks.size(); ++j) {
      auto other = s.tasks[j].status;
      if (other == task_status::compensating || other == task_status::compensated
          || other == task_status::compensation_failed)
        return refuse(s, "field \"task\": task \"" + task_id
                           + "\" cannot run again: the rollback has reached task \""
                           + s.def->tasks[j].id + "\" (" + to_string(other)
                           + "); only compensations may be retried");
    }
  auto e = make(event_type::retry_requested, now, actor);
  e.task = *i;
  e.compensation = st == task_status::compensation_failed;
  return emit(s, std::move(e), out);
}

} // namespace ferry
