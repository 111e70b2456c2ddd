#!/usr/bin/env bash
# Benchmark: `signet sign` (its gate included) against Knot's `kzonesign`,
# BIND's `dnssec-signzone -n 2` and `ldns-signzone`, on the reference
# zones of docs/benchmarks.md (N TLD-like delegations, ECDSAP256SHA256), with
# NSEC3 opt-out and with NSEC. One run, tools one after another, release
# build; signet with soft keys and with SoftHSM keys.
#
#   bench/sign.sh [N] [DENIAL...]   (default 1000000 nsec3-optout nsec;
#                                    e.g. 20000 for a smoke run)
#
# Prints wall and CPU seconds, peak RSS, signatures made and per second,
# the ratios to each peer, the crypto floor (signatures / ring's one-core
# signing rate / cores) and the gate's verification floor, and SoftHSM's
# single-session signing rate.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-1000000}
shift || true
denials=("$@")
[ ${#denials[@]} -gt 0 ] || denials=(nsec3-optout nsec)
origin=tld.
work=bench/work
mkdir -p "$work"
for tool in python3 kzonesign dnssec-signzone ldns-signzone softhsm2-util /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "sign.sh: $tool missing: run bash .ci/setup" >&2; exit 2; }
done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
cargo build --release --quiet --bin signet --example crypto_rate --example hsm_rate
signet=$PWD/target/release/signet
cores=$(nproc)

zone="$work/ref-$n.zone"
if [ ! -s "$zone" ]; then
  python3 bench/genzone.py --count "$n" --origin "$origin" -o "$zone"
fi
echo "== reference zone: $zone, $(wc -l <"$zone") lines"

# Soft keys (made once) and SoftHSM keys in a token of the bench's own.
keys="$work/sign-keys"
if [ ! -s "$keys/ksk.pk8" ]; then
  mkdir -p "$keys"
  for role in ksk zsk; do
    "$signet" key generate --store "file:$keys" --algorithm 13 --role $role --origin "$origin" --label $role >/dev/null
  done
fi
export SIGNET_PKCS11_PIN=${SIGNET_PKCS11_PIN:-1234}
eval "$(hsm/make-token.sh "$work/hsm")"
if [ ! -s "$work/hsm/keys.txt" ]; then
  for role in ksk zsk; do
    "$signet" key generate --store pkcs11:token=signet --algorithm 13 --role $role --origin "$origin" \
      --label "bench-$role" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["uri"])'
  done >"$work/hsm/keys.txt"
fi
mapfile -t hsm_keys <"$work/hsm/keys.txt"

. bench/lib.sh # measure

# Signs with a peer through tests/peers/sign.sh, timing the signer alone.
measure_peer() {
  local stats code=0
  stats=$(mktemp)
  SIGN_TIME=$stats tests/peers/sign.sh "$1" 13 "$2" "$zone" "$origin" "$3" >/dev/null 2>&1 || code=$?
  [ "$code" = 0 ] || echo "sign.sh: peer $1 failed" >&2
  awk -v code="$code" '{ printf "%.2f %.2f %.0f %d\n", $1, $2 + $3, $4 / 1024, code }' "$stats"
  rm -f "$stats"
}

rrsigs_in() { awk '$4 == "RRSIG" || $3 == "RRSIG" { c++ } END { print c + 0 }' "$1"; }

read -r sign_rate verify_rate < <(target/release/examples/crypto_rate 13 |
  awk -F'[ =]' '/^verify/ { v = $5 } /^sign/ { s = $5 } END { print s, v }')
hsm_rate=$(target/release/examples/hsm_rate "${hsm_keys[1]}" | sed -n 's/.*per_sec=//p')
echo "== ring, one core: $sign_rate P-256 signatures/s, $verify_rate verifications/s; SoftHSM, one session: $hsm_rate signatures/s"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v a="$1" -v b="$2" -v limit="$3" 'BEGIN { r = a / b; printf "%.2f %s", r, (r <= limit ? "PASS" : "FAIL") }'; }

