#!/usr/bin/env bash
# Benchmark: one `signet serve` process running N_SMALL small zones (about
# 100 records each) and one zone of N_BIG TLD-like delegations (the
# reference zone of bench/genzone.py), all under policies/tld-ecdsa.toml
# (ECDSA P-256, NSEC3 opt-out) with soft keys that serve makes itself.
#
#   bench/serve.sh [N_SMALL] [N_BIG]   (default 200 1000000;
#                                       e.g. 20 20000 for a smoke run)
#
# Measures and prints:
#   * the time from serve's start until every zone is first published
#     (keys made, signed, through the gate), and serve's CPU time for it;
#   * serve's CPU use while idle, over 30 s right after that
#     (utime + stime from /proc/PID/stat): inputs polled, nothing to do;
#   * peak RSS (VmHWM from /proc/PID/status) at the end;
#   * the time from an input change (a new SOA serial, written by rename)
#     to the new signed output in place (its inode changes; polled every
#     50 ms), for a small zone and for the big zone, 3 times each, median;
#   * the time from SIGTERM to exit;
#   * for scale, the big zone's managed run from the command line
#     (`signet sign tld.`) right after, at the same load.
#
# Work files in bench/work/serve (git-ignored); the big input is generated
# once into bench/work/ref-N_BIG.zone (the same file bench/sign.sh uses).
set -euo pipefail
cd "$(dirname "$0")/.."

n_small=${1:-200}
n_big=${2:-1000000}
reps=3
idle_window=30
for tool in python3; do
  command -v "$tool" >/dev/null || { echo "serve.sh: $tool missing: run bash .ci/setup" >&2; exit 2; }
done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
cargo build --release --quiet --bin signet
signet=$PWD/target/release/signet

mkdir -p bench/work
big_input=bench/work/ref-$n_big.zone
if [ ! -s "$big_input" ]; then
  echo "== generating $n_big delegations into $big_input"
  python3 bench/genzone.py --count "$n_big" --origin tld. -o "$big_input"
fi

work=$PWD/bench/work/serve
rm -rf "$work"
mkdir -p "$work/in" "$work/out"
mkdir -m 0700 "$work/keys"
export SIGNET_DB=$work/signet.db
serve_pid=
cleanup() {
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# Small zones: genzone's generator with 36 delegations gives ~100 records.
echo "== $n_small small zones and the big one (tld., $n_big delegations)"
python3 - "$work/in" "$n_small" <<'EOF'
import sys
sys.path.insert(0, "bench")
import genzone
folder, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    with open(f"{folder}/s{i:04d}.bench.zone", "w", encoding="ascii", newline="\n") as f:
        genzone.generate(f"s{i:04d}.bench.", 36, i, f)
EOF
cp "$big_input" "$work/in/tld.zone"
small_records=$(grep -vc '^\$' "$work/in/s0001.bench.zone")

sed "s|^store = .*|store = \"file:$work/keys\"|" policies/tld-ecdsa.toml >"$work/policy.toml"
"$signet" init >/dev/null
"$signet" policy import "$work/policy.toml" >/dev/null
for ((i = 1; i <= n_small; i++)); do
  z=$(printf 's%04d.bench.' "$i")
  "$signet" zone add "$z" --policy tld-ecdsa --input "$work/in/${z}zone" --output "$work/out/${z}zone" >/dev/null
done
"$signet" zone add tld. --policy tld-ecdsa --input "$work/in/tld.zone" --output "$work/out/tld.zone" >/dev/null

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/serve.toml" <<EOF
[serve]
metrics = "127.0.0.1:$port"
EOF

clk=$(getconf CLK_TCK)
# serve's CPU seconds so far (user + system).
cpu_seconds() { awk -v clk="$clk" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / clk }' "/proc/$serve_pid/stat"; }
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$serve_pid/status"; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
alive() { kill -0 "$serve_pid" 2>/dev/null || { echo "serve.sh: signet serve died; the end of its log:" >&2; tail -20 "$work/serve.log" >&2; exit 1; }; }

# Counts from `signet status`: "published_small big_published failing".
published() {
  "$signet" status --format json | python3 -c '
import json, sys
zones = json.load(sys.stdin)
small = sum(1 for z in zones if z["zone"] != "tld." and z["published_serial"] is not None)
big = any(z["zone"] == "tld." and z["published_serial"] is not None for z in zones)
failing = sum(1 for z in zones if z["consecutive_failures"])
print(small, int(big), failing)'
}

echo "== signet serve (log: $work/serve.log); load average $(cut -d' ' -f1-3 /proc/loadavg)"
t_start=$(now)
"$signet" serve --db "$SIGNET_DB" --config "$work/serve.toml" --log-format json 2>"$work/serve.log" &
serve_pid=$!
t_small= t_big=
while :; do
  alive
  read -r n_pub big failing < <(published)
  if [ -z "$t_small" ] && [ "$n_pub" = "$n_small" ]; then t_small=$(now); fi
  if [ -z "$t_big" ] && [ "$big" = 1 ]; then t_big=$(now); fi
  [ -n "$t_small" ] && [ -n "$t_big" ] && break
  [ "$failing" = 0 ] || echo "serve.sh: $failing zone(s) failing; see signet status" >&2
  sleep 0.5
done
cpu_publish=$(cpu_seconds)
# The exact instants, from serve's log: each zone's first "zone published".
read -r t_small t_big < <(python3 - "$work/serve.log" <<'PY'
import json, sys
from datetime import datetime
first = {}
for line in open(sys.argv[1]):
    event = json.loads(line)
    fields = event["fields"]
    if fields.get("message") == "zone published":
        at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
        first.setdefault(fields["zone"], at)
print(max(at for zone, at in first.items() if zone != "tld."), first["tld."])
PY
)
t_all=$(awk -v a="$t_small" -v b="$t_big" 'BEGIN { printf "%.6f", (a > b ? a : b) }')
echo "all published after $(elapsed "$t_start" "$t_all") s (small zones $(elapsed "$t_start" "$t_small") s, big zone $(elapsed "$t_start" "$t_big") s), $cpu_publish CPU s"

echo "== idle for $idle_window s"
cpu0=$(cpu_seconds)
sleep "$idle_window"
alive
cpu1=$(cpu_seconds)
idle_cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v w="$idle_window" 'BEGIN { printf "%.2f CPU s, %.2f %% of one core", b - a, (b - a) / w * 100 }')
rss_idle=$(status_kb VmRSS)
threads=$(status_kb Threads)
echo "$idle_cpu; RSS $((rss_idle / 1024)) MiB, $threads threads"

