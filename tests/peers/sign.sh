#!/usr/bin/env bash
# Signs a zone with an independent signer, for signet's tests and benchmarks.
#
#   tests/peers/sign.sh TOOL ALGS DENIAL UNSIGNED_ZONE ORIGIN OUTDIR
#
#   TOOL    bind (dnssec-signzone) | knot (kzonesign) | ldns (ldns-signzone)
#   ALGS    8 (RSASHA256: 2048-bit KSK, 1024-bit ZSK; likewise 5, 7, 10) |
#           13 | 14 | 15 | 16, or two
#           joined by '+' (e.g. 8+13: a KSK and a ZSK of each; bind, ldns)
#   DENIAL  nsec | nsec3 | nsec3-optout (SHA-1, 0 iterations, empty salt,
#           RFC 9276)
#
# Writes OUTDIR/signed.zone (one record per line), OUTDIR/ds.txt (SHA-256
# DS of the KSKs), OUTDIR/keys/ (BIND-format key files for bind and ldns;
# Knot's PEM keystore for knot) and OUTDIR/info.txt. Signatures are valid
# from one hour ago for 30 days. VERIFY_PEERS=1 also runs dnssec-verify and
# kzonecheck on the result. SIGN_TIME=FILE times the signing command alone
# (keys already made) with /usr/bin/time into FILE: "wall user sys maxrss_kb".
# ZONEMD=sha384 (or sha512) has Knot publish a ZONEMD (knot only).
set -euo pipefail

[ $# -eq 6 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
tool=$1 algs=$2 denial=$3 unsigned=$4 origin=$5 out=$6
case $origin in *.) ;; *) origin="$origin." ;; esac
case $denial in nsec|nsec3|nsec3-optout) ;; *) echo "sign.sh: unknown denial $denial" >&2; exit 2 ;; esac

# Runs the signer itself, timed when SIGN_TIME is set.
timed() {
  if [ -n "${SIGN_TIME:-}" ]; then /usr/bin/time -f "%e %U %S %M" -o "$SIGN_TIME" "$@"; else "$@"; fi
}

need() { command -v "$1" >/dev/null || { echo "sign.sh: $1 not found (apt-get install $2)" >&2; exit 2; }; }
unsigned=$(realpath "$unsigned")
mkdir -p "$out/keys"
out=$(realpath "$out")
rm -f "$out"/keys/K* "$out/signed.zone" "$out/ds.txt"

inception=$(date -u -d '-1 hour' +%Y%m%d%H%M%S)
expiration=$(date -u -d '+30 days' +%Y%m%d%H%M%S)
IFS=+ read -r -a alg_list <<<"$algs"

# Mnemonic and key sizes per algorithm number: "MNEMONIC KSKBITS ZSKBITS".
alg_params() {
  case $1 in
    5) echo "RSASHA1 2048 1024" ;;
    7) echo "NSEC3RSASHA1 2048 1024" ;;
    8) echo "RSASHA256 2048 1024" ;;
    10) echo "RSASHA512 2048 1024" ;;
    13) echo "ECDSAP256SHA256 0 0" ;;
    14) echo "ECDSAP384SHA384 0 0" ;;
    15) echo "ED25519 0 0" ;;
    16) echo "ED448 0 0" ;;
    *) echo "sign.sh: unsupported algorithm $1" >&2; exit 2 ;;
  esac
}

sign_bind() {
  need dnssec-keygen bind9-utils
  need dnssec-signzone bind9-utils
  local alg mnemonic kbits zbits size
  for alg in "${alg_list[@]}"; do
    read -r mnemonic kbits zbits <<<"$(alg_params "$alg")"
    size=(); [ "$kbits" != 0 ] && size=(-b "$kbits")
    dnssec-keygen -q -K "$out/keys" -a "$mnemonic" "${size[@]}" -f KSK "$origin" >/dev/null
    size=(); [ "$zbits" != 0 ] && size=(-b "$zbits")
    dnssec-keygen -q -K "$out/keys" -a "$mnemonic" "${size[@]}" "$origin" >/dev/null
  done
  local nsec3=()
  case $denial in
    nsec3) nsec3=(-3 - -H 0) ;;
    nsec3-optout) nsec3=(-3 - -H 0 -A) ;;
  esac
  timed dnssec-signzone -q -S -K "$out/keys" -d "$out" -n 2 -O full "${nsec3[@]}" -s "$inception" -e "$expiration" \
    -o "$origin" -f "$out/signed.zone" "$unsigned" >/dev/null
}

