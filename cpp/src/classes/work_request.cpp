#include <algorithm>
#include <limits>

#include "taskengine/errors.hpp"
#include "taskengine/task_class.hpp"
#include "taskengine/time.hpp"

namespace taskengine {
namespace {

const char* const kEvents[] = {"on_creation", "on_unblock", "on_success", "on_failure"};

Json checked_reactions(const Json& reactions) {
  if (!reactions.is_object()) throw InvalidArgument("event reactions must be an object");
  Json out = Json::object();
  for (const char* event : kEvents) {
    Json actions = reactions.value(event, Json::array());
    if (!actions.is_array()) throw InvalidArgument(std::string(event) + " must list actions");
    for (const auto& action : actions)
      if (!action.is_object() || !action.contains("action") || !action["action"].is_string())
        throw InvalidArgument(std::string(event) + " has an action without an 'action' name");
    out[event] = actions;
  }
  return out;
}

// retry_with_delays on failure becomes the task's retry policy: the store
// then retries it like any other task.
std::optional<RetryPolicy> retry_from(const Json& on_failure) {
  for (const auto& action : on_failure) {
    if (action["action"] != "retry_with_delays") continue;
    RetryPolicy policy;
    policy.delays = action.at("delays").get<std::vector<double>>();
    policy.max_attempts = static_cast<int>(policy.delays.size()) + 1;
    policy.backoff_base = 0;
    policy.jitter = false;
    return policy;
  }
  return std::nullopt;
}

// The Python function that delivers a task's on_unblock notifications: the
// store dispatches it when it unblocks the task, with kwargs {"task_id"}, so
// the delivery is a task like any other (durable, retried if its worker is
// lost) and starts as soon as a worker of the task's type is free.
constexpr const char* kDeliverUnblock = "taskengine.tasks._unblock:deliver_unblock";

TaskSpec unblock_delivery(const TaskSpec& task) {
  TaskSpec delivery;
  delivery.kind = TaskKind::Function;
  delivery.name = kDeliverUnblock;
  delivery.payload = {
      {"function", kDeliverUnblock}, {"args", Json::array()}, {"kwargs", Json::object()}};
  // Just ahead of the task it announces, so a worker with one slot free
  // notifies before it starts the task.
  delivery.priority =
      task.priority < std::numeric_limits<int>::max() ? task.priority + 1 : task.priority;
  // Workers of the task's type import the modules its hooks live in.
  delivery.requirements.worker_type = task.requirements.worker_type;
  // Only a lost worker or executor fails it (hook errors are recorded, not
  // raised): try again rather than lose the notification.
  delivery.retry.max_attempts = 5;
  delivery.retry.backoff_base = 1;
  delivery.retry.backoff_max = 60;
  return delivery;
}

}  // namespace

TaskId create_work_request(Store& store, const TaskClass& task_class, const Json& task_data,
                           TaskSpec options) {
  if (!task_data.is_object()) throw InvalidArgument("task data must be a JSON object");
  TaskSpec spec = std::move(options);
  spec.kind = TaskKind::TaskClass;
  spec.name = task_class.name();
  spec.requirements.worker_type = task_class.task_type();
  spec.requirements.task_version = task_class.task_version();

  Json data = task_class.validate_data(task_data);
  Json dynamic = task_class.build_dynamic_data(data);
  Json reactions = checked_reactions(task_class.event_reactions(data));
  spec.payload = {{"task_name", spec.name},
                  {"task_type", spec.requirements.worker_type},
                  {"task_data", data},
                  {"dynamic_data", dynamic},
                  {"event_reactions", reactions},
                  {"has_dependencies", !spec.depends_on.empty()}};

  Micros now = now_micros();
  for (const auto& action : reactions["on_creation"])
    if (action["action"] == "record_in_task_history")
      spec.history.push_back(
          {{"event", "on_creation"}, {"data", action.value("data", Json::object())}, {"at", now}});
  // on_unblock: the store applies these when it unblocks the task.
  bool notify_unblock = false;
  for (const auto& action : reactions["on_unblock"]) {
    if (action["action"] == "record_in_task_history")
      spec.unblock_history.push_back(
          {{"event", "on_unblock"}, {"data", action.value("data", Json::object())}});
    else if (action["action"] == "send_notification")
      notify_unblock = true;
  }
  if (auto retry = retry_from(reactions["on_failure"])) {
    if (spec.retry.max_attempts > 1)
      throw InvalidArgument("task class " + spec.name +
                            " reacts to failure with retry_with_delays; do not pass retries too");
    spec.retry = *retry;
  }
  if (notify_unblock && !spec.depends_on.empty())
    spec.unblock_dispatch.push_back(unblock_delivery(spec));

  // Workers known now that the class refuses never claim it; workers that
  // register later check can_run_on themselves when they claim it.
  for (const auto& worker : store.list_workers(false))
    if (worker.worker_type == spec.requirements.worker_type &&
        !task_class.can_run_on(data, worker.metadata))
      spec.declined_by.push_back(worker.id);

  return store.dispatch({spec}).at(0);
}

}  // namespace taskengine
