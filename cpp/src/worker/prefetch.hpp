#pragma once

#include <chrono>

namespace taskengine::worker {

// How many claimed tasks a worker may hold beyond its busy slots, so that
// short tasks are claimed in batches instead of one transaction each.
//
// The bound is time, not a count: the local queue holds at most about
// `window` of estimated work per slot (from a moving average of recent run
// times), so a claimed task waits locally for no longer than that, and
// tasks longer than the window are never held at all. Until a run time is
// known nothing is held.
class PrefetchPolicy {
 public:
  PrefetchPolicy(int concurrency, std::chrono::milliseconds window, int cap = 256)
      : concurrency_(concurrency), window_(window), cap_(cap) {}

  // One task ran for `ran`; negative: unknown, ignored.
  void record(std::chrono::microseconds ran);
  // Tasks to hold in the local queue, given how long the longest running
  // task has run so far.
  int target(std::chrono::microseconds longest_running = std::chrono::microseconds(0)) const;

 private:
  int concurrency_;
  std::chrono::milliseconds window_;
  int cap_;
  double average_us_ = -1;  // < 0: no task has run yet
};

}  // namespace taskengine::worker
