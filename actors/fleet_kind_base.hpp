// The base of the task kinds that act on the fleet (fleet_kinds.cpp, migration_kinds.cpp):
// the actor system (vm.migrate and placement spawn a one-shot actor per call, whose requests
// carry the attempt's deadline), the fleet's handles (with the caller actor the single
// requests go out from) and the kind's spec.
#pragma once

#include "actors/executor.hpp"
#include "actors/fleet_actors.hpp"

namespace ferry {

class fleet_kind_base : public task_executor {
public:
  fleet_kind_base(caf::actor_system& sys, fleet_handles_ptr fleet, kind_spec spec)
    : sys_(sys), fleet_(std::move(fleet)), spec_(std::move(spec)) {
  }
  kind_spec spec() const override {
    return spec_;
  }

protected:
  const fleet::model& model() const {
    return *fleet_->model;
  }

  caf::actor_system& sys_;
  fleet_handles_ptr fleet_;
  kind_spec spec_;
};

} // namespace ferry
