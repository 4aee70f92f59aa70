// A child process for tests: its stdout and stderr come back through one pipe, read with
// deadlines (poll), and its exit is waited for on a pidfd with a deadline, so tests wait on
// events and never sleep. The destructor kills a child still running (only the children it
// started). Used by the end-to-end tests and the ferryd API tests.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace ferry::test {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

struct cmd_result {
  /// Exit status; -1 when it was killed at its deadline.
  int status = -1;
  std::string out;
};

/// A child process whose stdout and stderr come back through one pipe.
class child {
public:
  explicit child(const std::vector<std::string>& argv) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
      return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      std::vector<char*> args;
      for (auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  }
  ~child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      wait_exit(10s);
    }
    if (fd_ >= 0)
      close(fd_);
    if (pidfd_ >= 0)
      close(pidfd_);
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& out() const { return out_; }

  /// Reads output until `pred(out)` holds, the output ends, or `deadline`.
  bool read_until(const std::function<bool(const std::string&)>& pred, steady::time_point deadline) {
    while (!pred(out_)) {
      if (fd_ < 0)
        return false;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
      if (left <= 0ms)
        return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0)
        continue;
      char buf[4096];
      auto n = read(fd_, buf, sizeof buf);
      if (n <= 0) {
        close(fd_);
        fd_ = -1;
        continue;
      }
      out_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  /// Waits for the child to exit (reading its output); kills it at `timeout`.
  int wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = steady::now() + timeout;
    read_until([](const std::string&) { return false; }, deadline);
    if (pidfd_ >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
      pollfd p{pidfd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) <= 0)
        kill(pid_, SIGKILL);
    }
    int st = 0;
    waitpid(pid_, &st, 0);
    reaped_ = true;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

  /// Sends `sig` (SIGTERM for a graceful stop).
  void signal(int sig) { kill(pid_, sig); }

  void kill_now() {
    kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
    reaped_ = true;
  }

private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int pidfd_ = -1;
  bool reaped_ = false;
  std::string out_;
};

inline cmd_result run_cmd(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  child c{argv};
  cmd_result r;
  r.status = c.wait_exit(timeout);
  r.out = c.out();
  return r;
}

} // namespace ferry::test
