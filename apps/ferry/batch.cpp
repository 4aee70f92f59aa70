// `ferry batch FILE` and `ferry drain --host H|--zone Z`: run a batch
// (proto/ferry/v1/batch.proto) or drain a host or zone. With --fleet FLEET, on the embedded
// engine with its scheduler: each item printed as it comes to rest, a table at the end; with
// --db the journal (and the simulated hosts' state) is kept in DIR, and the same command again
// resumes the batch where it was. Without --fleet, on ferryd (--server): the batch is
// submitted, its progress followed until it finished, and the same table printed.
// `ferry batches [list|show|wait|cancel]`: the batches ferryd keeps.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "actors/engine.hpp"
#include "actors/log.hpp"
#include "apps/ferry/commands.hpp"
#include "apps/ferry/remote.hpp"
#include "apps/ferry/output.hpp"
#include "ferry/v1/batch.pb.h"
#include "fleet/fleet_codec.hpp"
#include "templates/batch.hpp"

namespace ferry::cli {

namespace {

struct batch_args {
  std::string file;
  std::string fleet;
  std::string db;
  double speed = 100;
  double timeout_s = 3600;
  bool json = false;
  bool verbose = false;
  // drain
  drain_request drain;
  std::vector<std::string> params;
  // on ferryd
  conn_args conn;
  bool detach = false;
};

std::string status_json(const batch_status& s) {
  auto q = [](const std::string& x) {
    std::string out = "\"";
    for (char c : x) {
      if (c == '"' || c == '\\')
        out += '\\';
      out += c;
    }
    return out + "\"";
  };
  std::string out = "{\"name\":" + q(s.name) + ",\"finished\":" + (s.finished ? "true" : "false")
                    + ",\"cancelled\":" + (s.cancelled ? "true" : "false")
                    + ",\"total\":" + std::to_string(s.total)
                    + ",\"succeeded\":" + std::to_string(s.succeeded)
                    + ",\"failed\":" + std::to_string(s.failed)
                    + ",\"skipped\":" + std::to_string(s.skipped)
                    + ",\"peak_running\":" + std::to_string(s.peak_running)
                    + ",\"peak_host_out\":" + std::to_string(s.peak_host_out)
                    + ",\"peak_host_in\":" + std::to_string(s.peak_host_in) + ",\"items\":[";
  for (size_t i = 0; i < s.items.size(); ++i) {
    auto& it = s.items[i];
    out += std::string{i ? "," : ""} + "{\"vm\":" + q(it.vm) + ",\"run\":" + q(it.run)
           + ",\"state\":" + q(it.state) + ",\"source\":" + q(it.source)
           + ",\"target\":" + q(it.target) + ",\"fallback\":" + (it.fallback ? "true" : "false")
           + ",\"reason\":" + q(it.reason) + "}";
  }
  return out + "]}";
}

void print_status(const batch_status& s, bool json);
int exit_of_batch(const batch_status& s);

/// Opens the engine on the fleet, submits the batch `make` builds, waits and reports.
int run_batch(const batch_args& a, const char* cmd,
              const std::function<caf::expected<batch_status>(engine&)>& submit) {
  if (a.fleet.empty()) {
    std::fprintf(stderr, "ferry %s: --fleet FILE is required\n", cmd);
    return exit_bad_input;
  }
  if (a.detach) {
    std::fprintf(stderr, "ferry %s: --detach works on ferryd only (without --fleet)\n", cmd);
    return exit_bad_input;
  }
  auto f = fleet::load_fleet_file(a.fleet);
  if (!f) {
    std::fprintf(stderr, "ferry %s: %s\n", cmd, describe(f.error()).c_str());
    return exit_bad_input;
  }
  if (!a.verbose)
    log().set_level(spdlog::level::warn);
  engine_options opts;
  opts.journal_path = a.db;
  opts.fleet = *f;
  opts.fleet_opts.sim_speed = a.speed;
  opts.template_dirs = {FERRY_BUILTIN_TEMPLATES};
  // The journal's open makes the directory, the simulated hosts' state is kept beside it.
  if (!a.db.empty())
    opts.fleet_opts.sim_state_file = a.db + "/sim-state";
  new_journal_guard journal{a.db};
  std::mutex out_mtx;
  auto t0 = std::chrono::steady_clock::now();
  opts.notify = [&](const notification& n) {
    if (a.json)
      return;
    std::lock_guard<std::mutex> g{out_mtx};
    auto since = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0);
    std::printf("%7.2fs  %-32s %s: %s\n", since.count(), n.run.c_str(), n.event.c_str(),
                n.message.c_str());
    std::fflush(stdout);
  };
  auto eng = engine::open(opts);
  if (!eng) {
    std::fprintf(stderr, "ferry %s: %s\n", cmd, describe(eng.error()).c_str());
    return embedded_exit_of(eng.error());
  }
  auto& e = **eng;
  auto started = submit(e);
  if (!started) {
    std::fprintf(stderr, "ferry %s: %s\n", cmd, describe(started.error()).c_str());
    return embedded_exit_of(started.error());
  }
  journal.keep();
  if (!a.json) {
    std::lock_guard<std::mutex> g{out_mtx};
    std::printf("batch %s: %u item(s), %u running\n", started->name.c_str(), started->total,
                started->running);
    std::fflush(stdout);
  }
  auto timeout = std::chrono::milliseconds{static_cast<int64_t>(a.timeout_s * 1000)};
  auto s = e.wait_batch(started->name, timeout);
  if (!s) {
    std::fprintf(stderr, "ferry %s: %s\n", cmd, describe(s.error()).c_str());
    return code_of(s.error()) == errc::deadline_exceeded ? exit_timeout : exit_engine_error;
  }
  {
    std::lock_guard<std::mutex> g{out_mtx};
    print_status(*s, a.json);
  }
  e.close();
  return exit_of_batch(*s);
}

/// The items of a batch and its counts (or JSON); the exit code of a finished batch.
void print_status(const batch_status& s, bool json) {
  if (json) {
    std::printf("%s\n", status_json(s).c_str());
  } else {
    std::printf("\n%-16s %-40s %-8s %-8s %-12s %s\n", "vm", "run", "from", "to", "state",
                "reason");
    for (auto& it : s.items)
      std::printf("%-16s %-40s %-8s %-8s %-12s %s\n", it.vm.c_str(),
                  (it.run + (it.fallback ? " (fallback)" : "")).c_str(), it.source.c_str(),
                  it.target.c_str(), it.state.c_str(), it.reason.c_str());
    std::printf("\n%u succeeded, %u failed, %u skipped%s; at most %u at once, %u out of one "
                "host, %u into one host\n",
                s.succeeded, s.failed, s.skipped,
                s.finished ? ""
                           : (", " + std::to_string(s.running) + " running, "
                              + std::to_string(s.waiting) + " waiting")
                               .c_str(),
                s.peak_running, s.peak_host_out, s.peak_host_in);
  }
  std::fflush(stdout);
}

int exit_of_batch(const batch_status& s) {
  return s.failed > 0 ? exit_failed : s.skipped > 0 ? exit_rolled_back : exit_ok;
}

/// Follows batch `name` on ferryd until it finished (or `timeout_s` passed), printing its
/// counts when they change, then its items. The exit code as run_batch's.
int follow_batch(api::client& cl, const std::string& name, double timeout_s, bool json,
                 const char* cmd) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + std::chrono::milliseconds{static_cast<int64_t>(timeout_s * 1000)};
  std::string last;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    // Long polls of at most 5 s: the counts are printed as they move.
    auto st = cl.get_batch(name, std::clamp(left, std::chrono::milliseconds{1},
                                            std::chrono::milliseconds{5000}));
    if (!st)
      return fail(cmd, st.error());
    auto s = batch_status_from_proto(*st);
    if (s.finished) {
      print_status(s, json);
      return exit_of_batch(s);
    }
    auto counts = std::to_string(s.succeeded) + " succeeded, " + std::to_string(s.failed)
                  + " failed, " + std::to_string(s.skipped) + " skipped, "
                  + std::to_string(s.running) + " running, " + std::to_string(s.waiting)
                  + " waiting";
    if (!json && counts != last) {
      std::printf("batch %s: %s\n", name.c_str(), counts.c_str());
      std::fflush(stdout);
      last = counts;
    }
    if (clock::now() >= deadline) {
      std::fprintf(stderr, "ferry %s: batch \"%s\": not finished after %g s (it goes on: "
                           "ferry batches wait %s)\n",
                   cmd, name.c_str(), timeout_s, name.c_str());
      return exit_timeout;
    }
  }
}

