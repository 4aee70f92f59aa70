#include "apps/ferryd/auth.hpp"

#include "common/errc.hpp"

namespace ferry::daemon {

namespace {

// Compares in time that depends only on the lengths (a token is not guessed byte by byte).
bool same(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

} // namespace

authenticator::authenticator(std::vector<token_entry> tokens, role unix_socket_role)
  : tokens_(std::move(tokens)), unix_role_(unix_socket_role) {
}

caf::expected<principal> authenticator::authenticate(std::string_view header,
                                                     bool unix_socket) const {
  if (header.empty()) {
    if (unix_socket && unix_role_ != role::none)
      return principal{"unix-socket", unix_role_};
    return make_error(errc::unauthenticated,
                      "authorization: missing (send \"authorization: Bearer <token>\")");
  }
  constexpr std::string_view scheme = "Bearer ";
  if (header.size() <= scheme.size() || header.substr(0, scheme.size()) != scheme)
    return make_error(errc::unauthenticated,
                      "authorization: expected \"Bearer <token>\"");
  auto secret = header.substr(scheme.size());
  const token_entry* found = nullptr;
  for (auto& t : tokens_)
    if (same(t.secret, secret) && !found)
      found = &t;
  if (!found)
    return make_error(errc::unauthenticated, "authorization: unknown token");
  return principal{found->name, found->granted};
}

caf::error authenticator::authorize(const principal& p, role need, std::string_view what) {
  if (static_cast<int>(p.granted) >= static_cast<int>(need))
    return caf::none;
  return make_error(errc::permission_denied,
                    "token \"" + p.name + "\" (" + to_string(p.granted) + ") may not "
                      + std::string{what} + ": it needs the " + to_string(need) + " role");
}

} // namespace ferry::daemon
