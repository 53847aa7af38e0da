// What running tasks produce: log records, progress and artifacts. Kept out
// of sql_store.cpp, which is about the scheduling model.
#include <algorithm>

#include "store/sql/sql_store.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::sql {
namespace {

std::string hex_encode(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0x0F]);
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  throw StoreError("artifact content is not valid hex");
}

std::string hex_decode(const std::string& hex) {
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(hex_digit(hex[i]) << 4 | hex_digit(hex[i + 1])));
  return out;
}

std::string placeholder(Params& params, Value value) {
  params.push_back(std::move(value));
  std::string name = "$";
  name += std::to_string(params.size());
  return name;
}

Json parse_extra(const std::optional<std::string>& text) {
  if (!text || text->empty()) return nullptr;
  Json extra = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  return extra.is_discarded() ? Json(nullptr) : extra;
}

}  // namespace

void SqlStore::require_task(TaskId id) {
  if (session_->query("SELECT 1 FROM taskengine_tasks WHERE id = $1", {id}).empty())
    throw NotFound("task " + std::to_string(id) + " does not exist");
}

std::vector<bool> SqlStore::write_task_output(const std::vector<TaskOutput>& outputs) {
  for (const auto& output : outputs) output.validate();
  require_schema();
  std::vector<bool> applied(outputs.size(), false);
  if (outputs.empty()) return applied;
  // One stored_at per transaction: the records of one write share it.
  Micros now = now_micros();
  // Row locks in task order, so two writers never wait on each other in a cycle.
  std::vector<std::size_t> order(outputs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return outputs[a].task_id < outputs[b].task_id;
  });
  Transaction txn(*session_, true);
  for (std::size_t i : order) applied[i] = write_one_output(outputs[i], now);
  txn.commit();
  return applied;
}

bool SqlStore::write_one_output(const TaskOutput& output, Micros now) {
  // FOR SHARE holds the attempt: a concurrent completion or recovery waits
  // until these rows are in (SQLite's write lock already serializes).
  std::string lock = session_->dialect() == Dialect::Postgres ? " FOR SHARE" : "";
  Rows rows = session_->query("SELECT fence, state FROM taskengine_tasks WHERE id = $1" + lock,
                              {output.task_id});
  if (output.fence) {
    if (rows.empty() || rows[0].integer(0) != *output.fence) return false;
    TaskState state = parse_task_state(rows[0].text(1));
    if (state != TaskState::Running && state != TaskState::Canceling) return false;
  } else if (rows.empty()) {
    throw NotFound("task " + std::to_string(output.task_id) + " does not exist");
  }

  bool postgres = session_->dialect() == Dialect::Postgres;
  if (!output.records.empty()) {
    // One statement for the whole batch: the records travel as one JSON
    // array and are inserted in array order, so ids follow the task's order.
    Json batch = Json::array();
    for (const auto& r : output.records)
      batch.push_back({{"created_at", r.created_at ? r.created_at : now},
                       {"level", r.level},
                       {"logger", r.logger},
                       {"message", r.message},
                       {"extra", r.extra}});
    if (postgres)
      session_->execute(
          "INSERT INTO taskengine_log_records (task_id, created_at, stored_at, level, logger, "
          "message, extra) SELECT $1, (e->>'created_at')::bigint, $2, (e->>'level')::int, "
          "e->>'logger', e->>'message', NULLIF(e->'extra', 'null'::jsonb) FROM "
          "jsonb_array_elements($3::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n",
          {output.task_id, now, batch.dump()});
    else
      session_->execute(
          "INSERT INTO taskengine_log_records (task_id, created_at, stored_at, level, logger, "
          "message, extra) SELECT $1, json_extract(value, '$.created_at'), $2, "
          "json_extract(value, '$.level'), json_extract(value, '$.logger'), "
          "json_extract(value, '$.message'), json_extract(value, '$.extra') FROM json_each($3) "
          "ORDER BY key",
          {output.task_id, now, batch.dump()});
  }
  for (const auto& p : output.progress)
    session_->execute(
        "INSERT INTO taskengine_progress (task_id, group_name, current, total, status_line, "
        "updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (task_id, group_name) DO UPDATE "
        "SET current = excluded.current, total = excluded.total, "
        "status_line = excluded.status_line, updated_at = excluded.updated_at",
        {output.task_id, p.group_name, p.current, p.total, p.status_line, now});
  for (const auto& a : output.artifacts) {
    session_->execute("DELETE FROM taskengine_artifacts WHERE task_id = $1 AND name = $2",
                      {output.task_id, a.info.name});
    std::string content = postgres ? "decode($6, 'hex')" : "CAST($6 AS BLOB)";
    session_->execute(
        "INSERT INTO taskengine_artifacts (task_id, name, path, size, sha256, content, "
        "created_at) VALUES ($1, $2, $3, $4, $5, " +
            content + ", $7)",
        {output.task_id, a.info.name, a.info.name, static_cast<std::int64_t>(a.content.size()),
         a.info.sha256, postgres ? hex_encode(a.content) : a.content, now});
  }
  return true;
}

