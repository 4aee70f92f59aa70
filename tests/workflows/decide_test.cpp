// The run state machine driven by hand: decide()/advance() with a fake clock, executor results
// through on_result(), operator commands, and apply() replaying the journal to the live state.
#include <catch2/catch.hpp>

#include <functional>
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

const kind_catalog& kinds() {
  static const kind_catalog catalog = [] {
    kind_catalog k;
    kind_spec noop;
    noop.name = "noop";
    k.add(noop);
    return k;
  }();
  return catalog;
}

definition_ptr load(const std::string& body) {
  auto d = load_definition("name: \"wf\"\n" + body, kinds());
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

/// A run driven by hand: `now` is the fake clock, `log` the journal.
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

/// Replays the journal into a fresh state and requires it equal to the live one.
void check_replay(const run& r) {
  run_state fresh;
  fresh.id = r.s.id;
  for (auto& e : r.log) {
    auto err = apply(fresh, e);
    INFO("event " << e.seq << ": " << describe(err));
    REQUIRE_FALSE(err);
  }
  CHECK(diff(r.s, fresh).empty());
  CHECK(r.s == fresh);
}

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
  CHECK(r.s.status == run_status::running);
  auto evs = r.advance();
  CHECK(r.text(evs) == lines{"task_started a#1"});
  auto ds = dispatches_of(evs);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].task == 0);
  CHECK(ds[0].attempt == 1);
  CHECK_FALSE(ds[0].compensation);
  CHECK(ds[0].deadline == r.now + 600000);
  CHECK(next_wakeup(r.s) == r.now + 600000);
  CHECK(r.step().empty());
  r.now += 5;
  CHECK(r.ok("a") == lines{"task_succeeded a#1"});
  CHECK(r.at("a").output == "out-a");
  CHECK(r.step() == lines{"task_started b#1"});
  CHECK(r.ok("b") == lines{"task_succeeded b#1"});
  CHECK(r.step() == lines{"task_started c#1"});
  CHECK(r.ok("c") == lines{"task_succeeded c#1"});
  CHECK(r.step() == lines{"run_succeeded"});
  CHECK(r.s.status == run_status::succeeded);
  CHECK(next_wakeup(r.s) == 0);
  CHECK(r.step().empty());
  for (size_t k = 0; k < r.log.size(); ++k)
    CHECK(r.log[k].seq == k + 1);
  check_replay(r);
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
  r.ok("b");
  CHECK(r.step() == lines{"task_started d#1"});
  r.ok("d");
  CHECK(r.step() == lines{"run_succeeded"});
  check_replay(r);
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
  r.now = evs[0].deadline;
  CHECK(r.step() == lines{"task_started a#3"});
  r.ok("a");
  CHECK(r.step() == lines{"run_succeeded"});
  check_replay(r);
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
  r.ok("b");
  CHECK(r.step() == lines{"task_compensating a#1"});
  r.ok("a");
  CHECK(r.step() == lines{"run_rolled_back"});
  CHECK(r.s.status == run_status::rolled_back);
  for (auto id : {"a", "b", "c", "d"})
    CHECK(r.at(id).status == task_status::compensated);
  CHECK(r.at("e").status == task_status::failed);
  check_replay(r);
}

TEST_CASE("tasks without a compensation are skipped in a rollback") {
  run r{load(task("a", {}, undo) + task("b", {"a"}) + task("c", {"b"}, undo)
             + task("d", {"c"}, once))};
  r.run_through({"d"});
  r.fail("d", false);
  CHECK(r.step() == lines{"rollback_started", "task_compensating c#1"});
  r.ok("c");
  CHECK(r.step() == lines{"task_compensating a#1"});
  r.ok("a");
  CHECK(r.step() == lines{"run_rolled_back"});
  CHECK(r.at("b").status == task_status::succeeded);
  check_replay(r);
}

