// The journal codec and the journal reader, on events produced by the real decision code:
// a definition loaded from text format, runs driven through emit/advance/on_result and the
// operator commands, their transitions encoded as the journal actor would write them.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/util/message_differencer.h>

#include "common/errc.hpp"
#include "ferry/v1/journal.pb.h"
#include "persistence/codec.hpp"
#include "persistence/journal_export.hpp"
#include "persistence/journal_reader.hpp"
#include "persistence/store.hpp"
#include "workflows/apply.hpp"
#include "workflows/commands.hpp"
#include "workflows/decide.hpp"
#include "workflows/definition_codec.hpp"
#include "tests/support/same_export.hpp"
#include "workflows/run_state.hpp"

using namespace ferry;

namespace {

// -- fixtures ---------------------------------------------------------------------------------

kind_catalog test_kinds() {
  kind_catalog kinds;
  kind_spec noop;
  noop.name = "noop";
  noop.open_params = true;
  kinds.add(noop);
  kind_spec fail;
  fail.name = "fail";
  fail.open_params = true;
  kinds.add(fail);
  return kinds;
}

constexpr const char* flip_text = R"pb(
  name: "flip-vm"
  version: 3
  labels { key: "vm" value: "vm-17" }
  labels { key: "zone" value: "z1" }
  labels { key: "host" value: "h4" }
  default_retry { max_attempts: 3 initial_backoff_ms: 100 max_backoff_ms: 2000 jitter: 0.2 }
  default_timeout_ms: 60000
  tasks {
    id: "prepare"
    kind: "noop"
    params {
      fields { key: "size" value { number_value: 8 } }
      fields { key: "label" value { string_value: "disk-a" } }
      fields { key: "flags" value { list_value { values { bool_value: true } values { string_value: "x" } } } }
      fields { key: "nested" value { struct_value { fields { key: "b" value { number_value: 2 } } fields { key: "a" value { number_value: 1 } } } } }
    }
    compensation {
      kind: "noop"
      params { fields { key: "undo" value { bool_value: true } } }
      retry { max_attempts: 3 initial_backoff_ms: 50 }
      timeout_ms: 1000
    }
  }
  tasks {
    id: "copy"
    kind: "noop"
    depends_on: "prepare"
    timeout_ms: 5000
    compensation { kind: "noop" }
  }
  tasks { id: "approve" kind: "noop" depends_on: "copy" gate: true }
  tasks { id: "switch" kind: "noop" depends_on: "approve" point_of_no_return: true }
  tasks {
    id: "cleanup"
    kind: "fail"
    depends_on: "switch"
    retry { max_attempts: 1 }
    description: "always fails the first time"
  }
)pb";

constexpr const char* other_text = R"pb(
  name: "other"
  tasks { id: "prepare" kind: "noop" }
  tasks { id: "elsewhere" kind: "noop" depends_on: "prepare" }
)pb";

definition_ptr load(const char* text) {
  auto def = load_definition(text, test_kinds(), definition_format::text);
  INFO(describe(def ? caf::error{} : def.error()));
  REQUIRE(def);
  return *def;
}

definition_ptr flip_def() {
  static auto def = load(flip_text);
  return def;
}

definition_ptr other_def() {
  static auto def = load(other_text);
  return def;
}

/// A lookup that knows exactly the given definitions.
definition_lookup lookup_of(std::vector<definition_ptr> defs) {
  return [defs](const std::string& digest) -> caf::expected<definition_ptr> {
    for (auto& d : defs)
      if (d->digest == digest)
        return d;
    return make_error(errc::not_found, "definition " + digest + ": unknown");
  };
}

definition_lookup knows_nothing() {
  return lookup_of({});
}

/// Drives one run and keeps its transitions as the engine would commit them: each command
/// (with the advance() that follows it) is one transition of one or more events.
struct driver {
  run_state s;
  std::vector<std::vector<event>> transitions;
  /// The state after each transition.
  std::vector<run_state> after;
  std::vector<event> all;

  void step(const std::function<caf::error(std::vector<event>&)>& f) {
    std::vector<event> out;
    auto err = f(out);
    INFO("run " << s.id << ": " << describe(err));
    REQUIRE(!err);
    if (out.empty())
      return;
    transitions.push_back(out);
    after.push_back(s);
    all.insert(all.end(), out.begin(), out.end());
  }

  void start(run_id id, definition_ptr def, time_ms at, uint64_t seed, time_ms not_before) {
    s = run_state{};
    s.id = std::move(id);
    step([&](std::vector<event>& out) -> caf::error {
      event e;
      e.type = event_type::run_started;
      e.at = at;
      e.def = def;
      e.seed = seed;
      e.not_before = not_before;
      e.actor = "api";
      if (auto err = emit(s, e, out))
        return err;
      return advance(s, at, out);
    });
  }

  void tick(time_ms now) {
    step([&](std::vector<event>& out) { return advance(s, now, out); });
  }

  void result(const std::string& task, uint32_t attempt, bool compensation,
              const task_result& r, time_ms now) {
    auto i = s.def->index_of(task);
    REQUIRE(i >= 0);
    step([&](std::vector<event>& out) -> caf::error {
      if (auto err = on_result(s, static_cast<uint32_t>(i), attempt, compensation, r, now, out))
        return err;
      return advance(s, now, out);
    });
  }

  template <class Command>
  void command(Command cmd, time_ms now) {
    step([&](std::vector<event>& out) -> caf::error {
      if (auto err = cmd(s, out))
        return err;
      return advance(s, now, out);
    });
  }

  const task_state& task(const std::string& id) const {
    return s.tasks.at(static_cast<size_t>(s.def->index_of(id)));
  }
};

/// A run that retries a task, pauses, fails for good, then rolls back with one failed
/// compensation attempt. Snapshots are taken mid-run, while rolling back, and at the end.
struct rolled_back_run {
  driver d;
  run_state mid_run;
  run_state paused;
  run_state rolling_back;
  run_state compensation_waiting;

