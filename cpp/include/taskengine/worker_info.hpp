#pragma once

#include <optional>
#include <string>

#include "taskengine/json.hpp"
#include "taskengine/task.hpp"
#include "taskengine/time.hpp"

namespace taskengine {

// A worker as registered in the store. `metadata` is what the worker reports
// about itself: {"system:worker_type", "system:architecture",
// "system:cpu_count", "versions": {...}, "<task>:version": n, ...}.
struct WorkerInfo {
  WorkerId id = 0;
  std::string name;
  std::string worker_type = "worker";
  std::string hostname;
  std::int64_t pid = 0;
  Json metadata = Json::object();
  Micros started_at = 0;
  Micros last_heartbeat = 0;
  bool online = true;

  Json to_json() const;
};

}  // namespace taskengine
