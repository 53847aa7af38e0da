// Batches through the resource queue, on every backend: a claim, a completion
// call or a dispatch with many tasks is one change of many resources
// (ResourceQueue), and each resource must still end up with the right
// holders eligible, as if the tasks had come one at a time.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "support/store_test.hpp"
#include "taskengine/store.hpp"

namespace taskengine {
namespace {

using testing::function_task;

TaskSpec wanting(std::vector<std::string> exclusive, std::vector<std::string> shared,
                 int priority = 0) {
  TaskSpec spec = function_task();
  spec.exclusive_resources = std::move(exclusive);
  spec.shared_resources = std::move(shared);
  spec.priority = priority;
  return spec;
}

class StoreResourceBatch : public testing::StoreTest {
 protected:
  std::vector<Task> claim(int limit = 100) { return store_->claim(worker_, limit); }

  static std::vector<TaskId> ids(const std::vector<Task>& tasks) {
    std::vector<TaskId> out;
    for (const auto& t : tasks) out.push_back(t.id);
    std::sort(out.begin(), out.end());
    return out;
  }

  // Ends all of `tasks` in one complete() call; every completion must apply.
  void complete_all(const std::vector<Task>& tasks, TaskState state = TaskState::Completed) {
    std::vector<Completion> completions;
    for (const auto& t : tasks) {
      Completion c;
      c.task_id = t.id;
      c.fence = t.fence;
      c.state = state;
      if (state == TaskState::Failed) c.error = {{"type", "ValueError"}, {"message", "boom"}};
      completions.push_back(std::move(c));
    }
    std::vector<bool> applied = store_->complete(completions);
    ASSERT_EQ(applied, std::vector<bool>(tasks.size(), true));
  }
};

TEST_P(StoreResourceBatch, OneCompletionCallFreesEachResourceToItsNextHolders) {
  // A, B, C: three exclusive tasks each. S: two shared holders, an
  // exclusive one, a shared one behind it. M holds A's and S's neighbours
  // at once: exclusive on M, shared on S.
  std::vector<TaskSpec> specs;
  for (const char* resource : {"A", "B", "C"})
    for (int i = 0; i < 3; ++i) specs.push_back(wanting({resource}, {}));
  specs.push_back(wanting({}, {"S"}));     // 9
  specs.push_back(wanting({}, {"S"}));     // 10
  specs.push_back(wanting({"S"}, {}));     // 11
  specs.push_back(wanting({}, {"S"}));     // 12
  specs.push_back(wanting({"M"}, {"S"}));  // 13: behind the exclusive 11 on S
  std::vector<TaskId> id = store_->dispatch(specs);

  std::vector<Task> first = claim();
  EXPECT_EQ(ids(first), (std::vector<TaskId>{id[0], id[3], id[6], id[9], id[10]}));
  complete_all(first);

  std::vector<Task> second = claim();
  EXPECT_EQ(ids(second), (std::vector<TaskId>{id[1], id[4], id[7], id[11]}));
  // Failed endings free their resources the same way.
  complete_all(second, TaskState::Failed);

  std::vector<Task> third = claim();
  EXPECT_EQ(ids(third), (std::vector<TaskId>{id[2], id[5], id[8], id[12], id[13]}));
  complete_all(third);
  EXPECT_TRUE(claim().empty());
  for (TaskId t : id) EXPECT_TRUE(is_final(task(t).state)) << t;
}

TEST_P(StoreResourceBatch, OneDispatchCallQueuesByPriorityThenOrder) {
  // In one call, a later spec with a higher priority heads R's queue; the
  // shared ones wait behind the first exclusive one, and T is held by
  // nobody ahead of its only task.
  std::vector<TaskId> id =
      store_->dispatch({wanting({"R"}, {}), wanting({}, {"R"}), wanting({"R"}, {}, 5),
                        wanting({"T"}, {"R"}, 1), wanting({"T"}, {})});
  EXPECT_EQ(ids(claim()), (std::vector<TaskId>{id[2]}));
  // id[3] (priority 1) is next on R, but shared: it waits for id[2] alone.
  Task head = task(id[2]);
  complete_all({head});
  EXPECT_EQ(ids(claim()), (std::vector<TaskId>{id[3]}));
  complete_all({task(id[3])});
  // Then id[0] (exclusive on R) and id[4] (exclusive on T) together.
  EXPECT_EQ(ids(claim()), (std::vector<TaskId>{id[0], id[4]}));
}

TEST_P(StoreResourceBatch, ClaimedBatchHoldsItsResourcesAgainstLaterTasks) {
  std::vector<TaskId> id =
      store_->dispatch({wanting({"A"}, {}), wanting({}, {"B"}), wanting({}, {"B"})});
  std::vector<Task> running = claim();
  ASSERT_EQ(ids(running), id);
  // A later task, even one ahead by priority, waits for the running holders.
  TaskId urgent_a = store_->dispatch({wanting({"A"}, {}, 9)}).at(0);
  TaskId urgent_b = store_->dispatch({wanting({"B"}, {}, 9)}).at(0);
  TaskId shared_b = store_->dispatch({wanting({}, {"B"})}).at(0);
  EXPECT_TRUE(claim().empty());
  complete_all({running[0], running[1]});
  // A is free; B still has one shared holder running.
  EXPECT_EQ(ids(claim()), (std::vector<TaskId>{urgent_a}));
  complete_all({running[2]});
  EXPECT_EQ(ids(claim()), (std::vector<TaskId>{urgent_b}));
  EXPECT_EQ(task(shared_b).state, TaskState::Waiting);
}

TEST_P(StoreResourceBatch, ChangesOfManyResourcesFindEachResourcesNextHolder) {
  // One change reads the states of many resources in chunks of padded
  // statements (past 16 names, to multiples of 16; at most 256 each): each
  // size below lands on a different text and chunking. Per resource, the
  // task dispatched second is ahead by priority (priorities -3..3, so queue
  // ranks of both signs), and a shared task waits behind both.
  for (int count : {17, 100, 300}) {
    SCOPED_TRACE("resources: " + std::to_string(count));
    std::vector<TaskSpec> specs;
    for (int i = 0; i < count; ++i) {
      std::string resource = "r" + std::to_string(count) + "-" + std::to_string(i);
      int priority = i % 7 - 3;
      specs.push_back(wanting({resource}, {}, priority - 1));
      specs.push_back(wanting({resource}, {}, priority));
      specs.push_back(wanting({}, {resource}, priority - 2));
    }
    std::vector<TaskId> id = store_->dispatch(specs);
    auto every = [&](int which) {
      std::vector<TaskId> out;
      for (int i = 0; i < count; ++i) out.push_back(id[3 * i + which]);
      std::sort(out.begin(), out.end());
      return out;
    };
    std::vector<Task> heads = claim(1000);
    EXPECT_EQ(ids(heads), every(1));
    complete_all(heads);
    std::vector<Task> seconds = claim(1000);
    EXPECT_EQ(ids(seconds), every(0));
    complete_all(seconds, TaskState::Failed);
    std::vector<Task> shared = claim(1000);
    EXPECT_EQ(ids(shared), every(2));
    complete_all(shared);
    EXPECT_TRUE(claim(1000).empty());
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreResourceBatch, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace taskengine
