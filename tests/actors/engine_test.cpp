// The engine end to end through its embedding API (ferry::engine): real actors, the real
// journal actor, and a RocksDB journal where durability matters. Attempts of the `manual`
// kind are completed by the test, so every step is driven by an event, never by time.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <mutex>
#include <set>
#include <thread>

#include "actors/engine.hpp"
#include "fleet/fleet_codec.hpp"
#include "persistence/journal_reader.hpp"
#include "tests/support/test_kinds.hpp"
#include "tests/support/replay_check.hpp"

using namespace ferry;
using namespace std::chrono_literals;

namespace {

struct fixture {
  std::shared_ptr<test::manual_executor> manual = std::make_shared<test::manual_executor>();
  std::unique_ptr<engine> eng;

  explicit fixture(std::string journal = {}, bool recover = true) {
    engine_options opts;
    opts.journal_path = std::move(journal);
    opts.recover = recover;
    opts.threads = 2;
    opts.executors.push_back(manual);
    auto e = engine::open(opts);
    REQUIRE(e);
    eng = std::move(*e);
  }

  definition_ptr load(const std::string& text) {
    auto d = eng->load(text);
    INFO((d ? "" : describe(d.error())));
    REQUIRE(d);
    return *d;
  }

  run_id submit(const std::string& text, submit_options opts = {}) {
    auto id = eng->submit(load(text), opts);
    INFO((id ? "" : describe(id.error())));
    REQUIRE(id);
    return *id;
  }

  run_state wait(const run_id& id) {
    auto s = eng->wait(id, 20s);
    INFO((s ? "" : describe(s.error())));
    REQUIRE(s);
    return *s;
  }

  std::string key(const run_id& id, const std::string& task, int attempt,
                  bool undo = false) {
    return idempotency_key(id, task, attempt, undo);
  }

  void complete(const run_id& id, const std::string& task, int attempt,
                task_result r = task_result::success(), bool undo = false) {
    auto k = key(id, task, attempt, undo);
    REQUIRE(manual->await(k));
    REQUIRE(manual->complete(k, std::move(r)));
  }
};

const task_state& task_of(const run_state& s, const std::string& id) {
  auto i = s.def->index_of(id);
  REQUIRE(i >= 0);
  return s.tasks[static_cast<size_t>(i)];
}

const char* chain = R"(
name: "chain"
tasks { id: "a" kind: "manual" compensation { kind: "manual" } }
tasks { id: "b" kind: "manual" depends_on: "a" compensation { kind: "manual" } }
tasks { id: "c" kind: "manual" depends_on: "b" retry { max_attempts: 2 initial_backoff_ms: 1 } }
)";

/// Runs `chain` in an engine on `journal` until task "a" is in flight, then closes the
/// engine with that attempt still in flight (as a crash would leave it).
run_id interrupt_chain(const std::string& journal, submit_options opts = {}) {
  fixture f{journal};
  auto id = f.submit(chain, opts);
  REQUIRE(f.manual->await(f.key(id, "a", 1)));
  f.manual->forget_all();
  return id;
}

} // namespace

TEST_CASE("a submitted run runs its tasks in dependency order and succeeds") {
  fixture f;
  auto id = f.submit(chain);
  std::mutex mtx;
  std::vector<event> seen;
  std::promise<run_state> done;
  auto watch = f.eng->watch(
    id, 1,
    [&](const std::vector<event>& evs) {
      std::lock_guard<std::mutex> guard{mtx};
      seen.insert(seen.end(), evs.begin(), evs.end());
    },
    [&](const run_state& s) { done.set_value(s); });
  f.complete(id, "a", 1);
  f.complete(id, "b", 1);
  f.complete(id, "c", 1);
  auto finished = done.get_future();
  REQUIRE(finished.wait_for(20s) == std::future_status::ready);
  auto s = finished.get();
  CHECK(s.status == run_status::succeeded);
  CHECK(f.manual->keys() == std::vector<std::string>{f.key(id, "a", 1), f.key(id, "b", 1),
                                                     f.key(id, "c", 1)});
  // The watch saw every durable event, in order, without gaps.
  std::lock_guard<std::mutex> guard{mtx};
  REQUIRE(!seen.empty());
  for (size_t i = 0; i < seen.size(); ++i)
    CHECK(seen[i].seq == i + 1);
  CHECK(seen.front().type == event_type::run_started);
}

