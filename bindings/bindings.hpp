#pragma once

#include <pybind11/pybind11.h>

namespace taskengine::bindings {

// One register function per file, called from module.cpp.
void register_errors(pybind11::module_& m);
void register_engine(pybind11::module_& m);
void register_task_class(pybind11::module_& m);
void register_jobs(pybind11::module_& m);
void register_task_output(pybind11::module_& m);

}  // namespace taskengine::bindings
