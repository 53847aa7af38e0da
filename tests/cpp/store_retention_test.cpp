// Conformance of retention (prune_tasks): every TEST_P runs against SQLite
// and PostgreSQL.
#include <gtest/gtest.h>

#include <thread>

#include "support/store_test.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/store.hpp"

namespace taskengine {
namespace {

class RetentionConformance : public testing::StoreTest {
 protected:
  // A task that ran on worker_ and ended in `state`.
  TaskId finished(TaskState state) {
    Task claimed = running();
    finish(claimed, state, state == TaskState::Completed ? Json(1) : Json());
    return claimed.id;
  }

  // A point in time strictly after everything finished so far and before
  // anything that finishes later.
  Micros cutoff() {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    Micros at = now_micros();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return at;
  }

  std::int64_t prune(Micros before, std::vector<TaskState> states = {}, int limit = 1000,
                     bool include_builds = false) {
    TaskPruneFilter filter;
    filter.finished_before = before;
    filter.states = std::move(states);
    filter.limit = limit;
    filter.include_builds = include_builds;
    return store_->prune_tasks(filter);
  }

  bool exists(TaskId id) { return store_->get_task(id).has_value(); }
};

TEST_P(RetentionConformance, DeletesTasksThatFinishedBeforeTheCutoffOnly) {
  TaskId completed = finished(TaskState::Completed);
  TaskId failed = finished(TaskState::Failed);
  TaskId canceled = dispatch(testing::function_task());
  store_->cancel_task(canceled);
  Micros at = cutoff();
  TaskId young = finished(TaskState::Completed);
  TaskId waiting = dispatch(testing::function_task());
  Task active = running();

  EXPECT_EQ(prune(at), 3);
  EXPECT_FALSE(exists(completed));
  EXPECT_FALSE(exists(failed));
  EXPECT_FALSE(exists(canceled));
  EXPECT_TRUE(exists(young));
  EXPECT_TRUE(exists(waiting));
  EXPECT_TRUE(exists(active.id));
  EXPECT_EQ(prune(at), 0);  // nothing left that old
}

TEST_P(RetentionConformance, NeverDeletesUnfinishedTasksWhateverTheirAge) {
  TaskId waiting = dispatch(testing::function_task());
  Task active = running();
  TaskSpec blocked_spec = testing::function_task();
  blocked_spec.depends_on = {waiting};
  TaskId blocked = dispatch(blocked_spec);
  Task canceling = running();
  ASSERT_EQ(store_->cancel_task(canceling.id), TaskState::Canceling);

  EXPECT_EQ(prune(now_micros() + 3'600'000'000), 0);
  for (TaskId id : {waiting, active.id, blocked, canceling.id}) EXPECT_TRUE(exists(id)) << id;
}

TEST_P(RetentionConformance, StatesNarrowWhatIsDeleted) {
  TaskId completed = finished(TaskState::Completed);
  TaskId failed = finished(TaskState::Failed);
  Micros at = cutoff();
  EXPECT_EQ(prune(at, {TaskState::Failed}), 1);
  EXPECT_TRUE(exists(completed));
  EXPECT_FALSE(exists(failed));
}

TEST_P(RetentionConformance, LimitDeletesTheEarliestFinishedFirst) {
  // Finish in the opposite order of the ids: the earliest finished go first.
  std::vector<Task> claimed;
  for (int i = 0; i < 5; ++i) claimed.push_back(running());
  for (auto it = claimed.rbegin(); it != claimed.rend(); ++it) {
    finish(*it, TaskState::Completed, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  Micros at = cutoff();
  EXPECT_EQ(prune(at, {}, 2), 2);
  EXPECT_FALSE(exists(claimed[4].id));
  EXPECT_FALSE(exists(claimed[3].id));
  EXPECT_TRUE(exists(claimed[2].id));
  EXPECT_EQ(prune(at, {}, 2), 2);
  EXPECT_EQ(prune(at, {}, 2), 1);
  EXPECT_EQ(prune(at, {}, 2), 0);
}

TEST_P(RetentionConformance, KeepsADependencyWhileItsDependentIsUnfinished) {
  TaskId other = dispatch(testing::function_task());
  TaskId dependency = finished(TaskState::Completed);
  TaskSpec spec = testing::function_task("pkg.mod:fn", Json::array({{{"$retval", dependency}}}));
  spec.depends_on = {dependency, other};  // blocked on `other`, still needs the result
  TaskId dependent = dispatch(spec);
  ASSERT_EQ(task(dependent).state, TaskState::Blocked);

  EXPECT_EQ(prune(cutoff()), 0);
  EXPECT_TRUE(exists(dependency));

  // Once the dependent ran, its dependency may go; the dependent keeps its
  // record of what it depended on.
  Task first = store_->claim_task(other, worker_).value();
  finish(first, TaskState::Completed, 2);
  Task started = store_->claim_task(dependent, worker_).value();
  EXPECT_EQ(started.payload["args"][0], 1);  // the result, passed on
  finish(started, TaskState::Completed, 3);
  EXPECT_EQ(prune(cutoff(), {}, 1000), 3);
  EXPECT_FALSE(exists(dependency));
}

TEST_P(RetentionConformance, DeletesTheTasksOutputWithIt) {
  Task claimed = running();
  TaskOutput output;
  output.task_id = claimed.id;
  output.fence = claimed.fence;
  LogRecord record;
  record.message = "hello";
  record.level = 20;
  output.records.push_back(record);
  Progress progress;
  progress.group_name = "";
  progress.current = 1;
  progress.total = 2;
  output.progress.push_back(progress);
  Artifact artifact;
  artifact.info.name = "out.txt";
  artifact.content = "data";
  output.artifacts.push_back(artifact);
  ASSERT_EQ(store_->write_task_output({output}), std::vector<bool>{true});
  finish(claimed, TaskState::Completed, 1);

  LogFilter logs;
  logs.task_ids = {claimed.id};
  ASSERT_EQ(store_->list_log_records(logs).size(), 1u);
  EXPECT_EQ(prune(cutoff()), 1);
  EXPECT_TRUE(store_->list_log_records(logs).empty());
  EXPECT_THROW(store_->get_progress(claimed.id), NotFound);
  EXPECT_THROW(store_->list_artifacts(claimed.id), NotFound);
}

TEST_P(RetentionConformance, KeepsBuildsUnlessAsked) {
  JobDefinition job;
  job.id = "nightly";
  job.function = "pkg.mod:fn";
  store_->load_jobs({job});
  TaskId build = store_->create_build("nightly", {});
  Task claimed = store_->claim_task(build, worker_).value();
  finish(claimed, TaskState::Completed, 1);
  TaskId plain = finished(TaskState::Completed);
  Micros at = cutoff();

  EXPECT_EQ(prune(at), 1);
  EXPECT_FALSE(exists(plain));
  EXPECT_TRUE(store_->get_build(build).has_value());
  EXPECT_EQ(prune(at, {}, 1000, true), 1);
  EXPECT_FALSE(store_->get_build(build).has_value());
}

TEST_P(RetentionConformance, BadFilterIsRejectedAndNothingIsDeleted) {
  TaskId completed = finished(TaskState::Completed);
  Micros at = cutoff();
  EXPECT_THROW(prune(at, {TaskState::Completed, TaskState::Running}), InvalidArgument);
  EXPECT_THROW(prune(at, {TaskState::Waiting}), InvalidArgument);
  EXPECT_THROW(prune(at, {}, 0), InvalidArgument);
  EXPECT_TRUE(exists(completed));
}

INSTANTIATE_TEST_SUITE_P(Backends, RetentionConformance, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace taskengine
