#!/usr/bin/env bash
# Builds the C++ core and its GoogleTest suite with AddressSanitizer + UndefinedBehaviorSanitizer
# (build/asan, plain CMake, no Python module) and runs the suite against SQLite and PostgreSQL.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

SANITIZE=1 bash scripts/setup.sh

# shellcheck source=scripts/ensure-postgres.sh
source scripts/ensure-postgres.sh
trap taskengine_stop_postgres EXIT
export TASKENGINE_REQUIRE_POSTGRES=1

# Tests that start Python executors find the .venv's interpreter (with taskengine installed).
export PATH="$repo/.venv/bin:$PATH"
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:strict_init_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

ctest --test-dir build/asan --output-on-failure --no-tests=error --timeout 600
