// A workflow definition as the engine runs it: tasks with resolved dependency indices,
// effective retry policies and timeouts, and the precomputed orders the scheduler needs.
// Built once by validate() and then shared, immutable, by every run pinned to it
// (std::shared_ptr<const definition>); any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "workflows/value.hpp"

namespace ferry {

/// A retry policy as written: unset fields are taken from the definition's default policy,
/// then from the built-in defaults.
struct retry_spec {
  std::optional<uint32_t> max_attempts;
  std::optional<uint64_t> initial_backoff_ms;
  std::optional<uint64_t> max_backoff_ms;
  std::optional<double> backoff_multiplier;
  std::optional<double> jitter;
  std::optional<uint64_t> budget_ms;
};

/// A retry policy with every field resolved.
struct retry_policy {
  /// Attempts in all, the first included. Default: 3.
  uint32_t max_attempts = 3;
  /// Delay before the second attempt. Default: 100.
  uint64_t initial_backoff_ms = 100;
  /// Cap of every delay, jitter included. Default: 10000.
  uint64_t max_backoff_ms = 10000;
  /// Growth factor between attempts. Default: 2.0.
  double backoff_multiplier = 2.0;
  /// Random fraction of each delay, in [0, 1]. Default: 0.2.
  double jitter = 0.2;
  /// Time from the first attempt after which no attempt starts; 0 = none. Default: 0.
  uint64_t budget_ms = 0;
};

struct compensation_def {
  std::string kind;
  params parameters;
  retry_spec retry_written;
  retry_policy retry;
  /// As written; 0 = the task's timeout.
  uint64_t timeout_ms_written = 0;
  /// Filled in by validate(): the deadline of each compensation attempt.
  uint64_t timeout_ms = 0;
};

struct task_def {
  std::string id;
  std::string kind;
  params parameters;
  std::vector<std::string> depends_on;
  retry_spec retry_written;
  /// 0 = the definition's default timeout.
  uint64_t timeout_ms = 0;
  std::optional<compensation_def> compensation;
  bool point_of_no_return = false;
  bool gate = false;
  std::string description;

  // Filled in by validate():
  retry_policy retry;
  uint64_t effective_timeout_ms = 0;
  std::vector<uint32_t> deps;
  std::vector<uint32_t> dependents;
  /// Every task that depends on this one, directly or not.
  std::vector<uint32_t> transitive_dependents;
  /// Its params or its compensation's params name another task's output ("@{id}").
  bool uses_outputs = false;
};

/// Timeout of tasks that name none, when the definition names none either.
constexpr uint64_t default_task_timeout_ms = 600000;

/// The longest timeout or backoff a definition may give (about 31 years): a longer one would
/// overflow the clock when added to the time now.
constexpr uint64_t max_duration_ms = 1000000000000;

struct definition {
  std::string name;
  uint32_t version = 0;
  std::vector<task_def> tasks;
  retry_spec default_retry;
  uint64_t default_timeout_ms = 0;
  /// Retries allowed across the run; 0 = no limit.
  uint32_t retry_budget = 0;
  std::map<std::string, std::string> labels;

  // Filled in by the codec: the canonical protobuf encoding and its hex SHA-256.
  std::string encoded;
  std::string digest;

  /// Index of the task named `id`, or -1.
  int index_of(const std::string& id) const;
};

using definition_ptr = std::shared_ptr<const definition>;

/// The type a parameter must have.
enum class param_type : uint8_t { any, boolean, number, integer, string, list, object };

const char* to_string(param_type x) noexcept;

struct param_spec {
  param_spec() = default;
  param_spec(std::string name, param_type type, bool required = false,
             std::string description = {})
    : name(std::move(name)), type(type), required(required),
      description(std::move(description)) {
  }

  std::string name;
  param_type type = param_type::any;
  bool required = false;
  std::string description;
  /// For number and integer parameters: the smallest and largest value taken (inclusive).
  std::optional<double> min;
  std::optional<double> max;
};

/// The largest values of parameters kept in 32-bit fields, and of integers a double holds exactly.
constexpr double uint32_limit = 4294967295.0;
constexpr double exact_integer_limit = 9007199254740991.0;

/// `p`, taking values from `min` to `max` only.
inline param_spec within(param_spec p, double min, double max) {
  p.min = min;
  p.max = max;
  return p;
}

/// What validation knows of a task kind: its parameters.
struct kind_spec {
  std::string name;
  std::vector<param_spec> params;
  /// Parameters not listed are refused unless this is set.
  bool open_params = false;
  std::string description;
};

/// The task kinds a definition may use (built-in and registered). Plain data.
class kind_catalog {
public:
  void add(kind_spec spec);
  const kind_spec* find(const std::string& name) const;
  std::vector<std::string> names() const;

private:
  std::map<std::string, kind_spec> kinds_;
};

} // namespace ferry
