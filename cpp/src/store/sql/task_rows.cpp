#include "store/sql/task_rows.hpp"

#include <array>

namespace taskengine::sql {
namespace {

constexpr std::array<const char*, 26> kTaskColumns = {
    "id",           "kind",          "name",       "payload",         "state",
    "priority",     "created_at",    "not_before", "started_at",      "finished_at",
    "resources",    "task_group_id", "depends_on", "allow_failure",   "requirements",
    "retry_policy", "attempt",       "fence",      "timeout_seconds", "unique_key",
    "worker_id",    "worker_name",   "result",     "error",           "reason",
    "history"};

}  // namespace

std::string task_columns(const std::string& prefix) {
  std::string out;
  for (const char* column : kTaskColumns) {
    if (!out.empty()) out += ", ";
    out += prefix;
    out += column;
  }
  return out;
}

bool has_resources(const Task& task) {
  return !task.exclusive_resources.empty() || !task.shared_resources.empty();
}

bool is_plain(const Task& task) {
  const Requirements& req = task.requirements;
  return task.depends_on.empty() && !req.architecture && !req.task_version &&
         (req.versions.is_null() || req.versions.empty());
}

Json parse_json(const std::optional<std::string>& text) {
  if (!text || text->empty()) return nullptr;
  return Json::parse(*text);
}

Value json_value(const Json& j) {
  if (j.is_null()) return std::monostate{};
  return j.dump();
}

Task task_from_row(const Row& row) {
  Task t;
  t.id = row.integer(0);
  t.kind = parse_task_kind(row.text(1));
  t.name = row.text(2);
  t.payload = parse_json(row.optional_text(3));
  t.state = parse_task_state(row.text(4));
  t.priority = static_cast<int>(row.integer(5));
  t.created_at = row.integer(6);
  t.not_before = row.optional_integer(7);
  t.started_at = row.optional_integer(8);
  t.finished_at = row.optional_integer(9);
  Json resources = parse_json(row.optional_text(10));
  t.exclusive_resources = resources.value("exclusive", std::vector<std::string>{});
  t.shared_resources = resources.value("shared", std::vector<std::string>{});
  t.task_group = row.optional_integer(11);
  t.depends_on = parse_json(row.optional_text(12)).get<std::vector<TaskId>>();
  t.allow_failure = row.boolean(13);
  t.requirements = Requirements::from_json(parse_json(row.optional_text(14)));
  t.retry = RetryPolicy::from_json(parse_json(row.optional_text(15)));
  t.attempt = static_cast<int>(row.integer(16));
  t.fence = row.integer(17);
  t.timeout_seconds = row.optional_real(18);
  t.unique_key = row.optional_text(19);
  t.worker_id = row.optional_integer(20);
  t.worker_name = row.optional_text(21);
  t.result = parse_json(row.optional_text(22));
  t.error = parse_json(row.optional_text(23));
  t.reason = row.optional_text(24);
  t.history = parse_json(row.optional_text(25));
  if (!t.history.is_array()) t.history = Json::array();
  return t;
}

}  // namespace taskengine::sql
