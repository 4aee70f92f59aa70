// The base of the task kinds that act on the fleet (fleet_kinds.cpp, migration_kinds.cpp):
// the actor system (vm.migrate and placement spawn a one-shot actor per call, whose requests
// carry the attempt's deadline), the fleet's handles (with the caller actor the single
// requests go out from) and the kind's spec; the lookup of a host's driver; and fleet_ask,
// one request from the caller actor whose answer completes the task.
#pragma once

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/executor.hpp"
#include "actors/fleet_actors.hpp"
#include "common/errc.hpp"

namespace ferry {

/// Sends one request from the fleet's caller actor and reports its answer through `done`.
/// No timeout of its own: the attempt's deadline is kept by the run (an answer after it is
/// stale there), and a fleet actor answers every request (one that is gone, at once).
template <class R, class Handle, class F, class... Ts>
void fleet_ask(const fleet_handles& fleet, completion done, Handle h, F on_reply, Ts... xs) {
  caller_job job{[=](caf::event_based_actor* self) {
    self->request(caf::actor_cast<caf::actor>(h), caf::infinite, xs...)
      .then([=](R& r) { done(on_reply(r)); },
            [=](caf::error& err) { done(failure_from(err)); });
  }};
  caf::anon_send(fleet.caller, std::move(job));
}

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

  /// Host index of `name`; reports not_found through `done` when absent (or without a
  /// driver).
  fleet::index host_index(const std::string& name, completion& done) const {
    auto h = model().find_host(name);
    if (h != fleet::npos && h < fleet_->drivers.size() && fleet_->drivers[h])
      return h;
    done(task_result::failure(errc::not_found, "host \"" + name + "\" is not in the fleet",
                              false));
    return fleet::npos;
  }
  /// The driver of host `name`; reports not_found through `done` when absent.
  hv::driver_ptr driver(const std::string& name, completion& done) const {
    auto h = host_index(name, done);
    return h == fleet::npos ? nullptr : fleet_->drivers[h];
  }

  caf::actor_system& sys_;
  fleet_handles_ptr fleet_;
  kind_spec spec_;
};

} // namespace ferry
