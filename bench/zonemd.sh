#!/usr/bin/env bash
# Benchmark: what ZONEMD (RFC 8976, SIMPLE, SHA-384) adds to `signet sign`
# (its gate included) on the reference zone of docs/benchmarks.md (N
# TLD-like delegations, ECDSAP256SHA256 soft keys, NSEC3 opt-out by
# default). One run of each, one after another, release build: without
# ZONEMD, with SHA-384, with SHA-384 and SHA-512; then the digest alone on
# the signed zone (examples/zonemd_digest, best of three).
#
#   [ROUNDS=R] bench/zonemd.sh [N] [DENIAL]   (default 1000000 nsec3-optout,
#                                   one round; e.g. 20000 for a smoke run)
#
# Prints wall and CPU seconds and peak RSS per run, and the share ZONEMD
# adds to the run without it, best of the rounds each (the bar: 10%).
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-1000000}
denial=${2:-nsec3-optout}
rounds=${ROUNDS:-1}
origin=tld.
work=bench/work
mkdir -p "$work"
for tool in python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "zonemd.sh: $tool missing: run bash .ci/setup" >&2; exit 2; }
done
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
cargo build --release --quiet --bin signet --example zonemd_digest
target=${CARGO_TARGET_DIR:-target}
signet=$target/release/signet

zone="$work/ref-$n.zone"
[ -s "$zone" ] || python3 bench/genzone.py --count "$n" --origin "$origin" -o "$zone"
keys="$work/sign-keys"
if [ ! -s "$keys/ksk.pk8" ]; then
  mkdir -p "$keys"
  for role in ksk zsk; do
    "$signet" key generate --store "file:$keys" --algorithm 13 --role $role --origin "$origin" --label $role >/dev/null
  done
fi
case $denial in
  nsec3-optout) policy_denial=$'type = "nsec3"\nopt-out = true' ;;
  nsec3) policy_denial='type = "nsec3"' ;;
  nsec) policy_denial='type = "nsec"' ;;
  *) echo "zonemd.sh: unknown denial $denial" >&2; exit 2 ;;
esac

. bench/lib.sh # measure

echo "== $denial, $n delegations, $rounds round(s), the variants alternating; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %8s %8s %8s %5s %8s\n' run "wall s" "CPU s" "RSS MiB" exit added
declare -A best
for round in $(seq "$rounds"); do
  for zonemd in '' '"sha384"' '"sha384", "sha512"'; do
    policy="$work/zonemd-$denial.toml"
    printf '[keys]\nalgorithm = "ECDSAP256SHA256"\n[signatures]\nvalidity = "30d"\ndnskey-validity = "30d"\n[denial]\n%s\n[zone]\nmax-ttl = "2d"\nzonemd = [%s]\n' \
      "$policy_denial" "$zonemd" >"$policy"
    out="$work/zonemd-$denial-$n.zone"
    rm -f "$out"
    read -r wall cpu rss code < <(measure "$signet" sign "$zone" --origin "$origin" --policy "$policy" \
      --key "file:$keys/ksk.pk8:ksk" --key "file:$keys/zsk.pk8:zsk" -o "$out")
    key=${zonemd:-none}
    if [ -z "${best[$key]:-}" ] || awk -v a="$wall" -v b="${best[$key]}" 'BEGIN { exit !(a < b) }'; then best[$key]=$wall; fi
    printf '%-34s %8s %8s %8s %5s\n' "round $round: zonemd=[${zonemd//\"/}]" "$wall" "$cpu" "$rss" "$code"
    [ "$zonemd" = '"sha384"' ] && cp "$out" "$work/zonemd-signed.zone"
    rm -f "$out"
  done
done
for key in '"sha384"' '"sha384", "sha512"'; do
  awk -v a="${best[$key]}" -v b="${best[none]}" -v k="${key//\"/}" \
    'BEGIN { printf "best of rounds: zonemd=[%s] %.2f s against %.2f s without: %+.1f%% (bar: +10%%)\n", k, a, b, (a - b) / b * 100 }'
done
echo "== the digest alone, on the signed zone (one hashing thread, the encoding on the pool)"
"$target/release/examples/zonemd_digest" "$work/zonemd-signed.zone" "$origin"
rm -f "$work/zonemd-signed.zone"
