#include "hypervisor/precopy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace ferry::hv {

namespace {

constexpr double mib = 1024.0 * 1024.0;
constexpr double infinity = std::numeric_limits<double>::infinity();

// A phase whose remainder is below these is complete: the simulator rounds step lengths to
// microseconds, so a step may fall short of a phase's end by a rounding error.
constexpr double byte_tolerance = 1e-3;
constexpr double second_tolerance = 1e-9;

uint64_t to_ms(double seconds) {
  return static_cast<uint64_t>(std::llround(seconds * 1000.0));
}

// Runs `job` to its end at a constant bandwidth, then applies the time budget.
precopy_estimate run_constant(precopy_job job, const precopy_input& in) {
  auto bw = in.bandwidth_bytes_s;
  if (!(bw > 0)) {
    precopy_estimate e;
    e.reason = "bandwidth " + format_figure(bw / mib) + " MiB/s cannot move memory";
    return e;
  }
  while (!job.finished())
    job.advance(job.time_to_next_event(bw), bw);
  auto e = job.result();
  if (e.converges && in.time_budget_s > 0 && e.duration_ms > in.time_budget_s * 1000.0) {
    e.converges = false;
    e.reason = "estimated " + format_figure(e.duration_ms / 1000.0)
               + " s exceeds the time budget " + format_figure(in.time_budget_s) + " s";
  }
  return e;
}

} // namespace

std::string format_figure(double x) {
  char buf[64];
  auto r = std::round(x);
  if (std::fabs(x - r) < 0.05 || std::fabs(x) >= 100)
    std::snprintf(buf, sizeof(buf), "%.0f", r);
  else
    std::snprintf(buf, sizeof(buf), "%.1f", x);
  return buf;
}

precopy_estimate estimate_precopy(const precopy_input& in) {
  return run_constant(precopy_job{in, migration_mode::precopy}, in);
}

precopy_estimate estimate_postcopy(const precopy_input& in) {
  return run_constant(precopy_job{in, migration_mode::postcopy}, in);
}

precopy_job::precopy_job(const precopy_input& in, migration_mode mode) : in_(in), mode_(mode) {
  if (mode_ == migration_mode::precopy)
    enter(phase::storage, static_cast<double>(in_.storage_bytes));
  else
    enter(phase::switch_over, in_.switch_overhead_ms / 1000.0);
}

void precopy_job::enter(phase p, double left) {
  phase_ = p;
  left_ = std::max(0.0, left);
  if (p == phase::pass) {
    ++iteration_;
    pass_bytes_ = left_;
    pass_s_ = 0;
  }
}

void precopy_job::spend(double seconds, double amount) {
  elapsed_s_ += seconds;
  switch (phase_) {
    case phase::pass:
      pass_s_ += seconds;
      sent_ += amount;
      break;
    case phase::stop_copy:
      downtime_s_ += seconds;
      sent_ += amount;
      break;
    case phase::switch_over:
      downtime_s_ += seconds;
      break;
    case phase::storage:
    case phase::pull:
      sent_ += amount;
      break;
    case phase::done:
    case phase::failed:
      break;
  }
}

std::vector<precopy_event> precopy_job::advance(double seconds, double bandwidth_bytes_s) {
  std::vector<precopy_event> out;
  seconds = std::max(0.0, seconds);
  while (!finished()) {
    if (left_ <= (timed() ? second_tolerance : byte_tolerance)) {
      end_phase(out, bandwidth_bytes_s);
      continue;
    }
    if (seconds <= 0)
      break;
    double rate = timed() ? 1.0 : bandwidth_bytes_s;
    if (!(rate > 0)) {
      spend(seconds, 0);
      break;
    }
    double need = left_ / rate;
    if (need <= seconds) {
      spend(need, timed() ? 0 : left_);
      seconds -= need;
      left_ = 0;
    } else {
      spend(seconds, timed() ? 0 : seconds * rate);
      left_ -= seconds * rate;
      seconds = 0;
    }
  }
  return out;
}

