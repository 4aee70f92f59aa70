// The engine actor: the front door. It names and starts runs, keeps a summary of every run
// in the journal (for list()), forwards operator actions and watches to the runs' actors,
// answers for runs at rest from their checkpoints, and registers the runs engine::open read
// back (and resumed). Runs on CAF's scheduler.
#pragma once

#include <memory>

#include <caf/fwd.hpp>

#include "actors/migration.hpp"

namespace ferry {

/// Spawns the engine and completes `env` with its handle, before any run starts.
engine_actor spawn_engine(caf::actor_system& sys, std::shared_ptr<migration_env> env,
                          std::shared_ptr<const store> st, uint64_t id_seed);

} // namespace ferry
