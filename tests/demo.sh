#!/usr/bin/env bash
# signet's main job, end to end, on the example zone:
#   1. sign tests/data/realistic.zone (here with BIND's dnssec-signzone and
#      ECDSA P-256 + NSEC3: signet's own signer arrives with the signing
#      issue),
#   2. verify it with `signet verify` against its DS (the gate's check),
#   3. break it the way .de broke (one NSEC3 signature malformed) and show
#      that the verifier names the owner, type and key tag.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== building signet (release)"
cargo build --release --quiet
signet=target/release/signet

echo "== signing the example zone (BIND, ECDSAP256SHA256, NSEC3)"
tests/peers/sign.sh bind 13 nsec3 tests/data/realistic.zone example. "$work/signed" >/dev/null
sed -n '1,3p' "$work/signed/ds.txt"

echo
echo "== signet verify (trust anchor: the DS above)"
"$signet" verify "$work/signed/signed.zone" --origin example. --trust-anchor "$work/signed/ds.txt"

echo
echo "== the .de failure: one NSEC3 signature malformed"
# Drop the last 4 base64 characters of the first RRSIG over an NSEC3: a
# 63-octet P-256 signature, as malformed as the one .de published.
sed -E '0,/\sRRSIG\s+NSEC3\s/ s/^(.*\sRRSIG\s+NSEC3\s.*)[A-Za-z0-9+\/]{2}==$/\1/' \
  "$work/signed/signed.zone" >"$work/broken.zone"
if "$signet" verify "$work/broken.zone" --origin example. --trust-anchor "$work/signed/ds.txt"; then
  echo "demo: the broken zone was accepted: this is a bug" >&2
  exit 1
fi
echo
echo "demo: the broken zone was refused (exit 1), as it must be."