  rolled_back_run() {
    auto def = flip_def();
    // Scheduled at 1000 for 2000.
    d.start("run-a", def, 1000, 42, 2000);
    REQUIRE(d.s.status == run_status::scheduled);
    d.tick(2000);
    REQUIRE(d.task("prepare").status == task_status::running);
    d.result("prepare", 1, false, task_result::success("prepared disk-a"), 2100);
    REQUIRE(d.task("copy").status == task_status::running);
    d.result("copy", 1, false, task_result::failure(errc::unavailable, "disk busy", true),
             2200);
    REQUIRE(d.task("copy").status == task_status::scheduled);
    REQUIRE(d.task("copy").not_before > 2200);
    mid_run = d.s;
    d.tick(20000);
    REQUIRE(d.task("copy").status == task_status::running);
    REQUIRE(d.task("copy").attempt == 2);
    d.command([](run_state& s, std::vector<event>& out) {
      return pause(s, "alice", 20100, out);
    }, 20100);
    REQUIRE(d.s.status == run_status::paused);
    paused = d.s;
    d.command([](run_state& s, std::vector<event>& out) {
      return resume(s, "alice", 20200, out);
    }, 20200);
    d.result("copy", 2, false,
             task_result::failure(errc::internal, "checksum mismatch", false), 20300);
    REQUIRE(d.s.status == run_status::rolling_back);
    REQUIRE(d.task("prepare").status == task_status::compensating);
    rolling_back = d.s;
    d.result("prepare", 1, true, task_result::failure(errc::unavailable, "undo busy", true),
             20400);
    REQUIRE(d.task("prepare").status == task_status::compensating);
    REQUIRE(d.task("prepare").deadline == 0);
    compensation_waiting = d.s;
    d.tick(40000);
    REQUIRE(d.task("prepare").compensation_attempt == 2);
    d.result("prepare", 2, true, task_result::success("undone"), 40100);
    REQUIRE(d.s.status == run_status::rolled_back);
  }
};

/// A run that passes its point of no return, fails, is retried by an operator and succeeds.
struct failed_run {
  driver d;
  run_state failed;

  failed_run() {
    auto def = flip_def();
    d.start("run-b", def, 5000, 7, 0);
    REQUIRE(d.s.status == run_status::running);
    d.result("prepare", 1, false, task_result::success("p"), 5100);
    d.result("copy", 1, false, task_result::success("copied 8 GiB"), 5200);
    REQUIRE(d.task("approve").status == task_status::scheduled);
    d.command([](run_state& s, std::vector<event>& out) {
      return approve(s, "approve", "bob", 5300, out);
    }, 5300);
    REQUIRE(d.task("approve").status == task_status::running);
    d.result("approve", 1, false, task_result::success(), 5400);
    d.result("switch", 1, false, task_result::success("switched"), 5500);
    REQUIRE(d.s.passed_point_of_no_return);
    d.result("cleanup", 1, false,
             task_result::failure(errc::permission_denied, "no access to /srv", true), 5600);
    REQUIRE(d.s.status == run_status::failed);
    failed = d.s;
    d.command([](run_state& s, std::vector<event>& out) {
      return retry(s, "cleanup", "carol", 6000, out);
    }, 6000);
    REQUIRE(d.task("cleanup").status == task_status::running);
    d.result("cleanup", 2, false, task_result::success("cleaned"), 6100);
    REQUIRE(d.s.status == run_status::succeeded);
  }
};

/// A run cancelled by an operator, whose running task then times out, and which is aborted
/// while a compensation waits.
struct aborted_run {
  driver d;

  aborted_run() {
    auto def = flip_def();
    d.start("run-c", def, 100, 9, 0);
    d.result("prepare", 1, false, task_result::success("p"), 200);
    d.command([](run_state& s, std::vector<event>& out) {
      return cancel(s, "dave", 300, out);
    }, 300);
    REQUIRE(d.s.status == run_status::rolling_back);
    REQUIRE(d.s.cancel_requested);
    // copy's deadline is 200 + 5000.
    d.tick(6000);
    // What the copy did is in doubt: it is undone first, then what it depends on.
    REQUIRE(d.task("copy").status == task_status::compensating);
    REQUIRE(d.task("copy").code == errc::deadline_exceeded);
    REQUIRE(d.task("prepare").status == task_status::succeeded);
    d.command([](run_state& s, std::vector<event>& out) {
      return abort(s, "erin", "operator gave up", 6100, out);
    }, 6100);
    REQUIRE(d.s.status == run_status::aborted);
  }
};

// -- comparisons ------------------------------------------------------------------------------

/// The first field in which two events differ, or empty.
std::string event_diff(const event& a, const event& b) {
  auto field = [](const char* name, auto x, auto y) -> std::string {
    if (x == y)
      return {};
    return std::string{name} + " " + std::to_string(x) + " != " + std::to_string(y);
  };
  std::string d;
  auto check = [&d](std::string x) {
    if (d.empty())
      d = std::move(x);
  };
  check(field("seq", a.seq, b.seq));
  check(field("at", a.at, b.at));
  if (a.type != b.type)
    check(std::string{"type "} + to_string(a.type) + " != " + to_string(b.type));
  check(field("task", a.task, b.task));
  check(field("attempt", a.attempt, b.attempt));
  check(field("deadline", a.deadline, b.deadline));
  if (a.code != b.code)
    check(std::string{"code "} + to_string(a.code) + " != " + to_string(b.code));
  if (a.message != b.message)
    check("message \"" + a.message + "\" != \"" + b.message + "\"");
  check(field("retryable", a.retryable, b.retryable));
  if (a.output != b.output)
    check("output \"" + a.output + "\" != \"" + b.output + "\"");
  if (a.actor != b.actor)
    check("actor \"" + a.actor + "\" != \"" + b.actor + "\"");
  check(field("compensation", a.compensation, b.compensation));
  if (!a.def != !b.def)
    check("definition present " + std::to_string(!!a.def) + " != " + std::to_string(!!b.def));
  else if (a.def && a.def->digest != b.def->digest)
    check("definition digest " + a.def->digest + " != " + b.def->digest);
  check(field("seed", a.seed, b.seed));
  check(field("not_before", a.not_before, b.not_before));
  if (!d.empty())
    d = "event " + std::to_string(a.seq) + " (" + to_string(a.type) + "): " + d;
  return d;
}

void check_same_events(const std::vector<event>& expected, const std::vector<event>& actual) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i)
    CHECK(event_diff(expected[i], actual[i]) == "");
}

std::vector<event> decoded(const std::string& bytes, definition_ptr def,
                           const definition_lookup& lookup) {
  auto evs = decode_events(bytes, std::move(def), lookup);
  INFO(describe(evs ? caf::error{} : evs.error()));
  REQUIRE(evs);
  return *evs;
}

run_state round_trip(const run_state& s, const definition_lookup& lookup) {
  auto bytes = encode_checkpoint(s);
  auto back = decode_checkpoint(bytes, lookup);
  INFO(describe(back ? caf::error{} : back.error()));
  REQUIRE(back);
  return *back;
}

