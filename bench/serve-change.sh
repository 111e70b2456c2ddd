#!/usr/bin/env bash
# Benchmark: `signet serve` on the reference zone of N delegations
# (bench/genzone.py) as a file input, release build, soft keys, tld-ecdsa
# (P-256, NSEC3 opt-out): the first publication (version served, then its
# output file in place) and one DS digest changed in the input file (the
# run reads the changed file again in full), from the service's JSON log;
# then the service's peak RSS. Everything under bench/work/serve-change-N/
# (git-ignored); serve is stopped by pid.
#
#   bench/serve-change.sh [N]   (default 5000000; e.g. 20000 for a smoke run)
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-5000000}
cargo build --release --quiet --bin signet
signet=$PWD/target/release/signet
mkdir -p bench/work
zone=bench/work/ref-$n.zone
[ -s "$zone" ] || python3 bench/genzone.py --count "$n" --origin tld. -o "$zone"
w=$PWD/bench/work/serve-change-$n
rm -rf "$w"
mkdir -p "$w"
mkdir -m 0700 "$w/keys"
export SIGNET_DB=$w/signet.db
sed "s|^store = .*|store = \"file:$w/keys\"|" policies/tld-ecdsa.toml >"$w/policy.toml"
cp "$zone" "$w/tld.zone"
"$signet" init >/dev/null
"$signet" policy import "$w/policy.toml" >/dev/null
"$signet" zone add tld. --policy tld-ecdsa --input "$w/tld.zone" --output "$w/tld.signed" >/dev/null

"$signet" serve --log-format json >"$w/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
# Waits until serve's log has $1 lines saying "output file written".
written() {
  until [ "$(grep -c '"output file written"' "$w/serve.log")" -ge "$1" ]; do
    kill -0 "$pid" 2>/dev/null || { tail "$w/serve.log" >&2; exit 1; }
    sleep 0.2
  done
}
written 1
# One DS digest and the SOA serial changed, written by rename.
python3 - "$w/tld.zone" <<'PY'
import os, sys
path = sys.argv[1]
with open(path) as f, open(path + ".new", "w") as g:
    changed = False
    for n, line in enumerate(f):
        if n == 1 and " SOA " in line:
            parts = line.split()
            parts[6] = str(int(parts[6]) + 1)
            line = " ".join(parts) + "\n"
        elif not changed and " DS " in line:
            line = line.rstrip("\n")[:-8] + "0BADC0DE\n"
            changed = True
        g.write(line)
os.rename(path + ".new", path)
PY
written 2
echo "== signet serve, $n delegations, file input; seconds from each run's start:"
python3 - "$w/serve.log" <<'PY'
import json, sys
from datetime import datetime
runs, start = [], None
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    event = json.loads(line)
    message = event["fields"].get("message", "")
    at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
    if message == "run started":
        start = at
        runs.append({"why": event["fields"].get("why")})
    elif start is not None and message.startswith("version served"):
        runs[-1]["served"] = at - start
    elif start is not None and message == "output file written":
        runs[-1]["file"] = at - start
for run in runs:
    if "file" in run:
        print(f"  {run['why']}: served {run.get('served', 0):.1f} s, output file {run['file']:.1f} s")
PY
awk '$1 == "VmHWM:" { printf "  peak RSS %.2f GiB\n", $2 / 1048576 }' "/proc/$pid/status"
