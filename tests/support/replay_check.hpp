// The journal's two records of a run agree: replaying its events rebuilds its checkpoint.
#pragma once

#include <catch2/catch.hpp>

#include "persistence/journal_reader.hpp"

namespace ferry::test {

/// Requires the run's checkpoint and its replay, checks that they are the same state, and
/// returns the checkpoint.
inline run_state replays_to_checkpoint(const journal_reader& reader, const run_id& id) {
  INFO("run " << id);
  auto checkpoint = reader.checkpoint(id);
  auto replayed = reader.replay(id);
  REQUIRE(checkpoint);
  REQUIRE(replayed);
  CHECK(diff(*checkpoint, *replayed).empty());
  return std::move(*checkpoint);
}

} // namespace ferry::test
