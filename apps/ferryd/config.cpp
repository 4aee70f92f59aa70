#include "apps/ferryd/config.hpp"

#include <cmath>
#include <filesystem>
#include <set>

#include "actors/engine.hpp"
#include "common/errc.hpp"
#include "common/file.hpp"
#include "ferry/v1/daemon.pb.h"
#include "proto/text_io.hpp"

namespace ferry::daemon {

namespace {

namespace fs = std::filesystem;

std::string resolve(const std::string& dir, const std::string& p) {
  if (p.empty() || p == "-" || fs::path{p}.is_absolute() || dir.empty())
    return p;
  return (fs::path{dir} / p).lexically_normal().string();
}

bool valid_host_port(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= s.size())
    return false;
  // At most 5 digits: std::stol threw on a longer port and ferryd aborted.
  if (s.size() - colon - 1 > 5)
    return false;
  for (size_t i = colon + 1; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9')
      return false;
  auto port = std::stol(s.substr(colon + 1));
  return port >= 0 && port <= 65535;
}

role role_of(ferry::v1::Role r) {
  switch (r) {
    case ferry::v1::VIEWER: return role::viewer;
    case ferry::v1::OPERATOR: return role::operator_;
    case ferry::v1::ADMIN: return role::admin;
    default: return role::none;
  }
}

} // namespace

const char* to_string(role r) noexcept {
  switch (r) {
    case role::viewer: return "viewer";
    case role::operator_: return "operator";
    case role::admin: return "admin";
    default: return "none";
  }
}

caf::expected<daemon_config> parse_config(const std::string& source, const std::string& dir,
                                          const std::string& name) {
  ferry::v1::DaemonConfig pc;
  auto first = source.find_first_not_of(" \t\r\n");
  bool json = first != std::string::npos && source[first] == '{';
  if (auto err = parse_text_or_json(source, pc, json); !err.empty())
    return make_error(errc::invalid_argument, name + ": " + err);
  std::vector<std::string> problems;
  auto problem = [&](const std::string& field, const std::string& what) {
    problems.push_back(name + ": " + field + ": " + what);
  };
  daemon_config c;
  c.fleet_file = resolve(dir, pc.fleet_file());
  if (pc.data_dir().empty())
    problem("data_dir", "required");
  c.data_dir = resolve(dir, pc.data_dir());
  if (!pc.unix_socket().empty())
    c.unix_socket = pc.unix_socket() == "-" ? std::string{} : resolve(dir, pc.unix_socket());
  // The system's limit (sockaddr_un): before, gRPC refused it at start with "in use, or the
  // TLS files do not match".
  if (c.unix_socket.size() > max_unix_socket_path)
    problem("unix_socket", "\"" + c.unix_socket + "\" is " + std::to_string(c.unix_socket.size())
                             + " bytes long, at most " + std::to_string(max_unix_socket_path));
  if (pc.unix_socket_mode() != 0) {
    if (pc.unix_socket_mode() > 0777)
      problem("unix_socket_mode", "not a file mode (at most 0777)");
    c.unix_socket_mode = pc.unix_socket_mode();
  }
  if (pc.unix_socket_role() != ferry::v1::ROLE_UNSPECIFIED)
    c.unix_socket_role = role_of(pc.unix_socket_role());
  c.tcp_listen = pc.tcp_listen();
  if (!c.tcp_listen.empty() && !valid_host_port(c.tcp_listen))
    problem("tcp_listen", "\"" + c.tcp_listen + "\" is not host:port");
  if (!c.tcp_listen.empty()) {
    if (pc.tls().cert_file().empty())
      problem("tls.cert_file", "required with tcp_listen (TCP is served with TLS only)");
    if (pc.tls().key_file().empty())
      problem("tls.key_file", "required with tcp_listen (TCP is served with TLS only)");
    if (pc.tokens_size() == 0)
      problem("tokens", "at least one token is required with tcp_listen (no anonymous access "
                        "on TCP)");
  }
  auto pem = [&](const std::string& field, const std::string& file, std::string& out) {
    if (file.empty())
      return;
    auto text = read_file(resolve(dir, file));
    if (!text)
      problem(field, "cannot read " + resolve(dir, file) + ": " + message_of(text.error()));
    else if (text->find("-----BEGIN ") == std::string::npos)
      problem(field, resolve(dir, file) + " is not a PEM file");
    else
      out = std::move(*text);
  };
  pem("tls.cert_file", pc.tls().cert_file(), c.tls_cert);
  pem("tls.key_file", pc.tls().key_file(), c.tls_key);
  pem("tls.client_ca_file", pc.tls().client_ca_file(), c.tls_client_ca);
  std::set<std::string> names, secrets;
  for (int i = 0; i < pc.tokens_size(); ++i) {
    auto& t = pc.tokens(i);
    auto field = "tokens[" + std::to_string(i) + "]";
    token_entry e;
    e.name = t.name();
    if (e.name.empty())
      problem(field + ".name", "required");
    else if (!names.insert(e.name).second)
      problem(field + ".name", "\"" + e.name + "\" is given twice");
    if (!t.secret().empty() && !t.secret_file().empty())
      problem(field, "give secret or secret_file, not both");
    e.secret = t.secret();
    if (!t.secret_file().empty()) {
      auto text = read_file(resolve(dir, t.secret_file()));
      if (!text) {
        problem(field + ".secret_file",
                "cannot read " + resolve(dir, t.secret_file()) + ": " + message_of(text.error()));
      } else {
        e.secret = text->substr(0, text->find_first_of("\r\n"));
      }
    }
    if (e.secret.empty() && t.secret_file().empty())
      problem(field + ".secret", "required (or secret_file)");
    else if (e.secret.size() < 16)
      problem(field + ".secret", "shorter than 16 characters");
    else if (e.secret.find_first_of(" \t") != std::string::npos)
      problem(field + ".secret", "contains white space");
    else if (!secrets.insert(e.secret).second)
      problem(field + ".secret", "the same secret as another token");
    e.granted = role_of(t.role());
    if (e.granted == role::none)
      problem(field + ".role", "required: VIEWER, OPERATOR or ADMIN");
    c.tokens.push_back(std::move(e));
  }
  c.metrics_listen = pc.metrics_listen();
  if (!c.metrics_listen.empty() && !valid_host_port(c.metrics_listen))
    problem("metrics_listen", "\"" + c.metrics_listen + "\" is not host:port");
  if (!pc.log_format().empty()) {
    if (pc.log_format() != "text" && pc.log_format() != "json")
      problem("log_format", "\"" + pc.log_format() + "\": expected text or json");
    c.log_format = pc.log_format();
  }
  if (!pc.log_level().empty()) {
    static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error"};
    if (!levels.count(pc.log_level()))
      problem("log_level", "\"" + pc.log_level() + "\": expected trace, debug, info, warn or error");
    c.log_level = pc.log_level();
  }
  c.log_file = resolve(dir, pc.log_file());
  for (auto& d : pc.template_dirs())
    c.template_dirs.push_back(resolve(dir, d));
  if (pc.has_sync())
    c.sync = pc.sync();
  if (pc.threads() > max_engine_threads)
    problem("threads", "at most " + std::to_string(max_engine_threads) + ", got "
                         + std::to_string(pc.threads()));
  c.threads = pc.threads();
  if (pc.shutdown_grace_ms() != 0)
    c.shutdown_grace = std::chrono::milliseconds{pc.shutdown_grace_ms()};
  if (!std::isfinite(pc.sim_speed()) || pc.sim_speed() < 0 || pc.sim_speed() > 1e9)
    problem("sim_speed", "must be a number, 0 (the default) or more, at most 1e9; got "
                           + std::to_string(pc.sim_speed()));
  if (pc.sim_speed() > 0)
    c.sim_speed = pc.sim_speed();
  if (c.unix_socket.empty() && c.tcp_listen.empty())
    problem("unix_socket", "\"-\" (none) and no tcp_listen: ferryd would listen nowhere");
  if (!problems.empty()) {
    std::string msg;
    for (auto& p : problems)
      msg += (msg.empty() ? "" : "\n") + p;
    return make_error(errc::invalid_argument, msg);
  }
  return c;
}

caf::expected<daemon_config> load_config(const std::string& path) {
  auto text = read_file(path);
  if (!text)
    return make_error(errc::invalid_argument,
                      "cannot read " + path + ": " + message_of(text.error()));
  auto dir = fs::path{path}.parent_path().string();
  return parse_config(*text, dir, path);
}

} // namespace ferry::daemon
