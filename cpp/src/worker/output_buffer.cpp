#include "worker/output_buffer.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <vector>

#include "taskengine/errors.hpp"

namespace taskengine::worker {
namespace {

constexpr int kWarning = 30;

LogRecord worker_record(const std::string& message) {
  LogRecord r;
  r.created_at = now_micros();
  r.level = kWarning;
  r.logger = "taskengine.worker";
  r.message = message;
  return r;
}

void note(std::string& problems, const std::string& problem) {
  if (problems.size() < 2000) problems += (problems.empty() ? "" : "; ") + problem;
}

}  // namespace

OutputBuffer::OutputBuffer(std::string url, std::chrono::milliseconds interval,
                           std::size_t max_records)
    : url_(std::move(url)), interval_(interval), max_records_(max_records) {
  thread_ = std::thread([this] { loop(); });
}

OutputBuffer::~OutputBuffer() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  flush();
}

void OutputBuffer::add(TaskId task, std::int64_t fence, const Json& message) {
  std::lock_guard lock(mutex_);
  Pending& pending = pending_[{task, fence}];
  pending.output.task_id = task;
  pending.output.fence = fence;
  if (auto it = message.find("records"); it != message.end() && it->is_array()) {
    for (const auto& item : *it) {
      if (pending.output.records.size() >= max_records_) {
        ++pending.dropped;
        continue;
      }
      try {
        LogRecord record = LogRecord::from_json(item);
        if (record.level < 0 || record.created_at < 0)
          throw InvalidArgument("negative level or time");
        pending.output.records.push_back(std::move(record));
      } catch (const InvalidArgument& e) {
        note(pending.problems, std::string("a log record was dropped: ") + e.what());
      }
    }
  }
  if (auto it = message.find("progress"); it != message.end() && it->is_array()) {
    for (const auto& item : *it) {
      try {
        Progress p = Progress::from_json(item);
        if (p.current < 0 || p.total < 0) throw InvalidArgument("progress must not be negative");
        pending.progress[p.group_name] = std::move(p);
      } catch (const InvalidArgument& e) {
        note(pending.problems, std::string("a progress report was dropped: ") + e.what());
      }
    }
  }
  if (auto it = message.find("artifacts"); it != message.end() && it->is_array()) {
    for (const auto& item : *it) add_artifact(pending, item);
    wake_.notify_all();  // files are big: store them soon
  }
}

void OutputBuffer::add_artifact(Pending& pending, const Json& artifact) {
  if (!artifact.is_object() || !artifact.contains("name") || !artifact["name"].is_string() ||
      !artifact.contains("path") || !artifact["path"].is_string()) {
    note(pending.problems, "an artifact message without a name and a path was dropped");
    return;
  }
  std::string name = artifact["name"].get<std::string>();
  std::string path = artifact["path"].get<std::string>();
  Artifact a;
  a.info.name = name;
  a.info.sha256 = artifact.value("sha256", std::string());
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    note(pending.problems, "artifact '" + name + "' could not be read from " + path);
    return;
  }
  std::int64_t size = static_cast<std::int64_t>(in.tellg());
  if (size > kMaxArtifactBytes) {
    note(pending.problems, "artifact '" + name + "' is " + std::to_string(size) +
                               " bytes, over the limit of " + std::to_string(kMaxArtifactBytes));
  } else {
    a.content.resize(static_cast<std::size_t>(size));
    in.seekg(0);
    in.read(a.content.data(), size);
    pending.output.artifacts.push_back(std::move(a));
  }
  in.close();
  std::remove(path.c_str());  // the executor staged this copy for us alone
}

void OutputBuffer::flush() {
  std::lock_guard write_lock(write_mutex_);
  std::vector<TaskOutput> batch;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, pending] : pending_) {
      TaskOutput& output = pending.output;
      if (pending.dropped)
        output.records.push_back(worker_record(
            std::to_string(pending.dropped) +
            " log record(s) were dropped: the task logged faster than they could be stored"));
      if (!pending.problems.empty()) output.records.push_back(worker_record(pending.problems));
      for (auto& [group, progress] : pending.progress) output.progress.push_back(progress);
      if (!output.records.empty() || !output.progress.empty() || !output.artifacts.empty())
        batch.push_back(std::move(output));
    }
    pending_.clear();
  }
  if (batch.empty()) return;
  try {
    if (!store_) store_ = open_store(url_);
    auto applied = store_->write_task_output(batch);
    ++transactions_;
    for (std::size_t i = 0; i < applied.size(); ++i)
      if (!applied[i])
        spdlog::info("output of task {} dropped: its attempt is no longer current",
                     batch[i].task_id);
  } catch (const std::exception& e) {
    std::size_t records = 0;
    for (const auto& output : batch) records += output.records.size();
    spdlog::warn("could not store the output of {} task(s) ({} log records): {}", batch.size(),
                 records, e.what());
    store_.reset();  // reconnect next time
  }
}

void OutputBuffer::loop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, interval_);
    if (stop_) break;
    lock.unlock();
    flush();
    lock.lock();
  }
}

}  // namespace taskengine::worker
