// The resource rule as pure decisions (cpp/src/scheduler/resource_rule.*).
#include "scheduler/resource_rule.hpp"

#include <gtest/gtest.h>

#include <map>

namespace taskengine::scheduler {
namespace {

QueuePlace at(TaskId task, int priority = 0) { return QueuePlace::of(priority, task); }

Hold shared(const std::string& resource, TaskId task, int priority = 0) {
  return {resource, false, at(task, priority)};
}
Hold exclusive(const std::string& resource, TaskId task, int priority = 0) {
  return {resource, true, at(task, priority)};
}

TEST(ResourceRule, HigherPriorityIsAheadThenDispatchOrder) {
  EXPECT_TRUE(at(9, 5) < at(1, 0));
  EXPECT_TRUE(at(1) < at(2));
  EXPECT_FALSE(at(2) < at(2));
}

TEST(ResourceRule, AnIdleResourceFreesItsHeadOnly) {
  ResourceState state{false, false, at(3), at(4)};
  EXPECT_TRUE(free_on(exclusive("r", 3), state));
  EXPECT_FALSE(free_on(shared("r", 4), state));  // behind an exclusive holder
}

TEST(ResourceRule, SharedHoldersAheadOfTheFirstExclusiveAreFree) {
  ResourceState state{true, false, at(5), at(1)};  // a shared holder runs
  EXPECT_TRUE(free_on(shared("r", 1), state));
  EXPECT_TRUE(free_on(shared("r", 4), state));
  EXPECT_FALSE(free_on(shared("r", 6), state));
  EXPECT_FALSE(free_on(exclusive("r", 5), state));  // the runner holds it
}

TEST(ResourceRule, AnExclusiveRunnerHoldsEveryoneBack) {
  ResourceState state{true, true, std::nullopt, at(1)};
  EXPECT_FALSE(free_on(shared("r", 1), state));
  EXPECT_FALSE(shared_limit(state).open);
  EXPECT_FALSE(free_exclusive(state));
}

TEST(ResourceRule, AQueuedExclusiveIsNotStarvedByLaterSharedHolders) {
  // Shared holders run; an exclusive one waits; later shared ones queue.
  ResourceState state{true, false, at(10), at(11)};
  EXPECT_FALSE(free_on(shared("r", 11), state));
  EXPECT_FALSE(free_on(exclusive("r", 10), state));
}

TEST(ResourceRule, MayStartNeedsEveryResource) {
  std::map<std::string, ResourceState> states{
      {"a", ResourceState{false, false, std::nullopt, at(1)}},
      {"b", ResourceState{true, true, std::nullopt, std::nullopt}}};
  auto state_of = [&](const std::string& r) -> const ResourceState& { return states.at(r); };
  EXPECT_TRUE(may_start({shared("a", 1)}, state_of));
  EXPECT_FALSE(may_start({shared("a", 1), shared("b", 1)}, state_of));
}

TEST(ResourceRule, FinishingAnExclusiveRunnerFreesTheSharedPrefix) {
  ResourceState before{true, true, at(9), at(2)};
  ResourceState after{false, false, at(9), at(2)};
  QueueChange change = plan_change(before, after);
  ASSERT_TRUE(change.shared_now_free);
  EXPECT_FALSE(change.shared_now_free->from);  // from the head
  EXPECT_EQ(change.shared_now_free->to, at(9));
  EXPECT_FALSE(change.shared_no_longer_free);
  EXPECT_FALSE(change.exclusive_now_free);  // shared holders are ahead of it
}

TEST(ResourceRule, AnExclusiveJoiningAheadTakesBackTheSharedTail) {
  // Shared holders run and more are queued, none exclusive; a retried
  // exclusive task rejoins at its old place 5: the shared holders behind it
  // are no longer free.
  ResourceState before{true, false, std::nullopt, at(1)};
  ResourceState after{true, false, at(5), at(1)};
  QueueChange change = plan_change(before, after);
  EXPECT_FALSE(change.shared_now_free);
  ASSERT_TRUE(change.shared_no_longer_free);
  EXPECT_EQ(change.shared_no_longer_free->from, at(5));
  EXPECT_FALSE(change.shared_no_longer_free->to);  // to the end
}

TEST(ResourceRule, TheExclusiveHeadChangesHands) {
  ResourceState before{false, false, at(3), std::nullopt};
  ResourceState after{false, false, at(1, 7), std::nullopt};  // a higher priority one joined
  QueueChange change = plan_change(before, after);
  EXPECT_EQ(change.exclusive_now_free, at(1, 7));
  EXPECT_EQ(change.exclusive_no_longer_free, at(3));
}

TEST(ResourceRule, AnUnchangedStatePlansNothing) {
  ResourceState state{true, false, at(4), at(1)};
  QueueChange change = plan_change(state, state);
  EXPECT_FALSE(change.shared_now_free);
  EXPECT_FALSE(change.shared_no_longer_free);
  EXPECT_FALSE(change.exclusive_now_free);
  EXPECT_FALSE(change.exclusive_no_longer_free);
}

TEST(ResourceRule, ThePlanCoversEveryHolderWhoseFreenessChanged) {
  // Exhaustive over small states: a holder's freeness differs between
  // before and after exactly when the plan names it.
  std::vector<std::optional<QueuePlace>> places{std::nullopt, at(1), at(2), at(3), at(4)};
  std::vector<ResourceState> states;
  for (int active = 0; active < 3; ++active)
    for (const auto& first_exclusive : places)
      for (const auto& first_shared : places) {
        if (first_exclusive && first_shared && *first_exclusive == *first_shared) continue;
        states.push_back({active > 0, active > 1, first_exclusive, first_shared});
      }
  auto in = [](const std::optional<PlaceRange>& range, QueuePlace place) {
    return range && (!range->from || !(place < *range->from)) && (!range->to || place < *range->to);
  };
  for (const auto& before : states)
    for (const auto& after : states) {
      QueueChange change = plan_change(before, after);
      for (TaskId task = 1; task <= 5; ++task) {
        Hold s = shared("r", task);
        bool was = free_on(s, before), now = free_on(s, after);
        EXPECT_EQ(now && !was, in(change.shared_now_free, s.place));
        EXPECT_EQ(was && !now, in(change.shared_no_longer_free, s.place));
        Hold x = exclusive("r", task);
        was = free_on(x, before);
        now = free_on(x, after);
        EXPECT_EQ(now && !was, change.exclusive_now_free == x.place);
        EXPECT_EQ(was && !now, change.exclusive_no_longer_free == x.place);
      }
    }
}

}  // namespace
}  // namespace taskengine::scheduler
