// Retention: finished tasks are deleted once they are old enough, so the
// tables the hot path touches stay small however long the store lives.
#include <string>

#include "store/sql/sql_store.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::sql {
namespace {

const std::vector<TaskState> kFinalStates = {TaskState::Completed, TaskState::Failed,
                                             TaskState::Skipped, TaskState::Canceled};

}  // namespace

std::int64_t SqlStore::prune_tasks(const TaskPruneFilter& filter) {
  if (filter.limit < 1)
    throw InvalidArgument("prune_tasks: limit must be at least 1, got " +
                          std::to_string(filter.limit));
  const std::vector<TaskState>& states = filter.states.empty() ? kFinalStates : filter.states;
  for (TaskState state : states)
    if (!is_final(state))
      throw InvalidArgument("prune_tasks: '" + std::string(to_string(state)) +
                            "' is not a final state (completed, failed, skipped or canceled)");
  require_schema();

  // finished_at is set exactly when a task reaches a final state, so the
  // partial index on it finds the candidates, oldest first, whatever their
  // number; a state filter is added only when the caller narrows it.
  Params params{filter.finished_before};
  std::string sql =
      "DELETE FROM taskengine_tasks WHERE id IN (SELECT t.id FROM taskengine_tasks t"
      " WHERE t.finished_at IS NOT NULL AND t.finished_at < $1";
  if (!filter.states.empty()) {
    std::string in;
    for (TaskState state : states) {
      params.emplace_back(std::string(to_string(state)));
      in += (in.empty() ? "$" : ", $") + std::to_string(params.size());
    }
    sql += " AND t.state IN (" + in + ")";
  }
  if (!filter.include_builds) sql += " AND t.job_id IS NULL";
  // A finished task stays while an unfinished one depends on it: that one's
  // $retval arguments are resolved from it when it starts.
  params.emplace_back(std::int64_t{filter.limit});
  sql +=
      " AND NOT EXISTS (SELECT 1 FROM taskengine_task_dependencies d"
      " JOIN taskengine_tasks u ON u.id = d.task_id"
      " WHERE d.depends_on = t.id AND u.state IN ('blocked', 'waiting', 'running', 'canceling'))"
      " ORDER BY t.finished_at LIMIT $" +
      std::to_string(params.size()) + ")";

  Transaction txn(*session_, true);
  // Dispatch with dependencies reads its dependencies' states under this
  // lock: a task named as a dependency is either still there when the new
  // dependent is stored (and then kept) or already gone (NotFound-like
  // InvalidArgument), never deleted in between.
  lock_scheduling();
  // Without fresh statistics (autovacuum off, or a table that just grew)
  // PostgreSQL may plan a scan of the whole table and a sort; pruning must
  // read only what it deletes.
  if (session_->dialect() == Dialect::Postgres)
    session_->execute_script("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off");
  std::int64_t deleted = session_->execute(sql, params);
  commit(txn);
  return deleted;
}

}  // namespace taskengine::sql
