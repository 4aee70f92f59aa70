#include "apps/ferryd/metrics_http.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <sstream>

#include "actors/fleet_runtime.hpp"
#include "common/errc.hpp"
#include "common/thread_name.hpp"

namespace ferry::daemon {

namespace {

const char* const code_names[call_counters::codes] = {
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
  "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

void header(std::ostringstream& o, const char* name, const char* type, const char* help) {
  o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

void seconds_histogram(std::ostringstream& o, const char* name, const char* help,
                       const latency_histogram& h) {
  header(o, name, "histogram", help);
  // Bounds in seconds: 100 µs .. 10 s.
  static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                  0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 5, 10};
  for (double b : bounds)
    o << name << "_bucket{le=\"" << b << "\"} "
      << h.count_at_or_below(static_cast<int64_t>(b * 1e9)) << '\n';
  o << name << "_bucket{le=\"+Inf\"} " << h.count() << '\n';
  o << name << "_sum " << static_cast<double>(h.sum()) / 1e9 << '\n';
  o << name << "_count " << h.count() << '\n';
}

void seconds_histogram(std::ostringstream& o, const char* name, const char* help,
                       const duration_histogram& h) {
  header(o, name, "histogram", help);
  for (size_t i = 0; i < duration_histogram::bounds; ++i)
    o << name << "_bucket{le=\""
      << static_cast<double>(duration_histogram::upper_ms[i]) / 1000.0 << "\"} "
      << h.count_at_or_below(i) << '\n';
  o << name << "_bucket{le=\"+Inf\"} " << h.count() << '\n';
  o << name << "_sum " << static_cast<double>(h.sum_ms()) / 1000.0 << '\n';
  o << name << "_count " << h.count() << '\n';
}

} // namespace

std::string render_metrics(engine& eng, const call_counters& calls, const watch_hub& hub) {
  std::ostringstream o;
  auto& m = eng.metrics();
  // Runs by state, from the journal's checkpoints.
  std::map<run_status, uint64_t> by_state;
  for (auto s : {run_status::pending, run_status::scheduled, run_status::running,
                 run_status::paused, run_status::rolling_back, run_status::succeeded,
                 run_status::rolled_back, run_status::failed, run_status::aborted})
    by_state[s] = 0;
  if (auto runs = eng.list())
    for (auto& r : *runs)
      by_state[r.status] += 1;
  header(o, "ferry_runs", "gauge", "Runs in the journal by state.");
  for (auto& [s, n] : by_state)
    o << "ferry_runs{state=\"" << to_string(s) << "\"} " << n << '\n';
  header(o, "ferry_transitions_total", "counter",
         "Run transitions made durable (rate: transitions per second).");
  o << "ferry_transitions_total " << m.transitions.load() << '\n';
  header(o, "ferry_events_total", "counter", "Journal events made durable.");
  o << "ferry_events_total " << m.events.load() << '\n';
  header(o, "ferry_dispatches_total", "counter", "Task attempts handed to executors.");
  o << "ferry_dispatches_total " << m.dispatches.load() << '\n';
  header(o, "ferry_runs_finished_total", "counter",
         "Runs that came to rest since ferryd started, by outcome.");
  o << "ferry_runs_finished_total{outcome=\"succeeded\"} " << m.runs_succeeded.load() << '\n';
  o << "ferry_runs_finished_total{outcome=\"rolled_back\"} " << m.runs_rolled_back.load() << '\n';
  o << "ferry_runs_finished_total{outcome=\"failed\"} " << m.runs_failed.load() << '\n';
  o << "ferry_runs_finished_total{outcome=\"aborted\"} " << m.runs_aborted.load() << '\n';
  seconds_histogram(o, "ferry_commit_latency_seconds",
                    "From a run sending a transition to the journal until it is durable.",
                    m.commit_latency);
  seconds_histogram(o, "ferry_migration_duration_seconds",
                    "Duration of the migrations vm.migrate completed.", m.migration_duration);
  seconds_histogram(o, "ferry_migration_downtime_seconds",
                    "The guest's pause at the switch-over of the migrations vm.migrate "
                    "completed.",
                    m.migration_downtime);
  auto q = eng.commit_queue_depth();
  header(o, "ferry_commit_queue", "gauge",
         "Transitions on their way to the journal (in_flight) and runs waiting for a slot of "
         "the commit window (waiting).");
  o << "ferry_commit_queue{queue=\"in_flight\"} " << q.in_flight << '\n';
  o << "ferry_commit_queue{queue=\"waiting\"} " << q.waiting << '\n';
  if (auto* rt = eng.fleet()) {
    if (auto snap = rt->snapshot()) {
      uint64_t in_active = 0, in_queued = 0, out_active = 0, out_queued = 0;
      for (auto& h : snap->hosts) {
        in_active += h.in_active;
        in_queued += h.in_queued;
        out_active += h.out_active;
        out_queued += h.out_queued;
      }
      header(o, "ferry_migration_slots", "gauge",
             "Hosts' migration slots across the fleet: taken (active) and asked for (queued), "
             "inbound and outbound.");
      o << "ferry_migration_slots{direction=\"in\",state=\"active\"} " << in_active << '\n';
      o << "ferry_migration_slots{direction=\"in\",state=\"queued\"} " << in_queued << '\n';
      o << "ferry_migration_slots{direction=\"out\",state=\"active\"} " << out_active << '\n';
      o << "ferry_migration_slots{direction=\"out\",state=\"queued\"} " << out_queued << '\n';
    }
  }
  header(o, "ferry_watch_streams", "gauge", "Watch streams open.");
  o << "ferry_watch_streams " << hub.active() << '\n';
  header(o, "ferry_waiting_calls", "gauge", "Gets and GetBatches waiting (wait_ms) now.");
  o << "ferry_waiting_calls " << hub.waiting() << '\n';
  header(o, "ferry_api_calls_total", "counter", "API calls answered, by method and code.");
  for (auto& [method, row] : calls.snapshot())
    for (size_t c = 0; c < call_counters::codes; ++c)
      if (row[c] > 0)
        o << "ferry_api_calls_total{method=\"" << method << "\",code=\"" << code_names[c]
          << "\"} " << row[c] << '\n';
  return o.str();
}

namespace {

/// The address to listen on for "host:port" ("[::1]:port", ":port"); `field` names it in the
/// error.
caf::expected<addrinfo*> listen_address(const std::string& field, const std::string& host_port) {
  auto colon = host_port.rfind(':');
  auto host = host_port.substr(0, colon);
  auto port = host_port.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
      rc != 0)
    return make_error(errc::invalid_argument,
                      field + ": \"" + host_port + "\": " + gai_strerror(rc));
  return res;
}

} // namespace

caf::error listen_problem(const std::string& field, const std::string& host_port) {
  auto res = listen_address(field, host_port);
  if (!res)
    return res.error();
  int fd = socket((*res)->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  caf::error err;
  if (fd < 0 || bind(fd, (*res)->ai_addr, (*res)->ai_addrlen) != 0)
    err = make_error(errc::unavailable,
                     field + ": cannot listen on " + host_port + ": " + std::strerror(errno));
  freeaddrinfo(*res);
  if (fd >= 0)
    close(fd);
  return err;
}

caf::expected<std::unique_ptr<metrics_server>> metrics_server::start(const std::string& host_port,
                                                                    render_fn render) {
  auto resolved = listen_address("metrics_listen", host_port);
  if (!resolved)
    return resolved.error();
  auto* res = *resolved;
  std::unique_ptr<metrics_server> s{new metrics_server};
  s->render_ = std::move(render);
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 16) != 0) {
    auto err = std::string{std::strerror(errno)};
    freeaddrinfo(res);
    if (fd >= 0)
      close(fd);
    return make_error(errc::unavailable, "metrics_listen: cannot listen on " + host_port + ": "
                                           + err);
  }
  freeaddrinfo(res);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  s->port_ = ntohs(bound.ss_family == AF_INET6
                     ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  s->listen_fd_ = fd;
  if (pipe2(s->wake_, O_CLOEXEC) != 0)
    return make_error(errc::internal, "metrics: pipe: " + std::string{std::strerror(errno)});
  s->thread_ = std::thread{[p = s.get()] { p->serve(); }};
  name_thread(s->thread_, "ferry.metrics");
  return s;
}

metrics_server::~metrics_server() {
  stop();
}

void metrics_server::stop() {
  if (thread_.joinable()) {
    char b = 1;
    (void) !write(wake_[1], &b, 1);
    thread_.join();
  }
  for (int* fd : {&listen_fd_, &wake_[0], &wake_[1]})
    if (*fd >= 0) {
      close(*fd);
      *fd = -1;
    }
}

void metrics_server::serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    if (fds[1].revents)
      return;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    answer(fd);
    close(fd);
  }
}

