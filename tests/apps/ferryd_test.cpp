// ferryd through its API over real gRPC: every RPC on the unix socket; TLS on loopback TCP
// with tokens and roles; precise errors; idempotent submits; 50 concurrent clients; a ferryd
// killed with SIGKILL mid-migration and restarted while `ferry watch` follows the run; and a
// SIGTERM under load that loses no acknowledged submit.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <limits>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "apps/ferryd/config.hpp"
#include "common/errc.hpp"
#include "ferry/v1/api.grpc.pb.h"
#include "ferry/v1/api.pb.h"
#include "tests/apps/ferryd_support.hpp"
#include "tests/support/dir_watch.hpp"

using namespace ferry;
using namespace ferry::test;

namespace {

std::string fleet_config(double sim_speed = 100) {
  return std::string{"fleet_file: \""} + FERRY_SOURCE_DIR + "/examples/demo-fleet.textproto\"\n"
         + "sim_speed: " + std::to_string(sim_speed) + "\nmetrics_listen: \"127.0.0.1:0\"\nlog_level: \"debug\"\n";
}

std::string submit(api::client& c, const std::string& text, const std::string& key = {}) {
  v1::SubmitRequest req;
  req.set_definition_text(text);
  req.set_idempotency_key(key);
  auto r = c.submit(req);
  INFO((r ? std::string{} : describe(r.error())));
  REQUIRE(r);
  return r->run_id();
}

v1::RunStatus wait_rest(api::client& c, const std::string& id) {
  auto r = c.get(id, std::chrono::seconds{60});
  REQUIRE(r);
  return r->state().status();
}

/// Watches `id` until an event satisfies `pred` (deadline 30 s).
void wait_event(api::client& c, const std::string& id,
                const std::function<bool(const v1::Event&)>& pred) {
  bool seen = false;
  v1::WatchRequest req;
  req.set_run_id(id);
  auto err = c.watch(
    req,
    [&](const v1::WatchResponse& m) {
      for (auto& e : m.events())
        if (pred(e))
          seen = true;
      return !seen;
    },
    std::chrono::seconds{30});
  INFO((err ? describe(err) : std::string{}));
  REQUIRE(seen);
}

errc code(const caf::error& e) {
  return code_of(e);
}

/// Batch "tonight" of live-precopy moves, one at a time, in a maintenance window that opens in
/// ten minutes: its first run waits in SCHEDULED, the others wait for it.
v1::SubmitBatchRequest tonight(std::initializer_list<const char*> vms) {
  auto now_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
  v1::SubmitBatchRequest req;
  auto* spec = req.mutable_batch();
  spec->set_name("tonight");
  spec->set_template_("live-precopy");
  spec->mutable_limits()->set_global(1);
  auto* w = spec->add_windows();
  w->set_start_ms(now_ms + 600000);
  w->set_end_ms(now_ms + 1200000);
  for (auto vm : vms)
    spec->add_items()->set_vm(vm);
  return req;
}

} // namespace

TEST_CASE("a ferryd config with mistakes is refused as a whole, each problem naming its field",
          "[config]") {
  auto r = daemon::parse_config(R"(
    tcp_listen: "127.0.0.1"
    tokens { name: "ci" secret: "short" }
    tokens { name: "ci" secret: "0123456789abcdefXYZ" role: VIEWER }
    log_format: "xml"
  )", "", "ferryd.conf");
  REQUIRE_FALSE(r);
  auto msg = message_of(r.error());
  CHECK(code(r.error()) == errc::invalid_argument);
  CHECK(msg.find("ferryd.conf: data_dir: required") != std::string::npos);
  CHECK(msg.find("tcp_listen: \"127.0.0.1\" is not host:port") != std::string::npos);
  CHECK(msg.find("tls.cert_file: required with tcp_listen") != std::string::npos);
  CHECK(msg.find("tokens[0].secret: shorter than 16 characters") != std::string::npos);
  CHECK(msg.find("tokens[0].role: required") != std::string::npos);
  CHECK(msg.find("tokens[1].name: \"ci\" is given twice") != std::string::npos);
  CHECK(msg.find("log_format: \"xml\"") != std::string::npos);

  // A simulated speed that is not a number, or infinite, is refused too (not silently the
  // default, nor an infinite clock).
  for (auto* speed : {"nan", "inf", "-1", "1e12"}) {
    auto bad = daemon::parse_config(std::string{"data_dir: \"d\"\nsim_speed: "} + speed, "",
                                    "ferryd.conf");
    REQUIRE_FALSE(bad);
    CHECK_THAT(message_of(bad.error()),
               Catch::Contains("sim_speed: must be a number, 0 (the default) or more, at "
                               "most 1e9"));
  }
  auto threads = daemon::parse_config("data_dir: \"d\"\nthreads: 100000", "", "ferryd.conf");
  REQUIRE_FALSE(threads);
  CHECK_THAT(message_of(threads.error()), Catch::Contains("threads: at most 1024, got 100000"));

  // A port too long for a number: std::stol threw and ferryd aborted.
  auto long_port = daemon::parse_config(
    "data_dir: \"d\"\nmetrics_listen: \"127.0.0.1:99999999999999999999\"", "", "ferryd.conf");
  REQUIRE_FALSE(long_port);
  CHECK_THAT(message_of(long_port.error()),
             Catch::Contains("metrics_listen: \"127.0.0.1:99999999999999999999\" is not host:port"));

  // A socket path the system cannot take: before, gRPC refused it at start, saying "in use,
  // or the TLS files do not match".
  auto long_socket = daemon::parse_config(
    "data_dir: \"d\"\nunix_socket: \"" + std::string(100, 's') + ".sock\"", "/run/ferry",
    "ferryd.conf");
  REQUIRE_FALSE(long_socket);
  CHECK_THAT(message_of(long_socket.error()),
             Catch::Contains("unix_socket: \"/run/ferry/" + std::string(100, 's')
                             + ".sock\" is 116 bytes long, at most 107"));
  auto ok = daemon::parse_config("data_dir: \"d\"\nunix_socket: \"s.sock\"", "/etc/ferry", "x");
  REQUIRE(ok);
  CHECK(ok->data_dir == "/etc/ferry/d");
  CHECK(ok->unix_socket == "/etc/ferry/s.sock");
  CHECK(ok->unix_socket_role == daemon::role::admin);
}

