#include "store/schema.hpp"

namespace taskengine::schema {
namespace {

// The model of ARCHITECTURE.md, whole, from the first version: later
// features add behaviour, not columns. Timestamps are integer microseconds
// since the epoch (UTC); JSON is stored as text on SQLite, jsonb on
// PostgreSQL. `dialect` fills in the few type names that differ.
struct Dialect {
  std::string id_pk;  // auto-increment primary key
  std::string json;
  std::string boolean;
  std::string bigint;
  std::string true_lit;
  std::string false_lit;
  std::string blob;
  bool postgres = false;
};

// The columns of taskengine_task_resources in version 1, each followed by a
// comma: version 9 rebuilds the table on SQLite from the same list.
std::string task_resource_columns(const Dialect& d) {
  return " task_id " + d.bigint +
         " NOT NULL REFERENCES taskengine_tasks(id) ON DELETE CASCADE,"
         " resource TEXT NOT NULL,"
         " exclusive " +
         d.boolean +
         " NOT NULL,"
         " priority INTEGER NOT NULL,"
         " holder TEXT NOT NULL,";
}

std::vector<std::string> version_one(const Dialect& d) {
  return {
      "CREATE TABLE taskengine_schema (version INTEGER NOT NULL)",
      "CREATE TABLE taskengine_task_groups ("
      " id " +
          d.id_pk +
          ","
          " description TEXT NOT NULL DEFAULT '',"
          " all_tasks_dispatched " +
          d.boolean + " NOT NULL DEFAULT " + d.false_lit +
          ","
          " created_at " +
          d.bigint + " NOT NULL)",
      "CREATE TABLE taskengine_workers ("
      " id " +
          d.id_pk +
          ","
          " name TEXT NOT NULL,"
          " worker_type TEXT NOT NULL,"
          " hostname TEXT NOT NULL DEFAULT '',"
          " pid " +
          d.bigint +
          " NOT NULL DEFAULT 0,"
          " metadata " +
          d.json +
          " NOT NULL,"
          " started_at " +
          d.bigint +
          " NOT NULL,"
          " last_heartbeat " +
          d.bigint +
          " NOT NULL,"
          " online " +
          d.boolean + " NOT NULL DEFAULT " + d.true_lit +
          ","
          " secret_hash TEXT)",
      "CREATE TABLE taskengine_jobs ("
      " id TEXT PRIMARY KEY,"
      " function TEXT NOT NULL,"
      " args " +
          d.json +
          " NOT NULL,"
          " kwargs " +
          d.json +
          " NOT NULL,"
          " title TEXT NOT NULL DEFAULT '',"
          " notes TEXT NOT NULL DEFAULT '',"
          " dependencies " +
          d.json +
          " NOT NULL,"
          " config " +
          d.json +
          " NOT NULL,"
          " updated_at " +
          d.bigint + " NOT NULL)",
      "CREATE TABLE taskengine_tasks ("
      " id " +
          d.id_pk +
          ","
          " kind TEXT NOT NULL,"
          " name TEXT NOT NULL,"
          " payload " +
          d.json +
          " NOT NULL,"
          " state TEXT NOT NULL,"
          " priority INTEGER NOT NULL DEFAULT 0,"
          " created_at " +
          d.bigint +
          " NOT NULL,"
          " not_before " +
          d.bigint +
          ","
          " started_at " +
          d.bigint +
          ","
          " finished_at " +
          d.bigint +
          ","
          " task_group_id " +
          d.bigint +
          " REFERENCES taskengine_task_groups(id) ON DELETE SET NULL,"
          " job_id TEXT REFERENCES taskengine_jobs(id) ON DELETE CASCADE,"
          " allow_failure " +
          d.boolean + " NOT NULL DEFAULT " + d.false_lit +
          ","
          " requirements " +
          d.json +
          " NOT NULL,"
          " worker_type TEXT NOT NULL DEFAULT 'worker',"
          " retry_policy " +
          d.json +
          " NOT NULL,"
          // Waiting and nothing ahead of it conflicts: the claim reads only these.
          " eligible " +
          d.boolean + " NOT NULL DEFAULT " + d.false_lit +
          ","
          " attempt INTEGER NOT NULL DEFAULT 0,"
          " fence " +
          d.bigint +
          " NOT NULL DEFAULT 0,"
          " resources " +
          d.json +
          " NOT NULL,"
          " depends_on " +
          d.json +
          " NOT NULL,"
          " timeout_seconds DOUBLE PRECISION,"
          " unique_key TEXT UNIQUE,"
          " queue TEXT NOT NULL DEFAULT 'default',"
          " worker_id " +
          d.bigint +
          " REFERENCES taskengine_workers(id) ON DELETE SET NULL,"
          " worker_name TEXT,"
          " result " +
          d.json +
          ","
          " error " +
          d.json +
          ","
          " reason TEXT,"
          " history " +
          d.json + ")",
      // Runnable tasks in claim order; the partial index keeps the claim from
      // ever touching finished rows.
      "CREATE INDEX taskengine_tasks_eligible ON taskengine_tasks"
      " (worker_type, priority DESC, id) WHERE state = 'waiting' AND eligible",
      "CREATE INDEX taskengine_tasks_active_worker ON taskengine_tasks (worker_id)"
      " WHERE state IN ('running', 'canceling')",
      "CREATE INDEX taskengine_tasks_group ON taskengine_tasks (task_group_id)",
      "CREATE INDEX taskengine_tasks_state ON taskengine_tasks (state, id)",
      // The scheduler's view of resources: one row per (unfinished task,
      // resource), with the task's place in the queue copied in so that
      // every question the scheduler asks ("is anything ahead of this task
      // holding R?") is one index range scan on R. holder: blocked (not in
      // the queue yet), waiting (queued, something conflicts), ready (may
      // start now; gone in version 9), active (running or canceling). Rows
      // go when the task ends.
      "CREATE TABLE taskengine_task_resources (" + task_resource_columns(d) +
          " PRIMARY KEY (task_id, resource))",
      "CREATE INDEX taskengine_task_resources_queue ON taskengine_task_resources"
      " (resource, holder, exclusive, priority, task_id)",
      "CREATE TABLE taskengine_task_dependencies ("
      " task_id " +
          d.bigint +
          " NOT NULL REFERENCES taskengine_tasks(id) ON DELETE CASCADE,"
          " depends_on " +
          d.bigint +
          " NOT NULL REFERENCES taskengine_tasks(id) ON DELETE CASCADE,"
          " PRIMARY KEY (task_id, depends_on))",
      "CREATE INDEX taskengine_task_dependencies_reverse ON taskengine_task_dependencies"
      " (depends_on)",
      "CREATE TABLE taskengine_progress ("
      " task_id " +
          d.bigint +
          " NOT NULL REFERENCES taskengine_tasks(id) ON DELETE CASCADE,"
          " group_name TEXT NOT NULL,"
          " current " +
          d.bigint +
          " NOT NULL,"
          " total " +
          d.bigint +
          ","
          " status_line TEXT NOT NULL DEFAULT '',"
          " updated_at " +
          d.bigint +
          " NOT NULL,"
          " PRIMARY KEY (task_id, group_name))",
      "CREATE TABLE taskengine_log_records ("
      " id " +
          d.id_pk +
          ","
          " task_id " +
          d.bigint +
          " NOT NULL REFERENCES taskengine_tasks(id) ON DELETE CASCADE,"
          " created_at " +
          d.bigint +
          " NOT NULL,"
          " level INTEGER NOT NULL,"
          " logger TEXT NOT NULL DEFAULT '',"
          " message TEXT NOT NULL,"
          " extra " +
          d.json + ")",
      "CREATE INDEX taskengine_log_records_task ON taskengine_log_records (task_id, created_at)",
      "CREATE TABLE taskengine_artifacts ("
      " id " +
          d.id_pk +
          ","
          " task_id " +
          d.bigint +
          " NOT NULL REFERENCES taskengine_tasks(id) ON DELETE CASCADE,"
          " name TEXT NOT NULL,"
          " path TEXT NOT NULL,"
          " size " +
          d.bigint +
          " NOT NULL DEFAULT 0,"
          " sha256 TEXT NOT NULL DEFAULT '',"
          " created_at " +
          d.bigint + " NOT NULL)",
      "CREATE INDEX taskengine_artifacts_task ON taskengine_artifacts (task_id)",
  };
}

// Queue places as one sortable key, (queue_rank, task_id) with queue_rank =
// -priority, so "ahead of this holder" is a row comparison that both
// backends answer with one index range scan.
std::vector<std::string> version_two(const Dialect& d) {
  return {
      "ALTER TABLE taskengine_task_resources ADD COLUMN queue_rank " + d.bigint +
          " NOT NULL DEFAULT 0",
      "UPDATE taskengine_task_resources SET queue_rank = -priority",
      "DROP INDEX taskengine_task_resources_queue",
      "CREATE INDEX taskengine_task_resources_queue ON taskengine_task_resources"
      " (resource, holder, exclusive, queue_rank, task_id)",
  };
}

// Task classes: which workers refused a task in can_run_on, so that they
// never claim it again (the claim skips these pairs) and a waiting task can
// say why nobody runs it.
std::vector<std::string> version_three(const Dialect& d) {
  return {
      "CREATE TABLE taskengine_task_declines ("
      " task_id " +
          d.bigint +
          " NOT NULL REFERENCES taskengine_tasks(id) ON DELETE CASCADE,"
          " worker_id " +
          d.bigint +
          " NOT NULL REFERENCES taskengine_workers(id) ON DELETE CASCADE,"
          " reason TEXT NOT NULL DEFAULT '',"
          " PRIMARY KEY (task_id, worker_id))",
  };
}

// Builds (jobcontrol's vocabulary) are tasks with a job_id: each records the
// configuration it was created with, and a job's builds are read in order.
std::vector<std::string> version_four(const Dialect& d) {
  return {
      "ALTER TABLE taskengine_tasks ADD COLUMN build_config " + d.json,
      "CREATE INDEX taskengine_tasks_job ON taskengine_tasks (job_id, id)"
      " WHERE job_id IS NOT NULL",
  };
}

// What running tasks produce: artifact contents live in the store (so a
// reader on any host can fetch them), one artifact per name and task, and
// each log record says when the store wrote it (one value per write).
std::vector<std::string> version_five(const Dialect& d) {
  return {
      "ALTER TABLE taskengine_artifacts ADD COLUMN content " + d.blob,
      "CREATE UNIQUE INDEX taskengine_artifacts_name ON taskengine_artifacts (task_id, name)",
      "ALTER TABLE taskengine_log_records ADD COLUMN stored_at " + d.bigint + " NOT NULL DEFAULT 0",
      // Pruning by age and reading everything since a date.
      "CREATE INDEX taskengine_log_records_created ON taskengine_log_records (created_at)",
  };
}

// Task classes' on_unblock reactions, applied by the store when it unblocks
// the task: {"history": [entries], "dispatch": [task specs]}. NULL for every
// task without them, so settling dependents reads one more NULL column.
std::vector<std::string> version_six(const Dialect& d) {
  return {"ALTER TABLE taskengine_tasks ADD COLUMN on_unblock " + d.json};
}

// Retention: finished tasks, oldest first, so that pruning reads only what
// it deletes. Unfinished tasks (finished_at NULL) are not in it.
std::vector<std::string> version_seven(const Dialect&) {
  return {
      "CREATE INDEX taskengine_tasks_finished ON taskengine_tasks (finished_at)"
      " WHERE finished_at IS NOT NULL"};
}

// The hot path writes fewer index entries: a task's insert, claim and
// completion (two non-HOT updates: they change indexed columns) each add an
// entry to every index whose predicate the new row version satisfies.
// task_group_id and unique_key are NULL for most tasks, so their indexes
// leave those rows out (every query on them compares with '=', which implies
// IS NOT NULL for both planners); the index by worker keeps only tasks
// being canceled. SQLite cannot drop a column's UNIQUE constraint, so there
// the unique key index stays whole. (A (state, id) index without completed
// tasks was measured and left out: without statistics, as with autovacuum
// off, PostgreSQL then lists completed tasks with a scan of the whole
// table.)
std::vector<std::string> version_eight(const Dialect& d) {
  std::vector<std::string> out = {
      "DROP INDEX taskengine_tasks_group",
      "CREATE INDEX taskengine_tasks_group ON taskengine_tasks (task_group_id)"
      " WHERE task_group_id IS NOT NULL",
      // A worker looks up its tasks asked to cancel; recovery finds running
      // tasks through the (state, id) index. Every claim added an entry
      // for a running task here.
      "DROP INDEX taskengine_tasks_active_worker",
      "CREATE INDEX taskengine_tasks_canceling ON taskengine_tasks (worker_id)"
      " WHERE state = 'canceling'",
  };
  if (d.postgres) {
    // The store keeps these references true inside the transactions that
    // set them, so on PostgreSQL their foreign keys only added trigger work
    // to every insert (~20% of a bulk insert's server time) and claim
    // (SQLite cannot drop a column's constraint: it keeps them):
    // - worker_id is set by a claim to its own worker, which it has just
    //   read online and holds FOR SHARE; the engine never deletes workers;
    // - task_group_id is set by dispatch after reading the group; the engine
    //   never deletes groups;
    // - job_id is set by create_build, under the scheduling lock, after
    //   reading the job; a job is removed (load_jobs, under that lock) only
    //   after its builds.
    out.push_back("ALTER TABLE taskengine_tasks DROP CONSTRAINT taskengine_tasks_worker_id_fkey");
    out.push_back(
        "ALTER TABLE taskengine_tasks DROP CONSTRAINT taskengine_tasks_task_group_id_fkey");
    out.push_back("ALTER TABLE taskengine_tasks DROP CONSTRAINT taskengine_tasks_job_id_fkey");
    out.push_back("ALTER TABLE taskengine_tasks DROP CONSTRAINT taskengine_tasks_unique_key_key");
    out.push_back(
        "CREATE UNIQUE INDEX taskengine_tasks_unique_key ON taskengine_tasks (unique_key)"
        " WHERE unique_key IS NOT NULL");
  }
  return out;
}

// Eligibility lives on the task row only: holders are blocked, waiting or
// active, so promoting or demoting a task rewrites its row and not its
// resource rows, and a resource's state is three LIMIT 1 probes (the
// strongest active holder, the first waiting exclusive and shared one)
// instead of five. On SQLite the table is rebuilt WITHOUT ROWID: every
// write names rows by the primary key, which then is the table itself (one
// b-tree less to update per row).
std::vector<std::string> version_nine(const Dialect& d) {
  if (d.postgres)
    return {"UPDATE taskengine_task_resources SET holder = 'waiting' WHERE holder = 'ready'"};
  return {
      "CREATE TABLE taskengine_task_resources_new (" + task_resource_columns(d) + " queue_rank " +
          d.bigint +
          " NOT NULL DEFAULT 0,"
          " PRIMARY KEY (task_id, resource)) WITHOUT ROWID",
      "INSERT INTO taskengine_task_resources_new "
      "(task_id, resource, exclusive, priority, holder, queue_rank) "
      "SELECT task_id, resource, exclusive, priority, "
      "CASE holder WHEN 'ready' THEN 'waiting' ELSE holder END, queue_rank "
      "FROM taskengine_task_resources",
      "DROP TABLE taskengine_task_resources",
      "ALTER TABLE taskengine_task_resources_new RENAME TO taskengine_task_resources",
      "CREATE INDEX taskengine_task_resources_queue ON taskengine_task_resources"
      " (resource, holder, exclusive, queue_rank, task_id)",
  };
}

std::vector<Migration> build(const Dialect& d) {
  return {{1, "the whole task model", version_one(d)},
          {2, "resource queue places as (queue_rank, task_id)", version_two(d)},
          {3, "task classes: workers that declined a task", version_three(d)},
          {4, "builds of jobs", version_four(d)},
          {5, "task output: artifact contents, log write times", version_five(d)},
          {6, "task classes: on_unblock reactions", version_six(d)},
          {7, "retention: finished tasks by finish time", version_seven(d)},
          {8, "partial indexes on mostly-NULL columns", version_eight(d)},
          {9, "eligibility on the task row only; resource rows without rowid", version_nine(d)}};
}

}  // namespace

const std::vector<Migration>& sqlite_migrations() {
  static const std::vector<Migration> migrations =
      build({"INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "INTEGER", "INTEGER", "1", "0", "BLOB"});
  return migrations;
}

const std::vector<Migration>& postgres_migrations() {
  static const std::vector<Migration> migrations =
      build({"BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "JSONB", "BOOLEAN", "BIGINT",
             "TRUE", "FALSE", "BYTEA", true});
  return migrations;
}

const std::vector<std::string>& owned_tables() {
  static const std::vector<std::string> tables = {"taskengine_task_declines",
                                                  "taskengine_artifacts",
                                                  "taskengine_log_records",
                                                  "taskengine_progress",
                                                  "taskengine_task_dependencies",
                                                  "taskengine_task_resources",
                                                  "taskengine_tasks",
                                                  "taskengine_jobs",
                                                  "taskengine_workers",
                                                  "taskengine_task_groups",
                                                  "taskengine_schema"};
  return tables;
}

int latest_version() { return sqlite_migrations().back().version; }

}  // namespace taskengine::schema
