// The timer service: timers fire at their time, in order, cancelled ones never; and a timer
// armed far ahead does not keep its thread busy.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <vector>

#include "actors/timer_service.hpp"
#include "common/clock.hpp"

using namespace ferry;
using namespace std::chrono_literals;

namespace {

/// Ids of the timers that fired, in order, and a wait for the n-th.
struct fired {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<uint64_t> ids;

  timer_service::callback record() {
    return [this](uint64_t id) {
      std::lock_guard<std::mutex> g{mtx};
      ids.push_back(id);
      cv.notify_all();
    };
  }

  bool wait_for_count(size_t n) {
    std::unique_lock<std::mutex> g{mtx};
    return cv.wait_for(g, 10s, [&] { return ids.size() >= n; });
  }
};

} // namespace

TEST_CASE("timers fire in time order; a cancelled one never does") {
  timer_service timers;
  fired f;
  auto now = wall_now_ms();
  auto late = timers.arm(now + 60, f.record());
  auto gone = timers.arm(now + 30, f.record());
  auto early = timers.arm(now + 20, f.record());
  auto past = timers.arm(now - 1000, f.record());
  timers.cancel(gone);
  REQUIRE(f.wait_for_count(3));
  std::lock_guard<std::mutex> g{f.mtx};
  CHECK(f.ids == std::vector<uint64_t>{past, early, late});
}

TEST_CASE("a timer armed at the end of time waits without spinning; earlier ones still fire") {
  // Before, a time this far ahead overflowed the clock's nanoseconds into the past: the
  // thread's wait returned at once, over and over, and took a whole core (a run submitted with
  // not_before INT64_MAX did this to ferryd).
  // The service is left running if it spins: stopping it would wait for its lock, which a
  // spinning thread hardly ever lets go.
  auto* timers = new timer_service;
  fired f;
  timers->arm(std::numeric_limits<time_ms>::max(), f.record());
  auto start = timers->wakeups();
  auto soon = timers->arm(wall_now_ms() + 100, f.record());
  REQUIRE(f.wait_for_count(1));
  {
    std::lock_guard<std::mutex> g{f.mtx};
    CHECK(f.ids == std::vector<uint64_t>{soon});
  }
  // In those 100 ms the thread woke for the new timer and when it was due: a few times, not
  // the millions a busy loop makes.
  auto woke = timers->wakeups() - start;
  CHECK(woke < 10);
  if (woke < 10)
    delete timers;
}
