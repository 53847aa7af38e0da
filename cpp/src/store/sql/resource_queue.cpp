#include "store/sql/resource_queue.hpp"

#include <algorithm>

namespace taskengine::sql {
namespace {

using scheduler::Hold;
using scheduler::PlaceRange;
using scheduler::QueuePlace;
using scheduler::ResourceState;

// Statements with an id list are cut into chunks of this many parameters.
constexpr std::size_t kIdChunk = 500;

// One round trip reads a resource's state: its strongest active holder and
// the first queued holder of each kind and holder state, each one LIMIT 1
// index probe on (resource, holder, exclusive, queue_rank, task_id).
const std::string kStateSql = [] {
  auto first = [](int tag, const char* holder, const char* exclusive) {
    return std::string("SELECT ") + std::to_string(tag) +
           " AS tag, queue_rank, task_id FROM (SELECT queue_rank, task_id FROM "
           "taskengine_task_resources WHERE resource = $1 AND holder = '" +
           holder + "' AND exclusive = " + exclusive + " ORDER BY queue_rank, task_id LIMIT 1) q" +
           std::to_string(tag);
  };
  return "SELECT tag, queue_rank, task_id FROM (SELECT CASE WHEN exclusive THEN 1 ELSE 0 END "
         "AS tag, 0 AS queue_rank, 0 AS task_id FROM taskengine_task_resources WHERE resource = "
         "$1 AND holder = 'active' ORDER BY exclusive DESC LIMIT 1) active UNION ALL " +
         first(2, "waiting", "TRUE") + " UNION ALL " + first(3, "ready", "TRUE") + " UNION ALL " +
         first(4, "waiting", "FALSE") + " UNION ALL " + first(5, "ready", "FALSE");
}();

// Whether any queued shared holder can lie in `range`: none does when the
// first one is already past its end. Saves a query on queues without any.
bool may_hold_shared(const ResourceState& state, const PlaceRange& range) {
  return state.first_shared && (!range.to || *state.first_shared < *range.to);
}

void keep_first(std::optional<QueuePlace>& slot, QueuePlace place) {
  if (!slot || place < *slot) slot = place;
}

}  // namespace

void ResourceQueue::add(TaskId id, int priority, const std::vector<std::string>& exclusive,
                        const std::vector<std::string>& shared, bool queued) {
  if (exclusive.empty() && shared.empty()) return;
  std::int64_t rank = QueuePlace::of(priority, id).rank;
  const char* holder = queued ? "waiting" : "blocked";
  std::vector<Row> rows;  // not in any queue yet
  for (const auto& resource : exclusive) rows.push_back({resource, true, "blocked"});
  for (const auto& resource : shared) rows.push_back({resource, false, "blocked"});
  auto insert = [&] {
    for (const auto& row : rows)
      session_.execute(
          "INSERT INTO taskengine_task_resources "
          "(task_id, resource, exclusive, priority, queue_rank, holder) "
          "VALUES ($1, $2, $3, $4, $5, $6)",
          {id, row.resource, std::int64_t{row.exclusive}, std::int64_t{priority}, rank,
           std::string(holder)});
  };
  if (queued)
    change(rows, insert, id);
  else
    insert();  // blocked rows are in no queue: nobody's freeness changes
}

void ResourceQueue::enqueue(TaskId id) {
  std::vector<Row> rows = rows_of(id);
  if (rows.empty()) {
    for (const auto& row :
         session_.query("UPDATE taskengine_tasks SET eligible = TRUE "
                        "WHERE id = $1 AND state = 'waiting' RETURNING worker_type",
                        {id}))
      became_ready_.insert(row.text(0));
    return;
  }
  session_.execute("UPDATE taskengine_tasks SET eligible = FALSE WHERE id = $1", {id});
  change(
      rows,
      [&] {
        session_.execute(
            "UPDATE taskengine_task_resources SET holder = 'waiting' WHERE task_id = $1", {id});
      },
      id);
}

void ResourceQueue::activate(TaskId id) {
  session_.execute("UPDATE taskengine_task_resources SET holder = 'active' WHERE task_id = $1",
                   {id});
}

void ResourceQueue::remove(TaskId id) {
  std::vector<Row> rows = rows_of(id);
  if (rows.empty()) return;
  change(
      rows,
      [&] { session_.execute("DELETE FROM taskengine_task_resources WHERE task_id = $1", {id}); },
      std::nullopt);
}

std::vector<ResourceQueue::Row> ResourceQueue::rows_of(TaskId id) {
  std::vector<Row> rows;
  for (const auto& row :
       session_.query("SELECT resource, exclusive, holder FROM taskengine_task_resources "
                      "WHERE task_id = $1",
                      {id}))
    rows.push_back({row.text(0), row.boolean(1), row.text(2)});
  return rows;
}

void ResourceQueue::change(const std::vector<Row>& rows, const std::function<void()>& mutate,
                           std::optional<TaskId> newcomer) {
  // Each resource's state before the change is read, except for an active
  // row, which plainly only adds itself to the resource's active holders.
  std::map<std::string, ResourceState> before;
  for (const auto& row : rows)
    if (row.holder != "active") before[row.resource] = read_state(row.resource);
  mutate();
  std::map<std::string, ResourceState> after;  // also caches other resources' states below
  for (const auto& row : rows) {
    ResourceState now = read_state(row.resource);
    if (row.holder == "active") {
      ResourceState was = now;
      was.active_any = true;
      was.active_exclusive = was.active_exclusive || row.exclusive;
      before[row.resource] = was;
    }
    after.emplace(row.resource, now);
  }

  std::set<TaskId> demote;
  std::set<TaskId> candidates;
  if (newcomer) candidates.insert(*newcomer);
  for (const auto& row : rows) {
    const ResourceState& now = after.at(row.resource);
    scheduler::QueueChange plan = scheduler::plan_change(before.at(row.resource), now);
    if (plan.shared_no_longer_free && may_hold_shared(now, *plan.shared_no_longer_free))
      for (TaskId id : holders_in(row.resource, "ready", *plan.shared_no_longer_free))
        demote.insert(id);
    if (plan.exclusive_no_longer_free) demote.insert(plan.exclusive_no_longer_free->task);
    if (plan.shared_now_free && may_hold_shared(now, *plan.shared_now_free))
      for (TaskId id : holders_in(row.resource, "waiting", *plan.shared_now_free))
        candidates.insert(id);
    if (plan.exclusive_now_free) candidates.insert(plan.exclusive_now_free->task);
  }
  set_ready({demote.begin(), demote.end()}, false);

  // A candidate may start when it is free on all its resources, including
  // ones this change did not touch.
  std::vector<TaskId> promote;
  auto state_of = [&](const std::string& resource) -> const ResourceState& {
    auto it = after.find(resource);
    if (it == after.end()) it = after.emplace(resource, read_state(resource)).first;
    return it->second;
  };
  for (const auto& [id, holds] : holds_of({candidates.begin(), candidates.end()}))
    if (!demote.count(id) && scheduler::may_start(holds, state_of)) promote.push_back(id);
  set_ready(promote, true);
}

ResourceState ResourceQueue::read_state(const std::string& resource) {
  ResourceState state;
  for (const auto& row : session_.query(kStateSql, {resource})) {
    QueuePlace place{row.integer(1), row.integer(2)};
    switch (row.integer(0)) {
      case 0:
        state.active_any = true;
        break;
      case 1:
        state.active_any = state.active_exclusive = true;
        break;
      case 2:
      case 3:
        keep_first(state.first_exclusive, place);
        break;
      default:
        keep_first(state.first_shared, place);
    }
  }
  return state;
}

std::vector<TaskId> ResourceQueue::holders_in(const std::string& resource, const char* holder,
                                              const PlaceRange& range) {
  Params params{resource, std::string(holder)};
  std::string sql =
      "SELECT task_id FROM taskengine_task_resources WHERE resource = $1 AND holder = $2 "
      "AND exclusive = FALSE";
  if (range.from) {
    params.emplace_back(range.from->rank);
    params.emplace_back(range.from->task);
    sql += " AND (queue_rank, task_id) >= ($3, $4)";
  }
  if (range.to) {
    params.emplace_back(range.to->rank);
    params.emplace_back(range.to->task);
    std::size_t n = params.size();
    sql +=
        " AND (queue_rank, task_id) < ($" + std::to_string(n - 1) + ", $" + std::to_string(n) + ")";
  }
  std::vector<TaskId> ids;
  for (const auto& row : session_.query(sql, params)) ids.push_back(row.integer(0));
  return ids;
}

std::map<TaskId, std::vector<Hold>> ResourceQueue::holds_of(const std::vector<TaskId>& ids) {
  std::map<TaskId, std::vector<Hold>> holds;
  for_id_chunks(ids, kIdChunk, [&](Params chunk) {
    std::string in = padded_in_list(chunk, chunk.size());
    for (const auto& row : session_.query(
             "SELECT task_id, resource, exclusive, queue_rank FROM taskengine_task_resources "
             "WHERE task_id IN (" +
                 in + ")",
             chunk)) {
      TaskId id = row.integer(0);
      holds[id].push_back({row.text(1), row.boolean(2), QueuePlace{row.integer(3), id}});
    }
  });
  return holds;
}

void ResourceQueue::set_ready(const std::vector<TaskId>& ids, bool ready) {
  // The task row first: only tasks really waiting change, and only their
  // resource rows follow, so the two flags never disagree.
  for_id_chunks(ids, kIdChunk, [&](Params chunk) {
    std::string in = "(" + padded_in_list(chunk, chunk.size()) + ")";
    Rows changed = session_.query(
        ready ? "UPDATE taskengine_tasks SET eligible = TRUE WHERE id IN " + in +
                    " AND state = 'waiting' AND NOT eligible RETURNING id, worker_type"
              : "UPDATE taskengine_tasks SET eligible = FALSE WHERE id IN " + in +
                    " AND eligible RETURNING id, worker_type",
        chunk);
    if (changed.empty()) return;
    Params moved;
    for (const auto& row : changed) {
      moved.emplace_back(row.integer(0));
      if (ready) became_ready_.insert(row.text(1));
    }
    std::string moved_in = padded_in_list(moved, moved.size());
    session_.execute(std::string("UPDATE taskengine_task_resources SET holder = ") +
                         (ready ? "'ready'" : "'waiting'") + " WHERE task_id IN (" + moved_in +
                         ") AND holder = " + (ready ? "'waiting'" : "'ready'"),
                     moved);
  });
}

}  // namespace taskengine::sql
