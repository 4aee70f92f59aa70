// ferry::state_change — one change of the fleet's durable state (a lease table, a
// reservation, a VM's placement, an address route) as a key and its new encoded value. The
// fleet's actors produce them, a task's result carries them, and the journal writes them in
// the same atomic batch as the transition that records the task's result. Vocabulary only.
#pragma once

#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace ferry {

struct state_change {
  /// "lease/PARTITION", "resv/HOST/KEY", "vm/VM", "addr/ADDRESS", "vol/VOLUME".
  std::string key;
  /// The encoded record (proto/ferry/v1/fleet.proto); empty: the key is erased.
  std::string value;

  friend bool operator==(const state_change& a, const state_change& b) noexcept {
    return a.key == b.key && a.value == b.value;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_change& x) {
  return f(caf::meta::type_name("state_change"), x.key, x.value);
}

using state_changes = std::vector<state_change>;

} // namespace ferry
