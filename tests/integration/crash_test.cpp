// The crash test: a child process runs the workload (crash_workload.hpp) and is killed with
// SIGKILL at random points (after a random number of durable event batches) at least 20
// times, restarted on the same journal each time, then allowed to finish. Then: every run is
// at rest (SUCCEEDED or ROLLED_BACK), each run's events replay to its checkpoint, no effect
// key was applied twice, and the fleet's state in the journal matches the outcomes: each
// succeeded run holds exactly one reservation and its lease, each rolled-back run neither.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "actors/fleet_runtime.hpp"
#include "fleet/state_codec.hpp"
#include "persistence/journal_reader.hpp"
#include "persistence/journal_verify.hpp"
#include "persistence/store.hpp"
#include "tests/integration/crash_workload.hpp"
#include "tests/support/test_kinds.hpp"
#include "tests/support/replay_check.hpp"

using namespace ferry;

namespace {

constexpr int runs = 200;

struct child {
  pid_t pid = -1;
  int out = -1;
};

child start_worker(const std::string& db, const std::string& log, uint64_t seed,
                   const std::string& fleet) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  auto pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    auto n = std::to_string(runs);
    auto s = std::to_string(seed);
    ::execl(FERRY_CRASH_WORKER, FERRY_CRASH_WORKER, db.c_str(), log.c_str(), n.c_str(),
            s.c_str(), fleet.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  return child{pid, fds[0]};
}

/// Reads lines from the worker until `limit` lines were read (returns "killed": the caller
/// kills), "done" is printed, the worker exits, or the deadline passes.
enum class outcome { limit_reached, done, exited, timed_out };

outcome read_lines(int fd, int limit, std::chrono::seconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  std::string buf;
  int lines = 0;
  char chunk[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return outcome::timed_out;
    pollfd p{fd, POLLIN, 0};
    auto r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r == 0)
      return outcome::timed_out;
    auto n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0)
      return outcome::exited;
    buf.append(chunk, static_cast<size_t>(n));
    size_t pos;
    while ((pos = buf.find('\n')) != std::string::npos) {
      auto line = buf.substr(0, pos);
      buf.erase(0, pos + 1);
      if (line == "done")
        return outcome::done;
      if (limit > 0 && ++lines >= limit)
        return outcome::limit_reached;
    }
  }
}

int reap(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

} // namespace

TEST_CASE("a controller killed with SIGKILL at random points loses no run and applies no "
          "effect twice") {
  test::temp_dir dir;
  auto db = dir.file("journal");
  auto log = dir.file("effects.log");
  auto fleet_file = dir.file("fleet.textproto");
  {
    std::ofstream f{fleet_file};
    f << test::crash_fleet(runs);
  }
  uint64_t seed = 1;
  if (auto* s = std::getenv("FERRY_CRASH_SEED"))
    seed = std::strtoull(s, nullptr, 10);
  INFO("seed " << seed);
  std::mt19937 rng{static_cast<unsigned>(seed)};
  int kills = 0;
  bool finished = false;
  for (int round = 0; round < 200 && !finished; ++round) {
    auto c = start_worker(db, log, seed, fleet_file);
    // Kill after a random number of durable event batches, 20 times at least; then let it
    // finish.
    int limit = kills < 24 ? 1 + static_cast<int>(rng() % 40) : 0;
    auto o = read_lines(c.out, limit, std::chrono::seconds{120});
    if (o == outcome::limit_reached || o == outcome::timed_out) {
      ::kill(c.pid, SIGKILL);
      reap(c.pid);
      ::close(c.out);
      REQUIRE(o != outcome::timed_out);
      ++kills;
      continue;
    }
    auto status = reap(c.pid);
    ::close(c.out);
    INFO("worker status " << status);
    REQUIRE(o == outcome::done);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    finished = true;
  }
  REQUIRE(finished);
  CHECK(kills >= 20);

  // The fleet's state in the journal: a succeeded run holds its reservation and its STANDBY
  // lease; a rolled-back run holds neither.
  fleet::durable_state fleet_state;
  {
    rocksdb_store_options ro;
    ro.read_only = true;
    auto st = open_rocksdb_store(db, ro);
    REQUIRE(st);
    REQUIRE_FALSE((*st)->for_each_fleet_record([&](std::string_view k, std::string_view v) {
      REQUIRE_FALSE(fleet::decode_record(k, v, fleet_state));
      return true;
    }));
  }
  std::set<std::string> reserved;
  for (auto& [host, rs] : fleet_state.reservations)
    for (auto& r : rs) {
      INFO("reservation " << r.key << " on " << host);
      CHECK(reserved.insert(r.key).second);
    }

  auto reader = journal_reader::open(db);
  REQUIRE(reader);
  auto list = reader->list_runs();
  REQUIRE(list);
  REQUIRE(list->size() == static_cast<size_t>(runs));
  std::map<run_status, int> by_status;
  for (auto& r : *list) {
    INFO("run " << r.id << " is " << to_string(r.status));
    CHECK((r.status == run_status::succeeded || r.status == run_status::rolled_back));
    ++by_status[r.status];
    bool ok = r.status == run_status::succeeded;
    CHECK(reserved.count(r.id) == (ok ? 1u : 0u));
    auto partition = "p-" + r.id.substr(std::string{"crash-"}.size());
    auto lt = fleet_state.leases.find(partition);
    auto lease = lt == fleet_state.leases.end() ? fleet::lease_state::none
                                                : lt->second.first.state_of("hb0");
    CHECK(lease == (ok ? fleet::lease_state::standby : fleet::lease_state::none));
    test::replays_to_checkpoint(*reader, r.id);
  }
  // The whole journal verifies, as `ferry journal verify` checks it, after the crashes.
  auto rep = verify_journal(*reader, {}, 0);
  REQUIRE(rep);
  for (auto& p : rep->problems)
    FAIL_CHECK(p);
  CHECK(rep->runs == static_cast<uint64_t>(runs));
  for (auto& p : fleet::lease_problems(fleet_state))
    FAIL_CHECK(p);
  // And never two PRIMARY leases at any point of the fleet's history.
  {
    rocksdb_store_options ro;
    ro.read_only = true;
    ro.create_if_missing = false;
    auto st = open_rocksdb_store(db, ro);
    REQUIRE(st);
    size_t records = 0;
    REQUIRE(!(*st)->for_each_fleet_history([&](std::string_view, std::string_view) {
      ++records;
      return true;
    }));
    CHECK(records > static_cast<size_t>(runs));
    auto hist = fleet_history_problems(**st, 0);
    REQUIRE(hist);
    for (auto& p : *hist)
      FAIL_CHECK(p);
  }
  // Both outcomes occur in the workload.
  CHECK(by_status[run_status::succeeded] > 0);
  CHECK(by_status[run_status::rolled_back] > 0);
  std::ifstream in{log};
  std::set<std::string> keys;
  size_t lines = 0;
  for (std::string line; std::getline(in, line);) {
    ++lines;
    INFO("effect key " << line);
    CHECK(keys.insert(line).second);
  }
  CHECK(lines > static_cast<size_t>(runs));
}
