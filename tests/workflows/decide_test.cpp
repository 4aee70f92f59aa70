// The run state machine driven by hand: decide()/advance() with a fake clock, executor results
// through on_result(), operator commands, and apply() replaying the journal to the live state.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "common/errc.hpp"
#include "workflows/apply.hpp"
#include "workflows/commands.hpp"
#include "workflows/decide.hpp"
#include "workflows/definition_codec.hpp"

using namespace ferry;
using Catch::Matchers::Contains;
using lines = std::vector<std::string>;

namespace {

definition_ptr load(const std::string& body) {
  kind_catalog kinds;
  kind_spec noop;
  noop.name = "noop";
  kinds.add(noop);
  auto d = load_definition("name: \"wf\"\n" + body, kinds);
  INFO(body);
  INFO((d ? std::string{} : describe(d.error())));
  REQUIRE(d);
  return *d;
}

/// A noop task in text format; `extra` holds further fields.
std::string task(const std::string& id, std::vector<std::string> deps = {},
                 const std::string& extra = "") {
  std::string t = "tasks { id: \"" + id + "\" kind: \"noop\" ";
  for (auto& d : deps)
    t += "depends_on: \"" + d + "\" ";
  return t + extra + " }\n";
}

const std::string undo = "compensation { kind: \"noop\" } ";
const std::string once = "retry { max_attempts: 1 } ";

/// Replays `log` into a fresh state and requires it equal to `live`.
void check_replay(const run_state& live, const std::vector<event>& log) {
  run_state fresh;
  fresh.id = live.id;
  for (auto& e : log) {
    auto err = apply(fresh, e);
    INFO("event " << e.seq << ": " << describe(err));
    REQUIRE_FALSE(err);
  }
  CHECK(diff(live, fresh).empty());
}

/// A run driven by hand: `now` is the fake clock, `log` the journal. Every advance checks
/// that replaying the journal gives the live state.
struct run {
  run_state s;
  std::vector<event> log;
  time_ms now = 1000;
  std::string message; // of the last refusal

  explicit run(definition_ptr def, time_ms not_before = 0) {
    s.id = "r1";
    event e;
    e.type = event_type::run_started;
    e.def = std::move(def);
    e.at = now;
    e.seed = 42;
    e.not_before = not_before;
    REQUIRE_FALSE(emit(s, std::move(e), log));
  }

  uint32_t index(const std::string& id) const {
    auto i = s.def->index_of(id);
    REQUIRE(i >= 0);
    return static_cast<uint32_t>(i);
  }
  const task_state& at(const std::string& id) const { return s.tasks[index(id)]; }

  std::vector<event> since(size_t n) const { return {log.begin() + n, log.end()}; }

  /// "task_started b#2", "task_scheduled a#2 undo", "run_succeeded".
  lines text(const std::vector<event>& evs) const {
    lines out;
    for (auto& e : evs) {
      std::string x = to_string(e.type);
      if (e.task != no_task) {
        x += " " + s.def->tasks[e.task].id;
        if (e.attempt != 0)
          x += "#" + std::to_string(e.attempt);
        if (e.compensation)
          x += " undo";
      }
      out.push_back(x);
    }
    return out;
  }

  std::vector<event> advance() {
    auto n = log.size();
    auto err = ferry::advance(s, now, log);
    INFO(describe(err));
    REQUIRE_FALSE(err);
    check_replay(s, log);
    return since(n);
  }
  lines step() { return text(advance()); }

  /// Reports a result for attempt `attempt` of task `id`.
  std::vector<event> report(const std::string& id, uint32_t attempt, bool compensation,
                            const task_result& r) {
    auto n = log.size();
    auto err = on_result(s, index(id), attempt, compensation, r, now, log);
    INFO(describe(err));
    REQUIRE_FALSE(err);
    return since(n);
  }
  /// Reports a result for the current attempt (or compensation attempt) of `id`.
  lines report(const std::string& id, const task_result& r) {
    auto& t = at(id);
    bool comp = t.status == task_status::compensating;
    return text(report(id, comp ? t.compensation_attempt : t.attempt, comp, r));
  }
  lines ok(const std::string& id) { return report(id, task_result::success("out-" + id)); }
  lines fail(const std::string& id, bool retryable = true) {
    return report(id, task_result::failure(errc::unavailable, "boom", retryable));
  }
  /// Succeeds (or fails) the current attempt of `id`, then advances: the advance's events.
  lines after_ok(const std::string& id) {
    ok(id);
    return step();
  }
  lines after_fail(const std::string& id, bool retryable = true) {
    fail(id, retryable);
    return step();
  }

