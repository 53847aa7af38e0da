#pragma once

#include <string>

#include "taskengine/task.hpp"
#include "taskengine/worker_info.hpp"

namespace taskengine::scheduler {

// Invariant 7: a task runs only on a worker of its type whose metadata
// satisfies its requirements. Worker metadata keys (debusine's naming):
//   "system:worker_type", "system:architectures" (list) or
//   "system:architecture", "versions" {component: version},
//   "<task name>:version" (an integer) for task classes.
// Returns an empty string when the worker qualifies, else why it does not.
std::string mismatch(const Task& task, const WorkerInfo& worker);

// Compares dotted version strings numerically ("1.10" > "1.9"); a
// non-numeric part compares as text.
int compare_versions(const std::string& a, const std::string& b);

}  // namespace taskengine::scheduler
