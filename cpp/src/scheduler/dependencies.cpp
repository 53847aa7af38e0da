#include "scheduler/dependencies.hpp"

namespace taskengine::scheduler {

DependencyVerdict dependency_verdict(const std::vector<std::pair<TaskId, TaskState>>& dependencies,
                                     bool allow_failure) {
  bool unfinished = false;
  for (const auto& [id, state] : dependencies) {
    if (!is_final(state))
      unfinished = true;
    else if (state != TaskState::Completed && !allow_failure)
      return {TaskState::Skipped,
              "dependency " + std::to_string(id) + " ended " + std::string(to_string(state))};
  }
  return {unfinished ? TaskState::Blocked : TaskState::Waiting, std::nullopt};
}

}  // namespace taskengine::scheduler
