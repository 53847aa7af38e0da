# shellcheck shell=bash
# Makes a PostgreSQL server available to the tests. SOURCE it, don't run it:
#
#   source scripts/ensure-postgres.sh && trap taskengine_stop_postgres EXIT
#
# It exports TASKENGINE_TEST_POSTGRES, an admin URL (postgresql://postgres@127.0.0.1:PORT/postgres)
# that the tests use to create and drop their own databases. In order, it uses:
#   1. $TASKENGINE_TEST_POSTGRES, if it is set and answers;
#   2. a server on 127.0.0.1:5432 that lets user postgres in without a password;
#   3. a throwaway cluster: initdb into a fresh temporary directory, trust auth, a free port on
#      127.0.0.1, fsync off. taskengine_stop_postgres stops it and removes the directory.
# TASKENGINE_PG_FORCE_THROWAWAY=1 skips 1 and 2.
# Debian's packaged cluster is never started or changed: it asks for passwords over TCP.
# It sets no shell options and leaves only the variables and functions named here behind.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  echo "ensure-postgres.sh must be sourced: source ${BASH_SOURCE[0]}" >&2
  exit 2
fi

# The newest of Debian's server binary directories (/usr/lib/postgresql/N/bin), or nothing.
_taskengine_pg_bindir() {
  local dir best="" best_version=0 version
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]] || continue
    version="${dir#/usr/lib/postgresql/}"
    version="${version%/bin}"
    [[ "$version" =~ ^[0-9]+$ ]] || continue
    if ((version > best_version)); then
      best="$dir"
      best_version="$version"
    fi
  done
  [[ -n "$best" ]] && printf '%s\n' "$best"
}

# Whether the server at URL answers a query without asking for a password.
_taskengine_pg_answers() {
  local psql
  psql="$(command -v psql || true)"
  if [[ -z "$psql" ]]; then
    local bindir
    bindir="$(_taskengine_pg_bindir || true)"
    [[ -n "$bindir" && -x "$bindir/psql" ]] || return 1
    psql="$bindir/psql"
  fi
  PGCONNECT_TIMEOUT=3 "$psql" -X -w -q -A -t -d "$1" -c 'select 1' >/dev/null 2>&1
}

# Runs a command as the OS user that owns the throwaway cluster (postgres when we are root:
# initdb and postgres refuse to run as root).
_taskengine_pg_as_owner() {
  if [[ "$(id -u)" != 0 ]]; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    (cd / && runuser -u postgres -- "$@")
  else
    local quoted
    printf -v quoted '%q ' "$@"
    (cd / && su -s /bin/sh postgres -c "$quoted")
  fi
}

_taskengine_pg_free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

_taskengine_pg_start_throwaway() {
  local bindir dir port try
  bindir="$(_taskengine_pg_bindir || true)"
  if [[ -z "$bindir" ]]; then
    echo "ensure-postgres: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin;" \
      "run scripts/install-deps.sh" >&2
    return 1
  fi
  if [[ "$(id -u)" == 0 ]]; then
    if ! id postgres >/dev/null 2>&1; then
      echo "ensure-postgres: no 'postgres' OS user to run the server as" >&2
      return 1
    fi
    # /tmp, not $TMPDIR: the postgres user must be able to reach the directory.
    dir="$(mktemp -d /tmp/taskengine-pg.XXXXXX)" || return 1
    chown postgres: "$dir" || {
      rm -rf "$dir"
      return 1
    }
  else
    dir="$(mktemp -d "${TMPDIR:-/tmp}/taskengine-pg.XXXXXX")" || return 1
  fi
  TASKENGINE_PG_THROWAWAY_DIR="$dir"
  _TASKENGINE_PG_BINDIR="$bindir"

  if ! _taskengine_pg_as_owner "$bindir/initdb" -D "$dir/data" --auth=trust -U postgres \
    -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1; then
    echo "ensure-postgres: initdb failed:" >&2
    tail -n 20 "$dir/initdb.log" >&2
    taskengine_stop_postgres
    return 1
  fi

  # The free port may be taken between the check and the start: try a few.
  for try in 1 2 3; do
    port="$(_taskengine_pg_free_port)" || break
    if _taskengine_pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null 2>&1; then
      TASKENGINE_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$port/postgres"
      _TASKENGINE_PG_URL="$TASKENGINE_TEST_POSTGRES"
      export TASKENGINE_TEST_POSTGRES
      if _taskengine_pg_answers "$TASKENGINE_TEST_POSTGRES"; then
        echo "ensure-postgres: using a throwaway PostgreSQL $(basename "$(dirname "$bindir")")" \
          "cluster at $TASKENGINE_TEST_POSTGRES (in $dir)"
        return 0
      fi
      _taskengine_pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop \
        >/dev/null 2>&1 || true
    fi
    echo "ensure-postgres: starting the throwaway cluster on port $port failed (try $try)" >&2
  done
  if [[ -f "$dir/server.log" ]]; then
    tail -n 20 "$dir/server.log" >&2
  fi
  taskengine_stop_postgres
  return 1
}

