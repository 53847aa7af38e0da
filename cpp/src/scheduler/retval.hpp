#pragma once

#include <functional>
#include <set>

#include "taskengine/json.hpp"
#include "taskengine/task.hpp"

namespace taskengine::scheduler {

// Result passing: an argument {"$retval": <task id>} stands for that
// dependency's result and is replaced when the dependent starts
// (jobcontrol's !retval, in JSON).

// Every task id referenced by a {"$retval": id} object anywhere in `value`.
std::set<TaskId> retval_references(const Json& value);

// `value` with every {"$retval": id} replaced by result_of(id).
Json substitute_retvals(const Json& value, const std::function<Json(TaskId)>& result_of);

}  // namespace taskengine::scheduler
