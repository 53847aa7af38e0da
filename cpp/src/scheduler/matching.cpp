#include "scheduler/matching.hpp"

#include <algorithm>
#include <sstream>
#include <vector>

namespace taskengine::scheduler {
namespace {

std::vector<std::string> split_version(const std::string& v) {
  std::vector<std::string> parts;
  std::stringstream stream(v);
  std::string part;
  while (std::getline(stream, part, '.')) parts.push_back(part);
  return parts;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

int compare_versions(const std::string& a, const std::string& b) {
  auto pa = split_version(a);
  auto pb = split_version(b);
  std::size_t n = std::max(pa.size(), pb.size());
  for (std::size_t i = 0; i < n; ++i) {
    std::string x = i < pa.size() ? pa[i] : "0";
    std::string y = i < pb.size() ? pb[i] : "0";
    if (all_digits(x) && all_digits(y)) {
      // Compare as numbers without overflow: strip zeros, then length, then text.
      x.erase(0, std::min(x.find_first_not_of('0'), x.size() - 1));
      y.erase(0, std::min(y.find_first_not_of('0'), y.size() - 1));
      if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
    }
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

std::string mismatch(const Task& task, const WorkerInfo& worker) {
  const Requirements& req = task.requirements;
  if (req.worker_type != worker.worker_type) return "needs a worker of type " + req.worker_type;
  const Json& meta = worker.metadata;
  if (req.architecture) {
    bool found = false;
    if (auto it = meta.find("system:architectures"); it != meta.end() && it->is_array())
      for (const auto& arch : *it) found = found || (arch.is_string() && arch == *req.architecture);
    if (auto it = meta.find("system:architecture"); it != meta.end() && it->is_string())
      found = found || *it == *req.architecture;
    if (!found) return "needs architecture " + *req.architecture;
  }
  if (req.task_version) {
    auto it = meta.find(task.name + ":version");
    if (it == meta.end() || !it->is_number_integer() ||
        it->get<std::int64_t>() != *req.task_version)
      return "needs " + task.name + " version " + std::to_string(*req.task_version);
  }
  if (!req.versions.empty()) {
    auto versions = meta.find("versions");
    for (const auto& [component, minimum] : req.versions.items()) {
      if (versions == meta.end() || !versions->contains(component) ||
          !(*versions)[component].is_string() ||
          compare_versions((*versions)[component].get<std::string>(), minimum.get<std::string>()) <
              0)
        return "needs " + component + " >= " + minimum.get<std::string>();
    }
  }
  return {};
}

}  // namespace taskengine::scheduler
