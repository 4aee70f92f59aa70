// ferry::api::client — the ferryd API from C++: one channel to a server (a unix socket, or
// host:port over TLS), the bearer token on every call, a deadline on every unary call, and
// errors as ferry::errc (the server's canonical code and message, or unavailable naming the
// server when it cannot be reached). Used by the ferry CLI, the API tests and the benchmark.
// Thread-safe: calls from many threads share the channel.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "ferry/v1/api.pb.h"
#include "workflows/definition.hpp"

namespace ferry::api {

/// The error for a wait outside 0..max_duration_ms (workflows/definition.hpp), the longest a Get or
/// GetBatch may ask for: "wait_ms: ...". ferryd refuses such a wait, and so does the client.
std::string wait_problem(int64_t wait_ms);

struct client_options {
  /// "unix:/run/ferry/ferryd.sock", a path (a unix socket), or "host:port" (TLS).
  /// Default: the daemon's default socket.
  std::string server = "unix:/run/ferry/ferryd.sock";
  /// Bearer token; empty: none (allowed on the unix socket only, when ferryd lets it).
  std::string token;
  /// TLS: PEM file of the CA that signed ferryd's certificate; empty: the system's roots.
  std::string ca_file;
  /// TLS: the client's certificate and key (when ferryd requires client certificates).
  std::string cert_file;
  std::string key_file;
  /// Deadline of each unary call. Default: 30 s.
  std::chrono::milliseconds timeout{30000};
  /// Give this client a connection of its own instead of sharing one with other clients of
  /// the same server in this process. Default: false.
  bool own_connection = false;
};

class client {
public:
  static caf::expected<std::unique_ptr<client>> connect(const client_options& opts);
  ~client();

  const std::string& server() const noexcept;

  /// Waits until the channel is connected (ferryd is up), for at most `timeout`.
  bool wait_connected(std::chrono::milliseconds timeout);

  caf::expected<v1::SubmitResponse> submit(const v1::SubmitRequest& req);
  /// `wait`: > 0, answer once the run is at rest or after that long.
  caf::expected<v1::Run> get(const std::string& run_id,
                             std::chrono::milliseconds wait = std::chrono::milliseconds{0});
  caf::expected<v1::ListResponse> list(const v1::ListRequest& req);
  /// `op`: cancel, abort, pause, resume, approve, retry.
  caf::expected<v1::ControlResponse> control(const std::string& op, const v1::ControlRequest& req);
  caf::expected<v1::FleetResponse> fleet();
  caf::expected<v1::RecommendResponse> recommend(const v1::RecommendRequest& req);
  caf::expected<v1::OptionsResponse> options(const v1::OptionsRequest& req);
  caf::expected<v1::ListTemplatesResponse> list_templates();
  caf::expected<v1::TemplateResponse> get_template(const std::string& name);
  caf::expected<v1::TemplateResponse> put_template(const std::string& source);
  caf::error delete_template(const std::string& name);
  caf::expected<v1::RenderTemplateResponse> render_template(const v1::TemplateCall& call);

  caf::expected<v1::BatchStatus> submit_batch(const v1::SubmitBatchRequest& req);
  /// `wait`: > 0, answer once the batch finished or after that long (its status then).
  caf::expected<v1::BatchStatus> get_batch(const std::string& name,
                                           std::chrono::milliseconds wait =
                                             std::chrono::milliseconds{0});
  caf::expected<v1::ListBatchesResponse> list_batches();
  caf::expected<v1::BatchStatus> cancel_batch(const std::string& name);

  /// Streams a watch: `on_message` for each message (return false to stop). Returns none when
  /// the stream ended normally (the run is at rest, or stopped by `on_message`), else the
  /// error (unavailable when ferryd went away: watch again from the last seq + 1).
  /// `timeout` > 0: the stream's deadline (deadline_exceeded after it).
  caf::error watch(const v1::WatchRequest& req,
                   const std::function<bool(const v1::WatchResponse&)>& on_message,
                   std::chrono::milliseconds timeout = std::chrono::milliseconds{0});

  struct impl;

private:
  explicit client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace ferry::api
