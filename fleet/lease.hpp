// ferry::fleet::lease_machine — the lease state machine of one storage partition, with the
// master storage server and replicas that keep it. Each connected host has a lease:
// PRIMARY (sole data access), STANDBY (connected, no data access), DEACTIVATED (a former
// primary), TERMINATED (revoked). Invariants, after every operation: at most one PRIMARY;
// a DEACTIVATED or TERMINATED host regains no access while that lease stands: only once it
// is retired (which the controller does when the host's copy of the VM is destroyed), and
// then through a new lease, under a new epoch; every change is applied on the master and on
// every replica that answers before it is acknowledged (a change with no replica answering
// is refused), so every answering replica agrees with the master; a replica that comes back
// is re-synchronised from the master; when the master does not answer, an answering replica
// takes over. Every change increments the partition's epoch, and I/O carries the epoch of
// the lease it was issued under: I/O from a stale primary is fenced. A flip first freezes
// the source's new I/O, then completes only when its pending I/O has drained.
//
// Operations are idempotent by state: repeating a request that already took effect (a
// re-dispatch after a controller crash) succeeds and changes nothing. A refused operation
// changes nothing. Pure: the storage_partition actor owns one and calls it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/error.hpp>

namespace ferry::fleet {

enum class lease_state : uint8_t { none = 0, primary = 1, standby = 2, deactivated = 3,
                                   terminated = 4 };

const char* to_string(lease_state s) noexcept;

struct lease {
  std::string host;
  lease_state state = lease_state::none;
  uint64_t epoch = 0;

  friend bool operator==(const lease& a, const lease& b) noexcept {
    return a.host == b.host && a.state == b.state && a.epoch == b.epoch;
  }
};

/// The leases of one partition as a storage server keeps them.
struct lease_table {
  uint64_t epoch = 0;
  /// Changes applied.
  uint64_t version = 0;
  std::vector<lease> leases;

  const lease* find(const std::string& host) const;
  lease_state state_of(const std::string& host) const;
  /// The PRIMARY's host; empty when there is none.
  std::string primary() const;
  size_t count(lease_state s) const;

  friend bool operator==(const lease_table& a, const lease_table& b) noexcept {
    return a.epoch == b.epoch && a.version == b.version && a.leases == b.leases;
  }
};

/// A storage server holding a copy of the table.
struct storage_node {
  std::string name;
  bool up = true;
  /// Came back while no up-to-date copy answered: may miss acknowledged changes, so it takes
  /// no part until it can re-synchronise.
  bool stale = false;
  lease_table table;

  bool current() const noexcept { return up && !stale; }
};

class lease_machine {
public:
  lease_machine() = default;
  lease_machine(std::string partition, std::string master, std::vector<std::string> replicas);

  /// Replaces every node's table with `t` (durable state read back at recovery) and makes
  /// `master` the master when it is one of the nodes. Pending I/O and freezes are gone with
  /// the process that had them.
  void restore(const lease_table& t, const std::string& master);

  /// Connects `host` with a STANDBY or PRIMARY lease. PRIMARY is refused while another host
  /// holds it; a STANDBY host may be promoted this way when there is no PRIMARY. Refused for
  /// a DEACTIVATED or TERMINATED host. Connecting as STANDBY a host that is PRIMARY already
  /// is refused (use flip).
  caf::error connect(const std::string& host, lease_state role);

  /// Starts a flip from the PRIMARY `from` to the STANDBY `to`: `from` accepts no new I/O.
  caf::error begin_flip(const std::string& from, const std::string& to);
  /// Completes the flip: `to` becomes PRIMARY and `from` DEACTIVATED in one change. Refused
  /// (unavailable) while `from` has I/O pending. Success when the flip already happened.
  caf::error finish_flip(const std::string& from, const std::string& to);
  /// Gives `from` its I/O back after a flip that did not complete.
  void cancel_flip(const std::string& from);

  /// Revokes `host`'s lease (TERMINATED). Success when it has none or it is revoked.
  caf::error revoke(const std::string& host);
  /// Drops `host`'s lease entirely (cleanup of a STANDBY that never became PRIMARY; refused
  /// for a PRIMARY).
  caf::error disconnect(const std::string& host);

  /// Forgets `host`'s DEACTIVATED or TERMINATED lease, so that it may connect again later,
  /// under a new epoch (I/O under any earlier epoch stays fenced). The caller retires a lease
  /// only once the host's copy of the VM is gone. Success when `host` has no lease; refused
  /// (failed_precondition) for a PRIMARY or STANDBY one.
  caf::error retire(const std::string& host);

  /// Starts one I/O of `host` issued under `epoch`: refused (permission_denied) unless
  /// `host` is PRIMARY under that epoch and not frozen by a flip.
  caf::error io_begin(const std::string& host, uint64_t epoch);
  void io_end(const std::string& host);
  uint32_t pending_io() const noexcept { return pending_io_; }
  const std::string& frozen() const noexcept { return frozen_; }

  /// Storage server failures: a node stops or starts answering. A node that comes back is
  /// re-synchronised from an up-to-date node first; when none answers it stays stale until
  /// one does, or until every node answers again (then the most recent copy wins).
  void node_down(const std::string& node);
  void node_up(const std::string& node);
  /// The master did not answer: the up-to-date replica with the most recent table becomes
  /// master. unavailable when none answers.
  caf::error master_timeout();

  const std::string& partition() const noexcept { return partition_; }
  /// The master's table: the acknowledged state.
  const lease_table& table() const { return nodes_[master_].table; }
  const std::string& master() const { return nodes_[master_].name; }
  const std::vector<storage_node>& nodes() const noexcept { return nodes_; }

private:
  // Applies `next` on the master and every answering replica, or refuses with nothing
  // changed.
  caf::error commit(lease_table next);
  storage_node* node(const std::string& name);

  std::string partition_;
  std::vector<storage_node> nodes_;
  size_t master_ = 0;
  std::string frozen_;
  uint32_t pending_io_ = 0;
};

} // namespace ferry::fleet
