#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "support/test_stores.hpp"
#include "taskengine/store.hpp"

namespace taskengine::testing {

// A function task: `fn` called with `args` and no keyword arguments.
TaskSpec function_task(const std::string& fn = "pkg.mod:fn", Json args = Json::array());

// The fixture of the suites that run on every backend: the parameter names
// it ("sqlite" or "postgresql"). Each test gets a
// fresh, installed store and, unless the suite asks for none, a registered
// worker "w1" of type "worker" in worker_. Skips when PostgreSQL is not
// reachable (see make_test_store).
class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  // Suites whose tests must see no worker before they register their own
  // pass false.
  explicit StoreTest(bool with_worker = true) : with_worker_(with_worker) {}

  void SetUp() override;

  // A worker on localhost, pid 1.
  WorkerInfo register_worker(const std::string& name, const std::string& type = "worker",
                             Json metadata = Json::object());

  TaskId dispatch(const TaskSpec& spec) { return store_->dispatch({spec}).at(0); }
  Task task(TaskId id) { return store_->get_task(id).value(); }
  std::size_t count_tasks();

  // A fresh function task, claimed by worker_: a running attempt.
  Task running();

  // Ends the attempt `claimed` in `state` (a Failed one with a ValueError);
  // the completion must apply.
  void finish(const Task& claimed, TaskState state, Json result = nullptr);

  std::unique_ptr<TestStore> test_store_;
  std::unique_ptr<Store> store_;
  WorkerInfo worker_;

 private:
  bool with_worker_;
};

}  // namespace taskengine::testing
