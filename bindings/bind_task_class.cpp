// Task classes: the core's TaskClass interface with a trampoline, so that a
// Python subclass (taskengine's adapter around a BaseTask subclass) is
// called from C++ by create_work_request. JSON crosses as text, as
// everywhere in these bindings. A Python exception raised by an override
// travels through the core as py::error_already_set and comes back to the
// caller as itself (a TaskConfigError stays a TaskConfigError).
#include <pybind11/stl.h>

#include <memory>

#include "bindings.hpp"
#include "taskengine/engine.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/task_class.hpp"

namespace py = pybind11;

namespace taskengine::bindings {
namespace {

class PyTaskClass : public TaskClass {
 public:
  std::string name() const override { PYBIND11_OVERRIDE_PURE(std::string, TaskClass, name, ); }
  std::string task_type() const override {
    PYBIND11_OVERRIDE_PURE(std::string, TaskClass, task_type, );
  }
  std::optional<std::int64_t> task_version() const override {
    PYBIND11_OVERRIDE_PURE(std::optional<std::int64_t>, TaskClass, task_version, );
  }
  Json validate_data(const Json& task_data) const override {
    return call_json("validate_data", task_data.dump());
  }
  Json build_dynamic_data(const Json& task_data) const override {
    return call_json("build_dynamic_data", task_data.dump());
  }
  bool can_run_on(const Json& task_data, const Json& worker_metadata) const override {
    py::gil_scoped_acquire gil;
    py::function override = overridden("can_run_on");
    return override(task_data.dump(), worker_metadata.dump()).cast<bool>();
  }
  Json event_reactions(const Json& task_data) const override {
    return call_json("event_reactions", task_data.dump());
  }

 private:
  py::function overridden(const char* method) const {
    py::function override = py::get_override(static_cast<const TaskClass*>(this), method);
    if (!override)
      throw Error(std::string("taskengine._core.TaskClass.") + method + " is not overridden");
    return override;
  }

  // Calls the Python override with JSON text and parses the JSON text it returns.
  Json call_json(const char* method, const std::string& argument) const {
    py::gil_scoped_acquire gil;
    py::function override = overridden(method);
    std::string text = override(argument).cast<std::string>();
    try {
      return Json::parse(text);
    } catch (const Json::parse_error& e) {
      throw InvalidArgument(std::string("TaskClass.") + method +
                            " returned invalid JSON: " + e.what());
    }
  }
};

Json parse(const std::string& text, const char* what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw InvalidArgument(std::string(what) + " is not valid JSON: " + e.what());
  }
}

}  // namespace

void register_task_class(py::module_& m) {
  py::class_<TaskClass, PyTaskClass, std::shared_ptr<TaskClass>>(
      m, "TaskClass", "The core's task-class interface; subclass it and override every method.")
      .def(py::init<>())
      .def("name", &TaskClass::name)
      .def("task_type", &TaskClass::task_type)
      .def("task_version", &TaskClass::task_version)
      .def(
          "validate_data",
          [](const TaskClass& c, const std::string& data) {
            return c.validate_data(parse(data, "the task data")).dump();
          },
          py::arg("task_data_json"))
      .def(
          "build_dynamic_data",
          [](const TaskClass& c, const std::string& data) {
            return c.build_dynamic_data(parse(data, "the task data")).dump();
          },
          py::arg("task_data_json"))
      .def(
          "can_run_on",
          [](const TaskClass& c, const std::string& data, const std::string& metadata) {
            return c.can_run_on(parse(data, "the task data"), parse(metadata, "the metadata"));
          },
          py::arg("task_data_json"), py::arg("worker_metadata_json"))
      .def(
          "event_reactions",
          [](const TaskClass& c, const std::string& data) {
            return c.event_reactions(parse(data, "the task data")).dump();
          },
          py::arg("task_data_json"));

  // The GIL is released for the store's work; the trampoline takes it back
  // for each call into Python.
  m.def(
      "create_work_request",
      [](Engine& engine, const TaskClass& task_class, const std::string& task_data_json,
         const std::string& options_json) {
        Json data = parse(task_data_json, "the task data");
        TaskSpec options = TaskSpec::from_json(parse(options_json, "the dispatch options"));
        py::gil_scoped_release release;
        return create_work_request(engine.store(), task_class, data, std::move(options));
      },
      py::arg("engine"), py::arg("task_class"), py::arg("task_data_json"), py::arg("options_json"));
}

}  // namespace taskengine::bindings