TEST_CASE("the CLI refuses a number it cannot use, naming the option, before doing anything",
          "[cli]") {
  // Before, --speed 0 (or nan) ran the simulated hosts on a clock that never moves, and the
  // command waited for ever; --timeout nan waited a negative time.
  const std::string fleet = FERRY_SOURCE_DIR "/examples/demo-fleet.textproto";
  struct bad {
    std::vector<std::string> argv;
    std::string says;
  };
  std::vector<bad> cases{
    {{"drain", "--fleet", fleet, "--host", "a4", "--speed", "0"},
     "--speed: must be a number greater than 0 and at most 1e9, got 0"},
    {{"drain", "--fleet", fleet, "--host", "a4", "--speed", "nan"}, "--speed: must be"},
    {{"batch", FERRY_SOURCE_DIR "/examples/batch.textproto", "--fleet", fleet, "--timeout",
      "-1"},
     "--timeout: must be a number greater than 0"},
    {{"drain", "--fleet", fleet, "--host", "a4", "--link-share", "inf"},
     "--link-share: must be a number, 0 or more and at most 1e9, got inf"},
    {{"demo", "--speed", "0"}, "--speed: must be a number greater than 0"},
    {{"run", "--template", "live-precopy", "-p", "vm=web-1", "--fleet", fleet, "--timeout",
      "nan"},
     "--timeout: must be"},
    {{"run", "--template", "live-precopy", "-p", "vm=web-1", "--fleet", fleet, "--timeout",
      "1e300"},
     "--timeout: must be"},
    {{"list", "--timeout", "0"}, "--timeout: must be a number greater than 0"},
    {{"show", "r", "--wait", "-1"}, "--wait: must be a number, 0 or more"},
    {{"watch", "r", "--reconnect", "inf"}, "--reconnect: must be"},
    {{"batches", "wait", "b", "--wait", "0"}, "--wait: must be a number greater than 0"},
    // Whole numbers: CLI11 read "-1" as 2^64-1 (a seed, a sequence number, a "from").
    {{"run", "--template", "live-precopy", "-p", "vm=web-1", "--fleet", fleet, "--seed", "-1"},
     "--seed: must be a whole number from 0 to 18446744073709551615, written in decimal "
     "digits, got \"-1\""},
    {{"submit", "--template", "t", "--seed", "0x10"}, "--seed: must be a whole number"},
    {{"submit", "--template", "t", "--not-before", "-5"},
     "--not-before: must be a whole number from 0 to 9223372036854775807"},
    {{"list", "--limit", "1001"}, "--limit: must be a whole number from 0 to 1000"},
    {{"watch", "r", "--from", "-1"}, "--from: must be a whole number from 1 to"},
    {{"journal", "replay", "j", "r", "--until-seq", "0"}, "--until-seq: must be a whole number from 1"},
    {{"journal", "verify", "j", "--max-problems", "1e3"}, "--max-problems: must be a whole number"},
    {{"drain", "--fleet", fleet, "--host", "a4", "--max-out", "4294967296"},
     "--max-out: must be a whole number from 0 to 4294967295"},
    {{"drain", "--fleet", fleet, "--host", "a4", "--max", " 2"}, "--max: must be a whole number"},
  };
  for (auto& c : cases) {
    std::vector<std::string> argv{FERRY_BIN};
    argv.insert(argv.end(), c.argv.begin(), c.argv.end());
    auto r = run_cmd(argv, 60s);
    INFO(r.out);
    CHECK(r.status == 4);
    CHECK_THAT(r.out, Catch::Contains(c.says));
  }
}

TEST_CASE("a directory or a missing file given where a file goes is named as such, exit 4",
          "[cli]") {
  // Before, a directory read as an empty document: `ferry run DIR` said `field "name":
  // missing`, and `ferry demo --templates MISSING` exited 5 as if the engine had failed.
  const std::string dir = FERRY_SOURCE_DIR "/examples";
  const std::string fleet = dir + "/demo-fleet.textproto";
  auto db = make_temp_dir("ferry-dir-as-file");
  struct bad {
    std::vector<std::string> argv;
    std::string says;
  };
  std::vector<bad> cases{
    {{FERRY_BIN, "run", "--db", db + "/j", dir},
     "definition file \"" + dir + "\": is a directory"},
    {{FERRY_BIN, "run", "--db", db + "/j", dir + "/missing.textproto"},
     "definition file \"" + dir + "/missing.textproto\": no such file"},
    {{FERRY_BIN, "fleet", dir}, "fleet file " + dir + ": is a directory"},
    {{FERRY_BIN, "batch", dir, "--fleet", fleet}, "batch file " + dir + ": is a directory"},
    {{FERRY_BIN, "templates", "validate", dir}, "template file " + dir + ": is a directory"},
    {{FERRY_BIN, "templates", "put", dir}, "ferry templates put: " + dir + ": is a directory"},
    {{FERRY_BIN, "submit", dir}, "ferry submit: " + dir + ": is a directory"},
    {{FERRY_BIN, "journal", "import", db + "/j", dir},
     "ferry journal import: " + dir + ": is a directory"},
    {{FERRY_BIN, "demo", "--db", db + "/j", "--templates", dir + "/missing"},
     "template directory " + dir + "/missing"},
    {{FERRYD_BIN, "--check", "-c", dir}, "cannot read " + dir + ": is a directory"},
    // A name longer than a path may be: before, std::filesystem threw and ferry aborted.
    {{FERRY_BIN, "templates", "show", std::string(5000, 'a')}, "no template of that name in"},
    {{FERRY_BIN, "templates", "render", std::string(5000, 'a'), "-p", "vm=web-1"},
     "no template of that name in"},
    {{FERRY_BIN, "run", "--fleet", fleet, "--template", std::string(5000, 'a'), "-p",
      "vm=web-1"},
     "no template of that name in"},
  };
  for (auto& c : cases) {
    auto r = run_cmd(c.argv, 60s);
    INFO(r.out);
    CHECK(r.status == 4);
    CHECK_THAT(r.out, Catch::Contains(c.says));
  }
  // Nothing was left behind: the journals that opening the engine created are removed again,
  // and an empty directory given as the journal stays empty, when the input is refused.
  CHECK(!std::filesystem::exists(db + "/j"));
  auto refused = run_cmd({FERRY_BIN, "run", "--db", db, "--fleet", fleet, "--template",
                          "live-precopy", "-p", "vm=no-such-vm"},
                         60s);
  INFO(refused.out);
  CHECK(refused.status == 4);
  CHECK_THAT(refused.out, Catch::Contains("VM \"no-such-vm\" is not in the fleet"));
  CHECK(std::filesystem::is_empty(db));
  // The same command with a VM that is there runs, and its journal stays.
  auto ran = run_cmd({FERRY_BIN, "run", "-q", "--db", db, "--fleet", fleet, "--template",
                      "live-precopy", "-p", "vm=web-1"},
                     120s);
  INFO(ran.out);
  CHECK(ran.status == 0);
  CHECK(std::filesystem::exists(db + "/CURRENT"));
  CHECK(std::filesystem::exists(db + "/sim-state"));
  std::filesystem::remove_all(db);
}

