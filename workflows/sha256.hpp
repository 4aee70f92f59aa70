// SHA-256, for the digests that name definitions in the journal. Pure; any thread.
#pragma once

#include <string>
#include <string_view>

namespace ferry {

/// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

} // namespace ferry