  /// An operator command by name ("cancel", "abort", "pause", "resume", "approve", "retry").
  caf::error command(const std::string& name, const std::string& task_id) {
    if (name == "cancel")
      return cancel(s, "ops", now, log);
    if (name == "abort")
      return ferry::abort(s, "ops", "", now, log);
    if (name == "pause")
      return pause(s, "ops", now, log);
    if (name == "resume")
      return resume(s, "ops", now, log);
    if (name == "approve")
      return approve(s, task_id, "ops", now, log);
    REQUIRE(name == "retry");
    return retry(s, task_id, "ops", now, log);
  }
  /// Runs a command that must succeed and returns its events.
  lines accept(const std::string& name, const std::string& task_id = "") {
    auto n = log.size();
    auto err = command(name, task_id);
    INFO(name << ": " << describe(err));
    REQUIRE_FALSE(err);
    return text(since(n));
  }
  /// Runs a command that must be refused: returns its code; nothing is appended or changed.
  errc refusal(const std::string& name, const std::string& task_id = "") {
    auto copy = s;
    auto n = log.size();
    auto err = command(name, task_id);
    CHECK(log.size() == n);
    CHECK(diff(copy, s).empty());
    message = message_of(err);
    return code_of(err);
  }

  /// Advances and succeeds every attempt started, except those of `hold`, until none starts.
  void run_through(const std::set<std::string>& hold = {}) {
    for (bool any = true; any;) {
      any = false;
      for (auto& d : dispatches_of(advance()))
        if (!d.compensation && hold.count(s.def->tasks[d.task].id) == 0) {
          ok(s.def->tasks[d.task].id);
          any = true;
        }
    }
  }

  bool logged(event_type type) const {
    for (auto& e : log)
      if (e.type == type)
        return true;
    return false;
  }
};

uint64_t retry_delay(const run& r, const std::string& id, uint32_t failures,
                     bool compensation = false) {
  auto& td = r.s.def->tasks[r.index(id)];
  return backoff_ms(compensation ? td.compensation->retry : td.retry, failures, 42,
                    r.index(id), compensation);
}

definition_ptr diamond(const std::string& extra = "", const std::string& tail = "") {
  return load(task("a", {}, extra) + task("b", {"a"}, extra) + task("c", {"a"}, extra)
              + task("d", {"b", "c"}, extra) + tail);
}

} // namespace

TEST_CASE("a linear DAG runs task by task and ends SUCCEEDED") {
  run r{load(task("a") + task("b", {"a"}) + task("c", {"b"}))};
  auto evs = r.advance();
  CHECK(r.text(evs) == lines{"task_started a#1"});
  auto ds = dispatches_of(evs);
  REQUIRE(ds.size() == 1);
  CHECK((ds[0].task == 0 && ds[0].attempt == 1 && !ds[0].compensation));
  CHECK(ds[0].deadline == r.now + 600000);
  CHECK(next_wakeup(r.s) == r.now + 600000);
  CHECK(r.step().empty());
  CHECK(r.ok("a") == lines{"task_succeeded a#1"});
  CHECK(r.at("a").output() == "out-a");
  CHECK(r.step() == lines{"task_started b#1"});
  CHECK(r.ok("b") == lines{"task_succeeded b#1"});
  CHECK(r.step() == lines{"task_started c#1"});
  CHECK(r.ok("c") == lines{"task_succeeded c#1"});
  CHECK(r.step() == lines{"run_succeeded"});
  CHECK(r.s.status == run_status::succeeded);
  CHECK(next_wakeup(r.s) == 0);
  CHECK(r.step().empty());
  CHECK(r.log.back().seq == r.log.size());
}

TEST_CASE("parallel branches start in the same advance and the join waits for both") {
  run r{diamond()};
  CHECK(r.step() == lines{"task_started a#1"});
  r.ok("a");
  auto evs = r.advance();
  CHECK(r.text(evs) == lines{"task_started b#1", "task_started c#1"});
  CHECK(dispatches_of(evs).size() == 2);
  CHECK(in_flight(r.s).size() == 2);
  r.ok("c");
  CHECK(r.step().empty());
  CHECK(r.at("d").status == task_status::pending);
  CHECK(r.after_ok("b") == lines{"task_started d#1"});
  CHECK(r.after_ok("d") == lines{"run_succeeded"});
}

