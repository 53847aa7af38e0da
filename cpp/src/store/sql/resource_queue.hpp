#pragma once

#include <set>
#include <string>
#include <vector>

#include "store/sql/sql_session.hpp"
#include "taskengine/task.hpp"

namespace taskengine::sql {

// Keeps each waiting task's `eligible` flag true exactly when the resource
// rule of ARCHITECTURE.md lets it start: no running or canceling task, and
// no waiting task ahead of it (priority, then dispatch order), conflicts
// with it. The claim then reads eligible tasks only, so its cost does not
// grow with the queue, and any eligible tasks may start together: no two
// of them conflict (the later one would not be eligible).
//
// The flag is updated where the answer can change, and only there:
//  - a task enters the queue (dispatch, unblock, retry, requeue): ready
//    tasks behind it that it conflicts with lose the flag, and the heads of
//    its resources' queues are re-examined;
//  - a task leaves it or stops being active (ends, is canceled, goes back
//    to waiting): the heads of its resources' queues are re-examined.
// So the work grows with what changed, never with the queue's length.
//
// Callers hold the store's scheduling lock (see SqlStore) inside a write
// transaction.
class ResourceQueue {
 public:
  // `became_ready` collects the worker types of tasks made eligible, so
  // the store wakes only workers that can take them.
  ResourceQueue(Session& session, std::set<std::string>& became_ready)
      : session_(session), became_ready_(became_ready) {}

  // Records the resources of a new task. `holder`: "blocked" or "waiting".
  void add(TaskId id, int priority, const std::vector<std::string>& exclusive,
           const std::vector<std::string>& shared, const std::string& holder);
  // The task (holder "blocked", "waiting" or "active") is now waiting in the
  // queue at its place: update its flag and everyone's it affects.
  void enqueue(TaskId id);
  // The task was claimed: it holds its resources as "active".
  void activate(TaskId id);
  // The task ended or was dropped from the queue: its rows go, and the
  // tasks it held back are re-examined.
  void remove(TaskId id);

 private:
  struct Hold {
    std::string resource;
    bool exclusive;
    int priority;
  };
  std::vector<Hold> holds_of(TaskId id);
  bool conflicts(TaskId id, const std::vector<Hold>& holds);
  void set_ready(TaskId id, bool ready);
  void demote_behind(TaskId id, const std::vector<Hold>& holds);
  void promote_heads(const std::vector<Hold>& holds);

  Session& session_;
  std::set<std::string>& became_ready_;
};

}  // namespace taskengine::sql
