#include "store/sql/sql_store.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "scheduler/dependencies.hpp"
#include "scheduler/matching.hpp"
#include "scheduler/retry.hpp"
#include "scheduler/retval.hpp"
#include "store/schema.hpp"
#include "store/sql/ending_rows.hpp"
#include "store/sql/resource_queue.hpp"
#include "store/sql/task_rows.hpp"
#include "store/wakeup_topics.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::sql {
namespace {

const std::string kTaskColumns = task_columns();

// The part of a task that ending its attempt reads (see complete()), from
// "id, state, fence, attempt, resources, retry_policy, history". Tasks
// without resources store exactly kNoResources: that common case is not
// parsed.
Task attempt_from_row(const Row& row) {
  static const std::string kNoResources =
      Json{{"exclusive", Json::array()}, {"shared", Json::array()}}.dump();
  Task t;
  t.id = row.integer(0);
  t.state = parse_task_state(row.text(1));
  t.fence = row.integer(2);
  t.attempt = static_cast<int>(row.integer(3));
  auto resources = row.optional_text(4);
  if (resources && *resources != kNoResources) {
    Json parsed = parse_json(resources);
    t.exclusive_resources = parsed.value("exclusive", std::vector<std::string>{});
    t.shared_resources = parsed.value("shared", std::vector<std::string>{});
  }
  t.retry = RetryPolicy::from_json(parse_json(row.optional_text(5)));
  auto history = row.optional_text(6);
  if (history && *history != "[]") t.history = parse_json(history);
  if (!t.history.is_array()) t.history = Json::array();
  return t;
}

WorkerInfo worker_from_row(const Row& row) {
  WorkerInfo w;
  w.id = row.integer(0);
  w.name = row.text(1);
  w.worker_type = row.text(2);
  w.hostname = row.text(3);
  w.pid = row.integer(4);
  w.metadata = parse_json(row.optional_text(5));
  w.started_at = row.integer(6);
  w.last_heartbeat = row.integer(7);
  w.online = row.boolean(8);
  return w;
}

std::vector<TaskId> task_ids(const std::vector<Task>& tasks) {
  std::vector<TaskId> ids;
  ids.reserve(tasks.size());
  for (const auto& task : tasks) ids.push_back(task.id);
  return ids;
}

// What the resource queue needs of an ending task: its row's lists.
ResourceQueue::Wants wants_of(const Task& task) {
  return {task.id, task.priority, task.exclusive_resources, task.shared_resources, false};
}

}  // namespace

SqlStore::SqlStore(std::unique_ptr<Session> session)
    : session_(std::move(session)), random_(std::random_device{}()) {}

std::string SqlStore::backend() const {
  return session_->dialect() == Dialect::Sqlite ? "sqlite" : "postgresql";
}

// ---------------------------------------------------------------- schema

int SqlStore::schema_version() {
  if (!session_->table_exists("taskengine_schema")) return 0;
  Rows rows = session_->query("SELECT MAX(version) FROM taskengine_schema", {});
  return rows.empty() || rows[0].is_null(0) ? 0 : static_cast<int>(rows[0].integer(0));
}

void SqlStore::install() {
  const auto& migrations = session_->dialect() == Dialect::Sqlite ? schema::sqlite_migrations()
                                                                  : schema::postgres_migrations();
  Transaction txn(*session_, true);
  // Concurrent installers (several workers starting at once) serialize
  // here; SQLite's BEGIN IMMEDIATE already does.
  if (session_->dialect() == Dialect::Postgres)
    session_->execute_script("SELECT pg_advisory_xact_lock(7346251)");
  int current = schema_version();
  if (current > schema::latest_version())
    throw SchemaError("the store's schema is version " + std::to_string(current) +
                      ", newer than this taskengine understands (" +
                      std::to_string(schema::latest_version()) + "); upgrade taskengine");
  for (const auto& migration : migrations) {
    if (migration.version <= current) continue;
    for (const auto& statement : migration.statements) session_->execute_script(statement);
    if (current == 0 && migration.version == 1)
      session_->execute("INSERT INTO taskengine_schema (version) VALUES ($1)",
                        {std::int64_t{migration.version}});
    else
      session_->execute("UPDATE taskengine_schema SET version = $1",
                        {std::int64_t{migration.version}});
  }
  txn.commit();
  schema_checked_ = true;
}