TEST_CASE("a failed attempt is retried after the backoff of its policy, not before") {
  run r{load(task("a"))};
  r.step();
  r.now = 2000;
  CHECK(r.fail("a") == lines{"task_failed a#1"});
  auto evs = r.advance();
  CHECK(r.text(evs) == lines{"task_scheduled a#2"});
  CHECK(dispatches_of(evs).empty());
  auto due = 2000 + static_cast<time_ms>(retry_delay(r, "a", 1));
  CHECK(evs[0].deadline == due);
  CHECK(r.at("a").status == task_status::scheduled);
  CHECK(r.s.retries_used == 1);
  CHECK(next_wakeup(r.s) == due);
  r.now = due - 1;
  CHECK(r.step().empty());
  r.now = due;
  CHECK(r.step() == lines{"task_started a#2"});
  r.fail("a");
  evs = r.advance();
  REQUIRE(r.text(evs) == lines{"task_scheduled a#3"});
  CHECK(evs[0].deadline == due + static_cast<time_ms>(retry_delay(r, "a", 2)));
  CHECK(retry_delay(r, "a", 2) > retry_delay(r, "a", 1));
}

TEST_CASE("exhausted attempts before the point of no return compensate in reverse order") {
  run r{diamond(undo, task("e", {"d"}, once))};
  r.run_through({"e"});
  CHECK(r.fail("e") == lines{"task_failed e#1"});
  auto evs = r.advance();
  CHECK(r.text(evs) == lines{"rollback_started", "task_compensating d#1"});
  CHECK(r.s.status == run_status::rolling_back);
  CHECK_THAT(r.s.reason, Contains("task \"e\" failed after 1 attempt (attempts exhausted)"));
  auto ds = dispatches_of(evs);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].compensation);
  CHECK(ds[0].deadline == r.now + 600000);
  CHECK(r.ok("d") == lines{"task_compensated d#1"});
  CHECK(r.step() == lines{"task_compensating b#1", "task_compensating c#1"});
  r.ok("c");
  CHECK(r.step().empty()); // a waits for b
  CHECK(r.after_ok("b") == lines{"task_compensating a#1"});
  CHECK(r.after_ok("a") == lines{"run_rolled_back"});
  CHECK(r.s.status == run_status::rolled_back);
  for (auto id : {"a", "b", "c", "d"})
    CHECK(r.at(id).status == task_status::compensated);
  CHECK(r.at("e").status == task_status::failed);
}

TEST_CASE("tasks without a compensation are skipped in a rollback") {
  run r{load(task("a", {}, undo) + task("b", {"a"}) + task("c", {"b"}, undo)
             + task("d", {"c"}, once))};
  r.run_through({"d"});
  CHECK(r.after_fail("d", false) == lines{"rollback_started", "task_compensating c#1"});
  CHECK(r.after_ok("c") == lines{"task_compensating a#1"});
  CHECK(r.after_ok("a") == lines{"run_rolled_back"});
  CHECK(r.at("b").status == task_status::succeeded);
}

TEST_CASE("a task in flight when the rollback starts is compensated once it succeeds") {
  run r{load(task("a") + task("b", {"a"}) + task("c", {"a"}, undo))};
  r.run_through({"b", "c"});
  CHECK(r.after_fail("b", false) == lines{"rollback_started"}); // c still runs
  CHECK(r.ok("c") == lines{"task_succeeded c#1"});
  CHECK(r.step() == lines{"task_compensating c#1"});
  CHECK(r.after_ok("c") == lines{"run_rolled_back"});
}