/// Submits on ferryd, then follows the batch (unless --detach).
int remote_batch(const batch_args& a, const char* cmd, const v1::SubmitBatchRequest& req) {
  if (!a.db.empty() || a.verbose) {
    std::fprintf(stderr, "ferry %s: %s works on the embedded engine only (give --fleet)\n",
                 cmd, a.db.empty() ? "--verbose" : "--db");
    return exit_bad_input;
  }
  int rc = 0;
  auto cl = connect(a.conn, cmd, rc);
  if (!cl)
    return rc;
  auto started = cl->submit_batch(req);
  if (!started)
    return fail(cmd, started.error());
  if (a.detach) {
    if (a.json)
      print_json(*started);
    else
      std::printf("batch %s: %u item(s), %u running\n", started->name().c_str(),
                  started->total(), started->running());
    return exit_ok;
  }
  if (!a.json)
    std::printf("batch %s: %u item(s), %u running\n", started->name().c_str(), started->total(),
                started->running());
  return follow_batch(*cl, started->name(), a.timeout_s, a.json, cmd);
}

void common_options(CLI::App* cmd, batch_args& a) {
  cmd->add_option("--fleet", a.fleet,
                  "Fleet file: run on the embedded engine (without it: on ferryd, --server)");
  cmd->add_option("--db", a.db,
                  "Embedded: journal directory (default: in memory); the same command again "
                  "resumes");
  cmd->add_option("--speed", a.speed,
                  "Embedded: simulated seconds per real second for sim:// hosts (default 100)")
    ->check(finite_number(true));
  cmd->add_option("--timeout", a.timeout_s, "Seconds to wait for the batch (default 3600)")
    ->check(finite_number(true));
  cmd->add_flag("--json", a.json, "Print the batch's final status as JSON");
  cmd->add_flag("-v,--verbose", a.verbose, "Embedded: the engine's log too");
  cmd->add_flag("--detach", a.detach,
                "On ferryd: return once the batch is under way (follow it with ferry batches "
                "wait NAME)");
  add_conn(cmd, a.conn, false);
}

} // namespace

