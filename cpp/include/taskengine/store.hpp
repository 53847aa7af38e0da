#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "taskengine/jobs.hpp"
#include "taskengine/task.hpp"
#include "taskengine/task_output.hpp"
#include "taskengine/worker_info.hpp"

namespace taskengine {

struct TaskFilter {
  std::optional<TaskState> state;
  std::optional<GroupId> task_group;
  std::optional<WorkerId> worker_id;
  int limit = 100;
  bool newest_first = false;
};

// Which finished tasks prune_tasks() deletes: those that finished before
// `finished_before`, in the given final states (empty: every final state),
// builds of jobs only when asked. One call deletes at most `limit` tasks, the
// earliest finished first, in one transaction: callers loop to prune more,
// so no transaction holds the store for long.
struct TaskPruneFilter {
  Micros finished_before = 0;
  std::vector<TaskState> states;
  bool include_builds = false;
  int limit = 1000;
};

// Delivers wake-ups to one worker: "something changed, look again". A
// listener may deliver spurious wake-ups; it must never lose one for longer
// than the worker's polling fallback.
class WakeupListener {
 public:
  virtual ~WakeupListener() = default;
  // Blocks until a wake-up arrives or `timeout` passes. Returns true on a
  // wake-up. Safe to call from one thread at a time.
  virtual bool wait(std::chrono::milliseconds timeout) = 0;
  // Makes a blocked wait() return now (used for shutdown and local events).
  virtual void interrupt() = 0;
};

// The one interface both backends implement and one conformance suite
// tests. A Store object holds one connection; it is used from one thread at
// a time (open one per thread).
class Store {
 public:
  virtual ~Store() = default;

  virtual std::string url() const = 0;
  virtual std::string backend() const = 0;  // "sqlite" | "postgresql"

  // Schema. install() creates or upgrades and is idempotent; uninstall()
  // drops every table the engine owns.
  virtual void install() = 0;
  virtual void uninstall() = 0;
  virtual int schema_version() = 0;  // 0 when not installed

  // Dispatch: all specs in one transaction, ids in order. Validates every
  // spec and every referenced id first; on any error nothing is written.
  virtual std::vector<TaskId> dispatch(const std::vector<TaskSpec>& specs) = 0;

  virtual std::optional<Task> get_task(TaskId id) = 0;
  virtual std::vector<Task> list_tasks(const TaskFilter& filter) = 0;
  // Retention: deletes finished tasks as `filter` says, with their log
  // records, progress, artifacts, declines and dependency rows; never a task
  // that an unfinished task depends on (its result may still be passed on).
  // Returns how many were deleted. InvalidArgument for a state that is not
  // final or a limit below 1; then nothing is deleted.
  virtual std::int64_t prune_tasks(const TaskPruneFilter& filter) = 0;
  // Appends `entries` (a list of objects) to a task's history, in one
  // transaction. Throws NotFound for an unknown id and InvalidArgument for
  // anything but a list of objects; either way nothing is written.
  virtual void append_history(TaskId id, const Json& entries) = 0;

  // Cancel: a blocked or waiting task ends `canceled` at once; a running one
  // becomes `canceling` and its worker is woken. Returns the new state.
  // Throws NotFound for an unknown id; a finished task is left as it is.
  virtual TaskState cancel_task(TaskId id, const std::string& reason) = 0;
  TaskState cancel_task(TaskId id) { return cancel_task(id, "canceled"); }

  virtual GroupId create_task_group(const std::string& description) = 0;
  // Cancels every unfinished task of the group; returns how many.
  virtual int cancel_task_group(GroupId id) = 0;

  // Workers.
  virtual WorkerId register_worker(const WorkerInfo& info) = 0;
  // Records a heartbeat; returns false if the worker was declared lost (it
  // must then stop and re-register).
  virtual bool heartbeat(WorkerId id) = 0;
  virtual void unregister_worker(WorkerId id) = 0;
  virtual std::vector<WorkerInfo> list_workers(bool include_offline) = 0;

  // Claims up to `limit` runnable tasks for `worker`, in priority then
  // dispatch order, marking them running with a new attempt number and
  // fencing token. {"$retval": id} arguments come back resolved.
  virtual std::vector<Task> claim(const WorkerInfo& worker, int limit) = 0;

