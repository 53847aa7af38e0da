#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskengine/json.hpp"
#include "taskengine/time.hpp"

namespace taskengine {

using TaskId = std::int64_t;
using WorkerId = std::int64_t;
using GroupId = std::int64_t;

enum class TaskState { Blocked, Waiting, Running, Completed, Failed, Skipped, Canceling, Canceled };

// function: a Python callable "module:function"; task: a registered task
// class; command: an argv run natively.
enum class TaskKind { Function, TaskClass, Command };

std::string_view to_string(TaskState state);
std::string_view to_string(TaskKind kind);
TaskState parse_task_state(std::string_view text);  // throws InvalidArgument
TaskKind parse_task_kind(std::string_view text);    // throws InvalidArgument
bool is_final(TaskState state);

// What a worker must offer to run a task.
struct Requirements {
  std::string worker_type = "worker";  // worker | server | signing
  std::optional<std::int64_t> task_version;
  std::optional<std::string> architecture;
  Json versions = Json::object();  // {"component": "minimum version"}

  Json to_json() const;
  static Requirements from_json(const Json& j);
  bool operator==(const Requirements&) const = default;
};

// How many times a task may be tried, and how long to wait between tries.
struct RetryPolicy {
  int max_attempts = 1;        // 1 = no retry
  std::vector<double> delays;  // explicit delays in seconds, or empty
  double backoff_base = 0;     // exponential backoff base in seconds, 0 = none
  double backoff_max = 3600;
  bool jitter = true;

  Json to_json() const;
  static RetryPolicy from_json(const Json& j);
  bool operator==(const RetryPolicy&) const = default;
};

// Everything dispatch takes. `payload` holds the kind-specific data:
//   function:  {"function": "mod:fn", "args": [...], "kwargs": {...}}
//   task:      {"task_name": "...", "task_data": {...}}
//   command:   {"argv": [...], "env": {...}|null, "cwd": "..."|null}
struct TaskSpec {
  TaskKind kind = TaskKind::Function;
  std::string name;  // function path, task class name, or argv[0]
  Json payload = Json::object();
  int priority = 0;
  std::optional<Micros> not_before;
  std::vector<std::string> exclusive_resources;
  std::vector<std::string> shared_resources;
  std::optional<GroupId> task_group;
  std::vector<TaskId> depends_on;
  bool allow_failure = false;  // run even when a dependency did not complete
  Requirements requirements;
  RetryPolicy retry;
  std::optional<double> timeout_seconds;
  std::optional<std::string> unique_key;
  // Task classes: history entries written with the task (on_creation
  // reactions), and workers known not to pass its can_run_on.
  Json history = Json::array();
  std::vector<WorkerId> declined_by;
  // Task classes' on_unblock reactions, applied by the store in the
  // transaction that moves the task from blocked to waiting (at creation if
  // its dependencies are already done; never for a task without
  // dependencies, one skipped or one canceled while blocked): history
  // entries, stamped with that moment ("at"), and tasks dispatched then,
  // whose payload's kwargs get {"task_id": this task's id}.
  Json unblock_history = Json::array();
  std::vector<TaskSpec> unblock_dispatch;

  // Throws InvalidArgument naming the first problem found.
  void validate() const;
  Json to_json() const;
  static TaskSpec from_json(const Json& j);  // throws InvalidArgument
};

// A task as stored.
struct Task {
  TaskId id = 0;
  TaskKind kind = TaskKind::Function;
  std::string name;
  Json payload = Json::object();
  TaskState state = TaskState::Waiting;
  int priority = 0;
  Micros created_at = 0;
  std::optional<Micros> not_before;
  std::optional<Micros> started_at;
  std::optional<Micros> finished_at;
  std::vector<std::string> exclusive_resources;
  std::vector<std::string> shared_resources;
  std::optional<GroupId> task_group;
  std::vector<TaskId> depends_on;
  bool allow_failure = false;
  Requirements requirements;
  RetryPolicy retry;
  std::optional<double> timeout_seconds;
  std::optional<std::string> unique_key;
  // How many times the task was started (counted against the retry policy).
  int attempt = 0;
  // The fencing token: a new value on every claim; every write of a running
  // attempt must name it, so a worker that comes back from the dead cannot
  // overwrite a newer attempt.
  std::int64_t fence = 0;
  std::optional<WorkerId> worker_id;
  std::optional<std::string> worker_name;
  Json result;  // null until completed
  Json error;   // null, or {"type", "message", "traceback": [frames]}
  std::optional<std::string> reason;
  Json history = Json::array();  // event reactions recorded with the task

  Json to_json() const;
};

// What a worker reports when an attempt ends.
struct Completion {
  TaskId task_id = 0;
  std::int64_t fence = 0;  // the attempt's fencing token
  // Completed | Failed | Canceled, or Waiting: the attempt did not run (or
  // was interrupted by a shutdown) and the task is requeued without counting
  // it, as Store::requeue does.
  TaskState state = TaskState::Completed;
  Json result;
  Json error;
  std::optional<std::string> reason;
  Json history = Json::array();  // entries appended to the task's history
  // A task class's can_run_on refused this worker: hand the task back
  // without counting the attempt; the worker never claims it again.
  bool declined = false;
};

}  // namespace taskengine
