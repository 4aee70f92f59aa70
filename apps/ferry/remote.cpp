#include "apps/ferry/remote.hpp"

#include <cstdio>

#include <google/protobuf/util/json_util.h>

#include "apps/ferry/commands.hpp"
#include "common/errc.hpp"
#include "workflows/run_state.hpp"

namespace ferry::cli {

void add_conn(CLI::App* cmd, conn_args& c, bool call_timeout) {
  cmd->add_option("--server", c.server,
                  "ferryd: unix:PATH (default unix:/run/ferry/ferryd.sock) or HOST:PORT (TLS)")
    ->envname("FERRY_SERVER");
  cmd->add_option("--token", c.token, "Bearer token")->envname("FERRY_TOKEN");
  cmd->add_option("--ca", c.ca, "TLS: CA certificate (PEM) that signed ferryd's certificate")
    ->envname("FERRY_CA");
  cmd->add_option("--cert", c.cert, "TLS: client certificate (PEM), when ferryd asks for one")
    ->envname("FERRY_CERT");
  cmd->add_option("--key", c.key, "TLS: client key (PEM)")->envname("FERRY_KEY");
  if (call_timeout)
    cmd->add_option("--timeout", c.timeout_s, "Seconds each call may take (default 30)")
      ->check(finite_number(true));
}

bool server_named(const conn_args& c) {
  return !c.server.empty();
}

std::unique_ptr<api::client> connect(const conn_args& c, const char* cmd, int& rc) {
  api::client_options o;
  if (!c.server.empty())
    o.server = c.server;
  o.token = c.token;
  o.ca_file = c.ca;
  o.cert_file = c.cert;
  o.key_file = c.key;
  o.timeout = std::chrono::milliseconds{static_cast<int64_t>(c.timeout_s * 1000)};
  auto cl = api::client::connect(o);
  if (!cl) {
    rc = fail(cmd, cl.error());
    return nullptr;
  }
  return std::move(*cl);
}

int exit_of(const caf::error& err) {
  switch (code_of(err)) {
    case errc::ok: return exit_ok;
    case errc::invalid_argument:
    case errc::not_found:
    case errc::already_exists:
    case errc::failed_precondition:
    case errc::out_of_range: return exit_bad_input;
    case errc::unauthenticated:
    case errc::permission_denied: return exit_not_allowed;
    case errc::unavailable: return exit_unavailable;
    case errc::deadline_exceeded: return exit_timeout;
    default: return exit_engine_error;
  }
}

int fail(const char* cmd, const caf::error& err) {
  std::fprintf(stderr, "ferry %s: %s\n", cmd, describe(err).c_str());
  return exit_of(err);
}

void print_json(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string out;
  (void) google::protobuf::util::MessageToJsonString(m, &out, o);
  std::printf("%s\n", out.c_str());
}

int exit_of_status(int v) {
  switch (static_cast<run_status>(v)) {
    case run_status::succeeded: return exit_ok;
    case run_status::rolled_back: return exit_rolled_back;
    case run_status::failed: return exit_failed;
    case run_status::aborted: return exit_aborted;
    default: return exit_ok;
  }
}

} // namespace ferry::cli
