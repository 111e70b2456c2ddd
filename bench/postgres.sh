#!/usr/bin/env bash
# Benchmark: signet's state in PostgreSQL against SQLite (issue 26).
#
#   bench/postgres.sh [N] [ZONES]   (default 1000000 delegations, 300 zones;
#                                    e.g. 20000 30 for a smoke run)
#
# 1. The managed run of the reference zone (N TLD-like delegations,
#    bench/genzone.py; release build, soft keys, the tld-ecdsa policy with
#    NSEC3 opt-out), once with `--db FILE` and once with
#    `--db postgres://…`: the full first sign, one DS changed and one new
#    secure delegation (each through the full gate, the memo and journal
#    in the database). Wall seconds side by side, the ratio PostgreSQL /
#    SQLite printed.
# 2. Lease traffic at idle: three `signet serve` sharing ZONES small zones
#    on PostgreSQL (default lease 30 s, default db-poll-interval 1 s), once
#    every zone is signed and spread: the transactions the database
#    committed in 60 s (pg_stat_database), per service and per second, and
#    the lease rows written (tuples updated in zone_leases and signers).
#
# PostgreSQL is a cluster of the script's own (tests/lib/postgres.sh:
# 127.0.0.1, a free port, password only, stopped by pid at the end). Everything is
# under bench/work/postgres-N/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-1000000}
zones=${2:-300}
for tool in python3 /usr/bin/time setpriv; do
  command -v "$tool" >/dev/null || { echo "postgres.sh: $tool missing: run bash .ci/setup" >&2; exit 2; }
done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --release --quiet --bin signet
signet=$PWD/target/release/signet
zone=bench/work/ref-$n.zone
mkdir -p bench/work
[ -s "$zone" ] || python3 bench/genzone.py --count "$n" --origin tld. -o "$zone"
echo "== reference zone: $zone, $(wc -l <"$zone") lines"

w=$PWD/bench/work/postgres-$n
rm -rf "$w"
mkdir -p "$w/pg"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# --- the PostgreSQL cluster
. tests/lib/postgres.sh
pg_start "$w/pg"
pids+=("$PG_PID")
psql() { pg_psql "$@"; }
psql postgres -c 'CREATE DATABASE managed' -c 'CREATE DATABASE idle'
echo "== PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') at 127.0.0.1:$PG_PORT (fsync on, defaults)"

# --- 1. the managed run on both databases
# The policy with soft keys in directory $1, written to $2.
policy_with_keys() {
  mkdir -p "$1"
  python3 - policies/tld-ecdsa.toml "$2" "$1" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
text = re.sub(r'^store = .*$', f'store = "file:{sys.argv[3]}"', text, flags=re.M)
open(sys.argv[2], 'w').write(text)
EOF
}
t0=$(date -u -d '2026-12-01T00:00:00Z' +%s)

# `signet sign tld.` on database $1 at time $2: its wall seconds.
sign_at() {
  { /usr/bin/time -f '%e' "$signet" --db "$1" --now "$2" --format json sign tld. >"$w/run.json"; } 2>&1 | tail -1
}

# The three runs on database $1 (input copied to $2, keys in $2.keys):
# "full one-ds new-delegation".
managed_runs() {
  local db=$1 input=$2
  cp "$zone" "$input"
  policy_with_keys "$input.keys" "$input.policy.toml"
  "$signet" --db "$db" init >/dev/null
  "$signet" --db "$db" policy import "$input.policy.toml" --name bench >/dev/null
  "$signet" --db "$db" zone add tld. --policy bench --input "$input" --output "$input.signed" >/dev/null
  local line full one new
  line=$(grep -n -m1 ' DS ' "$input" | cut -d: -f1)
  full=$(sign_at "$db" "$t0")
  sed -i -E "$line s/[0-9A-F]{8}\$/00C0FFEE/" "$input"
  one=$(sign_at "$db" $((t0 + 60)))
  printf 'zz-bench-new.tld. 86400 IN NS ns1.example.net.\nzz-bench-new.tld. 3600 IN DS 4711 13 2 %s\n' \
    "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF" >>"$input"
  new=$(sign_at "$db" $((t0 + 120)))
  echo "$full $one $new"
}