TEST_CASE("a failure before the point of no return compensates completed tasks in reverse "
          "order") {
  fixture f;
  auto id = f.submit(chain);
  f.complete(id, "a", 1);
  f.complete(id, "b", 1);
  f.complete(id, "c", 1, task_result::failure(errc::unavailable, "host gone"));
  f.complete(id, "c", 2, task_result::failure(errc::unavailable, "host still gone"));
  f.complete(id, "b", 1, task_result::success(), true);
  f.complete(id, "a", 1, task_result::success(), true);
  auto s = f.wait(id);
  CHECK(s.status == run_status::rolled_back);
  CHECK(task_of(s, "a").status == task_status::compensated);
  CHECK(task_of(s, "b").status == task_status::compensated);
  CHECK(task_of(s, "c").status == task_status::failed);
  CHECK(s.reason.find("task \"c\" failed after 2 attempts") != std::string::npos);
  auto keys = f.manual->keys();
  REQUIRE(keys.size() == 6);
  CHECK(keys[4] == f.key(id, "b", 1, true));
  CHECK(keys[5] == f.key(id, "a", 1, true));
}

TEST_CASE("cancel stops and compensates; abort stops and compensates nothing") {
  fixture f;
  const char* gated = R"(
name: "gated"
tasks { id: "a" kind: "manual" compensation { kind: "manual" } }
tasks { id: "approve" kind: "noop" gate: true depends_on: "a" }
)";
  SECTION("cancel") {
    auto id = f.submit(gated);
    f.complete(id, "a", 1);
    // Wait for the run to reach its gate: the gate's TASK_SCHEDULED is durable.
    std::promise<void> at_gate;
    std::once_flag once;
    auto w = f.eng->watch(id, 1, [&](const std::vector<event>& evs) {
      for (auto& e : evs)
        if (e.type == event_type::task_scheduled)
          std::call_once(once, [&] { at_gate.set_value(); });
    }, nullptr);
    REQUIRE(at_gate.get_future().wait_for(10s) == std::future_status::ready);
    auto ack = f.eng->cancel(id, "alice");
    REQUIRE(ack);
    f.complete(id, "a", 1, task_result::success(), true);
    auto s = f.wait(id);
    CHECK(s.status == run_status::rolled_back);
    CHECK(task_of(s, "a").status == task_status::compensated);
    CHECK(s.reason == "cancel requested");
  }
  SECTION("abort") {
    auto id = f.submit(gated);
    f.complete(id, "a", 1);
    // A reason longer than the journal keeps is refused, and the run goes on.
    auto too_long = f.eng->abort(id, std::string(engine::max_reason_bytes + 1, 'x'), "bob");
    REQUIRE(!too_long);
    CHECK(code_of(too_long.error()) == errc::invalid_argument);
    CHECK(describe(too_long.error()).find("abort: field \"reason\": at most 4096 bytes, got 4097")
          != std::string::npos);
    auto ack = f.eng->abort(id, "operator gave up", "bob");
    REQUIRE(ack);
    auto s = f.wait(id);
    CHECK(s.status == run_status::aborted);
    CHECK(task_of(s, "a").status == task_status::succeeded);
    CHECK(s.reason == "operator gave up");
    // Nothing was compensated.
    CHECK(f.manual->keys().size() == 1);
    // A terminal run refuses further actions.
    auto again = f.eng->abort(id);
    REQUIRE(!again);
    CHECK(code_of(again.error()) == errc::failed_precondition);
  }
}

