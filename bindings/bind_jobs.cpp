// Jobs and builds (jobcontrol's vocabulary): methods added to the Engine
// class that bind_engine.cpp registers, with JSON text at the boundary.
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "taskengine/engine.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/jobs.hpp"

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

std::optional<bool> optional_bool(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) throw InvalidArgument(std::string("'") + key + "' must be a boolean");
  return it->get<bool>();
}

BuildFilter parse_build_filter(const std::string& text) {
  Json j = parse(text, "the build filter");
  if (!j.is_object() || !j.contains("job_id") || !j["job_id"].is_string())
    throw InvalidArgument("the build filter needs a 'job_id' string");
  BuildFilter filter;
  filter.job_id = j["job_id"].get<std::string>();
  filter.started = optional_bool(j, "started");
  filter.finished = optional_bool(j, "finished");
  filter.success = optional_bool(j, "success");
  filter.skipped = optional_bool(j, "skipped");
  filter.newest_first = optional_bool(j, "newest_first").value_or(false);
  filter.limit = j.value("limit", 100);
  return filter;
}

// Adds a method to an already registered class, as class_::def would.
template <typename F, typename... Extra>
void add_method(py::object cls, const char* name, F&& f, const Extra&... extra) {
  cls.attr(name) = py::cpp_function(std::forward<F>(f), py::name(name), py::is_method(cls),
                                    py::sibling(py::getattr(cls, name, py::none())), extra...);
}

}  // namespace

void register_jobs(py::module_& m) {
  py::object engine = m.attr("Engine");
  add_method(
      engine, "load_jobs",
      [](Engine& e, const std::string& jobs_json) {
        Json jobs = parse(jobs_json, "the job set");
        if (!jobs.is_array()) throw JobConfigError("a job set is a list of jobs");
        std::vector<JobDefinition> definitions;
        for (const auto& job : jobs) definitions.push_back(JobDefinition::from_json(job));
        py::gil_scoped_release release;
        return e.store().load_jobs(definitions).to_json().dump();
      },
      py::arg("jobs_json"));
  add_method(
      engine, "get_job",
      [](Engine& e, const std::string& id) -> std::optional<std::string> {
        std::optional<Job> job;
        {
          py::gil_scoped_release release;
          job = e.store().get_job(id);
        }
        if (!job) return std::nullopt;
        return job->to_json().dump();
      },
      py::arg("job_id"));
  add_method(engine, "list_jobs", [](Engine& e) {
    Json out = Json::array();
    py::gil_scoped_release release;
    for (const auto& job : e.store().list_jobs()) out.push_back(job.to_json());
    return out.dump();
  });
  add_method(
      engine, "create_build",
      [](Engine& e, const std::string& job_id, const std::string& config_json) {
        BuildConfig config = BuildConfig::from_json(parse(config_json, "the build config"));
        py::gil_scoped_release release;
        return e.store().create_build(job_id, config);
      },
      py::arg("job_id"), py::arg("config_json"));
  add_method(
      engine, "get_build",
      [](Engine& e, TaskId id) -> std::optional<std::string> {
        std::optional<Build> build;
        {
          py::gil_scoped_release release;
          build = e.store().get_build(id);
        }
        if (!build) return std::nullopt;
        return build->to_json().dump();
      },
      py::arg("build_id"));
  add_method(
      engine, "delete_build",
      [](Engine& e, TaskId id) {
        py::gil_scoped_release release;
        e.store().delete_build(id);
      },
      py::arg("build_id"));
  add_method(
      engine, "job_builds",
      [](Engine& e, const std::string& filter_json) {
        BuildFilter filter = parse_build_filter(filter_json);
        Json out = Json::array();
        py::gil_scoped_release release;
        for (const auto& build : e.store().job_builds(filter)) out.push_back(build.to_json());
        return out.dump();
      },
      py::arg("filter_json"));
}

}  // namespace taskengine::bindings
