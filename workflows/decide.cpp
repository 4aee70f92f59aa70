#include "workflows/decide.hpp"

#include <algorithm>
#include <cmath>

#include "workflows/apply.hpp"

namespace ferry {

namespace {

uint64_t mix(uint64_t x) {
  // splitmix64 finalizer.
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

event make(event_type type, time_ms now, uint32_t task = no_task) {
  event e;
  e.type = type;
  e.at = now;
  e.task = task;
  return e;
}

std::string failure_text(const task_state& t) {
  return std::string{to_string(t.code)} + ": " + t.error();
}

bool has_compensation(const run_state& s, uint32_t i) {
  return s.def->tasks[i].compensation.has_value();
}

/// A rollback undoes task `i`: it has a compensation, and it succeeded or failed leaving what
/// it did in doubt. Before, a failed task was never undone: a copy whose every answer was
/// lost was left paused.
bool undoable(const run_state& s, uint32_t i) {
  auto& t = s.tasks[i];
  return has_compensation(s, i) && (t.status == task_status::succeeded || t.in_doubt());
}

/// The time at which the next attempt of task `i` may start, or 0 if it may not be retried.
time_ms retry_time(const run_state& s, uint32_t i, time_ms now, bool compensation) {
  auto& t = s.tasks[i];
  auto& td = s.def->tasks[i];
  if (!t.retryable)
    return 0;
  const retry_policy& p = compensation ? td.compensation->retry : td.retry;
  uint32_t made = (compensation ? t.compensation_attempt : t.attempt) - t.attempt_base;
  if (made >= p.max_attempts)
    return 0;
  if (!compensation && s.def->retry_budget != 0 && s.retries_used >= s.def->retry_budget)
    return 0;
  auto at = now + static_cast<time_ms>(backoff_ms(p, made, s.seed, i, compensation));
  if (!compensation && p.budget_ms != 0
      && at > t.first_started + static_cast<time_ms>(p.budget_ms))
    return 0;
  return at;
}

std::string exhausted_reason(const run_state& s, uint32_t i, bool compensation) {
  auto& t = s.tasks[i];
  auto& td = s.def->tasks[i];
  uint32_t made = compensation ? t.compensation_attempt : t.attempt;
  std::string what = compensation ? "compensation of task \"" + td.id + "\""
                                  : "task \"" + td.id + "\"";
  std::string why;
  const retry_policy& p = compensation ? td.compensation->retry : td.retry;
  if (!t.retryable)
    why = "not retryable";
  else if (made - t.attempt_base >= p.max_attempts)
    why = "attempts exhausted";
  else if (!compensation && s.def->retry_budget != 0
           && s.retries_used >= s.def->retry_budget)
    why = "run retry budget exhausted";
  else
    why = "retry time budget exhausted";
  return what + " failed after " + std::to_string(made) + " attempt"
         + (made == 1 ? "" : "s") + " (" + why + "): " + failure_text(t);
}

void timeouts(const run_state& s, time_ms now, std::vector<event>& out) {
  for (uint32_t i = 0; i < s.tasks.size(); ++i) {
    auto& t = s.tasks[i];
    if (t.deadline == 0 || now < t.deadline)
      continue;
    if (t.status == task_status::running) {
      auto e = make(event_type::task_failed, now, i);
      e.attempt = t.attempt;
      e.code = errc::deadline_exceeded;
      e.retryable = s.status != run_status::rolling_back;
      e.message = "attempt " + std::to_string(t.attempt) + " timed out after "
                  + std::to_string(s.def->tasks[i].effective_timeout_ms) + " ms";
      out.push_back(std::move(e));
    } else if (t.status == task_status::compensating) {
      auto e = make(event_type::compensation_failed, now, i);
      e.attempt = t.compensation_attempt;
      e.code = errc::deadline_exceeded;
      e.retryable = true;
      e.message = "compensation attempt " + std::to_string(t.compensation_attempt)
                  + " timed out after "
                  + std::to_string(s.def->tasks[i].compensation->timeout_ms) + " ms";
      out.push_back(std::move(e));
    }
  }
}

event start(const run_state& s, uint32_t i, time_ms now) {
  auto e = make(event_type::task_started, now, i);
  e.attempt = s.tasks[i].attempt + 1;
  e.deadline = now + static_cast<time_ms>(s.def->tasks[i].effective_timeout_ms);
  return e;
}

event start_compensation(const run_state& s, uint32_t i, time_ms now, uint32_t attempt) {
  auto e = make(event_type::task_compensating, now, i);
  e.attempt = attempt;
  e.deadline = now + static_cast<time_ms>(s.def->tasks[i].compensation->timeout_ms);
  return e;
}

void decide_forward(const run_state& s, time_ms now, std::vector<event>& out) {
  bool paused = s.status == run_status::paused;
  timeouts(s, now, out);
  if (!out.empty())
    return;
  for (uint32_t i = 0; i < s.tasks.size(); ++i) {
    auto& t = s.tasks[i];
    if (t.status != task_status::failed)
      continue;
    if (auto at = retry_time(s, i, now, false); at != 0) {
      auto e = make(event_type::task_scheduled, now, i);
      e.attempt = t.attempt + 1;
      e.deadline = at;
      out.push_back(std::move(e));
      continue;
    }
    if (paused)
      continue; // the decision waits for resume
    auto reason = exhausted_reason(s, i, false);
    out.clear();
    if (s.passed_point_of_no_return) {
      auto e = make(event_type::run_failed, now);
      e.message = reason + "; the run is past its point of no return and waits for an "
                           "operator";
      out.push_back(std::move(e));
    } else if (s.def->tasks[i].point_of_no_return && t.in_doubt()) {
      // It may have passed the point of no return: undoing the tasks before it could leave
      // the VM nowhere (a flip done, its target destroyed). A retry finds out what it did.
      auto e = make(event_type::run_failed, now);
      e.message = reason + "; what it did is in doubt and it is a point of no return, so the "
                           "run waits for an operator (a retry finds out what it did)";
      out.push_back(std::move(e));
    } else {
      auto e = make(event_type::rollback_started, now);
      e.message = reason;
      out.push_back(std::move(e));
    }
    return;
  }
  if (!out.empty())
    return;
  if (s.cancel_requested && !s.passed_point_of_no_return) {
    auto e = make(event_type::rollback_started, now);
    e.message = "cancel requested";
    out.push_back(std::move(e));
    return;
  }
  if (paused)
    return;
  bool all_done = true;
  for (uint32_t i = 0; i < s.tasks.size(); ++i) {
    auto& t = s.tasks[i];
    auto& td = s.def->tasks[i];
    if (t.status != task_status::succeeded)
      all_done = false;
    if (t.status == task_status::pending) {
      bool ready = std::all_of(td.deps.begin(), td.deps.end(), [&](uint32_t d) {
        return s.tasks[d].status == task_status::succeeded;
      });
      if (!ready)
        continue;
      if (td.gate && !t.gate_approved) {
        auto e = make(event_type::task_scheduled, now, i);
        e.attempt = 1;
        out.push_back(std::move(e));
      } else {
        out.push_back(start(s, i, now));
      }
    } else if (t.status == task_status::scheduled) {
      if (td.gate && !t.gate_approved && t.attempt == 0)
        continue;
      if (now >= t.not_before)
        out.push_back(start(s, i, now));
    }
  }
  if (all_done)
    out.push_back(make(event_type::run_succeeded, now));
}

/// Nothing of `j` remains to be undone or to settle.
bool settled(const run_state& s, uint32_t j) {
  switch (s.tasks[j].status) {
    case task_status::pending:
    case task_status::scheduled:
    case task_status::compensated:
      return true;
    case task_status::failed:
    case task_status::succeeded:
      return !undoable(s, j);
    default:
      return false;
  }
}

void decide_rollback(const run_state& s, time_ms now, std::vector<event>& out) {
  timeouts(s, now, out);
  if (!out.empty())
    return;
  if (s.passed_point_of_no_return) {
    // A cancel that came while a point-of-no-return task ran, which then succeeded: nothing
    // failed and nothing was undone, so the run rolls forward. Before, it stopped FAILED with
    // no task an operator could retry: only an abort, which left the move half done.
    bool untouched = s.cancel_requested;
    for (auto& t : s.tasks)
      if (t.status == task_status::failed || t.status == task_status::compensating
          || t.status == task_status::compensated
          || t.status == task_status::compensation_failed)
        untouched = false;
    if (untouched) {
      auto e = make(event_type::run_resumed, now);
      e.message = "the cancel came too late: a point of no return was passed; the run rolls "
                  "forward";
      out.push_back(std::move(e));
      return;
    }
    auto e = make(event_type::run_failed, now);
    e.message = "a point of no return was passed during the rollback (" + s.reason
                + "); the run waits for an operator";
    out.push_back(std::move(e));
    return;
  }
  bool busy = false;
  for (uint32_t i = 0; i < s.tasks.size(); ++i) {
    auto& t = s.tasks[i];
    switch (t.status) {
      case task_status::compensation_failed:
        if (auto at = retry_time(s, i, now, true); at != 0) {
          auto e = make(event_type::task_scheduled, now, i);
          e.compensation = true;
          e.attempt = t.compensation_attempt + 1;
          e.deadline = at;
          out.push_back(std::move(e));
          busy = true;
        } else {
          out.clear();
          auto e = make(event_type::run_failed, now);
          e.message = exhausted_reason(s, i, true) + " (rolling back because: " + s.reason
                      + "); the run waits for an operator";
          out.push_back(std::move(e));
          return;
        }
        break;
      case task_status::compensating:
        busy = true;
        if (t.deadline == 0 && now >= t.not_before)
          out.push_back(start_compensation(s, i, now, t.compensation_attempt + 1));
        break;
      case task_status::running:
        busy = true;
        break;
      case task_status::failed:
      case task_status::succeeded: {
        if (!undoable(s, i))
          break;
        busy = true;
        auto& deps = s.def->tasks[i].transitive_dependents;
        if (std::all_of(deps.begin(), deps.end(), [&](uint32_t j) { return settled(s, j); }))
          out.push_back(start_compensation(s, i, now, 1));
        break;
      }
      default:
        break;
    }
  }
  if (!busy)
    out.push_back(make(event_type::run_rolled_back, now));
}

} // namespace

uint64_t backoff_ms(const retry_policy& p, uint32_t failures, uint64_t seed, uint32_t task,
                    bool compensation) {
  double base = static_cast<double>(p.initial_backoff_ms);
  for (uint32_t k = 1; k < failures && base < static_cast<double>(p.max_backoff_ms); ++k)
    base *= p.backoff_multiplier;
  base = std::min(base, static_cast<double>(p.max_backoff_ms));
  if (p.jitter > 0) {
    auto h = mix(seed ^ mix((uint64_t{task} << 33) ^ (uint64_t{failures} << 1)
                            ^ (compensation ? 1u : 0u)));
    double u = static_cast<double>(h >> 11) / static_cast<double>(uint64_t{1} << 53);
    base *= 1.0 + p.jitter * (2.0 * u - 1.0);
  }
  base = std::max(0.0, std::min(base, static_cast<double>(p.max_backoff_ms)));
  return static_cast<uint64_t>(std::llround(base));
}

std::vector<event> decide(const run_state& s, time_ms now) {
  std::vector<event> out;
  switch (s.status) {
    case run_status::scheduled:
      if (s.cancel_requested) {
        auto e = make(event_type::rollback_started, now);
        e.message = "cancel requested";
        out.push_back(std::move(e));
      } else if (now >= s.not_before) {
        out.push_back(make(event_type::run_activated, now));
      }
      break;
    case run_status::running:
    case run_status::paused:
      decide_forward(s, now, out);
      break;
    case run_status::rolling_back:
      decide_rollback(s, now, out);
      break;
    default:
      break;
  }
  return out;
}

caf::error emit(run_state& s, event e, std::vector<event>& out) {
  e.seq = s.seq + 1;
  if (auto err = apply(s, e))
    return make_error(errc::internal, message_of(err));
  out.push_back(std::move(e));
  return {};
}

caf::error advance(run_state& s, time_ms now, std::vector<event>& out) {
  // Every round changes at least one task or the run's status, so the number of rounds is
  // bounded; the limit only guards against a bug looping forever.
  size_t limit = 8 * s.tasks.size() + 16;
  for (size_t round = 0; round < limit; ++round) {
    auto evs = decide(s, now);
    if (evs.empty())
      return {};
    for (auto& e : evs)
      if (auto err = emit(s, std::move(e), out))
        return err;
  }
  return make_error(errc::internal, "run " + s.id + ": decide() did not settle");
}

time_ms next_wakeup(const run_state& s) {
  if (s.status == run_status::scheduled)
    return s.not_before;
  // A FAILED run waits for an operator: nothing is due until one acts.
  if (is_resting(s.status) || s.status == run_status::pending)
    return 0;
  time_ms best = 0;
  auto consider = [&best](time_ms t) {
    if (t != 0 && (best == 0 || t < best))
      best = t;
  };
  bool starting = s.status == run_status::running || s.status == run_status::rolling_back;
  for (uint32_t i = 0; i < s.tasks.size(); ++i) {
    auto& t = s.tasks[i];
    switch (t.status) {
      case task_status::running:
        consider(t.deadline);
        break;
      case task_status::compensating:
        consider(t.deadline != 0 ? t.deadline : (starting ? t.not_before : 0));
        break;
      case task_status::scheduled:
        if (starting && s.status == run_status::running
            && !(s.def->tasks[i].gate && !t.gate_approved && t.attempt == 0))
          consider(t.not_before);
        break;
      default:
        break;
    }
  }
  return best;
}

std::vector<dispatch> dispatches_of(const std::vector<event>& events) {
  std::vector<dispatch> result;
  for (auto& e : events)
    if (e.type == event_type::task_started || e.type == event_type::task_compensating)
      result.push_back(dispatch{e.task, e.attempt,
                                e.type == event_type::task_compensating, e.deadline});
  return result;
}

std::vector<dispatch> in_flight(const run_state& s) {
  std::vector<dispatch> result;
  for (uint32_t i = 0; i < s.tasks.size(); ++i) {
    auto& t = s.tasks[i];
    if (t.status == task_status::running)
      result.push_back(dispatch{i, t.attempt, false, t.deadline});
    else if (t.status == task_status::compensating && t.deadline != 0)
      result.push_back(dispatch{i, t.compensation_attempt, true, t.deadline});
  }
  return result;
}

} // namespace ferry