void metrics_server::answer(int fd) {
  // The request line and headers, under one deadline for the whole read.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  std::string req;
  char buf[2048];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    if (left <= 0)
      return;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0)
      return;
    auto n = read(fd, buf, sizeof buf);
    if (n <= 0)
      return;
    req.append(buf, static_cast<size_t>(n));
  }
  std::string status = "200 OK", type = "text/plain; version=0.0.4; charset=utf-8", body;
  auto line_end = req.find("\r\n");
  auto line = req.substr(0, line_end);
  if (line.rfind("GET /metrics ", 0) == 0 || line.rfind("GET /metrics?", 0) == 0) {
    body = render_();
  } else if (line.rfind("GET /healthz ", 0) == 0) {
    body = "ok\n";
    type = "text/plain";
  } else if (line.rfind("GET ", 0) != 0) {
    status = "405 Method Not Allowed";
    body = "only GET\n";
  } else {
    status = "404 Not Found";
    body = "GET /metrics or /healthz\n";
  }
  auto out = "HTTP/1.1 " + status + "\r\nContent-Type: " + type
             + "\r\nContent-Length: " + std::to_string(body.size())
             + "\r\nConnection: close\r\n\r\n" + body;
  size_t sent = 0;
  while (sent < out.size()) {
    pollfd p{fd, POLLOUT, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0)
      return;
    auto n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0)
      return;
    sent += static_cast<size_t>(n);
  }
}

} // namespace ferry::daemon
