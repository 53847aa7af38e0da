#include "scheduler/resource_gate.hpp"

namespace taskengine::scheduler {

bool ResourceGate::conflicts(const std::vector<std::string>& exclusive,
                             const std::vector<std::string>& shared) const {
  for (const auto& r : exclusive)
    if (exclusive_.count(r) || shared_.count(r)) return true;
  for (const auto& r : shared)
    if (exclusive_.count(r)) return true;
  return false;
}

void ResourceGate::hold(const std::vector<std::string>& exclusive,
                        const std::vector<std::string>& shared) {
  exclusive_.insert(exclusive.begin(), exclusive.end());
  shared_.insert(shared.begin(), shared.end());
}

void ResourceGate::clear() {
  exclusive_.clear();
  shared_.clear();
}

}  // namespace taskengine::scheduler
