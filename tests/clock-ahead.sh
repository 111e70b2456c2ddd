#!/usr/bin/env bash
# Runs areas of the integration tests with the clock moved (a year ahead by default) for
# everything they start: the test itself, signet, SoftHSM, Knot's and
# ldns's validators, NSD (libfaketime, from Debian's `faketime`, preloaded
# and inherited by every child; BIND's programs are left out, see below). A test that fixes its time must pass that
# time to everything that judges time, and one that uses the wall clock
# must work on any date; this is how both are shown.
#
#   tests/clock-ahead.sh [--offset +365d] [AREA...]   # default: the time-judging areas
#   tests/clock-ahead.sh --all                        # every area
#
# An area is a module of the one test binary (tests/it/AREA.rs). The build
# (`cargo test --locked --test it --no-run`) is run here. Exit status: 0
# when every area passed.
set -euo pipefail
cd "$(dirname "$0")/.."

offset=+365d
all=false
tests=()
while [ $# -gt 0 ]; do
  case "$1" in
    --offset) offset=$2; shift 2 ;;
    --all) all=true; shift ;;
    *) tests+=("$1"); shift ;;
  esac
done
if [ ${#tests[@]} -eq 0 ] && ! $all; then
  # Every test that signs at a fixed time or judges signatures against
  # the wall clock and runs in a few minutes; `--all` adds the long
  # service and rollover tests.
  tests=(gate_memo content_rules sign_accepts verify_accepts time_range managed sign_gate journal
    incremental field_state cli_output verify_input overwrite policy_check)
fi
command -v faketime >/dev/null || { echo "clock-ahead: faketime is missing (apt-get install faketime)" >&2; exit 1; }

# The test executable, from cargo's own report.
exe=$(cargo test --locked --test it --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "it":
        print(m["executable"])
')
[ -n "$exe" ] || { echo "clock-ahead: the test binary tests/it did not build" >&2; exit 1; }
areas=$("$exe" --list 2>/dev/null | sed -n 's/^\([a-z_0-9]*\)::.*: test$/\1/p' | grep -v '^common$' | sort -u)
if $all; then
  mapfile -t tests <<<"$areas"
fi

# BIND's programs (named, dig, dnssec-verify, named-checkzone, …) hang
# under libfaketime (its clock_gettime recursion guard and BIND's libisc
# deadlock at start; seen with faketime 0.9.10 and BIND 9.18), so this pass
# runs without them: a PATH of links to every other program, where the
# tests find no BIND and skip its checks as on a machine without it (CI is
# unset for that: in CI a missing peer is an error). Knot's and ldns's
# validators, SoftHSM, NSD and signet itself all run a year ahead; BIND's
# checks ran on the real clock in the main pass.
bind_programs=$(dpkg-query -L bind9 bind9-utils bind9-dnsutils bind9-host 2>/dev/null | grep -E '/s?bin/' || true)
shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT
IFS=: read -ra path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
  for program in "$dir"/*; do
    name=${program##*/}
    [ -x "$program" ] && [ ! -e "$shim/$name" ] || continue
    grep -qxF -e "/usr/bin/$name" -e "/usr/sbin/$name" -e "/bin/$name" -e "/sbin/$name" <<<"$bind_programs" && continue
    ln -s "$program" "$shim/$name"
  done
done

echo "clock-ahead: clock $offset: $(faketime -f "$offset" date -u); BIND's programs left out"
failed=()
for t in "${tests[@]}"; do
  grep -qx "$t" <<<"$areas" || { echo "clock-ahead: no test area named $t" >&2; exit 1; }
  echo "clock-ahead: $t"
  env -u CI PATH="$shim" faketime -f "$offset" "$exe" --quiet "$t::" || failed+=("$t")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "clock-ahead: failed with the clock $offset: ${failed[*]}" >&2
  exit 1
fi
echo "clock-ahead: ${#tests[@]} test areas passed with the clock $offset"
