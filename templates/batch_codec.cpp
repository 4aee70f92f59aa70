// Reading, checking and encoding batches (proto/ferry/v1/batch.proto).
#include "templates/batch.hpp"

#include <algorithm>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <unordered_map>

#include "common/errc.hpp"
#include "common/file.hpp"
#include "ferry/v1/batch.pb.h"
#include "proto/text_io.hpp"
#include "templates/template.hpp"

namespace ferry {

namespace {

bool valid_name(const std::string& s, size_t max, bool dots) {
  if (s.empty() || s.size() > max)
    return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'
          || (dots && c == '.')))
      return false;
  return true;
}

/// `owner`: "batch", or "drain" for a drain request's fields.
caf::error bad(const std::string& field, const std::string& problem,
               const char* owner = "batch") {
  return make_error(errc::invalid_argument, std::string{owner} + ": " + field + ": " + problem);
}

/// "HH:MM" -> minutes after midnight.
bool parse_hhmm(const std::string& s, uint32_t& out) {
  if (s.size() != 5 || s[2] != ':')
    return false;
  for (int i : {0, 1, 3, 4})
    if (!std::isdigit(static_cast<unsigned char>(s[i])))
      return false;
  auto h = static_cast<uint32_t>((s[0] - '0') * 10 + (s[1] - '0'));
  auto m = static_cast<uint32_t>((s[3] - '0') * 10 + (s[4] - '0'));
  if (h > 23 || m > 59)
    return false;
  out = h * 60 + m;
  return true;
}

std::string hhmm(uint32_t minutes) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%02u:%02u", minutes / 60, minutes % 60);
  return buf;
}

/// The limits, windows and daily windows of a BatchSpec or a DrainRequest.
template <class Proto>
void schedule_to_proto(const batch_limits& limits, const std::vector<batch_window>& windows,
                       const std::vector<daily_window>& daily, Proto& p) {
  auto* l = p.mutable_limits();
  l->set_global(limits.global);
  l->set_host_out(limits.host_out);
  l->set_host_in(limits.host_in);
  l->set_zone(limits.zone);
  l->set_partition(limits.partition);
  l->set_link_share(limits.link_share);
  l->set_run_bandwidth_mib_s(limits.run_bandwidth_mib_s);
  for (auto& w : windows) {
    auto* pw = p.add_windows();
    pw->set_start_ms(static_cast<uint64_t>(w.start));
    pw->set_end_ms(static_cast<uint64_t>(w.end));
  }
  for (auto& d : daily) {
    auto* pd = p.add_daily();
    pd->set_start(hhmm(d.start_min));
    pd->set_end(hhmm(d.end_min));
  }
}

template <class Proto>
caf::error schedule_from_proto(const Proto& p, const char* owner, batch_limits& limits,
                               std::vector<batch_window>& windows,
                               std::vector<daily_window>& daily) {
  auto& l = p.limits();
  limits.global = l.global();
  limits.host_out = l.host_out();
  limits.host_in = l.host_in();
  limits.zone = l.zone();
  limits.partition = l.partition();
  limits.link_share = l.link_share();
  limits.run_bandwidth_mib_s = l.run_bandwidth_mib_s();
  constexpr uint64_t latest = static_cast<uint64_t>(std::numeric_limits<time_ms>::max());
  for (int i = 0; i < p.windows_size(); ++i) {
    auto field = "windows[" + std::to_string(i) + "]";
    for (auto [name, ms] : {std::pair{".start_ms", p.windows(i).start_ms()},
                            std::pair{".end_ms", p.windows(i).end_ms()}})
      if (ms > latest) // it would wrap to a time before the epoch
        return bad(field + name,
                   "must be at most " + std::to_string(latest) + " (ms since the epoch), got "
                     + std::to_string(ms),
                   owner);
    windows.push_back({static_cast<time_ms>(p.windows(i).start_ms()),
                       static_cast<time_ms>(p.windows(i).end_ms())});
  }
  for (int i = 0; i < p.daily_size(); ++i) {
    daily_window d;
    auto field = "daily[" + std::to_string(i) + "]";
    if (!parse_hhmm(p.daily(i).start(), d.start_min))
      return bad(field + ".start", "expected HH:MM (UTC), got \"" + p.daily(i).start() + "\"",
                 owner);
    if (!parse_hhmm(p.daily(i).end(), d.end_min))
      return bad(field + ".end", "expected HH:MM (UTC), got \"" + p.daily(i).end() + "\"",
                 owner);
    daily.push_back(d);
  }
  return {};
}

