#include "actors/scheduler.hpp"

#include <algorithm>
#include <climits>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/log.hpp"
#include "actors/template_registry.hpp"
#include "templates/template.hpp"

namespace ferry {

namespace {

constexpr auto npos = fleet::npos;
constexpr uint64_t default_run_bandwidth_mib_s = 100;

enum class phase : uint8_t { waiting, running, done };

struct item_rt {
  phase ph = phase::waiting;
  /// Outcome once done: succeeded, rolled_back, failed, aborted, skipped.
  std::string outcome;
  std::string reason;
  std::string run;
  bool fallback = false;
  /// Where it ran from and to while running (host indexes; npos without a fleet).
  fleet::index src = npos, dst = npos;
  fleet::index src_zone = npos, dst_zone = npos;
  bool moves = false;
  const fleet::link* link = nullptr;
  uint64_t bandwidth = 0;
  std::vector<fleet::index> partitions;
  fleet::capacity need;
  /// Items it waits for (after) that are not done yet.
  uint32_t deps_left = 0;
  /// Queued in `ready`.
  bool queued = false;
  fleet::index queued_src = npos;
};

/// Ready items per source host: (-priority, index) so the first is the one to start.
using ready_set = std::set<std::pair<int64_t, size_t>>;

struct batch_rt {
  batch_record rec;
  /// rec.spec, shared with the status answers that carry it.
  std::shared_ptr<const batch_spec> spec;
  std::vector<item_rt> items;
  std::unordered_map<std::string, size_t> by_vm;
  std::vector<std::vector<size_t>> dependents;
  std::map<uint32_t, size_t> left_in_wave;
  std::map<fleet::index, ready_set> ready;
  uint32_t running = 0;
  std::vector<uint32_t> host_out, host_in, zone_use, partition_use;
  std::map<const fleet::link*, uint64_t> link_use;
  std::vector<fleet::capacity> free;
  uint32_t peak_running = 0, peak_out = 0, peak_in = 0;
  /// The runs found in the journal when the batch is loaded (after a restart): when each was
  /// submitted and came to rest (INT64_MAX: not yet), out of and into which host. The peaks
  /// are replayed from them once every run is found (replay_peaks).
  struct span {
    time_ms from, to;
    fleet::index out, in;
  };
  std::vector<span> adopted;
  bool stopped = false;
  bool loaded = false;
  size_t done = 0;
  std::vector<caf::typed_response_promise<batch_status>> waiters;
  /// Submissions not answered yet, and who waits for the first ones (submit_atom).
  size_t submitting = 0;
  std::vector<caf::typed_response_promise<batch_status>> on_started;
};

struct scheduler_state {
  std::shared_ptr<const scheduler_env> env;
  std::map<std::string, batch_rt> batches;
  /// Run id -> (batch, item).
  std::unordered_map<std::string, std::pair<std::string, size_t>> runs;
  /// Where each VM runs, as the scheduler last learned it.
  std::unordered_map<std::string, std::pair<std::string, std::string>> loc;
  static inline const char* name = "ferry.scheduler";
};

using scheduler_ptr = scheduler_actor::stateful_pointer<scheduler_state>;

const fleet::model* model_of(const scheduler_state& st) {
  return st.env->fleet ? st.env->fleet->model.get() : nullptr;
}

std::string state_of(const item_rt& it) {
  switch (it.ph) {
    case phase::waiting:
      return "waiting";
    case phase::running:
      return "running";
    default:
      return it.outcome;
  }
}

batch_status status_of(const scheduler_state& st, const batch_rt& b, bool with_items) {
  batch_status out;
  out.name = b.rec.spec.name;
  out.created = b.rec.created;
  out.finished = b.rec.finished;
  out.cancelled = b.rec.cancelled;
  out.total = static_cast<uint32_t>(b.items.size());
  out.peak_running = b.peak_running;
  out.peak_host_out = b.peak_out;
  out.peak_host_in = b.peak_in;
  if (with_items)
    out.spec = b.spec;
  auto* m = model_of(st);
  auto host_name = [&](fleet::index h) { return m && h != npos ? m->hosts[h].name : ""; };
  for (size_t i = 0; i < b.items.size(); ++i) {
    auto& it = b.items[i];
    if (it.ph == phase::waiting)
      ++out.waiting;
    else if (it.ph == phase::running)
      ++out.running;
    else if (it.outcome == "succeeded")
      ++out.succeeded;
    else if (it.outcome == "skipped")
      ++out.skipped;
    else
      ++out.failed;
    if (with_items)
      out.items.push_back({b.rec.spec.items[i].vm, it.run, state_of(it), host_name(it.src),
                           host_name(it.dst), it.reason, it.fallback});
  }
  return out;
}

void persist(scheduler_ptr self, batch_rt& b) {
  self->request(self->state.env->journal, caf::infinite, batch_atom::value, b.rec.spec.name,
                encode_batch_record(b.rec))
    .then([](bool) {},
          [name = b.rec.spec.name](caf::error& err) {
            log().error("scheduler: batch {} cannot be written: {}", name, describe(err));
          });
}

/// Answers who waits for the batch to be under way (submit_atom): its runs started so far
/// are durable.
void deliver_started(scheduler_ptr self, batch_rt& b) {
  auto waiting = std::move(b.on_started);
  b.on_started.clear();
  for (auto& w : waiting)
    w.deliver(status_of(self->state, b, true));
}

void finish_if_done(scheduler_ptr self, batch_rt& b) {
  if (b.rec.finished || !b.loaded || b.done < b.items.size())
    return;
  b.rec.finished = true;
  persist(self, b);
  auto s = status_of(self->state, b, true);
  log().info("batch {}: finished: {} succeeded, {} failed, {} skipped", s.name, s.succeeded,
             s.failed, s.skipped);
  for (auto& w : b.waiters)
    w.deliver(s);
  b.waiters.clear();
}

void enqueue(batch_rt& b, size_t i, const scheduler_state& st) {
  auto& it = b.items[i];
  if (it.ph != phase::waiting || it.queued || it.deps_left > 0)
    return;
  auto& spec_item = b.rec.spec.items[i];
  // Only the lowest wave with items left may start.
  if (!b.left_in_wave.empty() && spec_item.wave != b.left_in_wave.begin()->first)
    return;
  fleet::index src = npos;
  if (auto* m = model_of(st)) {
    auto l = st.loc.find(spec_item.vm);
    if (l != st.loc.end())
      src = m->find_host(l->second.first);
  }
  it.queued = true;
  it.queued_src = src;
  auto prio = it.fallback ? INT64_MAX / 2 : static_cast<int64_t>(spec_item.priority);
  b.ready[src].emplace(-prio, i);
}

/// Takes item `i` out of the ready queue.
void dequeue(batch_rt& b, size_t i) {
  auto& it = b.items[i];
  if (!it.queued)
    return;
  auto r = b.ready.find(it.queued_src);
  if (r != b.ready.end()) {
    auto prio = it.fallback ? INT64_MAX / 2 : static_cast<int64_t>(b.rec.spec.items[i].priority);
    r->second.erase({-prio, i});
    if (r->second.empty())
      b.ready.erase(r);
  }
  it.queued = false;
}

void mark_done(scheduler_ptr self, batch_rt& b, size_t i, std::string outcome,
               std::string reason);

void skip_waiting(scheduler_ptr self, batch_rt& b, const std::string& reason) {
  for (size_t i = 0; i < b.items.size(); ++i)
    if (b.items[i].ph == phase::waiting)
      mark_done(self, b, i, "skipped", reason);
  b.ready.clear();
}

void mark_done(scheduler_ptr self, batch_rt& b, size_t i, std::string outcome,
               std::string reason) {
  auto& it = b.items[i];
  if (it.ph == phase::done)
    return;
  dequeue(b, i);
  it.ph = phase::done;
  it.outcome = std::move(outcome);
  it.reason = std::move(reason);
  ++b.done;
  auto& spec_item = b.rec.spec.items[i];
  if (auto w = b.left_in_wave.find(spec_item.wave); w != b.left_in_wave.end()) {
    if (--w->second == 0) {
      b.left_in_wave.erase(w);
      // The next wave may start: queue its items that wait for nothing.
      if (!b.left_in_wave.empty() && !b.stopped)
        for (size_t k = 0; k < b.items.size(); ++k)
          if (b.rec.spec.items[k].wave == b.left_in_wave.begin()->first)
            enqueue(b, k, self->state);
    }
  }
  for (auto d : b.dependents[i]) {
    if (b.items[d].deps_left > 0)
      --b.items[d].deps_left;
    if (!b.stopped)
      enqueue(b, d, self->state);
  }
  if (it.outcome != "succeeded" && it.outcome != "skipped" && b.rec.spec.stop_on_failure
      && !b.stopped) {
    b.stopped = true;
    skip_waiting(self, b, "the batch stopped after " + spec_item.vm + " " + it.outcome);
  }
}

/// Takes or gives back what a running item counts against the limits.
void count(batch_rt& b, item_rt& it, int sign) {
  auto add = [sign](uint32_t& x) { x = sign > 0 ? x + 1 : (x > 0 ? x - 1 : 0); };
  add(b.running);
  if (it.moves && it.src != npos && it.src < b.host_out.size())
    add(b.host_out[it.src]);
  if (it.moves && it.dst != npos && it.dst < b.host_in.size())
    add(b.host_in[it.dst]);
  if (it.src_zone != npos)
    add(b.zone_use[it.src_zone]);
  if (it.dst_zone != npos && it.dst_zone != it.src_zone)
    add(b.zone_use[it.dst_zone]);
  for (auto p : it.partitions)
    add(b.partition_use[p]);
  if (it.link) {
    auto& u = b.link_use[it.link];
    u = sign > 0 ? u + it.bandwidth : (u >= it.bandwidth ? u - it.bandwidth : 0);
  }
  // While a batch is loaded its runs are taken in one by one, each counted and, when at
  // rest, given back at once: counts that never were (one at rest on top of those in flight
  // read as a limit exceeded). Its peaks come from the journal instead (replay_peaks).
  if (sign > 0 && b.loaded) {
    b.peak_running = std::max(b.peak_running, b.running);
    if (it.moves && it.src != npos && it.src < b.host_out.size())
      b.peak_out = std::max(b.peak_out, b.host_out[it.src]);
    if (it.moves && it.dst != npos && it.dst < b.host_in.size())
      b.peak_in = std::max(b.peak_in, b.host_in[it.dst]);
  }
}

/// The template of item `i` (its fallback's when `fallback`).
caf::expected<template_ptr> template_of(const scheduler_state& st, const batch_rt& b, size_t i,
                                        bool fallback) {
  auto& spec = b.rec.spec;
  auto& name = fallback ? spec.fallback_template
                        : (!spec.items[i].template_name.empty() ? spec.items[i].template_name
                                                                : spec.template_name);
  return st.env->templates->get(name);
}

/// Whether an item can start now, and if not, why.
struct verdict {
  enum kind_t : uint8_t {
    fits,
    /// A limit or the room on the hosts: later, perhaps.
    wait,
    /// The source's (or the batch's) limit: no other item of this source can start either.
    source_full,
    /// Never: the VM, its zone or its target is not in the fleet.
    never,
  } kind = fits;
  std::string why;
};

verdict wait(std::string why) {
  return {verdict::wait, std::move(why)};
}

/// Whether the item can start now, filling in where it would go.
verdict fit(const scheduler_state& st, batch_rt& b, size_t i, item_rt& it,
                const migration_template& t) {
  auto& spec = b.rec.spec;
  auto& lim = spec.limits;
  if (lim.global != 0 && b.running >= lim.global)
    return {verdict::source_full, "global limit"};
  auto* m = model_of(st);
  if (!m)
    return {};
  auto& vm = spec.items[i].vm;
  auto l = st.loc.find(vm);
  if (l == st.loc.end())
    return {verdict::never, vm + ": not in the fleet"};
  it.src = m->find_host(l->second.first);
  if (it.src == npos)
    return {verdict::never, vm + ": not running"};
  it.src_zone = m->hosts[it.src].zone;
  auto type = m->find_type(l->second.second);
  it.need = type != npos ? m->types[type].need() : fleet::capacity{};
  it.partitions.clear();
  if (auto v = m->find_vm(vm); v != npos)
    for (auto vol : m->vms[v].volumes)
      for (auto p : m->volumes[vol].partitions)
        it.partitions.push_back(p);
  auto args = item_args(spec, i);
  auto* target_param = t.find("target");
  bool placed = target_param && target_param->type == template_param_type::host;
  it.moves = placed || args.count("target") != 0;
  if (it.moves && lim.host_out != 0 && b.host_out[it.src] >= lim.host_out)
    return {verdict::source_full, "host out limit"};
  // The target zone: the item's (or batch's) `zone` when the template takes one.
  it.dst_zone = it.src_zone;
  if (auto z = args.find("zone"); z != args.end() && t.find("zone")) {
    it.dst_zone = m->find_zone(z->second);
    if (it.dst_zone == npos)
      return {verdict::never, "zone \"" + z->second + "\" is not in the fleet"};
  }
  if (lim.zone != 0) {
    if (b.zone_use[it.src_zone] >= lim.zone)
      return wait("zone limit");
    if (it.dst_zone != it.src_zone && b.zone_use[it.dst_zone] >= lim.zone)
      return wait("zone limit");
  }
  if (lim.partition != 0)
    for (auto p : it.partitions)
      if (b.partition_use[p] >= lim.partition)
        return wait("partition limit");
  it.link = nullptr;
  it.bandwidth = 0;
  if (it.dst_zone != it.src_zone && lim.link_share > 0) {
    it.link = m->find_link(it.src_zone, it.dst_zone);
    if (it.link) {
      it.bandwidth = lim.run_bandwidth_mib_s;
      if (it.bandwidth == 0) {
        auto bw = args.find("bandwidth_mib_s");
        it.bandwidth = bw != args.end() ? std::strtoull(bw->second.c_str(), nullptr, 10) : 0;
        if (it.bandwidth == 0)
          it.bandwidth = default_run_bandwidth_mib_s;
      }
      auto cap = static_cast<uint64_t>(static_cast<double>(it.link->bandwidth_mib_s)
                                       * lim.link_share);
      auto used = b.link_use[it.link];
      // A run larger than the share may still go alone.
      if (used > 0 && used + it.bandwidth > cap)
        return wait("link bandwidth limit");
    }
  }
  it.dst = it.moves ? npos : it.src;
  if (auto tg = args.find("target"); tg != args.end()) {
    it.dst = m->find_host(tg->second);
    if (it.dst == npos)
      return {verdict::never, "target \"" + tg->second + "\" is not in the fleet"};
    it.dst_zone = m->hosts[it.dst].zone;
    if (lim.host_in != 0 && b.host_in[it.dst] >= lim.host_in)
      return wait("host in limit");
  } else if (placed) {
    // Spread: the host of the zone with the most free memory that takes the VM.
    auto& gen_type = type != npos ? m->types[type] : fleet::vm_type{};
    fleet::index best = npos;
    for (auto h : m->zones[it.dst_zone].hosts) {
      if (h == it.src || (lim.host_in != 0 && b.host_in[h] >= lim.host_in))
        continue;
      if (!b.free[h].fits(it.need) || (type != npos && !gen_type.runs_on(m->hosts[h].generation)))
        continue;
      if (best == npos || b.free[h].memory_mib > b.free[best].memory_mib)
        best = h;
    }
    if (best == npos)
      return wait("no host of zone " + m->zones[it.dst_zone].name
                  + " has room within the limits");
    it.dst = best;
  }
  return {};
}

void start_item(scheduler_ptr self, batch_rt& b, size_t i, const migration_template& t,
                time_ms not_before);

/// `live`: the run came to rest now (not found at rest on resume, when the fleet's state
/// read since already shows its outcome).
void on_rest(scheduler_ptr self, const run_summary& s, bool live = true);

/// One pass of pump().
void pump_once(scheduler_ptr self, batch_rt& b) {
  auto& st = self->state;
  if (!b.loaded || b.rec.finished)
    return;
  if (b.stopped) {
    finish_if_done(self, b);
    return;
  }
  auto& spec = b.rec.spec;
  time_ms next = 0;
  bool open = in_window(spec, st.env->now(), next);
  if (!open && next == 0) {
    skip_waiting(self, b, "no maintenance window left");
    finish_if_done(self, b);
    return;
  }
  auto not_before = open ? 0 : next;
  // The sources in the order of their best ready item; each may start several items.
  std::vector<std::pair<std::pair<int64_t, size_t>, fleet::index>> order;
  order.reserve(b.ready.size());
  auto out_limit = spec.limits.host_out;
  for (auto& [src, set] : b.ready)
    if (!set.empty()
        && (out_limit == 0 || src == npos || src >= b.host_out.size()
            || b.host_out[src] < out_limit))
      order.emplace_back(*set.begin(), src);
  std::sort(order.begin(), order.end());
  bool blocked_everywhere = true;
  for (auto& [head, src] : order) {
    if (spec.limits.global != 0 && b.running >= spec.limits.global)
      break;
    auto r = b.ready.find(src);
    // A few items per source, in order: one blocked by a partition or a target may let the
    // next one go.
    size_t tried = 0;
    for (auto k = r->second.begin(); k != r->second.end() && tried < 16; ++tried) {
      auto i = k->second;
      auto& it = b.items[i];
      auto t = template_of(st, b, i, it.fallback);
      if (!t) {
        ++k;
        auto reason = describe(t.error());
        it.queued = false;
        r->second.erase(std::prev(k));
        mark_done(self, b, i, "failed", reason);
        continue;
      }
      auto v = fit(st, b, i, it, **t);
      if (v.kind == verdict::source_full)
        break;
      if (v.kind == verdict::never) {
        ++k;
        it.queued = false;
        r->second.erase(std::prev(k));
        mark_done(self, b, i, "failed", v.why);
        continue;
      }
      if (v.kind == verdict::wait) {
        ++k;
        continue;
      }
      blocked_everywhere = false;
      k = r->second.erase(k);
      it.queued = false;
      start_item(self, b, i, **t, not_before);
    }
    if (r->second.empty())
      b.ready.erase(r);
  }
  // Nothing running and nothing could start: what is left can never start (no room).
  if (b.running == 0 && blocked_everywhere && !b.ready.empty()) {
    for (auto& [src, set] : b.ready)
      for (auto& [p, i] : set) {
        auto t = template_of(st, b, i, b.items[i].fallback);
        auto why = t ? fit(st, b, i, b.items[i], **t).why : describe(t.error());
        b.items[i].queued = false;
        mark_done(self, b, i, "failed", "cannot start: " + why);
      }
    b.ready.clear();
  }
  finish_if_done(self, b);
}

/// Starts what may start. An item that fails as it starts (its definition does not render,
/// say) ends no run, and no run's end would pump again: what it lets start (the items behind
/// it, those that wait for it) is started by another pass.
void pump(scheduler_ptr self, batch_rt& b) {
  for (;;) {
    auto done = b.done;
    pump_once(self, b);
    if (b.done == done || b.rec.finished || b.ready.empty())
      return;
  }
}

void start_item(scheduler_ptr self, batch_rt& b, size_t i, const migration_template& t,
                time_ms not_before) {
  auto& st = self->state;
  auto& spec = b.rec.spec;
  auto& it = b.items[i];
  auto& vm = spec.items[i].vm;
  auto* m = model_of(st);
  std::vector<std::string> raw{"vm=" + vm};
  auto args = item_args(spec, i, it.fallback ? &t : nullptr);
  if (m && it.moves && it.dst != npos && t.find("target"))
    args["target"] = m->hosts[it.dst].name;
  for (auto& [k, v] : args)
    raw.push_back(k + "=" + v);
  auto parsed = parse_template_args(t, raw);
  vm_locator locate = [&st](const std::string& name, std::string& host, std::string& type) {
    auto l = st.loc.find(name);
    if (l == st.loc.end() || l->second.first.empty())
      return false;
    host = l->second.first;
    type = l->second.second;
    return true;
  };
  auto def = parsed ? render(t, *parsed, *st.env->kinds, m, locate)
                    : caf::expected<definition_ptr>{parsed.error()};
  if (!def) {
    mark_done(self, b, i, "failed", describe(def.error()));
    return;
  }
  it.run = it.fallback ? batch_fallback_run_id(spec.name, vm) : batch_run_id(spec.name, vm);
  it.ph = phase::running;
  count(b, it, +1);
  if (m && it.moves && it.dst != npos)
    b.free[it.dst] -= it.need;
  st.runs[it.run] = {spec.name, i};
  submit_request req;
  req.def = std::move(*def);
  req.id = it.run;
  req.not_before = not_before;
  req.actor = "batch " + spec.name;
  log().debug("batch {}: {} starts as run {}{}", spec.name, vm, it.run,
             m && it.dst != npos ? " (to " + m->hosts[it.dst].name + ")" : "");
  ++b.submitting;
  // The answer comes back as a message (submitted_atom): a batch has many submissions in
  // flight at once.
  auto reply = submit_reply{[me = caf::actor_cast<scheduler_actor>(self), name = spec.name,
                             run = it.run](caf::expected<run_id> id) {
    caf::anon_send(me, submitted_atom::value, name, run, id ? caf::error{} : id.error());
  }};
  self->send(st.env->engine, submit_atom::value, std::move(req), std::move(reply));
}

/// A submission of batch `name` was answered: its run started, or did not (`err`).
void on_submitted(scheduler_ptr self, const std::string& name, const run_id& run,
                  const caf::error& err) {
  if (err) {
    // Not started: as if it failed at once.
    run_summary s;
    s.id = run;
    s.status = run_status::failed;
    s.reason = "not started: " + describe(err);
    on_rest(self, s);
  }
  auto i = self->state.batches.find(name);
  if (i != self->state.batches.end() && --i->second.submitting == 0 && i->second.loaded)
    deliver_started(self, i->second);
}

void on_rest(scheduler_ptr self, const run_summary& s, bool live) {
  auto& st = self->state;
  auto r = st.runs.find(s.id);
  if (r == st.runs.end())
    return;
  auto [name, i] = r->second;
  st.runs.erase(r);
  auto bi = st.batches.find(name);
  if (bi == st.batches.end())
    return;
  auto& b = bi->second;
  auto& it = b.items[i];
  if (it.ph != phase::running || it.run != s.id)
    return;
  count(b, it, -1);
  auto* m = model_of(st);
  auto& vm = b.rec.spec.items[i].vm;
  if (!live) {
  } else if (s.status == run_status::succeeded) {
    if (m && it.moves && it.src != npos) {
      b.free[it.src] += it.need;
      if (it.dst != npos)
        st.loc[vm].first = m->hosts[it.dst].name;
    }
  } else if (m && it.moves && it.dst != npos) {
    b.free[it.dst] += it.need;
  }
  if (s.status == run_status::rolled_back && !it.fallback
      && !b.rec.spec.fallback_template.empty() && !b.rec.cancelled) {
    // The VM kept running on its source: move it the fallback's way, first among the ready.
    log().info("batch {}: {} rolled back ({}); falling back to {}", name, vm, s.reason,
               b.rec.spec.fallback_template);
    it.fallback = true;
    it.ph = phase::waiting;
    it.reason = s.reason;
    enqueue(b, i, st);
  } else {
    std::string outcome = s.status == run_status::succeeded     ? "succeeded"
                          : s.status == run_status::rolled_back ? "rolled_back"
                          : s.status == run_status::aborted     ? "aborted"
                                                                : "failed";
    mark_done(self, b, i, outcome, s.reason);
  }
  pump(self, b);
}

/// Sets up a batch's bookkeeping; `fresh` when it has no runs yet.
batch_rt& install(scheduler_ptr self, batch_record rec) {
  auto& st = self->state;
  auto name = rec.spec.name;
  auto& b = st.batches[name];
  b.rec = std::move(rec);
  auto& spec = b.rec.spec;
  b.spec = std::make_shared<const batch_spec>(spec);
  auto n = spec.items.size();
  b.items.assign(n, item_rt{});
  b.dependents.assign(n, {});
  for (size_t i = 0; i < n; ++i)
    b.by_vm[spec.items[i].vm] = i;
  for (size_t i = 0; i < n; ++i) {
    for (auto& a : spec.items[i].after)
      b.dependents[b.by_vm.at(a)].push_back(i);
    b.items[i].deps_left = static_cast<uint32_t>(spec.items[i].after.size());
    ++b.left_in_wave[spec.items[i].wave];
  }
  if (auto* m = model_of(st)) {
    b.host_out.assign(m->hosts.size(), 0);
    b.host_in.assign(m->hosts.size(), 0);
    b.zone_use.assign(m->zones.size(), 0);
    b.partition_use.assign(m->partitions.size(), 0);
  }
  return b;
}

/// Requests an actor keeps in flight at once when it asks about many things (paced). CAF 0.17
/// keeps an actor's requests that await an answer in a flat array it searches and closes up
/// on every answer: 30,000 asked at once cost hundreds of millions of steps.
constexpr size_t requests_in_flight = 64;

/// Requests under way of one paced() call.
struct pacing {
  size_t n;
  size_t next;
  size_t pending;
  std::function<void(size_t, std::function<void()>)> ask;
  std::function<void()> done;
};

/// Asks for the next i; its settled() asks for the one after, or calls done() after the last.
void pace_next(const std::shared_ptr<pacing>& p) {
  auto i = p->next++;
  p->ask(i, [p] {
    if (--p->pending == 0)
      return p->done();
    if (p->next < p->n)
      pace_next(p);
  });
}

/// Calls `ask(i, settled)` for every i in [0, n), at most requests_in_flight at a time; `ask`
/// sends its request(s) and calls `settled()` once, when the answer for i is handled. Calls
/// `done()` after the last one settled (at once when n is 0).
void paced(size_t n, std::function<void(size_t, std::function<void()>)> ask,
           std::function<void()> done) {
  if (n == 0) {
    done();
    return;
  }
  auto p = std::make_shared<pacing>(pacing{n, 0, n, std::move(ask), std::move(done)});
  for (size_t k = 0; k < requests_in_flight && k < n; ++k)
    pace_next(p);
}

/// Takes the run found for item `i` (its fallback's when `fallback`) into the batch.
void adopt_run(scheduler_ptr self, const std::string& name, size_t i, const run_state& rs,
               bool fallback) {
  auto* m = model_of(self->state);
  auto& b = self->state.batches.at(name);
  auto& it = b.items[i];
  // A fallback found running: it left the queue its main run's rollback put it in.
  dequeue(b, i);
  it.run = rs.id;
  it.fallback = fallback;
  auto host = [&](const char* label) {
    if (!m || !rs.def)
      return npos;
    auto l = rs.def->labels.find(label);
    return l == rs.def->labels.end() ? npos : m->find_host(l->second);
  };
  it.src = host("param.source");
  it.dst = host("param.target");
  // Where the VM runs now and its type, from the scheduler's map of the fleet.
  auto l = m ? self->state.loc.find(b.rec.spec.items[i].vm) : self->state.loc.end();
  if (l != self->state.loc.end()) {
    if (it.src == npos)
      it.src = m->find_host(l->second.first);
    auto type = m->find_type(l->second.second);
    if (type != npos)
      it.need = m->types[type].need();
  }
  it.moves = it.dst != npos && it.dst != it.src;
  it.src_zone = m && it.src != npos ? m->hosts[it.src].zone : npos;
  it.dst_zone = m && it.dst != npos ? m->hosts[it.dst].zone : it.src_zone;
  it.ph = phase::running;
  count(b, it, +1);
  self->state.runs[rs.id] = {name, i};
  b.adopted.push_back({rs.created,
                       is_resting(rs.status) ? rs.updated : std::numeric_limits<time_ms>::max(),
                       it.moves ? it.src : npos, it.moves ? it.dst : npos});
  if (!is_resting(rs.status))
    return;
  run_summary s;
  s.id = rs.id;
  s.status = rs.status;
  s.reason = rs.reason;
  // Its pump does nothing: the batch is not loaded yet.
  on_rest(self, s, false);
}

/// The batch's peaks as its runs found in the journal had them: the most at once in all, out
/// of one host and into one host, each run counting from its submission to its rest (a rest
/// and a submission at the same instant do not overlap: the next run starts after the rest).
/// Before, a batch read back after a restart reported the peaks of its loading (1, 1, 1 for a
/// finished one).
void replay_peaks(batch_rt& b) {
  using edges = std::vector<std::pair<time_ms, int>>;
  auto peak = [](edges& e) {
    std::sort(e.begin(), e.end());
    int now = 0, most = 0;
    for (auto& [at, d] : e)
      most = std::max(most, now += d);
    return static_cast<uint32_t>(most);
  };
  edges all;
  std::map<fleet::index, edges> out, in;
  for (auto& s : b.adopted) {
    for (auto* e : {&all, s.out != npos ? &out[s.out] : nullptr,
                    s.in != npos ? &in[s.in] : nullptr})
      if (e) {
        e->emplace_back(s.from, +1);
        e->emplace_back(s.to, -1);
      }
  }
  b.peak_running = std::max(b.peak_running, peak(all));
  for (auto& [h, e] : out)
    b.peak_out = std::max(b.peak_out, peak(e));
  for (auto& [h, e] : in)
    b.peak_in = std::max(b.peak_in, peak(e));
  b.adopted.clear();
  b.adopted.shrink_to_fit();
}

/// Every run of the batch looked up: starts what may start and answers who waits in
/// `on_started`.
void runs_looked_up(scheduler_ptr self, const std::string& name) {
  auto& b = self->state.batches.at(name);
  replay_peaks(b);
  b.loaded = true;
  if (b.rec.cancelled) {
    b.stopped = true;
    skip_waiting(self, b, "the batch was cancelled");
  } else if (b.rec.finished) {
    // Items of a finished batch without a run never started (no window, no room...).
    b.stopped = true;
    skip_waiting(self, b, "did not start");
  }
  for (size_t i = 0; i < b.items.size(); ++i)
    if (!b.stopped)
      enqueue(b, i, self->state);
  pump(self, b);
  // Answered once the runs it started are durable.
  if (b.submitting == 0)
    deliver_started(self, b);
}

/// Looks up every run of a batch (paced), then starts what may start and answers who waits
/// in `on_started`.
void resume_runs(scheduler_ptr self, const std::string& name) {
  auto ask = [self, name](size_t i, std::function<void()> settled) {
    auto vm = self->state.batches.at(name).rec.spec.items[i].vm;
    self->request(self->state.env->engine, caf::infinite, get_atom::value, batch_run_id(name, vm))
      .then(
        [self, name, i, vm, settled](run_state& rs) {
          auto& b = self->state.batches.at(name);
          bool fallback = rs.status == run_status::rolled_back
                          && !b.rec.spec.fallback_template.empty();
          adopt_run(self, name, i, rs, false);
          if (!fallback)
            return settled();
          // Its fallback may have started too.
          self->request(self->state.env->engine, caf::infinite, get_atom::value,
                        batch_fallback_run_id(name, vm))
            .then(
              [self, name, i, settled](run_state& fs) {
                adopt_run(self, name, i, fs, true);
                settled();
              },
              [settled](caf::error&) { settled(); });
        },
        [settled](caf::error&) { settled(); });
  };
  paced(self->state.batches.at(name).items.size(), ask,
        [self, name] { runs_looked_up(self, name); });
}

/// Learns where every VM runs and each host's free capacity, then calls `then`.
void load_fleet(scheduler_ptr self, std::function<void()> then) {
  auto& st = self->state;
  if (!st.env->fleet) {
    then();
    return;
  }
  auto& f = *st.env->fleet;
  self->request(f.directory, caf::infinite, list_atom::value)
    .then(
      [self, then](std::vector<fleet::vm_location>& locs) {
        auto& st = self->state;
        st.loc.clear();
        for (auto& l : locs)
          st.loc[l.vm] = {l.host, l.type};
        auto& f = *st.env->fleet;
        auto n = f.hosts.size();
        auto free = std::make_shared<std::vector<fleet::capacity>>(n);
        auto ask = [self, free](size_t h, std::function<void()> settled) {
          self->request(self->state.env->fleet->hosts[h], caf::infinite, status_atom::value)
            .then(
              [free, h, settled](host_status& hs) {
                (*free)[h] = hs.free;
                settled();
              },
              [settled](caf::error&) { settled(); });
        };
        paced(n, ask, [self, free, then] {
          for (auto& [name, b] : self->state.batches)
            if (!b.loaded)
              b.free = *free;
          then();
        });
      },
      [then](caf::error& err) {
        log().error("scheduler: the fleet directory does not answer: {}", describe(err));
        then();
      });
}

} // namespace

scheduler_actor spawn_scheduler(caf::actor_system& sys,
                                std::shared_ptr<const scheduler_env> env) {
  auto self_fn = [](scheduler_ptr self,
                    std::shared_ptr<const scheduler_env> env) -> scheduler_actor::behavior_type {
    self->state.env = env;
    self->send(env->engine, observe_atom::value, caf::actor_cast<caf::actor>(self));
    return {
      [=](submit_atom, batch_record& rec, bool fresh) -> caf::result<batch_status> {
        auto& st = self->state;
        auto name = rec.spec.name;
        if (auto i = st.batches.find(name); i != st.batches.end()) {
          auto& b = i->second;
          // The same batch again is the batch; another under its name is refused.
          if (fresh
              && encode_batch_record(batch_record{b.rec.spec})
                   != encode_batch_record(batch_record{rec.spec}))
            return make_error(errc::already_exists,
                              "batch \"" + name + "\": another batch has this name");
          if (b.loaded && b.submitting == 0)
            return status_of(st, b, true);
          auto rp = self->make_response_promise<batch_status>();
          b.on_started.push_back(rp);
          return rp;
        }
        // Installed at once, so that a second submission of the name finds it; kept in the
        // journal before any of its runs starts.
        auto encoded = fresh ? encode_batch_record(rec) : std::string{};
        install(self, std::move(rec));
        auto rp = self->make_response_promise<batch_status>();
        st.batches.at(name).on_started.push_back(rp);
        auto start = [self, name] {
          load_fleet(self, [self, name] { resume_runs(self, name); });
        };
        if (!fresh) {
          start();
          return rp;
        }
        self->request(st.env->journal, caf::infinite, batch_atom::value, name, encoded)
          .then([start](bool) { start(); },
                [self, name](caf::error& err) {
                  auto i = self->state.batches.find(name);
                  if (i == self->state.batches.end())
                    return;
                  auto waiting = std::move(i->second.on_started);
                  self->state.batches.erase(i);
                  for (auto& w : waiting)
                    w.deliver(err);
                });
        return rp;
      },
      [=](get_atom, const std::string& name) -> caf::result<batch_status> {
        auto& st = self->state;
        auto i = st.batches.find(name);
        if (i == st.batches.end())
          return make_error(errc::not_found, "batch \"" + name + "\": no such batch");
        return status_of(st, i->second, true);
      },
      [=](list_atom) {
        std::vector<batch_status> out;
        for (auto& [name, b] : self->state.batches)
          out.push_back(status_of(self->state, b, false));
        return out;
      },
      [=](cancel_atom, const std::string& name) -> caf::result<batch_status> {
        auto& st = self->state;
        auto i = st.batches.find(name);
        if (i == st.batches.end())
          return make_error(errc::not_found, "batch \"" + name + "\": no such batch");
        auto& b = i->second;
        if (!b.rec.finished && !b.rec.cancelled) {
          b.rec.cancelled = true;
          b.stopped = true;
          persist(self, b);
          skip_waiting(self, b, "the batch was cancelled");
          // The runs' answers tell nothing the scheduler waits for (each run's coming to rest
          // does), so no request is kept open for them.
          control_request req;
          req.action = control_request::op::cancel;
          req.actor = "batch " + name;
          for (auto& it : b.items)
            if (it.ph == phase::running)
              caf::anon_send(st.env->engine, control_atom::value, it.run, req);
          finish_if_done(self, b);
        }
        return status_of(st, b, true);
      },
      [=](done_atom, const std::string& name) -> caf::result<batch_status> {
        auto& st = self->state;
        auto i = st.batches.find(name);
        if (i == st.batches.end())
          return make_error(errc::not_found, "batch \"" + name + "\": no such batch");
        if (i->second.rec.finished)
          return status_of(st, i->second, true);
        auto rp = self->make_response_promise<batch_status>();
        i->second.waiters.push_back(rp);
        return rp;
      },
      [=](status_atom, run_summary& s) { on_rest(self, s); },
      [=](submitted_atom, const std::string& name, const run_id& run, const caf::error& err) {
        on_submitted(self, name, run, err);
      },
    };
  };
  return sys.spawn(self_fn, std::move(env));
}

} // namespace ferry
