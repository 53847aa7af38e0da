// Upgrading a store that holds tasks: install() runs the migrations above
// the recorded version, and what they change keeps working on old rows.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "store/schema.hpp"
#include "store/session_factory.hpp"
#include "store/sql/sql_session.hpp"
#include "support/test_stores.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/store.hpp"

namespace taskengine {
namespace {

class SchemaMigration : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    store_ = testing::make_test_store(GetParam());
    if (!store_) GTEST_SKIP() << "PostgreSQL is not reachable";
    session_ = sql::open_session(store_->url());
  }

  // The schema as `version` left it, with one task holding a unique key.
  void install_up_to(int version) {
    const auto& migrations =
        GetParam() == "sqlite" ? schema::sqlite_migrations() : schema::postgres_migrations();
    sql::Transaction txn(*session_, true);
    for (const auto& migration : migrations) {
      if (migration.version > version) break;
      for (const auto& statement : migration.statements) session_->execute_script(statement);
    }
    session_->execute("INSERT INTO taskengine_schema (version) VALUES ($1)",
                      {std::int64_t{version}});
    insert_raw("k");
    txn.commit();
  }

  void insert_raw(const std::string& unique_key) {
    session_->execute(
        "INSERT INTO taskengine_tasks (kind, name, payload, state, created_at, requirements, "
        "retry_policy, resources, depends_on, unique_key, eligible) VALUES ('function', "
        "'pkg.mod:fn', '{\"function\": \"pkg.mod:fn\", \"args\": [], \"kwargs\": {}}', "
        "'waiting', 0, '{}', '{}', '{\"exclusive\": [], \"shared\": []}', '[]', $1, TRUE)",
        {unique_key});
  }

  // A waiting task wanting R exclusively, its resource row as version 8
  // kept it: `holder` 'ready' when it was eligible.
  TaskId insert_holding_r(bool eligible) {
    TaskId id = session_
                    ->query(
                        "INSERT INTO taskengine_tasks (kind, name, payload, state, created_at, "
                        "requirements, retry_policy, resources, depends_on, eligible) VALUES "
                        "('function', 'pkg.mod:fn', '{\"function\": \"pkg.mod:fn\", \"args\": "
                        "[], \"kwargs\": {}}', 'waiting', 0, '{}', '{}', '{\"exclusive\": "
                        "[\"R\"], \"shared\": []}', '[]', $1) RETURNING id",
                        {std::int64_t{eligible}})
                    .at(0)
                    .integer(0);
    session_->execute(
        "INSERT INTO taskengine_task_resources (task_id, resource, exclusive, priority, "
        "queue_rank, holder) VALUES ($1, 'R', TRUE, 0, 0, $2)",
        {id, std::string(eligible ? "ready" : "waiting")});
    return id;
  }

  // The definitions of the tasks table's indexes, as the backend reports them.
  std::string index_definitions() {
    std::string sql = GetParam() == "sqlite"
                          ? "SELECT COALESCE(sql, '') FROM sqlite_master WHERE type = 'index' "
                            "AND tbl_name = 'taskengine_tasks'"
                          : "SELECT indexdef FROM pg_indexes WHERE tablename = 'taskengine_tasks'";
    std::string out;
    for (const auto& row : session_->query(sql)) out += row.text(0) + "\n";
    return out;
  }

  std::unique_ptr<testing::TestStore> store_;
  std::unique_ptr<sql::Session> session_;
};

