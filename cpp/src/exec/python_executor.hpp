#pragma once

// A long-lived Python executor process (one per worker slot): it imports the
// user's modules once and runs many function tasks, spoken to over pipes with
// one JSON object per line.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "taskengine/json.hpp"

namespace taskengine::exec {

// Blocks SIGPIPE in the calling thread for good, so that writes to
// executors on it skip the per-write signal-mask dance (a closed pipe still
// returns EPIPE). For threads the worker owns; their children reset the mask.
void block_sigpipe_in_this_thread();

struct PythonOutcome {
  bool ok = false;
  Json result;  // when ok
  Json error;   // when not ok: {"type", "message", "traceback": [...]}
};

// Protocol (the Python side is taskengine._executor):
//   started as `python_exe -m taskengine._executor [--import MOD]...` in its
//   own process group; stdin carries requests, stdout responses, stderr is
//   inherited. First line out: {"ready": true, "pid": N} or
//   {"ready": false, "error": {...}} when an --import failed.
//   request:  {"id": 7, "attempt": 1, "function": "mod:fn", "args": [...], "kwargs": {...}}
//   response: {"id": 7, "ok": true, "result": ...} | {"id": 7, "ok": false, "error": {...}}
//   Any other line (log, progress) goes to on_message.
//
// run() and stop() are called by one thread at a time (the slot's); pgid()
// may be read from any thread, e.g. to terminate_group() on cancel.
class PythonExecutor {
 public:
  PythonExecutor(std::string python_exe, std::vector<std::string> imports,
                 std::map<std::string, std::string> extra_env);
  ~PythonExecutor();  // stop()
  PythonExecutor(const PythonExecutor&) = delete;
  PythonExecutor& operator=(const PythonExecutor&) = delete;

  // Starts the process if needed, calls on_started(pgid), sends `request`
  // (an object with an integer "id") and reads until its response. If the
  // process dies meanwhile: ok=false, error type "ExecutorLost" saying how it
  // ended, and the next run() starts a fresh process. A failed --import gives
  // that error (e.g. "ImportError"); a python_exe that cannot be started gives
  // "ExecutorStartError". Throws InvalidArgument for a request without an id.
  PythonOutcome run(const Json& request, const std::function<void(pid_t)>& on_started,
                    const std::function<void(const Json&)>& on_message);
  // The same for a request already rendered as one JSON line (ending in '\n')
  // whose "id" is `id`: the slot renders its requests without building a Json
  // of them. Throws InvalidArgument for a line without its '\n'.
  PythonOutcome run(std::int64_t id, std::string_view request_line,
                    const std::function<void(pid_t)>& on_started,
                    const std::function<void(const Json&)>& on_message);

  // Closes stdin, waits up to 2 s for the process to exit, then
  // terminate_group(); leftovers in its group are killed.
  void stop();

  // Starts the process now, so the first task does not pay for the
  // interpreter's start and imports. Errors surface on the first run().
  void prestart();

  pid_t pgid() const { return pgid_.load(); }  // 0 when not running
  // Whether a started process has said it is ready: a run() now pays for
  // no interpreter start or imports.
  bool warm() const;

 private:
  struct Process;

  void start();
  void discard_if_exited();
  PythonOutcome lost(const std::string& while_doing);
  void kill_and_reap();

  std::string python_exe_;
  std::vector<std::string> imports_;
  std::map<std::string, std::string> extra_env_;
  std::unique_ptr<Process> process_;
  std::atomic<pid_t> pgid_{0};
};

}  // namespace taskengine::exec
