# Shared by the benchmark scripts (sourced, not run).

# Runs a command under /usr/bin/time; prints "wall cpu rss_mib exit". A
# failing command's last lines go to standard error.
measure() {
  local stats code=0
  stats=$(mktemp)
  /usr/bin/time -f "%e %U %S %M" -o "$stats" "$@" >"$stats.out" 2>&1 || code=$?
  [ "$code" = 0 ] || { echo "${0##*/}: $* failed:" >&2; tail -5 "$stats.out" >&2; }
  awk -v code="$code" '{ printf "%.2f %.2f %.0f %d\n", $1, $2 + $3, $4 / 1024, code }' "$stats"
  rm -f "$stats" "$stats.out"
}
