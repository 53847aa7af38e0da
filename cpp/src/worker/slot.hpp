#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "exec/python_executor.hpp"
#include "taskengine/task.hpp"
#include "worker/output_buffer.hpp"

namespace taskengine::worker {

// Why the supervisor ended an attempt early.
enum class KillReason { None, Canceled, Timeout, Shutdown, Lost };

// One executor slot: a thread that runs one task at a time, with its own
// long-lived Python executor process. The supervisor hands it a task and
// may kill the task's process group from outside.
class Slot {
 public:
  // Called on the slot's thread when an attempt ended, with how long it ran
  // (negative when that included starting a Python executor, which says
  // nothing about the task). The slot still reports busy() meanwhile, so no
  // one else starts a task on it, but the callback itself may start() the
  // next one: the slot is between tasks.
  using Done = std::function<void(Completion, std::chrono::microseconds ran)>;
  // Called on the slot's thread right after it became idle (busy() is
  // false), so that the supervisor can hand it a task it queued while the
  // slot was finishing: a start() decided in between saw the slot busy.
  using Idle = std::function<void()>;

  // `output` (which must outlive the slot) receives what tasks send besides
  // their result: log records, progress, artifacts.
  Slot(int index, std::string python, std::vector<std::string> imports,
       std::map<std::string, std::string> env, OutputBuffer& output, Done done, Idle idle);
  ~Slot();
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

  bool busy() const { return busy_.load(); }
  // Starts `task` on the slot's thread. The slot must be idle.
  void start(Task task);
  // Ends the running task's process group (SIGTERM, then SIGKILL after
  // `grace`) on a helper thread; the slot reports the attempt as `reason`
  // says. A no-op when idle or already being killed.
  void kill(KillReason reason, std::chrono::milliseconds grace);

  // The running task, for the supervisor's bookkeeping.
  std::optional<TaskId> task_id() const;
  std::int64_t fence() const { return fence_.load(); }
  std::optional<std::chrono::steady_clock::time_point> deadline() const;
  // When the running task was handed to the slot; nullopt when idle.
  std::optional<std::chrono::steady_clock::time_point> started() const;

 private:
  void loop();
  Completion execute(const Task& task);
  Completion run_command_task(const Task& task);
  Completion run_function_task(const Task& task);
  Completion run_task_class_task(const Task& task);

  int index_;
  OutputBuffer& output_;
  Done done_;
  Idle idle_;
  bool prestart_;
  exec::PythonExecutor python_;
  std::atomic<bool> busy_{false};
  std::atomic<std::int64_t> fence_{0};
  std::atomic<pid_t> pgid_{0};
  std::atomic<KillReason> kill_reason_{KillReason::None};

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::optional<Task> pending_;
  std::optional<Task> current_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::optional<std::chrono::steady_clock::time_point> started_;
  bool stopping_ = false;
  std::thread killer_;
  std::thread thread_;
};

}  // namespace taskengine::worker
