#include "actors/metrics.hpp"

namespace ferry {

size_t latency_histogram::bucket_of(int64_t ns) noexcept {
  // Bucket 0 holds everything below 1 µs.
  uint64_t us4 = ns <= 0 ? 0 : static_cast<uint64_t>(ns) * sub / 1000; // 1/8 µs units
  if (us4 < sub)
    return 0;
  int msb = 63 - __builtin_clzll(us4);     // >= 3
  size_t octave = static_cast<size_t>(msb - 3);
  size_t frac = (us4 >> (msb - 3)) & (sub - 1);
  size_t b = octave * sub + frac;
  return b < buckets ? b : buckets - 1;
}

int64_t latency_histogram::upper_edge(size_t bucket) noexcept {
  size_t octave = bucket / sub;
  size_t frac = bucket % sub;
  // Bucket covers [ (sub + frac) << octave, (sub + frac + 1) << octave ) in 1/8 µs.
  uint64_t upper = (uint64_t{sub} + frac + 1) << octave;
  return static_cast<int64_t>(upper * 1000 / sub);
}

void latency_histogram::record(int64_t ns) noexcept {
  counts_[bucket_of(ns)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(ns, std::memory_order_relaxed);
}

uint64_t latency_histogram::count_at_or_below(int64_t ns) const noexcept {
  uint64_t n = 0;
  for (size_t b = 0; b < buckets && upper_edge(b) <= ns; ++b)
    n += counts_[b].load(std::memory_order_relaxed);
  return n;
}

void duration_histogram::record(uint64_t ms) noexcept {
  for (size_t i = 0; i < bounds; ++i)
    if (ms <= upper_ms[i]) {
      counts_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ms_.fetch_add(ms, std::memory_order_relaxed);
}

uint64_t duration_histogram::count_at_or_below(size_t i) const noexcept {
  uint64_t n = 0;
  for (size_t b = 0; b <= i && b < bounds; ++b)
    n += counts_[b].load(std::memory_order_relaxed);
  return n;
}

int64_t latency_histogram::quantile(double q) const noexcept {
  uint64_t total = 0;
  for (auto& c : counts_)
    total += c.load(std::memory_order_relaxed);
  if (total == 0)
    return 0;
  auto rank = static_cast<uint64_t>(q * static_cast<double>(total));
  if (rank >= total)
    rank = total - 1;
  uint64_t seen = 0;
  for (size_t b = 0; b < buckets; ++b) {
    seen += counts_[b].load(std::memory_order_relaxed);
    if (seen > rank)
      return upper_edge(b);
  }
  return upper_edge(buckets - 1);
}

void latency_histogram::reset() noexcept {
  for (auto& c : counts_)
    c.store(0, std::memory_order_relaxed);
  count_.store(0, std::memory_order_relaxed);
  sum_.store(0, std::memory_order_relaxed);
}

} // namespace ferry
