// api_load — drives ferryd's API the way many independent clients would, for benchmarks:
// `clients` logical clients, each with a connection of its own, each submitting a definition
// one after another (the next once the previous is acknowledged, i.e. durable) and asking, for
// every run it started, to be told once the run is at rest (Get with wait). Runs on gRPC's
// callback API: completions run on gRPC's own threads, so the client side needs no thread per
// client (the server is what is measured). Blocks until every run is at rest or `timeout`;
// the calls still in flight then must end before the result's owner goes away (the timeout
// is also each call's deadline).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace ferry::api {

struct load_options {
  /// unix:PATH or host:port (TLS with `ca_file`).
  std::string server;
  std::string token;
  std::string ca_file;
  size_t clients = 32;
  size_t runs = 20000;
  /// The definition, in text format.
  std::string definition;
  std::chrono::milliseconds timeout{std::chrono::minutes{10}};
};

struct load_result {
  size_t acknowledged = 0;
  size_t succeeded = 0;
  size_t errors = 0;
  std::string first_error;
  /// From the first submit to the last acknowledgement, and to the last run at rest.
  double submit_s = 0;
  double elapsed_s = 0;
  /// Submit latencies, in ms, sorted.
  std::vector<double> submit_ms;
};

load_result run_load(const load_options& opts);

} // namespace ferry::api