void SqlStore::uninstall() {
  Transaction txn(*session_, true);
  for (const auto& table : schema::owned_tables())
    session_->execute_script("DROP TABLE IF EXISTS " + table);
  txn.commit();
  schema_checked_ = false;
}

void SqlStore::require_schema() {
  if (schema_checked_) return;
  int version = schema_version();
  if (version == 0)
    throw SchemaError("the store at " + url() + " has no taskengine schema; run install() first");
  if (version > schema::latest_version())
    throw SchemaError("the store's schema is newer than this taskengine; upgrade taskengine");
  if (version < schema::latest_version())
    throw SchemaError("the store's schema is out of date; run install() to upgrade it");
  schema_checked_ = true;
}

// ---------------------------------------------------------------- reads

std::optional<Task> SqlStore::get_task(TaskId id) {
  require_schema();
  Rows rows =
      session_->query("SELECT " + kTaskColumns + " FROM taskengine_tasks WHERE id = $1", {id});
  if (rows.empty()) return std::nullopt;
  std::vector<Task> tasks{task_from_row(rows[0])};
  explain_waiting(tasks);
  return tasks[0];
}

void SqlStore::explain_waiting(std::vector<Task>& tasks) {
  std::optional<std::vector<WorkerInfo>> workers;  // read once, if needed
  Micros now = now_micros();
  for (auto& task : tasks) {
    if (task.state != TaskState::Waiting || task.reason) continue;
    if (task.not_before && *task.not_before > now) {
      task.reason = "not before " + format_iso8601(*task.not_before);
      continue;
    }
    Rows held = session_->query(
        "SELECT mine.resource, other.task_id, other.holder FROM taskengine_task_resources mine "
        "JOIN taskengine_task_resources other ON other.resource = mine.resource "
        "AND other.task_id <> mine.task_id AND (mine.exclusive OR other.exclusive) "
        "WHERE mine.task_id = $1 AND mine.holder = 'waiting' AND (other.holder = 'active' OR "
        "(other.holder = 'waiting' AND "
        "(other.queue_rank, other.task_id) < (mine.queue_rank, mine.task_id))) LIMIT 1",
        {task.id});
    if (!held.empty()) {
      task.reason = "waiting for resource '" + held[0].text(0) + "', " +
                    (held[0].text(2) == "active" ? "held by running task "
                                                 : "wanted first by waiting task ") +
                    held[0].text(1);
      continue;
    }
    if (!workers) workers = list_workers(false);
    std::set<WorkerId> declined;
    if (task.kind == TaskKind::TaskClass)
      for (const auto& row : session_->query(
               "SELECT worker_id FROM taskengine_task_declines WHERE task_id = $1", {task.id}))
        declined.insert(row.integer(0));
    std::string why = "no online worker";
    for (const auto& worker : *workers) {
      std::string mismatch = declined.count(worker.id) ? "was refused by " + task.name +
                                                             ".can_run_on on worker " + worker.name
                                                       : scheduler::mismatch(task, worker);
      if (mismatch.empty()) {
        why.clear();
        break;
      }
      why = "no online worker can run it: it " + mismatch;
    }
    task.reason = why.empty() ? "waiting for a free worker slot" : why;
  }
}

std::vector<Task> SqlStore::list_tasks(const TaskFilter& filter) {
  require_schema();
  if (filter.limit < 0) throw InvalidArgument("'limit' must be >= 0");
  std::string sql = "SELECT " + kTaskColumns + " FROM taskengine_tasks WHERE 1 = 1";
  Params params;
  if (filter.state) {
    params.emplace_back(std::string(to_string(*filter.state)));
    sql += " AND state = $" + std::to_string(params.size());
  }
  if (filter.task_group) {
    params.emplace_back(*filter.task_group);
    sql += " AND task_group_id = $" + std::to_string(params.size());
  }
  if (filter.worker_id) {
    params.emplace_back(*filter.worker_id);
    sql += " AND worker_id = $" + std::to_string(params.size());
  }
  params.emplace_back(std::int64_t{filter.limit});
  sql += filter.newest_first ? " ORDER BY id DESC" : " ORDER BY id";
  sql += " LIMIT $" + std::to_string(params.size());
  std::vector<Task> tasks;
  for (const auto& row : session_->query(sql, params)) tasks.push_back(task_from_row(row));
  explain_waiting(tasks);
  return tasks;
}

