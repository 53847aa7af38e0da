// Conformance of task output (log records, progress, artifacts): every
// TEST_P runs against SQLite and PostgreSQL.
#include <gtest/gtest.h>

#include <set>

#include "store/postgres/postgres_session.hpp"
#include "store/sqlite/sqlite_session.hpp"
#include "support/store_test.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/store.hpp"
#include "taskengine/store_url.hpp"

namespace taskengine {
namespace {

LogRecord record(const std::string& message, int level = 20, Micros created_at = 0) {
  LogRecord r;
  r.message = message;
  r.level = level;
  r.created_at = created_at;
  r.logger = "test";
  return r;
}

Progress progress(const std::string& group, std::int64_t current, std::int64_t total,
                  const std::string& status = "") {
  Progress p;
  p.group_name = group;
  p.current = current;
  p.total = total;
  p.status_line = status;
  return p;
}

LogFilter of(std::vector<TaskId> ids) {
  LogFilter filter;
  filter.task_ids = std::move(ids);
  return filter;
}

class TaskOutputConformance : public testing::StoreTest {
 protected:
  TaskOutput output_of(const Task& task) {
    TaskOutput output;
    output.task_id = task.id;
    output.fence = task.fence;
    return output;
  }

  std::vector<LogRecord> logs(LogFilter filter = {}) { return store_->list_log_records(filter); }

  std::vector<std::string> messages(LogFilter filter) {
    std::vector<std::string> out;
    for (const auto& r : logs(std::move(filter))) out.push_back(r.message);
    return out;
  }

  // Sets a task's job: the jobs façade does this at dispatch; here it is
  // written directly, through a raw session on the same store.
  void set_job(TaskId task, const std::string& job) {
    StoreUrl url = StoreUrl::parse(test_store_->url());
    std::unique_ptr<sql::Session> session;
    if (url.backend == StoreUrl::Backend::Sqlite)
      session = std::make_unique<sql::SqliteSession>(url.original, url.sqlite_path);
    else
      session = std::make_unique<sql::PostgresSession>(url.conninfo);
    session->execute(
        "INSERT INTO taskengine_jobs (id, function, args, kwargs, dependencies, config, "
        "updated_at) VALUES ($1, 'm:f', '[]', '{}', '[]', '{}', 0) ON CONFLICT (id) DO NOTHING",
        {job});
    session->execute("UPDATE taskengine_tasks SET job_id = $1 WHERE id = $2", {job, task});
  }
};

TEST_P(TaskOutputConformance, RecordsOfOneWriteAreStoredInOrderWithOneWriteTime) {
  Task task = running();
  TaskOutput output = output_of(task);
  for (int i = 0; i < 300; ++i) output.records.push_back(record("line " + std::to_string(i)));
  output.records[5].extra = {{"lineno", 7}};
  ASSERT_EQ(store_->write_task_output({output}), std::vector<bool>{true});
  TaskOutput second = output_of(task);
  second.records.push_back(record("later"));
  ASSERT_EQ(store_->write_task_output({second}), std::vector<bool>{true});

  auto stored = logs(of({task.id}));
  ASSERT_EQ(stored.size(), 301u);
  std::set<Micros> write_times;
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ(stored[i].message, "line " + std::to_string(i));
    EXPECT_EQ(stored[i].task_id, task.id);
    EXPECT_EQ(stored[i].logger, "test");
    EXPECT_GT(stored[i].created_at, 0);  // 0 means "now"
    if (i > 0) {
      EXPECT_GT(stored[i].id, stored[i - 1].id);
    }
    write_times.insert(stored[i].stored_at);
  }
  EXPECT_EQ(write_times.size(), 1u);
  EXPECT_NE(stored[300].stored_at, stored[0].stored_at);
  EXPECT_EQ(stored[5].extra, Json({{"lineno", 7}}));
  EXPECT_TRUE(stored[6].extra.is_null());
}

TEST_P(TaskOutputConformance, StaleAttemptOutputIsDroppedAndOthersInTheBatchApplied) {
  Task task = running();
  Task other = running();
  // The first attempt is handed back and claimed again: a new fence.
  ASSERT_TRUE(store_->requeue(task.id, task.fence, "worker stopping"));
  auto again = store_->claim_task(task.id, worker_);
  ASSERT_TRUE(again.has_value());
  ASSERT_NE(again->fence, task.fence);

  TaskOutput stale = output_of(task);
  stale.records.push_back(record("from the old attempt"));
  stale.progress.push_back(progress("", 1, 2));
  TaskOutput current = output_of(other);
  current.records.push_back(record("from a live attempt"));
  EXPECT_EQ(store_->write_task_output({stale, current}), (std::vector<bool>{false, true}));
  EXPECT_TRUE(logs(of({task.id})).empty());
  EXPECT_TRUE(store_->get_progress(task.id).empty());
  EXPECT_EQ(messages(of({other.id})), std::vector<std::string>{"from a live attempt"});

  // A finished attempt's output is stale too.
  Completion done;
  done.task_id = other.id;
  done.fence = other.fence;
  done.state = TaskState::Completed;
  ASSERT_EQ(store_->complete({done}), std::vector<bool>{true});
  EXPECT_EQ(store_->write_task_output({current}), std::vector<bool>{false});
  EXPECT_EQ(logs(of({other.id})).size(), 1u);
}

TEST_P(TaskOutputConformance, ProgressIsUpsertedPerGroup) {
  Task task = running();
  TaskOutput output = output_of(task);
  output.progress = {progress("", 1, 10, "starting"), progress("download", 5, 50),
                     progress("download::file a", 1, 2)};
  ASSERT_EQ(store_->write_task_output({output}), std::vector<bool>{true});
  output.progress = {progress("", 3, 10, "halfway")};
  ASSERT_EQ(store_->write_task_output({output}), std::vector<bool>{true});
  auto groups = store_->get_progress(task.id);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].group_name, "");
  EXPECT_EQ(groups[0].current, 3);
  EXPECT_EQ(groups[0].total, 10);
  EXPECT_EQ(groups[0].status_line, "halfway");
  EXPECT_EQ(groups[1].group_name, "download");
  EXPECT_EQ(groups[2].group_name, "download::file a");
  EXPECT_EQ(groups[2].current, 1);
  // From outside the task (no fence), e.g. jobcontrol's report_build_progress.
  TaskOutput outside;
  outside.task_id = task.id;
  outside.progress = {progress("", 10, 10, "done")};
  ASSERT_EQ(store_->write_task_output({outside}), std::vector<bool>{true});
  EXPECT_EQ(store_->get_progress(task.id)[0].current, 10);
}

