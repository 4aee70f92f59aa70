// journal_reader — a recovery tool built on ferry::journal_reader (the C++ API behind
// `ferry journal`). It opens a journal read-only (safe beside a live engine), lists every run,
// prints each run's timeline (time, event, task, attempt, outcome), rebuilds each run's state
// from its events alone through the engine's own apply() and compares it with the run's
// checkpoint, then shows the state of each run halfway through its events (point-in-time
// replay). Exit status 0 when every run replays to its checkpoint; 1 otherwise (or when the
// journal holds no run).
//   example_journal_reader JOURNAL_DIR
#include <cstdio>

#include "persistence/journal_reader.hpp"

using namespace ferry;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: example_journal_reader JOURNAL_DIR\n");
    return 1;
  }
  auto reader = journal_reader::open(argv[1]);
  if (!reader) {
    std::fprintf(stderr, "%s\n", describe(reader.error()).c_str());
    return 1;
  }
  auto runs = reader->list_runs();
  if (!runs) {
    std::fprintf(stderr, "%s\n", describe(runs.error()).c_str());
    return 1;
  }
  if (runs->empty()) {
    std::fprintf(stderr, "%s: the journal holds no run\n", argv[1]);
    return 1;
  }
  int rc = 0;
  for (auto& summary : *runs) {
    std::printf("run %s (%s): %s, %llu events\n", summary.id.c_str(),
                summary.definition_name.c_str(), to_string(summary.status),
                static_cast<unsigned long long>(summary.last_seq));
    auto checkpoint = reader->checkpoint(summary.id);
    if (!checkpoint) {
      std::fprintf(stderr, "  %s\n", describe(checkpoint.error()).c_str());
      rc = 1;
      continue;
    }
    auto& def = *checkpoint->def;
    time_ms origin = 0;
    auto err = reader->for_each_event(
      summary.id, 1,
      [&](const event& e) {
        if (origin == 0)
          origin = e.at;
        auto task = e.task < def.tasks.size() ? def.tasks[e.task].id.c_str() : "";
        std::printf("  %4llu  +%5lldms  %-22s %-16s", static_cast<unsigned long long>(e.seq),
                    static_cast<long long>(e.at - origin), to_string(e.type), task);
        if (e.attempt > 0)
          std::printf(" attempt %u", e.attempt);
        if (!e.message.empty())
          std::printf("  %s", e.message.c_str());
        std::printf("\n");
        return true;
      },
      checkpoint->def);
    if (err) {
      std::fprintf(stderr, "  %s\n", describe(err).c_str());
      rc = 1;
      continue;
    }
    // The events alone give the checkpoint's state.
    auto replayed = reader->replay(summary.id);
    if (!replayed) {
      std::fprintf(stderr, "  replay: %s\n", describe(replayed.error()).c_str());
      rc = 1;
      continue;
    }
    if (auto d = diff(*checkpoint, *replayed); !d.empty()) {
      std::fprintf(stderr, "  the replay differs from the checkpoint: %s\n", d.c_str());
      rc = 1;
      continue;
    }
    // Point in time: where the run stood halfway.
    auto half = reader->replay(summary.id, summary.last_seq / 2);
    if (half) {
      size_t done = 0;
      for (auto& t : half->tasks)
        done += t.status == task_status::succeeded ? 1 : 0;
      std::printf("  at event %llu: %s, %zu of %zu tasks succeeded\n",
                  static_cast<unsigned long long>(half->seq), to_string(half->status), done,
                  half->tasks.size());
    }
    std::printf("  replays to its checkpoint\n");
  }
  return rc;
}