for denial in "${denials[@]}"; do
  case $denial in
    nsec3-optout) policy_denial=$'type = "nsec3"\nopt-out = true'; limit=1.0 ;;
    nsec3) policy_denial='type = "nsec3"'; limit=1.2 ;;
    nsec) policy_denial='type = "nsec"'; limit=1.2 ;;
    *) echo "sign.sh: unknown denial $denial" >&2; exit 2 ;;
  esac
  policy="$work/sign-$denial.toml"
  printf '[keys]\nalgorithm = "ECDSAP256SHA256"\n[signatures]\nvalidity = "30d"\ndnskey-validity = "30d"\n[denial]\n%s\n[zone]\nmax-ttl = "2d"\n' \
    "$policy_denial" >"$policy"
  echo
  echo "== $denial, $n delegations"
  out="$work/signet-$denial-$n.zone"
  rm -f "$out"
  read -r s_wall s_cpu s_rss s_exit < <(measure "$signet" sign "$zone" --origin "$origin" --policy "$policy" \
    --key "file:$keys/ksk.pk8:ksk" --key "file:$keys/zsk.pk8:zsk" -o "$out")
  s_sigs=$(rrsigs_in "$out")
  rm -f "$out"
  read -r h_wall h_cpu h_rss h_exit < <(measure "$signet" sign "$zone" --origin "$origin" --policy "$policy" \
    --key "${hsm_keys[0]}:ksk" --key "${hsm_keys[1]}:zsk" -o "$out")
  h_sigs=$(rrsigs_in "$out")
  rm -f "$out"
  rows=()
  for peer in knot bind ldns; do
    dir="$work/peer-$peer-$denial-$n"
    read -r wall cpu rss code < <(measure_peer "$peer" "$denial" "$dir")
    rows+=("$peer $wall $cpu $rss $code $(rrsigs_in "$dir/signed.zone")")
    rm -rf "$dir"
  done
  printf '%-26s %8s %8s %8s %5s %10s %10s\n' tool "wall s" "CPU s" "RSS MiB" exit RRSIGs "sigs/s"
  row() { printf '%-26s %8s %8s %8s %5s %10s %10.0f\n' "$1" "$2" "$3" "$4" "$5" "$6" "$(ratio "$6" "$2")"; }
  row "signet sign (soft, gate)" "$s_wall" "$s_cpu" "$s_rss" "$s_exit" "$s_sigs"
  row "signet sign (SoftHSM, gate)" "$h_wall" "$h_cpu" "$h_rss" "$h_exit" "$h_sigs"
  declare -A peer_wall peer_rss
  for r in "${rows[@]}"; do
    read -r peer wall cpu rss code sigs <<<"$r"
    case $peer in knot) name="kzonesign" ;; bind) name="dnssec-signzone -n 2" ;; ldns) name="ldns-signzone" ;; esac
    row "$name" "$wall" "$cpu" "$rss" "$code" "$sigs"
    peer_wall[$peer]=$wall
    peer_rss[$peer]=$rss
  done
  echo "ratio signet(soft)/kzonesign wall: $(verdict "$s_wall" "${peer_wall[knot]}" "$limit")   (bar <= $limit)"
  [ "$denial" = nsec3-optout ] && echo "ratio signet(soft)/kzonesign RSS: $(verdict "$s_rss" "${peer_rss[knot]}" 1.0)   (bar <= 1.0)"
  echo "ratio signet(soft)/dnssec-signzone wall: $(ratio "$s_wall" "${peer_wall[bind]}"); /ldns-signzone: $(ratio "$s_wall" "${peer_wall[ldns]}")"
  echo "SoftHSM: $(ratio "$h_sigs" "$h_wall") signatures/s through the whole run (gate included) vs $hsm_rate/s for one session"
  awk -v n="$s_sigs" -v s="$sign_rate" -v v="$verify_rate" -v c="$cores" -v w="$s_wall" 'BEGIN {
    fs = n / s / c; fv = n / v / c
    printf "crypto floor: %d signatures / %.0f/s / %d cores = %.2f s to sign, + %.2f s to verify (gate) = %.2f s; signet at %.1fx\n", n, s, c, fs, fv, fs + fv, w / (fs + fv) }'
done
