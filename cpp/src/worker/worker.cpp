#include "taskengine/worker.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "exec/process_group.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/store.hpp"
#include "worker/output_buffer.hpp"
#include "worker/prefetch.hpp"
#include "worker/retention.hpp"
#include "worker/slot.hpp"
#include "worker/task_class_run.hpp"
#include "worker/worker_metadata.hpp"

namespace taskengine {

using Clock = std::chrono::steady_clock;

// Task output (log records, progress) is stored in one transaction this
// often, and at most this many records are buffered per running attempt.
constexpr std::chrono::milliseconds kOutputInterval{150};
constexpr std::size_t kMaxBufferedRecords = 20000;
// Results wait at most completion_window, and at most this many of them:
// under load one transaction stores many; after a quiet spell the first
// ending task is stored at once.
constexpr std::size_t kMaxCompletionBatch = 512;
using worker::KillReason;
using worker::Slot;

class Worker::Impl {
 public:
  explicit Impl(WorkerOptions options)
      : options_(std::move(options)), prefetch_(options_.concurrency, options_.prefetch_window) {
    if (options_.concurrency < 1) throw InvalidArgument("concurrency must be at least 1");
    if (options_.heartbeat.count() <= 0) throw InvalidArgument("heartbeat must be positive");
    if (options_.heartbeat_timeout <= options_.heartbeat)
      throw InvalidArgument("the heartbeat timeout must be longer than the heartbeat");
    if (options_.retention.count() < 0) throw InvalidArgument("retention must not be negative");
    if (options_.retention.count() > 0 && options_.retention_interval.count() <= 0)
      throw InvalidArgument("the retention interval must be positive");
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
  bool completions_due(Clock::time_point now) const;
  void handle_cancels();
  void enforce_timeouts();
  void claim();
  void start_queued();
  void release_queued(bool requeue);
  int prefetch_target() const;
  void release_excess();
  void on_done(std::size_t slot, Completion completion, std::chrono::microseconds ran);
  void on_idle();
  void shutdown();
  int busy_slots() const;

  WorkerOptions options_;
  std::unique_ptr<Store> store_;
  WorkerInfo info_;
  Json task_class_metadata_;  // analyze_worker_all_tasks, asked once at start
  // Declared before the slots, so it outlives them.
  std::unique_ptr<worker::OutputBuffer> output_;
  std::vector<std::unique_ptr<Slot>> slots_;

  std::mutex mutex_;
  std::condition_variable changed_;
  // The heartbeat thread's own: it sleeps through the many wake-ups of the
  // main loop (one per batch of ending tasks).
  std::condition_variable heartbeat_stop_;
  bool woken_ = false;
  std::deque<Completion> completions_;
  // When results were last stored (main loop only), and whether a slot found
  // the local queue low enough to want a claim (guarded by mutex_).
  Clock::time_point last_flush_{};
  bool claim_wanted_ = false;
  std::size_t claim_below_ = 1;  // queue length under which slots ask for a claim
  // Claimed tasks waiting for a slot (see PrefetchPolicy); guarded by mutex_.
  std::deque<Task> queued_;
  worker::PrefetchPolicy prefetch_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> threads_stop_{false};
  std::atomic<bool> lost_{false};
};

void Worker::Impl::register_self() {
  info_.name = options_.name;
  info_.worker_type = options_.worker_type;
  info_.hostname = worker::host_name();
  info_.pid = ::getpid();
  if (task_class_metadata_.is_null())
    task_class_metadata_ = worker::analyze_task_classes(
        worker::resolve_python(options_.python), options_.imports,
        {{"TASKENGINE_URL", options_.url}, {"TASKENGINE_WORKER", options_.name}});
  info_.metadata = worker::collect_metadata(options_);
  // The worker's own options win over what the task classes report.
  for (const auto& [key, value] : task_class_metadata_.items())
    if (!info_.metadata.contains(key)) info_.metadata[key] = value;
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
    heartbeat_stop_.wait_for(lock, options_.heartbeat, [this] { return threads_stop_.load(); });
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

bool Worker::Impl::completions_due(Clock::time_point now) const {
  return !completions_.empty() && (completions_.size() >= kMaxCompletionBatch ||
                                   now - last_flush_ >= options_.completion_window);
}

void Worker::Impl::flush_completions() {
  std::vector<Completion> batch;
  {
    std::lock_guard lock(mutex_);
    last_flush_ = Clock::now();
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
    if (c.declined) {
      // Its task class's can_run_on refused this worker: leave it to others.
      if (!lost_) store_->decline(c.task_id, c.fence, info_.id, c.reason.value_or("declined"));
    } else if (c.state == TaskState::Waiting) {
      // Handed back unstarted or interrupted by shutdown: requeued in the
      // batch's transaction, for another worker. A lost worker's tasks
      // belong to others already.
      if (lost_) continue;
      if (!c.reason) c.reason = "worker stopped before the task finished";
      finished.push_back(std::move(c));
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
  auto canceling = store_->canceling_tasks(info_.id);
  if (canceling.empty()) return;
  std::set<std::pair<TaskId, std::int64_t>> wanted(canceling.begin(), canceling.end());
  {
    // Tasks still waiting for a slot never started: they just end
    // canceled. Taken out first, so no slot starts one of them meanwhile.
    std::lock_guard lock(mutex_);
    for (auto it = queued_.begin(); it != queued_.end();) {
      if (wanted.count({it->id, it->fence})) {
        completions_.push_back(
            {it->id, it->fence, TaskState::Canceled, nullptr, nullptr, std::string("canceled")});
        it = queued_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& slot : slots_) {
    auto id = slot->task_id();
    if (id && wanted.count({*id, slot->fence()}))
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
  int wanted;
  {
    std::lock_guard lock(mutex_);
    int queued = static_cast<int>(queued_.size());
    int idle = options_.concurrency - busy_slots();
    int target = prefetch_target();
    // Slots ask for a claim (on_done) exactly when this would claim.
    claim_wanted_ = false;
    claim_below_ = static_cast<std::size_t>(target / 2 + 1);
    // Claim when a slot would otherwise idle, or when the local queue ran
    // down to half its target: claims come in batches, not one by one.
    if (idle <= queued && queued > target / 2) return;
    wanted = idle + target - queued;
  }
  if (wanted <= 0) return;
  auto tasks = store_->claim(info_, wanted);
  if (tasks.empty()) return;
  std::lock_guard lock(mutex_);
  for (auto& task : tasks) queued_.push_back(std::move(task));
  start_queued();
}

void Worker::Impl::start_queued() {
  // Called with mutex_ held: slots are handed tasks only under it, so a
  // slot finishing on its own thread and the claim loop never both start it.
  for (auto& slot : slots_) {
    if (queued_.empty()) return;
    if (!slot->busy()) {
      slot->start(std::move(queued_.front()));
      queued_.pop_front();
    }
  }
}

void Worker::Impl::on_done(std::size_t index, Completion completion,
                           std::chrono::microseconds ran) {
  bool wake_main;
  {
    std::lock_guard lock(mutex_);
    prefetch_.record(ran);
    completions_.push_back(std::move(completion));
    // The main loop wakes for the first result of a batch (to time the
    // batch), a full batch, or a local queue running low; not per task.
    wake_main = completions_.size() == 1 || completions_.size() >= kMaxCompletionBatch;
    // The slot takes its next task right here, without a trip through the
    // claim loop; stopping or lost workers start nothing new.
    if (!queued_.empty() && !stop_requested_ && !lost_) {
      slots_[index]->start(std::move(queued_.front()));
      queued_.pop_front();
    }
    if (queued_.size() < claim_below_ && !claim_wanted_) {
      claim_wanted_ = true;
      wake_main = true;
    }
  }
  if (wake_main) changed_.notify_all();
}

// A slot went idle: hand it a task queued while it was finishing. Without
// this, a claim that queued tasks while the slot's on_done had already run
// (the slot still busy) left them there with the slot idle, and claim()
// returns early while the local queue is full enough, so nothing started
// them until the worker stopped: a task stuck "running" (seen as a flaky
// end-to-end test under load).
void Worker::Impl::on_idle() {
  std::lock_guard lock(mutex_);
  if (!stop_requested_ && !lost_) start_queued();
}

// The prefetch target given the slots' current runs; called with mutex_ held.
int Worker::Impl::prefetch_target() const {
  auto now = Clock::now();
  int long_running = 0;
  for (const auto& slot : slots_)
    if (auto started = slot->started(); started && now - *started > prefetch_.window())
      ++long_running;
  return prefetch_.target(long_running);
}

// Tasks held beyond the current target go back to the store (the work got
// longer than the estimate): other workers may run them now. They never
// started, so no attempt counts.
void Worker::Impl::release_excess() {
  std::lock_guard lock(mutex_);
  auto target = static_cast<std::size_t>(prefetch_target());
  while (queued_.size() > target) {
    const Task& task = queued_.back();
    completions_.push_back({task.id, task.fence, TaskState::Waiting, nullptr, nullptr,
                            "handed back unstarted: the worker's slots stayed busy"});
    queued_.pop_back();
  }
}

// Hands the tasks still waiting for a slot back to the store (requeue: they
// never started, so no attempt counts) or, for a lost worker, drops them:
// they belong to others by now.
void Worker::Impl::release_queued(bool requeue) {
  std::lock_guard lock(mutex_);
  for (auto& task : queued_)
    if (requeue)
      completions_.push_back(
          {task.id, task.fence, TaskState::Waiting, nullptr, nullptr, std::nullopt});
  queued_.clear();
}

void Worker::Impl::shutdown() {
  spdlog::info("worker {} stopping: waiting up to {} ms for {} running task(s)", info_.name,
               options_.shutdown_grace.count(), busy_slots());
  release_queued(true);
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
  // Task classes check can_run_on against the metadata the worker registered.
  std::map<std::string, std::string> env = {{"TASKENGINE_URL", options_.url},
                                            {"TASKENGINE_WORKER", info_.name},
                                            {"TASKENGINE_WORKER_METADATA", info_.metadata.dump()}};
  output_ =
      std::make_unique<worker::OutputBuffer>(options_.url, kOutputInterval, kMaxBufferedRecords);
  for (int i = 0; i < options_.concurrency; ++i)
    slots_.push_back(std::make_unique<Slot>(
        i, python, options_.imports, env, *output_,
        [this, i](Completion c, std::chrono::microseconds ran) {
          on_done(static_cast<std::size_t>(i), std::move(c), ran);
        },
        [this] { on_idle(); }));

  auto listener = store_->listen(info_);
  std::thread heartbeat([this] { heartbeat_loop(); });
  std::thread listening([this, &listener] { listen_loop(*listener); });
  std::optional<worker::RetentionSweeper> retention;
  if (options_.retention.count() > 0)
    retention.emplace(options_.url, options_.retention, options_.retention_interval);

  int exit_code = 0;
  try {
    bool check_cancels = true;
    auto last_cancel_check = Clock::now();
    while (!stop_requested_) {
      {
        std::unique_lock lock(mutex_);
        bool due = completions_due(Clock::now());
        lock.unlock();
        if (due) flush_completions();
      }
      if (lost_) {
        // Our attempts now belong to others: stop them and start afresh.
        release_queued(false);
        for (auto& slot : slots_) slot->kill(KillReason::Lost, options_.kill_grace);
        while (busy_slots() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        flush_completions();
        lost_ = false;
        register_self();
        spdlog::info("worker {} re-registered as id {}", info_.name, info_.id);
      }
      enforce_timeouts();
      release_excess();
      // Claim before looking for cancels: a wake-up is mostly a dispatch, and
      // its task starts one round trip after the NOTIFY instead of two. A
      // task canceled meanwhile is still found below, claimed or not.
      claim();
      if (check_cancels) {
        handle_cancels();
        last_cancel_check = Clock::now();
      }

      std::unique_lock lock(mutex_);
      auto timeout = options_.poll_interval;
      // Held tasks are looked at again within a window: they go back if the
      // running ones turn out long.
      if (!queued_.empty())
        timeout =
            std::min(timeout, std::max(options_.prefetch_window, std::chrono::milliseconds(1)));
      for (auto& slot : slots_) {
        auto deadline = slot->deadline();
        if (deadline) {
          auto left =
              std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
          timeout = std::max(std::chrono::milliseconds(1), std::min(timeout, left));
        }
      }
      // Results waiting for their batch: wake when the batch is due. None
      // waiting: wake for the first one.
      bool waiting_results = !completions_.empty();
      if (waiting_results) {
        auto due = std::chrono::duration_cast<std::chrono::milliseconds>(
            last_flush_ + options_.completion_window - Clock::now());
        timeout = std::max(std::chrono::milliseconds(0), std::min(timeout, due));
      }
      changed_.wait_for(lock, timeout, [this, waiting_results] {
        return woken_ || stop_requested_ || claim_wanted_ ||
               completions_.size() >= kMaxCompletionBatch ||
               (!waiting_results && !completions_.empty());
      });
      // Cancel checks cost a query: run them on a wake-up or once per poll
      // interval, not after every batch of results.
      check_cancels = woken_ || Clock::now() - last_cancel_check >= options_.poll_interval;
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
  heartbeat_stop_.notify_all();
  heartbeat.join();
  listening.join();
  retention.reset();
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
