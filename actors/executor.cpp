#include "actors/executor.hpp"

namespace ferry {

task_executor::~task_executor() = default;

void executor_registry::add(std::shared_ptr<task_executor> exec) {
  auto spec = exec->spec();
  executors_[spec.name] = std::move(exec);
  catalog_.add(std::move(spec));
}

task_executor* executor_registry::find(const std::string& kind) const {
  auto i = executors_.find(kind);
  return i == executors_.end() ? nullptr : i->second.get();
}

} // namespace ferry