void add_batch(CLI::App& app, std::function<int()>& action) {
  {
    auto a = std::make_shared<batch_args>();
    auto* cmd = app.add_subcommand(
      "batch", "Run a batch of migrations (proto/ferry/v1/batch.proto), embedded (--fleet) or on "
               "ferryd");
    cmd->add_option("file", a->file, "Batch (protobuf text format or JSON)")->required();
    common_options(cmd, *a);
    cmd->callback([&action, a] {
      action = [a] {
        auto spec = load_batch_file(a->file);
        if (!spec) {
          std::fprintf(stderr, "ferry batch: %s\n", describe(spec.error()).c_str());
          return static_cast<int>(exit_bad_input);
        }
        if (a->fleet.empty()) {
          v1::SubmitBatchRequest req;
          batch_to_proto(*spec, *req.mutable_batch());
          return remote_batch(*a, "batch", req);
        }
        return run_batch(*a, "batch", [&](engine& e) { return e.submit_batch(*spec); });
      };
    });
  }
  {
    auto a = std::make_shared<batch_args>();
    auto* cmd = app.add_subcommand(
      "drain", "Move every VM off a host (or out of a zone) under limits, embedded (--fleet) or "
               "on ferryd");
    common_options(cmd, *a);
    auto& d = a->drain;
    cmd->add_option("--host", d.host, "The host to empty");
    cmd->add_option("--zone", d.zone, "The zone to empty (with --to-zone)");
    cmd->add_option("--to-zone", d.to_zone, "Where the VMs go (default: their own zone)");
    cmd->add_option("--template", d.template_name, "Template of each move (default live-precopy)");
    cmd->add_option("--fallback", d.fallback_template,
                    "Template for a VM whose move rolled back (reboot, for instance)");
    cmd->add_option("--name", d.name, "The batch's name (default drain-HOST or drain-ZONE)");
    cmd->add_option("-p,--param", a->params, "A template argument for every move: NAME=VALUE");
    cmd->add_option("--max", d.limits.global, "Moves at once (default: no limit)")
      ->transform(whole_number(0, UINT32_MAX));
    cmd->add_option("--max-out", d.limits.host_out, "Moves out of one host at once")
      ->transform(whole_number(0, UINT32_MAX));
    cmd->add_option("--max-in", d.limits.host_in, "Moves into one host at once")
      ->transform(whole_number(0, UINT32_MAX));
    cmd->add_option("--max-zone", d.limits.zone, "Moves touching one zone at once")
      ->transform(whole_number(0, UINT32_MAX));
    cmd->add_option("--max-partition", d.limits.partition,
                    "Moves of VMs with a volume on one partition at once")
      ->transform(whole_number(0, UINT32_MAX));
    cmd->add_option("--link-share", d.limits.link_share,
                    "Share (0-1] of an inter-zone link the moves may use at once")
      ->check(finite_number(false));
    cmd->callback([&action, a] {
      action = [a] {
        if (!split_params(a->params, a->drain.args, "drain"))
          return static_cast<int>(exit_bad_input);
        if (a->fleet.empty()) {
          v1::SubmitBatchRequest req;
          drain_to_proto(a->drain, *req.mutable_drain());
          return remote_batch(*a, "drain", req);
        }
        return run_batch(*a, "drain", [&](engine& e) { return e.drain(a->drain); });
      };
    });
  }
  {
    struct batches_args {
      conn_args conn;
      std::string name;
      double timeout_s = 3600;
      bool json = false;
    };
    auto a = std::make_shared<batches_args>();
    auto* cmd = app.add_subcommand("batches", "The batches and drains on ferryd: list (default), "
                                              "show, wait, cancel");
    cmd->require_subcommand(0, 1);
    // --server, --json... after the subcommand too.
    cmd->fallthrough();
    add_conn(cmd, a->conn);
    cmd->add_flag("--json", a->json, "JSON (the API's BatchStatus)");
    // `ferry batches` and `ferry batches list` are the same command: the documented
    // `batches [list]` was refused ("The following argument was not expected: list").
    cmd->add_subcommand("list", "Every batch, a line each (the default)");
    auto* show = cmd->add_subcommand("show", "A batch's items and counts");
    auto* wait = cmd->add_subcommand("wait", "Follow a batch until it finished");
    auto* cancel = cmd->add_subcommand(
      "cancel", "Start no more of its items; its runs in flight roll back (operator)");
    for (auto* sub : {show, wait, cancel})
      sub->add_option("name", a->name, "The batch")->required();
    wait->add_option("--wait", a->timeout_s, "Seconds to wait (default 3600)")
      ->check(finite_number(true));
    cmd->callback([&action, a, show, wait, cancel] {
      action = [a, show, wait, cancel] {
        int rc = 0;
        auto cl = connect(a->conn, "batches", rc);
        if (!cl)
          return rc;
        if (wait->parsed())
          return follow_batch(*cl, a->name, a->timeout_s, a->json, "batches wait");
        if (show->parsed() || cancel->parsed()) {
          auto s = show->parsed() ? cl->get_batch(a->name) : cl->cancel_batch(a->name);
          if (!s)
            return fail(show->parsed() ? "batches show" : "batches cancel", s.error());
          if (a->json)
            print_json(*s);
          else
            print_status(batch_status_from_proto(*s), false);
          return static_cast<int>(exit_ok);
        }
        auto all = cl->list_batches();
        if (!all)
          return fail("batches", all.error());
        if (a->json) {
          print_json(*all);
          return static_cast<int>(exit_ok);
        }
        std::printf("%-40s %-9s %6s %7s %9s %6s %7s\n", "NAME", "STATE", "ITEMS", "RUNNING",
                    "SUCCEEDED", "FAILED", "SKIPPED");
        for (auto& b : all->batches())
          std::printf("%-40s %-9s %6u %7u %9u %6u %7u\n", b.name().c_str(),
                      b.cancelled() ? "cancelled" : b.finished() ? "finished" : "running",
                      b.total(), b.running(), b.succeeded(), b.failed(), b.skipped());
        return static_cast<int>(exit_ok);
      };
    });
  }
}

} // namespace ferry::cli
