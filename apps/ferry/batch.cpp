// `ferry batch FILE --fleet FLEET` and `ferry drain --fleet FLEET --host H|--zone Z`: run a
// batch (proto/ferry/v1/batch.proto) or drain a host or zone on the embedded engine with its
// scheduler, print each item as it comes to rest and a table at the end. With --db the
// journal (and the simulated hosts' state) is kept in DIR: the same command again resumes
// the batch where it was.
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "actors/engine.hpp"
#include "actors/log.hpp"
#include "apps/ferry/commands.hpp"
#include "apps/ferry/remote.hpp"
#include "apps/ferry/output.hpp"
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

/// Opens the engine on the fleet, submits the batch `make` builds, waits and reports.
int run_batch(const batch_args& a, const char* cmd,
              const std::function<caf::expected<batch_status>(engine&)>& submit) {
  if (a.fleet.empty()) {
    std::fprintf(stderr, "ferry %s: --fleet FILE is required\n", cmd);
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
  if (!a.db.empty()) {
    std::filesystem::create_directories(a.db);
    opts.fleet_opts.sim_state_file = a.db + "/sim-state";
  }
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
    return exit_engine_error;
  }
  auto& e = **eng;
  auto started = submit(e);
  if (!started) {
    std::fprintf(stderr, "ferry %s: %s\n", cmd, describe(started.error()).c_str());
    auto c = code_of(started.error());
    return c == errc::invalid_argument || c == errc::already_exists
               || c == errc::failed_precondition
             ? exit_bad_input
             : exit_engine_error;
  }
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
    if (a.json) {
      std::printf("%s\n", status_json(*s).c_str());
    } else {
      std::printf("\n%-16s %-40s %-8s %-8s %-12s %s\n", "vm", "run", "from", "to", "state",
                  "reason");
      for (auto& it : s->items)
        std::printf("%-16s %-40s %-8s %-8s %-12s %s\n", it.vm.c_str(),
                    (it.run + (it.fallback ? " (fallback)" : "")).c_str(), it.source.c_str(),
                    it.target.c_str(), it.state.c_str(), it.reason.c_str());
      std::printf("\n%u succeeded, %u failed, %u skipped; at most %u at once, %u out of one "
                  "host, %u into one host\n",
                  s->succeeded, s->failed, s->skipped, s->peak_running, s->peak_host_out,
                  s->peak_host_in);
    }
    std::fflush(stdout);
  }
  e.close();
  return s->failed > 0 ? exit_failed : s->skipped > 0 ? exit_rolled_back : exit_ok;
}

void common_options(CLI::App* cmd, batch_args& a) {
  cmd->add_option("--fleet", a.fleet, "Fleet file (required)");
  cmd->add_option("--db", a.db,
                  "Journal directory (default: in memory); the same command again resumes");
  cmd->add_option("--speed", a.speed,
                  "Simulated seconds per real second for sim:// hosts (default 100)");
  cmd->add_option("--timeout", a.timeout_s, "Seconds to wait for the batch (default 3600)");
  cmd->add_flag("--json", a.json, "Print the batch's final status as JSON");
  cmd->add_flag("-v,--verbose", a.verbose, "The engine's log too");
}

} // namespace

void add_batch(CLI::App& app, std::function<int()>& action) {
  {
    auto a = std::make_shared<batch_args>();
    auto* cmd = app.add_subcommand(
      "batch", "Run a batch of migrations (proto/ferry/v1/batch.proto) on the embedded engine");
    cmd->add_option("file", a->file, "Batch (protobuf text format or JSON)")->required();
    common_options(cmd, *a);
    cmd->callback([&action, a] {
      action = [a] {
        auto spec = load_batch_file(a->file);
        if (!spec) {
          std::fprintf(stderr, "ferry batch: %s\n", describe(spec.error()).c_str());
          return static_cast<int>(exit_bad_input);
        }
        return run_batch(*a, "batch", [&](engine& e) { return e.submit_batch(*spec); });
      };
    });
  }
  {
    auto a = std::make_shared<batch_args>();
    auto* cmd = app.add_subcommand(
      "drain", "Move every VM off a host (or out of a zone) under limits, on the embedded engine");
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
    cmd->add_option("--max", d.limits.global, "Moves at once (default: no limit)");
    cmd->add_option("--max-out", d.limits.host_out, "Moves out of one host at once");
    cmd->add_option("--max-in", d.limits.host_in, "Moves into one host at once");
    cmd->add_option("--max-zone", d.limits.zone, "Moves touching one zone at once");
    cmd->add_option("--max-partition", d.limits.partition,
                    "Moves of VMs with a volume on one partition at once");
    cmd->add_option("--link-share", d.limits.link_share,
                    "Share (0-1] of an inter-zone link the moves may use at once");
    cmd->callback([&action, a] {
      action = [a] {
        if (!split_params(a->params, a->drain.args, "drain"))
          return static_cast<int>(exit_bad_input);
        return run_batch(*a, "drain", [&](engine& e) { return e.drain(a->drain); });
      };
    });
  }
}

} // namespace ferry::cli
