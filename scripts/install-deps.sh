#!/usr/bin/env bash
# Installs the Debian (bookworm) packages that taskengine's build and tests need.
# Idempotent: when every package is already installed it does nothing at all, and it
# refreshes the package lists only when something is missing.
# Runs as root as it is, and through sudo otherwise.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libpqxx-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libboost-dev libboost-filesystem-dev libsqlite3-dev
  libgtest-dev libgmock-dev
  postgresql postgresql-client
  clang-format python3-venv
)

# The Python module builds against the headers of the interpreter that runs the build:
# Debian's own python3 needs python3-dev for them (a pyenv or other Python brings its own).
if [[ "$(python3 -c 'import sys; print(sys.prefix)' 2>/dev/null || true)" == /usr ]]; then
  packages+=(python3-dev)
fi

missing=()
for pkg in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  if [[ "$status" != installed ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

as_root=()
if [[ "$(id -u)" != 0 ]]; then
  as_root=(sudo)
fi

echo "install-deps: installing ${missing[*]}"

# Another apt or dpkg may hold the locks for a while (e.g. on a machine that is still
# provisioning): wait for them rather than fail.
apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)

for try in 1 2 3; do
  if "${apt[@]}" update -qq; then
    break
  fi
  if ((try == 3)); then
    echo "install-deps: apt-get update failed" >&2
    exit 1
  fi
  sleep 10
done

"${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}"