TEST_CASE("a failing compensation is retried and, exhausted, fails the run until retried") {
  run r{load(task("a", {}, "compensation { kind: \"noop\" retry { max_attempts: 2 } }")
             + task("b", {"a"}, once))};
  r.run_through({"b"});
  CHECK(r.after_fail("b") == lines{"rollback_started", "task_compensating a#1"});
  r.now += 10;
  CHECK(r.fail("a") == lines{"compensation_failed a#1"});
  auto evs = r.advance();
  REQUIRE(r.text(evs) == lines{"task_scheduled a#2 undo"});
  auto due = r.now + static_cast<time_ms>(retry_delay(r, "a", 1, true));
  CHECK(evs[0].deadline == due);
  CHECK(next_wakeup(r.s) == due);
  r.now = due - 1;
  CHECK(r.step().empty());
  r.now = due;
  CHECK(r.step() == lines{"task_compensating a#2"});
  CHECK(r.after_fail("a") == lines{"run_failed"});
  CHECK(r.s.status == run_status::failed);
  CHECK_THAT(r.s.reason,
             Contains("compensation of task \"a\" failed after 2 attempts (attempts exhausted)"));
  CHECK(next_wakeup(r.s) == 0);
  CHECK(r.step().empty());
  // Rolling b forward on top of undone work could never succeed (the run would stay RUNNING
  // with nothing to do): only the compensation may be retried, with a fresh set of attempts.
  CHECK(r.refusal("retry", "b") == errc::failed_precondition);
  CHECK_THAT(r.message, Contains("task \"b\" cannot run again: the rollback has reached "
                                 "task \"a\" (COMPENSATION_FAILED)"));
  CHECK(r.accept("retry", "a") == lines{"retry_requested a undo"});
  CHECK(r.s.status == run_status::rolling_back);
  CHECK(r.step() == lines{"task_compensating a#3"});
  CHECK(r.after_ok("a") == lines{"run_rolled_back"});
}

TEST_CASE("past the point of no return cancel is refused and a failure compensates nothing") {
  run r{load(task("a", {}, undo) + task("p", {"a"}, undo + "point_of_no_return: true")
             + task("b", {"p"}, once))};
  r.run_through({"b"});
  CHECK(r.s.passed_point_of_no_return);
  CHECK(r.refusal("cancel") == errc::failed_precondition);
  CHECK_THAT(r.message, Contains("point of no return at task \"p\""));
  CHECK_FALSE(r.s.cancel_requested);
  CHECK(r.after_fail("b") == lines{"run_failed"});
  CHECK(r.s.status == run_status::failed);
  CHECK_THAT(r.s.reason, Contains("point of no return"));
  CHECK_FALSE(r.logged(event_type::rollback_started));
  CHECK_FALSE(r.logged(event_type::task_compensating));
  CHECK(r.refusal("cancel") == errc::failed_precondition);
}

TEST_CASE("a cancel that comes while a point-of-no-return task runs, which then succeeds, "
          "rolls the run forward") {
  run r{load(task("a", {}, undo) + task("p", {"a"}, undo + "point_of_no_return: true")
             + task("b", {"p"}))};
  r.run_through({"p"});
  CHECK(r.accept("cancel") == lines{"cancel_requested"});
  CHECK(r.step() == lines{"rollback_started"});
  // p is in flight: nothing is compensated while it may still succeed.
  CHECK(r.step().empty());
  // It succeeds: the cancel came too late. Nothing failed and nothing was undone, so the
  // run carries on instead of stopping FAILED with no task to retry (only an abort then).
  CHECK(r.after_ok("p") == lines{"run_resumed", "task_started b#1"});
  CHECK(r.s.status == run_status::running);
  CHECK_THAT(r.s.reason, Contains("the cancel came too late"));
  CHECK(r.after_ok("b") == lines{"run_succeeded"});
  CHECK_FALSE(r.logged(event_type::task_compensating));
}

TEST_CASE("a point of no return passed during a rollback that undid something, or after a "
          "failure, waits for an operator") {
  SECTION("a task on another branch was compensated meanwhile") {
    run r{load(task("a", {}, undo) + task("p", {"a"}, "point_of_no_return: true")
               + task("x", {}, undo))};
    r.run_through({"p", "x"});
    CHECK(r.accept("cancel") == lines{"cancel_requested"});
    CHECK(r.step() == lines{"rollback_started"});
    CHECK(r.after_ok("x") == lines{"task_compensating x#1"});
    CHECK(r.after_ok("p") == lines{"run_failed"});
    CHECK_THAT(r.s.reason, Contains("a point of no return was passed during the rollback"));
  }
  SECTION("a task failed, which an operator can retry") {
    run r{load(task("a", {}, undo) + task("p", {"a"}, "point_of_no_return: true")
               + task("x", {}, once))};
    r.run_through({"p", "x"});
    CHECK(r.after_fail("x", false) == lines{"rollback_started"});
    CHECK(r.after_ok("p") == lines{"run_failed"});
    CHECK(r.accept("retry", "x") == lines{"retry_requested x"});
    CHECK(r.s.status == run_status::running);
  }
}

