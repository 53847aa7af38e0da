#include "scheduler/retval.hpp"

namespace taskengine::scheduler {
namespace {

constexpr const char* kKey = "$retval";

bool is_reference(const Json& value) {
  return value.is_object() && value.size() == 1 && value.contains(kKey) &&
         value[kKey].is_number_integer();
}

void collect(const Json& value, std::set<TaskId>& out) {
  if (is_reference(value)) {
    out.insert(value[kKey].get<TaskId>());
  } else if (value.is_structured()) {
    for (const auto& item : value) collect(item, out);
  }
}

}  // namespace

std::set<TaskId> retval_references(const Json& value) {
  std::set<TaskId> out;
  collect(value, out);
  return out;
}

Json substitute_retvals(const Json& value, const std::function<Json(TaskId)>& result_of) {
  if (is_reference(value)) return result_of(value[kKey].get<TaskId>());
  if (value.is_array()) {
    Json out = Json::array();
    for (const auto& item : value) out.push_back(substitute_retvals(item, result_of));
    return out;
  }
  if (value.is_object()) {
    Json out = Json::object();
    for (const auto& [key, item] : value.items()) out[key] = substitute_retvals(item, result_of);
    return out;
  }
  return value;
}

}  // namespace taskengine::scheduler
