// ferry::hv::driver — the hypervisor driver interface: what Ferry asks of a host. Every call
// is asynchronous (it returns at once and reports through `reply`, exactly once, from the
// driver's own thread), runs under the deadline of its `call` (a call that does not finish in
// time is answered with deadline_exceeded and its late result is dropped), and is idempotent
// by the domain's state and the call's key: a driver checks the world before it acts
// ("start X" when X already runs is a success). query() reports the domain's actual state for
// reconciliation after a controller crash.
//
// Implementations: libvirt (libvirt_driver.hpp, any libvirt URI) and the fleet simulator
// (sim_driver.hpp). Errors are ferry::errc values; operations a driver cannot do are
// errc::unimplemented with a message naming the driver and the operation.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "common/errc.hpp"

namespace ferry::hv {

/// A disk as a domain sees it.
struct disk_spec {
  /// Target device inside the guest ("vdb").
  std::string target;
  /// Where the data lives: a file path, or a volume name for network storage.
  std::string source;
  /// Local instance-store disk (lives on the host, must be copied or snapshotted to move).
  bool local = false;
  uint64_t size_bytes = 0;
};

/// A network interface.
struct nic_spec {
  std::string mac;
  /// The network the NIC is connected to ("user" for libvirt user networking).
  std::string network;
};

/// A domain's configuration: enough to define the same VM on another host.
struct domain_config {
  std::string name;
  uint32_t vcpus = 1;
  /// Upper bound for vCPU hot-plug. 0: equal to vcpus.
  uint32_t max_vcpus = 0;
  uint64_t memory_mib = 128;
  /// Upper bound for live memory changes. 0: equal to memory_mib.
  uint64_t max_memory_mib = 0;
  std::vector<disk_spec> disks;
  std::vector<nic_spec> nics;
  /// Guest memory dirty rate in MiB/s (simulator input; 0 for an idle guest).
  double dirty_mib_s = 0;
  /// A migration agent runs in the guest (simulator input; libvirt asks the guest).
  bool agent = false;
  /// The driver's native description (libvirt domain XML), carried as is between hosts of the
  /// same driver. Empty: built from the fields above.
  std::string native;
};

enum class domain_status : uint8_t {
  /// Not defined on this host.
  absent,
  /// Defined, not running.
  shut_off,
  running,
  paused,
  /// Running on this host, outgoing migration in progress.
  migrating,
  crashed,
};

const char* to_string(domain_status s) noexcept;

/// What a host reports about a domain.
struct domain_info {
  std::string name;
  domain_status status = domain_status::absent;
  uint32_t vcpus = 0;
  uint64_t memory_mib = 0;
  std::vector<disk_spec> disks;
  std::vector<nic_spec> nics;
};

/// Progress of a migration job, reported while it runs.
struct job_progress {
  /// Bytes to transfer in total so far (memory + storage), transferred, and remaining.
  uint64_t total_bytes = 0;
  uint64_t processed_bytes = 0;
  uint64_t remaining_bytes = 0;
  /// Pre-copy iteration (1 = the first full pass).
  uint32_t iteration = 0;
  /// Guest dirty rate as measured, bytes/s.
  uint64_t dirty_bytes_s = 0;
  uint64_t elapsed_ms = 0;
};

enum class migration_mode : uint8_t { precopy, postcopy };

struct migrate_request {
  std::string domain;
  /// The destination host as the source's hypervisor reaches it (its libvirt URI, or its
  /// sim:// URI).
  std::string destination_uri;
  /// The destination as Ferry reaches it, to check where the domain is (after a crash, an
  /// abort), when the hypervisors reach each other otherwise ("qemu+tcp://10.77.0.12/system"
  /// between hosts, a unix socket for Ferry). Empty: destination_uri.
  std::string destination_control_uri;
  /// libvirt: the data channel ("tcp://127.0.0.1:49200"); empty: chosen by the hypervisor.
  std::string migrate_uri;
  migration_mode mode = migration_mode::precopy;
  /// Copy non-shared disks with the memory (storage migration).
  bool copy_storage = false;
  /// Bandwidth cap in MiB/s; 0: unlimited.
  uint64_t bandwidth_mib_s = 0;
  /// The longest pause acceptable at switch-over.
  uint32_t max_downtime_ms = 300;
  /// Paused handover: the domain ends paused on the destination and stays defined on the
  /// source (paused in the simulator; shut off, with its definition, on libvirt), so the
  /// caller decides where it resumes (after flipping storage leases, for instance): resume()
  /// on the destination, or resume()/start() on the source and destroy() on the destination.
  /// libvirt cannot pause a post-copy migration: with mode postcopy the domain runs on the
  /// destination from the switch on (resume() there is then a success) and the source keeps
  /// only its definition.
  bool paused_handover = false;
  /// Called with progress while the job runs, from the driver's thread. May be empty.
  std::function<void(const job_progress&)> on_progress;
};

/// A bulk copy of data from this host to another (a local disk synced after switch-over, a
/// volume's data moved to another zone).
struct transfer_request {
  /// The domain the data belongs to.
  std::string domain;
  /// What is copied, for messages and idempotency ("disk vdb", "volume vol-1").
  std::string what;
  std::string destination_uri;
  uint64_t bytes = 0;
  /// Compress on the way (fewer bytes on a narrow link, more CPU).
  bool compress = false;
  /// Called with progress while the copy runs, from the driver's thread (drivers that can
  /// tell; the simulator reports every tenth). May be empty.
  std::function<void(const job_progress&)> on_progress;
};

struct transfer_result {
  uint64_t duration_ms = 0;
  /// Bytes sent on the wire (fewer than the data when compressed).
  uint64_t wire_bytes = 0;
};

struct migration_result {
  uint64_t duration_ms = 0;
  /// Pause at switch-over, as the hypervisor measured it.
  uint64_t downtime_ms = 0;
  uint64_t transferred_bytes = 0;
  uint32_t iterations = 0;
  migration_mode mode = migration_mode::precopy;
};

/// Every call's key and deadline.
struct call {
  /// Idempotency key of the task attempt that makes the call ("run/task/attempt").
  std::string key;
  std::chrono::milliseconds timeout{30000};
};

template <class T>
using reply = std::function<void(caf::expected<T>)>;

struct done {};

class driver {
public:
  virtual ~driver();

