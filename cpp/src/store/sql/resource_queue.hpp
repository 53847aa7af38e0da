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
// Every change to a resource's holders goes through change(): it reads the
// resource's state before and after, asks the rule which part of the queue
// changed freeness, and re-examines only those holders (plus the task that
// just joined). So the work grows with what changed, never with the queue's
// length, and every read is an index range scan on the resource.
//
// Callers hold the store's scheduling lock (see SqlStore) inside a write
// transaction.
class ResourceQueue {
 public:
  // `became_ready` collects the worker types of tasks made eligible, so
  // the store wakes only workers that can take them.
  ResourceQueue(Session& session, std::set<std::string>& became_ready)
      : session_(session), became_ready_(became_ready) {}

  // Records the resources of a new task: queued now, or blocked on its
  // dependencies (not in any queue yet).
  void add(TaskId id, int priority, const std::vector<std::string>& exclusive,
           const std::vector<std::string>& shared, bool queued);
  // The task (blocked, or active and going back to waiting) joins its
  // resources' queues at its place.
  void enqueue(TaskId id);
  // The task was claimed: it holds its resources as "active". This changes
  // no other task's freeness: a claimed task was free, so everything behind
  // it that conflicts with it was already held back.
  void activate(TaskId id);
  // The task ended or was dropped: its rows go.
  void remove(TaskId id);

 private:
  // One of a task's rows: which resource, how, and where it stands.
  struct Row {
    std::string resource;
    bool exclusive = false;
    std::string holder;  // blocked | waiting | ready | active
  };
  std::vector<Row> rows_of(TaskId id);
  // Applies `mutate` to the rows of one task and re-examines what it
  // changed. `newcomer`: the task joins the queues and is examined too.
  void change(const std::vector<Row>& rows, const std::function<void()>& mutate,
              std::optional<TaskId> newcomer);
  scheduler::ResourceState read_state(const std::string& resource);
  std::vector<TaskId> holders_in(const std::string& resource, const char* holder,
                                 const scheduler::PlaceRange& range);
  std::map<TaskId, std::vector<scheduler::Hold>> holds_of(const std::vector<TaskId>& ids);
  void set_ready(const std::vector<TaskId>& ids, bool ready);

  Session& session_;
  std::set<std::string>& became_ready_;
};

}  // namespace taskengine::sql
