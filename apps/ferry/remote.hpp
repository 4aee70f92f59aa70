// What the ferry CLI's commands that talk to ferryd share: the connection flags (--server,
// --token and the TLS files, with FERRY_SERVER, FERRY_TOKEN, FERRY_CA, FERRY_CERT, FERRY_KEY),
// the exit code of an API error, and --json output (the API's message in protobuf's JSON
// mapping, field names as in api.proto).
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <caf/expected.hpp>

#include "apps/ferryd/client.hpp"

#include "ferry/v1/api.pb.h"

namespace google::protobuf {
class Message;
}

namespace ferry::cli {

struct conn_args {
  std::string server;
  std::string token;
  std::string ca;
  std::string cert;
  std::string key;
  double timeout_s = 30;
};

/// Adds --server, --token, --ca, --cert, --key and --timeout (and their variables) to `cmd`;
/// without `call_timeout`, no --timeout (the command has its own).
void add_conn(CLI::App* cmd, conn_args& c, bool call_timeout = true);

/// Whether a server was named (flag or FERRY_SERVER): commands that can work on local files
/// too (templates) then ask the server.
bool server_named(const conn_args& c);

/// A client for `c`; on failure prints "ferry CMD: error" and sets `rc`.
std::unique_ptr<api::client> connect(const conn_args& c, const char* cmd, int& rc);

/// The exit code of an API error (README: exit codes).
int exit_of(const caf::error& err);

/// Prints "ferry CMD: code: message" to stderr and returns exit_of(err).
int fail(const char* cmd, const caf::error& err);

/// `m` as one line of JSON on stdout.
void print_json(const google::protobuf::Message& m);

/// Exit code of a run at rest: 0 succeeded, 1 rolled back, 2 failed, 3 aborted.
int exit_of_status(int run_status_value);

/// Splits "NAME=VALUE" arguments into `out`; on a malformed one, or a NAME given twice, prints
/// "ferry CMD: --param "x": expected NAME=VALUE" (or "... given more than once") and returns
/// false.
template <class Map>
bool split_params(const std::vector<std::string>& params, Map& out, const char* cmd) {
  for (auto& p : params) {
    auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "ferry %s: --param \"%s\": expected NAME=VALUE\n", cmd, p.c_str());
      return false;
    }
    auto name = p.substr(0, eq);
    if (out.count(name) > 0) {
      std::fprintf(stderr, "ferry %s: --param \"%s\": given more than once\n", cmd,
                   name.c_str());
      return false;
    }
    out[name] = p.substr(eq + 1);
  }
  return true;
}

} // namespace ferry::cli

namespace ferry::cli {

/// Follows run `id` from event `from_seq` (watch.cpp) until it is at rest, reconnecting for
/// up to `reconnect_s` seconds when ferryd goes away; returns the exit code of its outcome.
int watch_run(const conn_args& c, const std::string& id, uint64_t from_seq, bool json,
              double reconnect_s);

} // namespace ferry::cli

namespace ferry::cli {

/// The output of `ferry fleet`, `recommend` and `options` (fleet_output.cpp); print_recommend
/// returns exit_denied when every zone denies the VM.
int print_fleet(const v1::FleetResponse& f, bool json);
int print_recommend(const v1::RecommendResponse& r, bool json);
int print_options(const v1::OptionsResponse& r, bool json);

/// `ferry fleet`, `ferry recommend VM`, `ferry options VM` against ferryd.
int remote_fleet(const conn_args& c, bool json);
int remote_recommend(const conn_args& c, const v1::RecommendRequest& req, bool json);
int remote_options(const conn_args& c, const std::string& vm, bool json);

} // namespace ferry::cli

namespace ferry::cli {

/// `ferry templates ...` against ferryd (remote_templates.cpp).
int remote_templates_list(const conn_args& c, bool json);
int remote_templates_show(const conn_args& c, const std::string& name, bool json);
int remote_templates_render(const conn_args& c, const std::string& name,
                            const std::vector<std::string>& params, bool json);
int remote_templates_put(const conn_args& c, const std::string& file);
int remote_templates_delete(const conn_args& c, const std::string& name);

} // namespace ferry::cli
