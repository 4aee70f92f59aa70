#include "persistence/journal_reader.hpp"

#include "common/errc.hpp"
#include "workflows/apply.hpp"
#include "workflows/definition_codec.hpp"

namespace ferry {

caf::expected<journal_reader> journal_reader::open(const std::string& path) {
  rocksdb_store_options opts;
  opts.read_only = true;
  opts.create_if_missing = false;
  auto st = open_rocksdb_store(path, opts);
  if (!st)
    return st.error();
  return journal_reader{std::shared_ptr<const store>{std::move(*st)}};
}

journal_reader::journal_reader(std::shared_ptr<const store> st) : store_(std::move(st)) {
}

caf::expected<std::vector<checkpoint_summary>> journal_reader::list_runs() const {
  std::vector<checkpoint_summary> result;
  caf::error failure;
  auto err = store_->for_each_checkpoint([&](std::string_view, std::string_view bytes) {
    auto s = summarize_checkpoint(bytes);
    if (!s) {
      failure = s.error();
      return false;
    }
    result.push_back(std::move(*s));
    return true;
  });
  if (err)
    return err;
  if (failure)
    return failure;
  return result;
}

caf::expected<definition_ptr> journal_reader::definition(const std::string& digest) const {
  auto i = definitions_.find(digest);
  if (i != definitions_.end())
    return i->second;
  auto bytes = store_->definition(digest);
  if (!bytes)
    return bytes.error();
  auto def = decode_definition(*bytes);
  if (!def)
    return def.error();
  definitions_.emplace(digest, *def);
  return *def;
}

caf::error journal_reader::for_each_event(const run_id& run, uint64_t from_seq,
                                          const std::function<bool(const event&)>& f,
                                          definition_ptr def) const {
  if (def)
    definitions_.emplace(def->digest, def);
  else if (from_seq > 1) {
    auto cp = store_->checkpoint(run);
    if (cp) {
      if (auto sum = summarize_checkpoint(*cp)) {
        auto d = definition(sum->definition_digest);
        if (d)
          def = *d;
      }
    }
  }
  auto lookup = [this](const std::string& digest) { return definition(digest); };
  caf::error failure;
  bool any = false;
  auto err = store_->for_each_event_batch(run, from_seq, [&](uint64_t, std::string_view bytes) {
    any = true;
    auto evs = decode_events(bytes, def, lookup);
    if (!evs) {
      failure = make_error(code_of(evs.error()), "run " + run + ": " + message_of(evs.error()));
      return false;
    }
    for (auto& e : *evs) {
      if (e.type == event_type::run_started)
        def = e.def;
      if (e.seq < from_seq)
        continue;
      if (!f(e))
        return false;
    }
    return true;
  });
  if (err)
    return err;
  if (failure)
    return failure;
  if (!any && !store_->checkpoint(run))
    return make_error(errc::not_found, "run " + run + ": not in the journal");
  return {};
}

caf::expected<bool> journal_reader::has_run(const run_id& run) const {
  auto cp = store_->checkpoint(run);
  if (cp)
    return true;
  if (code_of(cp.error()) != errc::not_found)
    return cp.error();
  bool any = false;
  auto err = store_->for_each_event_batch(run, 1, [&](uint64_t, std::string_view) {
    any = true;
    return false;
  });
  if (err)
    return err;
  return any;
}

caf::expected<std::vector<event>> journal_reader::events(const run_id& run, uint64_t from_seq,
                                                         uint64_t until_seq,
                                                         definition_ptr def) const {
  std::vector<event> result;
  auto err = for_each_event(
    run, from_seq,
    [&](const event& e) {
      if (e.seq > until_seq)
        return false;
      result.push_back(e);
      return true;
    },
    std::move(def));
  if (err)
    return err;
  return result;
}

caf::expected<run_state> journal_reader::checkpoint(const run_id& run) const {
  auto bytes = store_->checkpoint(run);
  if (!bytes)
    return bytes.error();
  return decode_checkpoint(*bytes, [this](const std::string& d) { return definition(d); });
}

caf::expected<run_state> journal_reader::replay(const run_id& run, uint64_t until_seq) const {
  run_state s;
  s.id = run;
  caf::error failure;
  auto err = for_each_event(run, 1, [&](const event& e) {
    if (e.seq > until_seq)
      return false;
    if (auto e2 = apply(s, e)) {
      failure = make_error(errc::data_loss, "run " + run + ": " + message_of(e2));
      return false;
    }
    return true;
  });
  if (err)
    return err;
  if (failure)
    return failure;
  return s;
}

} // namespace ferry