TEST_CASE("a task whose failure leaves what it did in doubt is undone in the rollback; a "
          "refused one is not") {
  // In doubt: unavailable (the answer was lost) or deadline_exceeded (none in time). Before,
  // such a task was left as it was: a copy whose every answer was lost stayed paused.
  SECTION("unavailable") {
    run r{load(task("a", {}, undo) + task("b", {"a"}, undo + once))};
    r.run_through({"b"});
    CHECK(r.after_fail("b") == lines{"rollback_started", "task_compensating b#1"});
    CHECK(r.at("b").in_doubt() == false); // compensating now
    CHECK(r.after_ok("b") == lines{"task_compensating a#1"});
    CHECK(r.after_ok("a") == lines{"run_rolled_back"});
    CHECK(r.at("b").status == task_status::compensated);
  }
  SECTION("deadline exceeded") {
    run r{load(task("a", {}, undo) + task("b", {"a"}, undo + once + "timeout_ms: 1000"))};
    r.run_through({"b"});
    r.now += 1000;
    CHECK(r.step() == lines{"task_failed b#1", "rollback_started", "task_compensating b#1"});
    CHECK(r.after_ok("b") == lines{"task_compensating a#1"});
    CHECK(r.after_ok("a") == lines{"run_rolled_back"});
  }
  SECTION("refused: nothing was done") {
    run r{load(task("a", {}, undo) + task("b", {"a"}, undo + once))};
    r.run_through({"b"});
    r.report("b", task_result::failure(errc::failed_precondition, "no room", false));
    CHECK(r.step() == lines{"rollback_started", "task_compensating a#1"});
    // Nor would a replay take a compensation of it.
    auto copy = r.s;
    event e;
    e.type = event_type::task_compensating;
    e.task = r.index("b");
    e.attempt = 1;
    e.at = r.now;
    e.seq = copy.seq + 1;
    CHECK(apply(copy, e));
    CHECK(r.after_ok("a") == lines{"run_rolled_back"});
    CHECK(r.at("b").status == task_status::failed);
  }
  SECTION("in doubt, on a branch of its own, while another task is undone") {
    run r{load(task("a", {}, undo) + task("x", {}, undo + once) + task("b", {"a"}, once))};
    r.run_through({"b", "x"});
    CHECK(r.after_fail("b", false) == lines{"rollback_started", "task_compensating a#1"});
    CHECK(r.after_fail("x") == lines{"task_compensating x#1"});
    r.ok("a");
    CHECK(r.after_ok("x") == lines{"run_rolled_back"});
  }
}

TEST_CASE("a point of no return whose failure is in doubt waits for an operator, whose retry "
          "finds out") {
  SECTION("in doubt") {
    run r{load(task("a", {}, undo) + task("p", {"a"}, once + "point_of_no_return: true")
               + task("b", {"p"}))};
    r.run_through({"p"});
    // It may have passed its point of no return: undoing a could leave the VM nowhere.
    CHECK(r.after_fail("p") == lines{"run_failed"});
    CHECK_FALSE(r.s.passed_point_of_no_return);
    CHECK_THAT(r.s.reason, Contains("what it did is in doubt and it is a point of no return"));
    CHECK_FALSE(r.logged(event_type::task_compensating));
    CHECK(r.accept("retry", "p") == lines{"retry_requested p"});
    CHECK(r.step() == lines{"task_started p#2"});
    CHECK(r.after_ok("p") == lines{"task_started b#1"});
    CHECK(r.s.passed_point_of_no_return);
    CHECK(r.after_ok("b") == lines{"run_succeeded"});
  }
  SECTION("refused: the run rolls back") {
    run r{load(task("a", {}, undo) + task("p", {"a"}, once + "point_of_no_return: true"))};
    r.run_through({"p"});
    r.report("p", task_result::failure(errc::aborted, "refused", false));
    CHECK(r.step() == lines{"rollback_started", "task_compensating a#1"});
    CHECK(r.after_ok("a") == lines{"run_rolled_back"});
  }
}

