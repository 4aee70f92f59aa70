#include "persistence/codec.hpp"

#include "common/errc.hpp"
#include "ferry/v1/journal.pb.h"
#include "workflows/definition_codec.hpp"

namespace ferry {

namespace {

void to_proto(const definition& def, const event& e, v1::Event& p) {
  p.set_seq(e.seq);
  p.set_time_ms(e.at);
  p.set_type(static_cast<v1::EventType>(e.type));
  if (e.task != no_task) {
    p.set_task_index(e.task);
    if (e.task < def.tasks.size())
      p.set_task(def.tasks[e.task].id);
  }
  if (e.attempt != 0)
    p.set_attempt(e.attempt);
  if (e.deadline != 0)
    p.set_deadline_ms(e.deadline);
  if (e.code != errc::ok)
    p.set_error_code(to_string(e.code));
  if (!e.message.empty())
    p.set_message(e.message);
  if (e.retryable)
    p.set_retryable(true);
  if (!e.output.empty())
    p.set_output(e.output);
  if (!e.actor.empty())
    p.set_actor(e.actor);
  if (e.compensation)
    p.set_compensation(true);
  if (e.type == event_type::run_started && e.def) {
    // The definition itself is spliced in by encode_events, from its canonical encoding.
    auto* rs = p.mutable_run_started();
    rs->set_definition_digest(e.def->digest);
    rs->set_seed(e.seed);
    rs->set_not_before_ms(e.not_before);
  }
}

caf::error bad(const std::string& what) {
  return make_error(errc::data_loss, what);
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

/// Appends a length-delimited field: the wire form of a bytes or message field.
void put_field(std::string& out, uint32_t number, std::string_view bytes) {
  put_varint(out, (uint64_t{number} << 3) | 2);
  put_varint(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

} // namespace

// Built on the wire format so that a run's definition is copied in from its canonical
// encoding instead of being parsed and serialized again for every run: an Event's
// `run_started` may occur twice on the wire (digest and seed, then the definition), which
// protobuf parsers merge into one message.
std::string encode_events(const definition& def, const event* first, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    v1::Event p;
    to_proto(def, first[i], p);
    auto bytes = p.SerializeAsString();
    if (first[i].type == event_type::run_started && first[i].def) {
      std::string started;
      put_field(started, v1::RunStarted::kDefinitionFieldNumber, first[i].def->encoded);
      put_field(bytes, v1::Event::kRunStartedFieldNumber, started);
    }
    put_field(out, v1::EventBatch::kEventsFieldNumber, bytes);
  }
  return out;
}

std::string encode_events(const definition& def, const std::vector<event>& events) {
  return encode_events(def, events.data(), events.size());
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
      if (lookup) {
        if (auto found = lookup(rs.definition_digest()))
          d = *found;
      }
      if (!d) {
        auto decoded = decode_definition(rs.definition().SerializeAsString());
        if (!decoded)
          return decoded.error();
        d = *decoded;
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
  v1::RunCheckpoint p;
  p.set_run_id(s.id);
  if (s.def) {
    p.set_definition_digest(s.def->digest);
    p.set_definition_name(s.def->name);
  }
  p.set_status(static_cast<v1::RunStatus>(s.status));
  p.set_last_seq(s.seq);
  p.set_created_ms(s.created);
  p.set_updated_ms(s.updated);
  p.set_not_before_ms(s.not_before);
  p.set_seed(s.seed);
  p.set_passed_point_of_no_return(s.passed_point_of_no_return);
  p.set_cancel_requested(s.cancel_requested);
  p.set_retries_used(s.retries_used);
  p.set_reason(s.reason);
  for (auto& t : s.tasks) {
    auto* pt = p.add_tasks();
    pt->set_status(static_cast<v1::TaskStatus>(t.status));
    pt->set_attempt(t.attempt);
    pt->set_compensation_attempt(t.compensation_attempt);
    pt->set_attempt_base(t.attempt_base);
    pt->set_first_started_ms(t.first_started);
    pt->set_started_ms(t.started);
    pt->set_deadline_ms(t.deadline);
    pt->set_not_before_ms(t.not_before);
    pt->set_finished_ms(t.finished);
    pt->set_gate_approved(t.gate_approved);
    if (t.code != errc::ok)
      pt->set_error_code(to_string(t.code));
    pt->set_retryable(t.retryable);
    pt->set_error(t.error());
    pt->set_output(t.output());
  }
  return p.SerializeAsString();
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
  v1::FleetHistory h;
  h.set_run(run);
  h.set_first_seq(first_seq);
  for (auto& c : changes) {
    auto* pc = h.add_changes();
    pc->set_key(c.key);
    pc->set_value(c.value);
  }
  return h.SerializeAsString();
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
