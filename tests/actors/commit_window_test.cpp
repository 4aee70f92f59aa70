// The commit window: the queue between the runs and the journal. Unit tests of its slots,
// its FIFO wait, its cancel and its flush signalling, then the engine with a window of one
// slot, where nearly every transition waits for one.
#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/commit_window.hpp"
#include "actors/engine.hpp"
#include "actors/metrics.hpp"
#include "persistence/journal_reader.hpp"
#include "tests/support/test_kinds.hpp"
#include "tests/support/replay_check.hpp"

#include <thread>

using namespace ferry;
using namespace std::chrono_literals;

namespace {

/// Actor handles to hand the window (it only keeps and compares them).
struct runs {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};

  migration_actor spawn() {
    auto a = sys.spawn([](caf::event_based_actor*) -> caf::behavior { return {[](int) {}}; });
    return caf::actor_cast<migration_actor>(a);
  }

  ~runs() {
    sys.await_actors_before_shutdown(false);
  }
};

commit_request transition(const std::string& run, uint64_t first_seq) {
  commit_request req;
  req.record.run = run;
  req.record.first_seq = first_seq;
  return req;
}

std::vector<std::string> take_all(commit_window& w, size_t max = 100) {
  std::vector<pending_commit> out;
  w.take(max, out);
  std::vector<std::string> names;
  for (auto& p : out)
    names.push_back(p.req.record.run);
  return names;
}

} // namespace

TEST_CASE("the commit window: a transition with a free slot is ready at once; only the first "
          "one since the journal last took them signals the journal") {
  runs r;
  latency_histogram wait;
  commit_window w{4, &wait};
  auto a = r.spawn(), b = r.spawn(), c = r.spawn();
  CHECK(w.submit(a, transition("a", 1)));
  CHECK_FALSE(w.submit(b, transition("b", 1)));
  CHECK(w.in_flight() == 2);
  CHECK(w.waiting() == 0);
  std::vector<pending_commit> out;
  REQUIRE(w.take(1, out) == 1);
  CHECK(out[0].req.record.run == "a");
  CHECK(out[0].from == a);
  CHECK(out[0].req.sent_ns > 0);
  // The journal took what was ready: the next one signals it again.
  CHECK(w.submit(c, transition("c", 1)));
  CHECK(take_all(w) == std::vector<std::string>{"b", "c"});
  CHECK(w.in_flight() == 3);
  CHECK_FALSE(w.release(3));
  CHECK(w.in_flight() == 0);
  // No wait: each is recorded as such.
  CHECK(wait.count() == 3);
}

TEST_CASE("the commit window: without a slot a transition waits, in arrival order, and a slot "
          "given back makes the next one ready and asks for a flush") {
  runs r;
  latency_histogram wait;
  commit_window w{1, &wait};
  auto a = r.spawn(), b = r.spawn(), c = r.spawn();
  CHECK(w.submit(a, transition("a", 1)));
  CHECK_FALSE(w.submit(b, transition("b", 1)));
  CHECK_FALSE(w.submit(c, transition("c", 1)));
  CHECK(w.in_flight() == 1);
  CHECK(w.waiting() == 2);
  CHECK(take_all(w) == std::vector<std::string>{"a"});
  // Nothing more is ready until the slot comes back.
  CHECK(take_all(w).empty());
  CHECK(w.release(1));
  CHECK(w.waiting() == 1);
  CHECK(w.in_flight() == 1);
  CHECK(take_all(w) == std::vector<std::string>{"b"});
  CHECK(w.release(1));
  CHECK(take_all(w) == std::vector<std::string>{"c"});
  CHECK_FALSE(w.release(1));
  CHECK(w.in_flight() == 0);
  CHECK(w.waiting() == 0);
  CHECK(wait.count() == 3);
}

TEST_CASE("the commit window: a transition made ready while a flush is on its way does not ask "
          "for another") {
  runs r;
  commit_window w{2};
  auto a = r.spawn(), b = r.spawn(), c = r.spawn();
  CHECK(w.submit(a, transition("a", 1)));
  // The journal takes "a" and writes it; meanwhile "b" is ready (and signals), "c" waits.
  CHECK(take_all(w) == std::vector<std::string>{"a"});
  CHECK(w.submit(b, transition("b", 1)));
  CHECK_FALSE(w.submit(c, transition("c", 1)));
  // "a" is written: its slot makes "c" ready, and b's flush will take it too.
  CHECK_FALSE(w.release(1));
  CHECK(take_all(w) == std::vector<std::string>{"b", "c"});
  CHECK_FALSE(w.release(2));
  CHECK(w.in_flight() == 0);
}

TEST_CASE("the commit window: a run that quits drops its waiting transition; a ready one "
          "stays") {
  runs r;
  commit_window w{1};
  auto a = r.spawn(), b = r.spawn(), c = r.spawn();
  CHECK(w.submit(a, transition("a", 1)));
  CHECK_FALSE(w.submit(b, transition("b", 1)));
  CHECK_FALSE(w.submit(c, transition("c", 1)));
  w.cancel(b);
  w.cancel(a); // ready: written anyway
  CHECK(w.waiting() == 1);
  CHECK(take_all(w) == std::vector<std::string>{"a"});
  CHECK(w.release(1));
  CHECK(take_all(w) == std::vector<std::string>{"c"});
  CHECK_FALSE(w.release(1));
  CHECK(w.in_flight() == 0);
  CHECK(w.waiting() == 0);
}

TEST_CASE("an engine whose commit window has one slot runs many concurrent runs to the end, "
          "every event journaled once and in order") {
  test::temp_dir dir;
  std::vector<run_id> ids;
  {
    engine_options opts;
    opts.journal_path = dir.path();
    opts.threads = 2;
    opts.max_inflight_commits = 1;
    auto e = engine::open(opts);
    REQUIRE(e);
    auto& eng = **e;
    auto def = eng.load(R"(
name: "three"
tasks { id: "a" kind: "noop" }
tasks { id: "b" kind: "noop" depends_on: "a" }
tasks { id: "c" kind: "noop" depends_on: "a" }
)");
    REQUIRE(def);
    // Submitted from two threads at once, so that transitions queue for the one slot.
    std::vector<run_id> other;
    std::thread t{[&] {
      for (int i = 0; i < 20; ++i)
        if (auto id = eng.submit(*def))
          other.push_back(*id);
    }};
    for (int i = 0; i < 20; ++i) {
      auto id = eng.submit(*def);
      REQUIRE(id);
      ids.push_back(*id);
    }
    t.join();
    REQUIRE(other.size() == 20);
    ids.insert(ids.end(), other.begin(), other.end());
    for (auto& id : ids) {
      auto s = eng.wait(id, 30s);
      REQUIRE(s);
      CHECK(s->status == run_status::succeeded);
    }
    auto q = eng.commit_queue_depth();
    CHECK(q.in_flight == 0);
    CHECK(q.waiting == 0);
    // Every transition went through the window once.
    CHECK(eng.metrics().window_wait.count() == eng.metrics().transitions.load());
    eng.close();
  }
  auto reader = journal_reader::open(dir.path());
  REQUIRE(reader);
  for (auto& id : ids) {
    auto evs = reader->events(id, 1);
    REQUIRE(evs);
    REQUIRE(!evs->empty());
    for (size_t i = 0; i < evs->size(); ++i)
      CHECK((*evs)[i].seq == i + 1);
    CHECK(test::replays_to_checkpoint(*reader, id).status == run_status::succeeded);
  }
}