TEST_CASE("cancel is refused after the point of no return") {
  fixture f;
  auto id = f.submit(R"(
name: "flip"
tasks { id: "flip" kind: "manual" point_of_no_return: true }
tasks { id: "after" kind: "manual" depends_on: "flip" }
)");
  f.complete(id, "flip", 1);
  REQUIRE(f.manual->await(f.key(id, "after", 1)));
  auto ack = f.eng->cancel(id);
  REQUIRE(!ack);
  CHECK(code_of(ack.error()) == errc::failed_precondition);
  CHECK(message_of(ack.error()).find("point of no return at task \"flip\"")
        != std::string::npos);
  f.complete(id, "after", 1);
  CHECK(f.wait(id).status == run_status::succeeded);
}

TEST_CASE("a failure after the point of no return waits for an operator, who can retry") {
  fixture f;
  auto id = f.submit(R"(
name: "forward"
tasks { id: "flip" kind: "noop" point_of_no_return: true }
tasks { id: "plug" kind: "manual" depends_on: "flip" retry { max_attempts: 1 } }
)");
  f.complete(id, "plug", 1, task_result::failure(errc::unavailable, "agent silent"));
  auto s = f.wait(id);
  CHECK(s.status == run_status::failed);
  CHECK(task_of(s, "plug").status == task_status::failed);
  auto wrong = f.eng->retry(id, "plg");
  REQUIRE(!wrong);
  CHECK(code_of(wrong.error()) == errc::not_found);
  CHECK(message_of(wrong.error()).find("field \"task\"") != std::string::npos);
  REQUIRE(f.eng->retry(id, "plug", "carol"));
  f.complete(id, "plug", 2);
  CHECK(f.wait(id).status == run_status::succeeded);
}

TEST_CASE("pause holds new attempts back until resume") {
  fixture f;
  auto id = f.submit(R"(
name: "pausable"
tasks { id: "a" kind: "manual" }
tasks { id: "b" kind: "manual" depends_on: "a" }
)");
  REQUIRE(f.manual->await(f.key(id, "a", 1)));
  auto paused = f.eng->pause(id);
  REQUIRE(paused);
  // The attempt in flight finishes and is recorded; nothing new starts.
  f.manual->complete(f.key(id, "a", 1));
  auto s = f.eng->get(id);
  REQUIRE(s);
  // get() answers once nothing is in flight: a's success is durable by then.
  auto settled = f.eng->pause(id);
  REQUIRE(settled);
  s = f.eng->get(id);
  REQUIRE(s);
  CHECK(s->status == run_status::paused);
  CHECK(task_of(*s, "a").status == task_status::succeeded);
  CHECK(task_of(*s, "b").status == task_status::pending);
  REQUIRE(f.eng->resume(id));
  f.complete(id, "b", 1);
  CHECK(f.wait(id).status == run_status::succeeded);
}

TEST_CASE("a gate waits for approval; approving an unknown or ungated task names it") {
  fixture f;
  auto id = f.submit(R"(
name: "gate"
tasks { id: "prepare" kind: "noop" }
tasks { id: "flip" kind: "manual" gate: true depends_on: "prepare" }
)");
  auto bad = f.eng->approve(id, "flp");
  REQUIRE(!bad);
  CHECK(code_of(bad.error()) == errc::not_found);
  auto not_gate = f.eng->approve(id, "prepare");
  REQUIRE(!not_gate);
  CHECK(code_of(not_gate.error()) == errc::failed_precondition);
  CHECK(f.manual->keys().empty());
  REQUIRE(f.eng->approve(id, "flip", "dave"));
  f.complete(id, "flip", 1);
  CHECK(f.wait(id).status == run_status::succeeded);
}

TEST_CASE("an attempt past its deadline fails with deadline_exceeded and is retried") {
  fixture f;
  auto id = f.submit(R"(
name: "slow"
tasks { id: "t" kind: "manual" timeout_ms: 30 retry { max_attempts: 2 initial_backoff_ms: 1 } }
)");
  // The first attempt is never completed: the engine times it out and starts the second.
  REQUIRE(f.manual->await(f.key(id, "t", 1)));
  f.complete(id, "t", 2);
  // A late result of the first attempt is stale and ignored.
  CHECK(f.manual->complete(f.key(id, "t", 1), task_result::failure(errc::internal, "late")));
  auto s = f.wait(id);
  CHECK(s.status == run_status::succeeded);
  CHECK(task_of(s, "t").attempt == 2);
}