TEST_P(SchemaMigration, PartialIndexesKeepUniqueKeysAndGroupsWorking) {
  install_up_to(6);
  auto store = open_store(store_->url());
  store->install();
  EXPECT_EQ(store->schema_version(), schema::latest_version());
  std::string indexes = index_definitions();
  EXPECT_NE(indexes.find("task_group_id IS NOT NULL"), std::string::npos) << indexes;
  EXPECT_NE(indexes.find("taskengine_tasks_canceling"), std::string::npos) << indexes;
  EXPECT_EQ(indexes.find("taskengine_tasks_active_worker"), std::string::npos) << indexes;
  if (GetParam() == "postgresql") {
    EXPECT_NE(indexes.find("WHERE (unique_key IS NOT NULL)"), std::string::npos) << indexes;
    // The store keeps worker_id, task_group_id and job_id true itself.
    EXPECT_TRUE(session_
                    ->query("SELECT conname FROM pg_constraint WHERE conrelid = "
                            "'taskengine_tasks'::regclass AND contype = 'f'")
                    .empty());
  }

  // The old row's key is still unique, for the store and for the database.
  TaskSpec spec;
  spec.name = "pkg.mod:fn";
  spec.payload = {{"function", spec.name}, {"args", Json::array()}, {"kwargs", Json::object()}};
  spec.unique_key = "k";
  EXPECT_THROW(store->dispatch({spec}), InvalidArgument);
  EXPECT_THROW(insert_raw("k"), StoreError);
  spec.unique_key = "other";
  GroupId group = store->create_task_group("g");
  spec.task_group = group;
  TaskId id = store->dispatch({spec}).at(0);
  EXPECT_EQ(store->get_task(id)->unique_key, "other");
  auto in_group = store->list_tasks({std::nullopt, group, std::nullopt, 10, false});
  ASSERT_EQ(in_group.size(), 1u);
  EXPECT_EQ(in_group[0].id, id);
  EXPECT_EQ(store->cancel_task_group(group), 1);
  EXPECT_EQ(store->list_tasks({}).size(), 2u);
}

TEST_P(SchemaMigration, ReadyHoldersBecomeWaitingAndTheQueueGoesOn) {
  install_up_to(8);
  TaskId first;
  TaskId second;
  {
    sql::Transaction txn(*session_, true);
    first = insert_holding_r(true);
    second = insert_holding_r(false);
    txn.commit();
  }
  auto store = open_store(store_->url());
  store->install();
  EXPECT_EQ(store->schema_version(), schema::latest_version());
  sql::Rows holders =
      session_->query("SELECT holder FROM taskengine_task_resources ORDER BY task_id", {});
  ASSERT_EQ(holders.size(), 2u);
  EXPECT_EQ(holders[0].text(0), "waiting");
  EXPECT_EQ(holders[1].text(0), "waiting");
  if (GetParam() == "sqlite") {
    sql::Rows table = session_->query(
        "SELECT sql FROM sqlite_master WHERE name = 'taskengine_task_resources'", {});
    ASSERT_EQ(table.size(), 1u);
    EXPECT_NE(table[0].text(0).find("WITHOUT ROWID"), std::string::npos) << table[0].text(0);
  }
  EXPECT_FALSE(
      session_
          ->query("SELECT 1 FROM taskengine_task_resources WHERE resource = 'R' AND holder = "
                  "'waiting' AND exclusive = TRUE ORDER BY queue_rank, task_id LIMIT 1",
                  {})
          .empty());

  // The eligible one runs first; its completion lets the other one start.
  WorkerInfo worker;
  worker.name = "w";
  worker.id = store->register_worker(worker);
  auto claimed_ids = [&] {
    std::vector<TaskId> ids;
    for (const auto& task : store->claim(worker, 10))
      if (task.id == first || task.id == second) ids.push_back(task.id);
    return ids;
  };
  std::vector<Task> claimed = store->claim(worker, 10);
  Task held;
  for (const auto& task : claimed) {
    EXPECT_NE(task.id, second);
    if (task.id == first) held = task;
  }
  ASSERT_EQ(held.id, first);
  Completion done;
  done.task_id = first;
  done.fence = held.fence;
  done.state = TaskState::Completed;
  EXPECT_EQ(store->complete({done}), std::vector<bool>{true});
  EXPECT_EQ(claimed_ids(), std::vector<TaskId>{second});
}

INSTANTIATE_TEST_SUITE_P(Backends, SchemaMigration, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace taskengine
