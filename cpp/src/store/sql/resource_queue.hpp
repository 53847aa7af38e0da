#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "scheduler/resource_rule.hpp"
#include "store/sql/sql_session.hpp"
#include "taskengine/task.hpp"

namespace taskengine::sql {

// The store's side of the resource rule (cpp/src/scheduler/resource_rule.*):
// keeps each waiting task's `eligible` flag true exactly when the rule lets
// it start, by reading the few facts the rule needs and writing back what it
// decides. The claim then reads eligible tasks only, so its cost does not
// grow with the queue, and any eligible tasks may start together: no two of
// them conflict.
//
// Every change to resources' holders goes through change(): it reads the
// resources' states before and after, asks the rule which part of each
// queue changed freeness, and re-examines only those holders (plus the
// tasks that just joined). So the work grows with what changed, never with
// the queue's length, and every read is an index probe on a resource, or a
// row by primary key. A whole batch (the tasks of one claim, one completion
// call, one dispatch) is one change: each step is one statement for all its
// resources or tasks, sent ahead where nothing waits for its answer, so a
// batch with resources costs a few round trips more than one without,
// however many tasks it holds.
//
// Callers hold the store's scheduling lock (see SqlStore) inside a write
// transaction.
class ResourceQueue {
 public:
  // `became_ready` collects the worker types of tasks made eligible, so
  // the store wakes only workers that can take them.
  ResourceQueue(Session& session, std::set<std::string>& became_ready)
      : session_(session), became_ready_(became_ready) {}

  // A task's resources, as its own row lists them.
  struct Wants {
    TaskId id = 0;
    int priority = 0;
    std::vector<std::string> exclusive;
    std::vector<std::string> shared;
    bool queued = false;  // add(): waiting now, or blocked on dependencies
  };

  // Records the resources of new tasks: queued now, or blocked on their
  // dependencies (not in any queue yet).
  void add(const std::vector<Wants>& tasks);
  // The task (blocked, or active and going back to waiting) joins its
  // resources' queues at its place.
  void enqueue(TaskId id);
  // The tasks were claimed: they hold their resources as "active". This
  // changes no other task's freeness: a claimed task was free, so everything
  // behind it that conflicts with it was already held back. Sent ahead.
  void activate(const std::vector<Wants>& tasks);
  // The task ended or was dropped, whatever it held: its rows go.
  void remove(TaskId id);
  // Running or canceling tasks ended: their active rows go. Their resources
  // come from their rows in taskengine_tasks, so nothing is read per task.
  void release(const std::vector<Wants>& tasks);

 private:
  // One of a task's rows: which resource, how, and where it stands.
  struct Row {
    std::string resource;
    bool exclusive = false;
    std::string holder;  // blocked | waiting | active
  };
  // A candidate for promotion: its holds, and what its task row says now.
  struct Candidate {
    std::vector<scheduler::Hold> holds;
    bool startable = false;  // waiting and not eligible yet
    std::string worker_type;
  };
  std::vector<Row> rows_of(TaskId id);
  // Applies `mutate` to `rows` (of one task or many) and re-examines what it
  // changed. `newcomers`: tasks that join the queues, examined too.
  void change(const std::vector<Row>& rows, const std::function<void()>& mutate,
              const std::vector<TaskId>& newcomers);
  std::map<std::string, scheduler::ResourceState> read_states(
      const std::set<std::string>& resources);
  // The waiting shared holders of `resource` in `range`, sent ahead.
  Pending send_holders_in(const std::string& resource, const scheduler::PlaceRange& range);
  std::map<TaskId, Candidate> candidates_of(const std::set<TaskId>& ids);
  void set_eligible(const std::vector<TaskId>& ids, bool eligible);
  // A statement over all resource rows of the tasks, `sql` up to its WHERE,
  // sent ahead.
  void send_for_tasks(const std::string& sql, const std::vector<TaskId>& ids);

  Session& session_;
  std::set<std::string>& became_ready_;
};

}  // namespace taskengine::sql