sign_ldns() {
  need ldns-keygen ldnsutils
  need ldns-signzone ldnsutils
  local alg mnemonic kbits zbits keys=() base
  for alg in "${alg_list[@]}"; do
    read -r mnemonic kbits zbits <<<"$(alg_params "$alg")"
    for role in ksk zsk; do
      local args=(-a "$mnemonic")
      [ $role = ksk ] && args+=(-k) && [ "$kbits" != 0 ] && args+=(-b "$kbits")
      [ $role = zsk ] && [ "$zbits" != 0 ] && args+=(-b "$zbits")
      base=$(cd "$out/keys" && ldns-keygen "${args[@]}" "$origin")
      rm -f "$out/keys/$base.ds"
      keys+=("$out/keys/$base")
    done
  done
  local nsec3=()
  case $denial in
    nsec3) nsec3=(-n -t 0 -s "") ;;
    nsec3-optout) nsec3=(-n -t 0 -s "" -p) ;;
  esac
  timed ldns-signzone "${nsec3[@]}" -i "${inception:0:14}" -e "${expiration:0:14}" -o "$origin" \
    -f "$out/signed.zone" "$unsigned" "${keys[@]}"
}

sign_knot() {
  need kzonesign knot-dnssecutils
  [ ${#alg_list[@]} -eq 1 ] || { echo "sign.sh: knot signs with one algorithm only" >&2; exit 2; }
  local mnemonic kbits zbits
  read -r mnemonic kbits zbits <<<"$(alg_params "${alg_list[0]}")"
  local work="$out/knot"
  rm -rf "$work" && mkdir -p "$work/db" "$work/out"
  cp "$unsigned" "$work/unsigned.zone"
  {
    echo "database:"
    echo "    storage: \"$work/db\""
    echo "    kasp-db: \"$out/keys\""
    echo "policy:"
    echo "  - id: test"
    echo "    algorithm: ${mnemonic,,}"
    [ "$kbits" != 0 ] && echo "    ksk-size: $kbits" && echo "    zsk-size: $zbits"
    echo "    rrsig-lifetime: 30d"
    echo "    signing-threads: 2"
    case $denial in
      nsec) echo "    nsec3: off" ;;
      nsec3) printf '    nsec3: on\n    nsec3-iterations: 0\n    nsec3-salt-length: 0\n' ;;
      nsec3-optout) printf '    nsec3: on\n    nsec3-opt-out: on\n    nsec3-iterations: 0\n    nsec3-salt-length: 0\n' ;;
    esac
    echo "zone:"
    echo "  - domain: $origin"
    echo "    storage: \"$work\""
    echo "    file: \"unsigned.zone\""
    echo "    dnssec-signing: on"
    echo "    dnssec-policy: test"
    if [ -n "${ZONEMD:-}" ]; then echo "    zonemd-generate: zonemd-$ZONEMD"; fi
  } >"$work/knot.conf"
  # Keys first, on a zone of just its apex (so that a timed run measures
  # signing alone), then the signing run itself.
  mkdir -p "$work/mini/out" "$work/mini/db"
  printf '%s 3600 IN SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 300\n%s 3600 IN NS ns.invalid.\n' \
    "$origin" "$origin" >"$work/mini/unsigned.zone"
  sed -e "s|storage: \"$work\"|storage: \"$work/mini\"|" -e "s|$work/db|$work/mini/db|" "$work/knot.conf" >"$work/mini/knot.conf"
  kzonesign -c "$work/mini/knot.conf" -r -o "$work/mini/out" "$origin" >"$work/kzonesign.log" 2>&1 \
    || { cat "$work/kzonesign.log" >&2; exit 1; }
  timed kzonesign -c "$work/knot.conf" -r -o "$work/out" "$origin" >"$work/kzonesign.log" 2>&1 \
    || { cat "$work/kzonesign.log" >&2; exit 1; }
  if grep -q '^error' "$work/kzonesign.log"; then cat "$work/kzonesign.log" >&2; exit 1; fi
  mv "$work/out/unsigned.zone" "$out/signed.zone"
}

"sign_$tool"
dnssec-dsfromkey -2 -f "$out/signed.zone" "$origin" >"$out/ds.txt"
[ -s "$out/ds.txt" ] || { echo "sign.sh: no KSK found in the signed zone" >&2; exit 1; }
{
  echo "tool=$tool algs=$algs denial=$denial origin=$origin"
  echo "inception=$inception expiration=$expiration"
  awk '$4 == "DNSKEY" || $3 == "DNSKEY"' "$out/signed.zone" | head -20
} >"$out/info.txt"

if [ "${VERIFY_PEERS:-0}" = 1 ]; then
  dnssec-verify -q -o "$origin" "$out/signed.zone"
  kzonecheck -o "$origin" -d on "$out/signed.zone"
fi
