#include "worker/slot.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>

#include "exec/command_executor.hpp"
#include "exec/process_group.hpp"
#include "exec/python_executor.hpp"
#include "worker/task_class_run.hpp"

namespace taskengine::worker {
namespace {

Json error_json(const std::string& type, const std::string& message) {
  return {{"type", type}, {"message", message}, {"traceback", Json::array()}};
}

// The executor's request for a function task, rendered piece by piece: a Json
// object of it would copy the payload's args and kwargs once per task.
std::string function_request_line(const Task& task) {
  static const Json no_args = Json::array();
  static const Json no_kwargs = Json::object();
  auto field = [&task](const char* key, const Json& fallback) -> const Json& {
    auto it = task.payload.find(key);  // end() when the payload is not an object
    return it != task.payload.end() ? *it : fallback;
  };
  std::string line = "{\"id\":" + std::to_string(task.id) +
                     ",\"attempt\":" + std::to_string(task.attempt) + ",\"function\":";
  auto append = [&line](const Json& value) {
    line += value.dump(-1, ' ', false, Json::error_handler_t::replace);
  };
  append(Json(task.payload.value("function", task.name)));
  line += ",\"args\":";
  append(field("args", no_args));
  line += ",\"kwargs\":";
  append(field("kwargs", no_kwargs));
  line += "}\n";
  return line;
}

}  // namespace

Slot::Slot(int index, std::string python, std::vector<std::string> imports,
           std::map<std::string, std::string> env, OutputBuffer& output, Done done, Idle idle)
    : index_(index),
      output_(output),
      done_(std::move(done)),
      idle_(std::move(idle)),
      // A worker told what to import will run Python: start its executor
      // now rather than on the first task.
      prestart_(!imports.empty()),
      python_(std::move(python), std::move(imports), std::move(env)) {
  thread_ = std::thread([this] { loop(); });
}

Slot::~Slot() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (killer_.joinable()) killer_.join();
  python_.stop();
}

void Slot::start(Task task) {
  {
    std::lock_guard lock(mutex_);
    busy_ = true;
    fence_ = task.fence;
    kill_reason_ = KillReason::None;
    deadline_.reset();
    started_ = std::chrono::steady_clock::now();
    if (task.timeout_seconds)
      deadline_ = *started_ +
                  std::chrono::microseconds(static_cast<std::int64_t>(*task.timeout_seconds * 1e6));
    current_ = task;
    pending_ = std::move(task);
  }
  wake_.notify_all();
}

std::optional<std::chrono::steady_clock::time_point> Slot::started() const {
  std::lock_guard lock(mutex_);
  if (!current_) return std::nullopt;
  return started_;
}

std::optional<TaskId> Slot::task_id() const {
  std::lock_guard lock(mutex_);
  if (!current_) return std::nullopt;
  return current_->id;
}

std::optional<std::chrono::steady_clock::time_point> Slot::deadline() const {
  std::lock_guard lock(mutex_);
  return deadline_;
}

void Slot::kill(KillReason reason, std::chrono::milliseconds grace) {
  std::lock_guard lock(mutex_);
  if (!current_ || kill_reason_ != KillReason::None) return;
  kill_reason_ = reason;
  deadline_.reset();
  if (killer_.joinable()) killer_.join();  // a previous task's, long finished
  // The group number is read on the killer thread: a task that has not
  // spawned yet is caught by kill_reason_ before it runs.
  killer_ = std::thread([this, grace] {
    pid_t pgid = pgid_.load();
    if (pgid > 1) {
      try {
        exec::terminate_group(pgid, grace);
      } catch (const std::exception& e) {
        spdlog::warn("slot {}: could not terminate process group {}: {}", index_, pgid, e.what());
      }
    }
  });
}