# Stops the throwaway cluster, if this script started one, and removes its directory.
# A no-op otherwise, and safe to call twice.
taskengine_stop_postgres() {
  local dir="${TASKENGINE_PG_THROWAWAY_DIR:-}" bindir="${_TASKENGINE_PG_BINDIR:-}"
  [[ -n "$dir" ]] || return 0
  if [[ -n "$bindir" && -f "$dir/data/postmaster.pid" ]]; then
    _taskengine_pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop \
      >/dev/null 2>&1 ||
      _taskengine_pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop \
        >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  if [[ -n "${_TASKENGINE_PG_URL:-}" && "${TASKENGINE_TEST_POSTGRES:-}" == "$_TASKENGINE_PG_URL" ]]
  then
    unset TASKENGINE_TEST_POSTGRES
  fi
  unset TASKENGINE_PG_THROWAWAY_DIR _TASKENGINE_PG_BINDIR _TASKENGINE_PG_URL
  return 0
}

_taskengine_ensure_postgres() {
  local local_url="postgresql://postgres@127.0.0.1:5432/postgres"
  if [[ -n "${TASKENGINE_PG_THROWAWAY_DIR:-}" && -n "${_TASKENGINE_PG_URL:-}" ]] &&
    _taskengine_pg_answers "$_TASKENGINE_PG_URL"; then
    TASKENGINE_TEST_POSTGRES="$_TASKENGINE_PG_URL"
    export TASKENGINE_TEST_POSTGRES
    echo "ensure-postgres: using the throwaway cluster already started at" \
      "$TASKENGINE_TEST_POSTGRES"
    return 0
  fi
  if [[ "${TASKENGINE_PG_FORCE_THROWAWAY:-0}" != 1 ]]; then
    if [[ -n "${TASKENGINE_TEST_POSTGRES:-}" ]]; then
      if _taskengine_pg_answers "$TASKENGINE_TEST_POSTGRES"; then
        export TASKENGINE_TEST_POSTGRES
        echo "ensure-postgres: using \$TASKENGINE_TEST_POSTGRES=$TASKENGINE_TEST_POSTGRES"
        return 0
      fi
      echo "ensure-postgres: \$TASKENGINE_TEST_POSTGRES=$TASKENGINE_TEST_POSTGRES does not" \
        "answer; looking further" >&2
    fi
    if _taskengine_pg_answers "$local_url"; then
      TASKENGINE_TEST_POSTGRES="$local_url"
      export TASKENGINE_TEST_POSTGRES
      echo "ensure-postgres: using the local server at $TASKENGINE_TEST_POSTGRES"
      return 0
    fi
  fi
  _taskengine_pg_start_throwaway
}

_taskengine_ensure_postgres
