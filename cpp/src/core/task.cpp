#include "taskengine/task.hpp"

#include <array>
#include <cmath>
#include <set>
#include <utility>

#include "taskengine/errors.hpp"

namespace taskengine {
namespace {

constexpr std::array<std::pair<TaskState, std::string_view>, 8> kStateNames{{
    {TaskState::Blocked, "blocked"},
    {TaskState::Waiting, "waiting"},
    {TaskState::Running, "running"},
    {TaskState::Completed, "completed"},
    {TaskState::Failed, "failed"},
    {TaskState::Skipped, "skipped"},
    {TaskState::Canceling, "canceling"},
    {TaskState::Canceled, "canceled"},
}};

constexpr std::array<std::pair<TaskKind, std::string_view>, 3> kKindNames{{
    {TaskKind::Function, "function"},
    {TaskKind::TaskClass, "task"},
    {TaskKind::Command, "command"},
}};

const std::set<std::string> kWorkerTypes{"worker", "server", "signing"};

// Typed accessors that name the offending field, so a bad spec from Python
// or the CLI produces a message a person can act on.
template <typename T>
T field(const Json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const Json::exception&) {
    throw InvalidArgument(std::string("'") + key + "' has the wrong type: " + it->dump());
  }
}

template <typename T>
std::optional<T> optional_field(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  try {
    return it->get<T>();
  } catch (const Json::exception&) {
    throw InvalidArgument(std::string("'") + key + "' has the wrong type: " + it->dump());
  }
}

template <typename T>
Json optional_json(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

void check_resources(const std::vector<std::string>& resources, const char* what) {
  std::set<std::string> seen;
  for (const auto& r : resources) {
    if (r.empty()) throw InvalidArgument(std::string(what) + " contains an empty resource name");
    if (!seen.insert(r).second)
      throw InvalidArgument(std::string(what) + " lists resource '" + r + "' twice");
  }
}

}  // namespace

std::string_view to_string(TaskState state) {
  for (const auto& [value, name] : kStateNames)
    if (value == state) return name;
  return "unknown";
}

std::string_view to_string(TaskKind kind) {
  for (const auto& [value, name] : kKindNames)
    if (value == kind) return name;
  return "unknown";
}

TaskState parse_task_state(std::string_view text) {
  for (const auto& [value, name] : kStateNames)
    if (name == text) return value;
  throw InvalidArgument("unknown task state '" + std::string(text) +
                        "' (expected blocked, waiting, running, completed, failed, skipped, "
                        "canceling or canceled)");
}

TaskKind parse_task_kind(std::string_view text) {
  for (const auto& [value, name] : kKindNames)
    if (name == text) return value;
  throw InvalidArgument("unknown task kind '" + std::string(text) +
                        "' (expected function, task or command)");
}

bool is_final(TaskState state) {
  return state == TaskState::Completed || state == TaskState::Failed ||
         state == TaskState::Skipped || state == TaskState::Canceled;
}

Json Requirements::to_json() const {
  return {{"worker_type", worker_type},
          {"task_version", optional_json(task_version)},
          {"architecture", optional_json(architecture)},
          {"versions", versions}};
}

Requirements Requirements::from_json(const Json& j) {
  if (!j.is_null() && !j.is_object()) throw InvalidArgument("'requirements' must be an object");
  Requirements r;
  if (j.is_null()) return r;
  r.worker_type = field<std::string>(j, "worker_type", "worker");
  r.task_version = optional_field<std::int64_t>(j, "task_version");
  r.architecture = optional_field<std::string>(j, "architecture");
  if (auto it = j.find("versions"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) throw InvalidArgument("'versions' must map component names to versions");
    for (const auto& [component, version] : it->items()) {
      if (!version.is_string())
        throw InvalidArgument("'versions' entry '" + component + "' must be a version string");
    }
    r.versions = *it;
  }
  return r;
}

Json RetryPolicy::to_json() const {
  return {{"max_attempts", max_attempts},
          {"delays", delays},
          {"backoff_base", backoff_base},
          {"backoff_max", backoff_max},
          {"jitter", jitter}};
}

RetryPolicy RetryPolicy::from_json(const Json& j) {
  RetryPolicy p;
  if (j.is_null()) return p;
  if (!j.is_object()) throw InvalidArgument("'retry' must be an object");
  p.max_attempts = field<int>(j, "max_attempts", 1);
  p.delays = field<std::vector<double>>(j, "delays", {});
  p.backoff_base = field<double>(j, "backoff_base", 0);
  p.backoff_max = field<double>(j, "backoff_max", 3600);
  p.jitter = field<bool>(j, "jitter", true);
  return p;
}

void TaskSpec::validate() const {
  if (name.empty()) throw InvalidArgument("a task needs a name");
  if (!payload.is_object()) throw InvalidArgument("'payload' must be an object");
  switch (kind) {
    case TaskKind::Function: {
      auto fn = payload.find("function");
      if (fn == payload.end() || !fn->is_string() ||
          fn->get<std::string>().find(':') == std::string::npos)
        throw InvalidArgument("a function task needs 'function' as \"module:function\"");
      if (auto a = payload.find("args"); a != payload.end() && !a->is_array())
        throw InvalidArgument("'args' must be a list");
      if (auto k = payload.find("kwargs"); k != payload.end() && !k->is_object())
        throw InvalidArgument("'kwargs' must be an object");
      break;
    }
    case TaskKind::Command: {
      auto argv = payload.find("argv");
      if (argv == payload.end() || !argv->is_array() || argv->empty())
        throw InvalidArgument("a command needs a non-empty argv");
      for (const auto& item : *argv)
        if (!item.is_string()) throw InvalidArgument("every argv item must be a string");
      if ((*argv)[0].get<std::string>().empty())
        throw InvalidArgument("a command's program (argv[0]) is empty");
      if (auto env = payload.find("env"); env != payload.end() && !env->is_null()) {
        if (!env->is_object()) throw InvalidArgument("a command's env must map names to strings");
        for (const auto& [key, value] : env->items())
          if (key.empty() || key.find('=') != std::string::npos || !value.is_string())
            throw InvalidArgument("invalid env entry '" + key + "'");
      }
      if (auto cwd = payload.find("cwd");
          cwd != payload.end() && !cwd->is_null() && !cwd->is_string())
        throw InvalidArgument("a command's cwd must be a string");
      break;
    }
    case TaskKind::TaskClass:
      if (!payload.contains("task_data") || !payload["task_data"].is_object())
        throw InvalidArgument("a task class needs 'task_data' as an object");
      break;
  }
  if (not_before && *not_before < 0) throw InvalidArgument("'not_before' is negative");
  check_resources(exclusive_resources, "exclusive_resources");
  check_resources(shared_resources, "shared_resources");
  std::set<std::string> exclusive(exclusive_resources.begin(), exclusive_resources.end());
  for (const auto& r : shared_resources)
    if (exclusive.count(r))
      throw InvalidArgument("resource '" + r + "' is both exclusive and shared");
  for (TaskId dep : depends_on)
    if (dep <= 0) throw InvalidArgument("'depends_on' has an invalid task id");
  if (!kWorkerTypes.count(requirements.worker_type))
    throw InvalidArgument("unknown worker type '" + requirements.worker_type +
                          "' (expected worker, server or signing)");
  if (retry.max_attempts < 1) throw InvalidArgument("retry 'max_attempts' must be at least 1");
  for (double d : retry.delays)
    if (!(d >= 0) || !std::isfinite(d)) throw InvalidArgument("retry delays must be >= 0");
  if (retry.backoff_base < 0 || retry.backoff_max < 0)
    throw InvalidArgument("retry backoff must be >= 0");
  if (timeout_seconds && !(*timeout_seconds > 0 && std::isfinite(*timeout_seconds)))
    throw InvalidArgument("'timeout' must be a positive number of seconds");
  if (unique_key && unique_key->empty()) throw InvalidArgument("'unique_key' is empty");
  if (!history.is_array()) throw InvalidArgument("'history' must be a list");
  if (!unblock_history.is_array()) throw InvalidArgument("'unblock_history' must be a list");
  for (const auto& entry : unblock_history)
    if (!entry.is_object()) throw InvalidArgument("every unblock history entry must be an object");
  for (const auto& spec : unblock_dispatch) {
    // Dispatched at the unblock, by id: nothing there could wait for it.
    if (spec.kind != TaskKind::Function)
      throw InvalidArgument("a task dispatched at unblock must be a function task");
    if (!spec.depends_on.empty() || !spec.unblock_dispatch.empty() || spec.unique_key)
      throw InvalidArgument(
          "a task dispatched at unblock takes no dependencies, unique key or unblock tasks");
    spec.validate();
  }
}

Json TaskSpec::to_json() const {
  return {{"kind", to_string(kind)},
          {"name", name},
          {"payload", payload},
          {"priority", priority},
          {"not_before", optional_json(not_before)},
          {"exclusive_resources", exclusive_resources},
          {"shared_resources", shared_resources},
          {"task_group", optional_json(task_group)},
          {"depends_on", depends_on},
          {"allow_failure", allow_failure},
          {"requirements", requirements.to_json()},
          {"retry", retry.to_json()},
          {"timeout", optional_json(timeout_seconds)},
          {"unique_key", optional_json(unique_key)},
          {"history", history},
          {"declined_by", declined_by}};
}

TaskSpec TaskSpec::from_json(const Json& j) {
  if (!j.is_object()) throw InvalidArgument("a task spec must be an object");
  TaskSpec s;
  s.kind = parse_task_kind(field<std::string>(j, "kind", "function"));
  s.name = field<std::string>(j, "name", "");
  if (auto p = j.find("payload"); p != j.end()) s.payload = *p;
  s.priority = field<int>(j, "priority", 0);
  s.not_before = optional_field<Micros>(j, "not_before");
  s.exclusive_resources = field<std::vector<std::string>>(j, "exclusive_resources", {});
  s.shared_resources = field<std::vector<std::string>>(j, "shared_resources", {});
  s.task_group = optional_field<GroupId>(j, "task_group");
  s.depends_on = field<std::vector<TaskId>>(j, "depends_on", {});
  s.allow_failure = field<bool>(j, "allow_failure", false);
  s.requirements = Requirements::from_json(j.value("requirements", Json()));
  s.retry = RetryPolicy::from_json(j.value("retry", Json()));
  s.timeout_seconds = optional_field<double>(j, "timeout");
  s.unique_key = optional_field<std::string>(j, "unique_key");
  return s;
}

Json Task::to_json() const {
  return {{"id", id},
          {"kind", to_string(kind)},
          {"name", name},
          {"payload", payload},
          {"state", to_string(state)},
          {"priority", priority},
          {"created_at", created_at},
          {"not_before", optional_json(not_before)},
          {"started_at", optional_json(started_at)},
          {"finished_at", optional_json(finished_at)},
          {"exclusive_resources", exclusive_resources},
          {"shared_resources", shared_resources},
          {"task_group", optional_json(task_group)},
          {"depends_on", depends_on},
          {"allow_failure", allow_failure},
          {"requirements", requirements.to_json()},
          {"retry", retry.to_json()},
          {"timeout", optional_json(timeout_seconds)},
          {"unique_key", optional_json(unique_key)},
          {"attempt", attempt},
          {"fence", fence},
          {"worker_id", optional_json(worker_id)},
          {"worker", optional_json(worker_name)},
          {"result", result},
          {"error", error},
          {"reason", optional_json(reason)},
          {"history", history}};
}

}  // namespace taskengine
