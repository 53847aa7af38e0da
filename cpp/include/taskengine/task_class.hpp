#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "taskengine/json.hpp"
#include "taskengine/store.hpp"
#include "taskengine/task.hpp"

namespace taskengine {

// A task class as the core drives it on the scheduler side (debusine's
// BaseTask): the core asks it to validate task data, build the dynamic data,
// say which workers can run it and which event reactions it wants. Python
// subclasses of taskengine.BaseTask reach it through a pybind11 trampoline;
// a C++ program may implement it directly. Methods may throw: the error
// propagates out of create_work_request and nothing is stored.
class TaskClass {
 public:
  virtual ~TaskClass() = default;

  virtual std::string name() const = 0;       // the registered, lower-case name
  virtual std::string task_type() const = 0;  // worker | server | signing
  virtual std::optional<std::int64_t> task_version() const = 0;

  // The task data, validated and normalised; throws for invalid data.
  virtual Json validate_data(const Json& task_data) const = 0;
  // The dynamic data, built once when the work request is created.
  virtual Json build_dynamic_data(const Json& task_data) const = 0;
  // Whether a worker reporting `worker_metadata` can run a task with this data.
  virtual bool can_run_on(const Json& task_data, const Json& worker_metadata) const = 0;
  // {"on_creation": [action...], "on_unblock": [...], "on_success": [...],
  //  "on_failure": [...]}; an action is {"action": "record_in_task_history",
  // "data"} | {"action": "retry_with_delays", "delays": [seconds...]} |
  // {"action": "send_notification", "channel", "data"}.
  virtual Json event_reactions(const Json& task_data) const = 0;
};

// Creates a work request of `task_class` in one transaction and returns its
// id. `options` carries the dispatch options (priority, resources, group,
// dependencies, timeout, retry...); the rest comes from the class: kind
// "task", its name, payload {task_name, task_type, task_data, dynamic_data,
// event_reactions, has_dependencies}, worker type and task version as
// requirements, on_creation history entries, a retry_with_delays reaction as
// the retry policy (unless `options` has one), and the online workers of its
// type whose metadata its can_run_on refuses, which then never claim it.
// on_unblock reactions of a task with dependencies are left to the store,
// which applies them when it unblocks the task: record_in_task_history
// entries go into the history in that transaction, and send_notification
// reactions make it dispatch one task then,
// taskengine.tasks._unblock:deliver_unblock(task_id), on the class's worker
// type, which calls the hooks.
TaskId create_work_request(Store& store, const TaskClass& task_class, const Json& task_data,
                           TaskSpec options);

}  // namespace taskengine
