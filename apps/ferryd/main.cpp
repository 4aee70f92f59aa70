// ferryd — the Ferry daemon: the engine behind a gRPC API (docs/operations.md).
//   ferryd [--config FILE] [--check]
// Starts the engine on the configured journal (every run not at rest resumes), listens on the
// unix socket and on TCP with TLS when configured, serves /metrics, prints one line
// "ready unix=PATH tcp=HOST:PORT metrics=HOST:PORT" on stdout once it accepts calls, opens its
// log file again on SIGHUP (logrotate), and stops gracefully on SIGTERM or SIGINT. Exit codes:
// 0 stopped cleanly; 4 bad configuration; 5 could not start.
#include <pthread.h>
#include <signal.h>

#include <cstdio>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "apps/ferryd/config.hpp"
#include "apps/ferryd/daemon.hpp"
#include "apps/ferryd/logging.hpp"
#include "common/errc.hpp"

int main(int argc, char** argv) {
  CLI::App app{"ferryd: the Ferry daemon (gRPC API, metrics)"};
  std::string config = "/etc/ferry/ferryd.conf";
  bool check = false;
  app.add_option("-c,--config", config, "Configuration file (docs/operations.md)");
  app.add_flag("--check", check, "Check the configuration and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    auto rc = app.exit(e);
    return rc == 0 ? 0 : 4;
  }
  auto cfg = ferry::daemon::load_config(config);
  if (!cfg) {
    std::fprintf(stderr, "ferryd: %s\n", ferry::message_of(cfg.error()).c_str());
    return 4;
  }
  if (check) {
    std::printf("%s: ok\n", config.c_str());
    return 0;
  }
  if (auto err = ferry::daemon::setup_logging(cfg->log_format, cfg->log_level, cfg->log_file)) {
    std::fprintf(stderr, "ferryd: %s\n", ferry::message_of(err).c_str());
    return 4;
  }
  // Every thread started from here on inherits the blocked signals; this one waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  // SIGHUP reopens the log file; before, its default action ended ferryd without a graceful
  // stop (a logrotate postrotate `kill -HUP` killed the daemon).
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  auto log = spdlog::get("ferryd");
  auto srv = ferry::daemon::server::start(*cfg);
  if (!srv) {
    log->error("cannot start: {}", ferry::describe(srv.error()));
    return 5;
  }
  auto& s = **srv;
  std::string tcp = cfg->tcp_listen.empty()
                      ? "-"
                      : cfg->tcp_listen.substr(0, cfg->tcp_listen.rfind(':')) + ":"
                          + std::to_string(s.tcp_port());
  std::string metrics = cfg->metrics_listen.empty()
                          ? "-"
                          : cfg->metrics_listen.substr(0, cfg->metrics_listen.rfind(':')) + ":"
                              + std::to_string(s.metrics_port());
  log->info("listening: unix {} tcp {} metrics {}",
            cfg->unix_socket.empty() ? "-" : cfg->unix_socket, tcp, metrics);
  std::printf("ready unix=%s tcp=%s metrics=%s\n",
              cfg->unix_socket.empty() ? "-" : cfg->unix_socket.c_str(), tcp.c_str(),
              metrics.c_str());
  std::fflush(stdout);
  int sig = 0;
  for (;;) {
    sigwait(&stop_signals, &sig);
    if (sig != SIGHUP)
      break;
    if (auto err = ferry::daemon::reopen_log_file())
      log->error("SIGHUP: the log file cannot be opened again, logging on to the old one: {}",
                 ferry::describe(err));
    else
      log->info("SIGHUP: {}", cfg->log_file.empty() ? "no log file to reopen (logs go to stderr)"
                                                   : "log file reopened: " + cfg->log_file);
  }
  log->info("{}: stopping (grace {} ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
            cfg->shutdown_grace.count());
  s.shutdown();
  return 0;
}
