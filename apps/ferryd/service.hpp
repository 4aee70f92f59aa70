// The Ferry gRPC service (proto/ferry/v1/api.proto) over an engine: authentication and roles
// on every call, requests checked field by field, the engine's errors as canonical codes.
// Callback API: Submit answers when the run's first transition is durable without holding a
// thread; Watch and Get-with-wait are streams the engine feeds (watch.hpp), and GetBatch with
// wait_ms is answered by the engine once the batch finished or by the hub's timer at the
// deadline. Handlers run on gRPC's threads.
#pragma once

// First: the generated service calls abort() unqualified, which ferry::abort would hide.
#include "ferry/v1/api.grpc.pb.h"

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/engine.hpp"
#include "apps/ferryd/auth.hpp"
#include "apps/ferryd/watch.hpp"

namespace ferry::daemon {

/// The API's calls by method and canonical code (read by the metrics endpoint).
class call_counters {
public:
  static constexpr size_t codes = 17;
  using row = std::array<uint64_t, codes>;
  void count(const char* method, int code);
  std::map<std::string, row> snapshot() const;

private:
  mutable std::mutex mtx_;
  std::map<std::string, row, std::less<>> counts_;
};

struct service_context {
  engine* eng = nullptr;
  const authenticator* auth = nullptr;
  watch_hub* hub = nullptr;
  call_counters* calls = nullptr;
};

std::unique_ptr<v1::Ferry::CallbackService> make_service(service_context ctx);

} // namespace ferry::daemon