/// The state after folding exactly the first `n` events of `d` from scratch.
run_state fold(const driver& d, size_t n) {
  run_state s;
  s.id = d.s.id;
  for (size_t i = 0; i < n; ++i) {
    auto err = apply(s, d.all[i]);
    INFO(describe(err));
    REQUIRE(!err);
  }
  return s;
}

/// Writes every transition of `d` to `st` as the journal actor does: one record per
/// transition, the definition with the first (RUN_STARTED names it by digest). Without
/// `with_definition`, the definition is left out: a journal that lost it.
void journal(store& st, const driver& d, bool with_definition = true) {
  for (size_t i = 0; i < d.transitions.size(); ++i) {
    transition_record r;
    r.run = d.s.id;
    r.first_seq = d.transitions[i].front().seq;
    r.events = encode_events(*d.s.def, d.transitions[i], run_definition::by_digest);
    r.checkpoint = encode_checkpoint(d.after[i]);
    if (i == 0 && with_definition) {
      r.definition_digest = d.s.def->digest;
      r.definition = d.s.def->encoded;
    }
    auto err = st.write({&r}, false);
    INFO(describe(err));
    REQUIRE(!err);
  }
}

} // namespace

// -- the runs themselves ----------------------------------------------------------------------

TEST_CASE("the test runs produce events that set every field the codec carries",
          "[codec]") {
  // Guards the round-trip tests below: a field that no event sets would pass them vacuously.
  rolled_back_run a;
  failed_run b;
  aborted_run c;
  std::vector<event> all;
  for (auto* d : {&a.d, &b.d, &c.d})
    all.insert(all.end(), d->all.begin(), d->all.end());
  auto any = [&](auto pred) { return std::any_of(all.begin(), all.end(), pred); };
  CHECK(any([](const event& e) { return e.task != no_task && e.task > 0; }));
  CHECK(any([](const event& e) { return e.task == 0; }));
  CHECK(any([](const event& e) { return e.attempt > 1; }));
  CHECK(any([](const event& e) { return e.deadline != 0; }));
  CHECK(any([](const event& e) { return e.code == errc::deadline_exceeded; }));
  CHECK(any([](const event& e) { return e.code == errc::permission_denied; }));
  CHECK(any([](const event& e) { return !e.message.empty(); }));
  CHECK(any([](const event& e) { return e.retryable; }));
  CHECK(any([](const event& e) { return e.code != errc::ok && !e.retryable; }));
  CHECK(any([](const event& e) { return !e.output.empty(); }));
  CHECK(any([](const event& e) { return !e.actor.empty(); }));
  CHECK(any([](const event& e) { return e.compensation; }));
  CHECK(any([](const event& e) { return e.seed != 0 && e.not_before != 0; }));
  for (auto t : {event_type::run_started, event_type::run_activated, event_type::task_scheduled,
                 event_type::task_started, event_type::task_succeeded,
                 event_type::task_failed, event_type::task_compensating,
                 event_type::task_compensated, event_type::compensation_failed,
                 event_type::run_paused, event_type::run_resumed,
                 event_type::cancel_requested, event_type::gate_approved,
                 event_type::retry_requested, event_type::rollback_started,
                 event_type::run_succeeded, event_type::run_rolled_back,
                 event_type::run_failed, event_type::run_aborted}) {
    INFO("event type " << to_string(t));
    CHECK(any([t](const event& e) { return e.type == t; }));
  }
}

// -- events -----------------------------------------------------------------------------------

TEST_CASE("encoding and decoding a transition's events preserves every field", "[codec]") {
  rolled_back_run a;
  failed_run b;
  aborted_run c;
  auto def = flip_def();
  for (auto* d : {&a.d, &b.d, &c.d}) {
    INFO("run " << d->s.id);
    for (auto& tr : d->transitions) {
      INFO("transition from event " << tr.front().seq);
      auto bytes = encode_events(*def, tr);
      // Later transitions are decoded with the run's definition, as recovery does.
      check_same_events(tr, decoded(bytes, def, lookup_of({def})));
    }
  }
}

TEST_CASE("a run's events decode in one batch without a definition to start from",
          "[codec]") {
  rolled_back_run a;
  auto def = flip_def();
  auto bytes = encode_events(*def, a.d.all);
  SECTION("the lookup knows the definition: RUN_STARTED carries the one it returns") {
    auto evs = decoded(bytes, nullptr, lookup_of({def}));
    check_same_events(a.d.all, evs);
    CHECK(evs.front().def == def);
  }
  SECTION("the lookup knows nothing: the definition is decoded from RUN_STARTED itself") {
    auto evs = decoded(bytes, nullptr, knows_nothing());
    check_same_events(a.d.all, evs);
    auto& started = evs.front();
    REQUIRE(started.type == event_type::run_started);
    REQUIRE(started.def);
    CHECK(started.def->digest == def->digest);
    CHECK(started.def->encoded == def->encoded);
    CHECK(started.def->name == "flip-vm");
    CHECK(started.def->version == 3u);
    CHECK(started.def->labels == def->labels);
    REQUIRE(started.def->tasks.size() == def->tasks.size());
    for (size_t i = 0; i < def->tasks.size(); ++i) {
      auto& x = def->tasks[i];
      auto& y = started.def->tasks[i];
      INFO("task " << x.id);
      CHECK(y.id == x.id);
      CHECK(y.kind == x.kind);
      CHECK(y.parameters == x.parameters);
      CHECK(y.depends_on == x.depends_on);
      CHECK(y.deps == x.deps);
      CHECK(y.effective_timeout_ms == x.effective_timeout_ms);
      CHECK(y.retry.max_attempts == x.retry.max_attempts);
      CHECK(y.gate == x.gate);
      CHECK(y.point_of_no_return == x.point_of_no_return);
      CHECK(y.compensation.has_value() == x.compensation.has_value());
      CHECK(y.description == x.description);
    }
    CHECK(started.seed == 42u);
    CHECK(started.not_before == 2000);
  }
  SECTION("a null lookup is allowed too") {
    auto evs = decoded(bytes, nullptr, definition_lookup{});
    check_same_events(a.d.all, evs);
  }
}