// ---------------------------------------------------------------- cancel

TaskState SqlStore::cancel_locked(TaskId id, const std::string& reason, Micros now,
                                  std::vector<TaskId>& finished) {
  Rows rows =
      session_->query("SELECT state, worker_name FROM taskengine_tasks WHERE id = $1", {id});
  if (rows.empty()) throw NotFound("task " + std::to_string(id) + " does not exist");
  TaskState state = parse_task_state(rows[0].text(0));
  if (state == TaskState::Blocked || state == TaskState::Waiting) {
    // Conditional: a claimer (which takes no scheduling lock) may have
    // started the task since it was read; then it is canceled as running.
    if (session_->execute(
            "UPDATE taskengine_tasks SET state = 'canceled', eligible = FALSE, finished_at = $2, "
            "reason = $3 WHERE id = $1 AND state IN ('blocked', 'waiting')",
            {id, now, reason}) == 0) {
      rows = session_->query("SELECT state, worker_name FROM taskengine_tasks WHERE id = $1", {id});
      state = parse_task_state(rows[0].text(0));
    } else {
      queue().remove(id);
      finished.push_back(id);
      return TaskState::Canceled;
    }
  }
  if (state == TaskState::Running) {
    session_->execute(
        "UPDATE taskengine_tasks SET state = 'canceling', reason = 'cancel requested' "
        "WHERE id = $1",
        {id});
    // Tell the worker running it now, not at its next poll.
    if (auto worker = rows[0].optional_text(1)) wake_.insert(worker_topic(*worker));
    return TaskState::Canceling;
  }
  return state;
}

TaskState SqlStore::cancel_task(TaskId id, const std::string& reason) {
  require_schema();
  Micros now = now_micros();
  Transaction txn(*session_, true);
  lock_scheduling();
  std::vector<TaskId> finished;
  TaskState state = cancel_locked(id, reason, now, finished);
  settle_dependents(finished, now);
  commit(txn);
  return state;
}

GroupId SqlStore::create_task_group(const std::string& description) {
  require_schema();
  Transaction txn(*session_, true);
  Rows rows = session_->query(
      "INSERT INTO taskengine_task_groups (description, created_at) VALUES ($1, $2) RETURNING id",
      {description, now_micros()});
  txn.commit();
  return rows.at(0).integer(0);
}

int SqlStore::cancel_task_group(GroupId id) {
  require_schema();
  Micros now = now_micros();
  Transaction txn(*session_, true);
  lock_scheduling();
  if (session_->query("SELECT 1 FROM taskengine_task_groups WHERE id = $1", {id}).empty())
    throw NotFound("task group " + std::to_string(id) + " does not exist");
  session_->execute("UPDATE taskengine_task_groups SET all_tasks_dispatched = TRUE WHERE id = $1",
                    {id});
  Rows rows = session_->query(
      "SELECT id FROM taskengine_tasks WHERE task_group_id = $1 AND state IN "
      "('blocked', 'waiting', 'running') ORDER BY id",
      {id});
  std::vector<TaskId> finished;
  int count = 0;
  for (const auto& row : rows) {
    TaskState state = cancel_locked(row.integer(0), "task group canceled", now, finished);
    if (state == TaskState::Canceled || state == TaskState::Canceling) ++count;
  }
  settle_dependents(finished, now);
  commit(txn);
  return count;
}

// ---------------------------------------------------------------- dependencies

std::vector<Pending> SqlStore::send_dependents_probe(const std::vector<TaskId>& ids) {
  // Most finished tasks have no dependents: the few that do are found in
  // one statement per chunk instead of one per task.
  std::vector<Pending> probes;
  for_id_chunks(ids, 500, [&](Params chunk) {
    std::string in = padded_in_list(chunk, chunk.size());
    probes.push_back(session_->send(
        "SELECT DISTINCT depends_on FROM taskengine_task_dependencies WHERE depends_on IN (" + in +
            ")",
        chunk));
  });
  return probes;
}

void SqlStore::settle_dependents(std::vector<TaskId> finished, Micros now) {
  if (finished.empty()) return;
  settle_dependents(finished, now, send_dependents_probe(finished));
}