void Slot::loop() {
  exec::block_sigpipe_in_this_thread();
  if (prestart_) python_.prestart();
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || pending_.has_value(); });
      if (stopping_) return;
      task = std::move(*pending_);
      pending_.reset();
    }
    auto started = std::chrono::steady_clock::now();
    bool cold = task.kind != TaskKind::Command && !python_.warm();
    Completion completion;
    try {
      completion = execute(task);
    } catch (const std::exception& e) {
      completion = {task.id,
                    task.fence,
                    TaskState::Failed,
                    nullptr,
                    error_json("WorkerError", e.what()),
                    std::string("worker error")};
    }
    // A killed attempt ends as the supervisor said, whatever the process
    // reported while dying.
    switch (kill_reason_.load()) {
      case KillReason::Canceled:
        completion.state = TaskState::Canceled;
        completion.reason = "canceled";
        break;
      case KillReason::Timeout:
        completion.state = TaskState::Failed;
        completion.result = nullptr;
        completion.error =
            error_json("Timeout", "task exceeded its timeout of " +
                                      std::to_string(*task.timeout_seconds) + " s and was killed");
        completion.reason = "timeout";
        break;
      default:
        break;
    }
    {
      std::lock_guard lock(mutex_);
      current_.reset();
      deadline_.reset();
      pgid_ = 0;
    }
    if (killer_.joinable()) {
      std::lock_guard lock(mutex_);
      killer_.join();
    }
    KillReason reason = kill_reason_.load();
    if (reason == KillReason::Shutdown || reason == KillReason::Lost) {
      completion.state = TaskState::Waiting;  // the supervisor requeues or drops it
    }
    auto ran = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    // Busy until the attempt is reported: a supervisor that sees every slot
    // idle (shutdown) has every completion in hand. The callback may hand
    // this slot its next task; then it stays busy.
    done_(std::move(completion), cold ? std::chrono::microseconds(-1) : ran);
    bool idle;
    {
      std::lock_guard lock(mutex_);
      idle = !pending_;
      if (idle) busy_ = false;
    }
    if (idle && idle_) idle_();
  }
}

Completion Slot::execute(const Task& task) {
  if (kill_reason_ != KillReason::None)
    return {task.id, task.fence, TaskState::Canceled, nullptr, nullptr, std::nullopt};
  switch (task.kind) {
    case TaskKind::Command:
      return run_command_task(task);
    case TaskKind::Function:
      return run_function_task(task);
    case TaskKind::TaskClass:
      return run_task_class_task(task);
  }
  return {task.id,
          task.fence,
          TaskState::Failed,
          nullptr,
          error_json("UnsupportedTaskKind", "unknown task kind of task '" + task.name + "'"),
          std::string("unsupported task kind")};
}

Completion Slot::run_task_class_task(const Task& task) {
  auto on_started = [this](pid_t pgid) {
    pgid_ = pgid;
    if (kill_reason_ != KillReason::None) ::kill(-pgid, SIGKILL);
  };
  // Task classes run in the same executor: their records are stored too.
  auto on_message = [this, &task](const Json& message) {
    if (message.value("id", Json()) == Json(task.id)) output_.add(task.id, task.fence, message);
  };
  exec::PythonOutcome outcome = python_.run(task_class_request(task), on_started, on_message);
  return task_class_completion(task, outcome);
}

Completion Slot::run_command_task(const Task& task) {
  auto on_started = [this](pid_t pgid) {
    pgid_ = pgid;
    // A kill requested before the spawn finds the group now.
    if (kill_reason_ != KillReason::None) ::kill(-pgid, SIGKILL);
  };
  exec::CommandResult outcome = exec::run_command(task.payload, on_started);
  Json result = {{"returncode", outcome.returncode}, {"output", outcome.output}};
  if (outcome.returncode == 0)
    return {task.id, task.fence, TaskState::Completed, result, nullptr, std::nullopt};
  std::string how = outcome.term_signal
                        ? "was killed by signal " + std::to_string(outcome.term_signal)
                        : "exited with code " + std::to_string(outcome.returncode);
  Json error = error_json("CommandFailed", "command " + how);
  error["returncode"] = outcome.returncode;
  error["output"] = outcome.output;
  return {task.id, task.fence, TaskState::Failed, result, error, "command " + how};
}

Completion Slot::run_function_task(const Task& task) {
  const std::string request = function_request_line(task);
  auto on_started = [this](pid_t pgid) {
    pgid_ = pgid;
    if (kill_reason_ != KillReason::None) ::kill(-pgid, SIGKILL);
  };
  // Log records, progress and artifacts: buffered, stored in batches.
  auto on_message = [this, &task](const Json& message) {
    if (message.value("id", Json()) == Json(task.id)) output_.add(task.id, task.fence, message);
  };
  exec::PythonOutcome outcome = python_.run(task.id, request, on_started, on_message);
  if (outcome.ok)
    return {task.id, task.fence, TaskState::Completed, outcome.result, nullptr, std::nullopt};
  std::string type = outcome.error.value("type", "Error");
  return {task.id, task.fence,    TaskState::Failed,
          nullptr, outcome.error, "raised " + type + ": " + outcome.error.value("message", "")};
}

}  // namespace taskengine::worker
