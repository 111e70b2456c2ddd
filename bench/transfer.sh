#!/usr/bin/env bash
# Benchmark: signet as a "bump in the wire" signer between an unsigned
# hidden primary and a public secondary, on the reference zone of N
# TLD-like delegations (bench/genzone.py), beside Knot (knotd) doing the
# same job:
#
#   named (unsigned hidden primary of tld., 127.0.0.1)
#     -> signet serve (127.0.0.1; release build, soft keys, tld-ecdsa:
#        P-256, NSEC3 opt-out)          -> NSD (127.0.0.2)
#     -> knotd (127.0.0.3; dnssec-signing, P-256, NSEC3 opt-out, its own
#        keys)                          -> NSD (127.0.0.4)
#
#   bench/transfer.sh [N] [nsec3-optout|nsec]   (default 1000000 nsec3-optout;
#                                               e.g. 20000 for a smoke run)
#
# Measures, for each signer in turn (the other one stopped, so that the
# two never share the 2 cores):
#   * the first publication: the signer's AXFR from named (records, bytes,
#     seconds), its first signing, its AXFR to NSD, and the time from the
#     signer's start until NSD serves the signed zone;
#   * three times: one record changed at named (a DS digest, the SOA serial
#     + 1), `rndc reload`; from the instant named's NOTIFY reached the
#     signer (the signer's log) to the instant NSD answers the new signed
#     serial (dig every 20 ms, the script's wall clock); the IXFR the signer
#     took in, its run, and the IXFR it served to NSD (kind, records,
#     bytes: proportional to the change, not to the zone).
# Prints each change and a summary table with the ratios signet/Knot.
# Instants: signet's JSON log (RFC 3339, microseconds); knotd logs to
# standard error, each line stamped on arrival by this script (Knot 3.2
# stamps to the second); NSD serving and rndc returning, the script's
# clock. Knot sends its NOTIFY 1 s after a refresh updated the zone (its
# refresh handler schedules it so); that second is in its figures.
#
# Everything listens on loopback on free ports; every file is under
# bench/work/transfer-N/ (git-ignored); every server is stopped by pid at
# the end.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-1000000}
denial=${2:-nsec3-optout}
case $denial in nsec3-optout | nsec) ;; *) echo "transfer.sh: denial is nsec3-optout or nsec" >&2; exit 2 ;; esac
reps=3
origin=tld.
for tool in python3 dig named named-checkconf rndc nsd nsd-checkconf knotd knotc; do
  command -v "$tool" >/dev/null || { echo "transfer.sh: $tool missing: run bash .ci/setup" >&2; exit 2; }
done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --release --quiet --bin signet
signet=$PWD/target/release/signet

mkdir -p bench/work
zone=bench/work/ref-$n.zone
if [ ! -s "$zone" ]; then
  echo "== generating $n delegations into $zone"
  python3 bench/genzone.py --count "$n" --origin "$origin" -o "$zone"
fi
echo "== reference zone: $zone, $(grep -vc '^\$' "$zone") records"

work=$PWD/bench/work/transfer-$n-$denial
rm -rf "$work"
mkdir -p "$work"/{named,signet,nsd-signet,knot,nsd-knot}
mkdir -m 0700 "$work/signet/keys"

# ---------------------------------------------------------------- helpers

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
fail() {
  echo "transfer.sh: $*" >&2
  exit 1
}

