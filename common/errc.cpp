#include "common/errc.hpp"

#include <caf/message.hpp>

namespace ferry {

namespace {

constexpr const char* names[] = {
  "ok",         "cancelled",         "unknown",
  "invalid_argument", "deadline_exceeded", "not_found",
  "already_exists",   "permission_denied", "resource_exhausted",
  "failed_precondition", "aborted",      "out_of_range",
  "unimplemented",    "internal",          "unavailable",
  "data_loss",        "unauthenticated",
};

} // namespace

const char* to_string(errc x) noexcept {
  auto i = static_cast<size_t>(x);
  return i < sizeof(names) / sizeof(names[0]) ? names[i] : "unknown";
}

errc errc_from_string(const std::string& name) noexcept {
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i)
    if (name == names[i])
      return static_cast<errc>(i);
  return errc::unknown;
}

caf::error make_error(errc code, std::string message) {
  return caf::error{static_cast<uint8_t>(code), errc_category::value,
                    caf::make_message(std::move(message))};
}

errc code_of(const caf::error& err) noexcept {
  if (!err)
    return errc::ok;
  if (err.category() != errc_category::value)
    return errc::unknown;
  return static_cast<errc>(err.code());
}

std::string message_of(const caf::error& err) {
  if (!err)
    return {};
  if (err.category() == errc_category::value) {
    auto& ctx = err.context();
    if (ctx.size() == 1 && ctx.match_element<std::string>(0))
      return ctx.get_as<std::string>(0);
    return {};
  }
  return caf::to_string(err);
}

std::string describe(const caf::error& err) {
  if (!err)
    return "ok";
  if (err.category() != errc_category::value)
    return caf::to_string(err);
  return std::string{to_string(code_of(err))} + ": " + message_of(err);
}

} // namespace ferry
