// The engine, bound with JSON strings at the boundary: the Python layer
// validates and serialises (json.dumps is C-fast), the core parses once, and
// no pickled or pybind11-converted object ever crosses.
#include <dlfcn.h>

#include <filesystem>

#include <pybind11/stl.h>

#include "bindings.hpp"
#include "taskengine/engine.hpp"
#include "taskengine/errors.hpp"

namespace py = pybind11;

namespace taskengine::bindings {
namespace {

Json parse_argument(const std::string& text, const char* what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw InvalidArgument(std::string(what) + " is not valid JSON: " + e.what());
  }
}

std::vector<TaskSpec> parse_specs(const std::string& specs_json) {
  Json specs = parse_argument(specs_json, "the task specs");
  if (!specs.is_array()) throw InvalidArgument("dispatch takes a JSON list of task specs");
  std::vector<TaskSpec> out;
  out.reserve(specs.size());
  for (const auto& spec : specs) out.push_back(TaskSpec::from_json(spec));
  return out;
}

TaskFilter parse_filter(const std::string& filter_json) {
  Json j = parse_argument(filter_json, "the task filter");
  if (!j.is_object()) throw InvalidArgument("the task filter must be an object");
  TaskFilter filter;
  if (j.contains("state") && !j["state"].is_null())
    filter.state = parse_task_state(j["state"].get<std::string>());
  if (j.contains("task_group") && !j["task_group"].is_null())
    filter.task_group = j["task_group"].get<GroupId>();
  if (j.contains("worker_id") && !j["worker_id"].is_null())
    filter.worker_id = j["worker_id"].get<WorkerId>();
  filter.limit = j.value("limit", 100);
  filter.newest_first = j.value("newest_first", false);
  return filter;
}

// pip installs the worker into the environment's bin/, four levels above
// site-packages/taskengine/_core*.so.
std::string worker_binary() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&worker_binary), &info) == 0 || !info.dli_fname) return "";
  std::filesystem::path module(info.dli_fname);
  std::error_code error;
  for (auto dir = module.parent_path(); dir.has_parent_path() && dir != dir.root_path();
       dir = dir.parent_path()) {
    auto candidate = dir / "bin" / "taskengine-worker";
    if (std::filesystem::exists(candidate, error)) return candidate.string();
  }
  return "";
}

}  // namespace

void register_engine(py::module_& m) {
  py::class_<Engine>(m, "Engine")
      .def(py::init<const std::string&>(), py::arg("url"),
           py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("url", [](Engine& e) { return e.store().url(); })
      .def_property_readonly("backend", [](Engine& e) { return e.store().backend(); })
      .def("install", &Engine::install, py::call_guard<py::gil_scoped_release>())
      .def("uninstall", &Engine::uninstall, py::call_guard<py::gil_scoped_release>())
      .def("schema_version", &Engine::schema_version, py::call_guard<py::gil_scoped_release>())
      .def(
          "dispatch",
          [](Engine& e, const std::string& specs_json) {
            auto specs = parse_specs(specs_json);
            py::gil_scoped_release release;
            return e.dispatch_many(specs);
          },
          py::arg("specs_json"))
      .def(
          "get_task",
          [](Engine& e, TaskId id) -> std::optional<std::string> {
            std::optional<Task> task;
            {
              py::gil_scoped_release release;
              task = e.store().get_task(id);
            }
            if (!task) return std::nullopt;
            return task->to_json().dump();
          },
          py::arg("task_id"))
      .def(
          "list_tasks",
          [](Engine& e, const std::string& filter_json) {
            TaskFilter filter = parse_filter(filter_json);
            Json out = Json::array();
            {
              py::gil_scoped_release release;
              for (const auto& task : e.list_tasks(filter)) out.push_back(task.to_json());
            }
            return out.dump();
          },
          py::arg("filter_json"))
      .def(
          "cancel_task",
          [](Engine& e, TaskId id) {
            py::gil_scoped_release release;
            return std::string(to_string(e.cancel_task(id)));
          },
          py::arg("task_id"))
      .def("create_task_group", &Engine::create_task_group, py::arg("description") = "",
           py::call_guard<py::gil_scoped_release>())
      .def("cancel_task_group", &Engine::cancel_task_group, py::arg("group_id"),
           py::call_guard<py::gil_scoped_release>())
      .def(
          "workers",
          [](Engine& e, bool include_offline) {
            Json out = Json::array();
            {
              py::gil_scoped_release release;
              for (const auto& w : e.workers(include_offline)) out.push_back(w.to_json());
            }
            return out.dump();
          },
          py::arg("include_offline") = false);
  m.def("worker_binary", &worker_binary,
        "Path of the taskengine-worker installed beside this module, or \"\".");
}

}  // namespace taskengine::bindings
