#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace taskengine::worker {

// The worker's retention policy: on its own thread and store connection,
// every `interval` it deletes the tasks that finished more than `retention`
// ago (Store::prune_tasks; builds of jobs are kept), in small transactions
// with pauses between them, so that the claim loop and the heartbeat never
// wait long behind it. Errors are logged and the sweep is tried again at the
// next interval.
class RetentionSweeper {
 public:
  RetentionSweeper(std::string url, std::chrono::milliseconds retention,
                   std::chrono::milliseconds interval);
  ~RetentionSweeper();  // stops the thread; a sweep in progress ends after its batch
  RetentionSweeper(const RetentionSweeper&) = delete;
  RetentionSweeper& operator=(const RetentionSweeper&) = delete;

 private:
  void loop();
  bool sleep_for(std::chrono::milliseconds duration);  // false once stopping

  std::string url_;
  std::chrono::milliseconds retention_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable stop_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace taskengine::worker
