// ferryd's Prometheus endpoint: the metrics in the text exposition format (version 0.0.4)
// rendered from the engine, the fleet and the API's counters, served by a small HTTP/1.1
// server (GET /metrics, GET /healthz) on a thread of its own. Up to max_connections clients
// at once, each under a 5 s deadline: a client that stalls holds only its own connection (one
// at a time, a connection left idle held /healthz for 5 s).
#pragma once

#include "apps/ferryd/service.hpp" // first: it includes the generated gRPC header

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <caf/expected.hpp>

#include "actors/engine.hpp"
#include "apps/ferryd/watch.hpp"

namespace ferry::daemon {

/// Every metric ferryd exports (docs/operations.md lists them).
std::string render_metrics(engine& eng, const call_counters& calls, const watch_hub& hub);

/// Whether a listener could bind `host_port` now: none, or why not, naming `field` (ferryd
/// checks its tcp_listen and metrics_listen with it before it opens the journal)
/// ("tcp_listen: cannot listen on 127.0.0.1:7443: Address already in use").
caf::error listen_problem(const std::string& field, const std::string& host_port);

class metrics_server {
public:
  using render_fn = std::function<std::string()>;

  /// Clients served at once; more wait in the listen backlog.
  static constexpr size_t max_connections = 64;
  /// How long a client has to send its request and take the answer.
  static constexpr std::chrono::seconds request_deadline{5};
  /// The most of a request read (its request line is all that is looked at).
  static constexpr size_t max_request_bytes = 16384;

  /// Listens on `host_port` ("127.0.0.1:9464"; port 0: any free port).
  static caf::expected<std::unique_ptr<metrics_server>> start(const std::string& host_port,
                                                             render_fn render);
  ~metrics_server();

  /// The port listened on.
  uint16_t port() const noexcept { return port_; }

  void stop();

private:
  metrics_server() = default;
  void serve();
  /// The whole HTTP answer to `req`.
  std::string answer(const std::string& req);

  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  render_fn render_;
  std::thread thread_;
};

} // namespace ferry::daemon
