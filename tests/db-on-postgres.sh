#!/usr/bin/env bash
# The database layer's unit tests once more, on PostgreSQL: every test
# that takes its database from db::scratch (the journal, the gate's memo,
# the leases and their fencing, the transfer store) runs against a fresh
# database on a PostgreSQL server of this script's own (tests/lib/postgres.sh:
# 127.0.0.1, a free port, stopped by pid at the end). `cargo test` has
# run them on SQLite; the integration tests run the binary on both.
#
#   bash tests/db-on-postgres.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/lib/postgres.sh

work=$(mktemp -d)
chmod 755 "$work" # the server runs as `postgres` under root
trap 'pg_stop; rm -rf "$work"' EXIT
pg_start "$work/pg"
echo "== PostgreSQL at 127.0.0.1:$PG_PORT: the database tests on it"
SIGNET_TEST_POSTGRES=$(pg_url postgres) cargo test --locked --lib -- db:: serve::xfr_store