void SqlStore::settle_dependents(std::vector<TaskId> finished, Micros now,
                                 const std::vector<Pending>& probes) {
  if (finished.empty()) return;
  if (!probes.empty() && !probes.back().ready()) session_->flush();
  {
    std::set<TaskId> candidates(finished.begin(), finished.end());
    std::vector<TaskId> with_dependents;
    for (const auto& probe : probes)
      for (const auto& row : probe.rows())
        if (candidates.count(row.integer(0))) with_dependents.push_back(row.integer(0));
    finished = std::move(with_dependents);
  }
  while (!finished.empty()) {
    TaskId done = finished.back();
    finished.pop_back();
    Rows dependents = session_->query(
        // The dependents through the reverse index: a join let SQLite's planner
        // start from every blocked task instead.
        "SELECT id, allow_failure, on_unblock FROM taskengine_tasks WHERE id IN (SELECT task_id "
        "FROM taskengine_task_dependencies WHERE depends_on = $1) AND state = 'blocked'",
        {done});
    for (const auto& dependent : dependents) {
      TaskId id = dependent.integer(0);
      bool allow_failure = dependent.boolean(1);
      std::vector<std::pair<TaskId, TaskState>> dependencies;
      for (const auto& dep :
           session_->query("SELECT t.id, t.state FROM taskengine_task_dependencies d "
                           "JOIN taskengine_tasks t ON t.id = d.depends_on WHERE d.task_id = $1",
                           {id}))
        dependencies.emplace_back(dep.integer(0), parse_task_state(dep.text(1)));
      auto verdict = scheduler::dependency_verdict(dependencies, allow_failure);
      if (verdict.state == TaskState::Blocked) continue;
      if (verdict.state == TaskState::Skipped) {
        session_->execute(
            "UPDATE taskengine_tasks SET state = 'skipped', finished_at = $2, reason = $3 "
            "WHERE id = $1",
            {id, now, *verdict.reason});
        queue().remove(id);
        finished.push_back(id);
      } else {
        session_->execute(
            "UPDATE taskengine_tasks SET state = 'waiting', reason = NULL WHERE id = $1", {id});
        queue().enqueue(id);
        // NULL for every task without on_unblock reactions: they pay nothing more.
        apply_unblock(id, dependent.optional_text(2), now);
      }
    }
  }
}

// ---------------------------------------------------------------- workers

WorkerId SqlStore::register_worker(const WorkerInfo& info) {
  require_schema();
  if (info.name.empty()) throw InvalidArgument("a worker needs a name");
  if (info.worker_type != "worker" && info.worker_type != "server" && info.worker_type != "signing")
    throw InvalidArgument("unknown worker type '" + info.worker_type + "'");
  Micros now = now_micros();
  Transaction txn(*session_, true);
  Rows rows = session_->query(
      "INSERT INTO taskengine_workers (name, worker_type, hostname, pid, metadata, started_at, "
      "last_heartbeat, online) VALUES ($1, $2, $3, $4, $5, $6, $6, TRUE) RETURNING id",
      {info.name, info.worker_type, info.hostname, info.pid, info.metadata.dump(), now});
  txn.commit();
  return rows.at(0).integer(0);
}

bool SqlStore::heartbeat(WorkerId id) {
  Transaction txn(*session_, true);
  std::int64_t changed = session_->execute(
      "UPDATE taskengine_workers SET last_heartbeat = $2 WHERE id = $1 AND online = $3",
      {id, now_micros(), std::int64_t{1}});
  txn.commit();
  return changed == 1;
}

void SqlStore::unregister_worker(WorkerId id) {
  Transaction txn(*session_, true);
  session_->execute("UPDATE taskengine_workers SET online = $2 WHERE id = $1",
                    {id, std::int64_t{0}});
  txn.commit();
}

std::vector<WorkerInfo> SqlStore::list_workers(bool include_offline) {
  require_schema();
  std::string sql =
      "SELECT id, name, worker_type, hostname, pid, metadata, started_at, last_heartbeat, online "
      "FROM taskengine_workers";
  Params params;
  if (!include_offline) {
    sql += " WHERE online = $1";
    params.emplace_back(std::int64_t{1});
  }
  sql += " ORDER BY id";
  std::vector<WorkerInfo> workers;
  for (const auto& row : session_->query(sql, params)) workers.push_back(worker_from_row(row));
  return workers;
}

