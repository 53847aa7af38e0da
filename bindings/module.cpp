#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "taskengine's native core: stores, dispatch and queries (private; use taskengine)";
  taskengine::bindings::register_errors(m);
  taskengine::bindings::register_engine(m);
  taskengine::bindings::register_task_class(m);
  taskengine::bindings::register_jobs(m);
  taskengine::bindings::register_task_output(m);
}
