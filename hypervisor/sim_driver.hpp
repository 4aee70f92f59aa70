// The sim driver: ferry::hv::driver for one host of a sim_world ("sim://<zone>/<host>").
// It owns nothing but its URI and a weak reference to the shared world, which whoever made it
// keeps (the fleet runtime, or the application): once the world is gone, calls fail
// unavailable. A call made on the world's own thread (an answer chaining another call) takes
// no reference at all, so the world is never destroyed on the thread its destructor joins.
// The world owns the host's domains, its clock and its faults. Calls return at once; replies
// come from the world's thread (scaled real time) or from the thread that advances the manual
// clock, each wrapped with with_deadline(): deadlines are real time (the engine's),
// operation durations virtual.
// Idempotent by the world's state: define of an existing domain, start of a running one,
// destroy of an absent one and migrate of a domain already on the destination succeed.
#pragma once

#include <memory>
#include <string>

#include "hypervisor/driver.hpp"
#include "hypervisor/sim_world.hpp"

namespace ferry::hv {

/// A driver for the host `uri` of `world`. Calls on a host the world does not know fail
/// not_found.
driver_ptr make_sim_driver(std::shared_ptr<sim_world> world, const std::string& uri);

} // namespace ferry::hv