echo
echo "== managed run of tld. ($n delegations), wall seconds"
read -r s_full s_one s_new < <(managed_runs "$w/signet.db" "$w/sqlite-in.zone")
read -r p_full p_one p_new < <(managed_runs "$(pg_url managed)" "$w/pg-in.zone")
ratio() { python3 -c "print(f'{$2 / $1:.2f}')"; }
printf '%-24s %9s %11s %17s\n' run SQLite PostgreSQL "PostgreSQL/SQLite"
printf '%-24s %9s %11s %17s\n' "full sign" "$s_full" "$p_full" "$(ratio "$s_full" "$p_full")"
printf '%-24s %9s %11s %17s\n' "one DS changed" "$s_one" "$p_one" "$(ratio "$s_one" "$p_one")"
printf '%-24s %9s %11s %17s\n' "new secure delegation" "$s_new" "$p_new" "$(ratio "$s_new" "$p_new")"

# --- 2. lease traffic at idle
idle=$(pg_url idle)
"$signet" --db "$idle" init >/dev/null
policy_with_keys "$w/small-keys" "$w/small.toml"
"$signet" --db "$idle" policy import "$w/small.toml" --name small >/dev/null
mkdir -p "$w/small"
for i in $(seq "$zones"); do
  printf '$ORIGIN z%s.test.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.%s\n' \
    "$i" $((i % 250 + 1)) >"$w/small/z$i.zone"
  "$signet" --db "$idle" zone add "z$i.test." --policy small --input "$w/small/z$i.zone" \
    --output "$w/small/z$i.signed" >/dev/null
done
for i in 1 2 3; do
  "$signet" --db "$idle" serve 2>"$w/serve-$i.log" &
  pids+=($!)
done
echo
echo "== lease traffic at idle: 3 services, $zones zones, lease 30 s"
for _ in $(seq 600); do
  signed=$(psql idle -c 'SELECT count(*) FROM zones WHERE last_serial IS NOT NULL')
  [ "$signed" = "$zones" ] && break
  sleep 1
done
[ "$signed" = "$zones" ] || { echo "postgres.sh: only $signed of $zones zones signed" >&2; exit 1; }
sleep 65 # every service takes its share, the runs' follow-ups end
stats() {
  psql idle -c "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = 'idle') || ' ' ||
    (SELECT coalesce(sum(n_tup_upd + n_tup_ins), 0) FROM pg_stat_user_tables WHERE relname IN ('zone_leases', 'signers'))"
}
# Every statement of the window logged, to say where the traffic is.
psql idle -c "ALTER SYSTEM SET log_statement = 'all'" -c 'SELECT pg_reload_conf()' >/dev/null
read -r c0 u0 < <(stats)
runs0=$(psql idle -c 'SELECT count(*) FROM runs')
mark=$(wc -l <"$w/pg/server.log")
sleep 60
read -r c1 u1 < <(stats)
runs1=$(psql idle -c 'SELECT count(*) FROM runs')
psql idle -c 'ALTER SYSTEM RESET log_statement' -c 'SELECT pg_reload_conf()' >/dev/null
echo "statements in 60 s, by kind (the first words of each):"
tail -n +"$((mark + 1))" "$w/pg/server.log" | grep -oE '(statement|execute [^:]*): .*' | sed -E 's/^(statement|execute [^:]*): //' | cut -c1-64 | sed -E 's/[0-9]+/N/g' |
  sort | uniq -c | sort -rn | head -15
echo "held: $(psql idle -c "SELECT string_agg(n::text, ' + ') FROM (SELECT count(*) n FROM zone_leases GROUP BY holder) h")"
echo "in 60 s: $((c1 - c0)) transactions committed ($(python3 -c "print(f'{($c1 - $c0) / 180:.1f}')") per service per second), $((u1 - u0)) lease and heartbeat rows written, $((runs1 - runs0)) runs"
