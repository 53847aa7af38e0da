// A randomized differential test: seeded random sequences of dispatch, claim, claim_task,
// complete, cancel and worker death run through the real Store and through a small reference
// model written straight from the spec (ARCHITECTURE.md invariants 1, 2, 4, 5). Every claim
// decision, every fenced completion and, after every step, the state of every task must agree.
// The model is naive on purpose (full scans, a fixpoint for dependencies) so that it stays
// obviously correct however the store's claim is made to scale.
//
// Reproduce a failure:  TASKENGINE_MODEL_SEED=<seed> TASKENGINE_MODEL_SEQUENCES=1
// Scale a run:          TASKENGINE_MODEL_SEQUENCES (per backend), TASKENGINE_MODEL_STEPS
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/test_stores.hpp"
#include "taskengine/store.hpp"

namespace taskengine {
namespace {

using Rng = std::mt19937_64;

int env_int(const char* name, int fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::atoi(text) : fallback;
}

// ---------------------------------------------------------------- reference model

struct ModelTask {
  int priority = 0;
  std::set<std::string> exclusive;
  std::set<std::string> shared;
  std::vector<TaskId> deps;
  bool allow_failure = false;
  bool due = true;      // false: not_before is far in the future
  bool matches = true;  // false: needs a worker type that no worker here has
  int max_attempts = 1;
  TaskState state = TaskState::Waiting;
  int attempt = 0;
  std::int64_t fence = 0;
  WorkerId worker = 0;  // meaningful while running or canceling
};

// Resources held so far in a walk.
struct Held {
  std::set<std::string> exclusive;
  std::set<std::string> shared;

  bool conflicts(const ModelTask& t) const {
    for (const auto& r : t.exclusive)
      if (exclusive.count(r) || shared.count(r)) return true;
    for (const auto& r : t.shared)
      if (exclusive.count(r)) return true;
    return false;
  }
  void hold(const ModelTask& t) {
    exclusive.insert(t.exclusive.begin(), t.exclusive.end());
    shared.insert(t.shared.begin(), t.shared.end());
  }
};

class Model {
 public:
  std::map<TaskId, ModelTask> tasks;  // by id, which is dispatch order

  void dispatch(TaskId id, ModelTask t) {
    // Mirrors insert_task: an unfinished dependency blocks, but one that already ended badly
    // skips the task at once, even while others are unfinished (it would be skipped anyway).
    bool blocked = false;
    bool skipped = false;
    for (TaskId dep : t.deps) {
      TaskState s = tasks.at(dep).state;
      if (!is_final(s))
        blocked = true;
      else if (s != TaskState::Completed && !t.allow_failure)
        skipped = true;
    }
    t.state = skipped ? TaskState::Skipped : blocked ? TaskState::Blocked : TaskState::Waiting;
    tasks[id] = std::move(t);
  }

  // The waiting tasks that may start now, in claim order: walk the queue by (priority DESC,
  // id ASC) against what running and canceling tasks hold; started or not, due or not, each
  // waiting task then holds its place. So claim(limit) takes a prefix of this list, and
  // claim_task(id) succeeds exactly when id is in it.
  std::vector<TaskId> startable() {
    Held held;
    std::vector<TaskId> queue;
    for (auto& [id, t] : tasks) {
      if (t.state == TaskState::Running || t.state == TaskState::Canceling) held.hold(t);
      if (t.state == TaskState::Waiting) queue.push_back(id);
    }
    // Ids are already ascending; a stable sort keeps them so within a priority.
    std::stable_sort(queue.begin(), queue.end(),
                     [&](TaskId a, TaskId b) { return tasks[a].priority > tasks[b].priority; });
    std::vector<TaskId> out;
    for (TaskId id : queue) {
      const ModelTask& t = tasks[id];
      if (!held.conflicts(t) && t.due && t.matches) out.push_back(id);
      held.hold(t);
    }
    return out;
  }

  std::vector<TaskId> claim(WorkerId worker, int limit) {
    std::vector<TaskId> ids = startable();
    if (static_cast<int>(ids.size()) > limit) ids.resize(limit);
    for (TaskId id : ids) start(id, worker);
    return ids;
  }

