// Jobs and builds, on every backend: each TEST_P runs against SQLite and PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>

#include "support/store_test.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/jobs.hpp"
#include "taskengine/store.hpp"

namespace taskengine {
namespace {

JobDefinition job(const std::string& id, std::vector<std::string> deps = {},
                  Json args = Json::array()) {
  JobDefinition j;
  j.id = id;
  j.function = "pkg.jobs:" + id;
  j.args = std::move(args);
  j.title = "Job " + id;
  j.dependencies = std::move(deps);
  return j;
}

Json retval(const std::string& job_id) { return {{"$retval", job_id}}; }

std::vector<std::string> ids(const std::vector<Job>& jobs) {
  std::vector<std::string> out;
  for (const auto& j : jobs) out.push_back(j.definition.id);
  return out;
}

std::vector<TaskId> ids(const std::vector<Build>& builds) {
  std::vector<TaskId> out;
  for (const auto& b : builds) out.push_back(b.task.id);
  return out;
}

using Names = std::vector<std::string>;

class JobsConformance : public testing::StoreTest {
 protected:
  Build build(TaskId id) { return store_->get_build(id).value(); }

  // Claims `id` (it must be claimable now) and ends it in `state`.
  Task run(TaskId id, TaskState state, Json result = nullptr) {
    std::optional<Task> claimed = store_->claim_task(id, worker_);
    EXPECT_TRUE(claimed.has_value()) << "task " << id << " could not be claimed";
    if (!claimed) return {};
    finish(*claimed, state, std::move(result));
    return *claimed;
  }

  std::vector<TaskId> builds_of(const std::string& job_id, BuildFilter filter = {}) {
    filter.job_id = job_id;
    return ids(store_->job_builds(filter));
  }
};

TEST_P(JobsConformance, LoadCreatesUpdatesKeepsAndRemovesJobs) {
  JobsLoaded first = store_->load_jobs({job("b", {"a"}), job("a")});
  EXPECT_EQ(first.created, (Names{"b", "a"}));
  EXPECT_EQ(ids(store_->list_jobs()), (Names{"a", "b"}));
  Job b = store_->get_job("b").value();
  EXPECT_EQ(b.definition.function, "pkg.jobs:b");
  EXPECT_EQ(b.definition.title, "Job b");
  EXPECT_EQ(b.definition.dependencies, (Names{"a"}));
  EXPECT_GT(b.updated_at, 0);
  EXPECT_FALSE(store_->get_job("zz").has_value());

  JobDefinition changed = job("a");
  changed.kwargs = {{"n", 3}};
  JobsLoaded second = store_->load_jobs({changed, job("c"), job("b", {"a"})});
  EXPECT_EQ(second.created, (Names{"c"}));
  EXPECT_EQ(second.updated, (Names{"a"}));
  EXPECT_EQ(second.unchanged, (Names{"b"}));
  EXPECT_TRUE(second.removed.empty());
  EXPECT_EQ(store_->get_job("a")->definition.kwargs, (Json{{"n", 3}}));

  JobsLoaded third = store_->load_jobs({job("c")});
  EXPECT_EQ(third.removed, (Names{"a", "b"}));
  EXPECT_EQ(ids(store_->list_jobs()), (Names{"c"}));
}

TEST_P(JobsConformance, InvalidJobSetsRaiseAndWriteNothing) {
  store_->load_jobs({job("a")});
  JobDefinition no_function = job("x");
  no_function.function = "";
  JobDefinition bad_function = job("x");
  bad_function.function = "no_colon";
  JobDefinition bad_args = job("x");
  bad_args.args = {{"not", "a list"}};
  std::vector<std::vector<JobDefinition>> invalid = {
      {job("a"), job("b", {"nope"})},                        // unknown dependency
      {job("a", {"b"}), job("b", {"c"}), job("c", {"a"})},   // cycle
      {job("a", {"a"})},                                     // depends on itself
      {job("a"), job("b", {}, Json::array({retval("a")}))},  // !retval not a dependency
      {job("a"), job("a")},                                  // twice
      {job("a", {"a2", "a2"}), job("a2")},                   // dependency twice
      {no_function},
      {bad_function},
      {bad_args},
  };
  for (const auto& jobs : invalid) {
    EXPECT_THROW(store_->load_jobs(jobs), JobConfigError);
    EXPECT_EQ(ids(store_->list_jobs()), (Names{"a"}));
  }
  try {
    store_->load_jobs({job("a"), job("b", {}, Json::array({retval("a")}))});
    FAIL() << "expected JobConfigError";
  } catch (const JobConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("job 'b', field 'args'"), std::string::npos) << e.what();
  }
  try {
    store_->load_jobs({job("a", {"b"}), job("b", {"a"})});
    FAIL() << "expected JobConfigError";
  } catch (const JobConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos) << e.what();
  }
}

