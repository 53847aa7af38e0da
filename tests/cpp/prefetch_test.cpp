// How many claimed tasks a worker holds ahead (cpp/src/worker/prefetch.*).
#include "worker/prefetch.hpp"

#include <gtest/gtest.h>

namespace taskengine::worker {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(PrefetchPolicy, HoldsNothingUntilARunTimeIsKnown) {
  PrefetchPolicy policy(2, milliseconds(20));
  EXPECT_EQ(policy.target(), 0);
  policy.record(microseconds(-1));  // a run that included an executor's start
  EXPECT_EQ(policy.target(), 0);
  policy.record(microseconds(1000));
  EXPECT_EQ(policy.target(), 40);  // 20 ms per slot, 2 slots, 1 ms tasks
}

TEST(PrefetchPolicy, NeverHoldsTasksLongerThanTheWindow) {
  PrefetchPolicy policy(4, milliseconds(20));
  policy.record(microseconds(500'000));
  EXPECT_EQ(policy.target(), 0);
}

TEST(PrefetchPolicy, IsCappedAndCanBeTurnedOff) {
  PrefetchPolicy fast(2, milliseconds(20), 256);
  fast.record(microseconds(1));
  EXPECT_EQ(fast.target(), 256);
  PrefetchPolicy off(2, milliseconds(0));
  off.record(microseconds(1));
  EXPECT_EQ(off.target(), 0);
}

TEST(PrefetchPolicy, FollowsAChangeOfWorkWithinAFewTasks) {
  PrefetchPolicy policy(1, milliseconds(20));
  for (int i = 0; i < 20; ++i) policy.record(microseconds(100));
  EXPECT_EQ(policy.target(), 200);
  for (int i = 0; i < 15; ++i) policy.record(microseconds(100'000));
  EXPECT_EQ(policy.target(), 0);
}

}  // namespace
}  // namespace taskengine::worker

namespace taskengine::worker {
namespace {

TEST(PrefetchPolicy, SlotsBusyForLongerThanTheWindowNoLongerDrainTheQueue) {
  PrefetchPolicy policy(2, std::chrono::milliseconds(20));
  for (int i = 0; i < 10; ++i) policy.record(std::chrono::microseconds(200));
  EXPECT_EQ(policy.target(0), 200);  // 2 x 20 ms of 200 us tasks
  EXPECT_EQ(policy.target(1), 100);  // one slot stuck: only the other drains it
  EXPECT_EQ(policy.target(2), 0);    // every slot stuck: hold nothing
}

TEST(PrefetchPolicy, ALongRunThatEndsShrinksTheTarget) {
  PrefetchPolicy policy(2, std::chrono::milliseconds(20));
  for (int i = 0; i < 10; ++i) policy.record(std::chrono::microseconds(100));
  policy.record(std::chrono::microseconds(50'000));
  EXPECT_EQ(policy.target(), 3);  // average now ~10 ms: 40 ms of it
}

}  // namespace
}  // namespace taskengine::worker
