#include <gtest/gtest.h>

#include "scheduler/dependencies.hpp"
#include "scheduler/matching.hpp"
#include "scheduler/retry.hpp"

namespace taskengine::scheduler {
namespace {

TEST(Versions, CompareNumerically) {
  EXPECT_LT(compare_versions("1.9", "1.10"), 0);
  EXPECT_EQ(compare_versions("2.0", "2"), 0);
  EXPECT_GT(compare_versions("3.11.7", "3.11"), 0);
  EXPECT_EQ(compare_versions("007", "7"), 0);
}

TEST(Matching, ExplainsWhyAWorkerDoesNotQualify) {
  Task task;
  task.name = "sbuild";
  task.requirements.task_version = 2;
  task.requirements.architecture = "arm64";
  WorkerInfo worker;
  worker.metadata = {{"system:architectures", {"amd64", "arm64"}}, {"sbuild:version", 2}};
  EXPECT_EQ(mismatch(task, worker), "");
  worker.metadata["sbuild:version"] = 1;
  EXPECT_EQ(mismatch(task, worker), "needs sbuild version 2");
  worker.worker_type = "server";
  EXPECT_EQ(mismatch(task, worker), "needs a worker of type worker");
}

TEST(Retry, CountsDelaysAndBackoff) {
  RetryPolicy none;
  EXPECT_FALSE(retry_delay(none, 1, 0.5).has_value());
  RetryPolicy listed;
  listed.max_attempts = 4;
  listed.delays = {1, 5};
  EXPECT_EQ(retry_delay(listed, 1, 0), 1);
  EXPECT_EQ(retry_delay(listed, 3, 0), 5);
  EXPECT_FALSE(retry_delay(listed, 4, 0).has_value());
  RetryPolicy backoff;
  backoff.max_attempts = 10;
  backoff.backoff_base = 2;
  backoff.backoff_max = 10;
  EXPECT_EQ(retry_delay(backoff, 1, 1.0), 2);
  EXPECT_EQ(retry_delay(backoff, 2, 0.0), 2);  // 4 with half jitter
  EXPECT_EQ(retry_delay(backoff, 9, 1.0), 10);
}

}  // namespace
}  // namespace taskengine::scheduler

namespace taskengine::scheduler {
namespace {

TEST(DependencyVerdict, WaitsUntilEveryDependencyCompleted) {
  EXPECT_EQ(dependency_verdict({}, false).state, TaskState::Waiting);
  EXPECT_EQ(dependency_verdict({{1, TaskState::Completed}, {2, TaskState::Running}}, false).state,
            TaskState::Blocked);
  EXPECT_EQ(dependency_verdict({{1, TaskState::Completed}, {2, TaskState::Completed}}, false).state,
            TaskState::Waiting);
}

TEST(DependencyVerdict, OneBadEndSkipsAtOnceAndSaysWhich) {
  auto verdict = dependency_verdict({{1, TaskState::Waiting}, {2, TaskState::Canceled}}, false);
  EXPECT_EQ(verdict.state, TaskState::Skipped);
  EXPECT_EQ(verdict.reason, "dependency 2 ended canceled");
}

TEST(DependencyVerdict, AllowFailureWaitsForEveryEndHoweverItWent) {
  EXPECT_EQ(dependency_verdict({{1, TaskState::Failed}, {2, TaskState::Running}}, true).state,
            TaskState::Blocked);
  auto verdict = dependency_verdict({{1, TaskState::Failed}, {2, TaskState::Skipped}}, true);
  EXPECT_EQ(verdict.state, TaskState::Waiting);
  EXPECT_FALSE(verdict.reason);
}

}  // namespace
}  // namespace taskengine::scheduler
