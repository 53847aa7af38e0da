// One suite, every backend: each TEST_P runs against SQLite and PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <latch>
#include <set>
#include <thread>

#include "store/schema.hpp"
#include "support/store_test.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/store.hpp"

namespace taskengine {
namespace {

using testing::function_task;

TaskSpec with_resources(std::vector<std::string> exclusive, std::vector<std::string> shared) {
  TaskSpec spec = function_task();
  spec.exclusive_resources = std::move(exclusive);
  spec.shared_resources = std::move(shared);
  return spec;
}

class StoreConformance : public testing::StoreTest {
 protected:
  std::vector<TaskId> claim_ids(int limit, const WorkerInfo* worker = nullptr) {
    std::vector<TaskId> ids;
    for (const auto& t : store_->claim(worker ? *worker : worker_, limit)) ids.push_back(t.id);
    return ids;
  }
};

TEST_P(StoreConformance, InstallIsIdempotentAndUninstallRemovesEverything) {
  EXPECT_EQ(store_->schema_version(), schema::latest_version());
  store_->install();
  EXPECT_EQ(store_->schema_version(), schema::latest_version());
  dispatch(function_task());
  store_->uninstall();
  EXPECT_EQ(store_->schema_version(), 0);
  EXPECT_THROW(dispatch(function_task()), SchemaError);
  store_->install();
  EXPECT_EQ(count_tasks(), 0u);
}

TEST_P(StoreConformance, DispatchRoundTripsEveryField) {
  TaskSpec spec = function_task("app.jobs:build", Json::array({1, "two", {{"three", 3}}}));
  spec.priority = 5;
  spec.not_before = 1234;
  spec.exclusive_resources = {"repo/a"};
  spec.shared_resources = {"repo/b"};
  spec.requirements.versions = {{"python", "3.11"}};
  spec.requirements.architecture = "amd64";
  spec.retry.max_attempts = 3;
  spec.retry.delays = {1.5, 3};
  spec.timeout_seconds = 12.5;
  spec.unique_key = "build-1";
  GroupId group = store_->create_task_group("nightly");
  spec.task_group = group;
  TaskId id = dispatch(spec);
  Task t = task(id);
  EXPECT_EQ(t.id, id);
  EXPECT_EQ(t.kind, TaskKind::Function);
  EXPECT_EQ(t.name, "app.jobs:build");
  EXPECT_EQ(t.payload, spec.payload);
  EXPECT_EQ(t.state, TaskState::Waiting);
  EXPECT_EQ(t.priority, 5);
  EXPECT_EQ(t.not_before, 1234);
  EXPECT_EQ(t.exclusive_resources, std::vector<std::string>{"repo/a"});
  EXPECT_EQ(t.shared_resources, std::vector<std::string>{"repo/b"});
  EXPECT_EQ(t.requirements.versions, spec.requirements.versions);
  EXPECT_EQ(t.requirements.architecture, "amd64");
  EXPECT_EQ(t.retry.max_attempts, 3);
  EXPECT_EQ(t.retry.delays, (std::vector<double>{1.5, 3}));
  EXPECT_EQ(t.timeout_seconds, 12.5);
  EXPECT_EQ(t.unique_key, "build-1");
  EXPECT_EQ(t.task_group, group);
  EXPECT_EQ(t.attempt, 0);
  EXPECT_GT(t.created_at, 0);
  EXPECT_FALSE(t.started_at.has_value());
  EXPECT_TRUE(t.result.is_null());
}

TEST_P(StoreConformance, BadInputRaisesTypedErrorsAndWritesNothing) {
  TaskSpec empty_command;
  empty_command.kind = TaskKind::Command;
  empty_command.name = "cmd";
  empty_command.payload = {{"argv", Json::array()}};
  EXPECT_THROW(dispatch(empty_command), InvalidArgument);

  TaskSpec missing_dep = function_task();
  missing_dep.depends_on = {999999};
  EXPECT_THROW(store_->dispatch({function_task(), missing_dep}), InvalidArgument);

  TaskSpec missing_group = function_task();
  missing_group.task_group = 424242;
  EXPECT_THROW(store_->dispatch({function_task(), missing_group}), InvalidArgument);

  TaskSpec both = with_resources({"r"}, {"r"});
  EXPECT_THROW(dispatch(both), InvalidArgument);

  TaskSpec bad_type = function_task();
  bad_type.requirements.worker_type = "toaster";
  EXPECT_THROW(dispatch(bad_type), InvalidArgument);

  TaskSpec unique = function_task();
  unique.unique_key = "once";
  dispatch(unique);
  EXPECT_THROW(store_->dispatch({function_task(), unique}), InvalidArgument);

  EXPECT_EQ(count_tasks(), 1u);
  EXPECT_FALSE(store_->get_task(987654).has_value());
  EXPECT_THROW(store_->cancel_task(987654), NotFound);
  EXPECT_THROW(store_->cancel_task_group(987654), NotFound);
}

TEST_P(StoreConformance, DispatchManyKeepsOrder) {
  std::vector<TaskSpec> specs;
  for (int i = 0; i < 50; ++i) specs.push_back(function_task("m:f", Json::array({i})));
  auto ids = store_->dispatch(specs);
  ASSERT_EQ(ids.size(), 50u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(task(ids[i]).payload["args"][0], i);
}

TEST_P(StoreConformance, ClaimFollowsPriorityThenDispatchOrder) {
  TaskId low = dispatch(function_task());
  TaskSpec high_spec = function_task();
  high_spec.priority = 10;
  TaskId high = dispatch(high_spec);
  TaskId low2 = dispatch(function_task());
  EXPECT_EQ(claim_ids(2), (std::vector<TaskId>{high, low}));
  EXPECT_EQ(claim_ids(5), (std::vector<TaskId>{low2}));
  EXPECT_TRUE(claim_ids(5).empty());
}

TEST_P(StoreConformance, ClaimMarksRunningAndFencesCompletion) {
  TaskId id = dispatch(function_task());
  auto claimed = store_->claim(worker_, 1);
  ASSERT_EQ(claimed.size(), 1u);
  Task t = task(id);
  EXPECT_EQ(t.state, TaskState::Running);
  EXPECT_EQ(t.attempt, 1);
  EXPECT_EQ(t.worker_id, worker_.id);
  EXPECT_EQ(t.worker_name, "w1");
  EXPECT_TRUE(t.started_at.has_value());

  Completion stale{id, t.fence + 1, TaskState::Completed, 1, nullptr, std::nullopt};
  EXPECT_EQ(store_->complete({stale}), std::vector<bool>{false});
  EXPECT_EQ(task(id).state, TaskState::Running);

  finish(claimed[0], TaskState::Completed, Json{{"answer", 42}});
  t = task(id);
  EXPECT_EQ(t.state, TaskState::Completed);
  EXPECT_EQ(t.result, (Json{{"answer", 42}}));
  EXPECT_TRUE(t.finished_at.has_value());
  // A second completion of the same attempt is refused: the task ended.
  Completion again{id, t.fence, TaskState::Failed, nullptr, nullptr, std::nullopt};
  EXPECT_EQ(store_->complete({again}), std::vector<bool>{false});
}

TEST_P(StoreConformance, ABatchOfCompletionsKeepsEveryResultAndReason) {
  // More than one statement's worth of endings, with every kind of result.
  std::vector<TaskSpec> specs(700, function_task());
  store_->dispatch(specs);
  auto claimed = store_->claim(worker_, 700);
  ASSERT_EQ(claimed.size(), 700u);
  std::vector<Json> results = {nullptr,
                               42,
                               -1.5,
                               "a \"quoted\" \\ string ✓",
                               Json::array({1, "two", nullptr}),
                               Json{{"nested", {{"k", {true, false}}}}},
                               true,
                               ""};
  std::vector<Completion> batch;
  for (std::size_t i = 0; i < claimed.size(); ++i) {
    Completion c{claimed[i].id, claimed[i].fence, TaskState::Completed, results[i % results.size()],
                 nullptr,       std::nullopt};
    if (i % 5 == 1) {
      c.state = TaskState::Failed;
      c.result = nullptr;
      c.error = {{"type", "ValueError"}, {"message", "boom " + std::to_string(i)}};
      c.reason = "failed: it's \"bad\"";
    }
    batch.push_back(std::move(c));
  }
  store_->cancel_task(claimed[3].id);  // asked to cancel meanwhile: ends canceled
  std::vector<bool> applied = store_->complete(batch);
  EXPECT_EQ(std::count(applied.begin(), applied.end(), true), 700);
  for (std::size_t i = 0; i < claimed.size(); ++i) {
    Task t = task(claimed[i].id);
    ASSERT_TRUE(t.finished_at.has_value()) << i;
    if (i == 3) {
      EXPECT_EQ(t.state, TaskState::Canceled);
      EXPECT_TRUE(t.result.is_null());
    } else if (i % 5 == 1) {
      EXPECT_EQ(t.state, TaskState::Failed) << i;
      EXPECT_EQ(t.error.at("message"), "boom " + std::to_string(i));
      EXPECT_EQ(t.reason, "failed: it's \"bad\"");
    } else {
      EXPECT_EQ(t.state, TaskState::Completed) << i;
      EXPECT_EQ(t.result, results[i % results.size()]) << i;
      EXPECT_TRUE(t.error.is_null());
      EXPECT_FALSE(t.reason.has_value());
    }
  }
}

TEST_P(StoreConformance, NotBeforeDelaysClaim) {
  TaskSpec later = function_task();
  later.not_before = now_micros() + 3'600'000'000;
  dispatch(later);
  EXPECT_TRUE(claim_ids(1).empty());
}

TEST_P(StoreConformance, ExclusiveResourcesNeverOverlap) {
  TaskId a = dispatch(with_resources({"R"}, {}));
  TaskId b = dispatch(with_resources({"R"}, {}));
  TaskId free_task = dispatch(function_task());
  EXPECT_EQ(claim_ids(10), (std::vector<TaskId>{a, free_task}));
  finish(task(a), TaskState::Completed);
  EXPECT_EQ(claim_ids(10), (std::vector<TaskId>{b}));
}

TEST_P(StoreConformance, SharedHoldersRunTogetherAndQueuedExclusiveIsNotStarved) {
  TaskId s1 = dispatch(with_resources({}, {"R"}));
  TaskId s2 = dispatch(with_resources({}, {"R"}));
  EXPECT_EQ(claim_ids(10), (std::vector<TaskId>{s1, s2}));
  TaskId x = dispatch(with_resources({"R"}, {}));
  TaskId s3 = dispatch(with_resources({}, {"R"}));
  TaskId other = dispatch(with_resources({"S"}, {}));
  // x waits for s1/s2; s3 must not overtake x; `other` is not held back.
  EXPECT_EQ(claim_ids(10), (std::vector<TaskId>{other}));
  finish(task(s1), TaskState::Completed);
  finish(task(s2), TaskState::Completed);
  EXPECT_EQ(claim_ids(10), (std::vector<TaskId>{x}));
  finish(task(x), TaskState::Completed);
  EXPECT_EQ(claim_ids(10), (std::vector<TaskId>{s3}));
}

TEST_P(StoreConformance, DependenciesBlockThenUnblockOrSkip) {
  TaskId parent = dispatch(function_task());
  TaskSpec child_spec = function_task();
  child_spec.depends_on = {parent};
  TaskId child = dispatch(child_spec);
  TaskSpec grandchild_spec = function_task();
  grandchild_spec.depends_on = {child};
  TaskId grandchild = dispatch(grandchild_spec);
  TaskSpec tolerant_spec = function_task();
  tolerant_spec.depends_on = {parent};
  tolerant_spec.allow_failure = true;
  TaskId tolerant = dispatch(tolerant_spec);
  EXPECT_EQ(task(child).state, TaskState::Blocked);
  EXPECT_EQ(claim_ids(10), (std::vector<TaskId>{parent}));
  finish(task(parent), TaskState::Failed);
  EXPECT_EQ(task(child).state, TaskState::Skipped);
  EXPECT_EQ(task(grandchild).state, TaskState::Skipped);
  EXPECT_EQ(task(tolerant).state, TaskState::Waiting);
  EXPECT_NE(task(child).reason.value_or("").find("dependency"), std::string::npos);

  TaskId ok_parent = dispatch(function_task());
  TaskSpec next = function_task();
  next.depends_on = {ok_parent};
  TaskId next_id = dispatch(next);
  auto claimed = claim_ids(10);
  EXPECT_EQ(claimed, (std::vector<TaskId>{tolerant, ok_parent}));
  finish(task(ok_parent), TaskState::Completed);
  EXPECT_EQ(task(next_id).state, TaskState::Waiting);
  // Depending on an already failed task skips at once.
  TaskSpec late = function_task();
  late.depends_on = {parent};
  EXPECT_EQ(task(dispatch(late)).state, TaskState::Skipped);
}

TEST_P(StoreConformance, AppendHistoryAppendsOrWritesNothing) {
  TaskSpec spec = function_task();
  spec.history = Json::array({{{"event", "on_creation"}}});
  TaskId id = dispatch(spec);
  store_->append_history(id, Json::array({{{"event", "on_unblock"}, {"error", "no hook"}}}));
  store_->append_history(id, Json::array());
  Json expected =
      Json::array({{{"event", "on_creation"}}, {{"event", "on_unblock"}, {"error", "no hook"}}});
  EXPECT_EQ(task(id).history, expected);
  EXPECT_THROW(store_->append_history(id + 100, Json::array({Json::object()})), NotFound);
  EXPECT_THROW(store_->append_history(id, Json::object()), InvalidArgument);
  EXPECT_THROW(store_->append_history(id, Json::array({Json::object(), 3})), InvalidArgument);
  EXPECT_EQ(task(id).history, expected);
}

TEST_P(StoreConformance, CancelWaitingAndRunningTasks) {
  TaskId waiting = dispatch(function_task());
  EXPECT_EQ(store_->cancel_task(waiting), TaskState::Canceled);
  EXPECT_EQ(task(waiting).state, TaskState::Canceled);
  EXPECT_TRUE(claim_ids(5).empty());

  TaskId running = dispatch(function_task());
  ASSERT_EQ(claim_ids(1), std::vector<TaskId>{running});
  EXPECT_EQ(store_->cancel_task(running), TaskState::Canceling);
  auto canceling = store_->canceling_tasks(worker_.id);
  ASSERT_EQ(canceling.size(), 1u);
  EXPECT_EQ(canceling[0].first, running);
  finish(task(running), TaskState::Canceled);
  EXPECT_EQ(task(running).state, TaskState::Canceled);
  EXPECT_EQ(store_->cancel_task(running), TaskState::Canceled);
}

TEST_P(StoreConformance, CancelTaskGroup) {
  GroupId group = store_->create_task_group("g");
  TaskSpec spec = function_task();
  spec.task_group = group;
  TaskId a = dispatch(spec);
  TaskId b = dispatch(spec);
  TaskId outside = dispatch(function_task());
  ASSERT_EQ(claim_ids(1), std::vector<TaskId>{a});
  EXPECT_EQ(store_->cancel_task_group(group), 2);
  EXPECT_EQ(task(a).state, TaskState::Canceling);
  EXPECT_EQ(task(b).state, TaskState::Canceled);
  EXPECT_EQ(task(outside).state, TaskState::Waiting);
}

TEST_P(StoreConformance, FailedAttemptIsRetriedWhilePolicyAllows) {
  TaskSpec spec = function_task();
  spec.retry.max_attempts = 2;
  spec.retry.delays = {0};
  TaskId id = dispatch(spec);
  ASSERT_EQ(claim_ids(1), std::vector<TaskId>{id});
  finish(task(id), TaskState::Failed);
  Task t = task(id);
  EXPECT_EQ(t.state, TaskState::Waiting);
  EXPECT_EQ(t.error["type"], "ValueError");
  ASSERT_EQ(claim_ids(1), std::vector<TaskId>{id});
  EXPECT_EQ(task(id).attempt, 2);
  finish(task(id), TaskState::Failed);
  EXPECT_EQ(task(id).state, TaskState::Failed);
}

TEST_P(StoreConformance, LostWorkerTasksAreRecoveredAndLateWritesRejected) {
  TaskSpec retried = function_task();
  retried.retry.max_attempts = 2;
  TaskId a = dispatch(retried);
  TaskId b = dispatch(function_task());
  auto claimed = store_->claim(worker_, 2);
  ASSERT_EQ(claimed.size(), 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(store_->recover_lost_workers(std::chrono::milliseconds(10)), 2);
  EXPECT_EQ(task(a).state, TaskState::Waiting);
  EXPECT_EQ(task(b).state, TaskState::Failed);
  EXPECT_EQ(task(b).reason, "worker lost");
  EXPECT_EQ(task(b).error["type"], "WorkerLost");
  EXPECT_FALSE(store_->heartbeat(worker_.id));
  EXPECT_TRUE(store_->list_workers(false).empty());
  // The zombie worker's late completions are fenced off.
  for (const auto& t : claimed) {
    Completion late{t.id, t.fence, TaskState::Completed, 1, nullptr, std::nullopt};
    EXPECT_EQ(store_->complete({late}), std::vector<bool>{false});
  }
  WorkerInfo fresh = register_worker("w2");
  auto reclaimed = store_->claim(fresh, 5);
  ASSERT_EQ(reclaimed.size(), 1u);
  EXPECT_EQ(reclaimed[0].id, a);
  EXPECT_EQ(reclaimed[0].attempt, 2);
  EXPECT_GT(reclaimed[0].fence, claimed[0].fence);
}

TEST_P(StoreConformance, HeartbeatKeepsWorkerAlive) {
  EXPECT_TRUE(store_->heartbeat(worker_.id));
  EXPECT_EQ(store_->recover_lost_workers(std::chrono::hours(1)), 0);
  auto workers = store_->list_workers(false);
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].name, "w1");
  store_->unregister_worker(worker_.id);
  EXPECT_TRUE(store_->list_workers(false).empty());
  EXPECT_EQ(store_->list_workers(true).size(), 1u);
}

TEST_P(StoreConformance, RequeueDoesNotCountAsAnAttempt) {
  TaskId id = dispatch(function_task());
  auto claimed = store_->claim(worker_, 1);
  ASSERT_TRUE(store_->requeue(id, claimed[0].fence, "worker stopping"));
  Task t = task(id);
  EXPECT_EQ(t.state, TaskState::Waiting);
  EXPECT_EQ(t.attempt, 0);
  EXPECT_FALSE(store_->requeue(id, claimed[0].fence, "again"));
}

TEST_P(StoreConformance, WaitingCompletionsRequeueInTheBatchTransaction) {
  // A worker hands back tasks it held unstarted together with results:
  // one complete() call, no attempt counted, resources given back.
  TaskId done = dispatch(function_task());
  TaskId held = dispatch(with_resources({"repo/a"}, {}));
  TaskId canceled = dispatch(function_task());
  auto claimed = store_->claim(worker_, 3);
  ASSERT_EQ(claimed.size(), 3u);
  EXPECT_EQ(store_->cancel_task(canceled), TaskState::Canceling);
  std::map<TaskId, std::int64_t> fence;
  for (const auto& t : claimed) fence[t.id] = t.fence;
  auto applied = store_->complete(
      {{done, fence[done], TaskState::Completed, Json(1), nullptr, std::nullopt},
       {held, fence[held], TaskState::Waiting, nullptr, nullptr, std::string("handed back")},
       {canceled, fence[canceled], TaskState::Waiting, nullptr, nullptr, std::nullopt}});
  EXPECT_EQ(applied, (std::vector<bool>{true, true, true}));
  EXPECT_EQ(task(done).state, TaskState::Completed);
  Task back = task(held);
  EXPECT_EQ(back.state, TaskState::Waiting);
  EXPECT_EQ(back.attempt, 0);
  EXPECT_EQ(back.reason, "handed back");
  // Asked to cancel while held: it never started, so it ends canceled.
  EXPECT_EQ(task(canceled).state, TaskState::Canceled);
  // The resource is free again: the task is claimable, with a new fence.
  auto again = store_->claim(worker_, 5);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, held);
  EXPECT_EQ(again[0].attempt, 1);
  // The old attempt's token no longer applies.
  EXPECT_EQ(
      store_->complete({{held, fence[held], TaskState::Waiting, nullptr, nullptr, std::nullopt}}),
      std::vector<bool>{false});
}

TEST_P(StoreConformance, MatchingKeepsTasksForCapableWorkers) {
  TaskSpec signing = function_task();
  signing.requirements.worker_type = "signing";
  TaskId s = dispatch(signing);
  TaskSpec versioned = function_task();
  versioned.requirements.versions = {{"gcc", "12.2"}};
  TaskId v = dispatch(versioned);
  EXPECT_TRUE(claim_ids(10).empty());
  WorkerInfo signer = register_worker("signer", "signing");
  EXPECT_EQ(claim_ids(10, &signer), std::vector<TaskId>{s});
  WorkerInfo old_gcc = register_worker("old", "worker", {{"versions", {{"gcc", "12.1.9"}}}});
  EXPECT_TRUE(claim_ids(10, &old_gcc).empty());
  WorkerInfo new_gcc = register_worker("new", "worker", {{"versions", {{"gcc", "12.10"}}}});
  EXPECT_EQ(claim_ids(10, &new_gcc), std::vector<TaskId>{v});
}

TEST_P(StoreConformance, WakeUpsReachOnlyWorkersThatCanAct) {
  auto listener = store_->listen(worker_);
  WorkerInfo signer = register_worker("signer", "signing");
  auto signing_listener = store_->listen(signer);
  EXPECT_FALSE(listener->wait(std::chrono::milliseconds(50)));
  auto other = open_store(test_store_->url());
  TaskId id = other->dispatch({function_task()}).at(0);
  EXPECT_TRUE(listener->wait(std::chrono::seconds(5)));
  EXPECT_FALSE(signing_listener->wait(std::chrono::milliseconds(100)));

  // A task held back by a resource wakes nobody; freeing it does.
  TaskId holder = dispatch(with_resources({"R"}, {}));
  listener->wait(std::chrono::milliseconds(100));
  ASSERT_EQ(claim_ids(2), (std::vector<TaskId>{id, holder}));
  other->dispatch({with_resources({"R"}, {})});
  EXPECT_FALSE(listener->wait(std::chrono::milliseconds(100)));
  finish(task(holder), TaskState::Completed);
  EXPECT_TRUE(listener->wait(std::chrono::seconds(5)));

  // Cancel reaches the worker running the task.
  other->cancel_task(id);
  EXPECT_TRUE(listener->wait(std::chrono::seconds(5)));
  EXPECT_FALSE(signing_listener->wait(std::chrono::milliseconds(50)));
  listener->interrupt();
  EXPECT_TRUE(listener->wait(std::chrono::seconds(5)));
}

TEST_P(StoreConformance, ConcurrentClaimersNeverShareATask) {
  std::vector<TaskSpec> specs;
  for (int i = 0; i < 200; ++i)
    specs.push_back(i % 4 == 0 ? with_resources({"R" + std::to_string(i % 3)}, {})
                               : function_task());
  store_->dispatch(specs);
  std::mutex mutex;
  std::vector<TaskId> all;
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      auto store = open_store(test_store_->url());
      WorkerInfo info;
      info.name = "t" + std::to_string(w);
      info.id = store->register_worker(info);
      for (int round = 0; round < 200; ++round) {
        auto claimed = store->claim(info, 3);
        std::vector<Completion> done;
        for (const auto& t : claimed)
          done.push_back({t.id, t.fence, TaskState::Completed, 1, nullptr, std::nullopt});
        store->complete(done);
        std::lock_guard lock(mutex);
        for (const auto& t : claimed) all.push_back(t.id);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<TaskId> unique(all.begin(), all.end());
  EXPECT_EQ(unique.size(), all.size());
  EXPECT_EQ(all.size(), 200u);
}

// A dispatch reads its dependencies' states, a completion looks for the
// dependents it unblocks: unless they take turns, each can miss the other's
// uncommitted row, and the dependent stays blocked for ever.
TEST_P(StoreConformance, DependentsDispatchedWhileTheirDependencyEndsAreNeverLeftBlocked) {
  auto other = open_store(test_store_->url());
  for (int round = 0; round < 30; ++round) {
    TaskId parent = dispatch(function_task());
    std::vector<Task> claimed = store_->claim(worker_, 1);
    ASSERT_EQ(claimed.size(), 1u);
    std::vector<TaskSpec> dependents(20, function_task());
    for (auto& spec : dependents) spec.depends_on = {parent};
    std::latch start(2);
    std::thread completer([&] {
      start.arrive_and_wait();
      other->complete({{parent, claimed[0].fence, TaskState::Completed, 1, nullptr, std::nullopt}});
    });
    start.arrive_and_wait();
    std::vector<TaskId> ids = store_->dispatch(dependents);
    completer.join();
    for (TaskId id : ids) ASSERT_EQ(task(id).state, TaskState::Waiting) << "round " << round;
    for (const auto& t : store_->claim(worker_, 100))  // clear the queue for the next round
      store_->complete({{t.id, t.fence, TaskState::Completed, 1, nullptr, std::nullopt}});
  }
}

TEST_P(StoreConformance, RetvalArgumentsResolveWhenTheDependentStarts) {
  TaskId parent = dispatch(function_task());
  TaskSpec child = function_task("m:f", Json::array({Json{{"$retval", parent}}, 7}));
  child.payload["kwargs"] = {{"nested", {{"x", Json{{"$retval", parent}}}}}};
  child.depends_on = {parent};
  TaskId child_id = dispatch(child);
  TaskSpec stray = function_task("m:f", Json::array({Json{{"$retval", parent}}}));
  EXPECT_THROW(dispatch(stray), InvalidArgument);  // not in depends_on

  auto claimed = store_->claim(worker_, 1);
  finish(claimed.at(0), TaskState::Completed, Json{{"files", 3}});
  auto started = store_->claim(worker_, 1);
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].id, child_id);
  EXPECT_EQ(started[0].payload["args"], (Json::array({Json{{"files", 3}}, 7})));
  EXPECT_EQ(started[0].payload["kwargs"]["nested"]["x"], (Json{{"files", 3}}));
  // The stored arguments keep the reference.
  EXPECT_EQ(task(child_id).payload["args"][0], (Json{{"$retval", parent}}));
}

