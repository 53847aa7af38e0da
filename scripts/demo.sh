#!/usr/bin/env bash
# Sets everything up (Debian packages, .venv, the build) and runs the demo on the embedded
# SQLite store. Extra arguments go to `taskengine demo`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

bash scripts/setup.sh
exec .venv/bin/taskengine demo "$@"
