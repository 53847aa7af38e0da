#pragma once

#include <memory>
#include <random>
#include <set>
#include <span>

#include "store/sql/resource_queue.hpp"
#include "store/sql/sql_session.hpp"
#include "taskengine/store.hpp"

namespace taskengine::sql {

// The store's logic, written once over a Session: both backends run the
// same statements (with a few dialect branches), so they pass one
// conformance suite by construction rather than by parallel maintenance.
class SqlStore final : public Store {
 public:
  explicit SqlStore(std::unique_ptr<Session> session);

  std::string url() const override { return session_->url(); }
  std::string backend() const override;

  void install() override;
  void uninstall() override;
  int schema_version() override;

  std::vector<TaskId> dispatch(const std::vector<TaskSpec>& specs) override;
  std::optional<Task> get_task(TaskId id) override;
  std::vector<Task> list_tasks(const TaskFilter& filter) override;
  std::int64_t prune_tasks(const TaskPruneFilter& filter) override;  // sql_store_retention.cpp
  void append_history(TaskId id, const Json& entries) override;
  using Store::cancel_task;
  TaskState cancel_task(TaskId id, const std::string& reason) override;
  GroupId create_task_group(const std::string& description) override;
  int cancel_task_group(GroupId id) override;

  WorkerId register_worker(const WorkerInfo& info) override;
  bool heartbeat(WorkerId id) override;
  void unregister_worker(WorkerId id) override;
  std::vector<WorkerInfo> list_workers(bool include_offline) override;

  std::vector<Task> claim(const WorkerInfo& worker, int limit) override;
  std::optional<Task> claim_task(TaskId id, const WorkerInfo& worker) override;
  std::vector<bool> complete(const std::vector<Completion>& completions) override;
  std::vector<std::pair<TaskId, std::int64_t>> canceling_tasks(WorkerId worker) override;
  int recover_lost_workers(std::chrono::milliseconds timeout) override;
  bool requeue(TaskId id, std::int64_t fence, const std::string& reason) override;
  bool decline(TaskId id, std::int64_t fence, WorkerId worker, const std::string& reason) override;
  std::unique_ptr<WakeupListener> listen(const WorkerInfo& worker) override;

  // Jobs and builds: sql_store_jobs.cpp.
  JobsLoaded load_jobs(const std::vector<JobDefinition>& jobs) override;
  std::optional<Job> get_job(const std::string& id) override;
  std::vector<Job> list_jobs() override;
  TaskId create_build(const std::string& job_id, const BuildConfig& config) override;
  std::optional<Build> get_build(TaskId id) override;
  void delete_build(TaskId id) override;
  std::vector<Build> job_builds(const BuildFilter& filter) override;
  // Task output: sql_store_records.cpp.
  std::vector<bool> write_task_output(const std::vector<TaskOutput>& outputs) override;
  std::vector<LogRecord> list_log_records(const LogFilter& filter) override;
  std::int64_t prune_log_records(const LogPruneFilter& filter) override;
  std::vector<Progress> get_progress(TaskId id) override;
  std::vector<ArtifactInfo> list_artifacts(TaskId id) override;
  Artifact read_artifact(TaskId id, const std::string& name) override;