TEST_CASE("retry on a FAILED run restarts the task with a fresh attempt budget") {
  run r{load(task("p", {}, "point_of_no_return: true")
             + task("b", {"p"}, "retry { max_attempts: 2 initial_backoff_ms: 10 jitter: 0 }"))};
  r.run_through({"b"});
  CHECK(r.refusal("retry", "b") == errc::failed_precondition); // the run is RUNNING
  r.fail("b");
  r.now = r.advance().at(0).deadline;
  r.step();
  CHECK(r.after_fail("b") == lines{"run_failed"});
  CHECK(r.refusal("retry", "nope") == errc::not_found);
  CHECK(r.refusal("retry", "p") == errc::failed_precondition);
  CHECK_THAT(r.message, Contains("task \"p\" is SUCCEEDED"));
  CHECK(r.accept("retry", "b") == lines{"retry_requested b"});
  CHECK(r.s.status == run_status::running);
  CHECK(r.s.reason.empty());
  CHECK(r.step() == lines{"task_started b#3"});
  r.fail("b");
  auto evs = r.advance();
  CHECK(r.text(evs) == lines{"task_scheduled b#4"}); // 1 of 2 fresh attempts used
  CHECK(evs.at(0).deadline == r.now + 10);
  r.now += 10;
  CHECK(r.step() == lines{"task_started b#4"});
  CHECK(r.after_fail("b") == lines{"run_failed"});
  CHECK_THAT(r.s.reason, Contains("failed after 4 attempts (attempts exhausted)"));
}

TEST_CASE("cancel before the point of no return rolls back after attempts in flight finish") {
  run r{load(task("a", {}, undo) + task("b", {"a"}, undo) + task("c", {"b"}))};
  r.run_through({"b"});
  CHECK(r.accept("cancel") == lines{"cancel_requested"});
  CHECK(r.step() == lines{"rollback_started"});
  CHECK(r.s.reason == "cancel requested");
  CHECK(r.accept("cancel").empty());
  CHECK(r.ok("b") == lines{"task_succeeded b#1"});
  CHECK(r.step() == lines{"task_compensating b#1"});
  CHECK(r.after_ok("b") == lines{"task_compensating a#1"});
  CHECK(r.after_ok("a") == lines{"run_rolled_back"});
  CHECK(r.at("c").status == task_status::pending);
  CHECK(r.refusal("cancel") == errc::failed_precondition);
}

TEST_CASE("abort stops the run at once, compensates nothing and ignores later results") {
  run r{diamond(undo)};
  r.run_through({"b", "c"});
  CHECK(r.accept("abort") == lines{"run_aborted"});
  CHECK(r.s.status == run_status::aborted);
  CHECK(r.s.reason == "aborted by ops");
  CHECK(r.ok("b").empty());
  CHECK(r.fail("c").empty());
  CHECK(r.step().empty());
  CHECK(next_wakeup(r.s) == 0);
  CHECK(r.at("b").status == task_status::running);
  CHECK_FALSE(r.logged(event_type::task_compensating));
  CHECK(r.refusal("abort") == errc::failed_precondition);
}

TEST_CASE("pause stops new starts but records results in flight, and resume continues") {
  run r{diamond()};
  r.run_through({"b", "c"});
  CHECK(r.accept("pause") == lines{"run_paused"});
  CHECK(r.accept("pause").empty());
  CHECK(r.ok("b") == lines{"task_succeeded b#1"});
  // A failure while paused is recorded and its retry scheduled, but nothing starts.
  r.fail("c");
  auto evs = r.advance();
  REQUIRE(r.text(evs) == lines{"task_scheduled c#2"});
  r.now = evs[0].deadline + 1000;
  CHECK(r.step().empty());
  CHECK(next_wakeup(r.s) == 0);
  CHECK(r.accept("resume") == lines{"run_resumed"});
  CHECK(r.step() == lines{"task_started c#2"});
  CHECK(r.after_ok("c") == lines{"task_started d#1"});
  CHECK(r.after_ok("d") == lines{"run_succeeded"});
  CHECK(r.refusal("resume") == errc::failed_precondition);
}

TEST_CASE("a task exhausted while paused is decided only on resume") {
  run r{load(task("a", {}, once))};
  r.step();
  r.accept("pause");
  CHECK(r.after_fail("a").empty());
  CHECK(r.s.status == run_status::paused);
  r.accept("resume");
  CHECK(r.step() == lines{"rollback_started", "run_rolled_back"});
}

