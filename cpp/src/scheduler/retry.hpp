#pragma once

#include <optional>

#include "taskengine/task.hpp"

namespace taskengine::scheduler {

// Seconds to wait before the next attempt after `attempt` failed, or nullopt
// when the policy allows no further attempt. `unit_random` in [0, 1) drives
// the jitter, so tests can pin it.
std::optional<double> retry_delay(const RetryPolicy& policy, int attempt, double unit_random);

}  // namespace taskengine::scheduler