TEST_CASE("submitting the same run id again is idempotent; another definition is refused") {
  fixture f;
  submit_options opts;
  opts.id = "vm-42-move";
  auto first = f.eng->submit(f.load("name: \"once\" tasks { id: \"a\" kind: \"noop\" }"), opts);
  REQUIRE(first);
  auto again = f.eng->submit(f.load("name: \"once\" tasks { id: \"a\" kind: \"noop\" }"), opts);
  REQUIRE(again);
  CHECK(*again == *first);
  auto other = f.eng->submit(f.load("name: \"other\" tasks { id: \"a\" kind: \"noop\" }"), opts);
  REQUIRE(!other);
  CHECK(code_of(other.error()) == errc::already_exists);
  opts.id = "bad id!";
  auto bad = f.eng->submit(f.load("name: \"x\" tasks { id: \"a\" kind: \"noop\" }"), opts);
  REQUIRE(!bad);
  CHECK(code_of(bad.error()) == errc::invalid_argument);
  CHECK(message_of(bad.error()).find("field \"run_id\"") != std::string::npos);
  auto all = f.eng->list();
  REQUIRE(all);
  CHECK(all->size() == 1);
}

TEST_CASE("a run not before a time far ahead waits in SCHEDULED; a negative time is refused") {
  fixture f;
  submit_options far;
  far.not_before = std::numeric_limits<time_ms>::max();
  auto id = f.submit(chain, far);
  auto s = f.eng->get(id);
  REQUIRE(s);
  CHECK(s->status == run_status::scheduled);
  CHECK(s->not_before == std::numeric_limits<time_ms>::max());
  submit_options negative;
  negative.not_before = -5;
  auto refused = f.eng->submit(f.load(chain), negative);
  REQUIRE_FALSE(refused);
  CHECK(code_of(refused.error()) == errc::invalid_argument);
  CHECK(message_of(refused.error())
        == "submit: field \"not_before\": must be 0 (now) or a time in ms since the epoch, "
           "got -5");
}

TEST_CASE("the engine's threads carry their names") {
  test::temp_dir dir;
  fixture f{dir.path()};
  // A run that went through the journal: the journal's thread has started and named itself.
  CHECK(f.wait(f.submit("name: \"named\" tasks { id: \"a\" kind: \"noop\" }")).status
        == run_status::succeeded);
  std::multiset<std::string> names;
  for (auto& t : std::filesystem::directory_iterator{"/proc/self/task"}) {
    std::ifstream comm{t.path() / "comm"};
    std::string name;
    std::getline(comm, name);
    names.insert(name);
  }
  INFO("threads: " << [&] {
    std::string all;
    for (auto& n : names)
      all += n + " ";
    return all;
  }());
  CHECK(names.count("ferry.journal") == 1);
  CHECK(names.count("ferry.timers") == 1);
  CHECK(names.count("ferry.effect") == 1);
}

TEST_CASE("a run at rest lets go of its definition; reading it back finds it in the journal") {
  test::temp_dir dir;
  fixture f{dir.path()};
  std::weak_ptr<const definition> weak;
  run_id id;
  {
    auto def = f.load("name: \"let-go\" tasks { id: \"a\" kind: \"noop\" }");
    weak = def;
    auto r = f.eng->submit(def);
    REQUIRE(r);
    id = *r;
    CHECK(f.wait(id).status == run_status::succeeded);
  }
  // The run's actor holds it until it stops, just after it reported its end; the engine keeps
  // only the name and digest of a run at rest.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!weak.expired() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  CHECK(weak.expired());
  auto s = f.eng->get(id);
  REQUIRE(s);
  CHECK(s->status == run_status::succeeded);
  REQUIRE(s->def);
  CHECK(s->def->name == "let-go");
  list_filter named;
  named.definition_name = "let-go";
  auto listed = f.eng->list(named);
  REQUIRE(listed);
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().definition_digest == s->def->digest);
}