void to_proto(const batch_spec& s, v1::BatchSpec& p) {
  p.set_name(s.name);
  p.set_template_(s.template_name);
  for (auto& [k, v] : s.args)
    (*p.mutable_args())[k] = v;
  for (auto& it : s.items) {
    auto* pi = p.add_items();
    pi->set_vm(it.vm);
    pi->set_template_(it.template_name);
    for (auto& [k, v] : it.args)
      (*pi->mutable_args())[k] = v;
    pi->set_priority(it.priority);
    pi->set_wave(it.wave);
    for (auto& a : it.after)
      pi->add_after(a);
  }
  schedule_to_proto(s.limits, s.windows, s.daily, p);
  p.set_stop_on_failure(s.stop_on_failure);
  p.set_fallback_template(s.fallback_template);
}

caf::expected<batch_spec> from_proto(const v1::BatchSpec& p) {
  batch_spec s;
  s.name = p.name();
  s.template_name = p.template_();
  s.args.insert(p.args().begin(), p.args().end());
  for (int i = 0; i < p.items_size(); ++i) {
    auto& pi = p.items(i);
    batch_item it;
    it.vm = pi.vm();
    it.template_name = pi.template_();
    it.args.insert(pi.args().begin(), pi.args().end());
    it.priority = pi.priority();
    it.wave = pi.wave();
    it.after.assign(pi.after().begin(), pi.after().end());
    s.items.push_back(std::move(it));
  }
  if (auto err = schedule_from_proto(p, "batch", s.limits, s.windows, s.daily))
    return err;
  s.stop_on_failure = p.stop_on_failure();
  s.fallback_template = p.fallback_template();
  if (auto err = check_batch(s))
    return err;
  return s;
}

constexpr time_ms day_ms = 24 * 3600 * 1000;

} // namespace

const batch_item* batch_spec::find(const std::string& vm) const {
  for (auto& it : items)
    if (it.vm == vm)
      return &it;
  return nullptr;
}

std::map<std::string, std::string> item_args(const batch_spec& spec, size_t i,
                                             const migration_template* fallback) {
  auto out = spec.args;
  for (auto& [k, v] : spec.items[i].args)
    out[k] = v;
  if (fallback)
    for (auto a = out.begin(); a != out.end();)
      a = fallback->find(a->first) ? std::next(a) : out.erase(a);
  return out;
}

std::string batch_run_id(const std::string& batch, const std::string& vm) {
  return batch + "." + vm;
}

std::string batch_fallback_run_id(const std::string& batch, const std::string& vm) {
  return batch + "." + vm + ".fallback";
}

