#include "apps/ferryd/daemon.hpp"
#include "apps/ferryd/service.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <spdlog/spdlog.h>

#include "actors/engine.hpp"
#include "apps/ferryd/metrics_http.hpp"
#include "apps/ferryd/service.hpp"
#include "apps/ferryd/watch.hpp"
#include "common/errc.hpp"
#include "fleet/fleet_codec.hpp"

namespace ferry::daemon {

struct server::impl {
  daemon_config cfg;
  std::unique_ptr<authenticator> auth;
  watch_hub hub;
  call_counters calls;
  std::unique_ptr<engine> eng;
  std::unique_ptr<v1::Ferry::CallbackService> service;
  std::unique_ptr<grpc::Server> grpc_server;
  std::unique_ptr<metrics_server> metrics;
  int tcp_port = 0;
  bool stopped = false;
};

namespace {

namespace fs = std::filesystem;

std::shared_ptr<spdlog::logger> logger() {
  auto l = spdlog::get("ferryd");
  return l ? l : spdlog::default_logger();
}

/// Makes way for the unix socket at `path`: a socket file left by a process that died is
/// removed (it is in the way of bind()); one that a process listens on, or a file that is not
/// a socket, is refused.
caf::error clear_unix_socket(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0)
    return caf::none;
  if (!S_ISSOCK(st.st_mode))
    return make_error(errc::failed_precondition,
                      "unix_socket: " + path + " exists and is not a socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() < sizeof addr.sun_path) {
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    // Non-blocking: a listener whose backlog is full answers EAGAIN at once, not later.
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return make_error(errc::unavailable,
                        "unix_socket: " + path + ": socket: " + std::strerror(errno));
    int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    int err = errno;
    close(fd);
    if (rc == 0 || err == EAGAIN || err == EINPROGRESS)
      return make_error(errc::failed_precondition,
                        "unix_socket: " + path + ": another process listens on it (is ferryd "
                        "running already?)");
  }
  // ECONNREFUSED: nobody listens; the file is stale.
  unlink(path.c_str());
  return caf::none;
}

} // namespace

server::server(std::unique_ptr<impl> p) : impl_(std::move(p)) {
}

server::~server() {
  shutdown();
}

