#include "worker/prefetch.hpp"

#include <algorithm>
#include <cmath>

namespace taskengine::worker {

namespace {
// Weight of the newest run time in the moving average: a few tasks are
// enough to notice that the work changed.
constexpr double kNewest = 0.2;
}  // namespace

void PrefetchPolicy::record(std::chrono::microseconds ran) {
  if (ran.count() < 0) return;  // not a measure of the task (see Slot::Done)
  double us = std::max<double>(1.0, static_cast<double>(ran.count()));
  average_us_ = average_us_ < 0 ? us : (1 - kNewest) * average_us_ + kNewest * us;
}

int PrefetchPolicy::target(int long_running_slots) const {
  if (average_us_ < 0 || window_.count() <= 0) return 0;
  int moving = std::max(0, concurrency_ - long_running_slots);
  double window_us = static_cast<double>(window_.count()) * 1000.0 * moving;
  return static_cast<int>(std::min<double>(cap_, std::floor(window_us / average_us_)));
}

}  // namespace taskengine::worker
