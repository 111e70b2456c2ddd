#!/usr/bin/env bash
# Benchmark: incremental signing of the reference zone under management
# (`signet sign NAME`, release build, soft keys, tld-ecdsa policy), with
# NSEC3 opt-out and with NSEC:
#   - the first, full sign;
#   - one changed record (a DS digest) from input to published through the
#     full gate, and one new secure delegation (the chain changes): wall
#     seconds, signatures made and kept, the gate's seconds and how many
#     of its signature checks came from its memo, the records that differ
#     between the two versions (from the journal: removed+added);
#   - a simulated day (--now) of hourly publications, each with one changed
#     record, across the window in which the first version's signatures
#     fall due for refresh: signatures made per run and the gate's time.
#
#   bench/incremental.sh [N] [DENIAL...]   (default 1000000 nsec3-optout nsec;
#                                           e.g. 20000 for a smoke run)
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-1000000}
shift || true
denials=("$@")
[ ${#denials[@]} -gt 0 ] || denials=(nsec3-optout nsec)
work=bench/work
mkdir -p "$work"
for tool in python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "incremental.sh: $tool missing: run bash .ci/setup" >&2; exit 2; }
done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
cargo build --release --quiet --bin signet
signet=$PWD/target/release/signet
zone="$work/ref-$n.zone"
[ -s "$zone" ] || python3 bench/genzone.py --count "$n" --origin tld. -o "$zone"
echo "== reference zone: $zone, $(wc -l <"$zone") lines"

t0=$(date -u -d '2026-12-01T00:00:00Z' +%s)

# `signet sign tld.` at $1 under /usr/bin/time; prints one line:
# wall made kept gate_seconds from_memo verified
sign_at() {
  local json="$w/run.json" stats
  stats=$( { /usr/bin/time -f '%e' "$signet" --db "$w/signet.db" --now "$1" --format json sign tld. >"$json"; } 2>&1 | tail -1)
  python3 - "$json" "$stats" <<'EOF'
import json, sys
run = json.load(open(sys.argv[1]))
s, v = run["stats"], run["verified"]
print(sys.argv[2], s["rrsigs"], s.get("rrsigs_kept", 0), round(v["seconds"], 2), v.get("rrsigs_from_memo", 0), v["rrsigs_verified"])
EOF
}

# Records that differ between the last two versions, from the journal:
# "removed+added".
differ() {
  "$signet" --db "$w/signet.db" --format json zone diff tld. |
    python3 -c 'import json,sys; v=json.load(sys.stdin)["version"]; print(v["removed"], v["added"], sep="+")'
}

# Changes the digest of the DS on line $2 of $1 (cycling its last octets).
change_ds() {
  sed -i -E "$2 s/[0-9A-F]{8}\$/$(printf '%08X' "$3")/" "$1"
}

for denial in "${denials[@]}"; do
  w="$work/incremental-$denial-$n"
  rm -rf "$w"
  mkdir -p "$w/keys"
  case $denial in
    nsec3-optout) body='type = "nsec3"\nopt-out = true\niterations = 0\nsalt-length = 0' ;;
    nsec) body='type = "nsec"' ;;
    *) echo "unknown denial $denial" >&2; exit 2 ;;
  esac
  python3 - policies/tld-ecdsa.toml "$w/policy.toml" "$PWD/$w/keys" "$body" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
text = re.sub(r'^store = .*$', f'store = "file:{sys.argv[3]}"', text, flags=re.M)
text = re.sub(r'\[denial\][^\[]*', '[denial]\n' + sys.argv[4].replace('\\n', '\n') + '\n\n', text)
open(sys.argv[2], 'w').write(text)
EOF
  cp "$zone" "$w/in.zone"
  "$signet" --db "$w/signet.db" init >/dev/null
  "$signet" --db "$w/signet.db" policy import "$w/policy.toml" --name bench >/dev/null
  "$signet" --db "$w/signet.db" zone add tld. --policy bench --input "$w/in.zone" --output "$w/out.zone" >/dev/null
  ds_line=$(grep -n -m1 ' DS ' "$w/in.zone" | cut -d: -f1)

  echo
  echo "== $denial, $n delegations"
  printf '%-40s %8s %9s %9s %8s %10s %9s\n' run wall made kept gate from-memo differ
  row() { printf '%-40s %8s %9s %9s %8s %10s %9s\n' "$@"; }

  read -r wall made kept gate memo _ < <(sign_at "$t0")
  row "full sign" "$wall" "$made" "$kept" "$gate" "$memo" "-"

  change_ds "$w/in.zone" "$ds_line" 1
  read -r wall made kept gate memo _ < <(sign_at $((t0 + 60)))
  row "one DS changed" "$wall" "$made" "$kept" "$gate" "$memo" "$(differ)"

  printf 'zz-bench-new.tld. 86400 IN NS ns1.example.net.\nzz-bench-new.tld. 3600 IN DS 4711 13 2 %s\n' \
    "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF" >>"$w/in.zone"
  read -r wall made kept gate memo _ < <(sign_at $((t0 + 120)))
  row "new secure delegation" "$wall" "$made" "$kept" "$gate" "$memo" "$(differ)"

  # The first version's expirations are jittered over 12 h; with 5 d
  # refresh and 1 h pre-refresh they fall due between t0 + 8d11h and
  # t0 + 8d23h. A day of hourly runs from t0 + 8d10h crosses that window.
  echo "-- a day of hourly publications across the refresh window (one DS changed each hour)"
  total_made=0 total_gate=0
  for hour in $(seq 0 23); do
    now=$((t0 + 8 * 86400 + (10 + hour) * 3600))
    change_ds "$w/in.zone" "$ds_line" $((hour + 2))
    read -r wall made kept gate memo _ < <(sign_at "$now")
    row "$(date -u -d "@$now" +%Y-%m-%dT%H:%MZ)" "$wall" "$made" "$kept" "$gate" "$memo" "$(differ)"
    total_made=$((total_made + made))
    total_gate=$(python3 -c "print(round($total_gate + $gate, 2))")
  done
  echo "day total: $total_made signatures made in 24 runs; gate $total_gate s"
done
