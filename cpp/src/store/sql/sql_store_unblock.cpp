// Task classes' on_unblock reactions, and appending to a task's history.
// The store unblocks tasks inside its own transactions, where no Python
// runs, so it applies the reactions itself at that moment: it writes their
// history entries and dispatches the tasks that deliver their notifications.
#include <set>

#include "store/sql/sql_store.hpp"
#include "taskengine/errors.hpp"

namespace taskengine::sql {
namespace {

// Appends `entries` to the history of task `id`, if it exists (false if not).
bool append_entries(Session& session, TaskId id, const Json& entries) {
  Rows rows = session.query("SELECT history FROM taskengine_tasks WHERE id = $1", {id});
  if (rows.empty()) return false;
  if (entries.empty()) return true;
  auto text = rows[0].optional_text(0);
  Json history = text && !text->empty() ? Json::parse(*text) : Json::array();
  if (!history.is_array()) history = Json::array();
  for (const auto& entry : entries) history.push_back(entry);
  session.execute("UPDATE taskengine_tasks SET history = $2 WHERE id = $1", {id, history.dump()});
  return true;
}

}  // namespace

void SqlStore::append_history(TaskId id, const Json& entries) {
  if (!entries.is_array()) throw InvalidArgument("history entries must be a list");
  for (const auto& entry : entries)
    if (!entry.is_object()) throw InvalidArgument("every history entry must be an object");
  require_schema();
  Transaction txn(*session_, true);
  // Completions append to the history under the scheduling lock too, so two
  // read-modify-writes of one history never interleave.
  lock_scheduling();
  if (!append_entries(*session_, id, entries))
    throw NotFound("task " + std::to_string(id) + " does not exist");
  txn.commit();
}

Value SqlStore::unblock_reactions(const TaskSpec& spec) {
  // A task without dependencies is never blocked, so never unblocked.
  if (spec.depends_on.empty() || (spec.unblock_history.empty() && spec.unblock_dispatch.empty()))
    return std::monostate{};
  Json dispatch = Json::array();
  for (const auto& task : spec.unblock_dispatch) dispatch.push_back(task.to_json());
  return Json{{"history", spec.unblock_history}, {"dispatch", dispatch}}.dump();
}

void SqlStore::apply_unblock(TaskId id, const std::optional<std::string>& reactions, Micros now) {
  if (!reactions || reactions->empty()) return;
  Json stored = Json::parse(*reactions);
  if (!stored.is_object()) return;
  Json entries = Json::array();
  for (Json entry : stored.value("history", Json::array())) {
    entry["at"] = now;
    entries.push_back(std::move(entry));
  }
  append_entries(*session_, id, entries);
  std::set<GroupId> known_groups;
  for (const auto& dispatch : stored.value("dispatch", Json::array())) {
    TaskSpec spec = TaskSpec::from_json(dispatch);
    spec.payload["kwargs"]["task_id"] = id;
    insert_task(spec, now, known_groups);
  }
}

}  // namespace taskengine::sql