TEST_P(TaskOutputConformance, BadInputRaisesAndWritesNothing) {
  Task task = running();
  TaskOutput good = output_of(task);
  good.records.push_back(record("fine"));
  TaskOutput negative = output_of(task);
  negative.progress.push_back(progress("", -1, 10));
  EXPECT_THROW(store_->write_task_output({good, negative}), InvalidArgument);

  TaskOutput unknown;
  unknown.task_id = task.id + 1000;
  unknown.records.push_back(record("nobody"));
  EXPECT_THROW(store_->write_task_output({good, unknown}), NotFound);

  TaskOutput big = output_of(task);
  Artifact artifact;
  artifact.info.name = "big.bin";
  artifact.content.assign(static_cast<std::size_t>(kMaxArtifactBytes) + 1, 'x');
  big.artifacts.push_back(std::move(artifact));
  EXPECT_THROW(store_->write_task_output({good, big}), ArtifactTooLarge);

  TaskOutput unnamed = output_of(task);
  unnamed.artifacts.emplace_back();
  EXPECT_THROW(store_->write_task_output({unnamed}), InvalidArgument);

  EXPECT_TRUE(logs(of({task.id})).empty());
  EXPECT_TRUE(store_->get_progress(task.id).empty());
  EXPECT_TRUE(store_->list_artifacts(task.id).empty());
  EXPECT_THROW(store_->get_progress(task.id + 1000), NotFound);
  EXPECT_THROW(store_->list_artifacts(task.id + 1000), NotFound);
  EXPECT_THROW(store_->read_artifact(task.id, "missing"), NotFound);
  LogFilter negative_limit;
  negative_limit.limit = -1;
  EXPECT_THROW(store_->list_log_records(negative_limit), InvalidArgument);
}

