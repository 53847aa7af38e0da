#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "taskengine/json.hpp"

namespace taskengine {

struct WorkerOptions {
  std::string url;
  std::string name;  // default: <hostname>-<pid>
  std::string worker_type = "worker";
  int concurrency = 2;               // executor slots
  std::vector<std::string> imports;  // Python modules each executor imports once
  std::string python;  // default: $TASKENGINE_PYTHON, python3 beside the binary, python3
  std::chrono::milliseconds heartbeat{2000};
  // A worker silent for this long is declared lost by its peers.
  std::chrono::milliseconds heartbeat_timeout{10000};
  // Fallback poll when no wake-up arrives (a lost wake-up costs at most this).
  std::chrono::milliseconds poll_interval{1000};
  // Cancel and timeout: SIGTERM, then SIGKILL after this.
  std::chrono::milliseconds kill_grace{3000};
  // SIGTERM on the worker: running tasks get this long to finish.
  std::chrono::milliseconds shutdown_grace{30000};
  // Short tasks are claimed ahead, in batches: the worker holds up to about
  // this much estimated work per slot in a local queue (0: claim only for
  // idle slots). Tasks that run longer than this are never held.
  std::chrono::milliseconds prefetch_window{20};
  // Results are stored in batches: one transaction at most this often while
  // tasks end faster than that (0: one per ending task). An ending task
  // after a quiet spell is stored at once, so this adds no delay when idle.
  std::chrono::milliseconds completion_window{1};
  // Retention: finished tasks older than this are deleted (builds of jobs
  // are kept); 0 keeps every task. Checked every retention_interval.
  std::chrono::milliseconds retention{std::chrono::hours(24 * 7)};
  std::chrono::milliseconds retention_interval{60000};
  Json metadata = Json::object();  // merged over the system metadata
};

// The native worker: registers, heartbeats, recovers tasks of lost workers,
// claims what it may run, supervises it in process groups, writes results,
// and sleeps on the store's wake-up channel in between.
class Worker {
 public:
  explicit Worker(WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs until request_stop(); returns the process exit code (0 on a clean
  // stop). Throws for a bad URL or an unreachable store at start.
  int run();
  // Async-signal-unsafe; call from a normal thread (main() forwards signals).
  void request_stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskengine
