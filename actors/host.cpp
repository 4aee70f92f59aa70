// The host actor: the authority on one host's capacity (VMs it runs, reservations held for
// migrations) and on its migration slots (inbound and outbound limits, with a queue that is
// fair across peer hosts and answers a waiter still queued at its deadline). Owns the host's driver. Runs on CAF's scheduler; never blocks
// (driver calls are asynchronous and run on the driver's own threads).
#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <set>

#include <caf/all.hpp>

#include "actors/fleet_actors.hpp"
#include "common/errc.hpp"

namespace ferry {

namespace {

/// The answer to a slot waiter of `host` past its deadline.
caf::error expired_slot(const std::string& host, slot_dir dir) {
  return make_error(errc::deadline_exceeded,
                    "host \"" + host + "\": no " + (dir == slot_dir::in ? "inbound" : "outbound")
                      + " migration slot free before the attempt's deadline");
}

// One direction's slots: holders, and waiters queued per peer, served round-robin. A waiter
// may carry a deadline (wall ms, 0 = none): past it, it is answered deadline_exceeded instead
// of being granted, so a slot never goes to an attempt its run has given up on.
struct slot_pool {
  struct waiter {
    std::string key;
    caf::typed_response_promise<bool> rp;
    time_ms deadline = 0;
  };

  uint32_t limit = 2;
  std::set<std::string> holders;
  std::map<std::string, std::deque<waiter>> waiting;
  std::deque<std::string> turn;
  uint32_t queued = 0;

  // Grants slots to waiters while there is room, one peer after the other; a waiter past its
  // deadline is answered deadline_exceeded (and takes no slot). `host`, `dir`: for the answer.
  void grant(time_ms now, const std::string& host, slot_dir dir) {
    while (holders.size() < limit && !turn.empty()) {
      auto peer = turn.front();
      turn.pop_front();
      auto& q = waiting[peer];
      auto w = std::move(q.front());
      q.pop_front();
      --queued;
      if (q.empty())
        waiting.erase(peer);
      else
        turn.push_back(peer);
      if (w.deadline != 0 && w.deadline <= now) {
        w.rp.deliver(expired_slot(host, dir));
        continue;
      }
      holders.insert(w.key);
      w.rp.deliver(true);
    }
  }

  // Takes the waiter `key` out of the queue, answering it cancelled.
  void withdraw(const std::string& key) {
    for (auto i = waiting.begin(); i != waiting.end(); ++i) {
      auto& q = i->second;
      auto j = std::find_if(q.begin(), q.end(), [&](const waiter& w) { return w.key == key; });
      if (j == q.end())
        continue;
      j->rp.deliver(make_error(errc::cancelled, "slot request withdrawn"));
      q.erase(j);
      --queued;
      drop_if_empty(i);
      return;
    }
  }

  // Forgets peer `i`'s queue once it is empty: grant() serves only peers that wait.
  std::map<std::string, std::deque<waiter>>::iterator
  drop_if_empty(std::map<std::string, std::deque<waiter>>::iterator i) {
    if (!i->second.empty())
      return std::next(i);
    turn.erase(std::find(turn.begin(), turn.end(), i->first));
    return waiting.erase(i);
  }

  // Answers every waiter past its deadline deadline_exceeded; the earliest deadline left (0:
  // none).
  time_ms expire(time_ms now, const std::string& host, slot_dir dir) {
    time_ms next = 0;
    for (auto i = waiting.begin(); i != waiting.end();) {
      auto& q = i->second;
      for (auto j = q.begin(); j != q.end();) {
        if (j->deadline != 0 && j->deadline <= now) {
          j->rp.deliver(expired_slot(host, dir));
          j = q.erase(j);
          --queued;
          continue;
        }
        if (j->deadline != 0 && (next == 0 || j->deadline < next))
          next = j->deadline;
        ++j;
      }
      i = drop_if_empty(i);
    }
    return next;
  }
};

struct host_state {
  fleet_handles_ptr handles;
  fleet::index index = fleet::npos;
  hv::driver_ptr driver;
  std::map<std::string, fleet::capacity> vms;
  std::map<std::string, fleet::reservation> reservations;
  fleet::capacity free;
  slot_pool in, out;
  /// When the armed expiry of slot waiters fires (wall ms; 0: none armed).
  time_ms expiry_at = 0;
  static inline const char* name = "ferry.host";

