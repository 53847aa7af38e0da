// C++ errors become the Python classes of taskengine.errors, which carry
// the right builtin bases too (InvalidArgument is a ValueError, NotFound a
// LookupError...). The classes live in Python so that users can catch them
// without the native module, and subclass order is Python's own.
#include "bindings.hpp"
#include "taskengine/errors.hpp"
#include "taskengine/json.hpp"

namespace py = pybind11;

namespace taskengine::bindings {
namespace {

[[noreturn]] void raise_as(const char* name, const std::exception& e) {
  py::object cls = py::module_::import("taskengine.errors").attr(name);
  PyErr_SetString(cls.ptr(), e.what());
  throw py::error_already_set();
}

}  // namespace

void register_errors(py::module_&) {
  py::register_exception_translator([](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const InvalidUrl& e) {  // subclasses before their bases
      raise_as("InvalidUrl", e);
    } catch (const JobConfigError& e) {
      raise_as("JobConfigError", e);
    } catch (const ArtifactTooLarge& e) {
      raise_as("ArtifactTooLarge", e);
    } catch (const InvalidArgument& e) {
      raise_as("InvalidArgument", e);
    } catch (const NotFound& e) {
      raise_as("NotFound", e);
    } catch (const ConnectionError& e) {
      raise_as("StoreUnavailable", e);
    } catch (const SchemaError& e) {
      raise_as("SchemaError", e);
    } catch (const StoreError& e) {
      raise_as("StoreError", e);
    } catch (const StaleAttempt& e) {
      raise_as("StaleAttempt", e);
    } catch (const Error& e) {
      raise_as("TaskEngineError", e);
    } catch (const nlohmann::json::exception& e) {
      raise_as("InvalidArgument", e);
    }
  });
}

}  // namespace taskengine::bindings