TEST_P(JobsConformance, CreateBuildBuildsDependenciesFirstAndPassesReturnValues) {
  store_->load_jobs(
      {job("a"), job("b", {"a"}, Json::array({retval("a"), Json{{"deep", retval("a")}}}))});
  TaskId b = store_->create_build("b", {});
  std::vector<TaskId> a_builds = builds_of("a");
  ASSERT_EQ(a_builds.size(), 1u);
  TaskId a = a_builds[0];
  EXPECT_LT(a, b);
  Build built = build(b);
  EXPECT_EQ(built.job_id, "b");
  EXPECT_EQ(built.task.state, TaskState::Blocked);
  EXPECT_EQ(built.task.depends_on, std::vector<TaskId>{a});
  EXPECT_EQ(built.task.payload["args"],
            Json::array({Json{{"$retval", a}}, Json{{"deep", Json{{"$retval", a}}}}}));
  EXPECT_EQ(built.config["dependency_builds"], (Json{{"a", a}}));
  EXPECT_EQ(built.config["job"]["function"], "pkg.jobs:b");
  EXPECT_EQ(build(a).config["dependency_builds"], Json::object());

  run(a, TaskState::Completed, 42);
  Task claimed = run(b, TaskState::Completed, "done");
  EXPECT_EQ(claimed.payload["args"], Json::array({42, Json{{"deep", 42}}}));
  EXPECT_EQ(build(b).task.result, "done");
}

TEST_P(JobsConformance, DiamondBuildsEachDependencyOnce) {
  store_->load_jobs({job("a"), job("b", {"a"}), job("c", {"a"}), job("d", {"b", "c"})});
  TaskId d = store_->create_build("d", {});
  EXPECT_EQ(count_tasks(), 4u);
  EXPECT_EQ(builds_of("a").size(), 1u);
  EXPECT_EQ(build(d).task.depends_on.size(), 2u);
}

TEST_P(JobsConformance, PinnedDependencyIsUsedNotRebuilt) {
  store_->load_jobs({job("a"), job("b", {"a"}, Json::array({retval("a")}))});
  TaskId a = store_->create_build("a", {});
  run(a, TaskState::Completed, 7);

  BuildConfig pinned;
  pinned.dependency_builds["a"] = a;
  TaskId b = store_->create_build("b", pinned);
  EXPECT_EQ(builds_of("a"), std::vector<TaskId>{a});
  EXPECT_EQ(build(b).task.state, TaskState::Waiting);
  EXPECT_EQ(build(b).config["dependency_builds"], (Json{{"a", a}}));
  EXPECT_EQ(run(b, TaskState::Completed).payload["args"], Json::array({7}));

  BuildConfig rebuild;
  rebuild.dependency_builds["a"] = std::nullopt;
  TaskId b2 = store_->create_build("b", rebuild);
  EXPECT_EQ(builds_of("a").size(), 2u);
  EXPECT_EQ(build(b2).task.state, TaskState::Blocked);
}

TEST_P(JobsConformance, BadPinsAndUnknownJobsRaiseAndWriteNothing) {
  store_->load_jobs({job("a"), job("b", {"a"}), job("other")});
  TaskId waiting_a = store_->create_build("a", {});
  TaskId other = store_->create_build("other", {});
  run(other, TaskState::Completed);
  TaskId failed_a = store_->create_build("a", {});
  run(failed_a, TaskState::Failed);
  std::size_t before = count_tasks();
  for (std::optional<TaskId> pin :
       {std::optional<TaskId>{999999}, std::optional<TaskId>{other},
        std::optional<TaskId>{waiting_a}, std::optional<TaskId>{failed_a}}) {
    BuildConfig config;
    config.dependency_builds["a"] = pin;
    EXPECT_THROW(store_->create_build("b", config), InvalidArgument) << *pin;
  }
  BuildConfig not_a_dependency;
  not_a_dependency.dependency_builds["other"] = std::nullopt;
  EXPECT_THROW(store_->create_build("b", not_a_dependency), InvalidArgument);
  EXPECT_THROW(store_->create_build("nope", {}), NotFound);
  EXPECT_EQ(count_tasks(), before);
  EXPECT_THROW(BuildConfig::from_json({{"dependency_builds", {{"a", "x"}}}}), InvalidArgument);
  EXPECT_THROW(BuildConfig::from_json({{"pins", Json::object()}}), InvalidArgument);
}

TEST_P(JobsConformance, FailedBuildSkipsItsDependents) {
  store_->load_jobs({job("a"), job("b", {"a"}), job("c", {"b"})});
  TaskId c = store_->create_build("c", {});
  TaskId a = builds_of("a").at(0);
  TaskId b = builds_of("b").at(0);
  run(a, TaskState::Failed);
  EXPECT_EQ(build(a).task.error["type"], "ValueError");
  EXPECT_EQ(build(b).task.state, TaskState::Skipped);
  EXPECT_EQ(build(c).task.state, TaskState::Skipped);
}