TEST_CASE("ferry demo runs its scenario into a new journal, and refuses one that holds a "
          "journal already", "[cli]") {
  auto dir = make_temp_dir("ferry-demo");
  auto db = dir + "/j";
  auto first = run_cmd({FERRY_BIN, "demo", "--db", db}, 120s);
  INFO(first.out);
  REQUIRE(first.status == 0);
  CHECK_THAT(first.out, Catch::Contains("web-2 after the rollback: running on a2"));
  CHECK_THAT(first.out, Catch::Contains("drain:   20 of 20 moved"));
  CHECK_THAT(first.out, Catch::Contains("22 migrations finished, 0 failed"));
  auto runs_in = [&] {
    auto listed = run_cmd({FERRY_BIN, "journal", "list", db}, 60s);
    REQUIRE(listed.status == 0);
    return std::count(listed.out.begin(), listed.out.end(), '\n');
  };
  auto before = runs_in();
  CHECK(before == 25); // the header and 24 runs: live, cross-zone, morph, failure, 20 drained
  // Again on that journal: before, the scenario ran against the fleet as the first demo left
  // it, and the drain failed (exit 5) after the other runs had started.
  auto again = run_cmd({FERRY_BIN, "demo", "--db", db}, 120s);
  INFO(again.out);
  CHECK(again.status == 4);
  CHECK_THAT(again.out, Catch::Contains("ferry demo: --db " + db + ": not a new or empty "
                                        "directory (a journal of an earlier demo?)"));
  CHECK(runs_in() == before);
  std::filesystem::remove_all(dir);
}

