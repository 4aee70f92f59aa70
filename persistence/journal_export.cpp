#include "persistence/journal_export.hpp"

#include <fstream>
#include <istream>
#include <map>
#include <set>
#include <ostream>

#include <google/protobuf/util/json_util.h>

#include "common/errc.hpp"
#include "common/file.hpp"
#include "ferry/v1/journal.pb.h"
#include "persistence/codec.hpp"
#include "persistence/store.hpp"
#include "workflows/apply.hpp"
#include "workflows/definition_codec.hpp"

namespace ferry {

caf::expected<uint64_t> export_jsonl(const store& st, const std::vector<run_id>& runs,
                                     std::ostream& out) {
  std::vector<run_id> ids = runs;
  if (ids.empty()) {
    auto err = st.for_each_checkpoint([&](std::string_view id, std::string_view) {
      ids.emplace_back(id);
      return true;
    });
    if (err)
      return err;
  } else {
    for (auto& id : ids)
      if (auto cp = st.checkpoint(id); !cp)
        return make_error(errc::not_found, "export: run \"" + id + "\" is not in the journal");
  }
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  uint64_t n = 0;
  v1::ExportedEvent line;
  std::string json;
  for (auto& id : ids) {
    caf::error failure;
    auto err = st.for_each_event_batch(id, 1, [&](uint64_t first, std::string_view bytes) {
      v1::EventBatch batch;
      if (!batch.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        failure = make_error(errc::data_loss, "export: run \"" + id + "\": the events record at "
                                                + std::to_string(first) + " is unreadable");
        return false;
      }
      for (auto& ev : batch.events()) {
        line.set_run(id);
        line.set_batch(first);
        *line.mutable_event() = ev;
        // An export is self-contained: RUN_STARTED gets its definition back from
        // `definitions`, where the journal keeps it once.
        if (ev.has_run_started() && !ev.run_started().has_definition()) {
          auto& digest = ev.run_started().definition_digest();
          auto def = st.definition(digest);
          if (!def) {
            failure = make_error(errc::data_loss,
                                 "export: run \"" + id + "\": event " + std::to_string(ev.seq())
                                   + ": its definition " + digest + " is not in the journal: "
                                   + message_of(def.error()));
            return false;
          }
          auto* rs = line.mutable_event()->mutable_run_started();
          if (!rs->mutable_definition()->ParseFromString(*def)) {
            failure = make_error(errc::data_loss, "export: run \"" + id + "\": definition "
                                                    + digest + " is unreadable");
            return false;
          }
        }
        json.clear();
        (void) google::protobuf::util::MessageToJsonString(line, &json, opts);
        out << json << '\n';
        ++n;
      }
      return true;
    });
    if (err)
      return err;
    if (failure)
      return failure;
  }
  out.flush();
  return n;
}

namespace {

/// The runs at rest last updated at or before `before`.
caf::expected<std::vector<run_id>> at_rest_before(const store& st, time_ms before) {
  std::vector<run_id> old;
  caf::error failure;
  auto err = st.for_each_checkpoint([&](std::string_view id, std::string_view bytes) {
    auto s = summarize_checkpoint(bytes);
    if (!s) {
      failure = make_error(errc::data_loss, "archive: run \"" + std::string{id}
                                              + "\": " + message_of(s.error()));
      return false;
    }
    if (is_terminal(s->status) && s->updated <= before)
      old.emplace_back(id);
    return true;
  });
  if (err)
    return err;
  if (failure)
    return failure;
  return old;
}

} // namespace

caf::expected<archive_result> archive_runs(store& st, time_ms before, std::ostream& out,
                                           const std::function<caf::error()>& durable) {
  auto old = at_rest_before(st, before);
  if (!old)
    return old.error();
  return archive_runs(st, *old, out, durable);
}

caf::expected<archive_result> archive_runs(store& st, const std::vector<run_id>& runs,
                                           std::ostream& out,
                                           const std::function<caf::error()>& durable) {
  archive_result out_r;
  if (runs.empty())
    return out_r;
  auto n = export_jsonl(st, runs, out);
  if (!n)
    return n.error();
  out.flush();
  if (!out)
    return make_error(errc::unavailable, "archive: the archive could not be written; nothing "
                                         "was removed");
  if (durable)
    if (auto err = durable())
      return make_error(code_of(err), message_of(err) + "; nothing was removed");
  for (auto& id : runs)
    if (auto e = st.remove_run(id))
      return e;
  // Their fleet history goes with them.
  std::set<std::string> gone(runs.begin(), runs.end());
  std::vector<std::string> keys;
  caf::error bad_history;
  auto err = st.for_each_fleet_history([&](std::string_view key, std::string_view bytes) {
    auto h = decode_fleet_history(bytes);
    if (!h) {
      bad_history = h.error();
      return false;
    }
    if (gone.count(h->run) != 0)
      keys.emplace_back(key);
    return true;
  });
  if (err)
    return err;
  if (bad_history)
    return bad_history;
  if (auto e = st.remove_fleet_history(keys))
    return e;
  if (auto e = st.compact())
    return e;
  out_r.runs = runs.size();
  out_r.events = *n;
  return out_r;
}

caf::expected<archive_result> archive_runs_to_file(store& st, time_ms before,
                                                   const std::string& path) {
  auto old = at_rest_before(st, before);
  if (!old)
    return old.error();
  return archive_runs_to_file(st, *old, path);
}

caf::expected<archive_result> archive_runs_to_file(store& st, const std::vector<run_id>& runs,
                                                   const std::string& path) {
  std::ofstream out;
  if (auto err = open_for_writing(out, path, true))
    return make_error(errc::invalid_argument,
                      "archive: " + path + ": cannot write: " + message_of(err));
  return archive_runs(st, runs, out, [&]() -> caf::error {
    out.close();
    if (!out)
      return make_error(errc::unavailable, "archive: " + path + ": could not be written");
    if (auto err = sync_file(path))
      return make_error(code_of(err), "archive: " + path + ": " + message_of(err));
    return {};
  });
}

namespace {

struct imported_run {
  /// batch -> its events, in order.
  std::map<uint64_t, v1::EventBatch> batches;
  uint64_t events = 0;
  size_t first_line = 0;
};

} // namespace

caf::expected<uint64_t> import_jsonl(std::istream& in, store& st) {
  bool empty = true;
  if (auto err = st.for_each_checkpoint([&](std::string_view, std::string_view) {
        empty = false;
        return false;
      }))
    return err;
  if (!empty)
    return make_error(errc::failed_precondition,
                      "import: the journal already holds runs; import into an empty one");
  std::map<run_id, imported_run> runs;
  std::string text;
  size_t line_no = 0;
  uint64_t total = 0;
  v1::ExportedEvent line;
  while (std::getline(in, text)) {
    ++line_no;
    if (text.empty())
      continue;
    line.Clear();
    auto status = google::protobuf::util::JsonStringToMessage(text, &line);
    if (!status.ok())
      return make_error(errc::invalid_argument, "import: line " + std::to_string(line_no)
                                                  + ": not an exported event: "
                                                  + std::string{status.message()});
    if (line.run().empty() || line.batch() == 0 || !line.has_event())
      return make_error(errc::invalid_argument, "import: line " + std::to_string(line_no)
                                                  + ": needs run, batch and event");
    auto& r = runs[line.run()];
    if (r.events == 0)
      r.first_line = line_no;
    auto expected_seq = r.events + 1;
    if (line.event().seq() != expected_seq)
      return make_error(errc::invalid_argument,
                        "import: line " + std::to_string(line_no) + ": run \"" + line.run()
                          + "\": event " + std::to_string(line.event().seq()) + " where "
                          + std::to_string(expected_seq) + " was expected (gapless, from 1)");
    if (line.batch() > line.event().seq())
      return make_error(errc::invalid_argument,
                        "import: line " + std::to_string(line_no) + ": batch "
                          + std::to_string(line.batch()) + " after its event");
    *r.batches[line.batch()].add_events() = line.event();
    ++r.events;
    ++total;
  }
  // Every run checked and encoded before anything is written.
  std::vector<transition_record> records;
  for (auto& [id, r] : runs) {
    auto head = "import: run \"" + id + "\" (from line " + std::to_string(r.first_line) + ")";
    definition_ptr def;
    run_state s;
    s.id = id;
    std::vector<transition_record> mine;
    for (auto& [first, batch] : r.batches) {
      auto bytes = batch.SerializeAsString();
      auto evs = decode_events(bytes, def, [](const std::string& digest)
                                 -> caf::expected<definition_ptr> {
        return make_error(errc::not_found, "definition " + digest);
      });
      if (!evs)
        return make_error(errc::invalid_argument, head + ": " + message_of(evs.error()));
      for (auto& ev : *evs) {
        if (auto err = apply(s, ev))
          return make_error(errc::invalid_argument,
                            head + ": event " + std::to_string(ev.seq) + ": " + message_of(err));
      }
      if (!def) {
        if (!s.def)
          return make_error(errc::invalid_argument, head + ": does not start with RUN_STARTED");
        def = s.def;
        // Kept once, in `definitions` (below), as the engine writes it: RUN_STARTED names it
        // by its digest.
        for (auto& ev : *batch.mutable_events())
          if (ev.has_run_started())
            ev.mutable_run_started()->clear_definition();
        bytes = batch.SerializeAsString();
      }
      transition_record rec;
      rec.run = id;
      rec.first_seq = first;
      rec.events = std::move(bytes);
      if (mine.empty()) {
        rec.definition_digest = def->digest;
        rec.definition = def->encoded;
      }
      mine.push_back(std::move(rec));
    }
    auto cp = encode_checkpoint(s);
    for (auto& rec : mine)
      rec.checkpoint = cp;
    for (auto& rec : mine)
      records.push_back(std::move(rec));
  }
  // In chunks: one atomic batch per chunk, synced.
  std::vector<const transition_record*> chunk;
  for (size_t i = 0; i < records.size(); ++i) {
    chunk.push_back(&records[i]);
    if (chunk.size() == 4096 || i + 1 == records.size()) {
      if (auto err = st.write(chunk, true))
        return err;
      chunk.clear();
    }
  }
  return total;
}

} // namespace ferry
