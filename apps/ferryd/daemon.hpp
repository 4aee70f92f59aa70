// ferryd as an object: the engine over the configured journal and fleet (every run not at
// rest resumes), the gRPC API on the unix socket and on TCP with TLS, and the metrics
// endpoint. main.cpp runs one; the API tests run it as a process. shutdown() is the graceful
// stop of SIGTERM: no new calls, open watches told to reconnect, calls in flight (a submit
// waiting for its commit) finished within the grace period, then the engine closed after its
// in-flight commits.
#pragma once

#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "apps/ferryd/config.hpp"

namespace ferry {
class engine;
}

namespace ferry::daemon {

class server {
public:
  static caf::expected<std::unique_ptr<server>> start(const daemon_config& cfg);
  ~server();

  /// Where it listens (TCP and metrics: the port actually bound, useful with port 0).
  const std::string& unix_socket() const;
  int tcp_port() const;
  int metrics_port() const;

  engine& eng();

  /// Graceful stop; idempotent.
  void shutdown();

  struct impl;

private:
  explicit server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace ferry::daemon
