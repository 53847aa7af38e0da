// Task classes in the core, on every backend: create_work_request driving a
// C++ TaskClass, can_run_on declines at creation and at claim, history.
#include <gtest/gtest.h>

#include "support/store_test.hpp"
#include "taskengine/engine.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/store.hpp"
#include "taskengine/task_class.hpp"

namespace taskengine {
namespace {

// A real task class written in C++: it runs only on workers whose metadata
// has "greet:ok" true, records its creation and retries twice on failure.
class GreetClass final : public TaskClass {
 public:
  std::string name() const override { return "greet"; }
  std::string task_type() const override { return "worker"; }
  std::optional<std::int64_t> task_version() const override { return 3; }
  Json validate_data(const Json& data) const override {
    if (!data.contains("who") || !data["who"].is_string())
      throw InvalidArgument("greet: field 'who' is required");
    return {{"who", data["who"]}};
  }
  Json build_dynamic_data(const Json& data) const override { return {{"subject", data["who"]}}; }
  bool can_run_on(const Json&, const Json& metadata) const override {
    ++can_run_on_calls;
    return metadata.value("greet:ok", false);
  }
  Json event_reactions(const Json&) const override {
    return {{"on_creation", {{{"action", "record_in_task_history"}, {"data", {{"n", 1}}}}}},
            {"on_failure", {{{"action", "retry_with_delays"}, {"delays", {5.0, 60.0}}}}}};
  }
  mutable int can_run_on_calls = 0;
};

class TaskClassConformance : public testing::StoreTest {
 protected:
  // No worker of the fixture's: can_run_on is asked of every online worker.
  TaskClassConformance() : StoreTest(/*with_worker=*/false) {}

  // A worker that greet accepts only if `ok`.
  WorkerInfo greet_worker(const std::string& name, bool ok) {
    return register_worker(
        name, "worker", {{"system:worker_type", "worker"}, {"greet:version", 3}, {"greet:ok", ok}});
  }
};

TEST_P(TaskClassConformance, CreateWorkRequestStoresWhatTheClassSays) {
  GreetClass greet;
  TaskId id = create_work_request(*store_, greet, {{"who", "world"}}, TaskSpec{});
  Task task = store_->get_task(id).value();
  EXPECT_EQ(task.kind, TaskKind::TaskClass);
  EXPECT_EQ(task.name, "greet");
  EXPECT_EQ(task.payload["task_data"], Json({{"who", "world"}}));
  EXPECT_EQ(task.payload["dynamic_data"], Json({{"subject", "world"}}));
  EXPECT_EQ(task.requirements.task_version, 3);
  EXPECT_EQ(task.retry.max_attempts, 3);
  EXPECT_EQ(task.retry.delays, (std::vector<double>{5.0, 60.0}));
  ASSERT_EQ(task.history.size(), 1u);
  EXPECT_EQ(task.history[0]["event"], "on_creation");
  EXPECT_EQ(task.history[0]["data"], Json({{"n", 1}}));
}

TEST_P(TaskClassConformance, TheEngineCreatesWorkRequestsToo) {
  Engine engine(test_store_->url());
  GreetClass greet;
  TaskSpec options;
  options.priority = 4;
  TaskId id = engine.create_work_request(greet, {{"who", "engine"}}, options);
  Task task = engine.get_task(id);
  EXPECT_EQ(task.priority, 4);
  EXPECT_EQ(task.payload["task_name"], "greet");
}

TEST_P(TaskClassConformance, InvalidDataStoresNothing) {
  GreetClass greet;
  EXPECT_THROW(create_work_request(*store_, greet, {{"whom", "x"}}, TaskSpec{}), InvalidArgument);
  EXPECT_TRUE(store_->list_tasks({}).empty());
}

TEST_P(TaskClassConformance, WorkersRefusedAtCreationNeverClaimIt) {
  GreetClass greet;
  WorkerInfo refused = greet_worker("refused", false);
  TaskId id = create_work_request(*store_, greet, {{"who", "x"}}, TaskSpec{});
  EXPECT_EQ(greet.can_run_on_calls, 1);
  EXPECT_TRUE(store_->claim(refused, 5).empty());
  Task waiting = store_->get_task(id).value();
  EXPECT_EQ(waiting.state, TaskState::Waiting);
  EXPECT_EQ(waiting.reason.value_or(""),
            "no online worker can run it: it was refused by greet.can_run_on on worker refused");
  WorkerInfo accepted = greet_worker("accepted", true);
  auto claimed = store_->claim(accepted, 5);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].id, id);
}

TEST_P(TaskClassConformance, DeclineHandsBackWithoutCountingAndIsRemembered) {
  GreetClass greet;
  TaskId id = create_work_request(*store_, greet, {{"who", "x"}}, TaskSpec{});
  WorkerInfo late = greet_worker("late", false);  // registered after the creation
  auto claimed = store_->claim(late, 5);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_TRUE(store_->decline(id, claimed[0].fence, late.id, "can_run_on refused"));
  Task task = store_->get_task(id).value();
  EXPECT_EQ(task.state, TaskState::Waiting);
  EXPECT_EQ(task.attempt, 0);
  EXPECT_TRUE(store_->claim(late, 5).empty());                            // no spinning on it
  EXPECT_FALSE(store_->decline(id, claimed[0].fence, late.id, "again"));  // stale
  WorkerInfo other = greet_worker("other", true);
  EXPECT_EQ(store_->claim(other, 5).size(), 1u);
}

TEST_P(TaskClassConformance, CompletionAppendsHistory) {
  GreetClass greet;
  TaskId id = create_work_request(*store_, greet, {{"who", "x"}}, TaskSpec{});
  WorkerInfo worker = greet_worker("w", true);
  Task claimed = store_->claim(worker, 1).at(0);
  Completion c{id, claimed.fence, TaskState::Completed, Json({{"success", true}}), nullptr, {}};
  c.history = Json::array({{{"event", "on_success"}, {"data", Json::object()}}});
  ASSERT_EQ(store_->complete({c}), std::vector<bool>{true});
  Task done = store_->get_task(id).value();
  ASSERT_EQ(done.history.size(), 2u);
  EXPECT_EQ(done.history[1]["event"], "on_success");
}

INSTANTIATE_TEST_SUITE_P(Backends, TaskClassConformance, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace taskengine
