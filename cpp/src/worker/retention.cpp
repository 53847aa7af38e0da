#include "worker/retention.hpp"

#include <spdlog/spdlog.h>

#include <memory>

#include "taskengine/store.hpp"
#include "taskengine/time.hpp"

namespace taskengine::worker {
namespace {

// Tasks per transaction, and the pause between transactions: each batch
// holds the scheduling lock (PostgreSQL) or the write lock (SQLite) for a
// few milliseconds, and completions get their turn in between.
constexpr int kBatch = 200;
constexpr std::chrono::milliseconds kPause{5};

}  // namespace

RetentionSweeper::RetentionSweeper(std::string url, std::chrono::milliseconds retention,
                                   std::chrono::milliseconds interval)
    : url_(std::move(url)), retention_(retention), interval_(interval) {
  thread_ = std::thread([this] { loop(); });
}

RetentionSweeper::~RetentionSweeper() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_.notify_all();
  thread_.join();
}

bool RetentionSweeper::sleep_for(std::chrono::milliseconds duration) {
  std::unique_lock lock(mutex_);
  return !stop_.wait_for(lock, duration, [this] { return stopping_; });
}

void RetentionSweeper::loop() {
  std::unique_ptr<Store> store;
  while (sleep_for(interval_)) {
    try {
      if (!store) store = open_store(url_);
      TaskPruneFilter filter;
      filter.finished_before =
          now_micros() - std::chrono::duration_cast<std::chrono::microseconds>(retention_).count();
      filter.limit = kBatch;
      std::int64_t total = 0;
      for (;;) {
        std::int64_t deleted = store->prune_tasks(filter);
        total += deleted;
        if (deleted < kBatch || !sleep_for(kPause)) break;
      }
      if (total > 0) spdlog::info("retention: deleted {} finished task(s)", total);
    } catch (const std::exception& e) {
      spdlog::warn("retention: pruning finished tasks failed: {}", e.what());
      store.reset();  // reconnect next time
    }
  }
}

}  // namespace taskengine::worker