  /// The URI this driver is connected to.
  virtual const std::string& uri() const = 0;

  /// Defines (does not start) a domain from another host's configuration. Success when a
  /// domain of that name is already defined here.
  virtual void define(const domain_config& cfg, const call& c, reply<domain_info> r) = 0;
  /// The configuration of a domain defined here, to define it elsewhere.
  virtual void config(const std::string& name, const call& c, reply<domain_config> r) = 0;

  virtual void start(const std::string& name, const call& c, reply<domain_info> r) = 0;
  virtual void pause(const std::string& name, const call& c, reply<domain_info> r) = 0;
  virtual void resume(const std::string& name, const call& c, reply<domain_info> r) = 0;
  /// Stops the domain at once and keeps its definition (a cold migration's source). Success
  /// when it is shut off already.
  virtual void stop(const std::string& name, const call& c, reply<domain_info> r) = 0;
  /// Stops the domain at once and undefines it. Success when it is absent.
  virtual void destroy(const std::string& name, const call& c, reply<done> r) = 0;

  /// Live vCPU and memory changes.
  virtual void set_vcpus(const std::string& name, uint32_t vcpus, const call& c,
                         reply<domain_info> r) = 0;
  virtual void set_memory(const std::string& name, uint64_t mib, const call& c,
                          reply<domain_info> r) = 0;

  /// Device hot-plug. Attaching a device that is attached already is a success.
  virtual void attach_disk(const std::string& name, const disk_spec& d, const call& c,
                           reply<domain_info> r) = 0;
  virtual void detach_disk(const std::string& name, const std::string& target, const call& c,
                           reply<domain_info> r) = 0;
  virtual void attach_nic(const std::string& name, const nic_spec& n, const call& c,
                          reply<domain_info> r) = 0;
  virtual void detach_nic(const std::string& name, const std::string& mac, const call& c,
                          reply<domain_info> r) = 0;

  /// Migrates a running domain to req.destination_uri. When the domain already runs there
  /// (a re-dispatch after a crash), reports success.
  virtual void migrate(const migrate_request& req, const call& c,
                       reply<migration_result> r) = 0;
  /// Aborts the outgoing migration of `name`; the domain stays here.
  virtual void abort_migration(const std::string& name, const call& c, reply<done> r) = 0;

  /// Copies data to another host (transfer_request). Idempotent by the call's key.
  virtual void transfer(const transfer_request& req, const call& c,
                        reply<transfer_result> r) = 0;

  /// Sends a command to the migration agent in the guest (the QEMU guest agent protocol:
  /// a JSON command) and returns its JSON answer. failed_precondition when the domain does
  /// not run; unavailable when no agent answers.
  virtual void agent_command(const std::string& name, const std::string& command,
                             const call& c, reply<std::string> r) = 0;

  /// Snapshots one local disk (`target`) under `snapshot` name.
  virtual void snapshot_disk(const std::string& name, const std::string& target,
                             const std::string& snapshot, const call& c, reply<done> r) = 0;

  /// Saves a running domain's memory to `path` and stops it; restore() starts it again.
  virtual void save(const std::string& name, const std::string& path, const call& c,
                    reply<done> r) = 0;
  virtual void restore(const std::string& path, const call& c, reply<domain_info> r) = 0;

  /// The domain's actual state here (status absent when it is not defined here).
  virtual void query(const std::string& name, const call& c, reply<domain_info> r) = 0;
  /// Every domain defined here.
  virtual void list(const call& c, reply<std::vector<domain_info>> r) = 0;
};

using driver_ptr = std::shared_ptr<driver>;

} // namespace ferry::hv
