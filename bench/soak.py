#!/usr/bin/env python3
"""Soak: `signet serve` killed with SIGKILL at random instants while a writer
changes the inputs of four zones, one per serial scheme (keep, increment,
unixtime, datecounter), under a fast policy (a ZSK rollover every 40 s,
soft keys).

    bench/soak.py [--minutes 10] [--signet target/debug/signet] [--work DIR]

Every version that appears at an output is captured twice over: by polling
the output file (20 times a second: it also sees a version installed by a
run killed before its commit) and by the publish-command (committed
versions). At the end it checks, and prints:

  * one serial, one version: no serial captured with two different contents;
  * serials never go backwards at an output;
  * nothing lost: after the writer stops, every zone's output carries the
    writer's last change, and `signet status` agrees with the output's serial;
  * every distinct version passes BIND's dnssec-verify.

Under `keep` the writer sometimes changes a zone without a new serial: that
change (and any rollover step or refresh) must wait for its next serial.
Exit status 0 when every check holds.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

SCHEMES = ["keep", "increment", "unixtime", "datecounter"]

POLICY = """name = "soak-{scheme}"
[keys]
algorithm = "ECDSAP256SHA256"
csk = false
ksk-lifetime = "0"
zsk-lifetime = "40s"
dnskey-ttl = "3s"
publish-safety = "2s"
retire-safety = "2s"
store = "file:keys"
[signatures]
validity = "2h"
dnskey-validity = "2h"
refresh = "1h"
jitter = "1m"
inception-offset = "1m"
[denial]
type = "nsec"
[zone]
propagation-delay = "1s"
max-ttl = "5s"
serial = "{scheme}"
[parent]
ds-ttl = "5s"
propagation-delay = "1s"
registration-delay = "5s"
"""


def zone_text(origin, serial, marker, extra):
    lines = [
        "$TTL 5",
        f"{origin} 5 IN SOA ns1.{origin} hostmaster.{origin} {serial} 3600 600 86400 5",
        f"{origin} 5 IN NS ns1.{origin}",
        f"ns1.{origin} 5 IN A 192.0.2.1",
        f"marker.{origin} 5 IN TXT \"{marker}\"",
    ]
    lines += [f"h{i}.{origin} 5 IN A 198.51.100.{i % 250 + 1}" for i in extra]
    return "\n".join(lines) + "\n"


def write_by_rename(path, text):
    tmp = f"{path}.new"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def soa_serial(text):
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[3] == "SOA":
            return int(fields[6])
    return None


def serial_gt(a, b):
    return a != b and ((a - b) % 2**32) < 2**31


class Soak:
    def __init__(self, args):
        self.signet = os.path.abspath(args.signet)
        self.work = os.path.abspath(args.work)
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(os.path.join(self.work, "versions"))
        self.db = os.path.join(self.work, "signet.db")
        self.zones = {s: f"{s}.soak." for s in SCHEMES}
        self.lock = threading.Lock()
        self.captured = {}  # (zone, serial) -> set of sha256
        self.files = {}  # sha256 -> path of one copy
        self.sequence = {s: [] for s in SCHEMES}  # serials in the order seen
        self.last_marker = {}
        self.input_serial = {s: 1 for s in SCHEMES}
        self.stop = threading.Event()
        self.serve = None
        self.kills = 0
        self.writes = 0
        self.held_writes = 0

    def run_signet(self, *args):
        env = dict(os.environ, SIGNET_DB=self.db)
        env.pop("SIGNET_NOW", None)
        return subprocess.run([self.signet, *args], env=env, capture_output=True, text=True, check=True)

    def path(self, scheme, kind):
        return os.path.join(self.work, f"{scheme}.{kind}")

    def setup(self):
        self.run_signet("init")
        for scheme, origin in self.zones.items():
            policy = self.path(scheme, "toml")
            with open(policy, "w") as f:
                f.write(POLICY.format(scheme=scheme))
            self.run_signet("policy", "import", policy)
            self.last_marker[scheme] = "m0"
            self.extra = list(range(20))
            write_by_rename(self.path(scheme, "zone"), zone_text(origin, 1, "m0", self.extra))
            self.run_signet("zone", "add", origin, "--policy", f"soak-{scheme}", "--input", self.path(scheme, "zone"),
                            "--output", self.path(scheme, "signed"))
        copy = (f"d='{self.work}/versions'; cp \"$SIGNET_OUTPUT\" \"$d/.part.$SIGNET_ZONE\" && "
                f"mv \"$d/.part.$SIGNET_ZONE\" \"$d/$SIGNET_ZONE$SIGNET_SERIAL.$$\"")
        with open(os.path.join(self.work, "serve.toml"), "w") as f:
            f.write("[serve]\nretry-min = \"1s\"\nretry-max = \"4s\"\nmax-parallel-runs = 2\n"
                    f"publish-command = [\"sh\", \"-c\", {json.dumps(copy)}]\n")

    def start_serve(self):
        env = dict(os.environ, SIGNET_DB=self.db)
        env.pop("SIGNET_NOW", None)
        log = open(os.path.join(self.work, "serve.log"), "a")
        self.serve = subprocess.Popen([self.signet, "serve", "--config", os.path.join(self.work, "serve.toml")],
                                      env=env, stdout=log, stderr=log)

    def record(self, scheme, text, source):
        serial = soa_serial(text)
        if serial is None:
            return
        digest = hashlib.sha256(text.encode()).hexdigest()
        with self.lock:
            self.captured.setdefault((scheme, serial), set()).add(digest)
            if digest not in self.files:
                copy = os.path.join(self.work, "versions", f"{scheme}.{serial}.{digest[:12]}.{source}")
                with open(copy, "w") as f:
                    f.write(text)
                self.files[digest] = (scheme, serial, copy)
            if source == "poll":
                seq = self.sequence[scheme]
                if not seq or seq[-1] != serial:
                    seq.append(serial)

    def poller(self):
        seen = {}
        while not self.stop.is_set():
            for scheme in SCHEMES:
                try:
                    with open(self.path(scheme, "signed")) as f:
                        text = f.read()
                except FileNotFoundError:
                    continue
                if seen.get(scheme) != text:
                    seen[scheme] = text
                    self.record(scheme, text, "poll")
            time.sleep(0.05)

    def write(self, scheme, bump=True):
        marker = f"m{self.writes + 1}"
        self.writes += 1
        random.shuffle(self.extra)
        extra = sorted(self.extra[: random.randint(10, 20)])
        if scheme == "keep":
            if bump:
                self.input_serial[scheme] += 1
            else:
                self.held_writes += 1
        elif scheme == "unixtime":
            self.input_serial[scheme] = int(time.time())
        write_by_rename(self.path(scheme, "zone"),
                        zone_text(self.zones[scheme], self.input_serial[scheme], marker, extra))
        self.last_marker[scheme] = marker

    def writer(self):
        while not self.stop.is_set():
            scheme = random.choice(SCHEMES)
            self.write(scheme, bump=random.random() > 0.2)
            time.sleep(random.uniform(0.3, 2.0))

    def killer(self, deadline):
        while time.time() < deadline:
            time.sleep(random.uniform(1.0, 8.0))
            self.serve.send_signal(signal.SIGKILL)
            self.serve.wait()
            self.kills += 1
            self.start_serve()

    def collect_hook_versions(self):
        directory = os.path.join(self.work, "versions")
        for name in os.listdir(directory):
            for scheme, origin in self.zones.items():
                if name.startswith(origin) and not name.startswith("."):
                    with open(os.path.join(directory, name)) as f:
                        self.record(scheme, f.read(), "hook")

    def wait_final(self, timeout):
        """Every zone's output carries its last marker; status agrees."""
        limit = time.time() + timeout
        while time.time() < limit:
            done = True
            for scheme in SCHEMES:
                try:
                    text = open(self.path(scheme, "signed")).read()
                except FileNotFoundError:
                    done = False
                    continue
                if f"\"{self.last_marker[scheme]}\"" not in text:
                    done = False
            if done:
                return True
            time.sleep(0.5)
        return False

    def main(self, minutes):
        self.setup()
        self.start_serve()
        poll = threading.Thread(target=self.poller, daemon=True)
        write = threading.Thread(target=self.writer, daemon=True)
        poll.start()
        write.start()
        started = time.time()
        self.killer(started + minutes * 60)
        self.stop.set()
        write.join()
        for scheme in SCHEMES:
            self.write(scheme, bump=True)  # the last change of each zone, with a new serial under keep
        self.stop.clear()
        poll = threading.Thread(target=self.poller, daemon=True)
        poll.start()
        final = self.wait_final(120)
        time.sleep(1)
        self.stop.set()
        poll.join()
        status = json.loads(self.run_signet("status", "--format", "json").stdout)
        self.serve.send_signal(signal.SIGTERM)
        self.serve.wait()
        self.collect_hook_versions()
        return self.report(final, status, time.time() - started)

    def report(self, final, status, seconds):
        failures = []
        for (scheme, serial), digests in sorted(self.captured.items()):
            if len(digests) > 1:
                failures.append(f"{scheme}: serial {serial} published with {len(digests)} different contents")
        for scheme, seq in self.sequence.items():
            for a, b in zip(seq, seq[1:]):
                if not serial_gt(b, a):
                    failures.append(f"{scheme}: serial went from {a} to {b} at the output")
        if not final:
            failures.append("the writer's last change did not reach every output within 120 s")
        for zone in status:
            scheme = zone["zone"].split(".")[0]
            out = soa_serial(open(self.path(scheme, "signed")).read())
            if zone.get("published_serial") != out:
                failures.append(f"{scheme}: status says {zone.get('published_serial')}, the output has {out}")
        verified = 0
        for digest, (scheme, serial, path) in sorted(self.files.items()):
            result = subprocess.run(["dnssec-verify", "-q", "-o", self.zones[scheme], path], capture_output=True,
                                    text=True)
            verified += 1
            if result.returncode != 0:
                failures.append(f"{scheme} serial {serial}: dnssec-verify: {result.stderr.strip()[:300]}")
        per_zone = {s: len({d for (z, _), ds in self.captured.items() if z == s for d in ds}) for s in SCHEMES}
        print(f"soak: {seconds:.0f} s, {self.kills} kill -9, {self.writes} input changes "
              f"({self.held_writes} under keep without a new serial)")
        print(f"soak: versions captured: {per_zone}; {verified} distinct versions through dnssec-verify")
        print(f"soak: serials per zone: { {s: (seq[0], seq[-1], len(seq)) for s, seq in self.sequence.items() if seq} }")
        for f in failures:
            print(f"soak: FAIL: {f}")
        print("soak: " + ("all checks hold" if not failures else f"{len(failures)} failures"))
        return 0 if not failures else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--signet", default="target/debug/signet")
    parser.add_argument("--work", default="bench/work/soak")
    args = parser.parse_args()
    sys.exit(Soak(args).main(args.minutes))