# The servers this script started: "name pid" (stopped by pid at the end).
servers=()
start() {
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  servers+=("$name:$!")
  echo "$name started (pid $!): $*" >&2
}
pid_of() {
  local entry
  for entry in "${servers[@]}"; do
    [ "${entry%%:*}" = "$1" ] && echo "${entry#*:}"
  done
  return 0
}
stop() {
  local pid
  pid=$(pid_of "$1")
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && { echo "transfer.sh: $1 (pid $pid) still runs 10 s after SIGTERM: SIGKILL" >&2; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  wait "$pid" 2>/dev/null || true
  local kept=() entry
  for entry in "${servers[@]}"; do
    [ "${entry%%:*}" = "$1" ] || kept+=("$entry")
  done
  servers=("${kept[@]+"${kept[@]}"}")
}
cleanup() {
  local entry
  for entry in "${servers[@]+"${servers[@]}"}"; do
    stop "${entry%%:*}"
  done
}
trap cleanup EXIT
alive() {
  local pid
  pid=$(pid_of "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || fail "$1 is not running; the end of its log $2:
$(tail -20 "$2")"
}

# Free ports, both UDP and TCP, one per address given (all held until all
# are found, so that none is handed out twice).
free_ports() {
  python3 - "$@" <<'EOF'
import socket, sys
held, ports = [], []
for ip in sys.argv[1:]:
    while True:
        t = socket.socket()
        t.bind((ip, 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((ip, port))
        except OSError:
            continue
        if port in ports:
            continue
        held += [t, u]
        ports.append(port)
        break
print(*ports)
EOF
}

# The SOA serial that server $1 port $2 answers for the zone, or nothing.
soa_serial() {
  dig @"$1" -p "$2" +norec +time=1 +tries=1 +short "$origin" SOA 2>/dev/null | awk 'NF >= 7 { print $3; exit }'
}
# Waits (every $4 s, at most $5 s) until $1:$2 serves a serial other than
# $3 (empty: any serial); prints it. $6: the server to check is alive, $7
# its log.
wait_serial_change() {
  local ip=$1 port=$2 old=$3 step=$4 limit=$5 who=$6 log=$7 s deadline
  deadline=$(awk -v t="$(now)" -v l="$limit" 'BEGIN { printf "%.0f", t + l }')
  while :; do
    s=$(soa_serial "$ip" "$port")
    if [ -n "$s" ] && [ "$s" != "$old" ]; then
      echo "$s"
      return 0
    fi
    [ "${EPOCHREALTIME%.*}" -lt "$deadline" ] || fail "$ip:$port still serves serial '${s}' (waiting for a change from '$old') after $limit s"
    alive "$who" "$log"
    sleep "$step"
  done
}

# signet's JSON log: the first event whose message starts with $2, after
# the Unix time $3, whose fields match every KEY=VALUE of $4 (comma
# separated, may be empty); prints its time (Unix seconds) and then the
# values of the fields named in $5 (comma separated), or nothing.
signet_event() {
  python3 - "$1" "$2" "$3" "$4" "$5" <<'EOF'
import json, sys
from datetime import datetime
path, message, after, where, fields = sys.argv[1:]
want = dict(kv.split("=", 1) for kv in where.split(",") if kv)
for line in open(path, errors="replace"):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    f = event.get("fields", {})
    if not str(f.get("message", "")).startswith(message):
        continue
    at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
    if at < float(after) or any(str(f.get(k)) != v for k, v in want.items()):
        continue
    print(f"{at:.6f}", *(f.get(k, "-") for k in fields.split(",") if k))
    break
EOF
}
# Waits (at most $6 s) for such an event; prints it.
wait_signet_event() {
  local found deadline
  deadline=$(awk -v t="$(now)" -v l="$6" 'BEGIN { printf "%.0f", t + l }')
  while :; do
    found=$(signet_event "$1" "$2" "$3" "$4" "$5")
    [ -n "$found" ] && { echo "$found"; return 0; }
    [ "${EPOCHREALTIME%.*}" -lt "$deadline" ] || fail "no '$2' ($4) in $1 after $6 s"
    alive signet "$1"
    sleep 0.2
  done
}

# Prefixes each line with the instant it arrives (UTC, microseconds).
stamp_lines() {
  python3 -u -c '
import sys
from datetime import datetime, timezone
for line in sys.stdin:
    sys.stdout.write(datetime.now(timezone.utc).isoformat(timespec="microseconds") + " " + line)
    sys.stdout.flush()
'
}

# knotd's log (stamped by stamp_lines): the first line after the Unix
# time $2 that matches the regular expression $3 (Python syntax, its
# groups printed after the line's time in Unix seconds), or nothing.
knot_event() {
  python3 - "$1" "$2" "$3" <<'EOF'
import re, sys
from datetime import datetime
path, after, pattern = sys.argv[1:]
rx = re.compile(pattern)
for line in open(path, errors="replace"):
    stamp, _, rest = line.partition(" ")
    try:
        at = datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        continue
    if at < float(after):
        continue
    m = rx.search(rest)
    if m:
        print(f"{at:.6f}", *m.groups())
        break
EOF
}
wait_knot_event() {
  local found deadline
  deadline=$(awk -v t="$(now)" -v l="$4" 'BEGIN { printf "%.0f", t + l }')
  while :; do
    found=$(knot_event "$1" "$2" "$3")
    [ -n "$found" ] && { echo "$found"; return 0; }
    [ "${EPOCHREALTIME%.*}" -lt "$deadline" ] || fail "no line matching '$3' in $1 after $4 s"
    alive knotd "$1"
    sleep 0.2
  done
}

# Records and bytes of an IXFR from serial $3 that $1:$2 serves (dig from
# 127.0.0.1, after the measurement): "records bytes".
ixfr_size() {
  dig @"$1" -p "$2" +tcp +time=10 +tries=1 "$origin" IXFR="$3" |
    awk '/^;; XFR size:/ { gsub(/[(),]/, ""); print $4, $9; found = 1 } END { if (!found) print "? ?" }'
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# ---------------------------------------------------------------- addresses

read -r p_named p_rndc p_signet p_nsd1 p_knot p_nsd2 < <(free_ports 127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4)
named_ip=127.0.0.1 signet_ip=127.0.0.1 nsd1_ip=127.0.0.2 knot_ip=127.0.0.3 nsd2_ip=127.0.0.4
echo "== named $named_ip:$p_named (rndc $p_rndc), signet $signet_ip:$p_signet -> NSD $nsd1_ip:$p_nsd1; knotd $knot_ip:$p_knot -> NSD $nsd2_ip:$p_nsd2"

# ---------------------------------------------------------------- named

d=$work/named
cp "$zone" "$d/primary.zone"
secret=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
printf 'key "rndc-key" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n' "$secret" >"$d/rndc.key"
cat "$d/rndc.key" - >"$d/named.conf" <<EOF
controls { inet 127.0.0.1 port $p_rndc allow { 127.0.0.1; } keys { "rndc-key"; }; };
options {
  directory "$d";
  pid-file "$d/named.pid";
  session-keyfile "$d/session.key";
  managed-keys-directory "$d";
  listen-on port $p_named { $named_ip; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify explicit;
  also-notify { $signet_ip port $p_signet; $knot_ip port $p_knot; };
  notify-delay 0;
  ixfr-from-differences yes;
  max-ixfr-ratio unlimited;
  allow-transfer { any; };
};
zone "$origin" { type primary; file "$d/primary.zone"; };
EOF
named-checkconf "$d/named.conf"
serial_of() { awk '$4 == "SOA" { print $7; exit }' "$1"; }
primary_serial=$(serial_of "$d/primary.zone")
named_log=$d/named.log
t0=$(now)
start named "$named_log" named -g -4 -c "$d/named.conf"
while [ "$(soa_serial $named_ip "$p_named")" != "$primary_serial" ]; do
  alive named "$named_log"
  sleep 0.1
done
t_named=$(elapsed "$t0" "$(now)")
echo "named serves $origin serial $primary_serial after $t_named s"

# Changes one record at named: the digest of the first DS (its last 8 hex
# digits become the change's number) and the SOA serial + 1, written by
# rename, then `rndc reload`. Sets primary_serial and t_reload (the wall
# clock when rndc returned).
ds_line=$(grep -n -m1 ' DS ' "$d/primary.zone" | cut -d: -f1)
changes=0
change_at_named() {
  local file=$work/named/primary.zone new
  changes=$((changes + 1))
  new=$((primary_serial + 1))
  sed -E -e "2s/ $primary_serial / $new /" -e "$ds_line s/[0-9A-F]{8}\$/$(printf '%08X' "$changes")/" "$file" >"$file.new"
  [ "$(serial_of "$file.new")" = "$new" ] || fail "cannot change the serial of $file"
  mv -f "$file.new" "$file"
  rndc -k "$work/named/rndc.key" -s 127.0.0.1 -p "$p_rndc" reload "$origin" >/dev/null
  t_reload=$(now)
  primary_serial=$new
}

# NSD, a secondary of $origin at $1:$2 in directory $3, from the primary
# $4:$5 (NOTIFY allowed from $4, transfers asked from $1).
start_nsd() {
  local ip=$1 port=$2 dir=$3 from=$4 from_port=$5 name=$6
  cat >"$dir/nsd.conf" <<EOF
server:
  ip-address: $ip
  port: $port
  do-ip4: yes
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: "$dir"
  database: ""
  zonelistfile: "$dir/zone.list"
  xfrdfile: "$dir/xfrd.state"
  xfrdir: "$dir"
  pidfile: "$dir/nsd.pid"
  logfile: "$dir/nsd.log"
  cookie-secret-file: "$dir/cookiesecrets.txt"
  verbosity: 2
  server-count: 1
  reuseport: no
  hide-version: yes
  zonefiles-write: 0
remote-control:
  control-enable: yes
  control-interface: "$dir/nsd.ctl"
zone:
  name: "$origin"
  zonefile: "$dir/secondary.zone"
  allow-notify: $from NOKEY
  request-xfr: $from@$from_port NOKEY
  provide-xfr: 127.0.0.0/8 NOKEY
  outgoing-interface: $ip
EOF
  nsd-checkconf "$dir/nsd.conf"
  start "$name" "$dir/stderr" nsd -d -c "$dir/nsd.conf"
}

# ---------------------------------------------------------------- signet

s=$work/signet
export SIGNET_DB=$s/signet.db
sed "s|^store = .*|store = \"file:$s/keys\"|" policies/tld-ecdsa.toml >"$s/policy.toml"
if [ "$denial" = nsec ]; then
  python3 - "$s/policy.toml" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text = re.sub(r"\[denial\][^\[]*", '[denial]\ntype = "nsec"\n\n', text, count=1)
open(path, "w").write(text)
PY
fi
"$signet" init >/dev/null
"$signet" policy import "$s/policy.toml" >/dev/null
"$signet" zone add "$origin" --policy tld-ecdsa --primary "$named_ip:$p_named" --output "$s/tld.signed" >/dev/null
"$signet" zone secondary add "$origin" "$nsd1_ip:$p_nsd1" >/dev/null
# dig from 127.0.0.1 may take an IXFR too (to count its records afterwards).
"$signet" zone acl add "$origin" 127.0.0.1 >/dev/null
signet_log=$s/serve.log

start_nsd "$nsd1_ip" "$p_nsd1" "$work/nsd-signet" "$signet_ip" "$p_signet" nsd-signet
echo
echo "== signet: first transfer, signing and publication"
t_start=$(now)
start signet "$signet_log" "$signet" serve --listen "$signet_ip:$p_signet" --log-format json
read -r t_in in_kind in_records in_bytes in_seconds < <(wait_signet_event "$signet_log" "transfer in complete" 0 "" kind,records,bytes,seconds 1800)
read -r t_pub pub_serial pub_seconds < <(wait_signet_event "$signet_log" "zone published" 0 "" serial,seconds 1800)
served=$(wait_serial_change $nsd1_ip "$p_nsd1" "" 0.1 1800 nsd-signet "$work/nsd-signet/nsd.log")
t_served=$(now)
[ "$served" = "$pub_serial" ] || fail "NSD serves serial $served, signet published $pub_serial"
read -r t_out out_kind out_records out_bytes out_seconds < <(wait_signet_event "$signet_log" "transfer out" 0 "client=$nsd1_ip,serial=$pub_serial" kind,records,bytes,seconds 60)
printf -v sig_in 'transfer in: %s, %s records, %s, %.2f s (done +%s s)' "$in_kind" "$in_records" "$(mib "$in_bytes")" "$in_seconds" "$(elapsed "$t_start" "$t_in")"
printf -v sig_sign 'sign + gate + publish: %.2f s (serial %s, +%s s)' "$pub_seconds" "$pub_serial" "$(elapsed "$t_start" "$t_pub")"
printf -v sig_out 'transfer out to NSD: %s, %s records, %s, %.2f s (done +%s s)' "$out_kind" "$out_records" "$(mib "$out_bytes")" "$out_seconds" "$(elapsed "$t_start" "$t_out")"
sig_total=$(elapsed "$t_start" "$t_served")
printf '  %s\n' "$sig_in" "$sig_sign" "$sig_out" "NSD serves serial $served: $sig_total s after serve's start"

# One change through signet: prints a line and sets the globals r_*.
signet_change() {
  local old=$1 t_notify served t_served t_in kind records bytes seconds t_pub pserial t_done pseconds t_out okind orec obytes oseconds
  change_at_named
  served=$(wait_serial_change $nsd1_ip "$p_nsd1" "$old" 0.02 600 nsd-signet "$work/nsd-signet/nsd.log")
  t_served=$(now)
  read -r t_notify < <(wait_signet_event "$signet_log" "NOTIFY from the primary" "$t_start" "serial=$primary_serial" "" 10)
  read -r t_in kind records bytes seconds < <(wait_signet_event "$signet_log" "transfer in complete" "$t_notify" "serial=$primary_serial" kind,records,bytes,seconds 10)
  # The version is served (and NOTIFY sent) before its output file is
  # written; the run ends ("zone published") once the file is in place.
  read -r t_pub pserial < <(wait_signet_event "$signet_log" "version served" "$t_in" "" serial 10)
  read -r t_done pseconds < <(wait_signet_event "$signet_log" "output file written" "$t_in" "" seconds 60)
  [ "$served" = "$pserial" ] || fail "NSD serves serial $served, signet published $pserial"
  read -r t_out okind orec obytes oseconds < <(wait_signet_event "$signet_log" "transfer out" "$t_pub" "client=$nsd1_ip,serial=$pserial" kind,records,bytes,seconds 10)
  r_latency=$(elapsed "$t_notify" "$t_served")
  r_in="$kind $records rec $bytes B"
  r_out_records=$orec r_out_bytes=$obytes r_out_kind=$okind r_in_kind=$kind
  r_serial=$pserial r_ready=$(elapsed "$t_notify" "$t_pub")
  printf '  change %d (primary serial %s -> signed %s): NOTIFY -> NSD serving %s s   [NOTIFY %s s after rndc reload returned]\n' \
    "$changes" "$primary_serial" "$pserial" "$r_latency" "$(elapsed "$t_reload" "$t_notify")"
  printf '    in:  %s, %s records, %s bytes, %.3f s (done +%s s)\n' "$kind" "$records" "$bytes" "$seconds" "$(elapsed "$t_notify" "$t_in")"
  printf '    run: served +%s s; its output file written +%s s (the file: %.2f s)\n' "$(elapsed "$t_notify" "$t_pub")" "$(elapsed "$t_notify" "$t_done")" "$pseconds"
  printf '    out: %s to NSD, %s records, %s bytes, %.3f s (done +%s s); NSD serving +%s s\n' \
    "$okind" "$orec" "$obytes" "$oseconds" "$(elapsed "$t_notify" "$t_out")" "$r_latency"
  [ "$kind" = ixfr ] || echo "    !! signet took an $kind from named where an IXFR was expected" >&2
  [ "$okind" = ixfr ] || echo "    !! signet served NSD an $okind where an IXFR was expected" >&2
}

echo "== signet: $reps one-record changes at named"
sig_lat=() sig_rows=() sig_ready=()
prev=$served
for ((r = 1; r <= reps; r++)); do
  sleep 1
  signet_change "$prev"
  sig_lat+=("$r_latency")
  sig_ready+=("$r_ready")
  read -r dig_records dig_bytes < <(ixfr_size $signet_ip "$p_signet" "$prev")
  sig_rows+=("$r_in_kind/$r_out_kind $r_out_records $r_out_bytes $dig_records")
  prev=$r_serial
done
if grep -qi 'notify.*refused\|refused notify\|unauthorized' "$work/nsd-signet/nsd.log"; then
  echo "  !! NSD refused a NOTIFY:" >&2
  grep -i 'notify' "$work/nsd-signet/nsd.log" | tail -5 >&2
fi
sig_rss=$(awk '$1 == "VmHWM:" { print int($2 / 1024) " MiB" }' "/proc/$(pid_of signet)/status")
stop signet
stop nsd-signet

# ---------------------------------------------------------------- knot

k=$work/knot
knot_log=$k/knot.log
cat >"$k/knot.conf" <<EOF
server:
  rundir: "$k"
  pidfile: "$k/knot.pid"
  listen: $knot_ip@$p_knot
  udp-workers: 1
  tcp-workers: 1
control:
  listen: "$k/knot.sock"
database:
  storage: "$k"
  journal-db-max-size: 4G
  kasp-db-max-size: 64M
  timer-db-max-size: 16M
  catalog-db-max-size: 16M
log:
  - target: stderr
    any: info
remote:
  - id: named
    address: $named_ip@$p_named
  - id: nsd
    address: $nsd2_ip@$p_nsd2
    via: $knot_ip
acl:
  - id: notify_from_named
    address: $named_ip
    action: notify
  - id: transfer_to_loopback
    address: 127.0.0.0/8
    action: transfer
policy:
  - id: tld
    algorithm: ecdsap256sha256
    ksk-size: 256
    zsk-size: 256
    dnskey-ttl: 3600
    zsk-lifetime: 90d
    rrsig-lifetime: 14d
    rrsig-refresh: 5d
    propagation-delay: 10m
    nsec3: $([ "$denial" = nsec ] && echo off || echo on)
    nsec3-opt-out: on
    nsec3-iterations: 0
    nsec3-salt-length: 0
    signing-threads: $(nproc)
zone:
  - domain: $origin
    storage: "$k"
    file: tld.zone
    master: named
    notify: nsd
    acl: [notify_from_named, transfer_to_loopback]
    dnssec-signing: on
    dnssec-policy: tld
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
    journal-max-usage: 2G
EOF
knotc -c "$k/knot.conf" conf-check >/dev/null
start_nsd "$nsd2_ip" "$p_nsd2" "$work/nsd-knot" "$knot_ip" "$p_knot" nsd-knot
echo
echo "== Knot $(knotd --version | awk '{ print $NF }'): first transfer, signing and publication"
t_kstart=$(now)
# Knot 3.2 stamps its log lines to the second: it logs to standard error
# (unbuffered), and each line is stamped with the microsecond it arrives.
knotd -c "$k/knot.conf" 2> >(stamp_lines >"$knot_log") >/dev/null &
servers+=("knotd:$!")
echo "knotd started (pid $!): knotd -c $k/knot.conf" >&2
since=$t_kstart
read -r kt_in kin_secs kin_msgs kin_bytes < <(wait_knot_event "$knot_log" "$since" 'AXFR, incoming, remote [^,]+, finished, ([0-9.]+) seconds, ([0-9]+) messages, ([0-9]+) bytes' 1800)
read -r kt_sign < <(wait_knot_event "$knot_log" "$since" 'DNSSEC, successfully signed' 1800)
kserved=$(wait_serial_change $nsd2_ip "$p_nsd2" "" 0.1 1800 nsd-knot "$work/nsd-knot/nsd.log")
kt_served=$(now)
read -r kt_out kout_secs kout_msgs kout_bytes < <(wait_knot_event "$knot_log" "$since" '[AI]XFR, outgoing, remote [^,]+, finished, ([0-9.]+) seconds, ([0-9]+) messages, ([0-9]+) bytes' 60)
knot_rec_in=$(grep -vc '^\$' "$work/named/primary.zone")
printf -v knot_in 'transfer in: axfr, %s messages, %s, %s s (done +%s s)' "$kin_msgs" "$(mib "$kin_bytes")" "$kin_secs" "$(elapsed "$t_kstart" "$kt_in")"
printf -v knot_sign 'signed (+%s s)' "$(elapsed "$t_kstart" "$kt_sign")"
printf -v knot_out 'transfer out to NSD: %s messages, %s, %s s (done +%s s)' "$kout_msgs" "$(mib "$kout_bytes")" "$kout_secs" "$(elapsed "$t_kstart" "$kt_out")"
knot_total=$(elapsed "$t_kstart" "$kt_served")
printf '  %s\n' "$knot_in" "$knot_sign" "$knot_out" "NSD serves serial $kserved: $knot_total s after knotd's start"

knot_change() {
  local old=$1 served t_served since t_notify t_in in_secs in_msgs in_bytes t_signed t_updated t_nout t_out out_secs out_msgs out_bytes
  since=$(now)
  change_at_named
  served=$(wait_serial_change $nsd2_ip "$p_nsd2" "$old" 0.02 600 nsd-knot "$work/nsd-knot/nsd.log")
  t_served=$(now)
  read -r t_notify < <(wait_knot_event "$knot_log" "$since" "notify, incoming, remote [^,]+, serial $primary_serial" 10)
  read -r t_in in_secs in_msgs in_bytes < <(wait_knot_event "$knot_log" "$t_notify" 'IXFR, incoming, remote [^,]+, finished, ([0-9.]+) seconds, ([0-9]+) messages, ([0-9]+) bytes' 10)
  read -r t_signed < <(wait_knot_event "$knot_log" "$t_in" 'DNSSEC, (?:successfully|incrementally) signed' 10) || t_signed=
  read -r t_updated < <(wait_knot_event "$knot_log" "$t_in" 'refresh, remote [^,]+, zone updated' 10) || t_updated=
  # Logged when NSD answered it.
  read -r t_nout < <(wait_knot_event "$knot_log" "$t_in" "notify, outgoing, remote [^,]+, serial $served" 10) || t_nout=
  read -r t_out out_secs out_msgs out_bytes < <(wait_knot_event "$knot_log" "$t_in" 'IXFR, outgoing, remote [^,]+, finished, ([0-9.]+) seconds, ([0-9]+) messages, ([0-9]+) bytes' 10)
  r_latency=$(elapsed "$t_notify" "$t_served")
  r_out_bytes=$out_bytes r_serial=$served r_ready=$(elapsed "$t_notify" "$t_updated")
  printf '  change %d (primary serial %s -> signed %s): NOTIFY -> NSD serving %s s   [NOTIFY %s s after rndc reload returned]\n' \
    "$changes" "$primary_serial" "$served" "$r_latency" "$(elapsed "$t_reload" "$t_notify")"
  printf '    in:  ixfr, %s messages, %s bytes, %s s (done +%s s)\n' "$in_msgs" "$in_bytes" "$in_secs" "$(elapsed "$t_notify" "$t_in")"
  printf '    run: signed +%s s, zone updated +%s s; NOTIFY to NSD answered +%s s\n' "$(elapsed "$t_notify" "$t_signed")" \
    "$(elapsed "$t_notify" "$t_updated")" "$(elapsed "$t_notify" "$t_nout")"
  printf '    out: ixfr to NSD, %s messages, %s bytes, %s s (done +%s s); NSD serving +%s s\n' \
    "$out_msgs" "$out_bytes" "$out_secs" "$(elapsed "$t_notify" "$t_out")" "$r_latency"
}

echo "== Knot: $reps one-record changes at named"
knot_lat=() knot_rows=() knot_ready=()
prev=$kserved
for ((r = 1; r <= reps; r++)); do
  sleep 1
  knot_change "$prev"
  knot_lat+=("$r_latency")
  knot_ready+=("$r_ready")
  read -r dig_records dig_bytes < <(ixfr_size $knot_ip "$p_knot" "$prev")
  knot_rows+=("ixfr $dig_records $r_out_bytes")
  prev=$r_serial
done
knot_rss=$(awk '$1 == "VmHWM:" { print int($2 / 1024) " MiB" }' "/proc/$(pid_of knotd)/status")
cleanup

# ---------------------------------------------------------------- summary

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "Zone transfers, $n delegations of $origin, named -> signer -> NSD on loopback, $(nproc) cores, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "signet: tld-ecdsa (P-256, $denial), soft keys; Knot $(knotd --version | awk '{ print $NF }'): P-256, $denial, its own keys"
printf '%-46s | %-34s | %-34s | %s\n' measure signet Knot signet/Knot
row() { printf '%-46s | %-34s | %-34s | %s\n' "$@"; }
row "named start (load of the unsigned zone)" "$t_named s" "" ""
row "signer start -> NSD serves the signed zone" "$sig_total s" "$knot_total s" "$(ratio "$sig_total" "$knot_total")"
row "  transfer in (AXFR)" "$(printf '%.2f s, %s' "$in_seconds" "$(mib "$in_bytes")")" "$kin_secs s, $(mib "$kin_bytes")" "$(ratio "$in_seconds" "$kin_secs")"
row "  transfer out to NSD (AXFR)" "$(printf '%.2f s, %s' "$out_seconds" "$(mib "$out_bytes")")" "$kout_secs s, $(mib "$kout_bytes")" "$(ratio "$out_seconds" "$kout_secs")"
for ((r = 0; r < reps; r++)); do
  read -r sk srec sbytes sdig <<<"${sig_rows[r]}"
  read -r kk kdig kbytes <<<"${knot_rows[r]}"
  row "change $((r + 1)): NOTIFY -> NSD serving" "${sig_lat[r]} s" "${knot_lat[r]} s" "$(ratio "${sig_lat[r]}" "${knot_lat[r]}")"
  row "  NOTIFY -> new signed version ready**" "${sig_ready[r]} s" "${knot_ready[r]} s" "$(ratio "${sig_ready[r]}" "${knot_ready[r]}")"
  row "change $((r + 1)): IXFR to NSD (records, bytes)" "$srec records, $sbytes B ($sk)" "$kdig records*, $kbytes B" "$(ratio "$sbytes" "$kbytes")"
done
sm=$(median "${sig_lat[@]}") km=$(median "${knot_lat[@]}")
row "median NOTIFY -> NSD serving" "$sm s" "$km s" "$(ratio "$sm" "$km")"
row "peak RSS of the signer" "$sig_rss" "$knot_rss" ""
echo "* records of the same IXFR asked again with dig after the measurement (Knot's log gives messages and bytes)"
echo "** signet: its \"version served\" line; Knot: its \"refresh ... zone updated\" line (Knot then waits 1 s before its NOTIFY)"
printf '  signet: its log'"'"'s record count / dig'"'"'s of the same IXFR afterwards:'
for row in "${sig_rows[@]}"; do
  read -r _ srec _ sdig <<<"$row"
  printf ' %s/%s' "$srec" "$sdig"
done
echo
