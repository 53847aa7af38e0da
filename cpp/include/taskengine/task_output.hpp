#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "taskengine/json.hpp"
#include "taskengine/task.hpp"
#include "taskengine/time.hpp"

namespace taskengine {

// What a running task produces besides its result: log records, progress
// per group, and artifacts (files whose contents live in the store, so a
// reader on any host can fetch them).

// Largest artifact the store accepts; bigger ones raise ArtifactTooLarge.
inline constexpr std::int64_t kMaxArtifactBytes = 16 * 1024 * 1024;
// Longest log message stored; longer ones are cut (and say so).
inline constexpr std::size_t kMaxLogMessageBytes = 64 * 1024;

struct LogRecord {
  std::int64_t id = 0;  // assigned by the store, increasing
  TaskId task_id = 0;
  Micros created_at = 0;  // when the task logged it
  Micros stored_at = 0;   // when the store wrote it: one value per write transaction
  int level = 20;         // Python logging levels (DEBUG 10 ... CRITICAL 50)
  std::string logger;
  std::string message;
  Json extra;  // null, or an object (e.g. {"exception": {...}, "lineno": 7})

  Json to_json() const;
  static LogRecord from_json(const Json& j);  // throws InvalidArgument
};

// One progress group ("" is the task's own; nested groups as "a::b").
struct Progress {
  std::string group_name;
  std::int64_t current = 0;
  std::int64_t total = 0;
  std::string status_line;
  Micros updated_at = 0;

  Json to_json() const;
  static Progress from_json(const Json& j);  // throws InvalidArgument
};

struct ArtifactInfo {
  std::int64_t id = 0;
  TaskId task_id = 0;
  std::string name;
  std::int64_t size = 0;
  std::string sha256;  // hex, as computed by the writer ("" when not given)
  Micros created_at = 0;

  Json to_json() const;
};

struct Artifact {
  ArtifactInfo info;
  std::string content;  // raw bytes
};

// One write of what a task produced. With a fence it is an attempt's own
// output: applied only while that attempt is the task's current one and
// still running or canceling (a stale attempt's output is dropped). Without
// a fence (reports from outside the task) the task only has to exist.
struct TaskOutput {
  TaskId task_id = 0;
  std::optional<std::int64_t> fence;
  std::vector<LogRecord> records;
  std::vector<Progress> progress;
  std::vector<Artifact> artifacts;  // info.name, info.sha256 and content are used

  // Throws InvalidArgument (or ArtifactTooLarge) naming the first problem.
  void validate() const;
};

struct LogFilter {
  std::vector<TaskId> task_ids;          // empty: any task
  std::optional<std::string> job_id;     // tasks whose job_id is this
  std::optional<Micros> min_date;        // created_at >= min_date
  std::optional<Micros> max_date;        // created_at < max_date
  std::optional<int> min_level;          // level >= min_level
  std::optional<std::int64_t> after_id;  // id > after_id (for following)
  int limit = 1000;
};

struct LogPruneFilter {
  std::optional<TaskId> task_id;
  std::optional<std::string> job_id;
  std::optional<Micros> older_than;  // created_at < older_than
  std::optional<int> max_level;      // level <= max_level
};

}  // namespace taskengine