TEST_CASE("list filters runs by status and definition name, with paging") {
  fixture f;
  for (int i = 0; i < 3; ++i)
    f.wait(f.submit("name: \"quick\" tasks { id: \"a\" kind: \"noop\" }"));
  auto held = f.submit("name: \"held\" tasks { id: \"a\" kind: \"manual\" }");
  REQUIRE(f.manual->await(f.key(held, "a", 1)));
  list_filter running;
  running.statuses = {run_status::running};
  auto r = f.eng->list(running);
  REQUIRE(r);
  REQUIRE(r->size() == 1);
  CHECK(r->front().id == held);
  list_filter quick;
  quick.definition_name = "quick";
  quick.limit = 2;
  auto page1 = f.eng->list(quick);
  REQUIRE(page1);
  REQUIRE(page1->size() == 2);
  quick.after = page1->back().id;
  auto page2 = f.eng->list(quick);
  REQUIRE(page2);
  CHECK(page2->size() == 1);
  f.complete(held, "a", 1);
  f.wait(held);
}

TEST_CASE("a run interrupted with an attempt in flight resumes with the same idempotency key") {
  test::temp_dir dir;
  run_id id;
  {
    fixture f{dir.path()};
    id = f.submit(chain);
    f.complete(id, "a", 1);
    REQUIRE(f.manual->await(f.key(id, "b", 1)));
    // The engine closes (as a crash would leave it) with b's attempt 1 in flight.
    f.manual->forget_all();
  }
  fixture f{dir.path()};
  CHECK(f.eng->recovered() == 1);
  // The same attempt is dispatched again, with the same key: the executor reconciles.
  f.complete(id, "b", 1);
  f.complete(id, "c", 1);
  auto s = f.wait(id);
  CHECK(s.status == run_status::succeeded);
  CHECK(f.manual->keys() == std::vector<std::string>{f.key(id, "b", 1), f.key(id, "c", 1)});
  f.eng->close();
  // The journal replays to the checkpoint.
  auto reader = journal_reader::open(dir.path());
  REQUIRE(reader);
  CHECK(test::replays_to_checkpoint(*reader, id).status == run_status::succeeded);
}

TEST_CASE("a task's output and error that are not UTF-8 are journaled readable; the run "
          "resumes") {
  // Protobuf refuses to parse a string field that is not UTF-8: written as is, such an
  // output left a checkpoint the engine could not read back, and the run was not resumed.
  // Results are made valid as they come in (the journal's encoder does it again for any
  // other text).
  test::temp_dir dir;
  const std::string odd = "disk \xff\xfe copied";
  const std::string readable = "disk \xef\xbf\xbd\xef\xbf\xbd copied";
  run_id id;
  {
    fixture f{dir.path()};
    id = f.submit(chain);
    auto ok = task_result::success();
    ok.output = odd;
    f.complete(id, "a", 1, ok);
    f.complete(id, "b", 1);
    f.complete(id, "c", 1,
               task_result::failure(errc::unavailable, "link \xc3 down", true));
    REQUIRE(f.manual->await(f.key(id, "c", 2)));
    // The engine holds and serves the text as it journals it.
    auto live = f.eng->get(id);
    REQUIRE(live);
    CHECK(task_of(*live, "a").output() == readable);
    f.manual->forget_all();
  }
  fixture f{dir.path()};
  CHECK(f.eng->recovered() == 1);
  f.complete(id, "c", 2);
  auto s = f.wait(id);
  CHECK(s.status == run_status::succeeded);
  CHECK(task_of(s, "a").output() == readable);
  f.eng->close();
  auto reader = journal_reader::open(dir.path());
  REQUIRE(reader);
  auto events = reader->events(id, 1);
  REQUIRE(events);
  auto failed = std::find_if(events->begin(), events->end(), [](const event& e) {
    return e.type == event_type::task_failed;
  });
  REQUIRE(failed != events->end());
  CHECK(failed->message == "link \xef\xbf\xbd down");
}

