// engine_metrics — counters and histograms an engine keeps while it runs, read by benchmarks,
// `ferry run`'s summary and ferryd's Prometheus endpoint. Lock-free: any thread records, any
// thread reads.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ferry {

/// A histogram of durations in nanoseconds, log-linear (8 buckets per power of two, about
/// 9% resolution) from 1 µs to about 70 s.
class latency_histogram {
public:
  static constexpr size_t sub = 8;
  static constexpr size_t octaves = 27;
  static constexpr size_t buckets = sub * octaves;

  void record(int64_t ns) noexcept;

  /// The value below which a fraction `q` (0..1) of the samples fall, in ns (upper edge of
  /// its bucket); 0 when empty.
  int64_t quantile(double q) const noexcept;

  uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

  /// Samples of at most `ns` (those whose bucket ends at or below it), for cumulative
  /// exposition (Prometheus buckets).
  uint64_t count_at_or_below(int64_t ns) const noexcept;

  /// Sum of the samples, in ns.
  int64_t sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

  void reset() noexcept;

private:
  static size_t bucket_of(int64_t ns) noexcept;
  static int64_t upper_edge(size_t bucket) noexcept;

  std::array<std::atomic<uint64_t>, buckets> counts_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> sum_{0};
};

/// A histogram of durations with fixed upper bounds in ms (Prometheus style), for what runs
/// for seconds to hours: migrations and their downtime.
class duration_histogram {
public:
  static constexpr size_t bounds = 16;
  /// Upper bounds, in ms: 10 ms .. 1 h.
  static constexpr std::array<uint64_t, bounds> upper_ms{
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000, 900000,
    3600000};

  void record(uint64_t ms) noexcept;
  /// Samples of at most upper_ms[i].
  uint64_t count_at_or_below(size_t i) const noexcept;
  uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  uint64_t sum_ms() const noexcept { return sum_ms_.load(std::memory_order_relaxed); }

private:
  std::array<std::atomic<uint64_t>, bounds> counts_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ms_{0};
};

struct engine_metrics {
  /// Transitions made durable.
  std::atomic<uint64_t> transitions{0};
  /// Events made durable.
  std::atomic<uint64_t> events{0};
  /// Runs that reached SUCCEEDED, ROLLED_BACK, FAILED or ABORTED.
  std::atomic<uint64_t> runs_succeeded{0};
  std::atomic<uint64_t> runs_rolled_back{0};
  std::atomic<uint64_t> runs_failed{0};
  std::atomic<uint64_t> runs_aborted{0};
  /// Attempts handed to executors.
  std::atomic<uint64_t> dispatches{0};
  /// From a run sending a transition to the journal until it is durable and its
  /// acknowledgement sent (recorded by the journal).
  latency_histogram commit_latency;
  /// From a run sending a transition until the run handles the acknowledgement: the commit
  /// plus the wait for a scheduler thread.
  latency_histogram ack_latency;
  /// From a run having a transition to send to its getting a slot of the commit window.
  latency_histogram window_wait;
  /// Migrations that vm.migrate completed: how long each took and the guest's pause at the
  /// switch-over, as the hypervisor reported them.
  duration_histogram migration_duration;
  duration_histogram migration_downtime;
};

} // namespace ferry