caf::expected<std::unique_ptr<server>> server::start(const daemon_config& cfg) {
  // gRPC's mutexes (abseil) check every lock order for cycles in this build of abseil: a
  // debugging aid that costs about a tenth of the daemon's CPU under load.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto p = std::make_unique<impl>();
  p->cfg = cfg;
  p->auth = std::make_unique<authenticator>(cfg.tokens, cfg.unix_socket_role);
  std::error_code ec;
  fs::create_directories(cfg.data_dir, ec);
  if (ec)
    return make_error(errc::failed_precondition,
                      "data_dir: cannot create " + cfg.data_dir + ": " + ec.message());
  // The socket file is checked before the engine opens (and resumes runs): a socket another
  // process listens on is refused. Before, a second ferryd (another data_dir, the same
  // socket) replaced it, leaving the first one running but unreachable.
  if (!cfg.unix_socket.empty())
    if (auto err = clear_unix_socket(cfg.unix_socket))
      return err;
  // So are addresses in use: the engine would resume runs only to be closed again.
  for (auto& [field, host_port] : {std::pair{"tcp_listen", cfg.tcp_listen},
                                   std::pair{"metrics_listen", cfg.metrics_listen}})
    if (!host_port.empty())
      if (auto err = listen_problem(field, host_port))
        return err;
  engine_options opts;
  opts.journal_path = (fs::path{cfg.data_dir} / "journal").string();
  opts.sync = cfg.sync;
  opts.threads = cfg.threads;
  opts.template_dirs = cfg.template_dirs;
  // The built-in templates use the fleet's kinds: they come with a fleet.
  if (opts.template_dirs.empty() && !cfg.fleet_file.empty())
    opts.template_dirs.push_back(FERRY_BUILTIN_TEMPLATES);
  auto* hub = &p->hub;
  opts.on_progress = [hub](const task_progress& pr) { hub->publish(pr); };
  if (!cfg.fleet_file.empty()) {
    auto f = fleet::load_fleet_file(cfg.fleet_file);
    if (!f)
      return make_error(code_of(f.error()), "fleet_file: " + message_of(f.error()));
    opts.fleet = *f;
    // The simulated hosts' state beside the journal: a restart finds them as they were.
    opts.fleet_opts.sim_state_file = (fs::path{cfg.data_dir} / "sim-state").string();
    opts.fleet_opts.sim_speed = cfg.sim_speed;
  }
  auto eng = engine::open(std::move(opts));
  if (!eng)
    return eng.error();
  p->eng = std::move(*eng);
  logger()->info("journal {} open: {} run(s) resumed", cfg.data_dir, p->eng->recovered());
  p->service = make_service(service_context{p->eng.get(), p->auth.get(), &p->hub, &p->calls});
  grpc::ServerBuilder builder;
  if (!cfg.unix_socket.empty()) {
    fs::create_directories(fs::path{cfg.unix_socket}.parent_path(), ec);
    builder.AddListeningPort("unix:" + cfg.unix_socket, grpc::InsecureServerCredentials());
  }
  if (!cfg.tcp_listen.empty()) {
    grpc::SslServerCredentialsOptions ssl{
      cfg.tls_client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY};
    ssl.pem_root_certs = cfg.tls_client_ca;
    ssl.pem_key_cert_pairs.push_back({cfg.tls_key, cfg.tls_cert});
    builder.AddListeningPort(cfg.tcp_listen, grpc::SslServerCredentials(ssl), &p->tcp_port);
  }
  builder.RegisterService(p->service.get());
  // gRPC listens with SO_REUSEPORT by default: a second ferryd on the same tcp_listen started,
  // and the kernel shared the connections between the two (and their journals).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  p->grpc_server = builder.BuildAndStart();
  if (!p->grpc_server || (!cfg.tcp_listen.empty() && p->tcp_port == 0)) {
    p->eng->close();
    if (!cfg.tcp_listen.empty())
      if (auto err = listen_problem("tcp_listen", cfg.tcp_listen))
        return err;
    return make_error(errc::unavailable,
                      "cannot listen on " + (cfg.unix_socket.empty() ? "" : cfg.unix_socket + " ")
                        + cfg.tcp_listen + " (the TLS files do not match?)");
  }
  if (!cfg.unix_socket.empty() && chmod(cfg.unix_socket.c_str(), cfg.unix_socket_mode) != 0)
    logger()->warn("unix_socket: chmod {:o} {}: {}", cfg.unix_socket_mode, cfg.unix_socket,
                   std::strerror(errno));
  if (!cfg.metrics_listen.empty()) {
    auto* ip = p.get();
    auto m = metrics_server::start(cfg.metrics_listen, [ip] {
      return render_metrics(*ip->eng, ip->calls, ip->hub);
    });
    if (!m) {
      p->grpc_server->Shutdown();
      p->eng->close();
      return m.error();
    }
    p->metrics = std::move(*m);
  }
  return std::unique_ptr<server>{new server(std::move(p))};
}

const std::string& server::unix_socket() const {
  return impl_->cfg.unix_socket;
}

int server::tcp_port() const {
  return impl_->tcp_port;
}

int server::metrics_port() const {
  return impl_->metrics ? impl_->metrics->port() : 0;
}

engine& server::eng() {
  return *impl_->eng;
}

void server::shutdown() {
  auto& p = *impl_;
  if (p.stopped)
    return;
  p.stopped = true;
  // Watches end first (their clients reconnect to the next ferryd and resume from the last
  // sequence number they saw), and calls that wait answer; then no new calls, and the calls
  // in flight get the grace period; then the engine lets its in-flight commits finish and
  // closes the journal.
  p.hub.close_all();
  // Gets and GetBatches that wait answer now, with the state then (their clients ask again).
  p.hub.timer().expedite();
  p.grpc_server->Shutdown(std::chrono::system_clock::now() + p.cfg.shutdown_grace);
  p.grpc_server->Wait();
  p.hub.timer().stop();
  logger()->debug("API stopped");
  if (p.metrics)
    p.metrics->stop();
  p.eng->close();
  logger()->debug("engine closed");
  if (!p.cfg.unix_socket.empty())
    unlink(p.cfg.unix_socket.c_str());
  logger()->info("stopped");
}

} // namespace ferry::daemon