TEST_CASE("an operator's name and reason that are not UTF-8 are held and journaled "
          "readable") {
  test::temp_dir dir;
  run_id id;
  {
    fixture f{dir.path()};
    id = f.submit(chain);
    REQUIRE(f.manual->await(f.key(id, "a", 1)));
    auto ack = f.eng->abort(id, "disk \xfe gone", "ops \xff");
    INFO((ack ? "" : describe(ack.error())));
    REQUIRE(ack);
    auto live = f.eng->get(id);
    REQUIRE(live);
    CHECK(live->status == run_status::aborted);
    CHECK(live->reason == "disk \xef\xbf\xbd gone");
    f.manual->forget_all();
  }
  fixture f{dir.path()};
  auto s = f.eng->get(id);
  REQUIRE(s);
  CHECK(s->reason == "disk \xef\xbf\xbd gone");
  f.eng->close();
  auto reader = journal_reader::open(dir.path());
  REQUIRE(reader);
  auto events = reader->events(id, 1);
  REQUIRE(events);
  REQUIRE(!events->empty());
  CHECK(events->back().type == event_type::run_aborted);
  CHECK(events->back().actor == "ops \xef\xbf\xbd");
}

TEST_CASE("the effect kind applies each key once, also when dispatched again") {
  test::temp_dir dir;
  auto log = dir.file("effects.log");
  auto text = "name: \"fx\" tasks { id: \"e\" kind: \"effect\" params { fields { key: \"log\" "
              "value { string_value: \"" + log + "\" } } } }";
  fixture f;
  submit_options opts;
  opts.id = "fx-1";
  f.wait(f.submit(text, opts));
  std::ifstream in{log};
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  CHECK(lines == std::vector<std::string>{"fx-1/e/1"});
}

TEST_CASE("operations on an unknown run say not_found") {
  fixture f;
  auto g = f.eng->get("nope");
  REQUIRE(!g);
  CHECK(code_of(g.error()) == errc::not_found);
  auto c = f.eng->cancel("nope");
  REQUIRE(!c);
  CHECK(code_of(c.error()) == errc::not_found);
  auto w = f.eng->wait("nope", 5s);
  REQUIRE(!w);
  CHECK(code_of(w.error()) == errc::not_found);
}

TEST_CASE("options that cannot work are refused before the journal is created") {
  test::temp_dir dir;
  auto journal = dir.path() + "/journal";
  struct bad {
    std::function<void(engine_options&)> set;
    std::string says;
  };
  std::vector<bad> cases{
    {[](engine_options& o) { o.scheduler_policy = "fifo"; },
     "engine options: field \"scheduler_policy\": must be \"sharing\" or \"stealing\", got "
     "\"fifo\""},
    {[](engine_options& o) { o.retention.age = std::chrono::hours{24}; },
     "engine options: field \"retention.archive_dir\": required with an age"},
    {[&](engine_options& o) { o.template_dirs = {dir.path() + "/no-templates"}; },
     "template directory " + dir.path() + "/no-templates"},
    {[](engine_options& o) { o.threads = 5000; },
     "engine options: field \"threads\": at most 1024, got 5000"},
  };
  // A simulated world at a speed that cannot work: nan and 0 never moved its clock (runs on
  // its hosts waited for ever), inf overflowed it.
  auto fleet = fleet::load_fleet_file(FERRY_SOURCE_DIR "/examples/demo-fleet.textproto");
  REQUIRE(fleet);
  for (double speed : {std::nan(""), std::numeric_limits<double>::infinity(), 0.0, -1.0, 2e9})
    cases.push_back({[&, speed](engine_options& o) {
                       o.fleet = *fleet;
                       o.fleet_opts.sim_speed = speed;
                     },
                     "engine options: field \"fleet_opts.sim_speed\": must be greater than 0 "
                     "and at most 1e9, got "});
  for (auto& c : cases) {
    engine_options opts;
    opts.journal_path = journal;
    opts.threads = 1;
    c.set(opts);
    auto e = engine::open(opts);
    REQUIRE_FALSE(e);
    CHECK(code_of(e.error()) != errc::ok);
    CHECK_THAT(message_of(e.error()), Catch::Contains(c.says));
    CHECK_FALSE(std::filesystem::exists(journal));
  }
}