TEST_P(StoreConformance, ClaimTaskTakesOneTaskOnlyIfItMayStart) {
  TaskId holder = dispatch(with_resources({"R"}, {}));
  TaskId blocked = dispatch(with_resources({"R"}, {}));
  TaskId free_task = dispatch(function_task());
  EXPECT_FALSE(store_->claim_task(blocked, worker_).has_value());
  auto started = store_->claim_task(holder, worker_);
  ASSERT_TRUE(started.has_value());
  EXPECT_EQ(started->state, TaskState::Running);
  EXPECT_EQ(task(holder).worker_id, worker_.id);
  EXPECT_FALSE(store_->claim_task(holder, worker_).has_value());  // already running
  WorkerInfo signer = register_worker("signer", "signing");
  EXPECT_FALSE(store_->claim_task(free_task, signer).has_value());  // wrong type
  EXPECT_EQ(store_->cancel_task(blocked, "Resources temporarily unavailable"), TaskState::Canceled);
  EXPECT_EQ(task(blocked).reason, "Resources temporarily unavailable");
}

TEST_P(StoreConformance, WaitingTasksSayWhy) {
  TaskId holder = dispatch(with_resources({"R"}, {}));
  TaskId behind = dispatch(with_resources({}, {"R"}));
  TaskSpec signing = function_task();
  signing.requirements.worker_type = "signing";
  TaskId unmatched = dispatch(signing);
  ASSERT_EQ(claim_ids(1), std::vector<TaskId>{holder});
  EXPECT_EQ(task(behind).reason,
            "waiting for resource 'R', held by running task " + std::to_string(holder));
  EXPECT_EQ(task(unmatched).reason,
            "no online worker can run it: it needs a worker of type signing");
}

TEST_P(StoreConformance, OfflineWorkersClaimNothingAndTheirTasksAreRecovered) {
  TaskId first = dispatch(function_task());
  ASSERT_EQ(claim_ids(1), std::vector<TaskId>{first});
  // A worker that unregisters with a task still running does not strand it.
  store_->unregister_worker(worker_.id);
  TaskId second = dispatch(function_task());
  EXPECT_TRUE(claim_ids(1).empty());
  EXPECT_FALSE(store_->claim_task(second, worker_).has_value());
  EXPECT_EQ(store_->recover_lost_workers(std::chrono::hours(1)), 1);
  EXPECT_EQ(task(first).state, TaskState::Failed);
  EXPECT_EQ(task(first).reason, "worker lost");
  EXPECT_EQ(store_->recover_lost_workers(std::chrono::hours(1)), 0);
  TaskSpec twice = with_resources({"r", "r"}, {});
  EXPECT_THROW(dispatch(twice), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace taskengine
