#include "taskengine/worker_info.hpp"

namespace taskengine {

Json WorkerInfo::to_json() const {
  return {{"id", id},
          {"name", name},
          {"worker_type", worker_type},
          {"hostname", hostname},
          {"pid", pid},
          {"metadata", metadata},
          {"started_at", started_at},
          {"last_heartbeat", last_heartbeat},
          {"online", online}};
}

}  // namespace taskengine
