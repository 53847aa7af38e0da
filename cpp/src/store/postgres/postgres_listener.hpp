#pragma once

#include <memory>
#include <string>
#include <vector>

#include "taskengine/store.hpp"

namespace taskengine::sql {

// LISTEN on one channel per topic, on a connection of its own (libpqxx's
// notification receivers); wait() also returns when interrupt() is called.
std::unique_ptr<WakeupListener> make_postgres_listener(const std::string& url,
                                                       const std::vector<std::string>& channels);

}  // namespace taskengine::sql