double precopy_job::time_to_next_event(double bandwidth_bytes_s) const {
  if (finished())
    return infinity;
  if (left_ <= (timed() ? second_tolerance : byte_tolerance))
    return 0;
  if (timed())
    return left_;
  if (!(bandwidth_bytes_s > 0))
    return infinity;
  return left_ / bandwidth_bytes_s;
}

void precopy_job::end_phase(std::vector<precopy_event>& out, double bandwidth_bytes_s) {
  auto memory = static_cast<double>(in_.memory_bytes);
  switch (phase_) {
    case phase::storage:
      enter(phase::pass, memory);
      return;
    case phase::pass: {
      out.push_back({precopy_event::kind::iteration_finished, iteration_, elapsed_s_, progress()});
      auto dirty_rate = std::max(0.0, in_.dirty_bytes_s);
      auto dirtied = std::min(memory, dirty_rate * pass_s_);
      auto measured = pass_s_ > 0 ? pass_bytes_ / pass_s_ : bandwidth_bytes_s;
      if (dirty_rate > 0 && dirty_rate >= measured) {
        stop(false,
             "dirty rate " + format_figure(dirty_rate / mib) + " MiB/s is at or above the bandwidth "
               + format_figure(measured / mib) + " MiB/s",
             out);
      } else if (dirtied <= 0 || dirtied / measured <= in_.max_downtime_ms / 1000.0) {
        enter(phase::stop_copy, dirtied);
      } else if (iteration_ >= in_.max_iterations) {
        stop(false,
             std::to_string(iteration_) + " iterations without reaching the "
               + std::to_string(in_.max_downtime_ms) + " ms downtime",
             out);
      } else {
        enter(phase::pass, dirtied);
      }
      return;
    }
    case phase::stop_copy:
      enter(phase::switch_over, in_.switch_overhead_ms / 1000.0);
      return;
    case phase::switch_over:
      if (mode_ == migration_mode::precopy) {
        stop(true, {}, out);
      } else {
        switched_ = true;
        out.push_back({precopy_event::kind::switched, iteration_, elapsed_s_, progress()});
        enter(phase::pull, memory + static_cast<double>(in_.storage_bytes));
      }
      return;
    case phase::pull:
      stop(true, {}, out);
      return;
    case phase::done:
    case phase::failed:
      return;
  }
}

void precopy_job::stop(bool converged, std::string reason, std::vector<precopy_event>& out) {
  converged_ = converged;
  reason_ = std::move(reason);
  phase_ = converged ? phase::done : phase::failed;
  left_ = 0;
  out.push_back({converged ? precopy_event::kind::converged
                           : precopy_event::kind::not_converging,
                 iteration_, elapsed_s_, progress()});
}

precopy_estimate precopy_job::result() const {
  precopy_estimate e;
  e.converges = converged_;
  e.reason = reason_;
  e.iterations = iteration_;
  e.transferred_bytes = static_cast<uint64_t>(std::llround(sent_));
  e.downtime_ms = to_ms(downtime_s_);
  e.duration_ms = to_ms(elapsed_s_);
  return e;
}

job_progress precopy_job::progress() const {
  job_progress p;
  double remaining = timed() ? 0 : left_;
  if (phase_ == phase::storage)
    remaining += static_cast<double>(in_.memory_bytes);
  if (phase_ == phase::switch_over && mode_ == migration_mode::postcopy)
    remaining = static_cast<double>(in_.memory_bytes + in_.storage_bytes);
  p.processed_bytes = static_cast<uint64_t>(std::llround(sent_));
  p.remaining_bytes = static_cast<uint64_t>(std::llround(remaining));
  p.total_bytes = p.processed_bytes + p.remaining_bytes;
  p.iteration = iteration_;
  p.dirty_bytes_s = static_cast<uint64_t>(std::llround(std::max(0.0, in_.dirty_bytes_s)));
  p.elapsed_ms = to_ms(elapsed_s_);
  return p;
}

} // namespace ferry::hv
