#!/usr/bin/env bash
# The one test command: sets up (Debian packages, .venv, build), makes PostgreSQL available,
# then runs the C++ suite (ctest: store conformance on SQLite and PostgreSQL, executors), ruff,
# mypy, stubtest (the committed _core.pyi against the build) and pytest. Every step runs even
# when an earlier one failed (except what needs a build that failed); a summary at the end
# lists each step, and the exit status is non-zero if any step failed.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo" || exit 1

summary=()
failed=0

banner() { printf '\n=== %s ===\n' "$1"; }
record() {  # record NAME EXIT_STATUS [WHY]
  if (($2 == 0)); then
    summary+=("PASS  $1")
  else
    summary+=("FAIL  $1 (exit $2${3:+: $3})")
    failed=1
  fi
}
skip() { summary+=("SKIP  $1 ($2)"); }

banner "setup"
bash scripts/setup.sh
setup_status=$?
record "setup (packages, .venv, build)" "$setup_status"

banner "postgres"
# shellcheck source=scripts/ensure-postgres.sh
if source scripts/ensure-postgres.sh; then
  record "postgres" 0
else
  record "postgres" 1 "no PostgreSQL server for the tests"
fi
trap taskengine_stop_postgres EXIT
export TASKENGINE_REQUIRE_POSTGRES=1
# Tests that start Python executors or the CLI find the .venv's tools first.
export PATH="$repo/.venv/bin:$PATH"

banner "C++ tests (ctest)"
if ((setup_status != 0)); then
  skip "ctest" "setup failed"
else
  ctest_dir=""
  for file in build/*/CTestTestfile.cmake; do
    [[ -f "$file" ]] || continue
    dir="${file%/CTestTestfile.cmake}"
    [[ "$dir" == build/asan ]] && continue
    if [[ -z "$ctest_dir" || "$file" -nt "$ctest_dir/CTestTestfile.cmake" ]]; then
      ctest_dir="$dir"
    fi
  done
  if [[ -z "$ctest_dir" ]]; then
    echo "no build/*/CTestTestfile.cmake: was the project built with TASKENGINE_BUILD_TESTS=ON?"
    record "ctest" 1 "no CTest tree under build/"
  else
    ctest --test-dir "$ctest_dir" --output-on-failure --no-tests=error --timeout 600
    record "ctest ($ctest_dir)" $?
  fi
fi

banner "benchmark smoke (claim_bench --quick)"
# Benchmarks assert nothing; this only keeps the harness from rotting.
if ((setup_status != 0)); then
  skip "bench smoke" "setup failed"
elif [[ -n "${ctest_dir:-}" && -x "$ctest_dir/bench/taskengine_claim_bench" ]]; then
  "$ctest_dir/bench/taskengine_claim_bench" --quick
  record "bench smoke" $?
else
  record "bench smoke" 1 "taskengine_claim_bench was not built"
fi

banner "bench harness (quick)"
# The peer comparison at tiny sizes (bench/run.sh --quick): checks that every system's
# adapter still dispatches, runs and verifies its tasks. Figures are not asserted.
if ((setup_status != 0)); then
  skip "bench harness (quick)" "setup failed"
else
  bash bench/run.sh --quick
  record "bench harness (quick)" $?
fi

banner "commands profile (quick)"
# bench/commands_profile.py at a tiny size, on both stores: it keeps working.
if ((setup_status != 0)); then
  skip "commands profile (quick)" "setup failed"
else
  .venv/bin/python -m bench.commands_profile --runs 1 --tasks 20
  record "commands profile (quick)" $?
fi

banner "ruff"
if [[ -x .venv/bin/ruff ]]; then
  .venv/bin/ruff check python tests bench && .venv/bin/ruff format --check python tests bench
  record "ruff (lint and format)" $?
else
  skip "ruff" "not installed in .venv"
fi

banner "clang-format"
if command -v clang-format >/dev/null; then
  git ls-files -- 'cpp/*.cpp' 'cpp/*.hpp' 'bindings/*.cpp' 'bindings/*.hpp' 'tests/cpp/*.cpp' \
    'tests/cpp/*.hpp' 'bench/*.cpp' 'bench/*.hpp' | xargs clang-format --dry-run --Werror
  record "clang-format" $?
else
  skip "clang-format" "not installed"
fi

banner "mypy"
if [[ ! -f python/taskengine/py.typed ]]; then
  echo "python/taskengine has no py.typed: not type-checked"
  skip "mypy" "python/taskengine has no py.typed"
elif [[ -x .venv/bin/mypy ]]; then
  .venv/bin/mypy python/taskengine
  record "mypy" $?
else
  skip "mypy" "not installed in .venv"
fi

banner "stubtest"
# The committed stub of the native module must match what the build exports.
if ((setup_status != 0)); then
  skip "stubtest" "setup failed"
else
  .venv/bin/python -m mypy.stubtest taskengine._core \
    --allowlist tests/stubtest-allowlist.txt
  record "stubtest" $?
fi

banner "pytest"
if ((setup_status != 0)); then
  skip "pytest" "setup failed"
else
  .venv/bin/python -m pytest -q
  pytest_status=$?
  if ((pytest_status == 5)); then
    record "pytest" 5 "no tests collected"
  else
    record "pytest" "$pytest_status"
  fi
fi

banner "summary"
printf '%s\n' "${summary[@]}"
if ((failed)); then
  echo "test.sh: FAILED"
  exit 1
fi
echo "test.sh: all steps passed"
