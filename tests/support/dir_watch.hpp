// Waiting, with a deadline, for a condition on the files of a directory: the condition is
// checked again each time a file in it is created, written, or moved in or out (inotify),
// never on a sleep.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

namespace ferry::test {

/// True once `done()` holds; false when it still does not at `timeout`.
inline bool wait_in_dir(const std::string& dir, const std::function<bool()>& done,
                        std::chrono::milliseconds timeout) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + timeout;
  int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd >= 0
      && inotify_add_watch(fd, dir.c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM)
           < 0) {
    close(fd);
    fd = -1;
  }
  // Watching before the first check: a change between the check and the wait is not missed.
  while (fd >= 0 && !done()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0)
      break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) > 0) {
      char buf[4096];
      while (read(fd, buf, sizeof buf) > 0) {
      }
    }
  }
  if (fd >= 0)
    close(fd);
  return done();
}

} // namespace ferry::test