std::vector<LogRecord> SqlStore::list_log_records(const LogFilter& filter) {
  if (filter.limit < 0) throw InvalidArgument("'limit' must be >= 0");
  require_schema();
  bool postgres = session_->dialect() == Dialect::Postgres;
  Params params;
  std::string sql =
      "SELECT id, task_id, created_at, stored_at, level, logger, message, extra FROM "
      "taskengine_log_records WHERE 1 = 1";
  if (!filter.task_ids.empty()) {
    std::string ids = placeholder(params, Json(filter.task_ids).dump());
    sql += postgres
               ? " AND task_id IN (SELECT jsonb_array_elements_text(" + ids + "::jsonb)::bigint)"
               : " AND task_id IN (SELECT value FROM json_each(" + ids + "))";
  }
  if (filter.job_id)
    sql += " AND task_id IN (SELECT id FROM taskengine_tasks WHERE job_id = " +
           placeholder(params, *filter.job_id) + ")";
  if (filter.min_date) sql += " AND created_at >= " + placeholder(params, *filter.min_date);
  if (filter.max_date) sql += " AND created_at < " + placeholder(params, *filter.max_date);
  if (filter.min_level)
    sql += " AND level >= " + placeholder(params, std::int64_t{*filter.min_level});
  if (filter.after_id) sql += " AND id > " + placeholder(params, *filter.after_id);
  sql += " ORDER BY id LIMIT " + placeholder(params, std::int64_t{filter.limit});

  std::vector<LogRecord> records;
  for (const auto& row : session_->query(sql, params)) {
    LogRecord r;
    r.id = row.integer(0);
    r.task_id = row.integer(1);
    r.created_at = row.integer(2);
    r.stored_at = row.integer(3);
    r.level = static_cast<int>(row.integer(4));
    r.logger = row.text(5);
    r.message = row.text(6);
    r.extra = parse_extra(row.optional_text(7));
    records.push_back(std::move(r));
  }
  return records;
}

std::int64_t SqlStore::prune_log_records(const LogPruneFilter& filter) {
  require_schema();
  Params params;
  std::string sql = "DELETE FROM taskengine_log_records WHERE 1 = 1";
  if (filter.task_id) sql += " AND task_id = " + placeholder(params, *filter.task_id);
  if (filter.job_id)
    sql += " AND task_id IN (SELECT id FROM taskengine_tasks WHERE job_id = " +
           placeholder(params, *filter.job_id) + ")";
  if (filter.older_than) sql += " AND created_at < " + placeholder(params, *filter.older_than);
  if (filter.max_level)
    sql += " AND level <= " + placeholder(params, std::int64_t{*filter.max_level});
  Transaction txn(*session_, true);
  std::int64_t deleted = session_->execute(sql, params);
  txn.commit();
  return deleted;
}

std::vector<Progress> SqlStore::get_progress(TaskId id) {
  require_schema();
  require_task(id);
  std::vector<Progress> out;
  for (const auto& row : session_->query(
           "SELECT group_name, current, total, status_line, updated_at FROM taskengine_progress "
           "WHERE task_id = $1 ORDER BY group_name",
           {id})) {
    Progress p;
    p.group_name = row.text(0);
    p.current = row.integer(1);
    p.total = row.optional_integer(2).value_or(0);
    p.status_line = row.text(3);
    p.updated_at = row.integer(4);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<ArtifactInfo> SqlStore::list_artifacts(TaskId id) {
  require_schema();
  require_task(id);
  std::vector<ArtifactInfo> out;
  for (const auto& row : session_->query(
           "SELECT id, task_id, name, size, sha256, created_at FROM taskengine_artifacts "
           "WHERE task_id = $1 ORDER BY name",
           {id})) {
    ArtifactInfo a;
    a.id = row.integer(0);
    a.task_id = row.integer(1);
    a.name = row.text(2);
    a.size = row.integer(3);
    a.sha256 = row.text(4);
    a.created_at = row.integer(5);
    out.push_back(std::move(a));
  }
  return out;
}

Artifact SqlStore::read_artifact(TaskId id, const std::string& name) {
  require_schema();
  require_task(id);
  bool postgres = session_->dialect() == Dialect::Postgres;
  Rows rows = session_->query(std::string("SELECT id, task_id, name, size, sha256, created_at, ") +
                                  (postgres ? "encode(content, 'hex')" : "content") +
                                  " FROM taskengine_artifacts WHERE task_id = $1 AND name = $2",
                              {id, name});
  if (rows.empty())
    throw NotFound("task " + std::to_string(id) + " has no artifact named '" + name + "'");
  const Row& row = rows[0];
  Artifact a;
  a.info.id = row.integer(0);
  a.info.task_id = row.integer(1);
  a.info.name = row.text(2);
  a.info.size = row.integer(3);
  a.info.sha256 = row.text(4);
  a.info.created_at = row.integer(5);
  std::string content = row.is_null(6) ? std::string() : row.text(6);
  a.content = postgres ? hex_decode(content) : std::move(content);
  return a;
}

}  // namespace taskengine::sql
