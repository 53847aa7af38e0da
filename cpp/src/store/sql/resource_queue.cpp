#include "store/sql/resource_queue.hpp"

#include <set>

namespace taskengine::sql {
namespace {

// How many queued rows of one resource the promotion walk reads at a time.
constexpr std::int64_t kWalkPage = 64;

}  // namespace

void ResourceQueue::add(TaskId id, int priority, const std::vector<std::string>& exclusive,
                        const std::vector<std::string>& shared, const std::string& holder) {
  for (const auto& r : exclusive)
    session_.execute(
        "INSERT INTO taskengine_task_resources (task_id, resource, exclusive, priority, holder) "
        "VALUES ($1, $2, TRUE, $3, $4)",
        {id, r, std::int64_t{priority}, holder});
  for (const auto& r : shared)
    session_.execute(
        "INSERT INTO taskengine_task_resources (task_id, resource, exclusive, priority, holder) "
        "VALUES ($1, $2, FALSE, $3, $4)",
        {id, r, std::int64_t{priority}, holder});
}

std::vector<ResourceQueue::Hold> ResourceQueue::holds_of(TaskId id) {
  std::vector<Hold> holds;
  for (const auto& row : session_.query(
           "SELECT resource, exclusive, priority FROM taskengine_task_resources WHERE task_id = $1",
           {id}))
    holds.push_back({row.text(0), row.boolean(1), static_cast<int>(row.integer(2))});
  return holds;
}

bool ResourceQueue::conflicts(TaskId id, const std::vector<Hold>& holds) {
  // An exclusive hold conflicts with any other holder of the resource; a
  // shared one only with exclusive holders. "Ahead" is priority DESC, id ASC.
  static const std::string any =
      "SELECT 1 FROM taskengine_task_resources WHERE resource = $1 AND ("
      " (holder = 'active' AND task_id <> $3) OR"
      " (holder IN ('waiting', 'ready') AND priority >= $2 AND (priority > $2 OR task_id < $3)))"
      " LIMIT 1";
  static const std::string exclusive_only =
      "SELECT 1 FROM taskengine_task_resources WHERE resource = $1 AND exclusive = TRUE AND ("
      " (holder = 'active' AND task_id <> $3) OR"
      " (holder IN ('waiting', 'ready') AND priority >= $2 AND (priority > $2 OR task_id < $3)))"
      " LIMIT 1";
  for (const auto& hold : holds) {
    if (!session_
             .query(hold.exclusive ? any : exclusive_only,
                    {hold.resource, std::int64_t{hold.priority}, id})
             .empty())
      return true;
  }
  return false;
}

void ResourceQueue::set_ready(TaskId id, bool ready) {
  if (ready) {
    for (const auto& row : session_.query(
             "UPDATE taskengine_tasks SET eligible = TRUE "
             "WHERE id = $1 AND state = 'waiting' AND NOT eligible RETURNING worker_type",
             {id}))
      became_ready_.insert(row.text(0));
  } else {
    session_.execute(
        "UPDATE taskengine_tasks SET eligible = FALSE "
        "WHERE id = $1 AND state = 'waiting' AND eligible",
        {id});
  }
  session_.execute(ready ? "UPDATE taskengine_task_resources SET holder = 'ready' "
                           "WHERE task_id = $1 AND holder = 'waiting'"
                         : "UPDATE taskengine_task_resources SET holder = 'waiting' "
                           "WHERE task_id = $1 AND holder = 'ready'",
                   {id});
}

void ResourceQueue::demote_behind(TaskId id, const std::vector<Hold>& holds) {
  static const std::string any =
      "SELECT task_id FROM taskengine_task_resources WHERE resource = $1 AND holder = 'ready'"
      " AND priority <= $2 AND (priority < $2 OR task_id > $3)";
  static const std::string exclusive_only =
      "SELECT task_id FROM taskengine_task_resources WHERE resource = $1 AND holder = 'ready'"
      " AND exclusive = TRUE AND priority <= $2 AND (priority < $2 OR task_id > $3)";
  std::set<TaskId> behind;
  for (const auto& hold : holds)
    for (const auto& row : session_.query(hold.exclusive ? any : exclusive_only,
                                          {hold.resource, std::int64_t{hold.priority}, id}))
      behind.insert(row.integer(0));
  for (TaskId other : behind) set_ready(other, false);
}

void ResourceQueue::promote_heads(const std::vector<Hold>& holds) {
  std::set<std::string> resources;
  for (const auto& hold : holds) resources.insert(hold.resource);
  for (const auto& resource : resources) {
    // An exclusive active holder blocks the whole queue of this resource.
    if (!session_
             .query("SELECT 1 FROM taskengine_task_resources WHERE resource = $1 AND "
                    "holder = 'active' AND exclusive = TRUE LIMIT 1",
                    {resource})
             .empty())
      continue;
    // Walk the queue from its head through the run of shared holders up to
    // and including the first exclusive one: everything behind that
    // conflicts with it.
    std::optional<std::pair<std::int64_t, TaskId>> after;
    bool done = false;
    while (!done) {
      Params params{resource};
      std::string sql =
          "SELECT task_id, exclusive, holder, priority FROM taskengine_task_resources "
          "WHERE resource = $1 AND holder IN ('waiting', 'ready')";
      if (after) {
        params.emplace_back(after->first);
        params.emplace_back(after->second);
        sql += " AND priority <= $2 AND (priority < $2 OR task_id > $3)";
      }
      params.emplace_back(kWalkPage);
      sql += " ORDER BY priority DESC, task_id LIMIT $" + std::to_string(params.size());
      Rows rows = session_.query(sql, params);
      for (const auto& row : rows) {
        TaskId task = row.integer(0);
        bool exclusive = row.boolean(1);
        after = std::make_pair(row.integer(3), task);
        if (row.text(2) == "waiting" && !conflicts(task, holds_of(task))) set_ready(task, true);
        if (exclusive) {
          done = true;
          break;
        }
      }
      if (static_cast<std::int64_t>(rows.size()) < kWalkPage) done = true;
    }
  }
}

void ResourceQueue::enqueue(TaskId id) {
  std::vector<Hold> holds = holds_of(id);
  if (holds.empty()) {
    for (const auto& row :
         session_.query("UPDATE taskengine_tasks SET eligible = TRUE "
                        "WHERE id = $1 AND state = 'waiting' RETURNING worker_type",
                        {id}))
      became_ready_.insert(row.text(0));
    return;
  }
  session_.execute("UPDATE taskengine_tasks SET eligible = FALSE WHERE id = $1", {id});
  session_.execute("UPDATE taskengine_task_resources SET holder = 'waiting' WHERE task_id = $1",
                   {id});
  demote_behind(id, holds);
  // The task's own place is decided by the walk over its resources; a
  // previously active task may also have been holding back tasks ahead of it.
  promote_heads(holds);
}

void ResourceQueue::activate(TaskId id) {
  session_.execute("UPDATE taskengine_task_resources SET holder = 'active' WHERE task_id = $1",
                   {id});
}

void ResourceQueue::remove(TaskId id) {
  std::vector<Hold> holds = holds_of(id);
  if (holds.empty()) return;
  session_.execute("DELETE FROM taskengine_task_resources WHERE task_id = $1", {id});
  promote_heads(holds);
}

}  // namespace taskengine::sql
