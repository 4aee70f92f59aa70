// sim_world — the simulated fleet every sim driver acts on. It owns a virtual clock, the hosts
// (registered by URI "sim://<zone>/<host>", each with a NIC), the links between zones, the
// domains on each host, the migrations in flight (a fluid model: concurrent migrations share
// NICs and links, each stepped through a precopy_job) and the injected faults, all behind one
// mutex. No CAF.
//
// Threads: any thread may call it. Operations and their callbacks (driver replies, progress)
// run in virtual-time order: with the manual clock (sim_options::speed 0) on the thread that
// calls advance() or run_until_idle(); with scaled real time (speed > 0) on the world's own
// thread, which advances virtual time at speed x real time. Callbacks run without the lock
// held, so they may call the world again (but not advance(), and must not drop the last
// reference to it).
//
// Deterministic with the manual clock: the same calls in the same order with the same seed
// give the same results.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hypervisor/driver.hpp"
#include "hypervisor/precopy.hpp"

namespace ferry::hv {

struct sim_options {
  /// Virtual seconds per real second; 0: manual clock (advance(), run_until_idle()).
  /// Default: 0
  double speed = 0;
  /// NIC bandwidth of a host added without one, bytes/s (each direction). Default: 1.25e9
  /// (10 Gbit/s)
  double nic_bytes_s = 1.25e9;
  /// Bandwidth between two zones without set_link(), bytes/s, shared by both directions.
  /// Default: 1.25e8 (1 Gbit/s)
  double link_bytes_s = 1.25e8;
  /// Disk throughput for save() and restore(), bytes/s. Default: 1e9
  double disk_bytes_s = 1e9;
  // Durations of operations, virtual milliseconds.
  /// define. Default: 100
  uint32_t define_ms = 100;
  /// start: boot to running. Default: 3000
  uint32_t start_ms = 3000;
  /// pause. Default: 50
  uint32_t pause_ms = 50;
  /// resume. Default: 50
  uint32_t resume_ms = 50;
  /// destroy (stop and undefine). Default: 500
  uint32_t destroy_ms = 500;
  /// set_vcpus. Default: 200
  uint32_t set_vcpus_ms = 200;
  /// set_memory. Default: 500
  uint32_t set_memory_ms = 500;
  /// attach_disk, detach_disk, attach_nic, detach_nic. Default: 300
  uint32_t attach_ms = 300;
  /// snapshot_disk. Default: 1000
  uint32_t snapshot_ms = 1000;
  /// agent_command. Default: 100
  uint32_t agent_ms = 100;
  /// transfer: set-up before the data flows. Default: 50
  uint32_t transfer_setup_ms = 50;
  /// transfer with compression: wire bytes per data byte. Default: 0.4
  double compress_ratio = 0.4;
  /// query, list, config, abort_migration; and calls that find nothing to do. Default: 5
  uint32_t query_ms = 5;
  /// Migrations: pause to copy device state and switch hosts. Default: 20
  uint32_t switch_overhead_ms = 20;
  /// Migrations: live passes before a pre-copy gives up. Default: 30
  uint32_t max_iterations = 30;
  /// Each operation's duration is scaled by a factor drawn from [1 - jitter, 1 + jitter]
  /// (not migrations: their time comes from the model). Default: 0.1
  double jitter = 0.1;
  /// Seed of the jitter. Default: 1
  uint64_t seed = 1;
  /// When set: the world's state (hosts, domains, virtual time, finished migrations) is
  /// written to this file before each change is answered, and read back when the world is
  /// made, so a controller killed and restarted finds the world as it left it. Migrations in
  /// flight are not kept: after a restart their domains run on at the source, as if aborted.
  /// Default: "" (nothing kept).
  std::string state_file;
  /// The real clock that scaled time follows (speed > 0). Tests give one that moves as they
  /// say. Default: std::chrono::steady_clock::now
  std::function<std::chrono::steady_clock::time_point()> real_clock;
};

/// What an injected fault does to the calls it hits.
struct sim_fault {
  enum class kind : uint8_t {
    /// The call fails with `code` and `message`.
    fail,
    /// The call is never answered (the driver's deadline answers it).
    hang,
    /// The host goes down: its domains crash, every call fails unavailable until
    /// recover_host().
    crash_host,
    /// The call takes effect, but its answer is lost: the caller is told `code` (the
    /// connection dropped after the hypervisor acted), so what it did is in doubt.
    lose_answer,
  };
  kind what = kind::fail;
  errc code = errc::unavailable;
  /// Empty: "<host>: <operation>: injected failure".
  std::string message;
  /// How many calls it hits; 0: every call until clear_faults(). Default: 1
  uint32_t count = 1;

