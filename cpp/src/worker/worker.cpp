#include "taskengine/worker.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "exec/process_group.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/store.hpp"
#include "worker/output_buffer.hpp"
#include "worker/slot.hpp"
#include "worker/worker_metadata.hpp"

namespace taskengine {

using Clock = std::chrono::steady_clock;

// Task output (log records, progress) is stored in one transaction this
// often, and at most this many records are buffered per running attempt.
constexpr std::chrono::milliseconds kOutputInterval{150};
constexpr std::size_t kMaxBufferedRecords = 20000;
using worker::KillReason;
using worker::Slot;

class Worker::Impl {
 public:
  explicit Impl(WorkerOptions options) : options_(std::move(options)) {
    if (options_.concurrency < 1) throw InvalidArgument("concurrency must be at least 1");
    if (options_.heartbeat.count() <= 0) throw InvalidArgument("heartbeat must be positive");
    if (options_.heartbeat_timeout <= options_.heartbeat)
      throw InvalidArgument("the heartbeat timeout must be longer than the heartbeat");
    if (options_.name.empty()) options_.name = worker::default_worker_name();
  }

  int run();
  void request_stop() {
    stop_requested_ = true;
    wake();
  }

 private:
  void wake() {
    {
      std::lock_guard lock(mutex_);
      woken_ = true;
    }
    changed_.notify_all();
  }
  void register_self();
  void heartbeat_loop();
  void listen_loop(WakeupListener& listener);
  void flush_completions();
  void handle_cancels();
  void enforce_timeouts();
  void claim();
  void shutdown();
  int busy_slots() const;

  WorkerOptions options_;
  std::unique_ptr<Store> store_;
  WorkerInfo info_;
  // Declared before the slots, so it outlives them.
  std::unique_ptr<worker::OutputBuffer> output_;
  std::vector<std::unique_ptr<Slot>> slots_;

  std::mutex mutex_;
  std::condition_variable changed_;
  bool woken_ = false;
  std::deque<Completion> completions_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> threads_stop_{false};
  std::atomic<bool> lost_{false};
};

void Worker::Impl::register_self() {
  info_.name = options_.name;
  info_.worker_type = options_.worker_type;
  info_.hostname = worker::host_name();
  info_.pid = ::getpid();
  info_.metadata = worker::collect_metadata(options_);
  info_.id = store_->register_worker(info_);
}

int Worker::Impl::busy_slots() const {
  int busy = 0;
  for (const auto& slot : slots_) busy += slot->busy() ? 1 : 0;
  return busy;
}

void Worker::Impl::heartbeat_loop() {
  // Its own connection and thread: a worker busy running tasks never misses
  // a beat, and a slow store never stalls the claim loop.
  std::unique_ptr<Store> store;
  while (!threads_stop_) {
    try {
      if (!store) store = open_store(options_.url);
      if (!store->heartbeat(info_.id)) {
        spdlog::error("worker {} was declared lost by its peers; its tasks were handed on",
                      info_.name);
        lost_ = true;
        wake();
      }
      int recovered = store->recover_lost_workers(options_.heartbeat_timeout);
      if (recovered) spdlog::warn("recovered {} task(s) of lost workers", recovered);
    } catch (const std::exception& e) {
      spdlog::warn("heartbeat failed: {}", e.what());
      store.reset();  // reconnect next time
    }
    exec::reap_strays();
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, options_.heartbeat, [this] { return threads_stop_.load(); });
  }
}

void Worker::Impl::listen_loop(WakeupListener& listener) {
  while (!threads_stop_) {
    try {
      if (listener.wait(options_.poll_interval)) wake();
    } catch (const std::exception& e) {
      spdlog::warn("wake-up channel failed ({}); falling back to polling", e.what());
      std::this_thread::sleep_for(options_.poll_interval);
    }
  }
}

void Worker::Impl::flush_completions() {
  std::vector<Completion> batch;
  {
    std::lock_guard lock(mutex_);
    batch.assign(std::make_move_iterator(completions_.begin()),
                 std::make_move_iterator(completions_.end()));
    completions_.clear();
  }
  if (batch.empty()) return;
  // A task's output is stored before its result, while its attempt still
  // holds the fence.
  output_->flush();
  std::vector<Completion> finished;
  for (auto& c : batch) {
    if (c.state == TaskState::Waiting) {
      // Interrupted by shutdown: hand the task back for another worker.
      if (!lost_) store_->requeue(c.task_id, c.fence, "worker stopped before the task finished");
    } else {
      finished.push_back(std::move(c));
    }
  }
  auto applied = store_->complete(finished);
  for (std::size_t i = 0; i < applied.size(); ++i)
    if (!applied[i])
      spdlog::warn("result of task {} discarded: a newer attempt owns it", finished[i].task_id);
}

