#!/usr/bin/env bash
# A bounded fuzz run of signet's zone reader and verifier (cargo-fuzz,
# libFuzzer), for humans and CI. Prints, per target, the executions, the
# time and the coverage reached; exits 1 if a target crashed, hung or ran
# out of memory (the input is in fuzz/artifacts/TARGET/).
#
#   fuzz/run.sh [SECONDS] [TARGET…]     (default: 60 s each, zone_reader verify)
#
# Environment:
#   MAX_LEN=N       largest input in bytes (default 16384)
#   KEEP_GOING=1    carry on after a finding (libFuzzer -fork=1
#                   -ignore_crashes …), keeping every crashing input
#   NICE=N          niceness of the run (default 10)
#
# New inputs go to fuzz/work/TARGET/ (not committed); the seeds in
# fuzz/corpus/ are read, never written. The stable toolchain is enough:
# libFuzzer's instrumentation flags are stable, and no sanitizer is used
# (signet forbids unsafe code; a panic, a hang or an allocation beyond
# -rss_limit_mb is what is looked for). cargo-fuzz asks for nightly only
# for sanitizers.
set -euo pipefail

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(zone_reader verify)
max_len=${MAX_LEN:-16384}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

command -v cargo-fuzz >/dev/null || {
  echo "run.sh: cargo-fuzz not found: cargo install cargo-fuzz --locked" >&2
  exit 2
}

# One core per run: signet's rayon pool would only add overhead per input.
export RAYON_NUM_THREADS=1
flags=(-s none -a -O)
nice -n "${NICE:-10}" cargo fuzz build "${flags[@]}"

status=0
for target in "${targets[@]}"; do
  seeds=(corpus/"$target")
  [ "$target" = zone_reader ] && seeds+=(corpus/verify)
  mkdir -p "work/$target" "artifacts/$target"
  options=(-max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048
    -dict=zone.dict -print_final_stats=1)
  [ "${KEEP_GOING:-0}" = 1 ] && options+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  log="work/$target.log"
  started=$(date +%s)
  set +e
  nice -n "${NICE:-10}" cargo fuzz run "${flags[@]}" "$target" "work/$target" "${seeds[@]}" -- "${options[@]}" \
    >"$log" 2>&1
  rc=$?
  set -e
  elapsed=$(($(date +%s) - started))
  # The last status line: "#EXECS ... cov: EDGES ft: FEATURES corp: INPUTS/SIZE".
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
  cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.*corp: ([0-9]+).*/\1/p' <<<"$last")
  findings=$(find "artifacts/$target" -type f | wc -l)
  printf '%s: %s s, %s executions (%s/s), cov %s edges, ft %s features, corpus %s, %s finding(s) in fuzz/artifacts/%s\n' \
    "$target" "$elapsed" "${execs:-?}" "$(( ${execs:-0} / (elapsed > 0 ? elapsed : 1) ))" "${cov:-?}" "${ft:-?}" \
    "${corp:-?}" "$findings" "$target"
  if [ "$rc" != 0 ] || [ "$findings" != 0 ]; then
    status=1
    grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -20 >&2 || true
  fi
done
exit "$status"