  static sim_fault fail(errc code, std::string message, uint32_t count = 1) {
    return {kind::fail, code, std::move(message), count};
  }
  static sim_fault hang(uint32_t count = 1) {
    return {kind::hang, errc::unavailable, {}, count};
  }
  static sim_fault crash(uint32_t count = 1) {
    return {kind::crash_host, errc::unavailable, {}, count};
  }
  static sim_fault lose_answer(uint32_t count = 1) {
    return {kind::lose_answer, errc::unavailable, {}, count};
  }
};

/// A snapshot of the world's counters.
struct sim_metrics {
  uint64_t migrations_started = 0;
  uint64_t migrations_finished = 0;
  /// Did not converge, or a host crashed under them.
  uint64_t migrations_failed = 0;
  /// Stopped by abort_migration.
  uint64_t migrations_cancelled = 0;
  uint64_t migrations_active = 0;
  /// Bytes sent by every migration, finished or not.
  uint64_t bytes_moved = 0;
  /// Calls an injected fault hit.
  uint64_t faults_taken = 0;
  uint64_t now_ms = 0;
};

/// A domain as the world keeps it.
struct sim_domain {
  domain_config config;
  domain_status status = domain_status::shut_off;
  /// Disk snapshots taken, "target@snapshot".
  std::set<std::string> snapshots;
};

/// A host as the world keeps it. Sim drivers read and change it inside sim_task functions,
/// with the world locked.
struct sim_host {
  std::string uri;
  std::string zone;
  double nic_bytes_s = 0;
  bool up = true;
  std::map<std::string, sim_domain> domains;
  /// Images written by save(), by path.
  std::map<std::string, domain_config> images;
};

/// One driver operation on one host, for sim_world::submit().
struct sim_task {
  /// Virtual milliseconds it takes (before jitter), decided with the world locked when the
  /// call is taken. 0 for calls with nothing to do.
  std::function<uint32_t(const sim_host&)> duration_ms;
  /// The effect, with the world locked, when the duration has passed and the host is still
  /// up; returns the callback that answers the call (run with the lock released).
  std::function<std::function<void()>(sim_host&)> apply;
  /// Answers the call with an error (an injected failure, an unknown or crashed host).
  std::function<void(caf::error)> fail;
};

class sim_world {
public:
  explicit sim_world(sim_options opts = {});
  ~sim_world();
  sim_world(const sim_world&) = delete;
  sim_world& operator=(const sim_world&) = delete;

  const sim_options& options() const noexcept {
    return opts_;
  }

  /// The world was read back from options().state_file (its hosts and domains are set).
  bool restored() const noexcept {
    return restored_;
  }

  // -- fleet ------------------------------------------------------------------------------

  /// Registers a host "sim://<zone>/<host>" with a NIC of `nic_bytes_s` (0: the options'
  /// default). invalid_argument for another URI form, already_exists for a known host.
  caf::error add_host(const std::string& uri, double nic_bytes_s = 0);
  /// Sets the bandwidth between two zones, bytes/s (both directions share it). Migrations in
  /// flight get their new rate at once.
  void set_link(const std::string& zone_a, const std::string& zone_b, double bytes_s);
  /// Places a domain on a host without virtual time passing (fleet setup).
  /// not_found for an unknown host, already_exists when the name is taken there.
  caf::error add_domain(const std::string& host_uri, const domain_config& cfg,
                        domain_status status = domain_status::running);

  // -- clock ------------------------------------------------------------------------------

  /// Virtual time since the world was made, ms.
  uint64_t now_ms() const;
  /// Manual clock: runs everything due within the next `ms` of virtual time, in order, on
  /// this thread. No effect with scaled real time.
  void advance(uint64_t ms);
  /// Manual clock: runs until nothing is scheduled and no migration is in flight (hung calls
  /// do not count). No effect with scaled real time.
  void run_until_idle();
  /// Nothing scheduled and no migration in flight.
  bool idle() const;

  // -- faults -----------------------------------------------------------------------------

  /// Injects `f` into calls of `operation` ("start", "migrate", ... or "*" for all) on a
  /// host. Faults are matched in the order injected.
  void inject(const std::string& host_uri, const std::string& operation, sim_fault f);
  /// Removes the faults of a host (every host when empty).
  void clear_faults(const std::string& host_uri = {});
  /// The host goes down: its active domains crash, its migrations fail, its calls fail
  /// unavailable.
  void crash_host(const std::string& host_uri);
  /// The host is back; crashed domains stay crashed (defined, not running).
  void recover_host(const std::string& host_uri);

  // -- inspection -------------------------------------------------------------------------

  bool host_up(const std::string& host_uri) const;
  /// A domain as a host has it (status absent when it is not defined there).
  domain_info domain(const std::string& host_uri, const std::string& name) const;
  /// The domains of a host, by name.
  std::vector<domain_info> domains(const std::string& host_uri) const;
  sim_metrics metrics() const;

  // -- for sim drivers --------------------------------------------------------------------

  /// Takes a call of `operation` on a host: injected faults first, then the host's state,
  /// then `task` after its duration.
  void submit(const std::string& host_uri, const std::string& operation, sim_task task);
  /// Starts (or, for the same key, rejoins) the migration of req.domain from `host_uri`.
  void migrate(const std::string& host_uri, migrate_request req, std::string key,
               reply<migration_result> r);
  /// Aborts the outgoing migration of `name` from `host_uri`: the migrate call fails
  /// cancelled and the domain runs on here. Success when none is in flight.
  void abort_migration(const std::string& host_uri, const std::string& name, reply<done> r);