caf::error check_batch(const batch_spec& s) {
  if (!valid_name(s.name, 40, false))
    return bad("name", "must be 1 to 40 characters of [A-Za-z0-9_-], got \"" + s.name + "\"");
  if (s.items.empty())
    return bad("items", "empty: a batch migrates at least one VM");
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < s.items.size(); ++i) {
    auto& it = s.items[i];
    auto field = "items[" + std::to_string(i) + "]";
    if (it.vm.empty())
      return bad(field + ".vm", "missing");
    // The run ids "<batch>.<vm>.fallback" must be valid run ids (at most 64 characters).
    if (!valid_name(it.vm, 64 - s.name.size() - 10, true))
      return bad(field + ".vm", "\"" + it.vm + "\" cannot name a run: at most "
                                  + std::to_string(64 - s.name.size() - 10)
                                  + " characters of [A-Za-z0-9_.-] with this batch name");
    if (!index.emplace(it.vm, i).second)
      return bad(field + ".vm", "\"" + it.vm + "\" is already items["
                                  + std::to_string(index[it.vm]) + "]");
    if (it.template_name.empty() && s.template_name.empty())
      return bad(field + ".template", "missing, and the batch names no template");
    if (it.args.count("vm") != 0)
      return bad(field + ".args", "\"vm\" is the item's own (field vm)");
  }
  if (s.args.count("vm") != 0)
    return bad("args", "\"vm\" is each item's own (items[].vm)");
  for (size_t i = 0; i < s.items.size(); ++i) {
    auto& it = s.items[i];
    for (size_t j = 0; j < it.after.size(); ++j) {
      auto field = "items[" + std::to_string(i) + "].after[" + std::to_string(j) + "]";
      auto k = index.find(it.after[j]);
      if (k == index.end())
        return bad(field, "\"" + it.after[j] + "\" is not a VM of the batch");
      if (k->second == i)
        return bad(field, "an item cannot wait for itself");
      if (s.items[k->second].wave > it.wave)
        return bad(field, "\"" + it.after[j] + "\" is in a later wave ("
                            + std::to_string(s.items[k->second].wave) + " > "
                            + std::to_string(it.wave) + ")");
    }
  }
  // Cycles through `after` (within a wave: across waves the check above forbids them).
  std::vector<int> mark(s.items.size(), 0);
  std::function<caf::error(size_t)> visit = [&](size_t i) -> caf::error {
    mark[i] = 1;
    for (auto& a : s.items[i].after) {
      auto k = index.at(a);
      if (mark[k] == 1)
        return bad("items[" + std::to_string(i) + "].after",
                   "a cycle through \"" + s.items[i].vm + "\" and \"" + a + "\"");
      if (mark[k] == 0)
        if (auto err = visit(k))
          return err;
    }
    mark[i] = 2;
    return {};
  };
  for (size_t i = 0; i < s.items.size(); ++i)
    if (mark[i] == 0)
      if (auto err = visit(i))
        return err;
  if (!(s.limits.link_share >= 0 && s.limits.link_share <= 1)) // nan too
    return bad("limits.link_share", "must be in (0, 1], or 0 for no limit; got "
                                      + std::to_string(s.limits.link_share));
  for (size_t i = 0; i < s.windows.size(); ++i)
    if (s.windows[i].end <= s.windows[i].start)
      return bad("windows[" + std::to_string(i) + "]", "end_ms must be after start_ms");
  for (size_t i = 0; i < s.daily.size(); ++i)
    if (s.daily[i].start_min == s.daily[i].end_min)
      return bad("daily[" + std::to_string(i) + "]", "start and end are the same time");
  return {};
}

bool in_window(const batch_spec& s, time_ms at, time_ms& next_start) {
  next_start = 0;
  if (s.windows.empty() && s.daily.empty())
    return true;
  auto consider = [&](time_ms start) {
    if (start > at && (next_start == 0 || start < next_start))
      next_start = start;
  };
  for (auto& w : s.windows) {
    if (at >= w.start && at < w.end)
      return true;
    consider(w.start);
  }
  auto day = at - (at % day_ms);
  for (auto& d : s.daily) {
    auto start_off = static_cast<time_ms>(d.start_min) * 60000;
    auto end_off = static_cast<time_ms>(d.end_min) * 60000;
    if (end_off <= start_off)
      end_off += day_ms;
    // Today's window, and yesterday's when it wraps past midnight.
    for (auto base : {day - day_ms, day}) {
      if (at >= base + start_off && at < base + end_off)
        return true;
    }
    consider(day + start_off);
    consider(day + day_ms + start_off);
  }
  return false;
}

caf::expected<batch_spec> load_batch(std::string_view source) {
  auto first = source.find_first_not_of(" \t\r\n");
  bool json = first != std::string_view::npos && source[first] == '{';
  v1::BatchSpec p;
  if (auto err = parse_text_or_json(source, p, json); !err.empty())
    return make_error(errc::invalid_argument,
                      std::string{"batch ("} + (json ? "JSON" : "text format") + "): " + err);
  return from_proto(p);
}

