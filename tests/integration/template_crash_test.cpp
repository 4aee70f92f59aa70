// Crash at every task: each built-in template runs in a worker process
// (template_crash_worker) with a RocksDB journal and the simulator's state file; the worker is
// killed with SIGKILL as soon as a task's start (then, in a second pass, its success; for a
// run that rolls back, each compensation's start) is durable, and started again on the same
// directory. The run must reach the outcome it reaches without the crash, on the same host,
// and the fleet's invariants must hold (the VM runs exactly once, one PRIMARY per partition,
// no reservation left, the address routed to the VM).
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace {

struct scenario {
  std::string name;
  std::string vm;
  std::vector<std::string> args;
};

struct result {
  std::vector<std::string> lines;
  bool killed = false;
  bool done = false;
};

std::string fresh_dir(const std::string& tag) {
  auto dir = std::filesystem::temp_directory_path()
             / ("ferry-template-crash-" + std::to_string(::getpid()) + "-" + tag);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

/// Runs the worker on `db`; kills it with SIGKILL once it printed `kill_at` (when not
/// empty). Fails the test when the worker neither finishes nor reaches the line in time.
result run_worker(const std::string& db, const scenario& sc, const std::string& kill_at) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  auto pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<std::string> argv_s{FERRY_TEMPLATE_CRASH_WORKER, db, sc.name, sc.vm};
    argv_s.insert(argv_s.end(), sc.args.begin(), sc.args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(FERRY_TEMPLATE_CRASH_WORKER, argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  result out;
  std::string buf;
  char chunk[4096];
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!out.killed && !out.done) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      break;
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      break;
    auto n = ::read(fds[0], chunk, sizeof chunk);
    if (n <= 0)
      break;
    buf.append(chunk, static_cast<size_t>(n));
    size_t pos;
    while (!out.killed && (pos = buf.find('\n')) != std::string::npos) {
      auto line = buf.substr(0, pos);
      buf.erase(0, pos + 1);
      out.lines.push_back(line);
      if (line == "done")
        out.done = true;
      if (!kill_at.empty() && line == kill_at) {
        ::kill(pid, SIGKILL);
        out.killed = true;
      }
    }
  }
  // Once it said "done" nothing it does matters; a worker that hangs in shutdown must not
  // hang the test.
  if (!out.killed)
    ::kill(pid, SIGKILL);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

std::string value_of(const result& r, const std::string& key) {
  for (auto& l : r.lines)
    if (l.rfind(key + " ", 0) == 0)
      return l.substr(key.size() + 1);
  return {};
}

std::vector<std::string> violations(const result& r) {
  std::vector<std::string> out;
  for (auto& l : r.lines)
    if (l.rfind("violation ", 0) == 0)
      out.push_back(l);
  return out;
}

} // namespace

TEST_CASE("a controller killed at every task of every built-in template resumes to the same "
          "outcome, and the VM runs exactly once") {
  std::vector<scenario> scenarios{
    {"live-network-storage", "web-1", {"target=a3"}},
    {"live-precopy", "web-2", {"target=a3"}},
    // Predicted to fail: rolls back, with compensations to crash in.
    {"live-precopy", "web-1", {"target=a3", "bandwidth_mib_s=21"}},
    {"reboot", "web-1", {"target=a3"}},
    {"cross-zone", "web-1", {"zone=zone-b", "target=b2"}},
    {"postcopy-storage-sync", "db-1", {"target=a3"}},
    {"morph", "web-1", {"type=medium"}},
    {"morph-migrate", "web-1", {"type=medium", "target=a3"}},
  };
  int crashes = 0;
  for (auto& sc : scenarios) {
    auto base_dir = fresh_dir("base");
    auto base = run_worker(base_dir, sc, "");
    std::filesystem::remove_all(base_dir);
    INFO(sc.name << " " << sc.vm << " without a crash");
    REQUIRE(base.done);
    auto status = value_of(base, "status");
    auto host = value_of(base, "host");
    REQUIRE((status == "SUCCEEDED" || status == "ROLLED_BACK"));
    CHECK(violations(base).empty());
    // Every durable step of the run is a point to crash at.
    std::vector<std::string> points;
    for (auto& l : base.lines)
      if (l.rfind("started ", 0) == 0 || l.rfind("succeeded ", 0) == 0
          || l.rfind("compensating ", 0) == 0)
        points.push_back(l);
    for (auto& point : points) {
      INFO(sc.name << " " << sc.vm << ": killed at \"" << point << "\"");
      auto dir = fresh_dir("crash");
      auto first = run_worker(dir, sc, point);
      CHECK(first.killed);
      ++crashes;
      auto second = run_worker(dir, sc, "");
      std::filesystem::remove_all(dir);
      CHECK(second.done);
      CHECK(value_of(second, "status") == status);
      CHECK(value_of(second, "host") == host);
      for (auto& v : violations(second))
        FAIL_CHECK(v);
    }
  }
  CHECK(crashes > 100);
}
