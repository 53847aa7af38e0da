#include "taskengine/engine.hpp"

#include <algorithm>
#include <thread>

#include "taskengine/errors.hpp"

namespace taskengine {

Engine::Engine(const std::string& url) : store_(open_store(url)) {}

void Engine::install() { store_->install(); }
void Engine::uninstall() { store_->uninstall(); }
int Engine::schema_version() { return store_->schema_version(); }

TaskId Engine::dispatch(const TaskSpec& spec) { return store_->dispatch({spec}).at(0); }

std::vector<TaskId> Engine::dispatch_many(const std::vector<TaskSpec>& specs) {
  return store_->dispatch(specs);
}

Task Engine::get_task(TaskId id) {
  auto task = store_->get_task(id);
  if (!task) throw NotFound("task " + std::to_string(id) + " does not exist");
  return *task;
}

std::vector<Task> Engine::list_tasks(const TaskFilter& filter) {
  return store_->list_tasks(filter);
}

TaskState Engine::cancel_task(TaskId id) { return store_->cancel_task(id); }

GroupId Engine::create_task_group(const std::string& description) {
  return store_->create_task_group(description);
}

int Engine::cancel_task_group(GroupId id) { return store_->cancel_task_group(id); }

std::vector<WorkerInfo> Engine::workers(bool include_offline) {
  return store_->list_workers(include_offline);
}

std::optional<Task> Engine::wait(TaskId id, std::optional<std::chrono::milliseconds> timeout) {
  using Clock = std::chrono::steady_clock;
  auto deadline = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    Task task = get_task(id);
    if (is_final(task.state)) return task;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

}  // namespace taskengine
