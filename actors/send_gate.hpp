// ferry::send_gate — whether the engine still takes the answers of the calls it made.
// Answers come back on threads outside the engine's actor system: a driver's, the
// simulator's (whose world an embedding application may keep after the engine closed), the
// drivers' deadline timer. One that arrived after engine::close() sent into an actor system
// that was gone, and recorded metrics in memory that was freed. Such callbacks pass through
// the gate, which close() shuts (waiting for any inside) before anything is torn down; a
// callback that finds it shut does nothing: its run resumes from the journal on the next
// open, and the task is handed out again under the same idempotency key.
#pragma once

#include <memory>
#include <mutex>
#include <shared_mutex>

namespace ferry {

class send_gate {
public:
  /// Runs `f` unless the gate is shut; returns whether it ran. `f` must not wait for the gate
  /// (it runs while a close would wait for it).
  template <class F>
  bool pass(F&& f) {
    std::shared_lock<std::shared_mutex> lock{mtx_};
    if (shut_)
      return false;
    f();
    return true;
  }

  /// From now on nothing passes; returns once no callback is inside.
  void shut() {
    std::unique_lock<std::shared_mutex> lock{mtx_};
    shut_ = true;
  }

private:
  std::shared_mutex mtx_;
  bool shut_ = false;
};

using send_gate_ptr = std::shared_ptr<send_gate>;

} // namespace ferry
