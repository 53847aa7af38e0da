#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "taskengine/task.hpp"

namespace taskengine::scheduler {

// What a task with dependencies should be, given how they stand now.
struct DependencyVerdict {
  TaskState state;                    // Blocked, Waiting or Skipped
  std::optional<std::string> reason;  // for Skipped: which dependency ended how
};

// Waiting once every dependency completed (with `allow_failure`: once every
// one ended, however); Skipped as soon as one failed, was canceled or was
// skipped, without `allow_failure` (it could never run); Blocked otherwise.
DependencyVerdict dependency_verdict(const std::vector<std::pair<TaskId, TaskState>>& dependencies,
                                     bool allow_failure);

}  // namespace taskengine::scheduler