TEST_CASE("a gate waits, without a dispatch, until it is approved") {
  run r{load(task("a") + task("g", {"a"}, "gate: true") + task("b", {"g"}))};
  r.run_through();
  CHECK(r.log.back().type == event_type::task_scheduled);
  CHECK(r.at("g").status == task_status::scheduled);
  CHECK(next_wakeup(r.s) == 0);
  r.now += 3600000;
  CHECK(r.step().empty());
  CHECK(r.accept("approve", "g") == lines{"gate_approved g"});
  CHECK(r.step() == lines{"task_started g#1"});
  CHECK(r.after_ok("g") == lines{"task_started b#1"});
}

TEST_CASE("a gate approved before it is reached does not wait; only gates can be approved") {
  run r{load(task("a") + task("g", {"a"}, "gate: true"))};
  r.step();
  CHECK(r.refusal("approve", "a") == errc::failed_precondition);
  CHECK_THAT(r.message, Contains("task \"a\" is not a gate"));
  CHECK(r.refusal("approve", "zz") == errc::not_found);
  CHECK_THAT(r.message, Contains("no task \"zz\""));
  CHECK(r.accept("approve", "g") == lines{"gate_approved g"});
  CHECK(r.accept("approve", "g").empty());
  CHECK(r.after_ok("a") == lines{"task_started g#1"});
  CHECK_FALSE(r.logged(event_type::task_scheduled));
}

TEST_CASE("an attempt past its deadline fails, is retried, and its late result is ignored") {
  run r{load(task("a", {}, "timeout_ms: 1000"))};
  CHECK(r.advance().at(0).deadline == 2000);
  CHECK(next_wakeup(r.s) == 2000);
  REQUIRE(in_flight(r.s).size() == 1);
  CHECK(in_flight(r.s)[0].deadline == 2000);
  r.now = 1999;
  CHECK(r.step().empty());
  r.now = 2000;
  auto evs = r.advance();
  REQUIRE(r.text(evs) == lines{"task_failed a#1", "task_scheduled a#2"});
  CHECK(evs[0].code == errc::deadline_exceeded);
  CHECK(evs[0].retryable);
  CHECK_THAT(evs[0].message, Contains("timed out after 1000 ms"));
  CHECK(evs[1].deadline == 2000 + static_cast<time_ms>(retry_delay(r, "a", 1)));
  CHECK(in_flight(r.s).empty());
  CHECK(r.report("a", 1, false, task_result::success()).empty());
  CHECK(r.at("a").status == task_status::scheduled);
  r.now = evs[1].deadline;
  CHECK(r.step() == lines{"task_started a#2"});
  CHECK(r.report("a", 1, false, task_result::success()).empty());
  CHECK(r.report("a", 1, true, task_result::success()).empty());
  CHECK(r.text(r.report("a", 2, false, task_result::success())) == lines{"task_succeeded a#2"});
  CHECK(r.step() == lines{"run_succeeded"});
}

TEST_CASE("the run's retry budget stops retries") {
  run r{load("retry_budget: 1\n"
             + task("a", {}, "retry { max_attempts: 5 initial_backoff_ms: 10 jitter: 0 }"))};
  r.step();
  CHECK(r.after_fail("a") == lines{"task_scheduled a#2"});
  CHECK(r.s.retries_used == 1);
  r.now += 10;
  r.step();
  CHECK(r.after_fail("a") == lines{"rollback_started", "run_rolled_back"});
  CHECK_THAT(r.s.reason, Contains("task \"a\" failed after 2 attempts "
                                  "(run retry budget exhausted)"));
}

TEST_CASE("the task's budget_ms stops retries that would start after it") {
  run r{load(task("a", {}, "retry { max_attempts: 10 initial_backoff_ms: 100 "
                           "backoff_multiplier: 1 jitter: 0 budget_ms: 250 }"))};
  r.step(); // first attempt at 1000: no attempt may start after 1250
  CHECK(r.after_fail("a") == lines{"task_scheduled a#2"}); // 1100
  r.now = 1100;
  r.step();
  CHECK(r.after_fail("a") == lines{"task_scheduled a#3"}); // 1200
  r.now = 1200;
  r.step();
  CHECK(r.after_fail("a") == lines{"rollback_started", "run_rolled_back"}); // 1300 > 1250
  CHECK_THAT(r.s.reason, Contains("failed after 3 attempts (retry time budget exhausted)"));
}

