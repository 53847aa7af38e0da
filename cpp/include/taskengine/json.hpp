#pragma once

#include <nlohmann/json.hpp>

namespace taskengine {
// Every value that crosses a process or host boundary is JSON: never pickle.
using Json = nlohmann::json;
}  // namespace taskengine
