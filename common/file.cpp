#include "common/file.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errc.hpp"

namespace ferry {

namespace {

caf::error failure(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR: return make_error(errc::not_found, "no such file");
    case EISDIR: return make_error(errc::invalid_argument, "is a directory");
    case EACCES:
    case EPERM: return make_error(errc::invalid_argument, "permission denied");
    default: return make_error(errc::invalid_argument, std::strerror(err));
  }
}

struct fd_closer {
  int fd;
  ~fd_closer() {
    if (fd >= 0)
      ::close(fd);
  }
};

/// Opens `path` for reading; -1 with `err` set when it cannot, or when it is a directory.
int open_for_reading(const std::string& path, struct stat& st, caf::error& err) {
  if (path.empty()) {
    err = make_error(errc::invalid_argument, "no file named (the path is empty)");
    return -1;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = failure(errno);
    return -1;
  }
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    err = failure(S_ISDIR(st.st_mode) ? EISDIR : errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

} // namespace

caf::error check_readable(const std::string& path) {
  struct stat st {};
  caf::error err;
  fd_closer closer{open_for_reading(path, st, err)};
  return err;
}

caf::expected<std::string> read_file(const std::string& path) {
  struct stat st {};
  caf::error err;
  fd_closer closer{open_for_reading(path, st, err)};
  if (closer.fd < 0)
    return err;
  int fd = closer.fd;
  std::string text;
  if (S_ISREG(st.st_mode) && st.st_size > 0)
    text.reserve(static_cast<size_t>(st.st_size));
  char chunk[65536];
  for (;;) {
    auto n = ::read(fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return failure(errno);
    }
    if (n == 0)
      break;
    text.append(chunk, static_cast<size_t>(n));
  }
  return text;
}

caf::error open_for_writing(std::ofstream& out, const std::string& path, bool append) {
  if (path.empty())
    return make_error(errc::invalid_argument, "no file named (the path is empty)");
  errno = 0;
  out.open(path, append ? std::ios::app : std::ios::trunc | std::ios::out);
  if (out)
    return {};
  int err = errno != 0 ? errno : EIO;
  // The file itself need not exist: a missing part is one of its directories.
  if (err == ENOENT || err == ENOTDIR)
    return make_error(errc::invalid_argument, "its directory does not exist");
  return failure(err);
}

caf::error sync_file(const std::string& path) {
  if (path.empty())
    return make_error(errc::invalid_argument, "no file named (the path is empty)");
  fd_closer file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0)
    return failure(errno);
  struct stat st {};
  if (::fstat(file.fd, &st) != 0)
    return failure(errno);
  if (!S_ISREG(st.st_mode))
    return {};
  auto refused = [](int err) {
    return make_error(errc::unavailable, std::string{"cannot be synced: "} + std::strerror(err));
  };
  if (::fsync(file.fd) != 0)
    return refused(errno);
  auto parent = std::filesystem::path{path}.parent_path();
  fd_closer dir{::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (dir.fd < 0)
    return refused(errno);
  // Some file systems cannot sync a directory (EINVAL): their names are durable without it.
  if (::fsync(dir.fd) != 0 && errno != EINVAL)
    return refused(errno);
  return {};
}

} // namespace ferry