TEST_P(JobsConformance, JobBuildsFilterOrderAndLimitInTheStore) {
  store_->load_jobs({job("a"), job("gate"), job("b", {"gate"})});
  TaskId ok = store_->create_build("a", {});
  run(ok, TaskState::Completed, 1);
  TaskId bad = store_->create_build("a", {});
  run(bad, TaskState::Failed);
  TaskId running = store_->create_build("a", {});
  ASSERT_TRUE(store_->claim_task(running, worker_).has_value());
  TaskId waiting = store_->create_build("a", {});
  TaskId ok2 = store_->create_build("a", {});
  run(ok2, TaskState::Completed, 2);

  EXPECT_EQ(builds_of("a"), (std::vector<TaskId>{ok, bad, running, waiting, ok2}));
  BuildFilter f;
  f.newest_first = true;
  EXPECT_EQ(builds_of("a", f), (std::vector<TaskId>{ok2, waiting, running, bad, ok}));
  f.limit = 2;
  EXPECT_EQ(builds_of("a", f), (std::vector<TaskId>{ok2, waiting}));
  BuildFilter success;
  success.success = true;
  EXPECT_EQ(builds_of("a", success), (std::vector<TaskId>{ok, ok2}));
  success.success = false;
  EXPECT_EQ(builds_of("a", success), (std::vector<TaskId>{bad, running, waiting}));
  BuildFilter finished;
  finished.finished = true;
  EXPECT_EQ(builds_of("a", finished), (std::vector<TaskId>{ok, bad, ok2}));
  finished.finished = false;
  EXPECT_EQ(builds_of("a", finished), (std::vector<TaskId>{running, waiting}));
  BuildFilter started;
  started.started = true;
  EXPECT_EQ(builds_of("a", started), (std::vector<TaskId>{ok, bad, running, ok2}));
  started.started = false;
  EXPECT_EQ(builds_of("a", started), (std::vector<TaskId>{waiting}));
  BuildFilter latest;  // get_latest_successful_build
  latest.success = true;
  latest.newest_first = true;
  latest.limit = 1;
  EXPECT_EQ(builds_of("a", latest), (std::vector<TaskId>{ok2}));

  TaskId skipped = store_->create_build("b", {});
  run(builds_of("gate").at(0), TaskState::Failed);
  TaskId b_ok = store_->create_build("b", BuildConfig{{{"gate", std::nullopt}}});
  BuildFilter skip;
  skip.skipped = true;
  EXPECT_EQ(builds_of("b", skip), (std::vector<TaskId>{skipped}));
  skip.skipped = false;
  EXPECT_EQ(builds_of("b", skip), (std::vector<TaskId>{b_ok}));
  BuildFilter combined;
  combined.finished = true;
  combined.success = false;
  combined.skipped = false;
  EXPECT_EQ(builds_of("a", combined), (std::vector<TaskId>{bad}));
  EXPECT_THROW(builds_of("nope"), NotFound);
}

TEST_P(JobsConformance, DeleteBuildOnlyWhenNothingNeedsIt) {
  store_->load_jobs({job("a"), job("b", {"a"}), job("gate"), job("c", {"a", "gate"})});
  TaskId a = store_->create_build("a", {});
  EXPECT_THROW(store_->delete_build(a), InvalidArgument);  // waiting
  run(a, TaskState::Completed, 1);
  TaskId gate = store_->create_build("gate", {});
  BuildConfig pins{{{"a", a}, {"gate", gate}}};
  EXPECT_THROW(store_->create_build("c", pins), InvalidArgument);  // gate not completed
  TaskId b = store_->create_build("b", BuildConfig{{{"a", a}}});
  EXPECT_THROW(store_->delete_build(a), InvalidArgument);  // b still needs it
  EXPECT_TRUE(store_->get_build(a).has_value());
  run(b, TaskState::Completed);
  store_->delete_build(a);
  EXPECT_FALSE(store_->get_build(a).has_value());
  EXPECT_FALSE(store_->get_task(a).has_value());
  EXPECT_EQ(builds_of("a"), std::vector<TaskId>{});
  EXPECT_THROW(store_->delete_build(a), NotFound);
  TaskSpec plain;
  plain.name = "pkg.mod:fn";
  plain.payload = {{"function", "pkg.mod:fn"}, {"args", Json::array()}};
  TaskId task = store_->dispatch({plain}).at(0);
  EXPECT_FALSE(store_->get_build(task).has_value());
  EXPECT_THROW(store_->delete_build(task), NotFound);
}

TEST_P(JobsConformance, RemovingAJobWithUnfinishedBuildsIsRefused) {
  store_->load_jobs({job("a"), job("b")});
  TaskId a = store_->create_build("a", {});
  EXPECT_THROW(store_->load_jobs({job("b")}), InvalidArgument);
  EXPECT_EQ(ids(store_->list_jobs()), (Names{"a", "b"}));
  run(a, TaskState::Completed);
  JobsLoaded loaded = store_->load_jobs({job("b")});
  EXPECT_EQ(loaded.removed, (Names{"a"}));
  EXPECT_FALSE(store_->get_task(a).has_value());  // its builds went with it
}

INSTANTIATE_TEST_SUITE_P(Backends, JobsConformance, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace taskengine
