#!/usr/bin/env bash
# Creates a SoftHSM 2 token for signet's tests and demo, in a directory of
# its own. Idempotent: a token that already carries the label is left alone.
#
#   hsm/make-token.sh [DIR]          (default: hsm/tokens in the repository)
#   eval "$(hsm/make-token.sh DIR)"  (sets SOFTHSM2_CONF for the caller)
#
# Environment:
#   SIGNET_TOKEN_LABEL  token label (default: signet)
#   SIGNET_PKCS11_PIN   user PIN (default: 1234, for tests and the demo only)
#   SIGNET_SO_PIN       security officer PIN (default: signet-so)
#
# Writes DIR/softhsm2.conf (tokens in DIR/store, mode 0700) and prints
# `export SOFTHSM2_CONF=DIR/softhsm2.conf` on stdout; nothing else goes to
# stdout, and the PINs are printed nowhere.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$repo/hsm/tokens}
label=${SIGNET_TOKEN_LABEL:-signet}
pin=${SIGNET_PKCS11_PIN:-1234}
so_pin=${SIGNET_SO_PIN:-signet-so}

command -v softhsm2-util >/dev/null || {
  echo "make-token: softhsm2-util not found (Debian: apt-get install softhsm2, or .ci/setup)" >&2
  exit 1
}

umask 077
mkdir -p "$dir/store"
dir=$(cd "$dir" && pwd)
chmod 0700 "$dir" "$dir/store"

conf=$dir/softhsm2.conf
cat >"$conf.tmp" <<EOF
# Written by signet's hsm/make-token.sh.
directories.tokendir = $dir/store
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
mv -f "$conf.tmp" "$conf"
export SOFTHSM2_CONF=$conf

# Token labels are blank-padded to 32 bytes in --show-slots output.
has_token() {
  softhsm2-util --show-slots 2>/dev/null |
    sed -n 's/^[[:space:]]*Label:[[:space:]]*//p' |
    sed 's/[[:space:]]*$//' |
    grep -qxF -- "$label"
}

if ! has_token; then
  softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$pin" >/dev/null
  has_token || {
    echo "make-token: softhsm2-util did not create token \"$label\" in $dir/store" >&2
    exit 1
  }
  echo "make-token: created token \"$label\" in $dir/store" >&2
fi

printf 'export SOFTHSM2_CONF=%q\n' "$conf"
