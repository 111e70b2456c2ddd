# A PostgreSQL cluster of a script's own, from the Debian package's
# binaries (sourced by tests/db-on-postgres.sh and bench/postgres.sh):
#
#   pg_start DIR    makes a cluster in DIR, starts its server on 127.0.0.1
#                   and a free port (password authentication, one user
#                   `signet`; as `postgres` through setpriv under root) and
#                   waits until it accepts connections; sets PG_BIN,
#                   PG_PORT, PG_PID and exports PGPASSWORD
#   pg_psql DB ARGS psql on database DB, quiet, stopping at the first error
#   pg_url DB       the database's URL (no password)
#   pg_stop         stops the server by pid
#
# Nothing else is touched: the server has its own socket directory in DIR.
# Under root, DIR's parents must let the `postgres` user through.

pg_start() {
  local dir=$1
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ ! -x "$PG_BIN/postgres" ]; then
    echo "PostgreSQL missing (package postgresql): run bash .ci/setup" >&2
    return 2
  fi
  mkdir -p "$dir"
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  PGPASSWORD=$(head -c 18 /dev/urandom | base64 | tr -dc 'a-zA-Z0-9')
  export PGPASSWORD
  echo "$PGPASSWORD" >"$dir/pwfile"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
  _pg_as_server_user "$PG_BIN/initdb" -D "$dir/data" -U signet --auth=scram-sha-256 -E UTF8 --no-sync \
    --pwfile "$dir/pwfile" >"$dir/initdb.log"
  rm -f "$dir/pwfile"
  _pg_as_server_user "$PG_BIN/postgres" -D "$dir/data" -c listen_addresses=127.0.0.1 -c "port=$PG_PORT" \
    -c "unix_socket_directories=$dir" 2>"$dir/server.log" &
  PG_PID=$!
  local _
  for _ in $(seq 300); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U signet -d postgres && return 0
    sleep 0.1
  done
  echo "PostgreSQL does not accept connections: $(tail -5 "$dir/server.log")" >&2
  return 1
}

pg_psql() {
  local db=$1
  shift
  "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U signet -d "$db" -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}

pg_url() {
  echo "postgres://signet@127.0.0.1:$PG_PORT/$1"
}

pg_stop() {
  [ -n "${PG_PID:-}" ] || return 0
  kill "$PG_PID" 2>/dev/null || true
  wait "$PG_PID" 2>/dev/null || true
  PG_PID=
}

_pg_as_server_user() {
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
  else
    "$@"
  fi
}
