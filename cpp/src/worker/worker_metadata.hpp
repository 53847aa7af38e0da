#pragma once

#include <string>

#include "taskengine/json.hpp"
#include "taskengine/worker.hpp"

namespace taskengine::worker {

// What the worker reports about itself, in debusine's key style:
// system:worker_type, system:architectures, system:cpu_count,
// system:host_name, versions {taskengine, ...}; then options.metadata on top.
Json collect_metadata(const WorkerOptions& options);

std::string host_name();
std::string default_worker_name();
// The Python interpreter executors run under (see WorkerOptions::python).
std::string resolve_python(const std::string& configured);

}  // namespace taskengine::worker