TEST_CASE("in the journal, RUN_STARTED names its definition by digest only", "[codec]") {
  rolled_back_run a;
  auto def = flip_def();
  auto& first = a.d.transitions.front();
  REQUIRE(first.front().type == event_type::run_started);
  auto embedded = encode_events(*def, first);
  auto by_digest = encode_events(*def, first, run_definition::by_digest);
  CHECK(by_digest.size() + def->encoded.size() <= embedded.size());
  // Events without a definition to carry are the same either way.
  auto& later = a.d.transitions.back();
  CHECK(encode_events(*def, later, run_definition::by_digest) == encode_events(*def, later));
  SECTION("the lookup gives it back") {
    auto evs = decoded(by_digest, nullptr, lookup_of({def}));
    check_same_events(first, evs);
    CHECK(evs.front().def == def);
  }
  SECTION("without it the run cannot be read: data_loss naming the digest") {
    for (auto& lookup : {knows_nothing(), definition_lookup{}}) {
      auto evs = decode_events(by_digest, nullptr, lookup);
      REQUIRE(!evs);
      CHECK(code_of(evs.error()) == errc::data_loss);
      CHECK_THAT(message_of(evs.error()),
                 Catch::Contains("event 1: RUN_STARTED names definition \"" + def->digest
                                 + "\", which is not in the event"));
    }
  }
}

TEST_CASE("a RUN_STARTED whose digest is not its definition's is data_loss", "[codec]") {
  rolled_back_run a;
  auto def = flip_def();
  auto forged = std::make_shared<definition>(*def);
  forged->digest = std::string(64, '0');
  auto evs = a.d.transitions.front();
  evs.front().def = forged;
  auto bytes = encode_events(*forged, evs);
  auto back = decode_events(bytes, nullptr, knows_nothing());
  REQUIRE(!back);
  CHECK(code_of(back.error()) == errc::data_loss);
  CHECK_THAT(message_of(back.error()),
             Catch::Contains("definition_digest \"" + forged->digest
                             + "\" is not its definition's (\"" + def->digest + "\")"));
}

TEST_CASE("an export carries each run's definition; its import keeps it once", "[codec]") {
  rolled_back_run a;
  failed_run b;
  auto def = flip_def();
  std::shared_ptr<store> st{make_memory_store()};
  journal(*st, a.d);
  journal(*st, b.d);
  std::stringstream out;
  auto n = export_jsonl(*st, {}, out);
  INFO((n ? "" : describe(n.error())));
  REQUIRE(n);
  CHECK(*n == a.d.all.size() + b.d.all.size());
  auto text = out.str();
  // One definition per run, in its RUN_STARTED line.
  size_t definitions = 0;
  for (size_t at = 0; (at = text.find("\"definition\":{\"name\":\"flip-vm\"", at))
                      != std::string::npos;
       ++at)
    ++definitions;
  CHECK(definitions == 2);
  std::shared_ptr<store> copy{make_memory_store()};
  std::stringstream in{text};
  auto imported = import_jsonl(in, *copy);
  INFO((imported ? "" : describe(imported.error())));
  REQUIRE(imported);
  CHECK(*imported == *n);
  // Stored as the engine stores it: the first record names the definition by digest.
  std::string first_record;
  REQUIRE(!copy->for_each_event_batch("run-a", 1, [&](uint64_t, std::string_view bytes) {
    first_record = std::string{bytes};
    return false;
  }));
  auto alone = decode_events(first_record, nullptr, knows_nothing());
  REQUIRE(!alone);
  CHECK(code_of(alone.error()) == errc::data_loss);
  auto stored = copy->definition(def->digest);
  REQUIRE(stored);
  CHECK(*stored == def->encoded);
  journal_reader reader{copy};
  auto replayed = reader.replay("run-a");
  REQUIRE(replayed);
  CHECK(diff(a.d.s, *replayed) == "");
  // And it exports to the same lines.
  std::stringstream again;
  REQUIRE(export_jsonl(*copy, {}, again));
  CHECK(test::export_difference(again.str(), text) == "");
}

TEST_CASE("a journal that lost a run's definition is data_loss to read and to export",
          "[codec]") {
  rolled_back_run a;
  auto def = flip_def();
  std::shared_ptr<store> st{make_memory_store()};
  journal(*st, a.d, false);
  journal_reader reader{st};
  auto evs = reader.events("run-a", 1);
  REQUIRE(!evs);
  CHECK(code_of(evs.error()) == errc::data_loss);
  CHECK_THAT(message_of(evs.error()), Catch::Contains(def->digest));
  std::stringstream out;
  auto n = export_jsonl(*st, {}, out);
  REQUIRE(!n);
  CHECK(code_of(n.error()) == errc::data_loss);
  CHECK_THAT(message_of(n.error()),
             Catch::Contains("export: run \"run-a\": event 1: its definition " + def->digest
                             + " is not in the journal"));
}

TEST_CASE("a slice of events encodes as the same events in a vector", "[codec]") {
  failed_run b;
  auto def = flip_def();
  auto& all = b.d.all;
  REQUIRE(all.size() > 6);
  std::vector<event> middle(all.begin() + 2, all.begin() + 6);
  CHECK(encode_events(*def, all.data() + 2, 4) == encode_events(*def, middle));
  check_same_events(middle, decoded(encode_events(*def, all.data() + 2, 4), def,
                                    knows_nothing()));
  CHECK(decoded(encode_events(*def, all.data(), 0), def, knows_nothing()).empty());
}

TEST_CASE("task events decoded without their run's definition are data_loss", "[codec]") {
  failed_run b;
  auto def = flip_def();
  // The second transition has task events and no RUN_STARTED.
  REQUIRE(b.d.transitions.size() > 1);
  auto bytes = encode_events(*def, b.d.transitions[1]);
  auto evs = decode_events(bytes, nullptr, knows_nothing());
  REQUIRE(!evs);
  CHECK(code_of(evs.error()) == errc::data_loss);
}

TEST_CASE("task events decoded against a definition without their task are data_loss",
          "[codec]") {
  failed_run b;
  auto def = flip_def();
  // Task "copy" has index 1 in both definitions, but index 1 of "other" is "elsewhere"; and
  // "cleanup" (index 4) is beyond its end.
  for (auto& tr : b.d.transitions) {
    bool has_task = std::any_of(tr.begin(), tr.end(), [](const event& e) {
      return e.task != no_task && e.task >= 1;
    });
    if (!has_task || tr.front().type == event_type::run_started)
      continue;
    INFO("transition from event " << tr.front().seq);
    auto evs = decode_events(encode_events(*def, tr), other_def(), knows_nothing());
    REQUIRE(!evs);
    CHECK(code_of(evs.error()) == errc::data_loss);
    CHECK_THAT(message_of(evs.error()), Catch::Contains("other"));
  }
}