  const fleet::host& spec() const { return handles->model->hosts[index]; }
};

using host_ptr = host_actor::stateful_pointer<host_state>;

void report(host_ptr self) {
  auto& st = self->state;
  auto& z = st.handles->zones[st.spec().zone];
  if (z)
    self->send(z, capacity_atom::value, st.index, st.free);
}

/// Arms the expiry of slot waiters for `at` unless one is armed for that time or earlier.
void arm_expiry(host_ptr self, time_ms at) {
  auto& st = self->state;
  if (at == 0 || (st.expiry_at != 0 && st.expiry_at <= at))
    return;
  st.expiry_at = at;
  auto now = wall_now_ms();
  self->delayed_send(self, std::chrono::milliseconds{at > now ? at - now : 0},
                     timeout_atom::value, static_cast<uint64_t>(at));
}

host_actor::behavior_type host_behavior(host_ptr self, fleet_handles_ptr handles,
                                        fleet::index host, hv::driver_ptr driver,
                                        std::vector<std::pair<std::string, fleet::capacity>> vms,
                                        std::vector<fleet::reservation> reservations) {
  auto& s = self->state;
  s.handles = std::move(handles);
  s.index = host;
  s.driver = std::move(driver);
  auto& h = s.spec();
  s.free = h.total;
  s.in.limit = h.migrations_in;
  s.out.limit = h.migrations_out;
  for (auto& [vm, c] : vms) {
    s.vms.emplace(vm, c);
    s.free -= c;
  }
  for (auto& r : reservations) {
    s.free -= r.need;
    s.reservations.emplace(r.key, r);
  }

  return {
    [=](reserve_atom, const fleet::reservation& r) -> caf::result<state_changes> {
      auto& st = self->state;
      // Held already: reported again, for a journal that missed the first answer.
      if (auto i = st.reservations.find(r.key); i != st.reservations.end())
        return state_changes{fleet::encode_reservation(st.spec().name, i->second)};
      if (!st.free.fits(r.need))
        return make_error(errc::resource_exhausted,
                          "host \"" + st.spec().name + "\": cannot reserve "
                            + std::to_string(r.need.vcpus) + " vCPUs, "
                            + std::to_string(r.need.memory_mib) + " MiB for \"" + r.vm
                            + "\": " + std::to_string(st.free.vcpus) + " vCPUs, "
                            + std::to_string(st.free.memory_mib) + " MiB, "
                            + std::to_string(st.free.slots) + " slots free");
      st.reservations.emplace(r.key, r);
      st.free -= r.need;
      report(self);
      return state_changes{fleet::encode_reservation(st.spec().name, r)};
    },
    [=](release_atom, const std::string& key) -> state_changes {
      auto& st = self->state;
      auto i = st.reservations.find(key);
      if (i == st.reservations.end()) // released already: said again
        return {fleet::erase_reservation(st.spec().name, key)};
      st.free += i->second.need;
      st.reservations.erase(i);
      report(self);
      return {fleet::erase_reservation(st.spec().name, key)};
    },
    [=](adopt_atom, const vm_request& req) -> caf::result<state_changes> {
      auto& st = self->state;
      auto& m = *st.handles->model;
      auto t = m.find_type(req.type);
      if (t == fleet::npos)
        return make_error(errc::invalid_argument, "adopt \"" + req.vm + "\": type \"" + req.type
                                                    + "\" is not in the catalog");
      state_changes out;
      if (auto i = st.reservations.find(req.reservation); i != st.reservations.end()) {
        st.free += i->second.need;
        st.reservations.erase(i);
      }
      // Also when adopted already: the journal may have missed the first answer.
      if (!req.reservation.empty())
        out.push_back(fleet::erase_reservation(st.spec().name, req.reservation));
      auto need = m.types[t].need();
      if (auto i = st.vms.find(req.vm); i != st.vms.end()) {
        st.free += i->second;
        st.vms.erase(i);
      }
      st.vms.emplace(req.vm, need);
      st.free -= need;
      out.push_back(fleet::encode_location({req.vm, st.spec().name, req.type}));
      report(self);
      return out;
    },
    [=](evict_atom, const std::string& vm) {
      auto& st = self->state;
      auto i = st.vms.find(vm);
      if (i == st.vms.end())
        return;
      st.free += i->second;
      st.vms.erase(i);
      report(self);
    },
    [=](acquire_atom, slot_dir dir, const std::string& key, const std::string& peer,
        time_ms deadline) -> caf::result<bool> {
      auto& st = self->state;
      auto& pool = dir == slot_dir::in ? st.in : st.out;
      if (pool.holders.count(key))
        return true;
      if (pool.holders.size() < pool.limit && pool.queued == 0) {
        pool.holders.insert(key);
        return true;
      }
      if (deadline != 0 && deadline <= wall_now_ms())
        return expired_slot(st.spec().name, dir);
      auto rp = self->make_response_promise<bool>();
      auto& q = pool.waiting[peer];
      if (q.empty())
        pool.turn.push_back(peer);
      q.push_back(slot_pool::waiter{key, rp, deadline});
      ++pool.queued;
      arm_expiry(self, deadline);
      return rp;
    },
    [=](unslot_atom, slot_dir dir, const std::string& key) {
      auto& st = self->state;
      auto& pool = dir == slot_dir::in ? st.in : st.out;
      if (pool.holders.erase(key) == 0)
        pool.withdraw(key); // a waiter that gave up
      pool.grant(wall_now_ms(), st.spec().name, dir);
    },
    [=](timeout_atom, uint64_t at) {
      auto& st = self->state;
      if (static_cast<time_ms>(at) != st.expiry_at)
        return; // superseded by an earlier one, which re-armed what is left
      st.expiry_at = 0;
      auto now = wall_now_ms();
      auto next_in = st.in.expire(now, st.spec().name, slot_dir::in);
      auto next_out = st.out.expire(now, st.spec().name, slot_dir::out);
      auto next = next_in == 0 ? next_out : next_out == 0 ? next_in : std::min(next_in, next_out);
      arm_expiry(self, next);
    },
    [=](status_atom) -> host_status {
      auto& st = self->state;
      auto& h = st.spec();
      host_status s;
      s.name = h.name;
      s.zone = st.handles->model->zones[h.zone].name;
      s.driver = h.driver;
      s.total = h.total;
      s.free = st.free;
      for (auto& [vm, c] : st.vms)
        s.vms.push_back(vm);
      for (auto& [k, r] : st.reservations)
        s.reservations.push_back(r);
      s.in_active = static_cast<uint32_t>(st.in.holders.size());
      s.out_active = static_cast<uint32_t>(st.out.holders.size());
      s.in_queued = st.in.queued;
      s.out_queued = st.out.queued;
      s.in_limit = st.in.limit;
      s.out_limit = st.out.limit;
      return s;
    },
    [=](driver_atom) -> hv::driver_ptr { return self->state.driver; },
  };
}

} // namespace

host_actor spawn_host(caf::actor_system& sys, fleet_handles_ptr handles, fleet::index host,
                      hv::driver_ptr driver,
                      std::vector<std::pair<std::string, fleet::capacity>> vms,
                      std::vector<fleet::reservation> reservations) {
  return sys.spawn(host_behavior, std::move(handles), host, std::move(driver), std::move(vms),
                   std::move(reservations));
}

} // namespace ferry