TEST_CASE("an operator's retry restarts the budget_ms from the retry") {
  run r{load(task("p", {}, "point_of_no_return: true")
             + task("a", {"p"}, "retry { initial_backoff_ms: 100 jitter: 0 budget_ms: 150 }"))};
  r.run_through({"a"});
  r.now = 1000000;
  CHECK(r.after_fail("a") == lines{"run_failed"}); // the retry would start after the budget
  r.accept("retry", "a");
  CHECK(r.step() == lines{"task_started a#2"});
  CHECK(r.after_fail("a") == lines{"task_scheduled a#3"});
}

TEST_CASE("a SCHEDULED run activates at not_before, or rolls back if cancelled first") {
  run r{load(task("a", {}, undo)), 6000};
  CHECK(r.s.status == run_status::scheduled);
  CHECK(r.step().empty());
  CHECK(next_wakeup(r.s) == 6000);
  SECTION("activation") {
    r.now = 5999;
    CHECK(r.step().empty());
    r.now = 6000;
    CHECK(r.step() == lines{"run_activated", "task_started a#1"});
    CHECK(r.s.status == run_status::running);
  }
  SECTION("cancel") {
    r.accept("cancel");
    CHECK(r.step() == lines{"rollback_started", "run_rolled_back"});
    CHECK_FALSE(r.logged(event_type::task_started));
  }
}

namespace {

/// One run through a timeout, a gate, and a rollback with a failed compensation.
run eventful() {
  run r{load(task("a", {}, undo + "timeout_ms: 500") + task("g", {"a"}, "gate: true " + undo)
             + task("b", {"g"}, once))};
  r.step();
  r.now += 500; // a times out and is retried
  r.step();
  r.now += 1000;
  r.step();
  r.after_ok("a");
  r.accept("approve", "g");
  r.step();
  r.after_ok("g");
  r.after_fail("b");
  r.after_fail("g"); // its compensation
  r.now += 2000;
  r.step();
  r.after_ok("g");
  r.after_ok("a");
  return r;
}

} // namespace

TEST_CASE("replaying the journal with apply gives a state equal to the live one") {
  // run::advance() checks the replay after every advance; this run goes through most events.
  auto r = eventful();
  CHECK(r.s.status == run_status::rolled_back);
  CHECK(r.at("a").attempt == 2);
  CHECK(r.at("g").compensation_attempt == 2);
  check_replay(r.s, r.log);
  // decide is a function of its inputs: the same inputs give the same journal.
  auto again = eventful();
  REQUIRE(again.log.size() == r.log.size());
  for (size_t k = 0; k < r.log.size(); ++k) {
    CHECK(again.text({again.log[k]}) == r.text({r.log[k]}));
    CHECK(again.log[k].at == r.log[k].at);
    CHECK(again.log[k].deadline == r.log[k].deadline);
  }
}

TEST_CASE("apply rejects a sequence gap and leaves the state unchanged") {
  run r{load(task("a") + task("b", {"a"}))};
  r.run_through();
  REQUIRE(r.log.size() >= 4);
  run_state s;
  s.id = "r1";
  REQUIRE_FALSE(apply(s, r.log[0]));
  REQUIRE_FALSE(apply(s, r.log[1]));
  auto before = s;
  auto err = apply(s, r.log[3]);
  CHECK(code_of(err) == errc::data_loss);
  CHECK_THAT(message_of(err), Contains("expected sequence number 3"));
  CHECK(diff(before, s).empty());
  err = apply(s, r.log[1]);
  CHECK(code_of(err) == errc::data_loss);
  // A result for an attempt that is not running is refused too.
  auto wrong = r.log[2];
  wrong.attempt = 7;
  CHECK(code_of(apply(s, wrong)) == errc::data_loss);
  CHECK(diff(before, s).empty());
}

TEST_CASE("apply rejects any event after a terminal state") {
  run r{load(task("a"))};
  event e;
  e.type = event_type::run_paused;
  SECTION("SUCCEEDED") {
    r.run_through();
    REQUIRE(r.s.status == run_status::succeeded);
  }
  SECTION("ABORTED") {
    r.step();
    r.accept("abort");
    e.type = event_type::task_succeeded;
    e.task = 0;
    e.attempt = 1;
  }
  auto before = r.s;
  e.seq = r.s.seq + 1;
  auto err = apply(r.s, e);
  CHECK(code_of(err) == errc::data_loss);
  CHECK_THAT(message_of(err), Contains(std::string{"the run is already "}
                                       + to_string(before.status)));
  CHECK(diff(before, r.s).empty());
}
