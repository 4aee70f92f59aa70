#include "apps/ferryd/metrics_http.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <sstream>
#include <vector>

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

/// A socket bound to `host_port` (SO_REUSEADDR, as a listener), or why there can be none.
caf::expected<int> bound_socket(const std::string& field, const std::string& host_port) {
  auto res = listen_address(field, host_port);
  if (!res)
    return res.error();
  int fd = socket((*res)->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0)
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, (*res)->ai_addr, (*res)->ai_addrlen) != 0) {
    auto why = std::string{std::strerror(errno)};
    freeaddrinfo(*res);
    if (fd >= 0)
      close(fd);
    return make_error(errc::unavailable, field + ": cannot listen on " + host_port + ": " + why);
  }
  freeaddrinfo(*res);
  return fd;
}

caf::error listen_problem(const std::string& field, const std::string& host_port) {
  auto fd = bound_socket(field, host_port);
  if (!fd)
    return fd.error();
  close(*fd);
  return caf::none;
}

caf::expected<std::unique_ptr<metrics_server>> metrics_server::start(const std::string& host_port,
                                                                    render_fn render) {
  auto socket_fd = bound_socket("metrics_listen", host_port);
  if (!socket_fd)
    return socket_fd.error();
  int fd = *socket_fd;
  if (listen(fd, 16) != 0) {
    auto why = std::string{std::strerror(errno)};
    close(fd);
    return make_error(errc::unavailable,
                      "metrics_listen: cannot listen on " + host_port + ": " + why);
  }
  std::unique_ptr<metrics_server> s{new metrics_server};
  s->render_ = std::move(render);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  s->port_ = ntohs(bound.ss_family == AF_INET6
                     ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  s->listen_fd_ = fd;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
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

namespace {

/// One client of the endpoint: its request as read so far, then its answer as sent so far.
struct http_conn {
  int fd = -1;
  std::chrono::steady_clock::time_point deadline;
  std::string in;
  std::string out;
  size_t sent = 0;
  bool answering = false;
};

/// Whether `in` holds the request line and headers (or as much as is read of them).
bool request_read(const std::string& in) {
  return in.find("\r\n\r\n") != std::string::npos
         || in.size() >= metrics_server::max_request_bytes;
}

} // namespace

std::string metrics_server::answer(const std::string& req) {
  std::string status = "200 OK", type = "text/plain; version=0.0.4; charset=utf-8", body;
  auto line = req.substr(0, req.find("\r\n"));
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
  return "HTTP/1.1 " + status + "\r\nContent-Type: " + type
         + "\r\nContent-Length: " + std::to_string(body.size())
         + "\r\nConnection: close\r\n\r\n" + body;
}

void metrics_server::serve() {
  using clock = std::chrono::steady_clock;
  std::vector<http_conn> conns;
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    // At most max_connections at once; more wait in the listen backlog.
    fds.push_back({listen_fd_, static_cast<short>(conns.size() < max_connections ? POLLIN : 0), 0});
    fds.push_back({wake_[0], POLLIN, 0});
    auto now = clock::now();
    int timeout = -1;
    for (auto& c : conns) {
      fds.push_back({c.fd, static_cast<short>(c.answering ? POLLOUT : POLLIN), 0});
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - now).count();
      auto ms = static_cast<int>(std::max<int64_t>(left, 0));
      timeout = timeout < 0 ? ms : std::min(timeout, ms);
    }
    if (poll(fds.data(), fds.size(), timeout) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (fds[1].revents)
      break;
    now = clock::now();
    // Each connection on its own: one that stalls holds only itself, until its deadline.
    for (size_t i = 0; i < conns.size(); ++i) {
      auto& c = conns[i];
      auto ev = fds[i + 2].revents;
      bool done = now >= c.deadline || (ev & (POLLERR | POLLNVAL)) != 0;
      if (!done && !c.answering && (ev & (POLLIN | POLLHUP))) {
        char buf[2048];
        auto n = read(c.fd, buf, sizeof buf);
        if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) {
          done = true;
        } else if (n > 0) {
          c.in.append(buf, static_cast<size_t>(n));
          if (request_read(c.in)) {
            c.out = answer(c.in);
            c.answering = true;
          }
        }
      }
      if (!done && c.answering && (ev & POLLOUT)) {
        auto n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
        if (n > 0)
          c.sent += static_cast<size_t>(n);
        else if (!(n < 0 && (errno == EAGAIN || errno == EINTR)))
          done = true;
        done = done || c.sent == c.out.size();
      }
      if (done) {
        close(c.fd);
        c.fd = -1;
      }
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](auto& c) { return c.fd < 0; }),
                conns.end());
    if (fds[0].revents & POLLIN)
      while (conns.size() < max_connections) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
          break;
        http_conn c;
        c.fd = fd;
        c.deadline = clock::now() + request_deadline;
        conns.push_back(std::move(c));
      }
  }
  for (auto& c : conns)
    close(c.fd);
}

} // namespace ferry::daemon
