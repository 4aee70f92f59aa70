// The live-migration model: how many passes a pre-copy makes, how long the VM pauses and how
// long the whole copy takes, from memory size, dirty rate and bandwidth; and post-copy (switch
// first, pull memory after). Pure and deterministic: no clock, no threads, no I/O. The zone's
// admission control estimates with estimate_precopy()/estimate_postcopy(); the fleet
// simulator drives a precopy_job with the bandwidth its links give at each moment, so the
// estimate and the simulation share one arithmetic. Any thread; a precopy_job belongs to its
// caller.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hypervisor/driver.hpp"

namespace ferry::hv {

struct precopy_input {
  /// Guest memory to copy, bytes. Default: 0
  uint64_t memory_bytes = 0;
  /// Rate at which the running guest dirties memory, bytes/s. Default: 0
  double dirty_bytes_s = 0;
  /// Bandwidth of the copy, bytes/s (read by the estimate functions; a precopy_job is given
  /// the bandwidth at each step instead). Default: 0
  double bandwidth_bytes_s = 0;
  /// The longest acceptable pause at switch-over. Default: 300
  uint32_t max_downtime_ms = 300;
  /// Live passes before a pre-copy gives up. Default: 30
  uint32_t max_iterations = 30;
  /// The longest acceptable total duration, seconds; 0: none (checked by the estimate
  /// functions only). Default: 0
  double time_budget_s = 0;
  /// Pause to copy device state and switch hosts, beyond the last memory copy. Default: 20
  uint32_t switch_overhead_ms = 20;
  /// Local disk bytes copied with the memory (copy_storage): before the memory passes in a
  /// pre-copy, pulled after the switch with the memory in a post-copy. Default: 0
  uint64_t storage_bytes = 0;
};

struct precopy_estimate {
  bool converges = false;
  /// Why it does not converge, for example "dirty rate 800 MiB/s is at or above the bandwidth
  /// 500 MiB/s", "30 iterations without reaching the 300 ms downtime" or "estimated 812 s
  /// exceeds the time budget 600 s". Empty when it converges.
  std::string reason;
  /// Live memory passes (1 = the first full pass); 0 for a post-copy.
  uint32_t iterations = 0;
  /// Bytes sent: storage, every pass, the final stop-and-copy (or the post-copy pull).
  uint64_t transferred_bytes = 0;
  /// Pause of the guest: the stop-and-copy plus the switch overhead.
  uint64_t downtime_ms = 0;
  /// From the first byte to the end (to the give-up point when it does not converge).
  uint64_t duration_ms = 0;
};

/// Pre-copy at a constant bandwidth: pass 1 copies all memory, pass i copies what the guest
/// dirtied during pass i-1 (min(memory, dirty rate x its duration)); it stops and copies the
/// rest when that fits in max_downtime_ms. Downtime = remaining / bandwidth + switch overhead.
/// A dirty rate at or above the bandwidth, max_iterations passes without reaching the
/// downtime, or a duration beyond time_budget_s do not converge.
precopy_estimate estimate_precopy(const precopy_input& in);

/// Post-copy at a constant bandwidth: the VM switches to the destination after the device
/// state (downtime = switch overhead), then memory and storage are pulled in the background
/// (duration = switch + bytes / bandwidth). Converges whatever the dirty rate, unless the
/// time budget is exceeded.
precopy_estimate estimate_postcopy(const precopy_input& in);

/// Something a precopy_job reached while advancing.
struct precopy_event {
  enum class kind : uint8_t {
    /// A live pass ended (`iteration`).
    iteration_finished,
    /// Post-copy: the guest now runs on the destination; memory is pulled from here on.
    switched,
    /// The copy is complete and the guest runs on the destination; the job is finished.
    converged,
    /// The job gave up; result().reason says why. The guest still runs on the source.
    not_converging,
  };
  kind what = kind::iteration_finished;
  uint32_t iteration = 0;
  /// Job time at which it happened, seconds.
  double at_s = 0;
  /// The job's progress at that moment.
  job_progress progress;
};

/// One migration's copy, stepped by its owner with the bandwidth of each moment (the
/// simulator's fluid model). The bandwidth measured over a pass (its bytes / its duration)
/// decides whether the rest fits in the downtime, as a hypervisor does.
class precopy_job {
public:
  precopy_job(const precopy_input& in, migration_mode mode);

  /// Runs the job for `seconds` at `bandwidth_bytes_s` and returns what happened, in order.
  /// Zero seconds still completes phases that have nothing left to do.
  std::vector<precopy_event> advance(double seconds, double bandwidth_bytes_s);

  /// Seconds until the next event at `bandwidth_bytes_s`; infinity when none can happen
  /// (finished, or no bandwidth for a phase that sends bytes).
  double time_to_next_event(double bandwidth_bytes_s) const;

  bool finished() const noexcept {
    return phase_ == phase::done || phase_ == phase::failed;
  }

  /// Post-copy only: the guest runs on the destination.
  bool switched() const noexcept {
    return switched_;
  }

  /// The figures so far; final (with converges and reason) once finished().
  precopy_estimate result() const;

  /// Progress as a driver reports it.
  job_progress progress() const;

  migration_mode mode() const noexcept {
    return mode_;
  }

private:
  enum class phase : uint8_t { storage, pass, stop_copy, switch_over, pull, done, failed };

  /// Switch-over is measured in seconds; every other phase in bytes.
  bool timed() const noexcept {
    return phase_ == phase::switch_over;
  }
  void enter(phase p, double left);
  void end_phase(std::vector<precopy_event>& out, double bandwidth_bytes_s);
  void spend(double seconds, double amount);
  void stop(bool converged, std::string reason, std::vector<precopy_event>& out);

  precopy_input in_;
  migration_mode mode_;
  phase phase_ = phase::storage;
  /// What the current phase has left: bytes, or seconds for the switch-over.
  double left_ = 0;
  /// The current pass: its bytes and its duration so far.
  double pass_bytes_ = 0;
  double pass_s_ = 0;
  double elapsed_s_ = 0;
  double downtime_s_ = 0;
  double sent_ = 0;
  uint32_t iteration_ = 0;
  bool switched_ = false;
  bool converged_ = false;
  std::string reason_;
};

/// "800" or "12.5": a figure for messages (integer when within 0.05 of one or at least 100).
std::string format_figure(double x);

} // namespace ferry::hv
