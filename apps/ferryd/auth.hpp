// Who a call comes from: the bearer token of its `authorization` header, looked up among the
// configured tokens, and the role that grants. On the unix socket a call without a token gets
// the configured role (the socket file's permissions guard it); on TCP there is no anonymous
// access. Immutable after construction; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "apps/ferryd/config.hpp"

namespace ferry::daemon {

struct principal {
  /// The token's name ("unix-socket" for an anonymous call on the socket).
  std::string name;
  role granted = role::none;
};

class authenticator {
public:
  authenticator(std::vector<token_entry> tokens, role unix_socket_role);

  /// `header`: the authorization header's value (empty when absent). Errors:
  /// unauthenticated naming what is wrong (missing, malformed, unknown token).
  caf::expected<principal> authenticate(std::string_view header, bool unix_socket) const;

  /// permission_denied unless `p` may do `what` (a method's name), which needs `need`.
  static caf::error authorize(const principal& p, role need, std::string_view what);

private:
  std::vector<token_entry> tokens_;
  role unix_role_;
};

} // namespace ferry::daemon
