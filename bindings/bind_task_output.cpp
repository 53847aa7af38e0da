// What running tasks produce (log records, progress, artifacts), bound as
// module functions over an Engine with JSON strings at the boundary, like
// the engine itself; artifact contents cross as bytes.
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "taskengine/engine.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/task_output.hpp"

namespace py = pybind11;

namespace taskengine::bindings {
namespace {

Json parse(const std::string& text, const char* what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw InvalidArgument(std::string(what) + " is not valid JSON: " + e.what());
  }
}

template <typename T>
std::optional<T> optional_field(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  try {
    return it->get<T>();
  } catch (const Json::exception&) {
    throw InvalidArgument(std::string("'") + key + "' has the wrong type: " + it->dump());
  }
}

// [{"task_id", "fence"?, "records": [...], "progress": [...]}]
std::vector<TaskOutput> outputs_from_json(const Json& j) {
  if (!j.is_array()) throw InvalidArgument("task output must be a JSON list");
  std::vector<TaskOutput> outputs;
  for (const auto& item : j) {
    if (!item.is_object()) throw InvalidArgument("each task output must be an object");
    TaskOutput output;
    output.task_id = optional_field<TaskId>(item, "task_id").value_or(0);
    output.fence = optional_field<std::int64_t>(item, "fence");
    for (const auto& r : item.value("records", Json::array()))
      output.records.push_back(LogRecord::from_json(r));
    for (const auto& p : item.value("progress", Json::array()))
      output.progress.push_back(Progress::from_json(p));
    outputs.push_back(std::move(output));
  }
  return outputs;
}

LogFilter log_filter_from_json(const Json& j) {
  if (!j.is_object()) throw InvalidArgument("the log filter must be an object");
  LogFilter f;
  f.task_ids = j.value("task_ids", std::vector<TaskId>{});
  f.job_id = optional_field<std::string>(j, "job_id");
  f.min_date = optional_field<Micros>(j, "min_date");
  f.max_date = optional_field<Micros>(j, "max_date");
  f.min_level = optional_field<int>(j, "min_level");
  f.after_id = optional_field<std::int64_t>(j, "after_id");
  f.limit = optional_field<int>(j, "limit").value_or(1000);
  return f;
}

LogPruneFilter prune_filter_from_json(const Json& j) {
  if (!j.is_object()) throw InvalidArgument("the prune filter must be an object");
  LogPruneFilter f;
  f.task_id = optional_field<TaskId>(j, "task_id");
  f.job_id = optional_field<std::string>(j, "job_id");
  f.older_than = optional_field<Micros>(j, "older_than");
  f.max_level = optional_field<int>(j, "max_level");
  return f;
}

template <typename T>
std::string dump_all(const std::vector<T>& items) {
  Json out = Json::array();
  for (const auto& item : items) out.push_back(item.to_json());
  return out.dump();
}

}  // namespace

void register_task_output(py::module_& m) {
  m.def(
      "write_task_output",
      [](Engine& e, const std::string& outputs_json) {
        auto outputs = outputs_from_json(parse(outputs_json, "the task output"));
        py::gil_scoped_release release;
        return e.store().write_task_output(outputs);
      },
      py::arg("engine"), py::arg("outputs_json"),
      "Store log records and progress ([{task_id, fence?, records, progress}]) in one "
      "transaction; per output, whether it was applied.");
  m.def(
      "add_artifact",
      [](Engine& e, TaskId task_id, std::optional<std::int64_t> fence, const std::string& name,
         const py::bytes& content, const std::string& sha256) {
        TaskOutput output;
        output.task_id = task_id;
        output.fence = fence;
        Artifact artifact;
        artifact.info.name = name;
        artifact.info.sha256 = sha256;
        artifact.content = std::string(content);
        output.artifacts.push_back(std::move(artifact));
        py::gil_scoped_release release;
        return static_cast<bool>(e.store().write_task_output({output}).at(0));
      },
      py::arg("engine"), py::arg("task_id"), py::arg("fence"), py::arg("name"), py::arg("content"),
      py::arg("sha256"));
  m.def(
      "list_log_records",
      [](Engine& e, const std::string& filter_json) {
        LogFilter filter = log_filter_from_json(parse(filter_json, "the log filter"));
        std::vector<LogRecord> records;
        {
          py::gil_scoped_release release;
          records = e.store().list_log_records(filter);
        }
        return dump_all(records);
      },
      py::arg("engine"), py::arg("filter_json"));
  m.def(
      "prune_log_records",
      [](Engine& e, const std::string& filter_json) {
        LogPruneFilter filter = prune_filter_from_json(parse(filter_json, "the prune filter"));
        py::gil_scoped_release release;
        return e.store().prune_log_records(filter);
      },
      py::arg("engine"), py::arg("filter_json"));
  m.def(
      "get_progress",
      [](Engine& e, TaskId id) {
        std::vector<Progress> progress;
        {
          py::gil_scoped_release release;
          progress = e.store().get_progress(id);
        }
        return dump_all(progress);
      },
      py::arg("engine"), py::arg("task_id"));
  m.def(
      "list_artifacts",
      [](Engine& e, TaskId id) {
        std::vector<ArtifactInfo> artifacts;
        {
          py::gil_scoped_release release;
          artifacts = e.store().list_artifacts(id);
        }
        return dump_all(artifacts);
      },
      py::arg("engine"), py::arg("task_id"));
  m.def(
      "read_artifact",
      [](Engine& e, TaskId id, const std::string& name) {
        Artifact artifact;
        {
          py::gil_scoped_release release;
          artifact = e.store().read_artifact(id, name);
        }
        return py::make_tuple(artifact.info.to_json().dump(), py::bytes(artifact.content));
      },
      py::arg("engine"), py::arg("task_id"), py::arg("name"));
  m.attr("MAX_ARTIFACT_BYTES") = kMaxArtifactBytes;
}

}  // namespace taskengine::bindings
