// ferry::batch_spec — a batch (proto/ferry/v1/batch.proto): many migrations that the
// scheduler (actors/scheduler.hpp) runs in an order (waves, dependencies between VMs,
// priorities), under limits and within maintenance windows. load_batch() reads and checks
// one (names, windows, dependencies; the templates and the fleet are checked when it is
// submitted); drain_batch() builds the batch that empties a host or a zone, and
// is_same_drain() tells a drain run again from a new one. Pure; any thread. batch_status is
// what the scheduler reports of a batch. Batches, drain requests and statuses convert to and
// from their protobufs (the journal's record, ferryd's API).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "common/clock.hpp"
#include "fleet/model.hpp"
#include "fleet/state_codec.hpp"

namespace ferry::v1 {
class BatchSpec;
class BatchStatus;
class DrainRequest;
} // namespace ferry::v1

namespace ferry {

struct migration_template;

struct batch_item {
  std::string vm;
  /// Empty: the batch's template.
  std::string template_name;
  /// Arguments besides `vm`, as text, over the batch's.
  std::map<std::string, std::string> args;
  int32_t priority = 0;
  uint32_t wave = 0;
  std::vector<std::string> after;
};

/// 0: no limit.
struct batch_limits {
  uint32_t global = 0;
  uint32_t host_out = 0;
  uint32_t host_in = 0;
  uint32_t zone = 0;
  uint32_t partition = 0;
  double link_share = 0;
  uint64_t run_bandwidth_mib_s = 0;
};

/// [start, end), ms since the epoch.
struct batch_window {
  time_ms start = 0;
  time_ms end = 0;
};

/// Every day, minutes after midnight UTC; end <= start wraps to the next day.
struct daily_window {
  uint32_t start_min = 0;
  uint32_t end_min = 0;
};

struct batch_spec {
  std::string name;
  std::string template_name;
  std::map<std::string, std::string> args;
  std::vector<batch_item> items;
  batch_limits limits;
  std::vector<batch_window> windows;
  std::vector<daily_window> daily;
  bool stop_on_failure = false;
  std::string fallback_template;

  /// The item of `vm`; nullptr when the VM is not in the batch.
  const batch_item* find(const std::string& vm) const;
};

/// What the journal keeps of a batch.
struct batch_record {
  batch_spec spec;
  time_ms created = 0;
  bool finished = false;
  bool cancelled = false;
};

/// What the scheduler reports of an item.
struct batch_item_status {
  std::string vm;
  /// Its run (the fallback's once there is one); empty while waiting.
  std::string run;
  /// waiting, running, succeeded, rolled_back, failed, aborted, skipped.
  std::string state;
  std::string source;
  std::string target;
  /// Why it failed, rolled back or was skipped.
  std::string reason;
  bool fallback = false;
};

struct batch_status {
  std::string name;
  time_ms created = 0;
  bool finished = false;
  bool cancelled = false;
  uint32_t total = 0, waiting = 0, running = 0, succeeded = 0, failed = 0, skipped = 0;
  /// The most runs of the batch at once: in all, out of one host, into one host.
  uint32_t peak_running = 0, peak_host_out = 0, peak_host_in = 0;
  /// Per item, in the spec's order (empty in list answers).
  std::vector<batch_item_status> items;
  /// The batch itself (not in list answers).
  std::shared_ptr<const batch_spec> spec;
};

/// What to drain: every VM on `host`, or in `zone`.
struct drain_request {
  /// The batch's name; empty: "drain-<host or zone>".
  std::string name;
  std::string host;
  std::string zone;
  /// Where the VMs go: a zone ("zone" argument of the template); empty: their own zone.
  std::string to_zone;
  /// Default: live-precopy.
  std::string template_name = "live-precopy";
  std::map<std::string, std::string> args;
  batch_limits limits;
  std::vector<batch_window> windows;
  std::vector<daily_window> daily;
  std::string fallback_template;
};

/// The batch of `req` without its items: its name ("drain-<host or zone>" by default), template,
/// arguments (the target zone as "zone"), limits, windows and fallback.
batch_spec drain_settings(const drain_request& req);

/// Whether `existing` (a batch and its status) is the drain `req` asks for: its settings, and
/// every item whose source is known from the host (or the zone) drained. The same drain
/// again (the command run again after a restart, or after its connection was lost) is that
/// batch.
bool is_same_drain(const batch_status& existing, const drain_request& req, const fleet::model& m);

/// The batch that moves every VM of `locations` off the host (or out of the zone) of `req`,
/// in name order. Errors name the field (unknown host or zone, neither or both given, nothing
/// to drain).
caf::expected<batch_spec> drain_batch(const drain_request& req, const fleet::model& m,
                                      const std::vector<fleet::vm_location>& locations);

/// Item `i`'s template arguments: the batch's `args`, the item's own over them. With a
/// fallback template, only those it takes (its run is told what it knows of the item).
std::map<std::string, std::string> item_args(const batch_spec& spec, size_t i,
                                             const migration_template* fallback = nullptr);

/// The run of an item: "<batch>.<vm>"; its fallback run: "<batch>.<vm>.fallback".
std::string batch_run_id(const std::string& batch, const std::string& vm);
std::string batch_fallback_run_id(const std::string& batch, const std::string& vm);

/// Parses a batch (JSON when it starts with '{', else text format) and checks it: the name,
/// every item's VM (present, unique), a template for every item, `after` naming VMs of the
/// batch without a cycle, a wave order that `after` does not contradict, the limits and the
/// windows. Errors are invalid_argument naming the field ("items[3].after[0]: ...").
caf::expected<batch_spec> load_batch(std::string_view source);

/// Reads a file and calls load_batch. Errors name the path.
caf::expected<batch_spec> load_batch_file(const std::string& path);

/// The same checks on a batch built in C++.
caf::error check_batch(const batch_spec& spec);

/// Whether `at` lies in a window of the batch (always, when it has none), and otherwise the
/// start of the next window (0 when there is none: every window has passed).
bool in_window(const batch_spec& spec, time_ms at, time_ms& next_start);

/// The journal's encoding of a record, and back.
std::string encode_batch_record(const batch_record& r);
caf::expected<batch_record> decode_batch_record(std::string_view bytes);

/// A batch from its protobuf (proto/ferry/v1/batch.proto), checked as load_batch checks it;
/// and back.
caf::expected<batch_spec> batch_from_proto(const v1::BatchSpec& p);
void batch_to_proto(const batch_spec& s, v1::BatchSpec& p);

/// A drain request from its protobuf (its daily windows checked: "daily[0].start: expected
/// HH:MM (UTC)"; the rest is checked by drain_batch); and back.
caf::expected<drain_request> drain_from_proto(const v1::DrainRequest& p);
void drain_to_proto(const drain_request& r, v1::DrainRequest& p);

/// A batch's status as the API carries it, and back.
void batch_status_to_proto(const batch_status& s, v1::BatchStatus& p);
batch_status batch_status_from_proto(const v1::BatchStatus& p);

/// The spec in protobuf text format, or JSON.
std::string print_batch(const batch_spec& spec, bool json);

} // namespace ferry
