#!/usr/bin/env bash
# Makes a PostgreSQL server answer on 127.0.0.1:${PGPORT:-5432} with a database named ${PGDATABASE:-payments},
# installing it from Debian's packages and starting a cluster owned by the postgres user when needed.
# PG_FRESH=1 makes the database anew (a test run's: nothing an earlier run left can leak in).
# Prints the DATABASE_URL to use on its last line.
set -euo pipefail
port=${PGPORT:-5432}
db=${PGDATABASE:-payments}
# Outside /root: the postgres user must be able to reach it.
data_dir=${PG_DATA_DIR:-/var/lib/payment-scheduler/pgdata}

find_pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
  done
  return 1
}

if ! pg_bin=$(find_pg_bin); then
  echo "ensure-postgres: installing PostgreSQL from Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  pg_bin=$(find_pg_bin)
fi

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
  if [ ! -s "$data_dir/PG_VERSION" ]; then
    echo "ensure-postgres: creating a cluster in $data_dir" >&2
    mkdir -p "$data_dir"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$data_dir" && chmod 700 "$data_dir"
    as_postgres "$pg_bin/initdb" -D "$data_dir" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  mkdir -p /var/run/postgresql && { [ "$(id -u)" != 0 ] || chown postgres:postgres /var/run/postgresql; }
  # A server killed without shutting down leaves its pid file; if that pid now belongs to some other
  # process, postgres refuses to start. Nothing answers on the port, so the file is stale.
  pid_file="$data_dir/postmaster.pid"
  if [ -f "$pid_file" ]; then
    old_pid=$(head -n 1 "$pid_file")
    if ! tr '\0' ' ' < "/proc/$old_pid/cmdline" 2>/dev/null | grep -q "postgres"; then
      echo "ensure-postgres: removing stale $pid_file (pid $old_pid is not a postgres server)" >&2
      rm -f "$pid_file"
    fi
  fi
  as_postgres "$pg_bin/pg_ctl" -D "$data_dir" -l "$data_dir/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >&2
fi

admin=("$pg_bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres)
if [ "${PG_FRESH:-}" = 1 ]; then
  "${admin[@]}" -q -c "set client_min_messages = warning" -c "drop database if exists \"$db\" with (force)" >&2
fi
if ! "${admin[@]}" -tAc "select 1 from pg_database where datname='$db'" | grep -q 1; then
  "${admin[@]}" -qc "create database \"$db\"" >&2
fi
echo "postgres://postgres@127.0.0.1:$port/$db"
