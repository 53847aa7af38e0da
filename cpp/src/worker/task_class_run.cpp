#include "worker/task_class_run.hpp"

#include <spdlog/spdlog.h>

namespace taskengine::worker {
namespace {

const char* const kRunner = "taskengine.tasks._runner:run_work_request";
const char* const kAnalyze = "taskengine.tasks._runner:analyze_worker";

Json error_json(const std::string& type, const std::string& message) {
  return {{"type", type}, {"message", message}, {"traceback", Json::array()}};
}

}  // namespace

Json task_class_request(const Task& task) {
  return {{"id", task.id},
          {"attempt", task.attempt},
          {"function", kRunner},
          {"args", Json::array()},
          {"kwargs", {{"task_id", task.id}, {"attempt", task.attempt}, {"payload", task.payload}}}};
}

Completion task_class_completion(const Task& task, const exec::PythonOutcome& outcome) {
  Completion c{task.id, task.fence, TaskState::Failed, nullptr, nullptr, std::nullopt};
  if (!outcome.ok) {
    std::string type = outcome.error.value("type", "Error");
    c.error = outcome.error;
    c.reason = "raised " + type + ": " + outcome.error.value("message", "");
    return c;
  }
  const Json& answer = outcome.result;
  if (!answer.is_object() || !answer.contains("outcome") || !answer["outcome"].is_string()) {
    c.error = error_json("WorkerError", "the task-class runner answered without an outcome");
    c.reason = "worker error";
    return c;
  }
  std::string kind = answer["outcome"].get<std::string>();
  if (auto history = answer.find("history"); history != answer.end() && history->is_array())
    c.history = *history;
  if (auto reason = answer.find("reason"); reason != answer.end() && reason->is_string())
    c.reason = reason->get<std::string>();
  c.result = answer.value("result", Json());
  if (kind == "completed") {
    c.state = TaskState::Completed;
  } else if (kind == "declined") {
    c.state = TaskState::Waiting;
    c.declined = true;
    c.result = nullptr;
  } else {
    c.error = answer.value("error", Json());
    if (c.error.is_null()) c.error = error_json("TaskFailed", "the task reported failure");
    if (!c.reason) c.reason = "task reported failure";
  }
  return c;
}

Json analyze_task_classes(const std::string& python, const std::vector<std::string>& imports,
                          const std::map<std::string, std::string>& env) {
  exec::PythonExecutor executor(python, imports, env);
  Json request = {{"id", 1}, {"function", kAnalyze}};
  exec::PythonOutcome outcome = executor.run(
      request, [](pid_t) {}, [](const Json&) {});
  executor.stop();
  if (outcome.ok && outcome.result.is_object()) return outcome.result;
  spdlog::warn("task classes not analyzed ({}: {}); registering without their metadata",
               outcome.error.value("type", "Error"), outcome.error.value("message", ""));
  return Json::object();
}

}  // namespace taskengine::worker
