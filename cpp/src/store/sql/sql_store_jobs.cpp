// Jobs and builds (jobcontrol's vocabulary) over the task model: a build is
// a function task whose job_id names its job; build id == task id.
#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "store/sql/sql_store.hpp"
#include "store/sql/task_rows.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::sql {
namespace {

const std::string kJobColumns =
    "id, function, args, kwargs, title, notes, dependencies, updated_at";
const std::string kUnfinished = "('blocked', 'waiting', 'running', 'canceling')";
const std::string kFinished = "('completed', 'failed', 'skipped', 'canceled')";

Job job_from_row(const Row& row) {
  Job job;
  job.definition.id = row.text(0);
  job.definition.function = row.text(1);
  job.definition.args = parse_json(row.optional_text(2));
  job.definition.kwargs = parse_json(row.optional_text(3));
  job.definition.title = row.text(4);
  job.definition.notes = row.text(5);
  job.definition.dependencies = parse_json(row.optional_text(6)).get<std::vector<std::string>>();
  job.updated_at = row.integer(7);
  return job;
}

// A job's arguments with each {"$retval": "<job id>"} turned into the
// engine's {"$retval": <build id>} of that dependency's build.
Json bind_retvals(const Json& value, const std::map<std::string, TaskId>& builds) {
  if (value.is_object() && value.size() == 1 && value.contains("$retval") &&
      value["$retval"].is_string())
    return {{"$retval", builds.at(value["$retval"].get<std::string>())}};
  if (value.is_array()) {
    Json out = Json::array();
    for (const auto& item : value) out.push_back(bind_retvals(item, builds));
    return out;
  }
  if (value.is_object()) {
    Json out = Json::object();
    for (const auto& [key, item] : value.items()) out[key] = bind_retvals(item, builds);
    return out;
  }
  return value;
}

}  // namespace

// ---------------------------------------------------------------- jobs

void SqlStore::remove_job(const std::string& id) {
  Rows busy =
      session_->query("SELECT id, state FROM taskengine_tasks WHERE job_id = $1 AND state IN " +
                          kUnfinished + " ORDER BY id LIMIT 1",
                      {id});
  if (!busy.empty())
    throw InvalidArgument("job '" + id + "' is no longer in the job set, but its build " +
                          std::to_string(busy[0].integer(0)) + " is still " + busy[0].text(1) +
                          "; cancel it or let it finish first");
  Rows needed = session_->query(
      "SELECT t.id, b.id FROM taskengine_task_dependencies d "
      "JOIN taskengine_tasks b ON b.id = d.depends_on "
      "JOIN taskengine_tasks t ON t.id = d.task_id "
      "WHERE b.job_id = $1 AND t.state IN " +
          kUnfinished + " LIMIT 1",
      {id});
  if (!needed.empty())
    throw InvalidArgument("job '" + id + "' is no longer in the job set, but unfinished task " +
                          std::to_string(needed[0].integer(0)) + " depends on its build " +
                          std::to_string(needed[0].integer(1)));
  session_->execute("DELETE FROM taskengine_tasks WHERE job_id = $1", {id});
  session_->execute("DELETE FROM taskengine_jobs WHERE id = $1", {id});
}

JobsLoaded SqlStore::load_jobs(const std::vector<JobDefinition>& jobs) {
  validate_job_set(jobs);
  require_schema();
  Micros now = now_micros();
  Transaction txn(*session_, true);
  lock_scheduling();  // removed jobs take their builds with them
  std::map<std::string, Json> stored;
  for (const auto& row : session_->query("SELECT " + kJobColumns + " FROM taskengine_jobs", {})) {
    Job job = job_from_row(row);
    stored[job.definition.id] = job.definition.to_json();
  }
  JobsLoaded loaded;
  std::set<std::string> wanted;
  for (const auto& job : jobs) wanted.insert(job.id);
  for (const auto& [id, definition] : stored) {
    if (wanted.count(id)) continue;
    remove_job(id);
    loaded.removed.push_back(id);
  }
  for (const auto& job : jobs) {
    Json definition = job.to_json();
    Params params{job.id,
                  job.function,
                  job.args.dump(),
                  job.kwargs.dump(),
                  job.title,
                  job.notes,
                  Json(job.dependencies).dump(),
                  definition.dump(),
                  now};
    auto known = stored.find(job.id);
    if (known == stored.end()) {
      session_->execute(
          "INSERT INTO taskengine_jobs (id, function, args, kwargs, title, notes, dependencies, "
          "config, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
          params);
      loaded.created.push_back(job.id);
    } else if (known->second != definition) {
      session_->execute(
          "UPDATE taskengine_jobs SET function = $2, args = $3, kwargs = $4, title = $5, "
          "notes = $6, dependencies = $7, config = $8, updated_at = $9 WHERE id = $1",
          params);
      loaded.updated.push_back(job.id);
    } else {
      loaded.unchanged.push_back(job.id);
    }
  }
  commit(txn);
  return loaded;
}

