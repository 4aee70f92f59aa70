#include "actors/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace ferry {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("ferry"))
      return existing;
    return spdlog::stderr_color_mt("ferry");
  }();
  return *logger;
}

} // namespace ferry