caf::expected<batch_spec> load_batch_file(const std::string& path) {
  auto text = read_file(path);
  if (!text)
    return make_error(code_of(text.error()), "batch file " + path + ": " + message_of(text.error()));
  auto s = load_batch(*text);
  if (!s)
    return make_error(code_of(s.error()), path + ": " + message_of(s.error()));
  return s;
}

std::string encode_batch_record(const batch_record& r) {
  v1::BatchRecord p;
  to_proto(r.spec, *p.mutable_spec());
  p.set_created_ms(static_cast<uint64_t>(r.created));
  p.set_finished(r.finished);
  p.set_cancelled(r.cancelled);
  return p.SerializeAsString();
}

caf::expected<batch_record> decode_batch_record(std::string_view bytes) {
  v1::BatchRecord p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return make_error(errc::data_loss, "batch record: not a BatchRecord");
  auto spec = from_proto(p.spec());
  if (!spec)
    return spec.error();
  batch_record r;
  r.spec = std::move(*spec);
  r.created = static_cast<time_ms>(p.created_ms());
  r.finished = p.finished();
  r.cancelled = p.cancelled();
  return r;
}

batch_spec drain_settings(const drain_request& req) {
  batch_spec s;
  s.name = !req.name.empty() ? req.name : "drain-" + (req.host.empty() ? req.zone : req.host);
  s.template_name = req.template_name;
  s.args = req.args;
  if (!req.to_zone.empty())
    s.args["zone"] = req.to_zone;
  s.limits = req.limits;
  s.windows = req.windows;
  s.daily = req.daily;
  s.fallback_template = req.fallback_template;
  return s;
}

bool is_same_drain(const batch_status& existing, const drain_request& req,
                   const fleet::model& m) {
  if (!existing.spec)
    return false;
  // The settings only: the items are not copied.
  auto& e = *existing.spec;
  batch_spec settings;
  settings.name = e.name;
  settings.template_name = e.template_name;
  settings.args = e.args;
  settings.limits = e.limits;
  settings.windows = e.windows;
  settings.daily = e.daily;
  settings.stop_on_failure = e.stop_on_failure;
  settings.fallback_template = e.fallback_template;
  if (encode_batch_record(batch_record{settings})
      != encode_batch_record(batch_record{drain_settings(req)}))
    return false;
  auto zone = req.host.empty() ? m.find_zone(req.zone) : fleet::npos;
  for (auto& it : existing.items) {
    // Not known yet for an item of a batch the scheduler is still reading back.
    if (it.source.empty())
      continue;
    auto h = m.find_host(it.source);
    if (!req.host.empty() ? it.source != req.host : h == fleet::npos || m.hosts[h].zone != zone)
      return false;
  }
  return true;
}

caf::expected<batch_spec> drain_batch(const drain_request& req, const fleet::model& m,
                                      const std::vector<fleet::vm_location>& locations) {
  if (req.host.empty() == req.zone.empty())
    return make_error(errc::invalid_argument, "drain: give a host or a zone (one of them)");
  fleet::index zone = fleet::npos;
  if (!req.host.empty()) {
    auto h = m.find_host(req.host);
    if (h == fleet::npos)
      return make_error(errc::invalid_argument,
                        "drain: field \"host\": \"" + req.host + "\" is not in the fleet");
    zone = m.hosts[h].zone;
  } else {
    zone = m.find_zone(req.zone);
    if (zone == fleet::npos)
      return make_error(errc::invalid_argument,
                        "drain: field \"zone\": \"" + req.zone + "\" is not in the fleet");
  }
  if (!req.to_zone.empty() && m.find_zone(req.to_zone) == fleet::npos)
    return make_error(errc::invalid_argument,
                      "drain: field \"to_zone\": \"" + req.to_zone + "\" is not in the fleet");
  if (!req.zone.empty() && (req.to_zone.empty() || req.to_zone == req.zone))
    return make_error(errc::invalid_argument,
                      "drain: field \"to_zone\": draining zone \"" + req.zone
                        + "\" needs another zone to move its VMs to");
  auto s = drain_settings(req);
  for (auto& l : locations) {
    auto h = m.find_host(l.host);
    if (h == fleet::npos)
      continue;
    if (!req.host.empty() ? l.host == req.host : m.hosts[h].zone == zone)
      s.items.push_back(batch_item{l.vm, {}, {}, 0, 0, {}});
  }
  if (s.items.empty())
    return make_error(errc::failed_precondition,
                      "drain: " + (req.host.empty() ? "zone \"" + req.zone : "host \"" + req.host)
                        + "\" runs no VM");
  std::sort(s.items.begin(), s.items.end(),
            [](const batch_item& a, const batch_item& b) { return a.vm < b.vm; });
  if (auto err = check_batch(s))
    return err;
  return s;
}

