#include "persistence/codec.hpp"

#include "common/errc.hpp"
#include "common/wire.hpp"
#include "ferry/v1/journal.pb.h"
#include "workflows/definition_codec.hpp"

namespace ferry {

namespace {

caf::error bad(const std::string& what) {
  return make_error(errc::data_loss, what);
}

void encode_event(const definition& def, const event& e, std::string& out) {
  wire w{out};
  w.varint(v1::Event::kSeqFieldNumber, e.seq);
  w.int64(v1::Event::kTimeMsFieldNumber, e.at);
  w.varint(v1::Event::kTypeFieldNumber, static_cast<uint64_t>(e.type));
  if (e.task != no_task) {
    if (e.task < def.tasks.size())
      w.bytes(v1::Event::kTaskFieldNumber, def.tasks[e.task].id);
    w.varint(v1::Event::kTaskIndexFieldNumber, e.task);
  }
  w.varint(v1::Event::kAttemptFieldNumber, e.attempt);
  w.int64(v1::Event::kDeadlineMsFieldNumber, e.deadline);
  if (e.code != errc::ok)
    w.bytes(v1::Event::kErrorCodeFieldNumber, to_string(e.code));
  w.text(v1::Event::kMessageFieldNumber, e.message);
  w.boolean(v1::Event::kRetryableFieldNumber, e.retryable);
  w.text(v1::Event::kOutputFieldNumber, e.output);
  if (e.type == event_type::run_started && e.def) {
    // The definition itself is spliced in after the other fields (see encode_events).
    std::string started;
    wire rs{started};
    rs.bytes(v1::RunStarted::kDefinitionDigestFieldNumber, e.def->digest);
    rs.varint(v1::RunStarted::kSeedFieldNumber, e.seed);
    rs.int64(v1::RunStarted::kNotBeforeMsFieldNumber, e.not_before);
    put_field(out, v1::Event::kRunStartedFieldNumber, started);
  }
  w.text(v1::Event::kActorFieldNumber, e.actor);
  w.boolean(v1::Event::kCompensationFieldNumber, e.compensation);
}

} // namespace

// A run's definition is copied in from its canonical encoding instead of being parsed and
// serialized again for every run: an Event's `run_started` may occur twice on the wire (digest
// and seed, then the definition), which protobuf parsers merge into one message.
std::string encode_events(const definition& def, const event* first, size_t count,
                          run_definition how) {
  std::string out;
  std::string bytes;
  for (size_t i = 0; i < count; ++i) {
    bytes.clear();
    encode_event(def, first[i], bytes);
    if (first[i].type == event_type::run_started && first[i].def
        && how == run_definition::embedded) {
      std::string started;
      put_field(started, v1::RunStarted::kDefinitionFieldNumber, first[i].def->encoded);
      put_field(bytes, v1::Event::kRunStartedFieldNumber, started);
    }
    put_field(out, v1::EventBatch::kEventsFieldNumber, bytes);
  }
  return out;
}

std::string encode_events(const definition& def, const std::vector<event>& events,
                          run_definition how) {
  return encode_events(def, events.data(), events.size(), how);
}

caf::expected<std::vector<event>> decode_events(std::string_view bytes, definition_ptr def,
                                                const definition_lookup& lookup) {
  v1::EventBatch batch;
  if (!batch.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return bad("event batch: undecodable protobuf");
  std::vector<event> result;
  result.reserve(batch.events_size());
  for (auto& p : batch.events()) {
    event e;
    e.seq = p.seq();
    e.at = p.time_ms();
    auto type = static_cast<int>(p.type());
    if (type < 1 || type > static_cast<int>(event_type::run_activated))
      return bad("event " + std::to_string(p.seq()) + ": unknown type " + std::to_string(type));
    e.type = static_cast<event_type>(type);
    if (e.type == event_type::run_started) {
      auto& rs = p.run_started();
      definition_ptr d;
      caf::error not_found;
      if (lookup) {
        if (auto found = lookup(rs.definition_digest()))
          d = *found;
        else
          not_found = std::move(found.error());
      }
      if (!d && !rs.has_definition())
        return bad("event " + std::to_string(p.seq()) + ": RUN_STARTED names definition \""
                   + rs.definition_digest() + "\", which is not in the event "
                   + (lookup ? "nor in the journal (" + message_of(not_found) + ")"
                             : std::string{"and was not looked up"}));
      if (!d) {
        auto decoded = decode_definition(rs.definition().SerializeAsString());
        if (!decoded)
          return decoded.error();
        d = *decoded;
        if (!rs.definition_digest().empty() && rs.definition_digest() != d->digest)
          return bad("event " + std::to_string(p.seq()) + ": RUN_STARTED's definition_digest \""
                     + rs.definition_digest() + "\" is not its definition's (\"" + d->digest
                     + "\")");
      }
      e.def = d;
      e.seed = rs.seed();
      e.not_before = rs.not_before_ms();
      def = d;
    }
    bool has_task = !p.task().empty() || p.task_index() != 0;
    if (has_task) {
      if (!def)
        return bad("event " + std::to_string(p.seq()) + ": task event before the run started");
      e.task = p.task_index();
      if (e.task >= def->tasks.size() || def->tasks[e.task].id != p.task())
        return bad("event " + std::to_string(p.seq()) + ": task \"" + p.task() + "\" (index "
                   + std::to_string(p.task_index()) + ") is not in definition \"" + def->name
                   + "\"");
    }
    e.attempt = p.attempt();
    e.deadline = p.deadline_ms();
    e.code = p.error_code().empty() ? errc::ok : errc_from_string(p.error_code());
    e.message = p.message();
    e.retryable = p.retryable();
    e.output = p.output();
    e.actor = p.actor();
    e.compensation = p.compensation();
    result.push_back(std::move(e));
  }
  return result;
}

std::string encode_checkpoint(const run_state& s) {
  std::string out;
  out.reserve(64 + s.id.size() + (s.def ? s.def->digest.size() + s.def->name.size() : 0)
              + s.reason.size() + 24 * s.tasks.size());
  wire w{out};
  using cp = v1::RunCheckpoint;
  w.bytes(cp::kRunIdFieldNumber, s.id);
  if (s.def)
    w.bytes(cp::kDefinitionDigestFieldNumber, s.def->digest);
  w.varint(cp::kStatusFieldNumber, static_cast<uint64_t>(s.status));
  w.varint(cp::kLastSeqFieldNumber, s.seq);
  w.int64(cp::kCreatedMsFieldNumber, s.created);
  w.int64(cp::kUpdatedMsFieldNumber, s.updated);
  w.int64(cp::kNotBeforeMsFieldNumber, s.not_before);
  w.varint(cp::kSeedFieldNumber, s.seed);
  w.boolean(cp::kPassedPointOfNoReturnFieldNumber, s.passed_point_of_no_return);
  w.boolean(cp::kCancelRequestedFieldNumber, s.cancel_requested);
  w.varint(cp::kRetriesUsedFieldNumber, s.retries_used);
  w.text(cp::kReasonFieldNumber, s.reason);
  std::string task;
  for (auto& t : s.tasks) {
    task.clear();
    wire tw{task};
    using tc = v1::TaskCheckpoint;
    tw.varint(tc::kStatusFieldNumber, static_cast<uint64_t>(t.status));
    tw.varint(tc::kAttemptFieldNumber, t.attempt);
    tw.varint(tc::kCompensationAttemptFieldNumber, t.compensation_attempt);
    tw.int64(tc::kFirstStartedMsFieldNumber, t.first_started);
    tw.int64(tc::kStartedMsFieldNumber, t.started);
    tw.int64(tc::kDeadlineMsFieldNumber, t.deadline);
    tw.int64(tc::kNotBeforeMsFieldNumber, t.not_before);
    tw.int64(tc::kFinishedMsFieldNumber, t.finished);
    tw.boolean(tc::kGateApprovedFieldNumber, t.gate_approved);
    if (t.code != errc::ok)
      tw.bytes(tc::kErrorCodeFieldNumber, to_string(t.code));
    tw.text(tc::kErrorFieldNumber, t.error());
    tw.text(tc::kOutputFieldNumber, t.output());
    tw.varint(tc::kAttemptBaseFieldNumber, t.attempt_base);
    tw.boolean(tc::kRetryableFieldNumber, t.retryable);
    put_field(out, cp::kTasksFieldNumber, task);
  }
  if (s.def)
    w.bytes(cp::kDefinitionNameFieldNumber, s.def->name);
  return out;
}

caf::expected<run_state> decode_checkpoint(std::string_view bytes,
                                           const definition_lookup& lookup) {
  v1::RunCheckpoint p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return bad("checkpoint: undecodable protobuf");
  run_state s;
  s.id = p.run_id();
  auto def = lookup(p.definition_digest());
  if (!def)
    return make_error(code_of(def.error()), "run " + s.id + ": " + message_of(def.error()));
  s.def = *def;
  if (static_cast<size_t>(p.tasks_size()) != s.def->tasks.size())
    return bad("run " + s.id + ": checkpoint has " + std::to_string(p.tasks_size())
               + " tasks, definition \"" + s.def->name + "\" has "
               + std::to_string(s.def->tasks.size()));
  auto status = static_cast<int>(p.status());
  if (status < 1 || status > static_cast<int>(run_status::aborted))
    return bad("run " + s.id + ": checkpoint has unknown status " + std::to_string(status));
  s.status = static_cast<run_status>(status);
  s.seq = p.last_seq();
  s.created = p.created_ms();
  s.updated = p.updated_ms();
  s.not_before = p.not_before_ms();
  s.seed = p.seed();
  s.passed_point_of_no_return = p.passed_point_of_no_return();
  s.cancel_requested = p.cancel_requested();
  s.retries_used = p.retries_used();
  s.reason = p.reason();
  s.tasks.resize(p.tasks_size());
  for (int i = 0; i < p.tasks_size(); ++i) {
    auto& pt = p.tasks(i);
    auto& t = s.tasks[i];
    auto ts = static_cast<int>(pt.status());
    if (ts < 1 || ts > static_cast<int>(task_status::compensation_failed))
      return bad("run " + s.id + ": task " + std::to_string(i) + " has unknown status");
    t.status = static_cast<task_status>(ts);
    t.attempt = pt.attempt();
    t.compensation_attempt = pt.compensation_attempt();
    t.attempt_base = pt.attempt_base();
    t.first_started = pt.first_started_ms();
    t.started = pt.started_ms();
    t.deadline = pt.deadline_ms();
    t.not_before = pt.not_before_ms();
    t.finished = pt.finished_ms();
    t.gate_approved = pt.gate_approved();
    t.code = pt.error_code().empty() ? errc::ok : errc_from_string(pt.error_code());
    t.retryable = pt.retryable();
    t.text.set(pt.error(), pt.output());
  }
  return s;
}

checkpoint_summary summarize(const run_state& s) {
  checkpoint_summary r;
  r.id = s.id;
  r.status = s.status;
  if (s.def) {
    r.definition_name = s.def->name;
    r.definition_digest = s.def->digest;
  }
  r.last_seq = s.seq;
  r.created = s.created;
  r.updated = s.updated;
  r.reason = s.reason;
  return r;
}

std::string encode_fleet_history(const std::string& run, uint64_t first_seq,
                                 const state_changes& changes) {
  std::string out;
  size_t size = 16 + run.size();
  for (auto& c : changes)
    size += 8 + c.key.size() + c.value.size();
  out.reserve(size);
  wire w{out};
  w.bytes(v1::FleetHistory::kRunFieldNumber, run);
  w.varint(v1::FleetHistory::kFirstSeqFieldNumber, first_seq);
  std::string change;
  for (auto& c : changes) {
    change.clear();
    wire cw{change};
    cw.bytes(v1::FleetChange::kKeyFieldNumber, c.key);
    cw.bytes(v1::FleetChange::kValueFieldNumber, c.value);
    put_field(out, v1::FleetHistory::kChangesFieldNumber, change);
  }
  return out;
}

caf::expected<fleet_history_entry> decode_fleet_history(std::string_view bytes) {
  v1::FleetHistory h;
  if (!h.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return make_error(errc::data_loss, "fleet history record: not a FleetHistory");
  fleet_history_entry out;
  out.run = h.run();
  out.first_seq = h.first_seq();
  for (auto& c : h.changes())
    out.changes.push_back({c.key(), c.value()});
  return out;
}

caf::expected<checkpoint_summary> summarize_checkpoint(std::string_view bytes) {
  v1::RunCheckpoint p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return bad("checkpoint: undecodable protobuf");
  checkpoint_summary r;
  r.id = p.run_id();
  r.status = static_cast<run_status>(p.status());
  r.definition_name = p.definition_name();
  r.definition_digest = p.definition_digest();
  r.last_seq = p.last_seq();
  r.created = p.created_ms();
  r.updated = p.updated_ms();
  r.reason = p.reason();
  return r;
}

} // namespace ferry