void SqlStore::start_claimed(std::vector<Task>& claimed, const WorkerInfo& worker, Micros now) {
  if (claimed.empty()) return;
  // One statement per 1,000 tasks, sent ahead with the COMMIT: the rows
  // were read and locked by this transaction (FOR UPDATE on PostgreSQL,
  // SQLite's write lock), so their next attempt and fence are known here.
  for_id_chunks(task_ids(claimed), 1000, [&](Params ids) {
    Params params{now, worker.id, worker.name};
    params.insert(params.end(), ids.begin(), ids.end());
    std::string in = padded_in_list(params, ids.size());
    session_->send(
        "UPDATE taskengine_tasks SET state = 'running', eligible = FALSE, "
        "attempt = attempt + 1, fence = fence + 1, started_at = $1, worker_id = $2, "
        "worker_name = $3, reason = NULL WHERE id IN (" +
            in + ")",
        params);
  });
  // Their resources from the rows just read: one statement for the batch.
  std::vector<ResourceQueue::Wants> holding;
  for (const auto& task : claimed)
    if (has_resources(task)) holding.push_back(wants_of(task));
  queue().activate(holding);
  for (auto& task : claimed) {
    task.state = TaskState::Running;
    task.attempt += 1;
    task.fence += 1;
    task.started_at = now;
    task.worker_id = worker.id;
    task.worker_name = worker.name;
    if (!task.depends_on.empty()) resolve_retvals(task);
  }
}

void SqlStore::resolve_retvals(Task& task) {
  if (scheduler::retval_references(task.payload).empty()) return;
  task.payload = scheduler::substitute_retvals(task.payload, [this](TaskId dep) -> Json {
    // A dependency that did not complete (allow_failure) gives null.
    Rows rows = session_->query(
        "SELECT result FROM taskengine_tasks WHERE id = $1 AND state = 'completed'", {dep});
    return rows.empty() ? Json(nullptr) : parse_json(rows[0].optional_text(0));
  });
}

ResourceQueue SqlStore::queue() { return ResourceQueue(*session_, became_ready_); }

void SqlStore::commit(Transaction& txn) {
  for (const auto& type : became_ready_) wake_.insert(type_topic(type));
  for (const auto& topic : wake_) session_->notify(topic);
  became_ready_.clear();
  wake_.clear();
  txn.commit();
}

std::unique_ptr<WakeupListener> SqlStore::listen(const WorkerInfo& worker) {
  return session_->listen({type_topic(worker.worker_type), worker_topic(worker.name)});
}

void SqlStore::lock_scheduling() {
  // Transactions that change which tasks are eligible or end attempts
  // (dispatch, completion, cancel, recovery, requeue) take turns, so each
  // sees the others' decisions; claims do not take it (they only take
  // eligible rows, with SKIP LOCKED). SQLite's BEGIN IMMEDIATE already
  // serializes every writer.
  // Sent ahead: the server takes the lock before the statements behind it.
  if (session_->dialect() == Dialect::Postgres)
    session_->send("SELECT pg_advisory_xact_lock(7346252)");
}

// ---------------------------------------------------------------- completion

bool SqlStore::fail_or_retry(const Task& task, const Json& error, const std::string& reason,
                             Micros now, std::vector<ResourceQueue::Wants>& released) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  auto delay = scheduler::retry_delay(task.retry, task.attempt, unit(random_));
  if (delay) {
    Micros not_before = now + static_cast<Micros>(*delay * 1e6);
    session_->send(
        "UPDATE taskengine_tasks SET state = 'waiting', not_before = $2, error = $3, "
        "reason = $4, worker_id = NULL WHERE id = $1",
        {task.id, not_before, json_value(error),
         reason + "; attempt " + std::to_string(task.attempt) + " of " +
             std::to_string(task.retry.max_attempts) + ", retrying"});
    queue().enqueue(task.id);
    return false;
  }
  session_->send(
      "UPDATE taskengine_tasks SET state = 'failed', finished_at = $2, error = $3, reason = $4 "
      "WHERE id = $1",
      {task.id, now, json_value(error), reason});
  if (has_resources(task)) released.push_back(wants_of(task));
  return true;
}