TEST_CASE("a task in flight when the rollback starts settles before its dependency is undone") {
  run r{diamond(undo)};
  r.run_through({"b", "c"});
  r.fail("b", false);
  CHECK(r.step() == lines{"rollback_started"}); // c still runs, so a waits
  CHECK(r.ok("c") == lines{"task_succeeded c#1"});
  CHECK(r.step() == lines{"task_compensating c#1"});
  r.ok("c");
  CHECK(r.step() == lines{"task_compensating a#1"});
  r.ok("a");
  CHECK(r.step() == lines{"run_rolled_back"});
  check_replay(r);
}

TEST_CASE("a failing compensation is retried and, exhausted, leaves the run FAILED") {
  run r{load(task("a", {}, "compensation { kind: \"noop\" retry { max_attempts: 2 } }")
             + task("b", {"a"}, once))};
  r.run_through({"b"});
  r.fail("b");
  CHECK(r.step() == lines{"rollback_started", "task_compensating a#1"});
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
  r.fail("a");
  CHECK(r.step() == lines{"run_failed"});
  CHECK(r.s.status == run_status::failed);
  CHECK_THAT(r.s.reason,
             Contains("compensation of task \"a\" failed after 2 attempts (attempts exhausted)"));
  CHECK(next_wakeup(r.s) == 0);
  CHECK(r.step().empty());
  // An operator's retry gives the compensation a fresh set of attempts.
  CHECK(r.accept("retry", "a") == lines{"retry_requested a undo"});
  CHECK(r.s.status == run_status::rolling_back);
  CHECK(r.step() == lines{"task_compensating a#3"});
  r.ok("a");
  CHECK(r.step() == lines{"run_rolled_back"});
  check_replay(r);
}

TEST_CASE("after the point of no return a failure fails the run and compensates nothing") {
  run r{load(task("a", {}, undo) + task("p", {"a"}, undo + "point_of_no_return: true")
             + task("b", {"p"}, once))};
  r.run_through({"b"});
  CHECK(r.s.passed_point_of_no_return);
  r.fail("b");
  CHECK(r.step() == lines{"run_failed"});
  CHECK(r.s.status == run_status::failed);
  CHECK_THAT(r.s.reason, Contains("point of no return"));
  CHECK_FALSE(r.logged(event_type::rollback_started));
  CHECK_FALSE(r.logged(event_type::task_compensating));
  CHECK(r.refusal("cancel") == errc::failed_precondition);
  check_replay(r);
}

TEST_CASE("cancel after the point of no return is refused naming the task") {
  run r{load(task("p", {}, "point_of_no_return: true") + task("b", {"p"}))};
  r.run_through({"b"});
  CHECK(r.refusal("cancel") == errc::failed_precondition);
  CHECK_THAT(r.message, Contains("point of no return at task \"p\""));
  CHECK_FALSE(r.s.cancel_requested);
  r.ok("b");
  CHECK(r.step() == lines{"run_succeeded"});
}

TEST_CASE("retry on a FAILED run restarts the task with a fresh attempt budget") {
  run r{load(task("p", {}, "point_of_no_return: true")
             + task("b", {"p"}, "retry { max_attempts: 2 initial_backoff_ms: 10 jitter: 0 }"))};
  r.run_through({"b"});
  CHECK(r.refusal("retry", "b") == errc::failed_precondition); // the run is RUNNING
  r.fail("b");
  r.now = r.advance().at(0).deadline;
  r.step();
  r.fail("b");
  CHECK(r.step() == lines{"run_failed"});
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
  r.fail("b");
  CHECK(r.step() == lines{"run_failed"});
  CHECK_THAT(r.s.reason, Contains("failed after 4 attempts (attempts exhausted)"));
  r.accept("retry", "b");
  r.step();
  r.ok("b");
  CHECK(r.step() == lines{"run_succeeded"});
  check_replay(r);
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
  r.ok("b");
  CHECK(r.step() == lines{"task_compensating a#1"});
  r.ok("a");
  CHECK(r.step() == lines{"run_rolled_back"});
  CHECK(r.at("c").status == task_status::pending);
  CHECK(r.refusal("cancel") == errc::failed_precondition);
  check_replay(r);
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
  check_replay(r);
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
  r.ok("c");
  CHECK(r.step() == lines{"task_started d#1"});
  r.ok("d");
  CHECK(r.step() == lines{"run_succeeded"});
  CHECK(r.refusal("resume") == errc::failed_precondition);
  check_replay(r);
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
  CHECK(r.at("g").gate_approved);
  auto evs = r.advance();
  CHECK(r.text(evs) == lines{"task_started g#1"});
  CHECK(dispatches_of(evs).size() == 1);
  r.ok("g");
  CHECK(r.step() == lines{"task_started b#1"});
  check_replay(r);
}

