#pragma once

#include <memory>
#include <string>

#include "store/sql/sql_session.hpp"

namespace taskengine::sql {

// The session a store of this URL uses (open_store builds its store on
// one): the same driver and connection settings. ConnectionError if the
// database cannot be reached; InvalidUrl for an unknown scheme.
std::unique_ptr<Session> open_session(const std::string& url);

}  // namespace taskengine::sql