TEST_CASE("decoding garbage as events gives data_loss without crashing", "[codec]") {
  auto def = flip_def();
  failed_run b;
  auto valid = encode_events(*def, b.d.transitions[1]);
  REQUIRE(valid.size() > 3);
  const std::vector<std::string> garbage{
    "this is not a protobuf",
    std::string(16, '\xff'),
    std::string{"\x0a\x7f\x08\x01", 4}, // events field claims 127 bytes, has 2
    valid.substr(0, 3),                 // truncated inside the first event
    std::string{"\x0a\x04\x08\x01\x18\x63", 6}, // one event of type 99
    std::string{"\x0a\x02\x08\x01", 4},         // one event of type 0 (unspecified)
  };
  for (auto& bytes : garbage) {
    INFO("bytes of size " << bytes.size());
    auto evs = decode_events(bytes, def, lookup_of({def}));
    REQUIRE(!evs);
    CHECK(code_of(evs.error()) == errc::data_loss);
  }
}

// -- checkpoints ------------------------------------------------------------------------------

TEST_CASE("a checkpoint decodes to a state equal to the one encoded", "[codec]") {
  auto lookup = lookup_of({flip_def(), other_def()});
  rolled_back_run a;
  failed_run b;
  aborted_run c;
  SECTION("mid-run, waiting to retry a task") {
    REQUIRE(a.mid_run.retries_used == 1);
    auto back = round_trip(a.mid_run, lookup);
    CHECK(diff(a.mid_run, back) == "");
    CHECK(back.def == flip_def());
  }
  SECTION("paused") {
    auto back = round_trip(a.paused, lookup);
    CHECK(diff(a.paused, back) == "");
    CHECK(back.status == run_status::paused);
  }
  SECTION("rolling back, and waiting to retry a compensation") {
    CHECK(diff(a.rolling_back, round_trip(a.rolling_back, lookup)) == "");
    REQUIRE(a.compensation_waiting.tasks[0].code == errc::unavailable);
    CHECK(diff(a.compensation_waiting, round_trip(a.compensation_waiting, lookup)) == "");
  }
  SECTION("rolled back") {
    auto back = round_trip(a.d.s, lookup);
    CHECK(diff(a.d.s, back) == "");
    CHECK(back.status == run_status::rolled_back);
    CHECK(!back.reason.empty());
    CHECK(back.reason == a.d.s.reason);
  }
  SECTION("failed past its point of no return") {
    auto back = round_trip(b.failed, lookup);
    CHECK(diff(b.failed, back) == "");
    CHECK(back.status == run_status::failed);
    CHECK(back.passed_point_of_no_return);
    CHECK(back.tasks[4].error() == "no access to /srv");
    CHECK(back.tasks[4].code == errc::permission_denied);
  }
  SECTION("retried by an operator and succeeded") {
    REQUIRE(b.d.task("cleanup").attempt_base == 1);
    CHECK(diff(b.d.s, round_trip(b.d.s, lookup)) == "");
  }
  SECTION("cancelled and aborted") {
    auto back = round_trip(c.d.s, lookup);
    CHECK(diff(c.d.s, back) == "");
    CHECK(back.cancel_requested);
    CHECK(back.reason == "operator gave up");
  }
  SECTION("after every transition of every run") {
    for (auto* d : {&a.d, &b.d, &c.d})
      for (auto& s : d->after) {
        INFO("run " << s.id << " at event " << s.seq);
        CHECK(diff(s, round_trip(s, lookup)) == "");
      }
  }
}

TEST_CASE("a checkpoint summary carries the run's id, status, definition and times",
          "[codec]") {
  failed_run b;
  auto sum = summarize_checkpoint(encode_checkpoint(b.failed));
  REQUIRE(sum);
  CHECK(sum->id == "run-b");
  CHECK(sum->status == run_status::failed);
  CHECK(sum->definition_name == "flip-vm");
  CHECK(sum->definition_digest == flip_def()->digest);
  CHECK(sum->last_seq == b.failed.seq);
  CHECK(sum->created == 5000);
  CHECK(sum->updated == 5600);
  CHECK(sum->reason == b.failed.reason);
}

TEST_CASE("decoding garbage as a checkpoint gives data_loss without crashing", "[codec]") {
  failed_run b;
  auto valid = encode_checkpoint(b.failed);
  const std::vector<std::string> garbage{
    "this is not a protobuf",
    std::string(16, '\xff'),
    std::string{"\x0a\x7f\x72\x75\x6e", 5}, // run_id claims 127 bytes, has 3
    valid.substr(0, 3),                     // truncated inside the run id
  };
  for (auto& bytes : garbage) {
    INFO("bytes of size " << bytes.size());
    auto s = decode_checkpoint(bytes, lookup_of({flip_def()}));
    REQUIRE(!s);
    CHECK(code_of(s.error()) == errc::data_loss);
    auto sum = summarize_checkpoint(bytes);
    REQUIRE(!sum);
    CHECK(code_of(sum.error()) == errc::data_loss);
  }
}

TEST_CASE("a checkpoint whose task count does not match its definition is rejected",
          "[codec]") {
  failed_run b;
  SECTION("fewer tasks than the definition") {
    auto s = b.failed;
    s.tasks.pop_back();
    auto back = decode_checkpoint(encode_checkpoint(s), lookup_of({flip_def()}));
    REQUIRE(!back);
    CHECK(code_of(back.error()) == errc::data_loss);
    CHECK_THAT(message_of(back.error()), Catch::Contains("run-b"));
    CHECK_THAT(message_of(back.error()), Catch::Contains("4 tasks"));
  }
  SECTION("more tasks than the definition") {
    auto s = b.failed;
    s.tasks.push_back(task_state{});
    auto back = decode_checkpoint(encode_checkpoint(s), lookup_of({flip_def()}));
    REQUIRE(!back);
    CHECK(code_of(back.error()) == errc::data_loss);
  }
  SECTION("the digest names a definition with another shape") {
    // A lookup that answers with the wrong definition: 2 tasks for a 5-task checkpoint.
    auto wrong = [](const std::string&) -> caf::expected<definition_ptr> {
      return other_def();
    };
    auto back = decode_checkpoint(encode_checkpoint(b.failed), wrong);
    REQUIRE(!back);
    CHECK(code_of(back.error()) == errc::data_loss);
  }
}