TEST_CASE("a gate approved before it is reached does not wait") {
  run r{load(task("a") + task("g", {"a"}, "gate: true"))};
  r.step();
  CHECK(r.accept("approve", "g") == lines{"gate_approved g"});
  CHECK(r.accept("approve", "g").empty());
  r.ok("a");
  CHECK(r.step() == lines{"task_started g#1"});
  CHECK_FALSE(r.logged(event_type::task_scheduled));
  check_replay(r);
}

TEST_CASE("approving a task that is not a gate, or no task, is refused") {
  run r{load(task("a") + task("g", {"a"}, "gate: true"))};
  CHECK(r.refusal("approve", "a") == errc::failed_precondition);
  CHECK_THAT(r.message, Contains("task \"a\" is not a gate"));
  CHECK(r.refusal("approve", "zz") == errc::not_found);
  CHECK_THAT(r.message, Contains("no task \"zz\""));
}

TEST_CASE("an attempt past its deadline fails with deadline_exceeded and is retried") {
  run r{load(task("a", {}, "timeout_ms: 1000"))};
  auto evs = r.advance();
  CHECK(evs.at(0).deadline == 2000);
  CHECK(next_wakeup(r.s) == 2000);
  REQUIRE(in_flight(r.s).size() == 1);
  CHECK(in_flight(r.s)[0].deadline == 2000);
  r.now = 1999;
  CHECK(r.step().empty());
  r.now = 2000;
  evs = r.advance();
  REQUIRE(r.text(evs) == lines{"task_failed a#1", "task_scheduled a#2"});
  CHECK(evs[0].code == errc::deadline_exceeded);
  CHECK(evs[0].retryable);
  CHECK_THAT(evs[0].message, Contains("timed out after 1000 ms"));
  CHECK(evs[1].deadline == 2000 + static_cast<time_ms>(retry_delay(r, "a", 1)));
  CHECK(in_flight(r.s).empty());
  check_replay(r);
}

TEST_CASE("a late result of a timed-out attempt is ignored") {
  run r{load(task("a", {}, "timeout_ms: 1000"))};
  r.step();
  r.now = 2000;
  auto due = r.advance().at(1).deadline;
  CHECK(r.report("a", 1, false, task_result::success()).empty());
  CHECK(r.at("a").status == task_status::scheduled);
  r.now = due;
  CHECK(r.step() == lines{"task_started a#2"});
  CHECK(r.report("a", 1, false, task_result::success()).empty());
  CHECK(r.report("a", 1, true, task_result::success()).empty());
  CHECK(r.text(r.report("a", 2, false, task_result::success())) == lines{"task_succeeded a#2"});
  CHECK(r.step() == lines{"run_succeeded"});
  check_replay(r);
}

TEST_CASE("the run's retry budget stops retries") {
  run r{load("retry_budget: 1\n"
             + task("a", {}, "retry { max_attempts: 5 initial_backoff_ms: 10 jitter: 0 }"))};
  r.step();
  r.fail("a");
  CHECK(r.step() == lines{"task_scheduled a#2"});
  CHECK(r.s.retries_used == 1);
  r.now += 10;
  r.step();
  r.fail("a");
  CHECK(r.step() == lines{"rollback_started", "run_rolled_back"});
  CHECK_THAT(r.s.reason, Contains("task \"a\" failed after 2 attempts "
                                  "(run retry budget exhausted)"));
  check_replay(r);
}