  // Claims one given task for `worker` if it may start now (eligible, due,
  // matching): pulpcore's immediate dispatch. nullopt otherwise.
  virtual std::optional<Task> claim_task(TaskId id, const WorkerInfo& worker) = 0;

  // Ends attempts, each fenced by its token. Returns, per
  // completion, whether it was applied (false: stale attempt, ignored).
  virtual std::vector<bool> complete(const std::vector<Completion>& completions) = 0;

  // (id, fence) of this worker's tasks that were asked to cancel.
  virtual std::vector<std::pair<TaskId, std::int64_t>> canceling_tasks(WorkerId worker) = 0;

  // Declares workers silent for longer than `timeout` offline and ends or
  // requeues their running tasks ("worker lost"). Returns how many tasks were
  // recovered.
  virtual int recover_lost_workers(std::chrono::milliseconds timeout) = 0;

  // Requeues a running attempt without counting it against the retry policy
  // (graceful shutdown).
  virtual bool requeue(TaskId id, std::int64_t fence, const std::string& reason) = 0;

  // Hands a running attempt back because the task class's can_run_on refused
  // `worker`: like requeue, and `worker` never claims the task again.
  virtual bool decline(TaskId id, std::int64_t fence, WorkerId worker,
                       const std::string& reason) = 0;
  // Jobs and builds (jobcontrol's vocabulary, see jobs.hpp).
  // Makes the stored job set `jobs`, in one transaction: new ids are
  // created, known ones replaced, and jobs no longer in the set are deleted
  // with their builds. Throws JobConfigError for an invalid set, and
  // InvalidArgument when a job to delete still has an unfinished build or an
  // unfinished build depends on one of its builds; then nothing changes.
  virtual JobsLoaded load_jobs(const std::vector<JobDefinition>& jobs) = 0;
  virtual std::optional<Job> get_job(const std::string& id) = 0;
  virtual std::vector<Job> list_jobs() = 0;  // by id
  // Creates, in one transaction, the build of `job_id` and first a build of
  // every dependency (direct or not) that `config` does not pin to an
  // existing completed build. Returns the build id. Throws NotFound for an
  // unknown job and InvalidArgument for a bad pin.
  virtual TaskId create_build(const std::string& job_id, const BuildConfig& config) = 0;
  virtual std::optional<Build> get_build(TaskId id) = 0;  // nullopt: no such build
  // Deletes a finished build with its progress, log records and artifacts.
  // Throws NotFound, or InvalidArgument while it is unfinished or an
  // unfinished build depends on it.
  virtual void delete_build(TaskId id) = 0;
  virtual std::vector<Build> job_builds(const BuildFilter& filter) = 0;  // NotFound: no job

  // Opens a listener for one worker. It wakes when a task of the worker's
  // type may have become startable (dispatched, unblocked, freed resources,
  // retried) or when a task the worker runs is asked to cancel; wake-ups for
  // other worker types or other workers never reach it.
  virtual std::unique_ptr<WakeupListener> listen(const WorkerInfo& worker) = 0;

  // What running tasks produce (task_output.hpp). write_task_output applies
  // all outputs in one transaction and returns, per output, whether it was
  // applied (false: a stale attempt's, dropped). Validates everything first:
  // NotFound for an unknown task, InvalidArgument / ArtifactTooLarge for bad
  // input, and then nothing is written. Progress is upserted per group; an
  // artifact replaces one of the same name.
  virtual std::vector<bool> write_task_output(const std::vector<TaskOutput>& outputs) = 0;
  virtual std::vector<LogRecord> list_log_records(const LogFilter& filter) = 0;
  // Deletes the matching records; returns how many.
  virtual std::int64_t prune_log_records(const LogPruneFilter& filter) = 0;
  // A task's progress groups, by name. NotFound for an unknown task.
  virtual std::vector<Progress> get_progress(TaskId id) = 0;
  virtual std::vector<ArtifactInfo> list_artifacts(TaskId id) = 0;         // NotFound
  virtual Artifact read_artifact(TaskId id, const std::string& name) = 0;  // NotFound
};

// Opens a store by URL: sqlite:///abs/path.db, sqlite:///./rel.db,
// postgresql://user@host:port/db (also postgres://). Throws InvalidUrl or
// ConnectionError.
std::unique_ptr<Store> open_store(const std::string& url);

}  // namespace taskengine
