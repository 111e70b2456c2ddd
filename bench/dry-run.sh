#!/usr/bin/env bash
# Benchmark: a two-year `signet dry-run` of each example policy (release
# build, soft keys, the built-in example zone unless N is given), with the
# trace and the SVG written, one policy after another. The bar: each under
# 30 s.
#
#   bench/dry-run.sh [N]   (N: sign a generated zone of N delegations
#                           instead of the example zone)
#
# Prints wall and CPU seconds, peak RSS, versions published (each through
# the gate), safety-check instants and combinations, events, keys made.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-}
work=bench/work/dry-run
mkdir -p "$work"
for tool in python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "dry-run.sh: $tool missing: run bash .ci/setup" >&2; exit 2; }
done
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
cargo build --release --quiet --bin signet
signet=$PWD/target/release/signet

origin=example.
zone_args=()
if [ -n "$n" ]; then
  origin=tld.
  zone="bench/work/ref-$n.zone"
  [ -s "$zone" ] || python3 bench/genzone.py --count "$n" --origin "$origin" -o "$zone"
  zone_args=(--zone "$zone")
  echo "== zone: $zone, $(wc -l <"$zone") lines"
else
  echo "== zone: the built-in example zone"
fi

from=2027-01-01T00:00:00Z
until=2029-01-01T00:00:00Z
printf '%-20s %8s %8s %9s %9s %9s %13s %7s %5s  %s\n' POLICY WALL_S CPU_S RSS_MIB VERSIONS INSTANTS COMBINATIONS EVENTS KEYS "BAR (<30 s)"
for policy in policies/*.toml; do
  name=$(basename "$policy" .toml)
  rm -rf "$work/$name.trace"
  /usr/bin/time -f '%e %U %S %M' -o "$work/$name.time" \
    "$signet" dry-run --format json --policy "$policy" --origin "$origin" "${zone_args[@]}" \
      --from "$from" --until "$until" --trace "$work/$name.trace" --svg "$work/$name.svg" >"$work/$name.json"
  read -r wall user sys rss <"$work/$name.time"
  python3 - "$work/$name.json" "$name" "$wall" "$user" "$sys" "$rss" <<'PY'
import json, sys
report, name = json.load(open(sys.argv[1])), sys.argv[2]
wall, user, sys_s, rss = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
verdict = report["verdict"]["verdict"]
bar = "PASS" if wall < 30 and verdict == "safe" else "FAIL"
print(f"{name:<20} {wall:8.2f} {user + sys_s:8.2f} {rss / 1024:9.1f} {report['versions']:9} {report['instants']:9} "
      f"{report['combinations']:13} {len(report['events']):7} {len(report['keys']):5}  {bar} ({verdict})")
PY
done
echo "== outputs (JSON, trace, SVG) in $work"