 private:
  void require_schema();
  void require_task(TaskId id);
  bool write_one_output(const TaskOutput& output, Micros now);
  void lock_scheduling();
  // Whether a worker is online, read with a lock that holds off its
  // recovery: sent ahead (send_worker_online), read after the next query.
  Pending send_worker_online(WorkerId id);
  static bool online(const Pending& answer);
  // The claim (sql_store_claim.cpp). claim_matched: reads the rows, matches
  // them in C++ (requirements), then marks them running (start_claimed).
  // claim_plain (PostgreSQL): one statement takes plain rows (is_plain) up
  // to the first that is not; `stopped`: it met one, which claim_matched
  // must look at.
  std::vector<Task> claim_matched(const WorkerInfo& worker, int limit);
  struct PlainClaim {
    std::vector<Task> tasks;
    bool stopped = false;
  };
  PlainClaim claim_plain(const WorkerInfo& worker, int limit);
  // Marks claimed tasks running for `worker` and fills in their attempt,
  // fence and resolved $retval arguments.
  void start_claimed(std::vector<Task>& claimed, const WorkerInfo& worker, Micros now);
  void resolve_retvals(Task& task);
  // Fills in why each waiting task without a reason is still waiting
  // (computed when read, never stored: it changes with every claim).
  void explain_waiting(std::vector<Task>& tasks);
  // Dispatch (sql_store_dispatch.cpp). `known_groups`: task groups already
  // found to exist in this transaction, so each is read once.
  // `queued_resources`: where a batch collects the new tasks' resources, to
  // record them in one change (ResourceQueue::add); null: at once.
  TaskId insert_task(const TaskSpec& spec, Micros now, std::set<GroupId>& known_groups,
                     std::vector<ResourceQueue::Wants>* queued_resources = nullptr);
  // A multi-row INSERT sent ahead: its `rows` ids go to ids[offset...].
  struct BulkInsert {
    std::size_t offset;
    std::size_t rows;
    Pending ids;
  };
  // Consecutive simple specs sharing their options, in multi-row INSERTs
  // sent ahead; reserves their places in `ids`, filled from `bulk` once
  // the statements have answered.
  void insert_simple_run(std::span<const TaskSpec> run, Micros now, std::set<GroupId>& known_groups,
                         std::vector<TaskId>& ids, std::vector<BulkInsert>& bulk);
  // insert_simple_run's statements: multi-row VALUES (SQLite), or
  // INSERT ... SELECT FROM unnest of array parameters and one JSON array
  // of payloads (PostgreSQL).
  void send_values_chunks(std::span<const TaskSpec> run, const Params& shared,
                          std::vector<TaskId>& ids, std::vector<BulkInsert>& bulk);
  void send_unnest_chunks(std::span<const TaskSpec> run, const Params& shared,
                          std::vector<TaskId>& ids, std::vector<BulkInsert>& bulk);
  void require_group(GroupId group, std::set<GroupId>& known_groups);
  // on_unblock reactions (sql_store_unblock.cpp): what insert_task stores in
  // the on_unblock column (null: nothing to do), and applying it when the
  // task leaves blocked for waiting.
  static Value unblock_reactions(const TaskSpec& spec);
  void apply_unblock(TaskId id, const std::optional<std::string>& reactions, Micros now);
  // Settles blocked dependents of tasks that just reached a final state:
  // unblocks them, or skips them (and, in turn, their dependents).
  void settle_dependents(std::vector<TaskId> finished, Micros now);
  // The same, with `probes` (send_dependents_probe of a superset of
  // `finished`) already sent: which of them have dependents at all.
  void settle_dependents(std::vector<TaskId> finished, Micros now,
                         const std::vector<Pending>& probes);
  std::vector<Pending> send_dependents_probe(const std::vector<TaskId>& ids);
  // Ends one running attempt as failed, or requeues it when its retry
  // policy allows another try. Returns true if the task reached a final
  // state; its resources then go to `released`, for the caller to free with
  // the rest of its batch (ResourceQueue::release).
  bool fail_or_retry(const Task& task, const Json& error, const std::string& reason, Micros now,
                     std::vector<ResourceQueue::Wants>& released);
  TaskState cancel_locked(TaskId id, const std::string& reason, Micros now,
                          std::vector<TaskId>& finished);
  // Removes a job that left the job set, with its builds (load_jobs).
  void remove_job(const std::string& id);
  ResourceQueue queue();
  // Sends the wake-ups this transaction earned, then commits.
  void commit(Transaction& txn);

  std::unique_ptr<Session> session_;
  // Wake-ups owed by the open transaction: worker types with newly eligible
  // tasks, and topics (workers asked to cancel a task).
  std::set<std::string> became_ready_;
  std::set<std::string> wake_;
  std::mt19937_64 random_;
  bool schema_checked_ = false;
  // Whether the last claim found only plain tasks, so that the next one
  // tries claim_plain first. A hint: wrong, it costs a round trip.
  bool plain_queue_ = true;
};

}  // namespace taskengine::sql
