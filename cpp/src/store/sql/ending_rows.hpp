#pragma once

#include <optional>
#include <string>
#include <vector>

#include "store/sql/sql_session.hpp"
#include "taskengine/task.hpp"

namespace taskengine::sql {

// The final writes of the attempts that end in one complete() call: each
// task's state, finish time, result, error and reason. On PostgreSQL a
// batch of them goes as one UPDATE ... FROM unnest(...) (ids, states and
// reasons as array parameters, results and errors as JSON arrays the
// server parses once): one statement's executor start, snapshot and plan
// lookup per batch instead of per task. SQLite runs in-process, where a
// statement costs no round trip: one UPDATE per row, as do small batches.
class EndingRows {
 public:
  // `result` and `error` point into the caller's completions, which must
  // outlive send(): results are not copied on the worker's hottest path.
  struct Row {
    TaskId id;
    TaskState state;
    const Json* result;  // null JSON: SQL NULL, as every other write of it
    const Json* error;
    std::optional<std::string> reason;
  };

  EndingRows(Session& session, Micros finished_at) : session_(session), finished_at_(finished_at) {}
  void add(TaskId id, TaskState state, const Json& result, const Json& error,
           std::optional<std::string> reason);
  // Sends what was added, pipelined: answered with the transaction's next
  // query or its commit. Nothing added: nothing sent.
  void send();

 private:
  Session& session_;
  Micros finished_at_;
  std::vector<Row> rows_;
};

}  // namespace taskengine::sql
