// The claim: a worker takes eligible, due tasks of its type, in priority
// then dispatch order, and marks them running with a new attempt and fence.
#include <algorithm>

#include "scheduler/matching.hpp"
#include "store/sql/sql_store.hpp"
#include "store/sql/task_rows.hpp"

namespace taskengine::sql {
namespace {

const std::string kTaskColumns = task_columns();

// Past its first page the claim reads on in pages of this many rows.
constexpr int kClaimPage = 256;

// A row needs nothing of the C++ side of the claim (is_plain), on PostgreSQL.
const char* const kPlainRow =
    "(t.depends_on = '[]'::jsonb AND jsonb_strip_nulls(t.requirements - 'worker_type') IN "
    "('{}'::jsonb, '{\"versions\": {}}'::jsonb))";

// One statement: the worker row FOR SHARE (as send_worker_online), a page of
// eligible rows FOR UPDATE SKIP LOCKED (as claim_matched's first page), and
// an UPDATE ... RETURNING of its plain rows up to the first one that is not
// (priority order holds: nothing behind that row is taken); the resource
// rows of the tasks taken become active (as ResourceQueue::activate: eligible
// tasks never conflict, so this frees or blocks no one else). "= ANY(ARRAY(
// ...))" keeps that UPDATE on the primary key's task_id prefix, whatever the
// planner guesses of the page's size. The last column says whether the page
// met a row that is not plain; the row of NULL task columns is there when
// nothing was taken, so that column always arrives.
std::string plain_claim_sql() {
  return std::string(
             "WITH w AS (SELECT id FROM taskengine_workers WHERE id = $3 AND online FOR SHARE), "
             "page AS MATERIALIZED (SELECT t.id, t.priority, ") +
         kPlainRow +
         " AS plain FROM taskengine_tasks t WHERE t.state = 'waiting' AND t.eligible AND "
         "t.worker_type = $1 AND (t.not_before IS NULL OR t.not_before <= $2) AND NOT EXISTS "
         "(SELECT 1 FROM taskengine_task_declines d WHERE d.task_id = t.id AND d.worker_id = $3) "
         "AND EXISTS (SELECT 1 FROM w) ORDER BY t.priority DESC, t.id LIMIT $4 "
         "FOR UPDATE OF t SKIP LOCKED), "
         "stop AS (SELECT priority, id FROM page WHERE NOT plain ORDER BY priority DESC, id "
         "LIMIT 1), "
         "taken AS (UPDATE taskengine_tasks t SET state = 'running', eligible = FALSE, "
         "attempt = t.attempt + 1, fence = t.fence + 1, started_at = $2, worker_id = $3, "
         "worker_name = $5, reason = NULL FROM page p WHERE t.id = p.id AND p.plain AND NOT "
         "EXISTS (SELECT 1 FROM stop s WHERE s.priority > p.priority OR (s.priority = "
         "p.priority AND s.id < p.id)) RETURNING " +
         task_columns("t.") +
         "), active AS (UPDATE taskengine_task_resources r SET holder = 'active' WHERE "
         "r.task_id = ANY(ARRAY(SELECT id FROM taken))) "
         "SELECT taken.*, EXISTS (SELECT 1 FROM stop) FROM (SELECT 1) one LEFT JOIN taken "
         "ON TRUE";
}

bool by_priority(const Task& a, const Task& b) {
  return a.priority != b.priority ? a.priority > b.priority : a.id < b.id;
}

}  // namespace

std::vector<Task> SqlStore::claim(const WorkerInfo& worker, int limit) {
  if (limit <= 0) return {};
  // SQLite runs in-process: its two steps cost no round trips.
  if (session_->dialect() == Dialect::Sqlite || !plain_queue_) return claim_matched(worker, limit);
  PlainClaim plain = claim_plain(worker, limit);
  if (!plain.stopped) return std::move(plain.tasks);
  // The page met a task that needs matching: the rest goes the long way,
  // and so do the next claims until one finds the queue plain again.
  plain_queue_ = false;
  int left = limit - static_cast<int>(plain.tasks.size());
  std::vector<Task> rest = claim_matched(worker, left);
  plain.tasks.insert(plain.tasks.end(), std::make_move_iterator(rest.begin()),
                     std::make_move_iterator(rest.end()));
  return std::move(plain.tasks);
}

SqlStore::PlainClaim SqlStore::claim_plain(const WorkerInfo& worker, int limit) {
  static const std::string sql = plain_claim_sql();
  Transaction txn(*session_, true);
  // Sent with BEGIN and COMMIT: one round trip.
  Pending answer = session_->send(
      sql, {worker.worker_type, now_micros(), worker.id, std::int64_t{limit}, worker.name});
  txn.commit();
  PlainClaim out;
  Rows rows = answer.take_rows();
  if (rows.empty()) return out;  // not reached: the LEFT JOIN gives a row
  out.stopped = rows[0].boolean(rows[0].size() - 1);
  for (const auto& row : rows)
    if (!row.is_null(0)) out.tasks.push_back(task_from_row(row));
  // RETURNING follows no order.
  std::sort(out.tasks.begin(), out.tasks.end(), by_priority);
  return out;
}

Pending SqlStore::send_worker_online(WorkerId id) {
  // FOR SHARE makes a concurrent recovery wait for this claim to commit, so
  // it then sees (and recovers) what the claim took; or the claim sees the
  // worker offline and takes nothing. Sent ahead, with the claim's first
  // read: the server locks the worker row before it reads any task.
  const std::string lock = session_->dialect() == Dialect::Postgres ? " FOR SHARE" : "";
  return session_->send("SELECT online FROM taskengine_workers WHERE id = $1" + lock, {id});
}

bool SqlStore::online(const Pending& answer) {
  const Rows& rows = answer.rows();
  return !rows.empty() && rows[0].boolean(0);
}

std::vector<Task> SqlStore::claim_matched(const WorkerInfo& worker, int limit) {
  Micros now = now_micros();
  Transaction txn(*session_, true);
  // An offline worker claims nothing: nobody would ever recover it (the
  // rows the first page locked are released with the rollback).
  Pending worker_row = send_worker_online(worker.id);
  // Only eligible tasks are read: no two of them conflict, so claimers need
  // no lock beyond the rows they take (SKIP LOCKED on PostgreSQL; SQLite's
  // BEGIN IMMEDIATE serializes writers anyway).
  const std::string lock_rows =
      session_->dialect() == Dialect::Postgres ? " FOR UPDATE SKIP LOCKED" : "";
  std::vector<Task> claimed;
  std::optional<std::pair<std::int64_t, TaskId>> after;  // keyset (priority, id)
  // The first page is exactly what is wanted: on PostgreSQL every row read
  // is locked until commit, and concurrent claimers skip locked rows. Only
  // when matching turns rows down does the claim read on, in larger pages.
  std::int64_t page = limit;
  bool all_plain = true;
  for (;;) {
    // A task this worker declined (can_run_on) is never its to claim.
    Params params{worker.worker_type, now, worker.id};
    std::string sql = "SELECT " + kTaskColumns +
                      " FROM taskengine_tasks WHERE state = 'waiting' AND eligible AND "
                      "worker_type = $1 AND (not_before IS NULL OR not_before <= $2) AND NOT "
                      "EXISTS (SELECT 1 FROM taskengine_task_declines d WHERE d.task_id = "
                      "taskengine_tasks.id AND d.worker_id = $3)";
    if (after) {
      params.emplace_back(after->first);
      params.emplace_back(after->second);
      sql += " AND priority <= $4 AND (priority < $4 OR id > $5)";
    }
    params.emplace_back(page);
    sql += " ORDER BY priority DESC, id LIMIT $" + std::to_string(params.size()) + lock_rows;
    Rows rows = session_->query(sql, params);
    if (!online(worker_row)) return {};
    for (const auto& row : rows) {
      Task task = task_from_row(row);
      after = std::make_pair(std::int64_t{task.priority}, task.id);
      all_plain = all_plain && is_plain(task);
      if (scheduler::mismatch(task, worker).empty()) claimed.push_back(std::move(task));
      if (static_cast<int>(claimed.size()) >= limit) break;
    }
    if (static_cast<int>(claimed.size()) >= limit || static_cast<std::int64_t>(rows.size()) < page)
      break;
    page = std::max<std::int64_t>(limit, kClaimPage);
  }

  start_claimed(claimed, worker, now);
  txn.commit();
  plain_queue_ = all_plain;
  return claimed;
}

std::optional<Task> SqlStore::claim_task(TaskId id, const WorkerInfo& worker) {
  Micros now = now_micros();
  Transaction txn(*session_, true);
  Pending worker_row = send_worker_online(worker.id);
  const std::string lock_rows =
      session_->dialect() == Dialect::Postgres ? " FOR UPDATE SKIP LOCKED" : "";
  Rows rows = session_->query("SELECT " + kTaskColumns +
                                  " FROM taskengine_tasks WHERE id = $1 AND state = 'waiting' "
                                  "AND eligible AND (not_before IS NULL OR not_before <= $2)" +
                                  lock_rows,
                              {id, now});
  if (!online(worker_row) || rows.empty()) return std::nullopt;
  std::vector<Task> claimed{task_from_row(rows[0])};
  if (claimed[0].requirements.worker_type != worker.worker_type ||
      !scheduler::mismatch(claimed[0], worker).empty())
    return std::nullopt;
  start_claimed(claimed, worker, now);
  txn.commit();
  return claimed[0];
}

}  // namespace taskengine::sql
