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
  // Tasks to hold in the local queue, given how many slots have been running
  // their task for longer than the window: they are stuck as far as the
  // queue is concerned, and only the others drain it. (Shorter runs are
  // normal jitter: a slot descheduled for a millisecond must not make the
  // worker hand back its queue.)
  int target(int long_running_slots = 0) const;
  std::chrono::milliseconds window() const { return window_; }

 private:
  int concurrency_;
  std::chrono::milliseconds window_;
  int cap_;
  double average_us_ = -1;  // < 0: no task has run yet
};

}  // namespace taskengine::worker
