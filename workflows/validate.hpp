// Validation of workflow definitions: every problem is reported with the task and the field
// it is in (`task "flip": field "kind": unknown kind "flp"`). Pure; any thread.
#pragma once

#include <caf/expected.hpp>

#include "workflows/definition.hpp"

namespace ferry {

/// Checks `def` against `kinds` and fills in what validate() computes (resolved retry
/// policies, timeouts, dependency indices, dependents). On failure, returns an
/// invalid_argument error naming the first problem and leaves nothing half-applied: the
/// result is a new definition.
caf::expected<definition> validate(definition def, const kind_catalog& kinds);

/// validate() without the checks of kinds and parameters: for definitions read back from a
/// journal, which were validated when they were submitted.
caf::expected<definition> link(definition def);

/// The effective policy: `written` over `defaults` over the built-in defaults.
retry_policy resolve(const retry_spec& written, const retry_spec& defaults);

} // namespace ferry
