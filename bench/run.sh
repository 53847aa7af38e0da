#!/usr/bin/env bash
# The one command of the peer comparison: taskengine (SQLite and PostgreSQL) against Celery,
# Dramatiq, RQ, Huey, Procrastinate and PgQueuer on this machine. See docs/benchmarks.md.
#
#   bash bench/run.sh                          full run (~30 min), tables on stdout
#   bash bench/run.sh --quick                  smoke run: tiny sizes, one run (CI)
#   bash bench/run.sh --json build/bench.json --markdown build/bench.md --charts docs/img
#   bash bench/run.sh --help                   every option of bench/compare.py
#
# Needs the project's .venv (bash scripts/setup.sh, which also builds the claim benchmark).
# Makes the peers' venv build/bench-venv from bench/requirements-peers.txt (exact versions,
# reinstalled when that file changes), makes PostgreSQL available (scripts/ensure-postgres.sh:
# $TASKENGINE_TEST_POSTGRES, else 127.0.0.1:5432, else a throwaway cluster) and runs
# bench/compare.py with the arguments given. Redis: 127.0.0.1:6379, else a throwaway
# redis-server on a free port; the harness flushes only its own database number.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import taskengine' 2>/dev/null; then
  echo "bench/run.sh: no taskengine in .venv: run 'bash scripts/setup.sh' first" >&2
  exit 2
fi

venv="build/bench-venv"
requirements="bench/requirements-peers.txt"
stamp="$venv/.requirements-installed"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "bench/run.sh: creating $venv"
  python3 -m venv "$venv"
fi
if [[ ! -f "$stamp" ]] || ! cmp -s "$requirements" "$stamp"; then
  echo "bench/run.sh: installing the peers into $venv (log: $venv/install.log)"
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q \
    -r "$requirements" >"$venv/install.log" 2>&1; then
    tail -n 30 "$venv/install.log" >&2
    exit 1
  fi
  cp "$requirements" "$stamp"
fi

# shellcheck source=scripts/ensure-postgres.sh
source scripts/ensure-postgres.sh
trap taskengine_stop_postgres EXIT

"$venv/bin/python" bench/compare.py "$@"
