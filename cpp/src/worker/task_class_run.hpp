#pragma once

// How the worker runs a task of kind "task" (a task class): through its
// Python executor, which runs taskengine.tasks._runner. The runner answers
// with an outcome object rather than an exception, so that the attempt's
// history entries travel with its result.

#include "exec/python_executor.hpp"
#include "taskengine/task.hpp"
#include "taskengine/worker.hpp"

namespace taskengine::worker {

// The executor request that runs `task`.
Json task_class_request(const Task& task);

// The attempt's completion from the executor's answer:
//   {"outcome": "completed" | "failed" | "declined", "result", "error",
//    "reason", "history"}
// "declined" hands the task back (Completion::declined). An executor error
// (a cancel, a lost executor) fails the attempt as for a function task.
Completion task_class_completion(const Task& task, const exec::PythonOutcome& outcome);

// What the task classes the worker's executors can load report about this
// worker (BaseTask.analyze_worker_all_tasks), asked of a short-lived executor
// at start. Empty, with a warning in the log, when Python or the classes
// cannot be loaded.
Json analyze_task_classes(const std::string& python, const std::vector<std::string>& imports,
                          const std::map<std::string, std::string>& env);

}  // namespace taskengine::worker
