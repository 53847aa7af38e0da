#!/usr/bin/env bash
# Sets up a working tree: the Debian packages, a .venv with the build and test tools, and
# taskengine built and installed into it (C++ core, taskengine._core, taskengine-worker, the
# GoogleTest suite). Incremental: the CMake tree lives in build/<wheel tag>/ and is reused.
# Quiet unless something fails; the full log is build/setup.log.
#
#   SANITIZE=1 bash scripts/setup.sh   also builds the C++ core and its tests with
#                                      AddressSanitizer + UBSan in build/asan (plain CMake, no
#                                      Python module); scripts/test-sanitizers.sh runs them.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

bash scripts/install-deps.sh

mkdir -p build
log="$repo/build/setup.log"
: >"$log"

# Runs a step with its output going to the log; on failure shows the log's tail and stops.
run_logged() {
  local what="$1"
  shift
  echo "setup: $what" >>"$log"
  if ! "$@" >>"$log" 2>&1; then
    {
      echo "setup: $what failed. First errors in build/setup.log:"
      grep -n -m 20 -E 'CMake Error|error:|FAILED:|ERROR:' "$log" || true
      echo "setup: the end of build/setup.log:"
      tail -n 80 "$log"
    } >&2
    exit 1
  fi
}

if [[ ! -x .venv/bin/python ]]; then
  run_logged "creating .venv" python3 -m venv .venv
fi

# Build requirements (no build isolation, so they live in .venv) and the test tools.
run_logged "installing build and test requirements into .venv" \
  .venv/bin/python -m pip install --disable-pip-version-check -q \
  "scikit-build-core>=0.10" "pybind11>=2.12" "pydantic>=2" "PyYAML>=6" \
  "pytest>=8" "ruff>=0.6" "mypy>=1.10" types-PyYAML

echo "setup: building and installing taskengine into .venv (log: build/setup.log)"
run_logged "building and installing taskengine" \
  .venv/bin/python -m pip install --disable-pip-version-check --no-build-isolation -v . \
  --config-settings=cmake.define.TASKENGINE_BUILD_TESTS=ON \
  --config-settings=cmake.define.TASKENGINE_BUILD_BENCH=ON

if [[ "${SANITIZE:-0}" == 1 ]]; then
  # The sanitized build is plain CMake without the Python module: an ASan-instrumented
  # extension would need libasan preloaded into the interpreter. The .venv keeps the
  # normal build.
  echo "setup: building the sanitizer tree in build/asan"
  run_logged "configuring build/asan" \
    cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DTASKENGINE_SANITIZE=ON -DTASKENGINE_BUILD_TESTS=ON -DTASKENGINE_BUILD_PYTHON=OFF
  run_logged "building build/asan" cmake --build build/asan
fi

echo "setup: done"
