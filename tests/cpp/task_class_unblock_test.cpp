// on_unblock reactions on every backend: the store applies them in the
// transaction that unblocks the task (blocked -> waiting), never for a task
// skipped or canceled while blocked.
#include <gtest/gtest.h>

#include "support/store_test.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/store.hpp"
#include "taskengine/task_class.hpp"

namespace taskengine {
namespace {

constexpr const char* kDeliver = "taskengine.tasks._unblock:deliver_unblock";

// A task class whose on_unblock records an entry and, if asked, notifies.
class UnblockClass final : public TaskClass {
 public:
  explicit UnblockClass(bool notify, std::string type = "worker")
      : notify_(notify), type_(std::move(type)) {}
  std::string name() const override { return "unblocked"; }
  std::string task_type() const override { return type_; }
  std::optional<std::int64_t> task_version() const override { return 1; }
  Json validate_data(const Json& data) const override { return data; }
  Json build_dynamic_data(const Json&) const override { return Json::object(); }
  bool can_run_on(const Json&, const Json&) const override { return true; }
  Json event_reactions(const Json&) const override {
    Json on_unblock = Json::array({{{"action", "record_in_task_history"}, {"data", {{"u", 1}}}}});
    if (notify_)
      on_unblock.push_back(
          {{"action", "send_notification"}, {"channel", "chat"}, {"data", Json::object()}});
    return {{"on_unblock", on_unblock}};
  }

 private:
  bool notify_;
  std::string type_;
};

using testing::function_task;

class TaskClassUnblock : public testing::StoreTest {
 protected:
  // A class task depending on `dependency`, with `priority`.
  TaskId dependent(const TaskClass& cls, TaskId dependency, int priority = 0) {
    TaskSpec options;
    options.depends_on = {dependency};
    options.priority = priority;
    return create_work_request(*store_, cls, Json::object(), options);
  }

  // Claims `id` (the only task the worker can take) and ends it as `state`.
  void finish(TaskId id, TaskState state) {
    auto claimed = store_->claim(worker_, 1);
    ASSERT_EQ(claimed.size(), 1u);
    ASSERT_EQ(claimed[0].id, id);
    StoreTest::finish(claimed[0], state);
  }

  std::vector<Task> deliveries() {
    std::vector<Task> out;
    for (auto& t : store_->list_tasks({std::nullopt, std::nullopt, std::nullopt, 1000, false}))
      if (t.name == kDeliver) out.push_back(std::move(t));
    return out;
  }

  static std::size_t unblock_entries(const Task& t) {
    std::size_t n = 0;
    for (const auto& entry : t.history) n += entry.value("event", "") == "on_unblock";
    return n;
  }

