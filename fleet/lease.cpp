#include "fleet/lease.hpp"

#include <algorithm>

#include "common/errc.hpp"

namespace ferry::fleet {

const char* to_string(lease_state s) noexcept {
  switch (s) {
    case lease_state::none: return "NONE";
    case lease_state::primary: return "PRIMARY";
    case lease_state::standby: return "STANDBY";
    case lease_state::deactivated: return "DEACTIVATED";
    case lease_state::terminated: return "TERMINATED";
  }
  return "?";
}

const lease* lease_table::find(const std::string& host) const {
  for (auto& l : leases)
    if (l.host == host)
      return &l;
  return nullptr;
}

lease_state lease_table::state_of(const std::string& host) const {
  auto* l = find(host);
  return l ? l->state : lease_state::none;
}

std::string lease_table::primary() const {
  for (auto& l : leases)
    if (l.state == lease_state::primary)
      return l.host;
  return {};
}

size_t lease_table::count(lease_state s) const {
  return static_cast<size_t>(
    std::count_if(leases.begin(), leases.end(), [s](const lease& l) { return l.state == s; }));
}

lease_machine::lease_machine(std::string partition, std::string master,
                             std::vector<std::string> replicas)
  : partition_(std::move(partition)) {
  nodes_.push_back({std::move(master), true, false, {}});
  for (auto& r : replicas)
    nodes_.push_back({std::move(r), true, false, {}});
}

void lease_machine::restore(const lease_table& t, const std::string& master) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    nodes_[i].table = t;
    nodes_[i].up = true;
    nodes_[i].stale = false;
    if (nodes_[i].name == master)
      master_ = i;
  }
  frozen_.clear();
  pending_io_ = 0;
}

storage_node* lease_machine::node(const std::string& name) {
  for (auto& n : nodes_)
    if (n.name == name)
      return &n;
  return nullptr;
}

caf::error lease_machine::commit(lease_table next) {
  auto& m = nodes_[master_];
  if (!m.current())
    return make_error(errc::unavailable, "partition \"" + partition_ + "\": master \"" + m.name
                                           + "\" does not answer");
  size_t replicas_up = 0;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (i != master_ && nodes_[i].current())
      ++replicas_up;
  if (replicas_up == 0 && nodes_.size() > 1)
    return make_error(errc::unavailable, "partition \"" + partition_
                                           + "\": no replica answers; a lease change is "
                                             "acknowledged only once replicated");
  next.epoch = m.table.epoch + 1;
  next.version = m.table.version + 1;
  for (auto& n : nodes_)
    if (n.current())
      n.table = next;
  return caf::none;
}

caf::error lease_machine::connect(const std::string& host, lease_state role) {
  auto& t = table();
  auto what = [&] { return "partition \"" + partition_ + "\": host \"" + host + "\""; };
  if (role != lease_state::standby && role != lease_state::primary)
    return make_error(errc::invalid_argument, what() + ": connect as STANDBY or PRIMARY");
  auto cur = t.state_of(host);
  if (cur == lease_state::deactivated || cur == lease_state::terminated)
    return make_error(errc::permission_denied,
                      what() + " is " + to_string(cur)
                        + ": it may not reconnect until its lease is retired (lease.retire, "
                          "once the VM's copy there is destroyed)");
  if (cur == role)
    return caf::none;
  if (cur == lease_state::primary)
    return make_error(errc::failed_precondition,
                      what() + " is PRIMARY; a flip, not a connect, changes that");
  if (role == lease_state::primary) {
    auto p = t.primary();
    if (!p.empty())
      return make_error(errc::failed_precondition,
                        what() + ": \"" + p + "\" holds the PRIMARY lease");
  }
  auto next = t;
  auto epoch = t.epoch + 1;
  bool found = false;
  for (auto& l : next.leases)
    if (l.host == host) {
      l.state = role;
      l.epoch = epoch;
      found = true;
    }
  if (!found)
    next.leases.push_back({host, role, epoch});
  return commit(std::move(next));
}

caf::error lease_machine::begin_flip(const std::string& from, const std::string& to) {
  auto& t = table();
  auto what = "partition \"" + partition_ + "\": flip " + from + " -> " + to;
  if (t.state_of(to) == lease_state::primary && t.state_of(from) == lease_state::deactivated)
    return caf::none; // done already
  if (from == to)
    return make_error(errc::invalid_argument, what + ": source and target are the same host");
  if (t.state_of(from) != lease_state::primary)
    return make_error(errc::failed_precondition, what + ": \"" + from + "\" is "
                                                   + to_string(t.state_of(from))
                                                   + ", not PRIMARY");
  if (t.state_of(to) != lease_state::standby)
    return make_error(errc::failed_precondition, what + ": \"" + to + "\" is "
                                                   + to_string(t.state_of(to))
                                                   + ", not STANDBY");
  if (!frozen_.empty() && frozen_ != from)
    return make_error(errc::failed_precondition, what + ": a flip of \"" + frozen_
                                                   + "\" is in progress");
  frozen_ = from;
  return caf::none;
}