  bool claim_task(TaskId id, WorkerId worker) {
    std::vector<TaskId> ids = startable();
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) return false;
    start(id, worker);
    return true;
  }

  bool complete(TaskId id, std::int64_t fence, TaskState outcome) {
    ModelTask& t = tasks.at(id);
    if (t.fence != fence || (t.state != TaskState::Running && t.state != TaskState::Canceling))
      return false;
    if (t.state == TaskState::Canceling)
      end(t, TaskState::Canceled);  // whatever the attempt reports: cancel means it never counts
    else if (outcome == TaskState::Completed)
      end(t, TaskState::Completed);
    else
      fail_or_retry(t);
    return true;
  }

  TaskState cancel(TaskId id) {
    ModelTask& t = tasks.at(id);
    if (t.state == TaskState::Blocked || t.state == TaskState::Waiting)
      end(t, TaskState::Canceled);
    else if (t.state == TaskState::Running)
      t.state = TaskState::Canceling;
    return t.state;
  }

  int lose_worker(WorkerId worker) {
    int recovered = 0;
    for (auto& [id, t] : tasks) {
      if (t.worker != worker) continue;
      if (t.state == TaskState::Running) {
        fail_or_retry(t);
        ++recovered;
      } else if (t.state == TaskState::Canceling) {
        end(t, TaskState::Canceled);
        ++recovered;
      }
    }
    return recovered;
  }

 private:
  void start(TaskId id, WorkerId worker) {
    ModelTask& t = tasks[id];
    t.state = TaskState::Running;
    ++t.attempt;
    ++t.fence;
    t.worker = worker;
  }

  void fail_or_retry(ModelTask& t) {
    if (t.attempt < t.max_attempts) {
      t.state = TaskState::Waiting;
      t.due = true;  // retry delay 0: not_before = now
      t.worker = 0;
    } else {
      end(t, TaskState::Failed);
    }
  }

  void end(ModelTask& t, TaskState final_state) {
    t.state = final_state;
    // A fixpoint over every blocked task: slower than the store's walk from what finished,
    // and plainly right.
    for (bool changed = true; changed;) {
      changed = false;
      for (auto& [id, b] : tasks) {
        if (b.state != TaskState::Blocked) continue;
        bool all_final = true;
        bool any_unsuccessful = false;
        for (TaskId dep : b.deps) {
          TaskState s = tasks.at(dep).state;
          all_final = all_final && is_final(s);
          any_unsuccessful = any_unsuccessful || (is_final(s) && s != TaskState::Completed);
        }
        // One dependency ending badly skips the task at once (it could never run).
        if (any_unsuccessful && !b.allow_failure) {
          b.state = TaskState::Skipped;
        } else if (all_final) {
          b.state = TaskState::Waiting;
        } else {
          continue;
        }
        changed = true;
      }
    }
  }
};

// ---------------------------------------------------------------- one random sequence

std::string ids_text(const std::vector<TaskId>& ids) {
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? ", #" : "#") + std::to_string(ids[i]);
  return out + "]";
}

