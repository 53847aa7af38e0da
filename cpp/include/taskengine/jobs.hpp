#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "taskengine/json.hpp"
#include "taskengine/task.hpp"

namespace taskengine {

// Jobs and builds, in jobcontrol's vocabulary. A job is a named, stored
// definition of a function call; a build is one run of it: a function task
// whose job_id names the job (build id == task id).
//
// Inside a job's args/kwargs, {"$retval": "<job id>"} (a string: jobcontrol's
// `!retval <job id>`) stands for the return value of that dependency's
// build; create_build turns it into the engine's {"$retval": <task id>}.
struct JobDefinition {
  std::string id;
  std::string function;  // "module:function"
  Json args = Json::array();
  Json kwargs = Json::object();
  std::string title;
  std::string notes;
  std::vector<std::string> dependencies;

  Json to_json() const;
  // Throws JobConfigError naming the job and the field.
  static JobDefinition from_json(const Json& j);
  // Checks this job on its own (id, function, args, kwargs, dependencies
  // listed once, !retval only naming dependencies). Throws JobConfigError.
  void validate() const;
};

// A job as stored: its definition and when it was last written.
struct Job {
  JobDefinition definition;
  Micros updated_at = 0;

  Json to_json() const;
};

// Checks a whole job set: each job, unique ids, dependencies that exist,
// and no dependency cycle. Throws JobConfigError naming the job and field.
void validate_job_set(const std::vector<JobDefinition>& jobs);

// Every job id named by a {"$retval": "<job id>"} marker in `value`.
std::vector<std::string> job_retval_references(const Json& value);

// What load_jobs changed, by job id.
struct JobsLoaded {
  std::vector<std::string> created;
  std::vector<std::string> updated;
  std::vector<std::string> unchanged;
  std::vector<std::string> removed;

  Json to_json() const;
};

// jobcontrol's build configuration. dependency_builds maps a job id (the
// built job's dependencies, direct or not) to an existing completed build
// to use, or to nullopt: build it anew (also what an absent job means).
struct BuildConfig {
  std::map<std::string, std::optional<TaskId>> dependency_builds;

  static BuildConfig from_json(const Json& j);  // throws InvalidArgument
};

// A build as stored: the task, its job, and the configuration it recorded
// ({"job": <definition when created>, "dependency_builds": {job: build id}}).
struct Build {
  Task task;
  std::string job_id;
  Json config = Json::object();

  Json to_json() const;  // the task's fields plus "job_id" and "config"
};

// get_job_builds: every filter, the order and the limit run in SQL.
// started: the build began running at least once; finished: it reached a
// final state; success: it completed; skipped: it was skipped.
struct BuildFilter {
  std::string job_id;
  std::optional<bool> started;
  std::optional<bool> finished;
  std::optional<bool> success;
  std::optional<bool> skipped;
  bool newest_first = false;
  int limit = 100;
};

}  // namespace taskengine
