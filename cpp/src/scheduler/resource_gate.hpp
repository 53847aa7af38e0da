#pragma once

#include <string>
#include <unordered_set>
#include <vector>

namespace taskengine::scheduler {

// The resource rule of ARCHITECTURE.md (invariants 1 and 2), with no I/O.
// Walk tasks in claim order: first every running or canceling task, then the
// waiting queue by priority and dispatch time. Each task either starts or
// waits; either way it then holds its resources against every task behind
// it. So an exclusive task is never starved by later shared ones, and a task
// that needs none of the held resources is never held back.
class ResourceGate {
 public:
  // True if a task taking these resources conflicts with what is held.
  bool conflicts(const std::vector<std::string>& exclusive,
                 const std::vector<std::string>& shared) const;
  void hold(const std::vector<std::string>& exclusive, const std::vector<std::string>& shared);
  void clear();

 private:
  std::unordered_set<std::string> exclusive_;
  std::unordered_set<std::string> shared_;
};

}  // namespace taskengine::scheduler