std::string names_text(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

class Sequence {
 public:
  Sequence(Store& store, std::uint64_t seed) : store_(store), rng_(seed), seed_(seed) {}

  // Runs `steps` random steps; returns "" or the first disagreement, with the trace so far.
  std::string run(int steps) {
    for (int i = 0; i < 3; ++i) workers_.push_back(register_worker());
    for (step_ = 1; step_ <= steps; ++step_) {
      std::string error;
      try {
        error = random_step();
        if (error.empty()) error = compare_all();
      } catch (const std::exception& e) {
        error = std::string("the store threw: ") + e.what();  // keep the seed and the trace
      }
      if (!error.empty()) {
        std::ostringstream out;
        out << "seed " << seed_ << ", step " << step_ << ": " << error
            << "\nrerun with TASKENGINE_MODEL_SEED=" << seed_
            << " TASKENGINE_MODEL_SEQUENCES=1\nsteps so far:\n"
            << trace_.str();
        return out.str();
      }
    }
    return {};
  }

 private:
  std::uint64_t pick(std::uint64_t n) { return rng_() % n; }  // portable across stdlibs
  bool chance(int percent) { return static_cast<int>(pick(100)) < percent; }

  WorkerInfo register_worker() {
    WorkerInfo info;
    info.name = "w" + std::to_string(++worker_names_);
    info.hostname = "localhost";
    info.pid = 1;
    info.id = store_.register_worker(info);
    return info;
  }

  std::string random_step() {
    int roll = static_cast<int>(pick(100));
    if (roll < 28 || model_.tasks.empty()) return dispatch_step();
    if (roll < 58) return claim_step();
    if (roll < 86) return complete_step();
    if (roll < 96) return cancel_step();
    return worker_death_step();
  }

  bool any_active() const {
    for (const auto& [id, t] : model_.tasks)
      if (t.state == TaskState::Running || t.state == TaskState::Canceling) return true;
    return false;
  }

  std::string dispatch_step() {
    // The pool is small so that conflicts are frequent.
    static const std::vector<std::string> kPool = {"r0", "r1", "r2", "r3"};
    int count = chance(25) ? 2 + static_cast<int>(pick(3)) : 1;
    std::vector<TaskSpec> specs;
    std::vector<ModelTask> models;
    std::vector<std::string> texts;
    for (int i = 0; i < count; ++i) {
      TaskSpec spec;
      spec.name = "pkg.mod:fn";
      spec.payload = {{"function", spec.name}, {"args", Json::array()}, {"kwargs", Json::object()}};
      ModelTask m;
      std::ostringstream text;
      m.priority = spec.priority = static_cast<int>(pick(3));
      text << "prio " << m.priority;
      int resources = static_cast<int>(pick(3));
      for (int r = 0; r < resources; ++r) {
        const std::string& name = kPool[pick(kPool.size())];
        if (m.exclusive.count(name) || m.shared.count(name)) continue;
        (chance(50) ? m.exclusive : m.shared).insert(name);
      }
      spec.exclusive_resources.assign(m.exclusive.begin(), m.exclusive.end());
      spec.shared_resources.assign(m.shared.begin(), m.shared.end());
      if (!m.exclusive.empty()) text << " excl " << names_text(m.exclusive);
      if (!m.shared.empty()) text << " shared " << names_text(m.shared);
      // Dependencies only on tasks that exist before this batch: their ids are known.
      if (!model_.tasks.empty() && chance(35)) {
        std::set<TaskId> deps;
        int n = 1 + static_cast<int>(pick(2));
        for (int d = 0; d < n; ++d) {
          auto it = model_.tasks.begin();
          std::advance(it, pick(model_.tasks.size()));
          deps.insert(it->first);
        }
        m.deps.assign(deps.begin(), deps.end());
        spec.depends_on = m.deps;
        m.allow_failure = spec.allow_failure = chance(30);
        text << " deps " << ids_text(m.deps) << (m.allow_failure ? " allow_failure" : "");
      }
      int timing = static_cast<int>(pick(100));
      if (timing < 10) {
        // Never claimable within the test, yet it still holds its place in the order.
        spec.not_before = now_micros() + std::int64_t{365} * 24 * 3600 * 1000000;
        m.due = false;
        text << " not_before +1y";
      } else if (timing < 18) {
        spec.not_before = now_micros() - 1000000;
        text << " not_before -1s";
      }
      if (chance(5)) {
        spec.requirements.worker_type = "signing";  // no signing worker: never claimable
        m.matches = false;
        text << " needs signing";
      }
      if (chance(30)) {
        m.max_attempts = spec.retry.max_attempts = 2 + static_cast<int>(pick(2));
        spec.retry.delays = {0};
        text << " max_attempts " << m.max_attempts;
      }
      specs.push_back(std::move(spec));
      models.push_back(std::move(m));
      texts.push_back(text.str());
    }
    std::vector<TaskId> ids = store_.dispatch(specs);
    if (ids.size() != specs.size()) return "dispatch returned the wrong number of ids";
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (model_.tasks.count(ids[i])) return "dispatch reused id #" + std::to_string(ids[i]);
      model_.dispatch(ids[i], std::move(models[i]));
      trace_ << "  " << step_ << ". dispatch" << (count > 1 ? " (batch)" : "") << " #" << ids[i]
             << ": " << texts[i] << " -> " << to_string(model_.tasks[ids[i]].state) << "\n";
    }
    return {};
  }

  std::string claim_step() {
    const WorkerInfo& worker = workers_[pick(workers_.size())];
    if (chance(20)) return claim_task_step(worker);
    int limit = 1 + static_cast<int>(pick(3));
    std::vector<Task> claimed = store_.claim(worker, limit);
    std::vector<TaskId> got;
    for (const auto& t : claimed) got.push_back(t.id);
    std::vector<TaskId> want = model_.claim(worker.id, limit);
    trace_ << "  " << step_ << ". claim by " << worker.name << " limit " << limit << " -> "
           << ids_text(got) << "\n";
    if (got != want)
      return "claim by " + worker.name + " limit " + std::to_string(limit) + ": store gave " +
             ids_text(got) + ", the model expects " + ids_text(want);
    for (const auto& t : claimed) {
      const ModelTask& m = model_.tasks[t.id];
      if (t.state != TaskState::Running || t.attempt != m.attempt || t.fence != m.fence ||
          t.worker_id != worker.id)
        return "claimed task #" + std::to_string(t.id) + " came back with state " +
               std::string(to_string(t.state)) + ", attempt " + std::to_string(t.attempt) +
               ", fence " + std::to_string(t.fence);
    }
    return {};
  }

  // Immediate dispatch: one given task, started only if it may start now. Mostly a waiting
  // task, as the others are refused trivially.
  std::string claim_task_step(const WorkerInfo& worker) {
    std::vector<TaskId> waiting;
    std::vector<TaskId> all;
    for (const auto& [id, t] : model_.tasks) {
      all.push_back(id);
      if (t.state == TaskState::Waiting) waiting.push_back(id);
    }
    const auto& pool = !waiting.empty() && chance(85) ? waiting : all;
    TaskId id = pool[pick(pool.size())];
    TaskState before = model_.tasks[id].state;
    std::optional<Task> got = store_.claim_task(id, worker);
    bool want = model_.claim_task(id, worker.id);
    trace_ << "  " << step_ << ". claim_task #" << id << " (" << to_string(before) << ") by "
           << worker.name << " -> " << (got ? "started" : "refused") << "\n";
    if (got.has_value() != want)
      return "claim_task #" + std::to_string(id) + (want ? " should start it" : " should refuse");
    if (got && (got->state != TaskState::Running || got->attempt != model_.tasks[id].attempt ||
                got->fence != model_.tasks[id].fence || got->worker_id != worker.id))
      return "claim_task #" + std::to_string(id) + " came back with state " +
             std::string(to_string(got->state)) + ", attempt " + std::to_string(got->attempt) +
             ", fence " + std::to_string(got->fence);
    return {};
  }

  std::string complete_step() {
    // Nothing to complete: mostly claim instead, so stale writes do not crowd out real ones.
    if (!any_active() && chance(70)) return claim_step();
    std::vector<TaskId> active;
    std::vector<TaskId> ever_claimed;
    for (const auto& [id, t] : model_.tasks) {
      if (t.state == TaskState::Running || t.state == TaskState::Canceling) active.push_back(id);
      if (t.fence > 0) ever_claimed.push_back(id);
    }
    if (ever_claimed.empty()) return claim_step();
    int count = chance(25) ? 2 + static_cast<int>(pick(2)) : 1;
    std::vector<Completion> completions;
    for (int i = 0; i < count; ++i) {
      Completion c;
      if (!active.empty() && chance(85)) {
        c.task_id = active[pick(active.size())];
        c.fence = model_.tasks[c.task_id].fence;
      } else {
        // A stale, finished or future attempt, e.g. a worker back from the dead.
        c.task_id = ever_claimed[pick(ever_claimed.size())];
        c.fence = static_cast<std::int64_t>(pick(model_.tasks[c.task_id].fence + 2));
      }
      c.state = chance(60) ? TaskState::Completed : TaskState::Failed;
      if (c.state == TaskState::Failed) c.error = {{"type", "ValueError"}, {"message", "boom"}};
      completions.push_back(std::move(c));
    }
    std::vector<bool> applied = store_.complete(completions);
    if (applied.size() != completions.size()) return "complete returned the wrong count";
    std::string error;
    trace_ << "  " << step_ << ". complete";
    for (std::size_t i = 0; i < completions.size(); ++i) {
      const Completion& c = completions[i];
      TaskState before = model_.tasks[c.task_id].state;
      bool want = model_.complete(c.task_id, c.fence, c.state);
      trace_ << " #" << c.task_id << " (" << to_string(before) << ") fence " << c.fence << " as "
             << to_string(c.state) << " -> " << (applied[i] ? "applied" : "rejected") << ";";
      if (applied[i] != want && error.empty())
        error = "completion of #" + std::to_string(c.task_id) + " fence " +
                std::to_string(c.fence) + (want ? " should apply" : " should be rejected");
    }
    trace_ << "\n";
    return error;
  }

  std::string cancel_step() {
    // Mostly an unfinished task: canceling a finished one is a no-op worth testing less often.
    std::vector<TaskId> unfinished;
    std::vector<TaskId> all;
    for (const auto& [id, t] : model_.tasks) {
      all.push_back(id);
      if (!is_final(t.state)) unfinished.push_back(id);
    }
    const auto& pool = !unfinished.empty() && chance(75) ? unfinished : all;
    TaskId id = pool[pick(pool.size())];
    TaskState before = model_.tasks[id].state;
    TaskState got = store_.cancel_task(id);
    TaskState want = model_.cancel(id);
    trace_ << "  " << step_ << ". cancel #" << id << " (" << to_string(before) << ") -> "
           << to_string(got) << "\n";
    if (got != want)
      return "cancel #" + std::to_string(id) + " returned " + std::string(to_string(got)) +
             ", the model expects " + std::string(to_string(want));
    return {};
  }

  // recover_lost_workers(timeout) declares lost EVERY worker silent for longer than `timeout`,
  // so the survivors heartbeat first and the timeout is chosen from the stored heartbeats to
  // put the cutoff midway between the dead worker's last heartbeat and theirs.
  std::string worker_death_step() {
    // Mostly a worker with work in hand, so recovery has something to do.
    std::vector<std::size_t> busy;
    for (std::size_t i = 0; i < workers_.size(); ++i)
      for (const auto& [id, t] : model_.tasks)
        if (t.worker == workers_[i].id &&
            (t.state == TaskState::Running || t.state == TaskState::Canceling)) {
          busy.push_back(i);
          break;
        }
    std::size_t index =
        !busy.empty() && chance(75) ? busy[pick(busy.size())] : pick(workers_.size());
    WorkerInfo dead = workers_[index];
    constexpr Micros kMinGap = 20000;
    Micros dead_beat = 0;
    Micros survivors_beat = 0;
    for (int attempt = 0;; ++attempt) {
      for (const auto& w : workers_)
        if (w.id != dead.id && !store_.heartbeat(w.id))
          return "heartbeat of live worker " + w.name + " was refused";
      survivors_beat = INT64_MAX;
      for (const auto& w : store_.list_workers(false)) {
        if (w.id == dead.id)
          dead_beat = w.last_heartbeat;
        else
          survivors_beat = std::min(survivors_beat, w.last_heartbeat);
      }
      if (survivors_beat - dead_beat >= kMinGap) break;
      if (attempt == 3) return "could not separate heartbeats (clock stalled?)";
      std::this_thread::sleep_for(
          std::chrono::microseconds(kMinGap - (survivors_beat - dead_beat)));
    }
    auto timeout =
        std::chrono::milliseconds((now_micros() - (dead_beat + survivors_beat) / 2) / 1000);
    int got = store_.recover_lost_workers(timeout);
    int want = model_.lose_worker(dead.id);
    trace_ << "  " << step_ << ". worker " << dead.name << " dies, recovered " << got << "\n";
    if (got != want)
      return "recover_lost_workers recovered " + std::to_string(got) +
             " tasks, the model expects " + std::to_string(want);
    if (store_.heartbeat(dead.id)) return "the lost worker " + dead.name + " may still heartbeat";
    std::set<WorkerId> online;
    for (const auto& w : store_.list_workers(false)) online.insert(w.id);
    std::set<WorkerId> expected;
    for (const auto& w : workers_)
      if (w.id != dead.id) expected.insert(w.id);
    if (online != expected) return "recover_lost_workers took the wrong workers offline";
    workers_[index] = register_worker();
    trace_ << "  " << step_ << ". register " << workers_[index].name << "\n";
    return {};
  }

  // Every task, store against model; and invariants 1 and 4 checked on the store alone.
  std::string compare_all() {
    std::vector<Task> stored =
        store_.list_tasks({std::nullopt, std::nullopt, std::nullopt, 1000000, false});
    if (stored.size() != model_.tasks.size())
      return "the store has " + std::to_string(stored.size()) + " tasks, the model " +
             std::to_string(model_.tasks.size());
    std::set<WorkerId> live;
    for (const auto& w : workers_) live.insert(w.id);
    Held held;
    for (const auto& t : stored) {
      auto it = model_.tasks.find(t.id);
      if (it == model_.tasks.end()) return "the store has unknown task #" + std::to_string(t.id);
      const ModelTask& m = it->second;
      std::string id = "#" + std::to_string(t.id);
      if (t.state != m.state)
        return id + " is " + std::string(to_string(t.state)) + " in the store, " +
               std::string(to_string(m.state)) + " in the model";
      if (t.attempt != m.attempt || t.fence != m.fence)
        return id + " has attempt " + std::to_string(t.attempt) + " fence " +
               std::to_string(t.fence) + " in the store, attempt " + std::to_string(m.attempt) +
               " fence " + std::to_string(m.fence) + " in the model";
      if (t.state != TaskState::Running && t.state != TaskState::Canceling) continue;
      if (t.worker_id != m.worker) return id + " runs on the wrong worker";
      if (!live.count(m.worker))
        return id + " is " + std::string(to_string(t.state)) + " on a lost worker (invariant 4)";
      ModelTask resources;
      resources.exclusive = {t.exclusive_resources.begin(), t.exclusive_resources.end()};
      resources.shared = {t.shared_resources.begin(), t.shared_resources.end()};
      if (held.conflicts(resources)) return id + " overlaps another running task (invariant 1)";
      held.hold(resources);
    }
    return {};
  }

  Store& store_;
  Rng rng_;
  std::uint64_t seed_;
  int step_ = 0;
  Model model_;
  std::vector<WorkerInfo> workers_;
  int worker_names_ = 0;
  std::ostringstream trace_;
};

// ---------------------------------------------------------------- the test

class SchedulerModel : public ::testing::TestWithParam<std::string> {};

TEST_P(SchedulerModel, RandomSequencesAgreeWithReferenceModel) {
  auto test_store = testing::make_test_store(GetParam());
  if (!test_store) GTEST_SKIP() << "PostgreSQL is not reachable";
  auto store = open_store(test_store->url());
  // PostgreSQL steps cost a network round trip each: fewer sequences keep the run short.
  int sequences = env_int("TASKENGINE_MODEL_SEQUENCES", GetParam() == "sqlite" ? 300 : 40);
  int steps = env_int("TASKENGINE_MODEL_STEPS", 60);
  auto base_seed = static_cast<std::uint64_t>(env_int("TASKENGINE_MODEL_SEED", 1));
  for (int i = 0; i < sequences; ++i) {
    // A fresh schema per sequence: ids, workers and resources start from nothing.
    store->uninstall();
    store->install();
    Sequence sequence(*store, base_seed + static_cast<std::uint64_t>(i));
    std::string failure = sequence.run(steps);
    if (!failure.empty()) {
      ADD_FAILURE() << "[" << GetParam() << "] " << failure;
      return;  // one trace is enough to read
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, SchedulerModel, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace taskengine