caf::error lease_machine::finish_flip(const std::string& from, const std::string& to) {
  auto& t = table();
  auto what = "partition \"" + partition_ + "\": flip " + from + " -> " + to;
  if (t.state_of(to) == lease_state::primary && t.state_of(from) == lease_state::deactivated)
    return caf::none;
  if (frozen_ != from)
    return make_error(errc::failed_precondition, what + ": the flip was not started");
  if (pending_io_ > 0)
    return make_error(errc::unavailable, what + ": " + std::to_string(pending_io_)
                                           + " I/O still pending on \"" + from + "\"");
  if (t.state_of(from) != lease_state::primary || t.state_of(to) != lease_state::standby)
    return make_error(errc::failed_precondition, what + ": the leases changed meanwhile");
  auto next = t;
  auto epoch = t.epoch + 1;
  for (auto& l : next.leases) {
    if (l.host == from) {
      l.state = lease_state::deactivated;
      l.epoch = epoch;
    } else if (l.host == to) {
      l.state = lease_state::primary;
      l.epoch = epoch;
    }
  }
  if (auto err = commit(std::move(next)))
    return err;
  frozen_.clear();
  return caf::none;
}

void lease_machine::cancel_flip(const std::string& from) {
  if (frozen_ == from)
    frozen_.clear();
}

caf::error lease_machine::revoke(const std::string& host) {
  auto& t = table();
  auto cur = t.state_of(host);
  if (cur == lease_state::none || cur == lease_state::terminated)
    return caf::none;
  auto next = t;
  for (auto& l : next.leases)
    if (l.host == host) {
      l.state = lease_state::terminated;
      l.epoch = t.epoch + 1;
    }
  if (auto err = commit(std::move(next)))
    return err;
  if (cur == lease_state::primary) {
    // In-flight I/O of a revoked primary is fenced by the storage servers.
    pending_io_ = 0;
    if (frozen_ == host)
      frozen_.clear();
  }
  return caf::none;
}

caf::error lease_machine::disconnect(const std::string& host) {
  auto& t = table();
  auto cur = t.state_of(host);
  if (cur == lease_state::none)
    return caf::none;
  if (cur == lease_state::primary)
    return make_error(errc::failed_precondition,
                      "partition \"" + partition_ + "\": host \"" + host
                        + "\" is PRIMARY; flip or revoke it first");
  if (cur == lease_state::deactivated)
    return caf::none; // kept: the record that it may not reconnect until retired
  auto next = t;
  next.leases.erase(std::remove_if(next.leases.begin(), next.leases.end(),
                                   [&](const lease& l) { return l.host == host; }),
                    next.leases.end());
  return commit(std::move(next));
}

caf::error lease_machine::retire(const std::string& host) {
  auto& t = table();
  auto cur = t.state_of(host);
  if (cur == lease_state::none)
    return caf::none;
  if (cur != lease_state::deactivated && cur != lease_state::terminated)
    return make_error(errc::failed_precondition,
                      "partition \"" + partition_ + "\": host \"" + host + "\" is "
                        + to_string(cur)
                        + "; only a DEACTIVATED or TERMINATED lease is retired");
  auto next = t;
  next.leases.erase(std::remove_if(next.leases.begin(), next.leases.end(),
                                   [&](const lease& l) { return l.host == host; }),
                    next.leases.end());
  return commit(std::move(next));
}

caf::error lease_machine::io_begin(const std::string& host, uint64_t epoch) {
  auto* l = table().find(host);
  auto what = "partition \"" + partition_ + "\": I/O from \"" + host + "\"";
  if (!l || l->state != lease_state::primary)
    return make_error(errc::permission_denied, what + ": no PRIMARY lease");
  if (l->epoch != epoch)
    return make_error(errc::permission_denied, what + ": epoch " + std::to_string(epoch)
                                                 + " is stale (lease epoch "
                                                 + std::to_string(l->epoch) + ")");
  if (frozen_ == host)
    return make_error(errc::unavailable, what + ": frozen by a flip");
  ++pending_io_;
  return caf::none;
}

void lease_machine::io_end(const std::string& host) {
  if (pending_io_ > 0 && table().state_of(host) == lease_state::primary)
    --pending_io_;
}

void lease_machine::node_down(const std::string& name) {
  if (auto* n = node(name))
    n->up = false;
}

void lease_machine::node_up(const std::string& name) {
  auto* n = node(name);
  if (!n || n->up)
    return;
  n->up = true;
  // Re-synchronise from an up-to-date copy: the master's when it answers.
  const storage_node* from = nodes_[master_].current() ? &nodes_[master_] : nullptr;
  for (auto& x : nodes_)
    if (!from && x.current() && &x != n)
      from = &x;
  if (from) {
    n->table = from->table;
    n->stale = false;
    return;
  }
  n->stale = true;
  // Every node answers again but none is known up to date: every acknowledged change reached
  // at least two of them, and versions only grow, so the most recent copy has them all.
  for (auto& x : nodes_)
    if (!x.up)
      return;
  size_t best = 0;
  for (size_t i = 1; i < nodes_.size(); ++i)
    if (nodes_[i].table.version > nodes_[best].table.version)
      best = i;
  for (auto& x : nodes_) {
    x.table = nodes_[best].table;
    x.stale = false;
  }
  master_ = best;
}

caf::error lease_machine::master_timeout() {
  if (nodes_[master_].up)
    nodes_[master_].up = false;
  // The answering replica with the most recent table takes over.
  size_t best = nodes_.size();
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].current()
        && (best == nodes_.size() || nodes_[i].table.version > nodes_[best].table.version))
      best = i;
  if (best < nodes_.size()) {
    master_ = best;
    return caf::none;
  }
  return make_error(errc::unavailable, "partition \"" + partition_
                                         + "\": neither the master nor any replica answers");
}

} // namespace ferry::fleet
