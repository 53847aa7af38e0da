"""The package's shape: public names, typing marker, and life without the native module."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import taskengine
from conftest import worker_env

PACKAGE_DIR = Path(taskengine.__file__).resolve().parent


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=worker_env(), timeout=60
    )


def test_import_without_the_native_module_and_a_clear_error_on_use() -> None:
    code = """
import sys
sys.modules["taskengine._core"] = None  # as if it was never built
import taskengine
from taskengine import Command, InvalidArgument, Task, errors
import taskengine._executor, taskengine._traceback
assert Command(["true"]).name == "true"
for attempt in ("taskengine.connect", "from taskengine import connect", "taskengine.Engine"):
    try:
        exec(attempt)
    except ImportError as exc:
        assert "taskengine._core is not available" in str(exc), exc
        assert "pip install" in str(exc), exc
    else:
        raise SystemExit(f"{attempt} did not raise")
print("ok")
"""
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_errors_module_names_match_the_core_contract() -> None:
    from taskengine import errors

    expected = {
        "TaskEngineError": (Exception,),
        "InvalidArgument": (errors.TaskEngineError, ValueError),
        "InvalidUrl": (errors.InvalidArgument,),
        "JobConfigError": (errors.InvalidArgument,),
        "NotFound": (errors.TaskEngineError, LookupError),
        "StoreUnavailable": (errors.TaskEngineError, ConnectionError),
        "StoreError": (errors.TaskEngineError,),
        "SchemaError": (errors.StoreError,),
        "StaleAttempt": (errors.TaskEngineError,),
        "FunctionNotFound": (errors.InvalidArgument,),
        "NotSerializable": (errors.InvalidArgument, TypeError),
        "TaskConfigError": (errors.InvalidArgument,),
        "ArtifactTooLarge": (errors.InvalidArgument,),
        "NoCurrentTask": (errors.TaskEngineError, RuntimeError),
        # Raised inside tasks, never by the core: a BaseException, like CancelledError.
        "TaskCanceled": (BaseException,),
    }
    for name, bases in expected.items():
        cls = getattr(errors, name)
        assert cls.__bases__ == bases, name
        assert cls("message").args == ("message",)  # the translator's call
    assert set(errors.__all__) == set(expected)


def test_typed_package() -> None:
    assert (PACKAGE_DIR / "py.typed").is_file()
    assert (PACKAGE_DIR / "_core.pyi").is_file()


def test_every_public_name_exists_and_is_documented() -> None:
    assert len(set(taskengine.__all__)) == len(taskengine.__all__)
    for name in taskengine.__all__:
        value = getattr(taskengine, name)  # loads the lazy ones (needs the native module)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"taskengine.{name} has no docstring"
    assert set(dir(taskengine)) >= set(taskengine.__all__)
