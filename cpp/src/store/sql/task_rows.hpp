#pragma once

#include <optional>
#include <string>

#include "store/sql/sql_session.hpp"
#include "taskengine/task.hpp"

namespace taskengine::sql {

// A whole task row as the store reads it: the columns, in the order
// task_from_row() expects them. `prefix` qualifies each (e.g. "t." where
// the statement joins another relation with an id column).
std::string task_columns(const std::string& prefix = "");
Task task_from_row(const Row& row);

bool has_resources(const Task& task);
// Claimable without the C++ side of the claim: no dependencies whose
// results to substitute, and no requirements beyond the worker type (which
// the claim's WHERE matches). Resources do not count: the one-statement
// claim (claim_plain) activates them itself, and tests the same on the row,
// in SQL.
bool is_plain(const Task& task);

// A JSON column's value; NULL or empty: null.
Json parse_json(const std::optional<std::string>& text);
// The reverse: null is stored as SQL NULL.
Value json_value(const Json& j);

}  // namespace taskengine::sql
