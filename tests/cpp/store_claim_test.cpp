// The claim on every backend, with queues that mix plain tasks (which
// PostgreSQL claims in one statement, resources included) and tasks that
// need the C++ side of the claim (requirements, dependencies).
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "support/store_test.hpp"
#include "taskengine/store.hpp"

namespace taskengine {
namespace {

using testing::function_task;

TaskSpec with_priority(int priority) {
  TaskSpec spec = function_task();
  spec.priority = priority;
  return spec;
}

TaskSpec needing_architecture(const std::string& architecture, int priority = 0) {
  TaskSpec spec = with_priority(priority);
  spec.requirements.architecture = architecture;
  return spec;
}

class StoreClaim : public testing::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (store_) amd64_ = register_worker("amd64", "worker", {{"system:architecture", "amd64"}});
  }
  std::vector<TaskId> claim_ids(const WorkerInfo& worker, int limit) {
    std::vector<TaskId> ids;
    for (const auto& t : store_->claim(worker, limit)) ids.push_back(t.id);
    return ids;
  }
  WorkerInfo amd64_;
};

TEST_P(StoreClaim, MixedQueueIsClaimedInPriorityOrder) {
  TaskId plain_low = dispatch(with_priority(0));
  TaskId matched_mid = dispatch(needing_architecture("amd64", 5));
  TaskId plain_mid = dispatch(with_priority(5));
  TaskId plain_high = dispatch(with_priority(10));
  TaskSpec resourced = with_priority(5);
  resourced.exclusive_resources = {"r"};
  TaskId resource_mid = dispatch(resourced);
  EXPECT_EQ(claim_ids(amd64_, 3), (std::vector<TaskId>{plain_high, matched_mid, plain_mid}));
  EXPECT_EQ(claim_ids(amd64_, 10), (std::vector<TaskId>{resource_mid, plain_low}));
  EXPECT_TRUE(claim_ids(amd64_, 10).empty());
  // Plain again after a mixed queue.
  TaskId a = dispatch(with_priority(1));
  TaskId b = dispatch(with_priority(2));
  EXPECT_EQ(claim_ids(amd64_, 10), (std::vector<TaskId>{b, a}));
}

TEST_P(StoreClaim, TasksClaimedTogetherHoldTheirResources) {
  auto holding = [](std::vector<std::string> exclusive, std::vector<std::string> shared,
                    int priority = 0) {
    TaskSpec spec = with_priority(priority);
    spec.exclusive_resources = std::move(exclusive);
    spec.shared_resources = std::move(shared);
    return spec;
  };
  TaskId a = dispatch(holding({"r1"}, {}));
  TaskId b = dispatch(holding({"r1"}, {}));  // behind a on r1
  TaskId c = dispatch(holding({"r2"}, {"r3"}));
  TaskId d = dispatch(holding({}, {"r3"}));
  TaskId plain = dispatch(function_task());
  auto claimed = store_->claim(amd64_, 10);
  std::vector<TaskId> ids;
  for (const auto& t : claimed) ids.push_back(t.id);
  EXPECT_EQ(ids, (std::vector<TaskId>{a, c, d, plain}));
  // The claimed tasks hold their resources as running ones: a later task
  // of higher priority, whose place in the queues is ahead of theirs,
  // still waits for them.
  TaskId urgent_r2 = dispatch(holding({"r2"}, {}, 10));
  TaskId urgent_r3 = dispatch(holding({"r3"}, {}, 10));
  EXPECT_TRUE(claim_ids(amd64_, 10).empty());
  // Ending a and c frees r1 and r2; d still shares r3.
  std::vector<Completion> done;
  for (const auto& t : claimed)
    if (t.id == a || t.id == c)
      done.push_back({t.id, t.fence, TaskState::Completed, nullptr, nullptr, std::nullopt});
  store_->complete(done);
  EXPECT_EQ(claim_ids(amd64_, 10), (std::vector<TaskId>{urgent_r2, b}));
  EXPECT_EQ(task(urgent_r3).state, TaskState::Waiting);
}

TEST_P(StoreClaim, TasksAWorkerCannotRunStayForOthersWithoutBlockingPlainOnes) {
  TaskId first = dispatch(function_task());
  TaskId arm = dispatch(needing_architecture("arm64", 10));
  TaskId second = dispatch(function_task());
  EXPECT_EQ(claim_ids(amd64_, 10), (std::vector<TaskId>{first, second}));
  EXPECT_EQ(task(arm).state, TaskState::Waiting);
  TaskId third = dispatch(function_task());
  EXPECT_EQ(claim_ids(amd64_, 10), std::vector<TaskId>{third});
  WorkerInfo arm64 = register_worker("arm64", "worker", {{"system:architecture", "arm64"}});
  EXPECT_EQ(claim_ids(arm64, 10), std::vector<TaskId>{arm});
}

