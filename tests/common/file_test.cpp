// read_file and check_readable: every input file Ferry reads goes through them, so a directory
// or a missing file given where a file was expected gets its reason, not an empty document.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include "common/errc.hpp"
#include "common/file.hpp"

using namespace ferry;

namespace {

struct scratch {
  std::string path;
  scratch() {
    char tmpl[] = "/tmp/ferry-file-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~scratch() { std::filesystem::remove_all(path); }
};

} // namespace

TEST_CASE("read_file reads a whole file, whatever its size and bytes") {
  scratch dir;
  std::string big;
  for (size_t i = 0; i < 200000; ++i) // more than one read's chunk, with NULs in it
    big.push_back(static_cast<char>((i * 131) % 256));
  std::ofstream{dir.path + "/big", std::ios::binary} << big;
  std::ofstream{dir.path + "/empty"};
  auto got = read_file(dir.path + "/big");
  REQUIRE(got);
  CHECK(got->size() == big.size());
  CHECK(*got == big);
  auto empty = read_file(dir.path + "/empty");
  REQUIRE(empty);
  CHECK(empty->empty());
  CHECK_FALSE(check_readable(dir.path + "/big"));
}

TEST_CASE("read_file reads a file whose size the system does not tell, and a pipe, to the end") {
  // /proc files say they are 0 bytes long.
  auto status = read_file("/proc/self/status");
  REQUIRE(status);
  CHECK_THAT(*status, Catch::Contains("Name:"));

  scratch dir;
  auto fifo = dir.path + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string sent(100000, 'x');
  sent += "end";
  std::thread writer{[&] { std::ofstream{fifo, std::ios::binary} << sent; }};
  auto got = read_file(fifo);
  writer.join();
  REQUIRE(got);
  CHECK(*got == sent);
}

TEST_CASE("read_file says why a file cannot be read") {
  scratch dir;
  std::ofstream{dir.path + "/plain"} << "text";
  std::filesystem::create_directories(dir.path + "/sub");

  auto directory = read_file(dir.path + "/sub");
  REQUIRE_FALSE(directory);
  CHECK(code_of(directory.error()) == errc::invalid_argument);
  CHECK(message_of(directory.error()) == "is a directory");
  auto d = check_readable(dir.path + "/sub");
  REQUIRE(d);
  CHECK(message_of(d) == "is a directory");

  for (auto* missing : {"/missing", "/no/such/dir/file", "/plain/under-a-file"}) {
    INFO(missing);
    auto m = read_file(dir.path + missing);
    REQUIRE_FALSE(m);
    CHECK(code_of(m.error()) == errc::not_found);
    CHECK(message_of(m.error()) == "no such file");
    CHECK(message_of(check_readable(dir.path + missing)) == "no such file");
  }

  auto none = read_file("");
  REQUIRE_FALSE(none);
  CHECK(code_of(none.error()) == errc::invalid_argument);
  CHECK(message_of(none.error()) == "no file named (the path is empty)");
}

TEST_CASE("sync_file syncs a written file, passes over what cannot be synced, and says why it "
          "cannot open one") {
  scratch dir;
  std::ofstream{dir.path + "/written"} << "data\n";
  CHECK_FALSE(sync_file(dir.path + "/written"));
  // A relative path: its directory is the current one.
  auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path);
  CHECK_FALSE(sync_file("written"));
  std::filesystem::current_path(cwd);
  // Not a regular file: nothing to make durable.
  CHECK_FALSE(sync_file("/dev/null"));
  auto missing = sync_file(dir.path + "/missing");
  REQUIRE(missing);
  CHECK(code_of(missing) == errc::not_found);
  CHECK(message_of(missing) == "no such file");
  auto empty = sync_file("");
  REQUIRE(empty);
  CHECK(code_of(empty) == errc::invalid_argument);
}

TEST_CASE("open_for_writing opens a file to write or append, and says why it cannot") {
  scratch dir;
  auto path = dir.path + "/out";
  {
    std::ofstream out;
    REQUIRE_FALSE(open_for_writing(out, path, false));
    out << "one\n";
  }
  {
    std::ofstream out;
    REQUIRE_FALSE(open_for_writing(out, path, true));
    out << "two\n";
  }
  auto got = read_file(path);
  REQUIRE(got);
  CHECK(*got == "one\ntwo\n");
  {
    std::ofstream out;
    REQUIRE_FALSE(open_for_writing(out, path, false));
    out << "three\n";
  }
  CHECK(*read_file(path) == "three\n");
  std::ofstream out;
  auto is_dir = open_for_writing(out, dir.path, false);
  REQUIRE(is_dir);
  CHECK(code_of(is_dir) == errc::invalid_argument);
  CHECK(message_of(is_dir) == "is a directory");
  auto no_dir = open_for_writing(out, dir.path + "/missing/out", true);
  REQUIRE(no_dir);
  CHECK(message_of(no_dir) == "its directory does not exist");
  auto under_file = open_for_writing(out, path + "/out", true);
  REQUIRE(under_file);
  CHECK(message_of(under_file) == "its directory does not exist");
}
