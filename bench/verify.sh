#!/usr/bin/env bash
# Benchmark: `signet verify` against Knot's `kzonecheck -d on` and BIND's
# `dnssec-verify` on the reference zone of docs/benchmarks.md (N TLD-like
# delegations, NSEC3 opt-out, ECDSAP256SHA256), signed by kzonesign and by
# dnssec-signzone. One run, tools one after another, release build.
#
#   bench/verify.sh [N]        (default 1000000; e.g. 20000 for a smoke run)
#
# Signed zones are cached in bench/work/ (keyed by N and the generator).
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-1000000}
origin=tld.
work=bench/work
mkdir -p "$work"
for tool in python3 kzonesign kzonecheck dnssec-signzone dnssec-verify /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "verify.sh: $tool missing: run bash .ci/setup" >&2; exit 2; }
done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
cargo build --release --quiet --bin signet --example crypto_rate
signet=target/release/signet

zone="$work/ref-$n.zone"
if [ ! -s "$zone" ]; then
  /usr/bin/time -f "generate: %e s" python3 bench/genzone.py --count "$n" --origin "$origin" -o "$zone"
fi
echo "== reference zone: $zone, $(wc -l <"$zone") lines, sha256 $(sha256sum "$zone" | cut -c1-16)"

for signer in knot bind; do
  out="$work/$signer-13-nsec3-optout-$n"
  if [ ! -s "$out/signed.zone" ] || [ "$out/signed.zone" -ot "$zone" ]; then
    /usr/bin/time -f "sign with $signer: %e s wall, %U+%S s CPU, %M KB" \
      tests/peers/sign.sh "$signer" 13 nsec3-optout "$zone" "$origin" "$out"
  fi
done

. bench/lib.sh # measure

read -r _ _ verify_rate < <(target/release/examples/crypto_rate 13 | awk -F'[ =]' '/^verify/ { print $1, $3, $5 }')
cores=$(nproc)

verdict() { awk -v a="$1" -v b="$2" -v limit="$3" 'BEGIN { r = a / b; printf "%.2f %s", r, (r <= limit ? "PASS" : "FAIL") }'; }

for signer in knot bind; do
  file="$work/$signer-13-nsec3-optout-$n/signed.zone"
  ds="$work/$signer-13-nsec3-optout-$n/ds.txt"
  rrsigs=$(awk '$4 == "RRSIG" || $3 == "RRSIG" { c++ } END { print c + 0 }' "$file")
  size=$(du -m "$file" | cut -f1)
  echo
  echo "== zone signed by $signer: $(wc -l <"$file") records, ${size} MiB, $rrsigs RRSIGs"
  read -r s_wall s_cpu s_rss s_exit < <(measure "$signet" verify "$file" --origin "$origin" --trust-anchor "$ds" --format json)
  verified=$("$signet" verify "$file" --origin "$origin" --trust-anchor "$ds" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["rrsigs_verified"])')
  # The reader's rate: one core, parse and canonical sort included.
  read_line=$("$signet" -v --log-format json verify "$file" --origin "$origin" --trust-anchor "$ds" 2>&1 >/dev/null | grep '"zone read"')
  read_rate=$(python3 -c 'import json,sys; f=json.loads(sys.argv[1])["fields"]; print("%d records in %.2f s: %.2fM records/s" % (f["records"], f["seconds"], f["records"] / f["seconds"] / 1e6))' "$read_line")
  read -r k_wall k_cpu k_rss k_exit < <(measure kzonecheck -o "$origin" -d on "$file")
  read -r b_wall b_cpu b_rss b_exit < <(measure dnssec-verify -q -o "$origin" "$file")
  printf '%-22s %9s %9s %9s %6s %10s\n' tool "wall s" "CPU s" "RSS MiB" exit RRSIGs
  printf '%-22s %9s %9s %9s %6s %10s\n' "signet verify" "$s_wall" "$s_cpu" "$s_rss" "$s_exit" "$verified"
  printf '%-22s %9s %9s %9s %6s %10s\n' "kzonecheck -d on" "$k_wall" "$k_cpu" "$k_rss" "$k_exit" "$rrsigs"
  printf '%-22s %9s %9s %9s %6s %10s\n' "dnssec-verify" "$b_wall" "$b_cpu" "$b_rss" "$b_exit" "$rrsigs"
  echo "zone reader: $read_rate (bar >= 1M records/s)"
  echo "ratio signet/kzonecheck wall: $(verdict "$s_wall" "$k_wall" 0.5)   (bar <= 0.5)"
  echo "ratio signet/dnssec-verify wall: $(verdict "$s_wall" "$b_wall" 0.3)   (bar <= 0.3)"
  echo "ratio signet/kzonecheck RSS: $(verdict "$s_rss" "$k_rss" 1.0)   (bar <= 1.0)"
  awk -v n="$verified" -v r="$verify_rate" -v c="$cores" -v w="$s_wall" 'BEGIN {
    floor = n / r / c
    printf "crypto floor: %d RRSIGs / %.0f verifications/s (ring, one core) / %d cores = %.2f s; signet at %.1fx the floor\n", n, r, c, floor, w / floor }'
done
