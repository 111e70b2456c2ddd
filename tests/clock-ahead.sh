#!/usr/bin/env bash
# Runs test binaries with the clock moved (a year ahead by default) for
# everything they start: the test itself, signet, SoftHSM, the validators
# and name servers (libfaketime, from Debian's `faketime`, preloaded and
# inherited by every child). A test that fixes its time must pass that
# time to everything that judges time, and one that uses the wall clock
# must work on any date; this is how both are shown.
#
#   tests/clock-ahead.sh [--offset +365d] [TEST...]   # default: the time-judging tests
#   tests/clock-ahead.sh --all                        # every test binary
#
# Build first (`cargo test --locked --no-run` is run here). Exit status: 0
# when every binary passed.
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

# The test executables, by target name, from cargo's own report.
executables=$(cargo test --locked --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "test" in m["target"]["kind"]:
        print(m["target"]["name"], m["executable"])
')
executable_of() { awk -v t="$1" '$1 == t { print $2 }' <<<"$executables"; }
if $all; then
  mapfile -t tests < <(awk '{ print $1 }' <<<"$executables" | sort -u)
fi

echo "clock-ahead: clock $offset: $(faketime -f "$offset" date -u)"
failed=()
for t in "${tests[@]}"; do
  exe=$(executable_of "$t")
  [ -n "$exe" ] || { echo "clock-ahead: no test binary named $t" >&2; exit 1; }
  echo "clock-ahead: $t"
  faketime -f "$offset" "$exe" --quiet || failed+=("$t")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "clock-ahead: failed with the clock $offset: ${failed[*]}" >&2
  exit 1
fi
echo "clock-ahead: ${#tests[@]} test binaries passed with the clock $offset"