void Worker::Impl::handle_cancels() {
  for (const auto& [task_id, fence] : store_->canceling_tasks(info_.id)) {
    for (auto& slot : slots_)
      if (slot->task_id() == task_id && slot->fence() == fence)
        slot->kill(KillReason::Canceled, options_.kill_grace);
  }
}

void Worker::Impl::enforce_timeouts() {
  auto now = Clock::now();
  for (auto& slot : slots_) {
    auto deadline = slot->deadline();
    if (deadline && *deadline <= now) slot->kill(KillReason::Timeout, options_.kill_grace);
  }
}

void Worker::Impl::claim() {
  int free_slots = options_.concurrency - busy_slots();
  if (free_slots <= 0) return;
  auto tasks = store_->claim(info_, free_slots);
  for (auto& task : tasks) {
    for (auto& slot : slots_) {
      if (!slot->busy()) {
        slot->start(std::move(task));
        break;
      }
    }
  }
}

void Worker::Impl::shutdown() {
  spdlog::info("worker {} stopping: waiting up to {} ms for {} running task(s)", info_.name,
               options_.shutdown_grace.count(), busy_slots());
  auto deadline = Clock::now() + options_.shutdown_grace;
  while (busy_slots() > 0 && Clock::now() < deadline) {
    flush_completions();
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::milliseconds(50));
  }
  for (auto& slot : slots_) slot->kill(KillReason::Shutdown, options_.kill_grace);
  while (busy_slots() > 0) {
    flush_completions();
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::milliseconds(50));
  }
  flush_completions();
}

int Worker::Impl::run() {
  store_ = open_store(options_.url);
  register_self();
  spdlog::info("worker {} (id {}, type {}) started on {} with {} slot(s)", info_.name, info_.id,
               info_.worker_type, store_->backend(), options_.concurrency);

  std::string python = worker::resolve_python(options_.python);
  std::map<std::string, std::string> env = {{"TASKENGINE_URL", options_.url},
                                            {"TASKENGINE_WORKER", info_.name}};
  output_ =
      std::make_unique<worker::OutputBuffer>(options_.url, kOutputInterval, kMaxBufferedRecords);
  for (int i = 0; i < options_.concurrency; ++i)
    slots_.push_back(
        std::make_unique<Slot>(i, python, options_.imports, env, *output_, [this](Completion c) {
          {
            std::lock_guard lock(mutex_);
            completions_.push_back(std::move(c));
          }
          changed_.notify_all();
        }));

  auto listener = store_->listen(info_);
  std::thread heartbeat([this] { heartbeat_loop(); });
  std::thread listening([this, &listener] { listen_loop(*listener); });

  int exit_code = 0;
  try {
    bool check_cancels = true;
    while (!stop_requested_) {
      flush_completions();
      if (lost_) {
        // Our attempts now belong to others: stop them and start afresh.
        for (auto& slot : slots_) slot->kill(KillReason::Lost, options_.kill_grace);
        while (busy_slots() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        flush_completions();
        lost_ = false;
        register_self();
        spdlog::info("worker {} re-registered as id {}", info_.name, info_.id);
      }
      if (check_cancels) handle_cancels();
      enforce_timeouts();
      claim();

      std::unique_lock lock(mutex_);
      auto timeout = options_.poll_interval;
      for (auto& slot : slots_) {
        auto deadline = slot->deadline();
        if (deadline) {
          auto left =
              std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
          timeout = std::max(std::chrono::milliseconds(1), std::min(timeout, left));
        }
      }
      bool woke = changed_.wait_for(
          lock, timeout, [this] { return woken_ || !completions_.empty() || stop_requested_; });
      // Cancel checks cost a query: run them on a wake-up or a poll, not
      // after every completion.
      check_cancels = woken_ || !woke;
      woken_ = false;
    }
    shutdown();
  } catch (const std::exception& e) {
    spdlog::critical("worker {} failed: {}", info_.name, e.what());
    exit_code = 1;
    for (auto& slot : slots_) slot->kill(KillReason::Shutdown, options_.kill_grace);
  }

  threads_stop_ = true;
  listener->interrupt();
  changed_.notify_all();
  heartbeat.join();
  listening.join();
  slots_.clear();
  output_.reset();  // stores what is left
  try {
    store_->unregister_worker(info_.id);
  } catch (const std::exception& e) {
    spdlog::warn("could not unregister: {}", e.what());
  }
  spdlog::info("worker {} stopped", info_.name);
  return exit_code;
}

Worker::Worker(WorkerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Worker::~Worker() = default;
int Worker::run() { return impl_->run(); }
void Worker::request_stop() { impl_->request_stop(); }

}  // namespace taskengine