std::vector<bool> SqlStore::complete(const std::vector<Completion>& completions) {
  std::vector<bool> applied;
  applied.reserve(completions.size());
  if (completions.empty()) return applied;
  Micros now = now_micros();
  Transaction txn(*session_, true);
  // Completions take the scheduling lock like cancel and recovery do, before
  // reading: a cancel of the same task either committed first (and the task
  // ends canceled) or waits for this one (and leaves the finished task
  // alone). Without it a cancel could read "running", then overwrite the
  // completed state with "canceling" that nobody would ever end.
  lock_scheduling();
  std::map<TaskId, Task> current;
  std::vector<Pending> probes;
  {
    std::set<TaskId> ids;
    for (const auto& c : completions) ids.insert(c.task_id);
    std::vector<TaskId> all(ids.begin(), ids.end());
    // Which of them have dependents, in the same round trip as the attempts.
    probes = send_dependents_probe(all);
    // Only what ending an attempt needs: a whole task row is seven JSON
    // documents to parse, per task, on the hottest path of the worker.
    for_id_chunks(all, 1000, [&](Params params) {
      std::string in = padded_in_list(params, params.size());
      // By id alone: with the state in the query PostgreSQL also reads the
      // active_worker index, which holds an entry for every attempt that
      // ran since the last VACUUM.
      for (const auto& row :
           session_->query("SELECT id, state, fence, attempt, resources, retry_policy, history "
                           "FROM taskengine_tasks WHERE id IN (" +
                               in + ")",
                           params)) {
        Task task = attempt_from_row(row);
        if (task.state == TaskState::Running || task.state == TaskState::Canceling)
          current.emplace(task.id, std::move(task));
      }
    });
  }
  std::vector<std::optional<Task>> tasks;
  for (const auto& c : completions) {
    auto it = current.find(c.task_id);
    if (it == current.end() || it->second.fence != c.fence)
      tasks.emplace_back();  // a newer attempt owns the task, or it ended
    else
      tasks.emplace_back(it->second);
  }
  std::vector<TaskId> finished;
  std::vector<ResourceQueue::Wants> released;  // their resources, freed together below
  std::set<TaskId> seen;  // the same attempt twice in one batch: only the first counts
  EndingRows ending(*session_, now);
  for (std::size_t i = 0; i < completions.size(); ++i) {
    const Completion& c = completions[i];
    bool apply = tasks[i].has_value() && seen.insert(c.task_id).second;
    applied.push_back(apply);
    if (!apply) continue;
    const Task& task = *tasks[i];
    if (c.history.is_array() && !c.history.empty()) {
      Json history = task.history;
      for (const auto& entry : c.history) history.push_back(entry);
      session_->send("UPDATE taskengine_tasks SET history = $2 WHERE id = $1",
                     {task.id, history.dump()});
    }
    if (c.state == TaskState::Waiting && task.state == TaskState::Running) {
      // Handed back unstarted, or interrupted by a shutdown: as requeue(),
      // in this batch's transaction. (A task asked to cancel meanwhile
      // ends canceled below.)
      session_->send(
          "UPDATE taskengine_tasks SET state = 'waiting', attempt = attempt - 1, "
          "worker_id = NULL, started_at = NULL, reason = $2 WHERE id = $1",
          {task.id, optional_value(c.reason)});
      queue().enqueue(task.id);
      continue;
    }
    if (c.state == TaskState::Failed && task.state == TaskState::Running) {
      if (fail_or_retry(task, c.error, c.reason.value_or("failed"), now, released))
        finished.push_back(task.id);
      continue;
    }
    // An attempt asked to cancel ends canceled, even if it finished before
    // the kill reached it: cancel means "this never counts" (invariant 6).
    TaskState final_state = c.state;
    if (task.state == TaskState::Canceling) final_state = TaskState::Canceled;
    std::optional<std::string> reason = c.reason;
    if (final_state == TaskState::Canceled && !reason) reason = "canceled";
    static const Json kNoResult;  // a canceled attempt stores none
    ending.add(task.id, final_state, final_state == TaskState::Canceled ? kNoResult : c.result,
               c.error, reason);
    if (has_resources(task)) released.push_back(wants_of(task));
    finished.push_back(task.id);
  }
  // Before the queue and the dependents read what ended.
  ending.send();
  queue().release(released);
  settle_dependents(finished, now, probes);
  commit(txn);
  return applied;
}