TEST_P(TaskOutputConformance, ArtifactsRoundTripByteExact) {
  Task task = running();
  std::string bytes;
  for (int i = 0; i < 70000; ++i) bytes.push_back(static_cast<char>(i * 31 % 256));
  bytes[0] = '\0';
  TaskOutput output = output_of(task);
  Artifact artifact;
  artifact.info.name = "data.bin";
  artifact.info.sha256 = "abc";
  artifact.content = bytes;
  output.artifacts.push_back(artifact);
  Artifact empty;
  empty.info.name = "empty.txt";
  output.artifacts.push_back(empty);
  ASSERT_EQ(store_->write_task_output({output}), std::vector<bool>{true});

  auto listed = store_->list_artifacts(task.id);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].name, "data.bin");
  EXPECT_EQ(listed[0].size, 70000);
  EXPECT_EQ(listed[0].sha256, "abc");
  EXPECT_EQ(listed[1].size, 0);
  Artifact read = store_->read_artifact(task.id, "data.bin");
  EXPECT_EQ(read.content, bytes);
  EXPECT_EQ(store_->read_artifact(task.id, "empty.txt").content, "");

  // The same name again replaces it.
  output.artifacts = {artifact};
  output.artifacts[0].content = "new";
  ASSERT_EQ(store_->write_task_output({output}), std::vector<bool>{true});
  EXPECT_EQ(store_->list_artifacts(task.id).size(), 2u);
  EXPECT_EQ(store_->read_artifact(task.id, "data.bin").content, "new");
}

TEST_P(TaskOutputConformance, ListFiltersByTaskJobDateLevelAndId) {
  Task a = running();
  Task b = running();
  set_job(a.id, "nightly");
  TaskOutput oa = output_of(a);
  oa.records = {record("a debug", 10, 1000), record("a info", 20, 2000),
                record("a error", 40, 3000)};
  TaskOutput ob = output_of(b);
  ob.records = {record("b warning", 30, 2500)};
  ASSERT_EQ(store_->write_task_output({oa, ob}), (std::vector<bool>{true, true}));

  EXPECT_EQ(logs().size(), 4u);
  EXPECT_EQ(messages(of({b.id})), std::vector<std::string>{"b warning"});
  EXPECT_EQ(logs(of({a.id, b.id})).size(), 4u);
  LogFilter job;
  job.job_id = "nightly";
  EXPECT_EQ(messages(job), (std::vector<std::string>{"a debug", "a info", "a error"}));
  job.job_id = "other";
  EXPECT_TRUE(logs(job).empty());
  LogFilter dates;
  dates.min_date = 2000;  // inclusive
  dates.max_date = 3000;  // exclusive
  EXPECT_EQ(messages(dates), (std::vector<std::string>{"a info", "b warning"}));
  LogFilter level;
  level.min_level = 30;
  EXPECT_EQ(messages(level), (std::vector<std::string>{"a error", "b warning"}));
  auto all = logs();
  LogFilter after;
  after.after_id = all[1].id;
  after.limit = 1;
  EXPECT_EQ(messages(after), std::vector<std::string>{all[2].message});
}

TEST_P(TaskOutputConformance, PruneFiltersByTaskJobAgeAndLevel) {
  Task a = running();
  Task b = running();
  set_job(a.id, "nightly");
  TaskOutput oa = output_of(a);
  oa.records = {record("a old debug", 10, 1000), record("a old error", 40, 1000),
                record("a new debug", 10, 5000)};
  TaskOutput ob = output_of(b);
  ob.records = {record("b old debug", 10, 1000), record("b new info", 20, 5000)};
  ASSERT_EQ(store_->write_task_output({oa, ob}), (std::vector<bool>{true, true}));

  LogPruneFilter job_old_low;
  job_old_low.job_id = "nightly";
  job_old_low.older_than = 2000;
  job_old_low.max_level = 20;  // level <= 20
  EXPECT_EQ(store_->prune_log_records(job_old_low), 1);
  EXPECT_EQ(messages(of({a.id})), (std::vector<std::string>{"a old error", "a new debug"}));
  EXPECT_EQ(logs(of({b.id})).size(), 2u);

  LogPruneFilter task_b;
  task_b.task_id = b.id;
  task_b.max_level = 10;
  EXPECT_EQ(store_->prune_log_records(task_b), 1);
  EXPECT_EQ(messages(of({b.id})), std::vector<std::string>{"b new info"});

  EXPECT_EQ(store_->prune_log_records({}), 3);
  EXPECT_TRUE(logs().empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, TaskOutputConformance, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace taskengine