TEST_CASE("a checkpoint with an unknown status is rejected", "[codec]") {
  failed_run b;
  SECTION("run status") {
    auto s = b.failed;
    s.status = static_cast<run_status>(42);
    auto back = decode_checkpoint(encode_checkpoint(s), lookup_of({flip_def()}));
    REQUIRE(!back);
    CHECK(code_of(back.error()) == errc::data_loss);
  }
  SECTION("task status") {
    auto s = b.failed;
    s.tasks[2].status = static_cast<task_status>(0);
    auto back = decode_checkpoint(encode_checkpoint(s), lookup_of({flip_def()}));
    REQUIRE(!back);
    CHECK(code_of(back.error()) == errc::data_loss);
  }
}

TEST_CASE("a checkpoint whose definition is unknown is not_found and names the run",
          "[codec]") {
  failed_run b;
  auto back = decode_checkpoint(encode_checkpoint(b.failed), knows_nothing());
  REQUIRE(!back);
  CHECK(code_of(back.error()) == errc::not_found);
  CHECK_THAT(message_of(back.error()), Catch::Contains("run-b"));
}

// -- the journal reader -----------------------------------------------------------------------

namespace {

struct journal_fixture {
  rolled_back_run a;
  failed_run b;
  aborted_run c;
  std::shared_ptr<store> st{make_memory_store()};
  journal_reader reader{std::shared_ptr<const store>{st}};

  journal_fixture() {
    // Written out of id order.
    journal(*st, c.d);
    journal(*st, a.d);
    journal(*st, b.d);
  }

  std::vector<event> events_from(const run_id& run, uint64_t from) const {
    std::vector<event> out;
    auto err = reader.for_each_event(run, from, [&](const event& e) {
      out.push_back(e);
      return true;
    });
    INFO(describe(err));
    REQUIRE(!err);
    return out;
  }
};

} // namespace

TEST_CASE("the journal reader lists every run in id order with its summary",
          "[journal_reader]") {
  journal_fixture f;
  auto runs = f.reader.list_runs();
  INFO(describe(runs ? caf::error{} : runs.error()));
  REQUIRE(runs);
  REQUIRE(runs->size() == 3);
  const std::vector<const driver*> ds{&f.a.d, &f.b.d, &f.c.d};
  for (size_t i = 0; i < ds.size(); ++i) {
    auto& sum = (*runs)[i];
    auto& s = ds[i]->s;
    INFO("run " << s.id);
    CHECK(sum.id == s.id);
    CHECK(sum.status == s.status);
    CHECK(sum.definition_name == "flip-vm");
    CHECK(sum.definition_digest == flip_def()->digest);
    CHECK(sum.last_seq == s.seq);
    CHECK(sum.created == s.created);
    CHECK(sum.updated == s.updated);
    CHECK(sum.reason == s.reason);
  }
}

TEST_CASE("the journal reader lists no runs in an empty journal", "[journal_reader]") {
  journal_reader reader{std::shared_ptr<const store>{make_memory_store()}};
  auto runs = reader.list_runs();
  REQUIRE(runs);
  CHECK(runs->empty());
}

TEST_CASE("the journal reader iterates a run's events from a sequence number",
          "[journal_reader]") {
  journal_fixture f;
  for (auto* d : {&f.a.d, &f.b.d, &f.c.d}) {
    INFO("run " << d->s.id);
    auto& all = d->all;
    REQUIRE(all.back().seq == all.size());
    // Every starting point: the first event of a transition, or one inside it.
    for (uint64_t from = 1; from <= all.size() + 1; ++from) {
      INFO("from " << from);
      std::vector<event> expected(all.begin() + static_cast<ptrdiff_t>(from - 1), all.end());
      check_same_events(expected, f.events_from(d->s.id, from));
    }
    CHECK(f.events_from(d->s.id, 0).size() == all.size());
    CHECK(f.events_from(d->s.id, 100).empty());
    CHECK(f.events_from(d->s.id, UINT64_MAX).empty());
  }
}

TEST_CASE("the journal reader stops iterating when the callback returns false",
          "[journal_reader]") {
  journal_fixture f;
  std::vector<uint64_t> seen;
  auto err = f.reader.for_each_event("run-a", 3, [&](const event& e) {
    seen.push_back(e.seq);
    return seen.size() < 4;
  });
  CHECK(!err);
  CHECK(seen == std::vector<uint64_t>{3, 4, 5, 6});
}

TEST_CASE("the journal reader reports a run that is not in the journal as not_found",
          "[journal_reader]") {
  journal_fixture f;
  auto err = f.reader.for_each_event("run-z", 1, [](const event&) { return true; });
  REQUIRE(err);
  CHECK(code_of(err) == errc::not_found);
  CHECK_THAT(message_of(err), Catch::Contains("run-z"));
  auto cp = f.reader.checkpoint("run-z");
  REQUIRE(!cp);
  CHECK(code_of(cp.error()) == errc::not_found);
  auto s = f.reader.replay("run-z");
  REQUIRE(!s);
  CHECK(code_of(s.error()) == errc::not_found);
  // "run" is a prefix of every run id in the journal, and is not one.
  CHECK(code_of(f.reader.for_each_event("run", 1, [](const event&) { return true; }))
        == errc::not_found);
}

TEST_CASE("the journal reader finds definitions by digest", "[journal_reader]") {
  journal_fixture f;
  auto def = f.reader.definition(flip_def()->digest);
  REQUIRE(def);
  CHECK((*def)->digest == flip_def()->digest);
  CHECK((*def)->encoded == flip_def()->encoded);
  auto again = f.reader.definition(flip_def()->digest);
  REQUIRE(again);
  CHECK(*again == *def);
  auto missing = f.reader.definition(other_def()->digest);
  REQUIRE(!missing);
  CHECK(code_of(missing.error()) == errc::not_found);
}

TEST_CASE("the journal reader's checkpoint and replay rebuild the run's last state",
          "[journal_reader]") {
  journal_fixture f;
  for (auto* d : {&f.a.d, &f.b.d, &f.c.d}) {
    INFO("run " << d->s.id);
    auto cp = f.reader.checkpoint(d->s.id);
    INFO(describe(cp ? caf::error{} : cp.error()));
    REQUIRE(cp);
    CHECK(diff(d->s, *cp) == "");
    auto replayed = f.reader.replay(d->s.id);
    INFO(describe(replayed ? caf::error{} : replayed.error()));
    REQUIRE(replayed);
    CHECK(diff(*cp, *replayed) == "");
  }
}

