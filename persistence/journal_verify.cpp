#include "persistence/journal_verify.hpp"

#include "common/errc.hpp"
#include "persistence/journal_reader.hpp"
#include "workflows/apply.hpp"

namespace ferry {

namespace {

/// The first problem of one run, or empty.
std::string verify_run(const journal_reader& reader, const run_id& id, uint64_t& events) {
  auto cp = reader.checkpoint(id);
  if (!cp)
    return "run " + id + ": checkpoint: " + describe(cp.error());
  run_state s;
  s.id = id;
  uint64_t expected = 1;
  uint64_t terminal_seq = 0;
  std::vector<bool> started(cp->def ? cp->def->tasks.size() : 0, false);
  std::string problem;
  auto err = reader.for_each_event(
    id, 1,
    [&](const event& e) {
      ++events;
      auto at = "run " + id + ": event " + std::to_string(e.seq);
      if (e.seq != expected) {
        problem = "run " + id + ": event " + std::to_string(e.seq) + " where "
                  + std::to_string(expected) + " was expected (events must be gapless)";
        return false;
      }
      ++expected;
      if (e.seq == 1 && e.type != event_type::run_started) {
        problem = at + ": the first event is " + to_string(e.type) + ", not RUN_STARTED";
        return false;
      }
      if (terminal_seq != 0) {
        problem = at + " (" + to_string(e.type) + ") after the terminal event "
                  + std::to_string(terminal_seq);
        return false;
      }
      if (e.task < started.size()) {
        if (e.type == event_type::task_started)
          started[e.task] = true;
        if (e.type == event_type::task_compensating && !started[e.task]) {
          problem = at + ": compensation of task \"" + cp->def->tasks[e.task].id
                    + "\", which never started";
          return false;
        }
      }
      if (auto ae = apply(s, e)) {
        problem = at + ": does not apply: " + message_of(ae);
        return false;
      }
      if (e.type == event_type::run_succeeded || e.type == event_type::run_rolled_back
          || e.type == event_type::run_aborted)
        terminal_seq = e.seq;
      return true;
    },
    cp->def);
  if (err)
    return "run " + id + ": events: " + describe(err);
  if (!problem.empty())
    return problem;
  if (auto d = diff(*cp, s); !d.empty())
    return "run " + id + ": the checkpoint and the replayed events differ: " + d;
  return {};
}

} // namespace

caf::expected<verify_report> verify_journal(const journal_reader& reader,
                                            const std::vector<run_id>& runs,
                                            size_t max_problems) {
  verify_report out;
  std::vector<run_id> ids = runs;
  // A run named that the journal has nothing of (no checkpoint, no event) is a mistake in the
  // request, not a problem of the journal: refused before anything is verified.
  for (auto& id : runs) {
    auto has = reader.has_run(id);
    if (!has)
      return has.error();
    if (!*has)
      return make_error(errc::not_found, "run " + id + ": not in the journal");
  }
  if (ids.empty()) {
    auto all = reader.list_runs();
    if (!all)
      return all.error();
    for (auto& r : *all)
      ids.push_back(r.id);
  }
  for (auto& id : ids) {
    ++out.runs;
    auto p = verify_run(reader, id, out.events);
    if (!p.empty()) {
      out.problems.push_back(std::move(p));
      if (max_problems != 0 && out.problems.size() >= max_problems)
        break;
    }
  }
  return out;
}

} // namespace ferry