serial_of() { awk '$4 == "SOA" { print $7; exit }' "$1"; }
# Writes a new version of the zone's input (SOA serial + 1) by rename, then
# waits for the output to be replaced; prints the seconds it took.
change() {
  local zone=$1 input="$work/in/${1}zone" output="$work/out/${1}zone"
  local old_serial new_serial inode t0 before
  old_serial=$(serial_of "$input")
  new_serial=$((old_serial + 1))
  before=$(serial_of "$output")
  sed "2s/ $old_serial / $new_serial /" "$input" >"$input.new"
  [ "$(serial_of "$input.new")" = "$new_serial" ] || { echo "serve.sh: cannot change $input's serial" >&2; exit 1; }
  inode=$(stat -c %i "$output")
  mv -f "$input.new" "$input"
  t0=$(now)
  while [ "$(stat -c %i "$output")" = "$inode" ]; do
    sleep 0.05
    alive
  done
  elapsed "$t0" "$(now)"
  [ "$(serial_of "$output")" != "$before" ] || { echo "serve.sh: $output replaced, serial unchanged" >&2; exit 1; }
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "== input changes, $reps each"
small_runs=() big_runs=()
for ((r = 1; r <= reps; r++)); do
  small_runs+=("$(change s0001.bench.)")
  sleep 1
done
for ((r = 1; r <= reps; r++)); do
  big_runs+=("$(change tld.)")
  sleep 1
done
echo "small: ${small_runs[*]} s; big: ${big_runs[*]} s"

hwm=$(status_kb VmHWM)
metrics_zones=$( (curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null || true) | awk '$1 == "signet_zones" { print $2 }')
metrics_zones=${metrics_zones:-"(no answer)"}
read -r n_pub big failing < <(published)

echo "== SIGTERM"
t0=$(now)
kill -TERM "$serve_pid"
code=0
wait "$serve_pid" || code=$?
t_stop=$(elapsed "$t0" "$(now)")
serve_pid=
echo "exit $code after $t_stop s"

# For scale: the same managed run of the big zone from the command line,
# on the same machine at the same load.
cli_start=$(now)
"$signet" sign tld. >/dev/null
cli_sign=$(elapsed "$cli_start" "$(now)")

echo
echo "signet serve: $n_small zones of $small_records records + tld. ($n_big delegations), tld-ecdsa (P-256, NSEC3 opt-out), soft keys, $(nproc) cores, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %s\n' measure value
printf '%-44s %s\n' "first publication of every zone" "$(elapsed "$t_start" "$t_all") s ($cpu_publish CPU s; small zones all after $(elapsed "$t_start" "$t_small") s, big zone after $(elapsed "$t_start" "$t_big") s)"
printf '%-44s %s\n' "idle, $idle_window s after that" "$idle_cpu"
printf '%-44s %s\n' "peak RSS (VmHWM)" "$((hwm / 1024)) MiB (idle RSS $((rss_idle / 1024)) MiB)"
printf '%-44s %s\n' "input change -> output in place, small zone" "$(median "${small_runs[@]}") s median (${small_runs[*]})"
printf '%-44s %s\n' "input change -> output in place, big zone" "$(median "${big_runs[@]}") s median (${big_runs[*]})"
printf '%-44s %s\n' "(signet sign tld. from the command line)" "$cli_sign s"
printf '%-44s %s\n' "SIGTERM -> exit" "$t_stop s, exit $code"
printf '%-44s %s\n' "zones published / failing / metrics" "$((n_pub + big)) / $failing / signet_zones $metrics_zones"
[ "$code" = 0 ] && [ "$failing" = 0 ]