std::vector<std::pair<TaskId, std::int64_t>> SqlStore::canceling_tasks(WorkerId worker) {
  std::vector<std::pair<TaskId, std::int64_t>> out;
  for (const auto& row : session_->query(
           "SELECT id, fence FROM taskengine_tasks WHERE worker_id = $1 AND state = 'canceling'",
           {worker}))
    out.emplace_back(row.integer(0), row.integer(1));
  return out;
}

int SqlStore::recover_lost_workers(std::chrono::milliseconds timeout) {
  Micros now = now_micros();
  Micros cutoff = now - static_cast<Micros>(timeout.count()) * 1000;
  Transaction txn(*session_, true);
  // Silent workers go offline; then every active task of an offline worker
  // is recovered, which also covers a worker that unregistered or was
  // declared lost with tasks still marked running (invariant 4).
  std::int64_t silenced = session_->execute(
      "UPDATE taskengine_workers SET online = FALSE WHERE online AND last_heartbeat < $1",
      {cutoff});
  Rows orphans = session_->query(
      "SELECT t.id, w.name FROM taskengine_tasks t JOIN taskengine_workers w "
      "ON w.id = t.worker_id WHERE t.state IN ('running', 'canceling') AND NOT w.online "
      "ORDER BY t.id",
      {});
  if (silenced == 0 && orphans.empty()) {
    txn.commit();
    return 0;
  }
  lock_scheduling();
  int recovered = 0;
  std::vector<TaskId> finished;
  std::vector<ResourceQueue::Wants> released;
  for (const auto& orphan : orphans) {
    Rows rows = session_->query("SELECT " + kTaskColumns +
                                    " FROM taskengine_tasks WHERE id = $1 AND "
                                    "state IN ('running', 'canceling')",
                                {orphan.integer(0)});
    if (rows.empty()) continue;
    Task task = task_from_row(rows[0]);
    ++recovered;
    std::string reason = "worker lost (" + orphan.text(1) + " stopped heartbeating)";
    if (task.state == TaskState::Canceling) {
      session_->execute(
          "UPDATE taskengine_tasks SET state = 'canceled', finished_at = $2, reason = $3 "
          "WHERE id = $1",
          {task.id, now, reason});
      if (has_resources(task)) released.push_back(wants_of(task));
      finished.push_back(task.id);
      continue;
    }
    Json error = {{"type", "WorkerLost"}, {"message", reason}, {"traceback", Json::array()}};
    if (fail_or_retry(task, error, "worker lost", now, released)) finished.push_back(task.id);
  }
  queue().release(released);
  settle_dependents(finished, now);
  commit(txn);
  return recovered;
}

bool SqlStore::requeue(TaskId id, std::int64_t fence, const std::string& reason) {
  Transaction txn(*session_, true);
  lock_scheduling();
  // attempt - 1: a task handed back by a stopping worker did not fail.
  std::int64_t changed = session_->execute(
      "UPDATE taskengine_tasks SET state = 'waiting', attempt = attempt - 1, worker_id = NULL, "
      "started_at = NULL, reason = $3 WHERE id = $1 AND fence = $2 AND state = 'running'",
      {id, fence, reason});
  if (changed) queue().enqueue(id);
  commit(txn);
  return changed == 1;
}

bool SqlStore::decline(TaskId id, std::int64_t fence, WorkerId worker, const std::string& reason) {
  Transaction txn(*session_, true);
  lock_scheduling();
  // As requeue: the attempt did not run, so it does not count.
  std::int64_t changed = session_->execute(
      "UPDATE taskengine_tasks SET state = 'waiting', attempt = attempt - 1, worker_id = NULL, "
      "started_at = NULL, reason = NULL WHERE id = $1 AND fence = $2 AND state = 'running'",
      {id, fence});
  if (changed) {
    session_->execute(
        "INSERT INTO taskengine_task_declines (task_id, worker_id, reason) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        {id, worker, reason});
    queue().enqueue(id);
  }
  commit(txn);
  return changed == 1;
}

}  // namespace taskengine::sql