  // `id` is in `state` with no on_unblock reaction applied: no history
  // entry, no delivery task.
  ::testing::AssertionResult never_unblocked(TaskId id, TaskState state) {
    Task t = task(id);
    if (t.state != state)
      return ::testing::AssertionFailure() << "task " << id << " is " << to_string(t.state);
    if (unblock_entries(t) != 0)
      return ::testing::AssertionFailure() << "task " << id << " has an on_unblock entry";
    if (!deliveries().empty()) return ::testing::AssertionFailure() << "a delivery was dispatched";
    return ::testing::AssertionSuccess();
  }
};

TEST_P(TaskClassUnblock, HistoryEntryIsWrittenByTheCompletionThatUnblocks) {
  UnblockClass cls(false);
  TaskId dependency = dispatch(function_task());
  TaskId id = dependent(cls, dependency);
  EXPECT_EQ(task(id).state, TaskState::Blocked);
  EXPECT_EQ(unblock_entries(task(id)), 0u);
  Micros before = now_micros();
  finish(dependency, TaskState::Completed);
  Micros after = now_micros();
  Task unblocked = task(id);
  EXPECT_EQ(unblocked.state, TaskState::Waiting);
  ASSERT_EQ(unblocked.history.size(), 1u);
  const Json& entry = unblocked.history[0];
  EXPECT_EQ(entry["event"], "on_unblock");
  EXPECT_EQ(entry["data"], Json({{"u", 1}}));
  EXPECT_GE(entry["at"].get<Micros>(), before);
  EXPECT_LE(entry["at"].get<Micros>(), after);
  EXPECT_TRUE(deliveries().empty());  // nothing to notify
}

TEST_P(TaskClassUnblock, NotificationsDispatchTheirDeliveryAtTheUnblock) {
  UnblockClass cls(true, "server");  // nothing here runs server tasks
  TaskId dependency = dispatch(function_task());
  TaskId id = dependent(cls, dependency, 7);
  EXPECT_TRUE(deliveries().empty());
  finish(dependency, TaskState::Completed);
  auto found = deliveries();
  ASSERT_EQ(found.size(), 1u);
  const Task& delivery = found[0];
  EXPECT_EQ(delivery.kind, TaskKind::Function);
  EXPECT_EQ(delivery.state, TaskState::Waiting);
  EXPECT_EQ(delivery.payload["function"], kDeliver);
  EXPECT_EQ(delivery.payload["kwargs"], Json({{"task_id", id}}));
  EXPECT_EQ(delivery.requirements.worker_type, "server");
  EXPECT_EQ(delivery.priority, 8);            // just ahead of the task
  EXPECT_GT(delivery.retry.max_attempts, 1);  // a lost worker does not lose it
  EXPECT_TRUE(delivery.depends_on.empty());
  EXPECT_EQ(unblock_entries(task(id)), 1u);
}

TEST_P(TaskClassUnblock, CanceledWhileBlockedNeverUnblocks) {
  UnblockClass cls(true);
  TaskId dependency = dispatch(function_task());
  TaskId id = dependent(cls, dependency);
  EXPECT_EQ(store_->cancel_task(id), TaskState::Canceled);
  finish(dependency, TaskState::Completed);
  EXPECT_TRUE(never_unblocked(id, TaskState::Canceled));
}

TEST_P(TaskClassUnblock, AFailedDependencySkipsBoth) {
  UnblockClass cls(true);
  TaskId dependency = dispatch(function_task());
  TaskId id = dependent(cls, dependency);
  finish(dependency, TaskState::Failed);
  EXPECT_TRUE(never_unblocked(id, TaskState::Skipped));
  // Created after the failure: skipped at once, nothing applied either.
  EXPECT_TRUE(never_unblocked(dependent(cls, dependency), TaskState::Skipped));
}

TEST_P(TaskClassUnblock, DependenciesAlreadyDoneUnblockAtCreation) {
  UnblockClass cls(true);
  TaskId dependency = dispatch(function_task());
  finish(dependency, TaskState::Completed);
  TaskId id = dependent(cls, dependency);
  EXPECT_EQ(task(id).state, TaskState::Waiting);
  EXPECT_EQ(unblock_entries(task(id)), 1u);
  ASSERT_EQ(deliveries().size(), 1u);
  EXPECT_EQ(deliveries()[0].payload["kwargs"]["task_id"], id);
}

TEST_P(TaskClassUnblock, ATaskWithoutDependenciesIsNeverUnblocked) {
  UnblockClass cls(true);
  TaskId id = create_work_request(*store_, cls, Json::object(), TaskSpec{});
  EXPECT_TRUE(never_unblocked(id, TaskState::Waiting));
}

TEST_P(TaskClassUnblock, AllowFailureUnblocksAfterAFailedDependency) {
  UnblockClass cls(false);
  TaskId dependency = dispatch(function_task());
  TaskSpec options;
  options.depends_on = {dependency};
  options.allow_failure = true;
  TaskId id = create_work_request(*store_, cls, Json::object(), options);
  finish(dependency, TaskState::Failed);
  EXPECT_EQ(task(id).state, TaskState::Waiting);
  EXPECT_EQ(unblock_entries(task(id)), 1u);
}

TEST_P(TaskClassUnblock, BadUnblockReactionsAreRefusedAndNothingIsStored) {
  TaskId dependency = dispatch(function_task());
  TaskSpec spec = function_task();
  spec.depends_on = {dependency};
  spec.unblock_history = Json::array({1});
  EXPECT_THROW(dispatch(spec), InvalidArgument);
  spec.unblock_history = Json::array();
  TaskSpec chained = function_task();
  chained.depends_on = {dependency};
  spec.unblock_dispatch = {chained};
  EXPECT_THROW(dispatch(spec), InvalidArgument);
  EXPECT_EQ(store_->list_tasks({}).size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, TaskClassUnblock, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace taskengine
