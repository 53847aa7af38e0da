// The engine, bound with JSON strings at the boundary: the Python layer
// validates and serialises (json.dumps is C-fast), the core parses once, and
// no pickled or pybind11-converted object ever crosses.
#include <dlfcn.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <filesystem>
#include <optional>

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

// Levels of nested arrays and objects in `value` (a scalar has none),
// counting only up to `limit` + 1.
std::size_t nesting(const Json& value, std::size_t limit) {
  if (!value.is_structured()) return 0;
  std::size_t deepest = 0;
  if (limit > 0)
    for (const auto& item : value) deepest = std::max(deepest, nesting(item, limit - 1));
  return deepest + 1;
}

// dispatch_many's fast path: the options and payload shared by every task
// once, and each task's positional arguments in one JSON list. nullopt when
// an item nests deeper than `max_depth` levels: the caller then checks item
// by item, which names the item at fault.
std::optional<std::vector<TaskSpec>> function_batch(const std::string& spec_json,
                                                    const std::string& args_list_json,
                                                    std::size_t max_depth) {
  TaskSpec shared = TaskSpec::from_json(parse_argument(spec_json, "the shared task spec"));
  if (shared.kind != TaskKind::Function || !shared.payload.is_object())
    throw InvalidArgument("a function batch takes a function task spec");
  Json args_list = parse_argument(args_list_json, "the argument lists");
  if (!args_list.is_array()) throw InvalidArgument("the argument lists must be a JSON list");
  for (const auto& args : args_list) {
    if (!args.is_array()) throw InvalidArgument("each item's arguments must be a JSON list");
    if (nesting(args, max_depth) > max_depth) return std::nullopt;
  }
  std::vector<TaskSpec> specs(args_list.size(), shared);
  for (std::size_t i = 0; i < specs.size(); ++i) specs[i].payload["args"] = std::move(args_list[i]);
  return specs;
}

// The options a single function dispatch shares with every other one made
// with the same options (priority, resources, requirements, retry...),
// parsed once: each dispatch then parses only its own payload.
struct DispatchOptions {
  TaskSpec spec;
};

DispatchOptions parse_dispatch_options(const std::string& options_json) {
  Json options = parse_argument(options_json, "the dispatch options");
  if (!options.is_object()) throw InvalidArgument("the dispatch options must be an object");
  if (options.contains("kind") || options.contains("name") || options.contains("payload"))
    throw InvalidArgument("the dispatch options hold no kind, name or payload");
  return {TaskSpec::from_json(options)};
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

WorkerInfo worker_from_json(const Json& j) {
  if (!j.is_object()) throw InvalidArgument("a worker must be an object");
  WorkerInfo info;
  info.id = j.value("id", WorkerId{0});
  info.name = j.value("name", std::string());
  info.worker_type = j.value("worker_type", std::string("worker"));
  info.hostname = j.value("hostname", std::string());
  info.pid = j.value("pid", std::int64_t{0});
  info.metadata = j.value("metadata", Json::object());
  return info;
}

Completion completion_from_json(const Json& j) {
  if (!j.is_object()) throw InvalidArgument("a completion must be an object");
  Completion c;
  c.task_id = j.at("task_id").get<TaskId>();
  c.fence = j.at("fence").get<std::int64_t>();
  c.state = parse_task_state(j.at("state").get<std::string>());
  if (c.state != TaskState::Completed && c.state != TaskState::Failed &&
      c.state != TaskState::Canceled)
    throw InvalidArgument("a completion ends completed, failed or canceled");
  c.result = j.value("result", Json());
  c.error = j.value("error", Json());
  if (j.contains("reason") && j["reason"].is_string()) c.reason = j["reason"].get<std::string>();
  return c;
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
  py::class_<DispatchOptions>(m, "DispatchOptions")
      .def(py::init(&parse_dispatch_options), py::arg("options_json"));
  py::class_<Engine>(m, "Engine")
      .def(py::init<const std::string&>(), py::arg("url"), py::call_guard<py::gil_scoped_release>())
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
          "dispatch_function",
          [](Engine& e, const DispatchOptions& options, const std::string& name,
             const std::string& payload_json) {
            TaskSpec spec = options.spec;
            spec.name = name;
            spec.payload = parse_argument(payload_json, "the task payload");
            py::gil_scoped_release release;
            return e.dispatch(spec);  // validated there, as every spec
          },
          py::arg("options"), py::arg("name"), py::arg("payload_json"))
      .def(
          "dispatch_function_batch",
          [](Engine& e, const std::string& spec_json, const std::string& args_list_json,
             std::size_t max_depth) -> std::optional<std::vector<TaskId>> {
            auto specs = function_batch(spec_json, args_list_json, max_depth);
            if (!specs) return std::nullopt;
            return e.dispatch_many(*specs);
          },
          py::arg("spec_json"), py::arg("args_list_json"), py::arg("max_depth"),
          py::call_guard<py::gil_scoped_release>())
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
          "prune_tasks",
          [](Engine& e, Micros finished_before, const std::vector<std::string>& states,
             bool include_builds, int limit) {
            TaskPruneFilter filter;
            filter.finished_before = finished_before;
            for (const auto& state : states) filter.states.push_back(parse_task_state(state));
            filter.include_builds = include_builds;
            filter.limit = limit;
            py::gil_scoped_release release;
            return e.store().prune_tasks(filter);
          },
          py::arg("finished_before"), py::arg("states"), py::arg("include_builds"),
          py::arg("limit"))
      .def(
          "append_history",
          [](Engine& e, TaskId id, const std::string& entries_json) {
            Json entries = parse_argument(entries_json, "the history entries");
            py::gil_scoped_release release;
            e.store().append_history(id, entries);
          },
          py::arg("task_id"), py::arg("entries_json"))
      .def(
          "cancel_task",
          [](Engine& e, TaskId id, const std::string& reason) {
            py::gil_scoped_release release;
            return std::string(to_string(e.store().cancel_task(id, reason)));
          },
          py::arg("task_id"), py::arg("reason") = "canceled")
      // The in-process worker behind immediate dispatch: the caller's own
      // process registers, claims one given task, runs it, and completes it.
      .def(
          "register_worker",
          [](Engine& e, const std::string& info_json) {
            WorkerInfo info = worker_from_json(parse_argument(info_json, "the worker"));
            py::gil_scoped_release release;
            return e.store().register_worker(info);
          },
          py::arg("info_json"))
      .def(
          "heartbeat",
          [](Engine& e, WorkerId id) {
            py::gil_scoped_release release;
            return e.store().heartbeat(id);
          },
          py::arg("worker_id"))
      .def(
          "unregister_worker",
          [](Engine& e, WorkerId id) {
            py::gil_scoped_release release;
            e.store().unregister_worker(id);
          },
          py::arg("worker_id"))
      .def(
          "claim_task",
          [](Engine& e, TaskId id, const std::string& info_json) -> std::optional<std::string> {
            WorkerInfo info = worker_from_json(parse_argument(info_json, "the worker"));
            std::optional<Task> task;
            {
              py::gil_scoped_release release;
              task = e.store().claim_task(id, info);
            }
            if (!task) return std::nullopt;
            return task->to_json().dump();
          },
          py::arg("task_id"), py::arg("worker_json"))
      .def(
          "complete",
          [](Engine& e, const std::string& completion_json) -> bool {
            Completion c = completion_from_json(parse_argument(completion_json, "the completion"));
            py::gil_scoped_release release;
            return static_cast<bool>(e.store().complete({c}).at(0));
          },
          py::arg("completion_json"))
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