TEST_CASE("an engine opened without resuming still knows every run, and an action resumes "
          "one") {
  test::temp_dir dir;
  submit_options held;
  held.id = "held";
  auto id = interrupt_chain(dir.path(), held);
  fixture f{dir.path(), false};
  CHECK(f.eng->recovered() == 0);
  auto all = f.eng->list();
  REQUIRE(all);
  REQUIRE(all->size() == 1);
  CHECK(all->front().id == id);
  CHECK(all->front().status == run_status::running);
  // The id stays taken: the same submit attaches, another definition is refused.
  submit_options opts;
  opts.id = id;
  auto again = f.eng->submit(f.load(chain), opts);
  REQUIRE(again);
  CHECK(*again == id);
  CHECK(f.manual->keys().empty());
  // Cancelling resumes the run, which re-dispatches its attempt in flight and then rolls back.
  REQUIRE(f.eng->cancel(id));
  f.complete(id, "a", 1);
  f.complete(id, "a", 1, task_result::success(), true);
  CHECK(f.wait(id).status == run_status::rolled_back);
}

TEST_CASE("an unreadable checkpoint is reported and skipped; the other runs resume") {
  test::temp_dir dir;
  auto id = interrupt_chain(dir.path());
  {
    auto st = open_rocksdb_store(dir.path());
    REQUIRE(st);
    transition_record bad;
    bad.run = "broken";
    bad.checkpoint = "\xff\xff not a checkpoint";
    REQUIRE(!(*st)->write({&bad}, true));
  }
  fixture f{dir.path()};
  CHECK(f.eng->unreadable_runs() == 1);
  CHECK(f.eng->recovered() == 1);
  f.complete(id, "a", 1);
  f.complete(id, "b", 1);
  f.complete(id, "c", 1);
  CHECK(f.wait(id).status == run_status::succeeded);
}

TEST_CASE("a submit_reply passes on the first outcome only, and unavailable when dropped "
          "uncalled") {
  std::vector<caf::expected<run_id>> got;
  {
    submit_reply reply{[&](caf::expected<run_id> x) { got.push_back(std::move(x)); }};
    auto copy = reply;
    copy(run_id{"r1"});
    reply(make_error(errc::internal, "too late"));
  }
  REQUIRE(got.size() == 1);
  REQUIRE(got[0]);
  CHECK(*got[0] == "r1");
  got.clear();
  {
    submit_reply reply{[&](caf::expected<run_id> x) { got.push_back(std::move(x)); }};
    auto copy = reply;
  }
  REQUIRE(got.size() == 1);
  REQUIRE(!got[0]);
  CHECK(code_of(got[0].error()) == errc::unavailable);
}

TEST_CASE("submit_async answers each of thousands of submissions in flight at once") {
  test::temp_dir dir;
  fixture f{dir.path()};
  auto def = f.load(R"(name: "many"
tasks { id: "a" kind: "noop" }
tasks { id: "b" kind: "noop" depends_on: "a" })");
  constexpr size_t n = 3000;
  std::mutex mtx;
  std::condition_variable cv;
  size_t answered = 0;
  std::set<run_id> ids;
  std::vector<std::string> errors;
  for (size_t i = 0; i < n; ++i)
    f.eng->submit_async(def, {}, [&](caf::expected<run_id> id) {
      std::lock_guard<std::mutex> guard{mtx};
      if (id)
        ids.insert(*id);
      else
        errors.push_back(describe(id.error()));
      ++answered;
      cv.notify_all();
    });
  {
    std::unique_lock<std::mutex> lock{mtx};
    REQUIRE(cv.wait_for(lock, 60s, [&] { return answered == n; }));
  }
  CHECK(errors.empty());
  REQUIRE(ids.size() == n);
  for (auto& id : ids)
    REQUIRE(f.wait(id).status == run_status::succeeded);
}

