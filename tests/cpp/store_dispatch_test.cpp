// Batched dispatch on every backend: runs of simple specs go in multi-row
// INSERTs, the others one at a time; ids, payloads and order must come out
// as if each spec were stored alone, in order, and a failure anywhere must
// leave the store unchanged.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "store/session_factory.hpp"
#include "support/store_test.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/store.hpp"

namespace taskengine {
namespace {

// A simple spec whose payload says which one it is.
TaskSpec numbered(int n) {
  TaskSpec spec;
  spec.name = "pkg.mod:fn" + std::to_string(n % 3);
  spec.payload = {{"function", spec.name}, {"args", Json::array({n})}, {"kwargs", Json::object()}};
  return spec;
}

int number_of(const Task& task) { return task.payload.at("args").at(0).get<int>(); }

class StoreDispatch : public testing::StoreTest {
 protected:
  std::map<TaskId, Task> all_tasks() {
    std::map<TaskId, Task> out;
    for (auto& t : store_->list_tasks({std::nullopt, std::nullopt, std::nullopt, 100000, false}))
      out.emplace(t.id, std::move(t));
    return out;
  }

  // Claims everything eligible, one page at a time; returns the ids in claim order.
  std::vector<TaskId> claim_all() {
    std::vector<TaskId> ids;
    for (;;) {
      auto claimed = store_->claim(worker_, 500);
      if (claimed.empty()) return ids;
      for (const auto& t : claimed) ids.push_back(t.id);
    }
  }
};

TEST_P(StoreDispatch, BulkIdsFollowTheSpecsAcrossChunks) {
  // 3000 = 2048 + 512 + 256 + 128 + 32 + 16 + 8 rows: statements of several sizes.
  std::vector<TaskSpec> specs;
  for (int n = 0; n < 3000; ++n) {
    specs.push_back(numbered(n));
    if (n % 7 == 0) specs.back().not_before = 1000 + n;
  }
  auto ids = store_->dispatch(specs);
  ASSERT_EQ(ids.size(), specs.size());
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
  auto tasks = all_tasks();
  ASSERT_EQ(tasks.size(), specs.size());
  // Reading the payloads back proves which row got which id.
  for (int n = 0; n < 3000; ++n) {
    const Task& t = tasks.at(ids[n]);
    EXPECT_EQ(number_of(t), n);
    EXPECT_EQ(t.name, specs[n].name);
    EXPECT_EQ(t.not_before, specs[n].not_before);
    EXPECT_EQ(t.state, TaskState::Waiting);
  }
  // Every one is eligible at once, and equal priorities are claimed in dispatch order.
  EXPECT_EQ(claim_all(), ids);
}

TEST_P(StoreDispatch, BulkRowsCarryEveryField) {
  GroupId group = store_->create_task_group("g");
  TaskSpec spec = numbered(1);
  spec.kind = TaskKind::Command;
  spec.name = "echo";
  spec.payload = {{"argv", Json::array({"echo", "hi"})}, {"env", nullptr}, {"cwd", nullptr}};
  spec.priority = -4;
  spec.not_before = 1234;
  spec.task_group = group;
  spec.allow_failure = true;
  spec.requirements.worker_type = "server";
  spec.requirements.architecture = "amd64";
  spec.requirements.task_version = 3;
  spec.requirements.versions = {{"gcc", "12"}};
  spec.retry.max_attempts = 3;
  spec.retry.delays = {1.5, 3};
  spec.timeout_seconds = 12.5;
  spec.history = Json::array({{{"event", "created"}}});
  auto ids = store_->dispatch({spec, spec});
  for (TaskId id : ids) {
    Task t = task(id);
    EXPECT_EQ(t.kind, TaskKind::Command);
    EXPECT_EQ(t.name, "echo");
    EXPECT_EQ(t.payload, spec.payload);
    EXPECT_EQ(t.state, TaskState::Waiting);
    EXPECT_EQ(t.priority, -4);
    EXPECT_EQ(t.not_before, 1234);
    EXPECT_EQ(t.task_group, group);
    EXPECT_TRUE(t.allow_failure);
    EXPECT_EQ(t.requirements, spec.requirements);
    EXPECT_EQ(t.retry, spec.retry);
    EXPECT_EQ(t.timeout_seconds, 12.5);
    EXPECT_EQ(t.history, spec.history);
    EXPECT_TRUE(t.exclusive_resources.empty() && t.shared_resources.empty());
    EXPECT_TRUE(t.depends_on.empty());
    EXPECT_FALSE(t.unique_key.has_value());
    EXPECT_GT(t.created_at, 0);
  }
}

TEST_P(StoreDispatch, MixedBatchesKeepTheirOrder) {
  TaskId before = store_->dispatch({numbered(100)}).at(0);
  std::vector<TaskSpec> specs;
  for (int n = 0; n < 12; ++n) specs.push_back(numbered(n));
  specs[2].exclusive_resources = {"R"};  // resources: one at a time
  specs[4].retry.max_attempts = 2;       // a new run of simple specs
  specs[5].unique_key = "five";          // a unique key: one at a time
  specs[7].depends_on = {before};        // a dependency: one at a time
  specs[8].payload["args"] = Json::array({8, Json{{"$retval", before}}});
  specs[8].depends_on = {before};
  specs[9].priority = 5;  // per row: same run
  specs[10].requirements.worker_type = "signing";
  auto ids = store_->dispatch(specs);
  ASSERT_EQ(ids.size(), specs.size());
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_GT(ids.front(), before);
  auto tasks = all_tasks();
  for (int n = 0; n < 12; ++n) EXPECT_EQ(number_of(tasks.at(ids[n])), n) << n;
  EXPECT_EQ(tasks.at(ids[7]).state, TaskState::Blocked);
  EXPECT_EQ(tasks.at(ids[8]).state, TaskState::Blocked);
  EXPECT_EQ(tasks.at(ids[5]).unique_key, "five");
  EXPECT_EQ(tasks.at(ids[4]).retry.max_attempts, 2);
  // Priority first, then dispatch order; blocked and signing tasks are not for this worker.
  std::vector<TaskId> expected{ids[9], before};
  for (int n : {0, 1, 2, 3, 4, 5, 6, 11}) expected.push_back(ids[n]);
  EXPECT_EQ(claim_all(), expected);
}

TEST_P(StoreDispatch, AFailureAnywhereStoresNothing) {
  TaskSpec existing = numbered(0);
  existing.unique_key = "taken";
  store_->dispatch({existing});
  auto batch_with = [](TaskSpec bad) {
    std::vector<TaskSpec> specs;
    for (int n = 0; n < 300; ++n) specs.push_back(numbered(n));
    specs.push_back(std::move(bad));  // after a bulk run was written
    for (int n = 0; n < 300; ++n) specs.push_back(numbered(n));
    return specs;
  };
  TaskSpec missing_dep = numbered(1);
  missing_dep.depends_on = {987654};
  TaskSpec duplicate = numbered(2);
  duplicate.unique_key = "taken";
  TaskSpec stray_retval = numbered(3);
  stray_retval.payload["args"] = Json::array({3, Json{{"$retval", 1}}});
  TaskSpec missing_group = numbered(4);
  missing_group.task_group = 424242;
  for (const auto& bad : {missing_dep, duplicate, stray_retval, missing_group})
    EXPECT_THROW(store_->dispatch(batch_with(bad)), InvalidArgument);
  // The bad spec last, inside a bulk run.
  auto specs = batch_with(numbered(5));
  specs.push_back(missing_group);
  EXPECT_THROW(store_->dispatch(specs), InvalidArgument);
  EXPECT_EQ(all_tasks().size(), 1u);
}

TEST_P(StoreDispatch, GroupsAreCheckedAndKept) {
  GroupId a = store_->create_task_group("a");
  GroupId b = store_->create_task_group("b");
  std::vector<TaskSpec> specs;
  for (int n = 0; n < 40; ++n) {
    specs.push_back(numbered(n));
    if (n % 4 == 1) specs.back().task_group = a;
    if (n % 4 == 2) specs.back().task_group = b;
  }
  auto ids = store_->dispatch(specs);
  auto tasks = all_tasks();
  for (int n = 0; n < 40; ++n) EXPECT_EQ(tasks.at(ids[n]).task_group, specs[n].task_group) << n;
  try {
    specs[33].task_group = 777777;
    store_->dispatch(specs);
    FAIL() << "a missing group was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "task group 777777 does not exist");
  }
  EXPECT_EQ(all_tasks().size(), 40u);
}

TEST_P(StoreDispatch, ABulkRunWakesTheWorkersOfItsType) {
  auto listener = store_->listen(worker_);
  WorkerInfo signer = worker_;
  signer.name = "signer";
  signer.worker_type = "signing";
  signer.id = store_->register_worker(signer);
  auto signing_listener = store_->listen(signer);
  EXPECT_FALSE(listener->wait(std::chrono::milliseconds(50)));
  auto other = open_store(test_store_->url());
  std::vector<TaskSpec> specs(200, numbered(1));
  other->dispatch(specs);
  EXPECT_TRUE(listener->wait(std::chrono::seconds(5)));
  EXPECT_FALSE(signing_listener->wait(std::chrono::milliseconds(100)));
  for (auto& spec : specs) spec.requirements.worker_type = "signing";
  other->dispatch(specs);
  EXPECT_TRUE(signing_listener->wait(std::chrono::seconds(5)));
  EXPECT_EQ(store_->claim(signer, 1000).size(), 200u);
}

TEST_P(StoreDispatch, AStatementTheServerRefusesStoresNothing) {
  // PostgreSQL's jsonb refuses a \u0000 in a string (SQLite's text keeps
  // it): the refusal comes from the server, after earlier chunks were sent.
  if (GetParam() != "postgresql") GTEST_SKIP() << "SQLite stores the payload";
  std::vector<TaskSpec> specs;
  for (int n = 0; n < 1500; ++n) specs.push_back(numbered(n));
  TaskSpec refused = numbered(9);
  refused.timeout_seconds = 5;  // a run of its own, after the bulk statements
  refused.payload["kwargs"]["text"] = std::string("nul\0byte", 8);
  specs.push_back(refused);
  EXPECT_THROW(store_->dispatch(specs), StoreError);
  EXPECT_THROW(store_->dispatch({refused}), StoreError);
  EXPECT_TRUE(all_tasks().empty());
  EXPECT_EQ(store_->dispatch({numbered(1)}).size(), 1u);  // the store goes on
  EXPECT_EQ(all_tasks().size(), 1u);
}

TEST_P(StoreDispatch, ALostConnectionIsAConnectionError) {
  if (GetParam() != "postgresql") GTEST_SKIP() << "an SQLite file has no connection to lose";
  auto other = open_store(test_store_->url());
  other->dispatch({numbered(1)});
  // Ends every other session of this database: `other`'s and store_'s.
  auto admin = sql::open_session(test_store_->url());
  admin->query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
      "current_database() AND pid <> pg_backend_pid()");
  EXPECT_THROW(other->dispatch({numbered(2)}), ConnectionError);
  EXPECT_THROW(store_->list_tasks({}), ConnectionError);  // lost too: the call meeting it fails
  EXPECT_EQ(store_->list_tasks({}).size(), 1u);           // and the next connects again
  // The next call connects again: nothing of the failed one was stored.
  EXPECT_EQ(other->dispatch(std::vector<TaskSpec>(100, numbered(3))).size(), 100u);
  EXPECT_EQ(all_tasks().size(), 101u);
}

// The spec of kind `kind` numbered n (its payload says which one it is).
TaskSpec of_kind(TaskKind kind, int n) {
  TaskSpec spec = numbered(n);
  spec.kind = kind;
  if (kind == TaskKind::Command) {
    spec.name = "echo";
    spec.payload = {{"argv", Json::array({"echo", std::to_string(n)})}};
  } else if (kind == TaskKind::TaskClass) {
    spec.name = "pkg.mod:Cls";
    spec.payload = {{"task_data", {{"n", n}}}};
  }
  return spec;
}

TEST_P(StoreDispatch, EveryKindOfTaskInALargeBatch) {
  GroupId group = store_->create_task_group("g");
  TaskId before = store_->dispatch({numbered(-1)}).at(0);
  std::vector<TaskSpec> specs;
  auto add = [&](TaskKind kind, int count) {
    for (int i = 0; i < count; ++i) specs.push_back(of_kind(kind, int(specs.size())));
  };
  add(TaskKind::Function, 1300);  // runs longer than a chunk: several statements each
  add(TaskKind::Command, 300);
  for (int i = 0; i < 5; ++i) {
    specs.push_back(of_kind(TaskKind::Function, int(specs.size())));
    specs.back().exclusive_resources = {"R" + std::to_string(i % 2)};
    specs.back().shared_resources = {"S"};
  }
  specs.push_back(of_kind(TaskKind::Function, int(specs.size())));
  specs.back().depends_on = {before};
  add(TaskKind::TaskClass, 700);
  for (std::size_t i = 1606; i < specs.size(); i += 3) specs[i].task_group = group;
  specs.push_back(of_kind(TaskKind::Command, int(specs.size())));
  specs.back().unique_key = "only";
  add(TaskKind::Function, 900);
  auto ids = store_->dispatch(specs);
  ASSERT_EQ(ids.size(), specs.size());
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
  auto tasks = all_tasks();
  ASSERT_EQ(tasks.size(), specs.size() + 1);
  for (std::size_t n = 0; n < specs.size(); ++n) {
    const Task& t = tasks.at(ids[n]);
    ASSERT_EQ(t.payload, specs[n].payload) << n;
    EXPECT_EQ(t.kind, specs[n].kind) << n;
    EXPECT_EQ(t.name, specs[n].name) << n;
    EXPECT_EQ(t.task_group, specs[n].task_group) << n;
    EXPECT_EQ(t.exclusive_resources, specs[n].exclusive_resources) << n;
    EXPECT_EQ(t.shared_resources, specs[n].shared_resources) << n;
    EXPECT_EQ(t.unique_key, specs[n].unique_key) << n;
  }
  for (std::size_t n = 0; n < specs.size(); ++n)
    EXPECT_EQ(tasks.at(ids[n]).state, n == 1605 ? TaskState::Blocked : TaskState::Waiting) << n;
  EXPECT_EQ(tasks.at(ids[1605]).depends_on, std::vector<TaskId>{before});
}

TEST_P(StoreDispatch, TextWithEverySpecialCharacterSurvivesTheBulkPath) {
  // Quotes, backslashes, braces, commas, NULL, newlines, non-ASCII: the
  // characters an array literal (PostgreSQL) or a statement could trip on.
  const std::vector<std::string> texts{R"(a "quoted" word)",
                                       R"(back\slash\)",
                                       "{braces}, comma",
                                       "NULL",
                                       "line\nbreak\ttab",
                                       "caf\u00e9 \u2603",
                                       " ",
                                       "\\\""};
  std::vector<TaskSpec> specs;
  for (int n = 0; n < 700; ++n) {
    TaskSpec spec = numbered(n);
    const std::string& text = texts[n % texts.size()];
    spec.name = "pkg.mod:fn " + text;
    spec.payload["kwargs"] = {{"text", text}, {text, Json::array({text, nullptr})}};
    specs.push_back(std::move(spec));
  }
  auto ids = store_->dispatch(specs);
  auto tasks = all_tasks();
  ASSERT_EQ(tasks.size(), specs.size());
  for (int n = 0; n < 700; ++n) {
    EXPECT_EQ(tasks.at(ids[n]).name, specs[n].name) << n;
    EXPECT_EQ(tasks.at(ids[n]).payload, specs[n].payload) << n;
  }
}

TEST_P(StoreDispatch, BadInputInTheMiddleOfALargeBatchStoresNothing) {
  std::vector<TaskSpec> specs;
  for (int n = 0; n < 2500; ++n) specs.push_back(numbered(n));
  specs[1500].name.clear();  // fails validation
  try {
    store_->dispatch(specs);
    FAIL() << "a nameless task was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "task 1500 of the batch: a task needs a name");
  }
  specs[1500] = numbered(1500);
  specs[1700].payload["args"] = Json::array({1700, Json{{"$retval", 1}}});  // not in depends_on
  EXPECT_THROW(store_->dispatch(specs), InvalidArgument);
  EXPECT_TRUE(all_tasks().empty());
  if (GetParam() == "postgresql") {
    // Refused by the server inside a bulk statement, after others were sent.
    specs[1700] = numbered(1700);
    specs[1900].payload["kwargs"]["text"] = std::string("nul\0byte", 8);
    EXPECT_THROW(store_->dispatch(specs), StoreError);
    EXPECT_TRUE(all_tasks().empty());
  }
  EXPECT_EQ(store_->dispatch({numbered(1)}).size(), 1u);  // the store goes on
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreDispatch, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace taskengine
