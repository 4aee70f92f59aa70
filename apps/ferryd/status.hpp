// Ferry's errors as gRPC statuses: ferry::errc mirrors the canonical codes one to one, and
// the message (which names the thing and the field) is kept. The only place errors cross
// into gRPC. Header-only; any thread.
#pragma once

#include <string>
#include <string_view>

#include <grpcpp/support/status.h>

#include "common/errc.hpp"

namespace ferry::daemon {

/// `prefix` names the request field the error is about ("run_id: ") when the engine's
/// message does not.
inline grpc::Status status_of(const caf::error& err, std::string_view prefix = {}) {
  auto code = code_of(err);
  if (code == errc::ok)
    return grpc::Status::OK;
  return grpc::Status{static_cast<grpc::StatusCode>(static_cast<int>(code)),
                      std::string{prefix} + message_of(err)};
}

inline grpc::Status invalid(std::string message) {
  return grpc::Status{grpc::StatusCode::INVALID_ARGUMENT, std::move(message)};
}

} // namespace ferry::daemon
