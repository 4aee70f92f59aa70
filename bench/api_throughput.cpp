// api_throughput: runs submitted through ferryd's gRPC API (a real server on a unix socket,
// in this process, on a RocksDB journal synced on every commit) by concurrent clients, each
// with its own connection, each submitting five-task noop workflows one after another (the
// next once the previous is durable) and asking, through the API (Get with wait), to be told
// when each of its runs is at rest (apps/ferryd/load.hpp). Prints one
// JSON object: submits_per_s (submits acknowledged, i.e. durable, per second while they ran),
// runs_per_s (runs submitted and at rest through the API, per second from the first submit
// until the last run is at rest), p50/p99_submit_ms, and more.
//   build/bench/api_throughput [--runs 20000] [--clients 32] [--tcp] [--no-sync] [--db DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "actors/engine.hpp"
#include "apps/ferryd/config.hpp"
#include "apps/ferryd/daemon.hpp"
#include "apps/ferryd/load.hpp"
#include "bench/bench_util.hpp"
#include "common/cli_numbers.hpp"

using namespace ferry;

int main(int argc, char** argv) {
  CLI::App app{"api_throughput"};
  size_t runs = 20000;
  size_t clients = 32;
  std::string db;
  bool no_sync = false;
  unsigned threads = 0;
  app.add_option("--runs", runs, "Runs in all (default 20000)")
    ->transform(ferry::whole_number(1));
  app.add_option("--clients", clients, "Concurrent clients, one connection each (default 32)")
    ->transform(ferry::whole_number(1));
  app.add_option("--threads", threads, "Engine scheduler threads (default: one per core)")
    ->transform(ferry::whole_number());
  app.add_option("--db", db, "Data directory (default: a fresh temporary one)");
  app.add_flag("--no-sync", no_sync, "Do not sync the WAL (for comparison only)");
  CLI11_PARSE(app, argc, argv);
  if (clients == 0 || runs < clients) {
    std::fprintf(stderr, "api_throughput: --clients must be >= 1 and <= --runs\n");
    return 4;
  }

  bench::temp_dir tmp{"ferry-bench-api"};
  daemon::daemon_config cfg;
  cfg.data_dir = db.empty() ? tmp.path() : db;
  cfg.unix_socket = tmp.path() + "/ferryd.sock";
  cfg.sync = !no_sync;
  cfg.threads = threads;
  auto srv = bench::must(daemon::server::start(cfg), "api_throughput");

  api::load_options lo;
  lo.server = "unix:" + cfg.unix_socket;
  lo.clients = clients;
  lo.runs = runs;
  lo.definition = bench::five_task_noop;
  auto r = api::run_load(lo);
  auto pct = [&](double q) {
    auto& v = r.submit_ms;
    return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
  };
  auto& em = srv->eng().metrics();
  auto commit_p50 = static_cast<double>(em.commit_latency.quantile(0.5)) / 1e6;
  auto commit_p99 = static_cast<double>(em.commit_latency.quantile(0.99)) / 1e6;
  auto ack_p50 = static_cast<double>(em.ack_latency.quantile(0.5)) / 1e6;
  srv->shutdown();
  std::printf("{\"benchmark\": \"api_throughput\", \"runs\": %zu, \"clients\": %zu, "
              "\"acknowledged\": %zu, \"succeeded\": %zu, \"errors\": %zu, "
              "\"submits_per_s\": %.1f, \"runs_per_s\": %.1f, \"p50_submit_ms\": %.3f, "
              "\"p99_submit_ms\": %.3f, \"submit_s\": %.3f, \"elapsed_s\": %.3f, "
              "\"p50_commit_ms\": %.3f, \"p99_commit_ms\": %.3f, \"p50_ack_ms\": %.3f, "
              "\"peak_rss_bytes\": %llu, \"synced\": %s, \"transport\": \"unix\"%s%s%s}\n",
              runs, clients, r.acknowledged, r.succeeded, r.errors,
              static_cast<double>(r.acknowledged) / r.submit_s,
              static_cast<double>(r.succeeded) / r.elapsed_s, pct(0.5), pct(0.99), r.submit_s,
              r.elapsed_s, commit_p50, commit_p99, ack_p50,
              static_cast<unsigned long long>(bench::peak_rss_bytes()),
              no_sync ? "false" : "true", r.first_error.empty() ? "" : ", \"first_error\": \"",
              r.first_error.c_str(), r.first_error.empty() ? "" : "\"");
  return r.errors == 0 && r.succeeded == runs ? 0 : 1;
}