std::optional<Job> SqlStore::get_job(const std::string& id) {
  require_schema();
  Rows rows =
      session_->query("SELECT " + kJobColumns + " FROM taskengine_jobs WHERE id = $1", {id});
  if (rows.empty()) return std::nullopt;
  return job_from_row(rows[0]);
}

std::vector<Job> SqlStore::list_jobs() {
  require_schema();
  std::vector<Job> jobs;
  for (const auto& row :
       session_->query("SELECT " + kJobColumns + " FROM taskengine_jobs ORDER BY id", {}))
    jobs.push_back(job_from_row(row));
  return jobs;
}

// ---------------------------------------------------------------- builds

TaskId SqlStore::create_build(const std::string& job_id, const BuildConfig& config) {
  require_schema();
  Micros now = now_micros();
  Transaction txn(*session_, true);
  lock_scheduling();  // a concurrent load_jobs cannot remove a job being built
  std::map<std::string, JobDefinition> jobs;
  for (const auto& row : session_->query("SELECT " + kJobColumns + " FROM taskengine_jobs", {})) {
    Job job = job_from_row(row);
    jobs[job.definition.id] = std::move(job.definition);
  }
  if (!jobs.count(job_id)) throw NotFound("job '" + job_id + "' does not exist");

  // The jobs this build needs, direct or not: only those may be pinned.
  std::set<std::string> needed;
  std::function<void(const std::string&)> collect = [&](const std::string& id) {
    for (const auto& dep : jobs.at(id).dependencies)
      if (needed.insert(dep).second) collect(dep);
  };
  collect(job_id);
  for (const auto& [dep, pin] : config.dependency_builds) {
    if (!needed.count(dep))
      throw InvalidArgument("dependency_builds names job '" + dep + "', which is not a " +
                            "dependency of job '" + job_id + "'");
    if (!pin) continue;
    Rows rows = session_->query("SELECT job_id, state FROM taskengine_tasks WHERE id = $1", {*pin});
    if (rows.empty() || rows[0].optional_text(0) != dep)
      throw InvalidArgument("dependency_builds pins job '" + dep + "' to build " +
                            std::to_string(*pin) + ", which is not a build of that job");
    if (rows[0].text(1) != "completed")
      throw InvalidArgument("dependency_builds pins job '" + dep + "' to build " +
                            std::to_string(*pin) + ", which is " + rows[0].text(1) +
                            ", not completed");
  }

  // Dependencies first, each job built once even when several need it.
  std::map<std::string, TaskId> built;
  std::function<TaskId(const std::string&)> build = [&](const std::string& id) -> TaskId {
    if (auto it = built.find(id); it != built.end()) return it->second;
    if (auto pin = config.dependency_builds.find(id);
        id != job_id && pin != config.dependency_builds.end() && pin->second)
      return built[id] = *pin->second;
    const JobDefinition& job = jobs.at(id);
    std::map<std::string, TaskId> dependency_builds;
    TaskSpec spec;
    spec.kind = TaskKind::Function;
    spec.name = job.function;
    for (const auto& dep : job.dependencies) {
      TaskId dep_build = build(dep);
      dependency_builds[dep] = dep_build;
      if (std::find(spec.depends_on.begin(), spec.depends_on.end(), dep_build) ==
          spec.depends_on.end())
        spec.depends_on.push_back(dep_build);
    }
    spec.payload = {{"function", job.function},
                    {"args", bind_retvals(job.args, dependency_builds)},
                    {"kwargs", bind_retvals(job.kwargs, dependency_builds)}};
    spec.validate();
    std::set<GroupId> no_groups;  // a build belongs to none
    TaskId task = insert_task(spec, now, no_groups);
    Json recorded = {{"job", job.to_json()}, {"dependency_builds", dependency_builds}};
    session_->execute("UPDATE taskengine_tasks SET job_id = $2, build_config = $3 WHERE id = $1",
                      {task, id, recorded.dump()});
    return built[id] = task;
  };
  TaskId id = build(job_id);
  commit(txn);
  return id;
}