TEST_P(StoreClaim, OnlyTheWorkersTypeIsClaimed) {
  TaskSpec server_task = function_task();
  server_task.requirements.worker_type = "server";
  TaskId for_server = dispatch(server_task);
  TaskId for_worker = dispatch(function_task());
  WorkerInfo server = register_worker("s1", "server");
  EXPECT_EQ(claim_ids(amd64_, 10), std::vector<TaskId>{for_worker});
  EXPECT_EQ(claim_ids(server, 10), std::vector<TaskId>{for_server});
}

TEST_P(StoreClaim, LimitIsHonouredAcrossClaims) {
  std::vector<TaskSpec> specs(5, function_task());
  auto ids = store_->dispatch(specs);
  EXPECT_EQ(claim_ids(amd64_, 2), (std::vector<TaskId>{ids[0], ids[1]}));
  EXPECT_EQ(claim_ids(amd64_, 10), (std::vector<TaskId>{ids[2], ids[3], ids[4]}));
}

TEST_P(StoreClaim, NotBeforeIsHonoured) {
  TaskSpec later = function_task();
  later.not_before = now_micros() + 3'600'000'000;
  TaskId delayed = dispatch(later);
  TaskSpec past = function_task();
  past.not_before = now_micros() - 1'000'000;
  TaskId due = dispatch(past);
  EXPECT_EQ(claim_ids(amd64_, 10), std::vector<TaskId>{due});
  EXPECT_EQ(task(delayed).state, TaskState::Waiting);
}

TEST_P(StoreClaim, ClaimedTasksAreRunningWithANewAttemptAndFence) {
  TaskId id = dispatch(function_task("m:f", Json::array({1, 2})));
  Task before = task(id);
  auto claimed = store_->claim(amd64_, 1);
  ASSERT_EQ(claimed.size(), 1u);
  const Task& t = claimed[0];
  Task stored = task(id);
  EXPECT_EQ(t.state, TaskState::Running);
  EXPECT_EQ(stored.state, TaskState::Running);
  EXPECT_EQ(t.attempt, 1);
  EXPECT_EQ(t.fence, before.fence + 1);
  EXPECT_EQ(stored.fence, t.fence);
  EXPECT_EQ(t.worker_id, amd64_.id);
  EXPECT_EQ(t.worker_name, "amd64");
  EXPECT_EQ(stored.started_at, t.started_at);
  EXPECT_EQ(t.payload, before.payload);
  EXPECT_FALSE(t.reason.has_value());
  // Handed back and claimed again: a newer fence, and the old one is refused.
  ASSERT_TRUE(store_->requeue(id, t.fence, "stopping"));
  auto again = store_->claim(amd64_, 1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempt, 1);
  EXPECT_GT(again[0].fence, t.fence);
  auto applied =
      store_->complete({{id, t.fence, TaskState::Completed, 1, nullptr, std::nullopt},
                        {id, again[0].fence, TaskState::Completed, 2, nullptr, std::nullopt}});
  EXPECT_EQ(applied, (std::vector<bool>{false, true}));
  EXPECT_EQ(task(id).result, 2);
}

TEST_P(StoreClaim, CanceledTasksAreNotClaimedAndClaimedOnesCancelAsRunning) {
  TaskId waiting = dispatch(function_task());
  TaskId claimed = dispatch(function_task());
  store_->cancel_task(waiting);
  EXPECT_EQ(claim_ids(amd64_, 10), std::vector<TaskId>{claimed});
  EXPECT_EQ(store_->cancel_task(claimed), TaskState::Canceling);
  auto canceling = store_->canceling_tasks(amd64_.id);
  ASSERT_EQ(canceling.size(), 1u);
  EXPECT_EQ(canceling[0].first, claimed);
}

TEST_P(StoreClaim, OfflineWorkersClaimNothing) {
  dispatch(function_task());
  store_->unregister_worker(amd64_.id);
  EXPECT_TRUE(claim_ids(amd64_, 10).empty());
  EXPECT_EQ(claim_ids(worker_, 10).size(), 1u);
}

TEST_P(StoreClaim, TwoClaimersSkipEachOthersRowsAndShareNothing) {
  std::vector<TaskSpec> specs;
  for (int i = 0; i < 300; ++i)
    specs.push_back(i % 10 == 0 ? needing_architecture("amd64", i % 3) : with_priority(i % 3));
  store_->dispatch(specs);
  std::mutex mutex;
  std::vector<TaskId> all;
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      auto store = open_store(test_store_->url());
      WorkerInfo info;
      info.name = "c" + std::to_string(w);
      info.metadata = {{"system:architecture", "amd64"}};
      info.id = store->register_worker(info);
      for (int round = 0; round < 400; ++round) {
        auto claimed = store->claim(info, 7);
        std::lock_guard lock(mutex);
        for (const auto& t : claimed) all.push_back(t.id);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<TaskId> unique(all.begin(), all.end());
  EXPECT_EQ(unique.size(), all.size());
  EXPECT_EQ(all.size(), 300u);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreClaim, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace taskengine
