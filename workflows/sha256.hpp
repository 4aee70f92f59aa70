// SHA-256, for the digests that name definitions in the journal. Pure; any thread.
#pragma once

#include <string>
#include <string_view>

namespace ferry {

/// Lower-case hex SHA-256 of `data`: with the CPU's SHA instructions where it has them (x86
/// SHA extensions), else in portable C++.
std::string sha256_hex(std::string_view data);

/// The same, always in portable C++ (what the accelerated path is tested against).
std::string sha256_hex_portable(std::string_view data);

/// Whether sha256_hex() uses the CPU's SHA instructions on this machine.
bool sha256_accelerated();

} // namespace ferry
