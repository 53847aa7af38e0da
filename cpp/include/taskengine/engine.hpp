#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "taskengine/store.hpp"
#include "taskengine/task_class.hpp"

namespace taskengine {

// The engine as a C++ program uses it: the same operations as the Python
// `taskengine.Engine`, over one store connection. Not thread-safe; open one
// Engine per thread.
class Engine {
 public:
  explicit Engine(const std::string& url);

  void install();
  void uninstall();
  int schema_version();

  TaskId dispatch(const TaskSpec& spec);
  std::vector<TaskId> dispatch_many(const std::vector<TaskSpec>& specs);
  // A task of `task_class` (see taskengine/task_class.hpp).
  TaskId create_work_request(const TaskClass& task_class, const Json& task_data,
                             TaskSpec options = {}) {
    return taskengine::create_work_request(*store_, task_class, task_data, std::move(options));
  }

  Task get_task(TaskId id);  // throws NotFound
  std::vector<Task> list_tasks(const TaskFilter& filter = {});
  TaskState cancel_task(TaskId id);
  GroupId create_task_group(const std::string& description = "");
  int cancel_task_group(GroupId id);
  std::vector<WorkerInfo> workers(bool include_offline = false);

  // Waits until the task reaches a final state; nullopt on timeout.
  std::optional<Task> wait(TaskId id, std::optional<std::chrono::milliseconds> timeout = {});

  Store& store() { return *store_; }

 private:
  std::unique_ptr<Store> store_;
};

}  // namespace taskengine
