// The scheduler actor: runs batches (templates/batch.hpp). Items become runs of the engine
// ("<batch>.<vm>") in order — waves, then dependencies, then priority — when every limit
// allows (global, per host out and in, per zone, per storage partition, per inter-zone
// link bandwidth), choosing a target host within the limits and the free capacity when the
// item names none. Outside the maintenance windows an admitted run waits in SCHEDULED for
// the next one. A batch is kept in the journal before its first run starts; after a restart
// the scheduler looks its runs up and goes on where it was.
#pragma once

#include <functional>
#include <memory>

#include <caf/fwd.hpp>

#include "actors/actors.hpp"
#include "actors/fleet_actors.hpp"
#include "common/clock.hpp"
#include "workflows/definition.hpp"

namespace ferry {

class template_registry;

struct scheduler_env {
  engine_actor engine;
  journal_actor journal;
  /// nullptr: no fleet (items then need no placement; limits by host and zone do not apply).
  fleet_handles_ptr fleet;
  const template_registry* templates = nullptr;
  const kind_catalog* kinds = nullptr;
  std::function<time_ms()> now = wall_now_ms;
};

scheduler_actor spawn_scheduler(caf::actor_system& sys, std::shared_ptr<const scheduler_env> env);

} // namespace ferry
