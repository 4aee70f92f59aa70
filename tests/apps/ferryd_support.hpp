// What the ferryd API tests share: a ferryd process on a temporary directory (its config
// written by the test, its "ready" line read with a deadline), test certificates made with
// openssl at test time, API clients, and definitions the tests submit.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>

#include <catch2/catch.hpp>

#include "apps/ferryd/client.hpp"
#include "tests/support/child_process.hpp"

namespace ferry::test {

inline std::string make_temp_dir(const char* prefix) {
  std::string tmpl = std::string{"/tmp/"} + prefix + "-XXXXXX";
  auto* p = mkdtemp(tmpl.data());
  REQUIRE(p != nullptr);
  return p;
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out{path};
  out << text;
  REQUIRE(out.good());
}

inline std::string slurp(const std::string& path) {
  std::ifstream in{path};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A CA and a server certificate for 127.0.0.1 and localhost, signed by it, in `dir`
/// (ca.pem, server.pem, server.key), and a second CA that signed nothing (other-ca.pem).
inline void make_certificates(const std::string& dir) {
  auto script = "set -e; cd '" + dir + "'; "
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
    "  -keyout ca.key -out ca.pem -days 2 -subj /CN=ferry-test-ca 2>/dev/null; "
    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
    "  -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=other-ca 2>/dev/null; "
    "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
    "  -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null; "
    "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext; "
    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
    "  -out server.pem -days 2 -extfile san.ext 2>/dev/null";
  REQUIRE(std::system(script.c_str()) == 0);
}

/// Tokens of the TLS tests, one per role.
constexpr const char* viewer_token = "viewer-0123456789abcdef";
constexpr const char* operator_token = "operator-0123456789abcdef";
constexpr const char* admin_token = "admin-0123456789abcdef";

/// A ferryd process. `config` is the body of its config file; data_dir, unix_socket and
/// log_file are added, inside `dir`.
class ferryd_process {
public:
  /// Owns `dir`: removed, with the journal and certificates in it, once ferryd is gone.
  ferryd_process(std::string dir, std::string config)
    : dir_(std::move(dir)), config_(std::move(config)) {
  }

  ~ferryd_process() {
    proc_.reset(); // kills a ferryd still running
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  ferryd_process(const ferryd_process&) = delete;
  ferryd_process& operator=(const ferryd_process&) = delete;

  const std::string& dir() const { return dir_; }
  std::string socket() const { return dir_ + "/ferryd.sock"; }
  std::string log() const { return slurp(dir_ + "/ferryd.log"); }
  int tcp_port() const { return tcp_port_; }
  int metrics_port() const { return metrics_port_; }

  /// Starts ferryd and waits (with a deadline) for its ready line.
  void start() {
    write_file(dir_ + "/ferryd.conf", config_ + "\ndata_dir: \"" + dir_ + "/data\"\nunix_socket: \""
                                        + socket() + "\"\nlog_file: \"" + dir_ + "/ferryd.log\"\n");
    proc_ = std::make_unique<child>(
      std::vector<std::string>{FERRYD_BIN, "--config", dir_ + "/ferryd.conf"});
    auto ready = proc_->read_until(
      [](const std::string& out) { return out.find("ready ") != std::string::npos
                                          && out.find('\n', out.find("ready ")) != std::string::npos; },
      steady::now() + 60s);
    INFO(proc_->out() << log());
    REQUIRE(ready);
    std::smatch m;
    auto out = proc_->out();
    REQUIRE(std::regex_search(out, m, std::regex{"ready unix=(\\S+) tcp=(\\S+) metrics=(\\S+)"}));
    tcp_port_ = port_of(m[2].str());
    metrics_port_ = port_of(m[3].str());
  }

  /// SIGTERM; returns ferryd's exit code.
  int stop() {
    proc_->signal(SIGTERM);
    return proc_->wait_exit(60s);
  }

  void kill9() { proc_->kill_now(); }

  /// Sends `sig` to ferryd.
  void signal(int sig) { proc_->signal(sig); }

  api::client_options unix_client() const {
    api::client_options o;
    o.server = "unix:" + socket();
    return o;
  }

  api::client_options tls_client(const char* token) const {
    api::client_options o;
    o.server = "127.0.0.1:" + std::to_string(tcp_port_);
    o.ca_file = dir_ + "/ca.pem";
    if (token)
      o.token = token;
    return o;
  }

private:
  static int port_of(const std::string& hp) {
    auto c = hp.rfind(':');
    return c == std::string::npos ? 0 : std::stoi(hp.substr(c + 1));
  }

  std::string dir_;
  std::string config_;
  std::unique_ptr<child> proc_;
  int tcp_port_ = 0;
  int metrics_port_ = 0;
};

/// GET `path` from 127.0.0.1:`port`: the whole response, or "" (read with a deadline).
inline std::string http_get(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    auto req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      auto deadline = steady::now() + 30s;
      char buf[4096];
      for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0)
          break;
        auto n = read(fd, buf, sizeof buf);
        if (n <= 0)
          break;
        out.append(buf, static_cast<size_t>(n));
      }
    }
  }
  if (fd >= 0)
    close(fd);
  return out;
}

inline std::unique_ptr<api::client> connect(api::client_options o) {
  auto c = api::client::connect(o);
  REQUIRE(c);
  return std::move(*c);
}

/// Five noop tasks in a chain.
constexpr const char* noop5 = R"(name: "noop5"
tasks { id: "a" kind: "noop" }
tasks { id: "b" kind: "noop" depends_on: "a" }
tasks { id: "c" kind: "noop" depends_on: "b" }
tasks { id: "d" kind: "noop" depends_on: "c" }
tasks { id: "e" kind: "noop" depends_on: "d" })";

/// Waits at the gate "approval" until approved.
constexpr const char* gated = R"(name: "gated"
tasks { id: "prepare" kind: "noop" }
tasks { id: "approval" kind: "noop" gate: true depends_on: "prepare" }
tasks { id: "finish" kind: "noop" depends_on: "approval" })";

/// Past its point of no return, fails its only attempt and waits in FAILED for an
/// operator's retry.
constexpr const char* flaky = R"(name: "flaky"
tasks { id: "commit" kind: "noop" point_of_no_return: true }
tasks {
  id: "step" kind: "fail" retry { max_attempts: 1 } depends_on: "commit"
  params { fields { key: "attempts" value { number_value: 1 } } }
})";

} // namespace ferry::test
