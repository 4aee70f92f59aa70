// ferryd's Prometheus endpoint: the metrics in the text exposition format (version 0.0.4)
// rendered from the engine, the fleet and the API's counters, served by a small HTTP/1.1
// server (GET /metrics, GET /healthz) on a thread of its own. One request at a time, each
// under a 5 s deadline: a scraper that stalls cannot hold it.
#pragma once

#include "apps/ferryd/service.hpp" // first: it includes the generated gRPC header

#include <atomic>
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

/// Whether a listener could bind `host_port` now: none, or why not, naming `field`
/// ("tcp_listen: cannot listen on 127.0.0.1:7443: Address already in use").
caf::error listen_problem(const std::string& field, const std::string& host_port);

class metrics_server {
public:
  using render_fn = std::function<std::string()>;

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
  void answer(int fd);

  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  render_fn render_;
  std::thread thread_;
};

} // namespace ferry::daemon