TEST_CASE("the task's budget_ms stops retries that would start after it") {
  run r{load(task("a", {}, "retry { max_attempts: 10 initial_backoff_ms: 100 "
                           "backoff_multiplier: 1 jitter: 0 budget_ms: 250 }"))};
  r.step(); // first attempt at 1000: no attempt may start after 1250
  r.fail("a");
  CHECK(r.step() == lines{"task_scheduled a#2"}); // 1100
  r.now = 1100;
  r.step();
  r.fail("a");
  CHECK(r.step() == lines{"task_scheduled a#3"}); // 1200
  r.now = 1200;
  r.step();
  r.fail("a");
  CHECK(r.step() == lines{"rollback_started", "run_rolled_back"}); // 1300 > 1250
  CHECK_THAT(r.s.reason, Contains("failed after 3 attempts (retry time budget exhausted)"));
  check_replay(r);
}

TEST_CASE("a SCHEDULED run activates at not_before") {
  run r{load(task("a")), 6000};
  CHECK(r.s.status == run_status::scheduled);
  CHECK(r.step().empty());
  CHECK(next_wakeup(r.s) == 6000);
  r.now = 5999;
  CHECK(r.step().empty());
  r.now = 6000;
  CHECK(r.step() == lines{"run_activated", "task_started a#1"});
  CHECK(r.s.status == run_status::running);
  check_replay(r);
}

TEST_CASE("a cancelled SCHEDULED run rolls back without starting anything") {
  run r{load(task("a", {}, undo)), 6000};
  r.accept("cancel");
  CHECK(r.step() == lines{"rollback_started", "run_rolled_back"});
  CHECK_FALSE(r.logged(event_type::task_started));
  check_replay(r);
}

namespace {

/// One run through retries, a timeout, a gate, pause and a rollback, checking after every
/// step that replaying the journal gives the live state.
run eventful() {
  run r{load(task("a", {}, undo + "timeout_ms: 500") + task("g", {"a"}, "gate: true " + undo)
             + task("b", {"g"}, undo) + task("c", {"g"}) + task("d", {"b", "c"}, once))};
  auto steps = std::vector<std::function<void()>>{
    [&] { r.step(); },
    [&] { r.now += 500; r.step(); }, // a times out
    [&] { r.now += 1000; r.step(); },
    [&] { r.ok("a"); r.step(); },
    [&] { r.accept("approve", "g"); r.step(); },
    [&] { r.ok("g"); r.step(); },
    [&] {
      r.accept("pause");
      r.ok("b");
      r.ok("c");
      r.step();
    },
    [&] { r.accept("resume"); r.step(); },
    [&] { r.now += 7; r.fail("d"); r.step(); },
    [&] { r.fail("b"); r.step(); },
    [&] { r.now += 2000; r.step(); },
    [&] { r.ok("b"); r.step(); },
    [&] { r.ok("g"); r.step(); },
    [&] { r.ok("a"); r.step(); },
  };
  for (auto& s : steps) {
    s();
    check_replay(r);
  }
  return r;
}

} // namespace

TEST_CASE("replaying the journal with apply gives a state equal to the live one") {
  auto r = eventful();
  CHECK(r.s.status == run_status::rolled_back);
  CHECK(r.at("b").compensation_attempt == 2);
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
  SECTION("SUCCEEDED") {
    run r{load(task("a"))};
    r.run_through();
    r.step();
    REQUIRE(r.s.status == run_status::succeeded);
    auto before = r.s;
    event e;
    e.seq = r.s.seq + 1;
    e.type = event_type::run_paused;
    auto err = apply(r.s, e);
    CHECK(code_of(err) == errc::data_loss);
    CHECK_THAT(message_of(err), Contains("already SUCCEEDED"));
    CHECK(diff(before, r.s).empty());
  }
  SECTION("ABORTED") {
    run r{load(task("a"))};
    r.step();
    r.accept("abort");
    REQUIRE(r.s.status == run_status::aborted);
    event e;
    e.seq = r.s.seq + 1;
    e.type = event_type::task_succeeded;
    e.task = 0;
    e.attempt = 1;
    auto err = apply(r.s, e);
    CHECK(code_of(err) == errc::data_loss);
    CHECK_THAT(message_of(err), Contains("already ABORTED"));
  }
}
