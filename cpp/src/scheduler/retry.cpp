#include "scheduler/retry.hpp"

#include <algorithm>
#include <cmath>

namespace taskengine::scheduler {

std::optional<double> retry_delay(const RetryPolicy& policy, int attempt, double unit_random) {
  if (attempt >= policy.max_attempts) return std::nullopt;
  if (!policy.delays.empty()) {
    std::size_t index =
        std::min<std::size_t>(attempt > 0 ? attempt - 1 : 0, policy.delays.size() - 1);
    return policy.delays[index];
  }
  if (policy.backoff_base <= 0) return 0.0;
  double delay =
      std::min(policy.backoff_max, policy.backoff_base * std::pow(2.0, std::max(0, attempt - 1)));
  // "Equal jitter": half fixed, half random, so retries of many tasks that
  // failed together spread out without ever retrying at once.
  if (policy.jitter) delay = delay / 2 + unit_random * delay / 2;
  return delay;
}

}  // namespace taskengine::scheduler
