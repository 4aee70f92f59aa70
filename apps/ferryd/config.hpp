// ferryd's configuration: the file (proto/ferry/v1/daemon.proto, text format or JSON) read,
// checked and turned into plain options. Errors name the file and the field
// ("ferryd.conf: tokens[1].secret: shorter than 16 characters"); a file with any error is
// refused as a whole. Read once, on the main thread, before anything starts.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <caf/expected.hpp>

namespace ferry::daemon {

enum class role : int { none = 0, viewer = 1, operator_ = 2, admin = 3 };

const char* to_string(role r) noexcept;

struct token_entry {
  std::string name;
  std::string secret;
  role granted = role::none;
};

/// The longest path of a unix socket (sockaddr_un's sun_path, less its terminating NUL).
constexpr size_t max_unix_socket_path = 107;

struct daemon_config {
  /// The fleet file; empty: no fleet. Default: "".
  std::string fleet_file;
  /// Journal and simulator state. Required.
  std::string data_dir;
  /// Empty: no unix socket. Default: /run/ferry/ferryd.sock. At most max_unix_socket_path
  /// bytes, once resolved against the file's directory.
  std::string unix_socket = "/run/ferry/ferryd.sock";
  /// Default: 0660.
  unsigned unix_socket_mode = 0660;
  /// Role of calls without a token on the unix socket. Default: admin.
  role unix_socket_role = role::admin;
  /// host:port; empty: no TCP. Default: "".
  std::string tcp_listen;
  /// PEM contents (read from the files the config names).
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  std::vector<token_entry> tokens;
  /// host:port of GET /metrics; empty: none. Default: "".
  std::string metrics_listen;
  /// "text" or "json". Default: "text".
  std::string log_format = "text";
  /// Default: "info".
  std::string log_level = "info";
  /// Empty: stderr. Default: "".
  std::string log_file;
  /// Empty: the templates installed with Ferry, with a fleet. Default: empty.
  std::vector<std::string> template_dirs;
  /// Default: true.
  bool sync = true;
  /// 0: one per core. Default: 0.
  unsigned threads = 0;
  /// Default: 10 s.
  std::chrono::milliseconds shutdown_grace{10000};
  /// Virtual seconds per real second of the simulated hosts. Default: 100.
  double sim_speed = 100;
};

/// Reads and checks the file at `path`.
caf::expected<daemon_config> load_config(const std::string& path);

/// Checks and completes a configuration given as text (`dir`: what relative paths are
/// relative to; `name`: how errors name the source).
caf::expected<daemon_config> parse_config(const std::string& source, const std::string& dir,
                                          const std::string& name);

} // namespace ferry::daemon