std::optional<Build> SqlStore::get_build(TaskId id) {
  require_schema();
  Rows rows = session_->query(
      "SELECT job_id, build_config FROM taskengine_tasks WHERE id = $1 AND job_id IS NOT NULL",
      {id});
  if (rows.empty()) return std::nullopt;
  std::optional<Task> task = get_task(id);
  if (!task) return std::nullopt;
  Json config = parse_json(rows[0].optional_text(1));
  return Build{std::move(*task), rows[0].text(0), config.is_null() ? Json::object() : config};
}

void SqlStore::delete_build(TaskId id) {
  require_schema();
  Transaction txn(*session_, true);
  lock_scheduling();
  Rows rows = session_->query(
      "SELECT state FROM taskengine_tasks WHERE id = $1 AND job_id IS NOT NULL", {id});
  if (rows.empty()) throw NotFound("build " + std::to_string(id) + " does not exist");
  TaskState state = parse_task_state(rows[0].text(0));
  if (!is_final(state))
    throw InvalidArgument("build " + std::to_string(id) + " is " + std::string(to_string(state)) +
                          "; cancel it or let it finish before deleting it");
  Rows needed = session_->query(
      "SELECT t.id FROM taskengine_task_dependencies d JOIN taskengine_tasks t "
      "ON t.id = d.task_id WHERE d.depends_on = $1 AND t.state IN " +
          kUnfinished + " ORDER BY t.id LIMIT 1",
      {id});
  if (!needed.empty())
    throw InvalidArgument("build " + std::to_string(id) + " cannot be deleted: unfinished task " +
                          std::to_string(needed[0].integer(0)) + " depends on it");
  // Dependency rows, progress, log records and artifacts go with it (ON DELETE CASCADE).
  session_->execute("DELETE FROM taskengine_tasks WHERE id = $1", {id});
  commit(txn);
}

std::vector<Build> SqlStore::job_builds(const BuildFilter& filter) {
  require_schema();
  if (filter.limit < 0) throw InvalidArgument("'limit' must be >= 0");
  if (session_->query("SELECT 1 FROM taskengine_jobs WHERE id = $1", {filter.job_id}).empty())
    throw NotFound("job '" + filter.job_id + "' does not exist");
  Params params{filter.job_id};
  std::string sql = "SELECT id FROM taskengine_tasks WHERE job_id = $1";
  if (filter.started)
    sql += *filter.started ? " AND started_at IS NOT NULL" : " AND started_at IS NULL";
  if (filter.finished)
    sql += std::string(*filter.finished ? " AND state IN " : " AND state NOT IN ") + kFinished;
  if (filter.success)
    sql += *filter.success ? " AND state = 'completed'" : " AND state <> 'completed'";
  if (filter.skipped) sql += *filter.skipped ? " AND state = 'skipped'" : " AND state <> 'skipped'";
  params.emplace_back(std::int64_t{filter.limit});
  sql += filter.newest_first ? " ORDER BY id DESC" : " ORDER BY id";
  sql += " LIMIT $2";
  std::vector<Build> builds;
  for (const auto& row : session_->query(sql, params))
    if (auto build = get_build(row.integer(0))) builds.push_back(std::move(*build));
  return builds;
}

}  // namespace taskengine::sql