TEST_CASE("submissions in flight when the engine closes are each answered once: started, or "
          "unavailable") {
  constexpr size_t n = 2000;
  std::vector<std::atomic<int>> calls(n);
  std::atomic<size_t> started{0};
  std::atomic<size_t> unavailable{0};
  std::mutex mtx;
  std::vector<std::string> other;
  {
    test::temp_dir dir;
    fixture f{dir.path()};
    auto def = f.load(R"(name: "closing" tasks { id: "a" kind: "noop" })");
    for (size_t i = 0; i < n; ++i)
      f.eng->submit_async(def, {}, [&, i](caf::expected<run_id> id) {
        calls[i].fetch_add(1);
        if (id) {
          started.fetch_add(1);
        } else if (code_of(id.error()) == errc::unavailable) {
          unavailable.fetch_add(1);
        } else {
          std::lock_guard<std::mutex> guard{mtx};
          other.push_back(describe(id.error()));
        }
      });
    f.eng->close();
  }
  CHECK(other.empty());
  CHECK(started.load() + unavailable.load() == n);
  for (size_t i = 0; i < n; ++i)
    REQUIRE(calls[i].load() == 1);
}

TEST_CASE("close() lets the executors go only once no run can call them") {
  // A run hands out the attempts of a transition the journal acknowledged from its own
  // handler. Before, close() let the executors go once the journal had stopped, without
  // waiting for the runs: one still in that handler called a freed executor, and the process
  // aborted ("pure virtual method called").
  struct probe final : task_executor {
    std::shared_ptr<std::atomic<bool>> gone;
    explicit probe(std::shared_ptr<std::atomic<bool>> g) : gone(std::move(g)) {
    }
    ~probe() override {
      *gone = true;
    }
    kind_spec spec() const override {
      return {"probe", {}, false, "Succeeds at once; says when it is destroyed."};
    }
    void execute(const task_call&, completion done) override {
      done(task_result::success());
    }
  };
  test::temp_dir dir;
  auto gone = std::make_shared<std::atomic<bool>>(false);
  std::promise<run_id> entered;
  std::atomic<bool> first{true};
  std::atomic<bool> called_after{false};
  engine_options opts;
  opts.journal_path = dir.path();
  opts.threads = 2;
  // Only the engine holds the executor, once open.
  opts.executors.push_back(std::make_shared<probe>(gone));
  // Called in the run's handler with the executor looked up, before it is called.
  opts.inject_fault = [&](const task_call& c) -> std::optional<task_result> {
    if (!first.exchange(false))
      return std::nullopt;
    entered.set_value(c.run);
    // Stay in the handler until the executor is destroyed, or 1.5 s: close() must wait for
    // this run before it lets the executors go.
    auto deadline = std::chrono::steady_clock::now() + 1500ms;
    while (std::chrono::steady_clock::now() < deadline) {
      if (gone->load()) {
        called_after = true;
        // Not on to the executor, which is gone.
        return task_result::failure(errc::unavailable, "the executor is gone", false);
      }
      std::this_thread::yield();
    }
    return std::nullopt;
  };
  auto e = engine::open(opts);
  REQUIRE(e);
  auto eng = std::move(*e);
  opts.executors.clear();
  CHECK_FALSE(gone->load());
  auto def = eng->load(R"(name: "closing" tasks { id: "a" kind: "probe" })");
  REQUIRE(def);
  eng->submit_async(*def, {}, [](caf::expected<run_id>) {});
  auto fut = entered.get_future();
  REQUIRE(fut.wait_for(20s) == std::future_status::ready);
  auto id = fut.get();
  eng->close();
  CHECK_FALSE(called_after.load());
  // close() let it go.
  CHECK(gone->load());
  eng.reset();
  // Its attempt was in flight at the close: the next open hands it out again and the run
  // succeeds.
  *gone = false;
  opts.inject_fault = nullptr;
  opts.executors = {std::make_shared<probe>(gone)};
  auto again = engine::open(opts);
  REQUIRE(again);
  auto s = (*again)->wait(id, 20s);
  INFO((s ? "" : describe(s.error())));
  REQUIRE(s);
  CHECK(s->status == run_status::succeeded);
}
