#include "support/store_test.hpp"

#include <utility>

namespace taskengine::testing {

TaskSpec function_task(const std::string& fn, Json args) {
  TaskSpec spec;
  spec.kind = TaskKind::Function;
  spec.name = fn;
  spec.payload = {{"function", fn}, {"args", std::move(args)}, {"kwargs", Json::object()}};
  return spec;
}

void StoreTest::SetUp() {
  test_store_ = make_test_store(GetParam());
  if (!test_store_) GTEST_SKIP() << "PostgreSQL is not reachable";
  store_ = open_store(test_store_->url());
  store_->install();
  if (with_worker_) worker_ = register_worker("w1");
}

WorkerInfo StoreTest::register_worker(const std::string& name, const std::string& type,
                                      Json metadata) {
  WorkerInfo info;
  info.name = name;
  info.worker_type = type;
  info.hostname = "localhost";
  info.pid = 1;
  info.metadata = std::move(metadata);
  info.id = store_->register_worker(info);
  return info;
}

std::size_t StoreTest::count_tasks() {
  return store_->list_tasks({std::nullopt, std::nullopt, std::nullopt, 10000, false}).size();
}

Task StoreTest::running() {
  TaskId id = dispatch(function_task());
  return store_->claim_task(id, worker_).value();
}

void StoreTest::finish(const Task& claimed, TaskState state, Json result) {
  Completion c;
  c.task_id = claimed.id;
  c.fence = claimed.fence;
  c.state = state;
  c.result = std::move(result);
  if (state == TaskState::Failed) c.error = {{"type", "ValueError"}, {"message", "boom"}};
  ASSERT_EQ(store_->complete({c}), std::vector<bool>{true});
}

}  // namespace taskengine::testing