TEST_CASE("every RPC works over the unix socket", "[unix]") {
  ferryd_process d{make_temp_dir("ferryd-api"), fleet_config()};
  d.start();
  auto c = connect(d.unix_client());

  // Submit, Get, Watch from the start, List with filters and pages.
  auto id = submit(*c, noop5);
  CHECK(wait_rest(*c, id) == v1::RUN_SUCCEEDED);
  auto run = c->get(id);
  REQUIRE(run);
  CHECK(run->definition().name() == "noop5");
  CHECK(run->state().tasks_size() == 5);
  std::vector<uint64_t> seqs;
  bool final_seen = false;
  v1::WatchRequest wreq;
  wreq.set_run_id(id);
  REQUIRE_FALSE(c->watch(wreq, [&](const v1::WatchResponse& m) {
    for (auto& e : m.events())
      seqs.push_back(e.seq());
    if (m.has_final_state())
      final_seen = m.final_state().status() == v1::RUN_SUCCEEDED;
    return true;
  }, std::chrono::seconds{30}));
  REQUIRE(final_seen);
  REQUIRE(!seqs.empty());
  for (size_t i = 0; i < seqs.size(); ++i)
    CHECK(seqs[i] == i + 1); // from 1, in order, without gaps
  // Resumed from a sequence number: only what follows.
  wreq.set_from_seq(seqs.size() - 1);
  std::vector<uint64_t> tail;
  REQUIRE_FALSE(c->watch(wreq, [&](const v1::WatchResponse& m) {
    for (auto& e : m.events())
      tail.push_back(e.seq());
    return true;
  }, std::chrono::seconds{30}));
  CHECK(tail == std::vector<uint64_t>{seqs.size() - 1, seqs.size()});

  // A gate: Pause, Resume, Approve.
  auto g = submit(*c, gated);
  wait_event(*c, g, [](const v1::Event& e) {
    return e.type() == v1::TASK_SCHEDULED_EVENT && e.task() == "approval";
  });
  v1::ControlRequest ctl;
  ctl.set_run_id(g);
  auto paused = c->control("pause", ctl);
  REQUIRE(paused);
  CHECK(paused->status() == v1::RUN_PAUSED);
  auto resumed = c->control("resume", ctl);
  REQUIRE(resumed);
  CHECK(resumed->status() == v1::RUN_RUNNING);
  auto no_task = c->control("approve", ctl);
  REQUIRE_FALSE(no_task);
  CHECK(code(no_task.error()) == errc::invalid_argument);
  CHECK(message_of(no_task.error()) == "task: required");
  // Get with wait_ms answers with the state when the wait is over, at rest or not.
  auto early = c->get(g, std::chrono::milliseconds{200});
  REQUIRE(early);
  CHECK(early->state().status() == v1::RUN_RUNNING);
  // A wait longer than about 31 years is refused by name, by the client and by ferryd: before,
  // INT64_MAX ms overflowed the server's clock into the past and answered at once.
  auto forever = c->get(g, std::chrono::milliseconds{max_duration_ms + 1});
  REQUIRE_FALSE(forever);
  CHECK(code(forever.error()) == errc::invalid_argument);
  CHECK(message_of(forever.error())
        == "wait_ms: at most 1000000000000 (about 31 years), got 1000000000001");
  {
    auto stub = v1::Ferry::NewStub(
      grpc::CreateChannel("unix:" + d.socket(), grpc::InsecureChannelCredentials()));
    for (bool batch : {false, true}) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 30s);
      grpc::Status st;
      if (batch) {
        v1::GetBatchRequest req;
        req.set_name("any");
        req.set_wait_ms(std::numeric_limits<int64_t>::max());
        v1::BatchStatus resp;
        st = stub->GetBatch(&ctx, req, &resp);
      } else {
        v1::GetRequest req;
        req.set_run_id(g);
        req.set_wait_ms(std::numeric_limits<int64_t>::max());
        v1::Run resp;
        st = stub->Get(&ctx, req, &resp);
      }
      CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      CHECK(st.error_message()
            == "wait_ms: at most 1000000000000 (about 31 years), got 9223372036854775807");
    }
  }
  auto ghost = c->get("ghost", std::chrono::seconds{5});
  REQUIRE_FALSE(ghost);
  CHECK(code(ghost.error()) == errc::not_found);
  CHECK(message_of(ghost.error()) == "run_id: run \"ghost\" not found");
  ctl.set_task("approval");
  REQUIRE(c->control("approve", ctl));
  CHECK(wait_rest(*c, g) == v1::RUN_SUCCEEDED);

  // Retry a task that ran out of retries.
  auto f = submit(*c, flaky);
  CHECK(wait_rest(*c, f) == v1::RUN_FAILED);
  v1::ControlRequest retry;
  retry.set_run_id(f);
  retry.set_task("step");
  REQUIRE(c->control("retry", retry));
  CHECK(wait_rest(*c, f) == v1::RUN_SUCCEEDED);

  // Cancel rolls back; Abort stops at once.
  auto x = submit(*c, gated);
  auto y = submit(*c, gated);
  for (auto& r : {x, y})
    wait_event(*c, r, [](const v1::Event& e) {
      return e.type() == v1::TASK_SCHEDULED_EVENT && e.task() == "approval";
    });
  v1::ControlRequest cx;
  cx.set_run_id(x);
  REQUIRE(c->control("cancel", cx));
  CHECK(wait_rest(*c, x) == v1::RUN_ROLLED_BACK);
  v1::ControlRequest cy;
  cy.set_run_id(y);
  cy.set_reason("game day");
  REQUIRE(c->control("abort", cy));
  CHECK(wait_rest(*c, y) == v1::RUN_ABORTED);

  // List: by state, paged.
  v1::ListRequest lr;
  lr.add_states(v1::RUN_SUCCEEDED);
  lr.set_page_size(2);
  std::set<std::string> listed;
  int pages = 0;
  for (;;) {
    auto page = c->list(lr);
    REQUIRE(page);
    ++pages;
    for (auto& r : page->runs()) {
      CHECK(r.status() == v1::RUN_SUCCEEDED);
      listed.insert(r.run_id());
    }
    if (page->next_page_token().empty())
      break;
    lr.set_page_token(page->next_page_token());
  }
  CHECK(listed == std::set<std::string>{id, g, f});
  CHECK(pages == 2);

  // The fleet: Fleet, Recommend, Options.
  auto fleet = c->fleet();
  REQUIRE(fleet);
  CHECK(fleet->zones_size() == 3);
  bool web1_on_a1 = false;
  for (auto& v : fleet->vms())
    web1_on_a1 = web1_on_a1 || (v.name() == "web-1" && v.host() == "a1" && v.zone() == "zone-a");
  CHECK(web1_on_a1);
  v1::RecommendRequest rr;
  rr.set_vm("web-1");
  auto rec = c->recommend(rr);
  REQUIRE(rec);
  CHECK(rec->zones_size() >= 2);
  v1::OptionsRequest orq;
  orq.set_vm("app-1");
  auto opts = c->options(orq);
  REQUIRE(opts);
  CHECK(opts->type() == "small");
  CHECK(opts->options_size() > 0);
  orq.set_vm("nope");
  auto missing = c->options(orq);
  REQUIRE_FALSE(missing);
  CHECK(code(missing.error()) == errc::not_found);
  CHECK(message_of(missing.error()) == "vm: \"nope\" is not in the fleet");

  // Templates: list, get, put, render, submit by name, list by VM and template, delete.
  auto tl = c->list_templates();
  REQUIRE(tl);
  CHECK(tl->templates_size() >= 7);
  auto lp = c->get_template("live-precopy");
  REQUIRE(lp);
  CHECK(lp->builtin());
  CHECK(lp->template_().name() == "live-precopy");
  auto put = c->put_template(slurp(std::string{FERRY_SOURCE_DIR}
                                   + "/examples/reserve-and-flip.template.textproto"));
  REQUIRE(put);
  CHECK(put->template_().name() == "reserve-and-flip");
  v1::TemplateCall call;
  call.set_name("live-precopy");
  (*call.mutable_parameters())["vm"] = "web-2";
  (*call.mutable_parameters())["target"] = "a3";
  auto rendered = c->render_template(call);
  REQUIRE(rendered);
  CHECK(rendered->definition().labels().at("param.vm") == "web-2");
  v1::SubmitRequest sr;
  *sr.mutable_template_() = call;
  auto mig = c->submit(sr);
  REQUIRE(mig);
  CHECK(wait_rest(*c, mig->run_id()) == v1::RUN_SUCCEEDED);
  v1::ListRequest by_vm;
  by_vm.set_vm("web-2");
  auto l2 = c->list(by_vm);
  REQUIRE(l2);
  REQUIRE(l2->runs_size() == 1);
  CHECK(l2->runs(0).run_id() == mig->run_id());
  v1::ListRequest by_zone;
  by_zone.set_zone("zone-a");
  by_zone.set_template_("live-precopy");
  auto l3 = c->list(by_zone);
  REQUIRE(l3);
  CHECK(l3->runs_size() == 1);
  by_zone.set_zone("zone-c");
  auto l4 = c->list(by_zone);
  REQUIRE(l4);
  CHECK(l4->runs_size() == 0);
  REQUIRE_FALSE(c->delete_template("reserve-and-flip"));
  auto gone = c->get_template("reserve-and-flip");
  REQUIRE_FALSE(gone);
  CHECK(code(gone.error()) == errc::not_found);
  auto builtin = c->delete_template("live-precopy");
  REQUIRE(builtin);

  // The Prometheus endpoint.
  auto metrics = http_get(d.metrics_port(), "/metrics");
  CHECK(metrics.rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(metrics.find("ferry_runs{state=\"SUCCEEDED\"} 4") != std::string::npos);
  CHECK(metrics.find("ferry_runs{state=\"ROLLED_BACK\"} 1") != std::string::npos);
  CHECK(metrics.find("ferry_api_calls_total{method=\"submit\",code=\"OK\"} 6")
        != std::string::npos);
  CHECK(metrics.find("ferry_api_calls_total{method=\"options\",code=\"NOT_FOUND\"} 1")
        != std::string::npos);
  CHECK(metrics.find("ferry_migration_duration_seconds_count 1") != std::string::npos);
  CHECK(metrics.find("ferry_commit_latency_seconds_bucket{le=\"+Inf\"}") != std::string::npos);
  CHECK(http_get(d.metrics_port(), "/nope").rfind("HTTP/1.1 404", 0) == 0);
  // A client that connects and sends nothing holds only its own connection. Before, the
  // endpoint served one connection at a time: /healthz waited for the idle one's 5 s deadline,
  // and the idle one was closed by then.
  int idle = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(d.metrics_port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(idle, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  auto health = http_get(d.metrics_port(), "/healthz");
  CHECK(health.rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(health.find("\r\n\r\nok\n") != std::string::npos);
  pollfd still{idle, POLLIN, 0};
  CHECK(poll(&still, 1, 0) == 0); // nothing to read: not closed by the server
  close(idle);
  CHECK(d.stop() == 0);
}

TEST_CASE("batches and drains on ferryd: submitted, followed, listed and cancelled, through "
          "the API and the CLI", "[batch]") {
  ferryd_process d{make_temp_dir("ferryd-batch"), fleet_config()};
  d.start();
  auto c = connect(d.unix_client());

  // A drain of a4 (20 VMs) under limits, followed to its end with GetBatch's wait.
  v1::SubmitBatchRequest drain;
  drain.mutable_drain()->set_host("a4");
  drain.mutable_drain()->mutable_limits()->set_host_out(2);
  drain.mutable_drain()->mutable_limits()->set_host_in(1);
  (*drain.mutable_drain()->mutable_args())["max_downtime_ms"] = "250";
  auto started = c->submit_batch(drain);
  INFO((started ? std::string{} : describe(started.error())));
  REQUIRE(started);
  CHECK(started->name() == "drain-a4");
  CHECK(started->total() == 20);
  CHECK(started->running() > 0);
  CHECK(started->running() <= 2);
  auto done = c->get_batch("drain-a4", std::chrono::seconds{120});
  REQUIRE(done);
  REQUIRE(done->finished());
  CHECK(done->succeeded() == 20);
  CHECK(done->peak_host_out() <= 2);
  CHECK(done->peak_host_in() <= 1);
  REQUIRE(done->items_size() == 20);
  for (auto& it : done->items()) {
    CHECK(it.state() == "succeeded");
    CHECK(it.source() == "a4");
    CHECK(it.run_id() == "drain-a4." + it.vm());
    CHECK(wait_rest(*c, it.run_id()) == v1::RUN_SUCCEEDED);
  }
  // The same drain again is the same batch.
  auto again = c->submit_batch(drain);
  INFO((again ? std::string{} : describe(again.error())));
  REQUIRE(again);
  CHECK(again->finished());
  CHECK(again->succeeded() == 20);

  // A batch in a maintenance window ten minutes away: its first run waits in SCHEDULED.
  auto t = c->submit_batch(tonight({"web-1", "web-2", "db-1"}));
  REQUIRE(t);
  CHECK(t->running() == 1);
  // A wait that runs out answers with the status then.
  auto waited = c->get_batch("tonight", std::chrono::milliseconds{300});
  INFO((waited ? std::string{} : describe(waited.error())));
  REQUIRE(waited);
  CHECK_FALSE(waited->finished());
  CHECK(waited->waiting() == 2);
  // Every wait is answered, whichever of ferryd's deadline and the engine's own comes first.
  // Before, when the engine's came first (a busy machine, or waits this short), the waiter was
  // dropped unanswered and the call ran into its own deadline.
  {
    auto o = d.unix_client();
    o.timeout = 5s;
    auto quick = connect(o);
    for (int i = 0; i < 300; ++i) {
      auto s = quick->get_batch("tonight", std::chrono::milliseconds{1 + i % 3});
      INFO("wait " << i << ": " << (s ? std::string{} : describe(s.error())));
      REQUIRE(s);
      CHECK_FALSE(s->finished());
    }
  }
  auto listed = c->list_batches();
  REQUIRE(listed);
  REQUIRE(listed->batches_size() == 2);
  for (auto& b : listed->batches())
    CHECK(b.items_size() == 0);
  auto cancelled = c->cancel_batch("tonight");
  REQUIRE(cancelled);
  CHECK(cancelled->cancelled());
  auto ended = c->get_batch("tonight", std::chrono::seconds{60});
  REQUIRE(ended);
  CHECK(ended->finished());
  CHECK(ended->skipped() == 2);
  CHECK(ended->succeeded() == 0);

  // Bad requests name the field; nothing is kept.
  auto refused = [&](const v1::SubmitBatchRequest& req) {
    auto r = c->submit_batch(req);
    REQUIRE_FALSE(r);
    CHECK(code(r.error()) == errc::invalid_argument);
    return message_of(r.error());
  };
  CHECK(refused(v1::SubmitBatchRequest{}) == "source: give one of batch, batch_text or drain");
  v1::SubmitBatchRequest ghost;
  ghost.mutable_drain()->set_host("ghost");
  CHECK(refused(ghost) == "drain: field \"host\": \"ghost\" is not in the fleet");
  auto bad_daily = drain;
  auto* day = bad_daily.mutable_drain()->add_daily();
  day->set_start("25:00");
  day->set_end("04:00");
  CHECK(refused(bad_daily) == "drain: daily[0].start: expected HH:MM (UTC), got \"25:00\"");
  v1::SubmitBatchRequest text;
  text.set_batch_text("name: \"odd\" template: \"live-precopy\" items { vm: \"web-1\" } "
                      "items { vm: \"web-1\" }");
  CHECK(refused(text) == "batch: items[1].vm: \"web-1\" is already items[0]");
  text.set_batch_text("name: \"odd\" template: \"live-precopy\" items { vm: \"web-1\" args { "
                      "key: \"time_budget_s\" value: \"0\" } }");
  CHECK_THAT(refused(text), Catch::Contains("batch: items[0].args: template \"live-precopy\""));
  listed = c->list_batches();
  REQUIRE(listed);
  CHECK(listed->batches_size() == 2);
  auto missing = c->get_batch("nope");
  REQUIRE_FALSE(missing);
  CHECK(code(missing.error()) == errc::not_found);
  CHECK(message_of(missing.error()) == "name: batch \"nope\": no such batch");
  auto unnamed = c->cancel_batch("");
  REQUIRE_FALSE(unnamed);
  CHECK(message_of(unnamed.error()) == "name: required");

  // The CLI: ferry drain without --fleet goes to ferryd and prints the table at the end.
  auto sock = "unix:" + d.socket();
  auto cli_drain = run_cmd({FERRY_BIN, "drain", "--host", "a2", "--max-out", "1", "--server",
                            sock, "--timeout", "120"},
                           150s);
  INFO(cli_drain.out);
  CHECK(cli_drain.status == 0);
  // a2 had db-1 and web-2, and may have received VMs of a4.
  auto a2 = c->get_batch("drain-a2");
  REQUIRE(a2);
  CHECK(a2->total() >= 2);
  auto n = std::to_string(a2->total());
  CHECK(cli_drain.out.find("batch drain-a2: " + n + " item(s), 1 running") != std::string::npos);
  CHECK(cli_drain.out.find(n + " succeeded, 0 failed, 0 skipped; at most 1 at once")
        != std::string::npos);
  auto shown = run_cmd({FERRY_BIN, "batches", "show", "drain-a2", "--server", sock}, 60s);
  CHECK(shown.status == 0);
  CHECK(shown.out.find("drain-a2.db-1") != std::string::npos);
  auto all = run_cmd({FERRY_BIN, "batches", "--server", sock}, 60s);
  CHECK(all.status == 0);
  for (auto name : {"drain-a4", "drain-a2", "tonight"})
    CHECK(all.out.find(name) != std::string::npos);
  // `batches list` is `batches`, as the README writes it.
  auto by_name = run_cmd({FERRY_BIN, "batches", "list", "--server", sock}, 60s);
  CHECK(by_name.status == 0);
  CHECK(by_name.out == all.out);
  auto bad = run_cmd({FERRY_BIN, "drain", "--host", "ghost", "--server", sock}, 60s);
  CHECK(bad.status == 4);
  CHECK(bad.out.find("ferry drain: invalid_argument: drain: field \"host\": \"ghost\" is not "
                     "in the fleet")
        != std::string::npos);
  CHECK(run_cmd({FERRY_BIN, "batches", "show", "nope", "--server", sock}, 60s).status == 4);
  CHECK(run_cmd({FERRY_BIN, "drain", "--host", "a1", "--db", "/tmp/x", "--server", sock}, 60s)
          .status
        == 4);
  CHECK(d.stop() == 0);
}

TEST_CASE("bad requests get INVALID_ARGUMENT naming the field, and nothing starts",
          "[errors]") {
  ferryd_process d{make_temp_dir("ferryd-err"), fleet_config()};
  d.start();
  auto c = connect(d.unix_client());
  auto expect = [&](const v1::SubmitRequest& req, errc want, const std::string& prefix) {
    auto r = c->submit(req);
    REQUIRE_FALSE(r);
    CHECK(code(r.error()) == want);
    INFO(message_of(r.error()));
    CHECK(message_of(r.error()).rfind(prefix, 0) == 0);
  };
  v1::SubmitRequest none;
  expect(none, errc::invalid_argument, "source: give one of");
  v1::SubmitRequest unknown_kind;
  unknown_kind.set_definition_text("name: \"x\" tasks { id: \"flip\" kind: \"flp\" }");
  expect(unknown_kind, errc::invalid_argument, "definition_text: ");
  auto r = c->submit(unknown_kind);
  CHECK(message_of(r.error()).find("flp") != std::string::npos);
  v1::SubmitRequest cycle;
  cycle.set_definition_text("name: \"x\" tasks { id: \"a\" kind: \"noop\" depends_on: \"b\" } "
                            "tasks { id: \"b\" kind: \"noop\" depends_on: \"a\" }");
  expect(cycle, errc::invalid_argument, "definition_text: ");
  v1::SubmitRequest syntax;
  syntax.set_definition_text("name: \"x\" tasks {");
  expect(syntax, errc::invalid_argument, "definition_text: ");
  v1::SubmitRequest missing_param;
  missing_param.mutable_template_()->set_name("live-precopy");
  expect(missing_param, errc::invalid_argument,
         "template: template \"live-precopy\": parameter \"vm\": required");
  v1::SubmitRequest bad_value;
  bad_value.mutable_template_()->set_name("live-precopy");
  (*bad_value.mutable_template_()->mutable_parameters())["vm"] = "web-1";
  (*bad_value.mutable_template_()->mutable_parameters())["max_downtime_ms"] = "soon";
  expect(bad_value, errc::invalid_argument, "template.parameters: ");
  v1::SubmitRequest unknown_vm;
  unknown_vm.mutable_template_()->set_name("live-precopy");
  (*unknown_vm.mutable_template_()->mutable_parameters())["vm"] = "ghost";
  expect(unknown_vm, errc::invalid_argument, "template: ");
  v1::SubmitRequest no_template;
  no_template.mutable_template_()->set_name("no-such-template");
  expect(no_template, errc::not_found, "template.name: ");
  v1::SubmitRequest bad_key;
  bad_key.set_definition_text(noop5);
  bad_key.set_idempotency_key("has space");
  expect(bad_key, errc::invalid_argument, "idempotency_key: ");
  auto get = c->get("no-such-run");
  REQUIRE_FALSE(get);
  CHECK(code(get.error()) == errc::not_found);
  CHECK(message_of(get.error()).rfind("run_id: ", 0) == 0);
  v1::ListRequest big;
  big.set_page_size(5000);
  auto l = c->list(big);
  REQUIRE_FALSE(l);
  CHECK(message_of(l.error()).rfind("page_size: ", 0) == 0);
  // Nothing was started by any of them.
  auto all = c->list(v1::ListRequest{});
  REQUIRE(all);
  CHECK(all->runs_size() == 0);
  // No idle connection left: gRPC's shutdown does not wait for it to close.
  c.reset();
  CHECK(d.stop() == 0);
}

TEST_CASE("a retried submit with the same idempotency key never starts a second run",
          "[idempotency]") {
  ferryd_process d{make_temp_dir("ferryd-idem"), fleet_config() + "log_format: \"json\"\n"};
  d.start();
  auto c = connect(d.unix_client());
  v1::SubmitRequest req;
  req.set_definition_text(noop5);
  req.set_idempotency_key("deploy-42");
  auto first = c->submit(req);
  REQUIRE(first);
  CHECK(first->run_id() == "deploy-42");
  CHECK_FALSE(first->existing());
  auto again = c->submit(req);
  REQUIRE(again);
  CHECK(again->run_id() == "deploy-42");
  CHECK(again->existing());
  // A template call retried after the VM moved still returns the first run.
  v1::SubmitRequest mig;
  mig.mutable_template_()->set_name("live-precopy");
  (*mig.mutable_template_()->mutable_parameters())["vm"] = "web-1";
  (*mig.mutable_template_()->mutable_parameters())["target"] = "a2";
  mig.set_idempotency_key("move-web-1");
  auto m1 = c->submit(mig);
  REQUIRE(m1);
  CHECK(wait_rest(*c, "move-web-1") == v1::RUN_SUCCEEDED);
  auto m2 = c->submit(mig);
  REQUIRE(m2);
  CHECK(m2->existing());
  // The same key with another definition is refused.
  req.set_definition_text(gated);
  auto other = c->submit(req);
  REQUIRE_FALSE(other);
  CHECK(code(other.error()) == errc::already_exists);
  CHECK(message_of(other.error()).rfind("idempotency_key: ", 0) == 0);
  auto all = c->list(v1::ListRequest{});
  REQUIRE(all);
  CHECK(all->runs_size() == 2);
  CHECK(d.stop() == 0);
  // JSON lines logs.
  std::istringstream log{d.log()};
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) {
    ++lines;
    CHECK(line.rfind("{\"time\":\"", 0) == 0);
    CHECK(line.back() == '}');
  }
  CHECK(lines >= 3);
}

TEST_CASE("a second ferryd on the socket or the TCP port of a running one is refused, and the "
          "first runs on", "[unix]") {
  auto dir = make_temp_dir("ferryd-first");
  make_certificates(dir);
  auto tls = "tls { cert_file: \"" + dir + "/server.pem\" key_file: \"" + dir + "/server.key\" }\n"
             + "tokens { name: \"ops\" secret: \"" + operator_token + "\" role: OPERATOR }\n";
  ferryd_process d{dir, fleet_config() + "tcp_listen: \"127.0.0.1:0\"\n" + tls};
  d.start();
  REQUIRE(d.tcp_port() > 0);
  auto other = make_temp_dir("ferryd-second");
  auto second = [&](const std::string& listen) {
    write_file(other + "/ferryd.conf", "data_dir: \"" + other + "/data\"\n" + listen);
    return run_cmd({FERRYD_BIN, "--config", other + "/ferryd.conf"}, 60s);
  };
  // Before, the second one removed the socket file and listened on its own: the first ran
  // on, unreachable, and lost its socket for good when the second stopped.
  auto on_socket = second("unix_socket: \"" + d.socket() + "\"\n");
  INFO(on_socket.out);
  CHECK(on_socket.status == 5);
  CHECK_THAT(on_socket.out, Catch::Contains("unix_socket: " + d.socket()
                                            + ": another process listens on it (is ferryd "
                                              "running already?)"));
  // Before, gRPC's SO_REUSEPORT let the second listen on the same port, and the kernel shared
  // the connections between the two ferryds and their journals.
  auto port = "127.0.0.1:" + std::to_string(d.tcp_port());
  auto on_port = second("unix_socket: \"-\"\ntcp_listen: \"" + port + "\"\n" + tls);
  INFO(on_port.out);
  CHECK(on_port.status == 5);
  CHECK_THAT(on_port.out,
             Catch::Contains("tcp_listen: cannot listen on " + port + ": Address already in use"));
  // Both refused before their engine opened: no journal was made.
  CHECK_FALSE(std::filesystem::exists(other + "/data/journal"));
  auto c = connect(d.unix_client());
  REQUIRE(c->list(v1::ListRequest{}));
  auto t = connect(d.tls_client(operator_token));
  REQUIRE(t->list(v1::ListRequest{}));
  CHECK(d.stop() == 0);
  std::filesystem::remove_all(other);
}

TEST_CASE("SIGHUP opens the log file again (logrotate) and ferryd runs on", "[logs]") {
  ferryd_process d{make_temp_dir("ferryd-hup"), fleet_config()};
  d.start();
  auto dir = d.dir();
  auto log = dir + "/ferryd.log";
  auto c = connect(d.unix_client());
  REQUIRE(c->list(v1::ListRequest{}));
  auto holds = [](const std::string& path, const std::string& text) {
    return [path, text] { return slurp(path).find(text) != std::string::npos; };
  };
  // logrotate moves the file away, then sends SIGHUP: the logs go on in a new file of the
  // name. Before, SIGHUP's default action ended ferryd at once, without a graceful stop.
  std::filesystem::rename(log, log + ".1");
  d.signal(SIGHUP);
  REQUIRE(test::wait_in_dir(dir, holds(log, "SIGHUP: log file reopened: " + log), 30s));
  REQUIRE(c->list(v1::ListRequest{}));
  // A file that cannot be opened (a directory in its place): the logs go on in the old one,
  // which says why, and ferryd runs on.
  std::filesystem::rename(log, log + ".2");
  std::filesystem::create_directory(log);
  d.signal(SIGHUP);
  REQUIRE(test::wait_in_dir(dir, holds(log + ".2", "SIGHUP: the log file cannot be opened again, "
                                                   "logging on to the old one"),
                            30s));
  REQUIRE(c->list(v1::ListRequest{}));
  CHECK(d.stop() == 0);
  auto first = slurp(log + ".1");
  CHECK_THAT(first, Catch::Contains("listening: unix"));
  CHECK_THAT(first, !Catch::Contains("SIGHUP"));
  auto second = slurp(log + ".2");
  CHECK_THAT(second, Catch::Contains("SIGHUP: log file reopened"));
  // The stop is logged where the logs went last.
  CHECK_THAT(second, Catch::Contains("SIGTERM: stopping"));
}

TEST_CASE("TCP is TLS with bearer tokens and roles; no anonymous access", "[tls]") {
  auto dir = make_temp_dir("ferryd-tls");
  make_certificates(dir);
  ferryd_process d{dir, fleet_config() + R"(
tcp_listen: "127.0.0.1:0"
tls { cert_file: ")" + dir + R"(/server.pem" key_file: ")" + dir + R"(/server.key" }
tokens { name: "dashboard" secret: ")" + viewer_token + R"(" role: VIEWER }
tokens { name: "oncall" secret: ")" + operator_token + R"(" role: OPERATOR }
tokens { name: "platform" secret: ")" + admin_token + R"(" role: ADMIN }
)"};
  d.start();
  REQUIRE(d.tcp_port() > 0);

  auto anonymous = connect(d.tls_client(nullptr));
  auto r = anonymous->list(v1::ListRequest{});
  REQUIRE_FALSE(r);
  CHECK(code(r.error()) == errc::unauthenticated);
  CHECK(message_of(r.error()).rfind("authorization: missing", 0) == 0);

  auto wrong = connect(d.tls_client("not-a-token-at-all-xyz"));
  r = wrong->list(v1::ListRequest{});
  REQUIRE_FALSE(r);
  CHECK(code(r.error()) == errc::unauthenticated);
  CHECK(message_of(r.error()) == "authorization: unknown token");

  auto op = connect(d.tls_client(operator_token));
  auto viewer = connect(d.tls_client(viewer_token));
  auto admin = connect(d.tls_client(admin_token));
  auto id = submit(*op, gated);
  auto seen = viewer->get(id);
  REQUIRE(seen);
  v1::ControlRequest ctl;
  ctl.set_run_id(id);
  auto denied = viewer->control("cancel", ctl);
  REQUIRE_FALSE(denied);
  CHECK(code(denied.error()) == errc::permission_denied);
  CHECK(message_of(denied.error())
        == "token \"dashboard\" (viewer) may not cancel: it needs the operator role");
  v1::SubmitRequest sub;
  sub.set_definition_text(noop5);
  auto vs = viewer->submit(sub);
  REQUIRE_FALSE(vs);
  CHECK(code(vs.error()) == errc::permission_denied);
  auto oa = op->control("abort", ctl);
  REQUIRE_FALSE(oa);
  CHECK(code(oa.error()) == errc::permission_denied);
  // Batches: operators submit and cancel them, viewers read them.
  v1::SubmitBatchRequest drain;
  drain.mutable_drain()->set_host("a2");
  auto vb = viewer->submit_batch(drain);
  REQUIRE_FALSE(vb);
  CHECK(code(vb.error()) == errc::permission_denied);
  CHECK(message_of(vb.error())
        == "token \"dashboard\" (viewer) may not submit_batch: it needs the operator role");
  auto vc = viewer->cancel_batch("drain-a2");
  REQUIRE_FALSE(vc);
  CHECK(code(vc.error()) == errc::permission_denied);
  CHECK(viewer->list_batches());
  auto otp = op->put_template("name: \"t\"");
  REQUIRE_FALSE(otp);
  CHECK(code(otp.error()) == errc::permission_denied);
  REQUIRE(admin->control("abort", ctl));
  CHECK(wait_rest(*admin, id) == v1::RUN_ABORTED);
  // The journal names who did it.
  bool by_platform = false;
  v1::WatchRequest w;
  w.set_run_id(id);
  REQUIRE_FALSE(viewer->watch(w, [&](const v1::WatchResponse& m) {
    for (auto& e : m.events())
      if (e.type() == v1::RUN_ABORTED_EVENT && e.actor() == "platform")
        by_platform = true;
      else if (e.type() == v1::RUN_STARTED)
        CHECK(e.actor() == "oncall");
    return true;
  }, std::chrono::seconds{30}));
  CHECK(by_platform);

  // The CLI's exit codes (docs/operations.md).
  auto server = "127.0.0.1:" + std::to_string(d.tcp_port());
  auto cli = [&](std::vector<std::string> args, const char* token) {
    std::vector<std::string> argv{FERRY_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    for (const std::string& x : {std::string{"--server"}, server, std::string{"--ca"},
                                 dir + "/ca.pem"})
      argv.push_back(x);
    if (token) {
      argv.push_back("--token");
      argv.push_back(token);
    }
    return run_cmd(argv, 60s);
  };
  auto listed = cli({"list", "--json"}, viewer_token);
  CHECK(listed.status == 0);
  CHECK(listed.out.find("\"run_id\":\"" + id + "\"") != std::string::npos);
  CHECK(cli({"list"}, "not-a-token-at-all-xyz").status == 8);
  CHECK(cli({"list"}, nullptr).status == 8);
  auto shown = cli({"show", id}, viewer_token);
  CHECK(shown.status == 0);
  CHECK(shown.out.find("ABORTED") != std::string::npos);
  CHECK(cli({"show", "nope"}, viewer_token).status == 4);
  CHECK(cli({"cancel", id}, viewer_token).status == 8);
  CHECK(run_cmd({FERRY_BIN, "list", "--server", "unix:" + dir + "/no-such.sock", "--timeout", "5"},
                60s)
          .status
        == 9);

  // A client that does not trust ferryd's CA does not get through.
  auto untrusting_opts = d.tls_client(admin_token);
  untrusting_opts.ca_file = dir + "/other-ca.pem";
  untrusting_opts.timeout = std::chrono::seconds{5};
  auto untrusting = connect(untrusting_opts);
  auto u = untrusting->list(v1::ListRequest{});
  REQUIRE_FALSE(u);
  CHECK(code(u.error()) == errc::unavailable);
  CHECK(d.stop() == 0);
}

TEST_CASE("50 concurrent clients submit and watch their runs to the end", "[concurrency]") {
  ferryd_process d{make_temp_dir("ferryd-50"), fleet_config()};
  d.start();
  constexpr int clients = 50;
  std::atomic<int> succeeded{0};
  std::mutex mtx;
  std::vector<std::string> problems;
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      auto o = d.unix_client();
      o.own_connection = true;
      auto c = api::client::connect(o);
      auto problem = [&](std::string p) {
        std::lock_guard<std::mutex> g{mtx};
        problems.push_back("client " + std::to_string(i) + ": " + p);
      };
      if (!c)
        return problem(describe(c.error()));
      v1::SubmitRequest req;
      req.set_definition_text(noop5);
      req.set_idempotency_key("client-" + std::to_string(i));
      auto s = (*c)->submit(req);
      if (!s)
        return problem(describe(s.error()));
      v1::WatchRequest w;
      w.set_run_id(s->run_id());
      uint64_t events = 0;
      bool ok = false;
      auto err = (*c)->watch(w, [&](const v1::WatchResponse& m) {
        events += static_cast<uint64_t>(m.events_size());
        if (m.has_final_state())
          ok = m.final_state().status() == v1::RUN_SUCCEEDED;
        return true;
      }, std::chrono::seconds{60});
      if (err)
        return problem(describe(err));
      if (!ok || events == 0)
        return problem("run did not succeed, " + std::to_string(events) + " events");
      ++succeeded;
    });
  for (auto& t : threads)
    t.join();
  INFO((problems.empty() ? std::string{} : problems.front()));
  CHECK(problems.empty());
  CHECK(succeeded == clients);
  auto c = connect(d.unix_client());
  v1::ListRequest lr;
  lr.set_page_size(1000);
  auto all = c->list(lr);
  REQUIRE(all);
  CHECK(all->runs_size() == clients);
  CHECK(d.stop() == 0);
}

TEST_CASE("ferryd killed with SIGKILL mid-migration and restarted: ferry watch reconnects and "
          "sees the run finish", "[restart]") {
  // Real time on the simulated hosts: the copy of web-1 takes a few seconds.
  ferryd_process d{make_temp_dir("ferryd-kill"), fleet_config(1)};
  d.start();
  auto c = connect(d.unix_client());
  v1::SubmitRequest mig;
  mig.mutable_template_()->set_name("live-precopy");
  (*mig.mutable_template_()->mutable_parameters())["vm"] = "web-1";
  (*mig.mutable_template_()->mutable_parameters())["target"] = "a2";
  mig.set_idempotency_key("move-web-1");
  REQUIRE(c->submit(mig));
  child watch{{FERRY_BIN, "watch", "move-web-1", "--server", "unix:" + d.socket(),
               "--reconnect", "120"}};
  // The copy is under way (its progress is streamed): kill ferryd.
  REQUIRE(watch.read_until(
    [](const std::string& out) { return out.find("precopy        copy") != std::string::npos; },
    steady::now() + 60s));
  d.kill9();
  d.start();
  auto rc = watch.wait_exit(120s);
  INFO(watch.out());
  CHECK(rc == 0);
  CHECK(watch.out().find("reconnecting") != std::string::npos);
  CHECK(watch.out().find("run succeeded") != std::string::npos);
  // Each event printed once across the reconnect.
  CHECK(watch.out().find("precopy          succeeded")
        == watch.out().rfind("precopy          succeeded"));
  c = connect(d.unix_client());
  CHECK(wait_rest(*c, "move-web-1") == v1::RUN_SUCCEEDED);
  auto fleet = c->fleet();
  REQUIRE(fleet);
  int copies = 0;
  for (auto& v : fleet->vms())
    if (v.name() == "web-1") {
      ++copies;
      CHECK(v.host() == "a2");
    }
  CHECK(copies == 1);
  CHECK(d.stop() == 0);
}

TEST_CASE("SIGTERM answers the calls that wait with the state then, and ferryd stops within "
          "its grace period", "[shutdown]") {
  ferryd_process d{make_temp_dir("ferryd-waits"), fleet_config() + "shutdown_grace_ms: 2000\n"};
  d.start();
  auto c = connect(d.unix_client());
  // A run held at its gate and a batch held by a window ten minutes away: neither comes to
  // rest by itself.
  auto held = submit(*c, gated);
  REQUIRE(c->submit_batch(tonight({"web-1"})));
  // Both asked to wait far longer than the grace period and the stop's deadline below.
  auto run = std::async(std::launch::async, [&] { return c->get(held, 600s); });
  auto batch = std::async(std::launch::async, [&] { return c->get_batch("tonight", 600s); });
  // Both are held by ferryd (its gauge says so) before it is told to stop.
  auto deadline = steady::now() + 30s;
  while (http_get(d.metrics_port(), "/metrics").find("\nferry_waiting_calls 2\n")
         == std::string::npos)
    REQUIRE(steady::now() < deadline);
  CHECK(d.stop() == 0);
  REQUIRE(run.wait_for(60s) == std::future_status::ready);
  REQUIRE(batch.wait_for(60s) == std::future_status::ready);
  // Answered with the state then.
  auto r = run.get();
  INFO((r ? std::string{} : describe(r.error())));
  REQUIRE(r);
  CHECK(r->state().status() == v1::RUN_RUNNING);
  auto b = batch.get();
  INFO((b ? std::string{} : describe(b.error())));
  REQUIRE(b);
  CHECK_FALSE(b->finished());
  CHECK(b->waiting() + b->running() == 1);
}

TEST_CASE("SIGTERM under load: every acknowledged submit is in the journal and finishes",
          "[sigterm]") {
  ferryd_process d{make_temp_dir("ferryd-term"), fleet_config()};
  d.start();
  std::mutex mtx;
  std::vector<std::string> acked;
  std::atomic<bool> stopping{false};
  std::atomic<int> after_stop_errors{0};
  std::vector<std::thread> threads;
  std::atomic<int> total{0};
  std::condition_variable loaded;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      auto o = d.unix_client();
      o.own_connection = true;
      o.timeout = std::chrono::seconds{20};
      auto c = api::client::connect(o);
      if (!c)
        return;
      for (int n = 0;; ++n) {
        v1::SubmitRequest req;
        req.set_definition_text(noop5);
        req.set_idempotency_key("load-" + std::to_string(i) + "-" + std::to_string(n));
        auto r = (*c)->submit(req);
        if (!r) {
          if (stopping)
            ++after_stop_errors;
          return; // ferryd is gone
        }
        std::lock_guard<std::mutex> g{mtx};
        acked.push_back(r->run_id());
        if (++total == 2000)
          loaded.notify_all();
      }
    });
  // Load for a while (until 2,000 runs are acknowledged), then SIGTERM.
  {
    std::unique_lock<std::mutex> g{mtx};
    REQUIRE(loaded.wait_for(g, 60s, [&] { return total >= 2000; }));
  }
  stopping = true;
  CHECK(d.stop() == 0);
  for (auto& t : threads)
    t.join();
  REQUIRE(acked.size() >= 2000);
  d.start();
  auto c = connect(d.unix_client());
  for (auto& id : acked) {
    auto r = c->get(id, std::chrono::seconds{60});
    REQUIRE(r);
    CHECK(r->state().status() == v1::RUN_SUCCEEDED);
  }
  CHECK(d.stop() == 0);
}
