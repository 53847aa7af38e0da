#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "taskengine/json.hpp"
#include "taskengine/store.hpp"
#include "taskengine/task_output.hpp"

namespace taskengine::worker {

// Collects what running tasks send besides their result (log records,
// progress, artifacts) and writes it in batches: one transaction per flush
// for every task, every `interval`, and on demand before completions are
// written, so a finished task's output is always stored before its result.
// Each attempt's output is fenced by its token, so a stale attempt's is
// dropped by the store. Memory is bounded: past `max_records` buffered
// records per attempt new ones are dropped and counted, and the count is
// stored as a warning record with the next flush.
class OutputBuffer {
 public:
  OutputBuffer(std::string url, std::chrono::milliseconds interval, std::size_t max_records);
  ~OutputBuffer();  // writes what is left, then stops
  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;

  // Takes one executor message about attempt (task, fence): {"records":
  // [...], "progress": [...], "artifacts": [{"name", "path", "sha256"}]}.
  // An artifact's file (a copy the executor staged for us) is read and
  // removed here. Malformed parts are dropped with a warning record.
  // Thread-safe.
  void add(TaskId task, std::int64_t fence, const Json& message);

  // Writes everything buffered so far, in one transaction. Thread-safe.
  void flush();

  // How many write transactions flush() has made (for tests and logs).
  std::uint64_t transactions() const { return transactions_.load(); }

 private:
  struct Pending {
    TaskOutput output;
    std::map<std::string, Progress> progress;  // the latest report per group
    std::size_t dropped = 0;
    std::string problems;  // why parts of messages were dropped
  };
  using Key = std::pair<TaskId, std::int64_t>;

  void loop();
  void add_artifact(Pending& pending, const Json& artifact);

  std::string url_;
  std::chrono::milliseconds interval_;
  std::size_t max_records_;

  std::mutex mutex_;  // guards pending_ and stop_
  std::condition_variable wake_;
  std::map<Key, Pending> pending_;
  bool stop_ = false;

  std::mutex write_mutex_;  // one flush at a time; guards store_
  std::unique_ptr<Store> store_;
  std::atomic<std::uint64_t> transactions_{0};
  std::thread thread_;
};

}  // namespace taskengine::worker