TEST_CASE("the journal reader's replay up to a sequence number equals the state after "
          "exactly that many events",
          "[journal_reader]") {
  journal_fixture f;
  for (auto* d : {&f.a.d, &f.b.d, &f.c.d}) {
    INFO("run " << d->s.id);
    // At transition boundaries, against the states the live driver had.
    for (auto& s : d->after) {
      INFO("until " << s.seq);
      auto replayed = f.reader.replay(d->s.id, s.seq);
      REQUIRE(replayed);
      CHECK(diff(s, *replayed) == "");
    }
    // At every event, inside transitions too, against a fold of that many events.
    for (uint64_t n = 1; n <= d->all.size(); ++n) {
      INFO("until " << n);
      auto replayed = f.reader.replay(d->s.id, n);
      REQUIRE(replayed);
      CHECK(replayed->seq == n);
      CHECK(diff(fold(*d, n), *replayed) == "");
    }
    auto none = f.reader.replay(d->s.id, 0);
    REQUIRE(none);
    CHECK(none->seq == 0u);
    CHECK(none->status == run_status::pending);
    auto beyond = f.reader.replay(d->s.id, d->all.size() + 10);
    REQUIRE(beyond);
    CHECK(diff(d->s, *beyond) == "");
  }
}

TEST_CASE("the journal reader opens a rocksdb journal read-only and replays it",
          "[journal_reader][rocksdb]") {
  char tmpl[] = "/tmp/ferry-codec-test-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl;
  struct cleanup {
    std::string dir;
    ~cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } guard{dir};
  auto path = dir + "/journal";
  rolled_back_run a;
  {
    auto st = open_rocksdb_store(path);
    REQUIRE(st);
    journal(**st, a.d);
  }
  auto reader = journal_reader::open(path);
  INFO(describe(reader ? caf::error{} : reader.error()));
  REQUIRE(reader);
  auto runs = reader->list_runs();
  REQUIRE(runs);
  REQUIRE(runs->size() == 1);
  CHECK(runs->front().id == "run-a");
  auto replayed = reader->replay("run-a");
  REQUIRE(replayed);
  CHECK(diff(a.d.s, *replayed) == "");
  auto cp = reader->checkpoint("run-a");
  REQUIRE(cp);
  CHECK(diff(a.d.s, *cp) == "");
  SECTION("a missing journal is an error naming its path") {
    auto missing = journal_reader::open(dir + "/nothing-here");
    REQUIRE(!missing);
    CHECK_THAT(message_of(missing.error()), Catch::Contains(dir + "/nothing-here"));
  }
}

// -- the wire format, against protobuf's own serializer ----------------------------------------

namespace {

// The journal's encoders write the wire format by hand; these build the same messages with
// the generated classes, the way the codec used to, as the reference.

v1::Event reference_event(const definition& def, const event& e) {
  v1::Event p;
  p.set_seq(e.seq);
  p.set_time_ms(e.at);
  p.set_type(static_cast<v1::EventType>(e.type));
  if (e.task != no_task) {
    p.set_task_index(e.task);
    if (e.task < def.tasks.size())
      p.set_task(def.tasks[e.task].id);
  }
  p.set_attempt(e.attempt);
  p.set_deadline_ms(e.deadline);
  if (e.code != errc::ok)
    p.set_error_code(to_string(e.code));
  p.set_message(e.message);
  p.set_retryable(e.retryable);
  p.set_output(e.output);
  p.set_actor(e.actor);
  p.set_compensation(e.compensation);
  if (e.type == event_type::run_started && e.def) {
    auto* rs = p.mutable_run_started();
    rs->set_definition_digest(e.def->digest);
    rs->set_seed(e.seed);
    rs->set_not_before_ms(e.not_before);
  }
  return p;
}

std::string reference_checkpoint(const run_state& s) {
  v1::RunCheckpoint p;
  p.set_run_id(s.id);
  if (s.def) {
    p.set_definition_digest(s.def->digest);
    p.set_definition_name(s.def->name);
  }
  p.set_status(static_cast<v1::RunStatus>(s.status));
  p.set_last_seq(s.seq);
  p.set_created_ms(s.created);
  p.set_updated_ms(s.updated);
  p.set_not_before_ms(s.not_before);
  p.set_seed(s.seed);
  p.set_passed_point_of_no_return(s.passed_point_of_no_return);
  p.set_cancel_requested(s.cancel_requested);
  p.set_retries_used(s.retries_used);
  p.set_reason(s.reason);
  for (auto& t : s.tasks) {
    auto* pt = p.add_tasks();
    pt->set_status(static_cast<v1::TaskStatus>(t.status));
    pt->set_attempt(t.attempt);
    pt->set_compensation_attempt(t.compensation_attempt);
    pt->set_attempt_base(t.attempt_base);
    pt->set_first_started_ms(t.first_started);
    pt->set_started_ms(t.started);
    pt->set_deadline_ms(t.deadline);
    pt->set_not_before_ms(t.not_before);
    pt->set_finished_ms(t.finished);
    pt->set_gate_approved(t.gate_approved);
    if (t.code != errc::ok)
      pt->set_error_code(to_string(t.code));
    pt->set_retryable(t.retryable);
    pt->set_error(t.error());
    pt->set_output(t.output());
  }
  return p.SerializeAsString();
}

/// An event with every field at an extreme: the widest varints, negative times, NUL and
/// multi-byte characters.
event extreme_event(const definition_ptr& def, event_type type) {
  event e;
  e.seq = UINT64_MAX;
  e.at = -1;
  e.type = type;
  e.task = static_cast<uint32_t>(def->tasks.size() - 1);
  e.attempt = UINT32_MAX;
  e.deadline = INT64_MIN;
  e.compensation = true;
  e.code = errc::resource_exhausted;
  e.retryable = true;
  e.message = std::string(300, 'm') + "\xe2\x9c\x93";
  e.output = std::string{"\x00\xf0\x9f\x9a\xa2", 5};
  e.actor = "operator:\xc3\xa9";
  if (type == event_type::run_started) {
    e.task = no_task;
    e.def = def;
    e.seed = UINT64_MAX;
    e.not_before = INT64_MAX;
  }
  return e;
}

} // namespace

TEST_CASE("events encode as protobuf's serializer encodes them", "[codec]") {
  rolled_back_run a;
  failed_run b;
  aborted_run c;
  auto def = flip_def();
  std::vector<event> all;
  for (auto* d : {&a.d, &b.d, &c.d})
    all.insert(all.end(), d->all.begin(), d->all.end());
  all.push_back(extreme_event(def, event_type::task_failed));
  all.push_back(extreme_event(def, event_type::run_started));
  event beyond; // a task index the definition does not have: the index alone is written
  beyond.seq = 7;
  beyond.type = event_type::task_started;
  beyond.task = 99;
  all.push_back(beyond);
  all.push_back(event{}); // every field at its default but the type
  for (auto& e : all) {
    INFO("event " << e.seq << " (" << to_string(e.type) << ")");
    auto ours = encode_events(*def, &e, 1);
    v1::EventBatch expected;
    *expected.add_events() = reference_event(*def, e);
    if (e.type == event_type::run_started && e.def) {
      // The definition is appended as a second occurrence of run_started; parsed, the two
      // merge into the reference's single one.
      v1::EventBatch parsed;
      REQUIRE(parsed.ParseFromString(ours));
      REQUIRE(parsed.events_size() == 1);
      REQUIRE(expected.mutable_events(0)->mutable_run_started()->mutable_definition()
                ->ParseFromString(def->encoded));
      // As messages: a definition's parameters are maps, which protobuf serializes in no
      // fixed order unless asked to.
      CHECK(google::protobuf::util::MessageDifferencer::Equals(parsed, expected));
    } else {
      CHECK(ours == expected.SerializeAsString());
    }
  }
  // Several events in one batch are the concatenation of their fields.
  std::vector<event> tasks_only;
  for (auto& e : b.d.all)
    if (e.type != event_type::run_started)
      tasks_only.push_back(e);
  v1::EventBatch expected;
  for (auto& e : tasks_only)
    *expected.add_events() = reference_event(*def, e);
  CHECK(encode_events(*def, tasks_only) == expected.SerializeAsString());
}

TEST_CASE("checkpoints encode as protobuf's serializer encodes them", "[codec]") {
  rolled_back_run a;
  failed_run b;
  aborted_run c;
  std::vector<run_state> states;
  for (auto* d : {&a.d, &b.d, &c.d})
    states.insert(states.end(), d->after.begin(), d->after.end());
  states.push_back(a.paused);
  states.push_back(a.rolling_back);
  states.push_back(a.compensation_waiting);
  states.push_back(b.failed);
  run_state extreme = b.failed;
  extreme.id = "run-\xc3\xa9";
  extreme.seq = UINT64_MAX;
  extreme.created = -1;
  extreme.updated = INT64_MIN;
  extreme.not_before = INT64_MAX;
  extreme.seed = UINT64_MAX;
  extreme.passed_point_of_no_return = true;
  extreme.cancel_requested = true;
  extreme.retries_used = UINT32_MAX;
  extreme.reason = std::string{"why\x00not", 7};
  for (auto& t : extreme.tasks) {
    t.attempt = UINT32_MAX;
    t.compensation_attempt = 1;
    t.attempt_base = 2;
    t.first_started = -5;
    t.started = INT64_MAX;
    t.deadline = 1;
    t.not_before = 2;
    t.finished = 3;
    t.gate_approved = true;
    t.code = errc::aborted;
    t.retryable = true;
    t.text.set("an error", "an output");
  }
  states.push_back(extreme);
  run_state bare; // no definition, no tasks, nothing set
  states.push_back(bare);
  run_state blank_tasks = b.failed; // tasks whose every field is the default: empty messages
  for (auto& t : blank_tasks.tasks)
    t = task_state{};
  states.push_back(blank_tasks);
  for (auto& s : states) {
    INFO("run " << s.id << " at " << s.seq);
    CHECK(encode_checkpoint(s) == reference_checkpoint(s));
  }
}

TEST_CASE("fleet history records encode as protobuf's serializer encodes them", "[codec]") {
  state_changes changes{{"lease/p1", std::string{"\x08\x01\x00", 3}},
                        {"vm/vm-1", ""},
                        {"", "value without a key"},
                        {"resv/h1/" + std::string(200, 'k'), std::string(1000, 'v')}};
  for (size_t n = 0; n <= changes.size(); ++n) {
    state_changes some(changes.begin(), changes.begin() + static_cast<ptrdiff_t>(n));
    for (auto& [run, seq] : std::vector<std::pair<std::string, uint64_t>>{
           {"run-1", 1}, {"", 0}, {"r", UINT64_MAX}}) {
      INFO(n << " changes, run \"" << run << "\" at " << seq);
      v1::FleetHistory h;
      h.set_run(run);
      h.set_first_seq(seq);
      for (auto& c : some) {
        auto* pc = h.add_changes();
        pc->set_key(c.key);
        pc->set_value(c.value);
      }
      auto ours = encode_fleet_history(run, seq, some);
      CHECK(ours == h.SerializeAsString());
      auto back = decode_fleet_history(ours);
      REQUIRE(back);
      CHECK(back->run == run);
      CHECK(back->first_seq == seq);
      CHECK(back->changes == some);
    }
  }
}

TEST_CASE("text that is not UTF-8 is journaled with its stray bytes replaced", "[codec]") {
  // Protobuf refuses to parse a string field that is not UTF-8: written as is, a task's odd
  // output would make its run's record unreadable, and the run unrecoverable.
  const std::string replacement = "\xef\xbf\xbd";
  const std::vector<std::pair<std::string, std::string>> cases{
    {std::string{"ok \xff end", 8}, "ok " + replacement + " end"},
    {"\xc3", replacement},                                  // truncated 2-byte sequence
    {"\xc0\xaf", replacement + replacement},                // overlong
    {"\xed\xa0\x80", replacement + replacement + replacement}, // surrogate
    {"\xf4\x90\x80\x80", replacement + replacement + replacement + replacement}, // > U+10FFFF
    {"a\xe2\x9c\x93\x80" "b", "a\xe2\x9c\x93" + replacement + "b"}, // stray continuation
    {"\xf0\x9f\x9a\xa2 \xc3\xa9", "\xf0\x9f\x9a\xa2 \xc3\xa9"},   // valid: unchanged
  };
  auto def = flip_def();
  for (auto& [raw, clean] : cases) {
    INFO("text of " << raw.size() << " bytes");
    event e;
    e.seq = 4;
    e.type = event_type::task_failed;
    e.task = 1;
    e.attempt = 1;
    e.code = errc::internal;
    e.message = raw;
    e.output = raw;
    e.actor = raw;
    auto evs = decoded(encode_events(*def, {e}), def, knows_nothing());
    REQUIRE(evs.size() == 1);
    CHECK(evs[0].message == clean);
    CHECK(evs[0].output == clean);
    CHECK(evs[0].actor == clean);
    failed_run b;
    auto s = b.failed;
    s.reason = raw;
    s.tasks[1].text.set(raw, raw);
    auto back = round_trip(s, lookup_of({def}));
    CHECK(back.reason == clean);
    CHECK(back.tasks[1].error() == clean);
    CHECK(back.tasks[1].output() == clean);
  }
}
