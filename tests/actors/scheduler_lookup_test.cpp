// The scheduler looks up a batch's runs a few at a time: CAF 0.17 keeps an actor's requests
// that await an answer in a flat array it searches and closes up on every answer, so a batch
// that asked about its 30,000 runs at once spent a quadratic number of steps before its first
// run. An engine stand-in holds the lookups and counts how many are in flight.
#include <catch2/catch.hpp>

#include <future>
#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/scheduler.hpp"
#include "common/errc.hpp"

using namespace ferry;
using namespace std::chrono_literals;

namespace {

using held_atom = caf::atom_constant<caf::atom("held")>;
using answer_atom = caf::atom_constant<caf::atom("answer")>;

struct engine_standin {
  caf::actor test;
  std::vector<caf::typed_response_promise<run_state>> held;
  uint64_t asked = 0;
};

/// Holds every run lookup it is sent and tells `test` how many it holds; answers them all,
/// not_found, when told (answer_atom, which answers how many it was asked in all).
caf::behavior standin(caf::stateful_actor<engine_standin>* self, caf::actor test) {
  self->state.test = test;
  return {
    [](observe_atom, const caf::actor&) {},
    [=](get_atom, const run_id&) -> caf::result<run_state> {
      auto& st = self->state;
      auto rp = self->make_response_promise<run_state>();
      st.held.push_back(rp);
      ++st.asked;
      self->send(st.test, held_atom::value, static_cast<uint64_t>(st.held.size()));
      return rp;
    },
    [=](held_atom) { return static_cast<uint64_t>(self->state.held.size()); },
    [=](answer_atom) {
      auto held = std::move(self->state.held);
      self->state.held.clear();
      for (auto& rp : held)
        rp.deliver(make_error(errc::not_found, "no such run"));
      return self->state.asked;
    },
  };
}

caf::behavior journal_standin() {
  return {[](batch_atom, const std::string&, const std::string&) { return true; }};
}

} // namespace

TEST_CASE("a batch's runs are looked up a few at a time, never all at once") {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  caf::scoped_actor test{sys};
  auto engine = sys.spawn(standin, caf::actor{test});
  auto env = std::make_shared<scheduler_env>();
  env->engine = caf::actor_cast<engine_actor>(engine);
  env->journal = caf::actor_cast<journal_actor>(sys.spawn(journal_standin));
  auto sched = spawn_scheduler(sys, env);

  // A finished batch read back on open: every item is looked up, none starts again.
  constexpr size_t n = 1000;
  batch_record rec;
  rec.spec.name = "b";
  rec.spec.template_name = "live-precopy";
  for (size_t i = 0; i < n; ++i)
    rec.spec.items.push_back(batch_item{"vm-" + std::to_string(i), "", {}, 0, 0, {}});
  rec.finished = true;
  auto submitted = std::async(std::launch::async, [&]() -> caf::expected<batch_status> {
    caf::scoped_actor s{sys};
    caf::expected<batch_status> out{caf::error{}};
    s->request(sched, caf::duration{60s}, submit_atom::value, rec, false)
      .receive([&](batch_status& st) { out = std::move(st); },
               [&](caf::error& err) { out = std::move(err); });
    return out;
  });

  size_t answered = 0;
  uint64_t asked = 0;
  while (answered < n) {
    auto expect = std::min<size_t>(64, n - answered);
    // Until the stand-in holds a full window of lookups...
    bool full = false;
    while (!full)
      test->receive([&](held_atom, uint64_t k) { full = k >= expect; },
                    caf::after(std::chrono::seconds(30)) >> [&] { FAIL("no lookup came"); });
    // ...and the scheduler is done sending (it answers this after what it was doing)...
    test->request(sched, caf::duration{30s}, get_atom::value, std::string{"b"})
      .receive([](batch_status&) {}, [](caf::error& err) { FAIL(describe(err)); });
    // ...no more than the window is in flight.
    uint64_t held = 0;
    test->request(engine, caf::duration{30s}, held_atom::value)
      .receive([&](uint64_t k) { held = k; }, [](caf::error& err) { FAIL(describe(err)); });
    CHECK(held == expect);
    test->request(engine, caf::duration{30s}, answer_atom::value)
      .receive([&](uint64_t k) { asked = k; }, [](caf::error& err) { FAIL(describe(err)); });
    answered += held;
  }
  CHECK(asked == n);

  REQUIRE(submitted.wait_for(60s) == std::future_status::ready);
  auto st = submitted.get();
  INFO((st ? "" : describe(st.error())));
  REQUIRE(st);
  CHECK(st->total == n);
  CHECK(st->skipped == n);
  caf::anon_send_exit(sched, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(engine, caf::exit_reason::user_shutdown);
}