  /// Reports a copy of `bytes` taking `ms` (virtual) from now to `f` every tenth of it up to
  /// 80%, from the world's thread. Nothing when `f` is empty.
  void transfer_progress(uint32_t ms, uint64_t bytes, std::function<void(const job_progress&)> f);

  /// Virtual ms to send `wire_bytes` from one host to another now: through the slower NIC
  /// and, between zones, the link (set-up included).
  uint32_t transfer_ms(const std::string& src_uri, const std::string& dst_uri,
                       uint64_t wire_bytes) const;

  /// The domain_info of a domain.
  static domain_info info_of(const sim_domain& d);
  /// Whether this thread is the own thread of the world at `w`, delivering its answers
  /// (compares addresses only: `w` need not be alive).
  static bool delivering(const sim_world* w);

private:
  using deliveries = std::vector<std::function<void()>>;
  using event_fn = std::function<void(deliveries&)>;

  struct migration {
    std::string key;
    std::string domain;
    std::string src;
    std::string dst;
    domain_config config;
    /// The source domain's status before the migration (running or paused).
    domain_status was = domain_status::running;
    /// migrate_request::paused_handover.
    bool handover = false;
    precopy_job job;
    /// The request's bandwidth cap, bytes/s; 0: none.
    double cap_bytes_s = 0;
    double rate_bytes_s = 0;
    /// "tx:<host>", "rx:<host>", "link:<zone>|<zone>".
    std::vector<std::string> resources;
    std::vector<reply<migration_result>> replies;
    std::function<void(const job_progress&)> on_progress;
  };

  struct fault_entry {
    std::string operation;
    sim_fault fault;
    uint32_t left = 0;
  };

  // Shared by sim_world.cpp and sim_migrations.cpp, so both name links and judge domains
  // alike. No state.
  /// The key of the link between two zones in links_, "<zone>|<zone>" in order.
  static std::string link_key(const std::string& a, const std::string& b);
  /// Running, paused or migrating.
  static bool active(domain_status s);

  // All of these require mtx_ held.
  uint64_t clock_us() const;
  void schedule(uint64_t at_us, event_fn f);
  uint64_t jittered_us(uint32_t ms);
  sim_host* find_host(const std::string& uri);
  const sim_host* find_host(const std::string& uri) const;
  /// The first fault of `h` that matches `operation`: `err` to answer with at once, `hang`,
  /// or `lost`, the error that replaces the answer once the call took effect.
  bool take_fault(sim_host& h, const std::string& operation, caf::error& err, bool& hang,
                  caf::error& lost, deliveries& out);
  void crash(sim_host& h, deliveries& out);
  void begin_task(const std::string& host_uri, const std::string& operation, sim_task& task,
                  deliveries& out);
  void begin_migration(const std::string& host_uri, migrate_request& req,
                       const std::string& key, reply<migration_result>& r, deliveries& out);
  void begin_abort(const std::string& host_uri, const std::string& name, reply<done>& r,
                   deliveries& out);
  double capacity(const std::string& resource) const;
  void recompute_rates();
  uint64_t next_event_us() const;
  void advance_migrations(uint64_t dt_us, deliveries& out);
  void report_progress(const migration& m, const job_progress& p, deliveries& out);
  void on_switched(migration& m);
  void finish_migration(uint64_t id, deliveries& out);
  void fail_migration(uint64_t id, caf::error err, bool cancelled, deliveries& out);

  /// Writes the state file (mtx_ held) when there is one and something changed.
  void save_state();
  /// Reads the state file; false when there is none. Throws nothing: a damaged file is
  /// reported and ignored by the constructor.
  caf::error load_state(bool& found);

  /// Runs everything due up to virtual time `target_us` (takes step_mtx_, then mtx_ per step).
  void run_to(uint64_t target_us);
  /// The world thread with scaled real time.
  void loop();

  const sim_options opts_;
  mutable std::mutex mtx_;
  /// Serializes run_to() between advance() callers and the world thread.
  std::mutex step_mtx_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
  std::chrono::steady_clock::time_point base_real_;
  std::function<std::chrono::steady_clock::time_point()> real_clock_;

  uint64_t now_us_ = 0;
  /// Virtual time when the world was made (read back from the state file, or 0).
  uint64_t base_us_ = 0;
  uint64_t seq_ = 0;
  uint64_t jitter_state_;
  std::map<std::pair<uint64_t, uint64_t>, event_fn> timers_;
  std::map<std::string, sim_host> hosts_;
  std::map<std::string, double> links_;
  std::map<std::string, std::vector<fault_entry>> faults_;
  uint64_t next_migration_ = 1;
  std::map<uint64_t, migration> migrations_;
  /// Finished migrations by key: domain, destination and result (for re-dispatch).
  struct finished_migration {
    std::string domain;
    std::string dst;
    migration_result result;
  };
  std::map<std::string, finished_migration> finished_;
  sim_metrics metrics_;
  bool restored_ = false;
  /// Something changed since the state file was written.
  bool dirty_ = false;
};

} // namespace ferry::hv
