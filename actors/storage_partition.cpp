// The storage_partition actor: one partition's lease state machine (fleet/lease.hpp) with its
// master and replicas. A change is acknowledged once replicated; when the master does not
// answer, the change is retried on the replica that takes over. A flip freezes the source's
// new I/O and completes once its pending I/O has drained, or fails at the flip deadline with
// the leases unchanged. Each acknowledged change answers with its journal record. Runs on
// CAF's scheduler.
#include <map>

#include <caf/all.hpp>

#include "actors/fleet_actors.hpp"
#include "common/errc.hpp"

namespace ferry {

namespace {

struct pending_flip {
  lease_request req;
  caf::typed_response_promise<lease_reply> rp;
};

struct partition_state {
  fleet_handles_ptr handles;
  fleet::index index = fleet::npos;
  fleet::lease_machine leases;
  partition_options opts;
  /// Flips waiting for I/O to drain, by number.
  std::map<uint64_t, pending_flip> flips;
  uint64_t next_flip = 1;
  static inline const char* name = "ferry.storage_partition";
};

using partition_ptr = partition_actor::stateful_pointer<partition_state>;

/// The table as it is. An operation's answer carries it as its change even when the
/// operation found it done, so a journal that missed an earlier answer (lost, or late) gets
/// it; a read's (`changed` false) does not.
lease_reply reply_of(const partition_state& st, bool changed = true) {
  lease_reply r;
  r.partition = st.leases.partition();
  r.master = st.leases.master();
  r.table = st.leases.table();
  if (changed)
    r.changes.push_back(fleet::encode_lease(r.partition, r.table, r.master));
  return r;
}

// Runs `op` on the machine; when the master does not answer, fails over to a replica and
// tries once more.
template <class F>
caf::error with_failover(partition_state& st, F op) {
  auto err = op();
  if (code_of(err) == errc::unavailable && !st.leases.nodes().empty()) {
    auto master = st.leases.master();
    bool master_down = false;
    for (auto& n : st.leases.nodes())
      if (n.name == master && !n.current())
        master_down = true;
    if (master_down && !st.leases.master_timeout())
      err = op();
  }
  return err;
}

void try_finish(partition_ptr self, uint64_t id) {
  auto& st = self->state;
  auto i = st.flips.find(id);
  if (i == st.flips.end() || st.leases.pending_io() > 0)
    return;
  auto& req = i->second.req;
  auto err = with_failover(st, [&] { return st.leases.finish_flip(req.host, req.to); });
  if (err) {
    st.leases.cancel_flip(req.host);
    i->second.rp.deliver(std::move(err));
  } else {
    i->second.rp.deliver(reply_of(st));
  }
  st.flips.erase(i);
}

partition_actor::behavior_type partition_behavior(
  partition_ptr self, fleet_handles_ptr handles, fleet::index index,
  std::shared_ptr<std::pair<fleet::lease_table, std::string>> restored, partition_options opts) {
  auto& s = self->state;
  s.handles = std::move(handles);
  s.index = index;
  s.opts = opts;
  auto& p = s.handles->model->partitions[index];
  s.leases = fleet::lease_machine{p.name, p.master, p.replicas};
  if (restored)
    s.leases.restore(restored->first, restored->second);
  return {
    [=](lease_atom, const lease_request& req) -> caf::result<lease_reply> {
      auto& st = self->state;
      using op = lease_request::op;
      caf::error err;
      switch (req.action) {
        case op::connect_standby:
          err = with_failover(st, [&] { return st.leases.connect(req.host, fleet::lease_state::standby); });
          break;
        case op::connect_primary:
          err = with_failover(st, [&] { return st.leases.connect(req.host, fleet::lease_state::primary); });
          break;
        case op::revoke:
          err = with_failover(st, [&] { return st.leases.revoke(req.host); });
          break;
        case op::disconnect:
          err = with_failover(st, [&] { return st.leases.disconnect(req.host); });
          break;
        case op::retire:
          err = with_failover(st, [&] { return st.leases.retire(req.host); });
          break;
        case op::flip: {
          if (auto e = st.leases.begin_flip(req.host, req.to))
            return e;
          auto id = st.next_flip++;
          auto rp = self->make_response_promise<lease_reply>();
          st.flips.emplace(id, pending_flip{req, rp});
          try_finish(self, id);
          if (st.flips.count(id))
            self->delayed_send(self, st.opts.flip_deadline, timeout_atom::value, id);
          return rp;
        }
      }
      if (err)
        return err;
      return reply_of(st);
    },
    [=](io_atom, const std::string& host, uint64_t epoch, bool begin) -> caf::result<bool> {
      auto& st = self->state;
      if (begin) {
        if (auto err = st.leases.io_begin(host, epoch))
          return err;
        return true;
      }
      st.leases.io_end(host);
      if (st.leases.pending_io() == 0) {
        std::vector<uint64_t> ids;
        for (auto& [id, f] : st.flips)
          ids.push_back(id);
        for (auto id : ids)
          try_finish(self, id);
      }
      return true;
    },
    [=](fault_atom, const storage_fault& f) -> bool {
      auto& st = self->state;
      switch (f.what) {
        case storage_fault::kind::node_down: st.leases.node_down(f.node); break;
        case storage_fault::kind::node_up: st.leases.node_up(f.node); break;
        case storage_fault::kind::master_silent: st.leases.node_down(st.leases.master()); break;
      }
      return true;
    },
    [=](get_atom) -> lease_reply {
      auto& st = self->state;
      return reply_of(st, false);
    },
    [=](timeout_atom, uint64_t id) {
      auto& st = self->state;
      auto i = st.flips.find(id);
      if (i == st.flips.end())
        return;
      st.leases.cancel_flip(i->second.req.host);
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(st.opts.flip_deadline);
      i->second.rp.deliver(make_error(
        errc::deadline_exceeded,
        "partition \"" + st.leases.partition() + "\": flip " + i->second.req.host + " -> "
          + i->second.req.to + ": " + std::to_string(st.leases.pending_io())
          + " I/O still pending after " + std::to_string(ms.count()) + " ms"));
      st.flips.erase(i);
    },
  };
}

} // namespace

partition_actor spawn_partition(caf::actor_system& sys, fleet_handles_ptr handles,
                                fleet::index partition,
                                const std::pair<fleet::lease_table, std::string>* restored,
                                partition_options opts) {
  std::shared_ptr<std::pair<fleet::lease_table, std::string>> r;
  if (restored)
    r = std::make_shared<std::pair<fleet::lease_table, std::string>>(*restored);
  return sys.spawn(partition_behavior, std::move(handles), partition, std::move(r), opts);
}

} // namespace ferry
