// backoff_ms: capped exponential backoff with jitter drawn deterministically from the run's
// seed, the task, the attempt and whether it is a compensation.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "workflows/decide.hpp"

using namespace ferry;

namespace {

retry_policy policy(double jitter, uint64_t initial = 100, uint64_t cap = 10000,
                    double multiplier = 2.0) {
  retry_policy p;
  p.initial_backoff_ms = initial;
  p.max_backoff_ms = cap;
  p.backoff_multiplier = multiplier;
  p.jitter = jitter;
  return p;
}

/// The delay after `failures` failures without jitter, from the formula in the proto.
double exact(const retry_policy& p, uint32_t failures) {
  double d = static_cast<double>(p.initial_backoff_ms);
  for (uint32_t k = 1; k < failures; ++k)
    d *= p.backoff_multiplier;
  return std::min(d, static_cast<double>(p.max_backoff_ms));
}

} // namespace

TEST_CASE("without jitter the backoff starts at initial_backoff_ms and grows by the multiplier") {
  auto doubling = policy(0.0);
  CHECK(backoff_ms(doubling, 1, 7, 0, false) == 100);
  CHECK(backoff_ms(doubling, 2, 7, 0, false) == 200);
  CHECK(backoff_ms(doubling, 3, 7, 0, false) == 400);
  CHECK(backoff_ms(doubling, 4, 7, 0, false) == 800);
  CHECK(backoff_ms(doubling, 5, 7, 0, false) == 1600);
  auto slower = policy(0.0, 100, 10000, 1.5);
  CHECK(backoff_ms(slower, 2, 7, 0, false) == 150);
  CHECK(backoff_ms(slower, 3, 7, 0, false) == 225);
  CHECK(backoff_ms(slower, 4, 7, 0, false) == 338); // 337.5, rounded
  auto constant = policy(0.0, 250, 10000, 1.0);
  for (uint32_t f = 1; f <= 20; ++f)
    CHECK(backoff_ms(constant, f, 7, 0, false) == 250);
}

TEST_CASE("with jitter 0 the delay is exact whatever the seed, task or compensation flag") {
  auto p = policy(0.0, 30, 5000, 3.0);
  for (uint64_t seed : {0ull, 1ull, 42ull, ~0ull})
    for (uint32_t task : {0u, 3u})
      for (bool comp : {false, true})
        for (uint32_t f = 1; f <= 6; ++f) {
          INFO("seed " << seed << " task " << task << " failures " << f);
          CHECK(backoff_ms(p, f, seed, task, comp)
                == static_cast<uint64_t>(std::llround(exact(p, f))));
        }
}

TEST_CASE("the backoff is capped by max_backoff_ms") {
  auto p = policy(0.0, 100, 1000);
  CHECK(backoff_ms(p, 4, 1, 0, false) == 800);
  CHECK(backoff_ms(p, 5, 1, 0, false) == 1000);
  CHECK(backoff_ms(p, 30, 1, 0, false) == 1000);
  CHECK(backoff_ms(p, 100000, 1, 0, false) == 1000);
}

TEST_CASE("the cap holds with jitter included") {
  // At the cap, jitter may only lower the delay.
  auto p = policy(0.5, 100, 1000);
  uint64_t lowest = UINT64_MAX;
  for (uint64_t seed = 0; seed < 500; ++seed)
    for (uint32_t f = 5; f <= 12; ++f) {
      auto d = backoff_ms(p, f, seed, 1, false);
      CHECK(d <= 1000);
      CHECK(d >= 500);
      lowest = std::min(lowest, d);
    }
  CHECK(lowest < 1000);
  // Below the cap, a delay jittered above it is cut to it.
  auto tight = policy(0.5, 100, 110);
  bool reached_cap = false;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    auto d = backoff_ms(tight, 1, seed, 0, false);
    CHECK(d <= 110);
    reached_cap = reached_cap || d == 110;
  }
  CHECK(reached_cap);
}

TEST_CASE("jitter stays within plus or minus the jitter fraction and uses both sides") {
  for (double jitter : {0.2, 1.0}) {
    auto p = policy(jitter, 100, 100000);
    for (uint32_t f = 1; f <= 6; ++f) {
      double base = exact(p, f);
      double lo = base, hi = base;
      for (uint64_t seed = 0; seed < 400; ++seed)
        for (bool comp : {false, true}) {
          auto d = static_cast<double>(backoff_ms(p, f, seed, f % 3, comp));
          INFO("jitter " << jitter << " failures " << f << " seed " << seed);
          CHECK(d >= base * (1 - jitter) - 0.5);
          CHECK(d <= base * (1 + jitter) + 0.5);
          lo = std::min(lo, d);
          hi = std::max(hi, d);
        }
      // 800 draws cover most of the range on both sides of the base delay.
      CHECK(lo < base * (1 - 0.8 * jitter));
      CHECK(hi > base * (1 + 0.8 * jitter));
    }
  }
}

TEST_CASE("the same seed, task and attempt always give the same delay") {
  auto p = policy(0.2);
  auto q = p;
  for (uint32_t f = 1; f <= 8; ++f)
    for (uint32_t task : {0u, 1u, 9u})
      for (bool comp : {false, true})
        CHECK(backoff_ms(p, f, 42, task, comp) == backoff_ms(q, f, 42, task, comp));
}

TEST_CASE("different seeds give different delays for at least some attempts") {
  auto p = policy(0.2);
  int differing = 0;
  for (uint32_t f = 1; f <= 8; ++f)
    if (backoff_ms(p, f, 1, 0, false) != backoff_ms(p, f, 2, 0, false))
      ++differing;
  CHECK(differing > 0);
}

TEST_CASE("the task and the compensation flag change the jitter drawn") {
  auto p = policy(0.2);
  int by_task = 0;
  int by_comp = 0;
  for (uint32_t f = 1; f <= 8; ++f) {
    if (backoff_ms(p, f, 42, 0, false) != backoff_ms(p, f, 42, 1, false))
      ++by_task;
    if (backoff_ms(p, f, 42, 0, false) != backoff_ms(p, f, 42, 0, true))
      ++by_comp;
  }
  CHECK(by_task > 0);
  CHECK(by_comp > 0);
}
