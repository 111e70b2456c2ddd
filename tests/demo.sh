#!/usr/bin/env bash
# signet's main job, end to end, on the example zone:
#   1. make a SoftHSM token (hsm/make-token.sh) and a KSK and a ZSK in it,
#   2. sign tests/data/realistic.zone under policies/tld-ecdsa.toml
#      (ECDSA P-256, NSEC3 opt-out) through the gate,
#   3. verify the result with signet against its DS, and with BIND,
#   4. show the gate's two lines of defence: an impostor replica of the
#      ZSK (another private key under its key id, the .de failure) is
#      refused before signing, and a zone with one malformed NSEC3
#      signature is refused by the verifier, naming owner, type, key tag,
#   5. put the zone under management and show the key timeline: the
#      state machine's first days on a simulated clock, with the DS flow,
#   6. run it as a service: `signet serve` keeps the zone signed on the
#      real clock, under a policy compressed to seconds, through one ZSK
#      rollover in about a minute; SIGTERM stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
serve_pid=
cleanup() {
  if [ -n "$serve_pid" ]; then kill -TERM "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
export SIGNET_PKCS11_PIN=${SIGNET_PKCS11_PIN:-1234}

echo "== building signet (release)"
cargo build --release --quiet
signet=target/release/signet

echo
echo "== a SoftHSM token, and a KSK and a ZSK made inside it"
eval "$(hsm/make-token.sh "$work/hsm")"
for role in ksk zsk; do
  "$signet" key generate --store pkcs11:token=signet --algorithm ECDSAP256SHA256 --role $role \
    --origin example. --label "example-$role" | tee "$work/$role.txt"
  sed -n 's/^; uri //p' "$work/$role.txt" >"$work/$role.uri"
done
ksk=$(cat "$work/ksk.uri") zsk=$(cat "$work/zsk.uri")

echo
echo "== the policy"
"$signet" policy check policies/tld-ecdsa.toml

echo
echo "== signet sign (keys proven, zone signed on both cores, the gate verifies before publishing)"
"$signet" sign tests/data/realistic.zone --origin example. --policy policies/tld-ecdsa.toml \
  --key "$ksk:ksk" --key "$zsk:zsk" -o "$work/example.signed" --ds-out "$work/ds.txt"
cat "$work/ds.txt"
grep -P '\tRRSIG\tSOA ' "$work/example.signed"

echo
echo "== signet verify (trust anchor: the DS above) and BIND's dnssec-verify"
"$signet" verify "$work/example.signed" --origin example. --trust-anchor "$work/ds.txt"
dnssec-verify -q -o example. "$work/example.signed" && echo "dnssec-verify: zone verifies"

echo
echo "== an impostor: a second token with another private key claimed as a replica of the ZSK"
SIGNET_TOKEN_LABEL=replica hsm/make-token.sh "$work/hsm" >/dev/null
other=$("$signet" key generate --store pkcs11:token=replica --algorithm ECDSAP256SHA256 --role zsk \
  --origin example. --label impostor | sed -n 's/^; uri //p')
impostor=$(sed -e 's/token=signet/token=replica/' -e "s/;id=[^;?]*/;$(grep -o 'id=[^;?]*' <<<"$other")/" <<<"$zsk")
cp "$work/example.signed" "$work/before"
if "$signet" sign tests/data/realistic.zone --origin example. --policy policies/tld-ecdsa.toml \
  --key "$ksk:ksk" --key "$zsk $impostor:zsk" -o "$work/example.signed"; then
  echo "demo: the impostor was accepted: this is a bug" >&2
  exit 1
fi
cmp -s "$work/before" "$work/example.signed" && echo "demo: refused (exit 1); the published zone is unchanged."

echo
echo "== the .de failure after the fact: one NSEC3 signature malformed"
# Drop the last 4 base64 characters of the first RRSIG over an NSEC3: a
# 63-octet P-256 signature, as malformed as the one .de published.
sed -E '0,/\sRRSIG\s+NSEC3\s/ s/^(.*\sRRSIG\s+NSEC3\s.*)[A-Za-z0-9+\/]{2}==$/\1/' \
  "$work/example.signed" >"$work/broken.zone"
if "$signet" verify "$work/broken.zone" --origin example. --trust-anchor "$work/ds.txt"; then
  echo "demo: the broken zone was accepted: this is a bug" >&2
  exit 1
fi
echo
echo "demo: the broken zone was refused (exit 1), as it must be."

echo
echo "== managed: the key states over the first days (simulated clock, --now)"
export SIGNET_DB="$work/signet.db"
"$signet" init
"$signet" policy import policies/tld-ecdsa.toml
"$signet" zone add example. --policy tld-ecdsa --input tests/data/realistic.zone --output "$work/managed.signed"
t0=$(date -u -d '2026-12-01T00:00:00Z' +%s)
at() { date -u -d "@$((t0 + $1))" +%Y-%m-%dT%H:%M:%SZ; }
for offset in 0 10800 90000; do
  echo; echo "-- signet sign at $(at $offset)"
  "$signet" --now "$(at $offset)" sign example.
done
echo; "$signet" --now "$(at 90000)" key list example.
ksk=$("$signet" --now "$(at 90000)" --format json key list example. |
  python3 -c 'import json,sys; print(next(k["keytag"] for k in json.load(sys.stdin)[0]["keys"] if k["role"] == "ksk"))')
echo; echo "-- the parent publishes the DS (as the TODO above asks); the operator confirms"
"$signet" --now "$(at 100800)" ds seen example. --keytag "$ksk"
for offset in 100800 201600; do
  echo; echo "-- signet sign at $(at $offset)"
  "$signet" --now "$(at $offset)" sign example.
done
echo; "$signet" --now "$(at 201600)" key list example.
"$signet" verify "$work/managed.signed" --origin example. --now "$(at 201600)"


echo
echo "== dry-run: a year of the policy on a simulated clock; every version through the gate, every instant through the cache-model check"
"$signet" dry-run --policy policies/tld-ecdsa.toml --origin example. --zone tests/data/realistic.zone \
  --from 2027-01-01T00:00:00Z --until 2028-01-01T00:00:00Z --svg target/demo-timeline.svg | tail -n 8
echo "demo: the timeline (one lane per key, states coloured) is in target/demo-timeline.svg"

echo
echo "== signet serve: the example zone on the real clock, one ZSK rollover in about a minute"
# The same zone with every TTL cut to 5 s, and a policy compressed to
# seconds (a ZSK lives 40 s; its rollover takes 14 s), keys made by serve
# as soft keys. Nothing else differs from production.
svc=$work/serve
mkdir -p "$svc" && mkdir -m 0700 "$svc/keys"
sed -E -e 's/^\$TTL [0-9]+/$TTL 5/' -e 's/\b(86400|7200|300)(\s+(NS|A|CNAME|DS)\b)/5\2/' \
  tests/data/realistic.zone >"$svc/example.zone.new"
mv "$svc/example.zone.new" "$svc/example.zone"
cat >"$svc/fast.toml" <<EOF
name = "demo-fast"
[keys]
algorithm = "ECDSAP256SHA256"
ksk-lifetime = "0"
zsk-lifetime = "40s"
dnskey-ttl = "3s"
publish-safety = "2s"
retire-safety = "2s"
store = "file:$svc/keys"
[signatures]
validity = "2h"
dnskey-validity = "2h"
refresh = "1h"
jitter = "1m"
inception-offset = "1m"
[denial]
type = "nsec3"
opt-out = true
[zone]
propagation-delay = "1s"
max-ttl = "5s"
serial = "increment"
[parent]
ds-ttl = "5s"
propagation-delay = "1s"
registration-delay = "5s"
EOF
"$signet" policy check "$svc/fast.toml"
export SIGNET_DB="$svc/signet.db"
"$signet" init
"$signet" policy import "$svc/fast.toml"
"$signet" zone add example. --policy demo-fast --input "$svc/example.zone" --output "$svc/example.signed"
"$signet" serve 2>"$svc/serve.log" &
serve_pid=$!
t0=$(date +%s)
# Waits until a Python condition on `signet key list --format json` (keys)
# holds, for at most $1 seconds.
wait_keys() {
  local limit=$(($(date +%s) + $1))
  until "$signet" --format json key list example. |
    python3 -c "import json,sys; keys = json.load(sys.stdin)[0]['keys']; sys.exit(0 if ($2) else 1)"; do
    kill -0 "$serve_pid" || { echo "demo: signet serve died:" >&2; tail "$svc/serve.log" >&2; exit 1; }
    [ "$(date +%s)" -lt "$limit" ] || { echo "demo: waited $1 s for: $2" >&2; tail "$svc/serve.log" >&2; exit 1; }
    sleep 1
  done
}
zsks="[k for k in keys if k['role'] == 'zsk']"
wait_keys 30 "$zsks and all(s == 'omnipresent' for s in $zsks[0]['states'].values())"
echo; echo "-- +$(($(date +%s) - t0)) s: signed and published, the first keys omnipresent"
"$signet" status example.
first=$("$signet" --format json key list example. | python3 -c "import json,sys; keys = json.load(sys.stdin)[0]['keys']; print($zsks[0]['id'])")
ksk=$("$signet" --format json key list example. |
  python3 -c "import json,sys; print(next(k['keytag'] for k in json.load(sys.stdin)[0]['keys'] if k['role'] == 'ksk'))")
echo; echo "-- the parent publishes the DS (as the TODO asks); the operator confirms, serve takes it in within a second"
"$signet" ds seen example. --keytag "$ksk"
wait_keys 10 "any(k['role'] == 'ksk' and k['states']['ds'] != 'hidden' for k in keys)"
wait_keys 60 "len($zsks) == 2"
echo; echo "-- +$(($(date +%s) - t0)) s: the ZSK's successor is published (pre-publication: it does not sign yet)"
"$signet" status example.
wait_keys 60 "all(s == 'hidden' for k in keys if k['id'] == $first for s in k['states'].values())"
echo; echo "-- +$(($(date +%s) - t0)) s: the successor signs, the old ZSK is withdrawn: rollover done"
"$signet" status example.
echo; "$signet" key list example.
kill -TERM "$serve_pid"
code=0
wait "$serve_pid" || code=$?
serve_pid=
echo; echo "-- signet serve stopped by SIGTERM: exit $code; the end of its log:"
tail -n 5 "$svc/serve.log"
[ "$code" = 0 ]
"$signet" verify "$svc/example.signed" --origin example.