std::string print_batch(const batch_spec& s, bool json) {
  v1::BatchSpec p;
  to_proto(s, p);
  return print_text_or_json(p, json);
}

caf::expected<batch_spec> batch_from_proto(const v1::BatchSpec& p) {
  return from_proto(p);
}

void batch_to_proto(const batch_spec& s, v1::BatchSpec& p) {
  to_proto(s, p);
}

caf::expected<drain_request> drain_from_proto(const v1::DrainRequest& p) {
  drain_request r;
  r.name = p.name();
  r.host = p.host();
  r.zone = p.zone();
  r.to_zone = p.to_zone();
  if (!p.template_().empty())
    r.template_name = p.template_();
  r.args.insert(p.args().begin(), p.args().end());
  if (auto err = schedule_from_proto(p, "drain", r.limits, r.windows, r.daily))
    return err;
  r.fallback_template = p.fallback_template();
  return r;
}

void drain_to_proto(const drain_request& r, v1::DrainRequest& p) {
  p.set_name(r.name);
  p.set_host(r.host);
  p.set_zone(r.zone);
  p.set_to_zone(r.to_zone);
  p.set_template_(r.template_name);
  for (auto& [k, v] : r.args)
    (*p.mutable_args())[k] = v;
  schedule_to_proto(r.limits, r.windows, r.daily, p);
  p.set_fallback_template(r.fallback_template);
}

void batch_status_to_proto(const batch_status& s, v1::BatchStatus& p) {
  p.set_name(s.name);
  p.set_created_ms(static_cast<uint64_t>(s.created));
  p.set_finished(s.finished);
  p.set_cancelled(s.cancelled);
  p.set_total(s.total);
  p.set_waiting(s.waiting);
  p.set_running(s.running);
  p.set_succeeded(s.succeeded);
  p.set_failed(s.failed);
  p.set_skipped(s.skipped);
  p.set_peak_running(s.peak_running);
  p.set_peak_host_out(s.peak_host_out);
  p.set_peak_host_in(s.peak_host_in);
  for (auto& it : s.items) {
    auto* pi = p.add_items();
    pi->set_vm(it.vm);
    pi->set_run_id(it.run);
    pi->set_state(it.state);
    pi->set_source(it.source);
    pi->set_target(it.target);
    pi->set_reason(it.reason);
    pi->set_fallback(it.fallback);
  }
  if (s.spec)
    to_proto(*s.spec, *p.mutable_spec());
}

batch_status batch_status_from_proto(const v1::BatchStatus& p) {
  batch_status s;
  s.name = p.name();
  s.created = static_cast<time_ms>(p.created_ms());
  s.finished = p.finished();
  s.cancelled = p.cancelled();
  s.total = p.total();
  s.waiting = p.waiting();
  s.running = p.running();
  s.succeeded = p.succeeded();
  s.failed = p.failed();
  s.skipped = p.skipped();
  s.peak_running = p.peak_running();
  s.peak_host_out = p.peak_host_out();
  s.peak_host_in = p.peak_host_in();
  for (auto& pi : p.items())
    s.items.push_back({pi.vm(), pi.run_id(), pi.state(), pi.source(), pi.target(), pi.reason(),
                       pi.fallback()});
  if (p.has_spec())
    if (auto spec = from_proto(p.spec()))
      s.spec = std::make_shared<const batch_spec>(std::move(*spec));
  return s;
}

} // namespace ferry
