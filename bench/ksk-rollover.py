#!/usr/bin/env python3
"""Walks a zone through its first signing and a KSK rollover with the real
signet binary, SoftHSM keys and a simulated clock (--now), playing the
parent (DS seen / gone PARENT_DELAY after signet asks), and prints
`signet key list` at each phase with the phase's duration beside what
RFC 7583 says it must at least take under the policy.

    bench/ksk-rollover.py [POLICY]      (default policies/tld-ecdsa.toml)
"""

import json
import os
import subprocess
import sys
import tempfile
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIGNET = os.path.join(ROOT, "target", "release", "signet")
PARENT_DELAY = 6 * 3600
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(text):
    return int(text[:-1]) * UNITS[text[-1]] if isinstance(text, str) else int(text)


def run(env, *args):
    out = subprocess.run([SIGNET, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"signet {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def main():
    policy_file = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "policies", "tld-ecdsa.toml")
    policy = tomllib.load(open(policy_file, "rb"))
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "signet"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp()
    env = dict(os.environ, SIGNET_PKCS11_PIN="1234", SIGNET_DB=os.path.join(work, "signet.db"))
    conf = subprocess.run([os.path.join(ROOT, "hsm", "make-token.sh"), os.path.join(work, "hsm")], env=env,
                          capture_output=True, text=True, check=True).stdout
    env["SOFTHSM2_CONF"] = conf.strip().split("=", 1)[1]
    text = open(policy_file).read().replace('store = "file:keys"', 'store = "pkcs11:token=signet"')
    local = os.path.join(work, "policy.toml")
    open(local, "w").write(text)
    zone = os.path.join(ROOT, "tests", "data", "realistic.zone")
    run(env, "init")
    run(env, "policy", "import", local, "--name", "p")
    run(env, "zone", "add", "example.", "--policy", "p", "--input", zone, "--output", os.path.join(work, "out.zone"))

    k, z, p = policy.get("keys", {}), policy.get("zone", {}), policy.get("parent", {})
    dnskey = seconds(k.get("dnskey-ttl", "1h")) + seconds(z.get("propagation-delay", "5m")) + seconds(k.get("publish-safety", "1h"))
    ds = seconds(p.get("ds-ttl", "1d")) + seconds(p.get("propagation-delay", "1h"))
    retire = seconds(k.get("retire-safety", "1h"))

    now = 1_796_083_200  # 2026-12-01T00:00:00Z
    pending = []  # (time, tag, "seen"|"gone")
    phases = []

    def step():
        nonlocal now
        for item in [x for x in pending if x[0] <= now]:
            pending.remove(item)
            run(env, "--now", str(now), "ds", item[2], "example.", "--keytag", str(item[1]))
        result = json.loads(run(env, "--now", str(now), "--format", "json", "sign", "example."))
        keys = json.loads(run(env, "--now", str(now), "--format", "json", "key", "list", "example."))[0]["keys"]
        for key in keys:
            for todo in key["todo"]:
                kind = "seen" if todo.startswith("submit") else "gone" if todo.startswith("ask the parent") else None
                if kind and not any(t == key["keytag"] and w == kind for _, t, w in pending):
                    pending.append((now + PARENT_DELAY, key["keytag"], kind))
        return result, keys

    def settle(until, label, done):
        nonlocal now
        started = now
        while now < until:
            result, keys = step()
            if done(keys):
                phases.append((label, started, now, run(env, "--now", str(now), "key", "list", "example.")))
                return keys
            nxt = [t for t in [result.get("next")] + [x[0] for x in pending] if t and t > now]
            now = min(nxt) if nxt else now + 86400
        sys.exit(f"phase {label!r} did not finish")

    def states(keys, role):
        return [(x["keytag"], x["states"]) for x in keys if x["role"] == role]

    def all_omni(keys):
        return all(all(s == "omnipresent" for s in x["states"].values()) for x in keys)

    settle(now + 30 * 86400, "initial signing until every record is omnipresent", all_omni)
    run(env, "--now", str(now), "key", "rollover", "example.", "--ksk")
    settle(now + 30 * 86400, "new KSK: DNSKEY and its signature omnipresent, DS asked for",
           lambda keys: len(states(keys, "ksk")) == 2 and any(x["todo"] for x in keys))
    settle(now + 30 * 86400, "new DS seen at the parent; old DS retracted",
           lambda keys: any(x["role"] == "ksk" and x["states"].get("ds") == "rumoured" for x in keys))
    settle(now + 30 * 86400, "new DS omnipresent; old KSK withdrawn and removed",
           lambda keys: len(states(keys, "ksk")) == 1 and all_omni(keys))

    formula = {
        0: f"DNSKEY TTL + propagation + publish safety = {dnskey / 3600:.2f} h for the keys; "
           f"ZRRSIG: max TTL + propagation + retire safety; DS: parent delay ({PARENT_DELAY / 3600:.0f} h here) + DS TTL + parent propagation",
        1: f"Ipub = DNSKEY TTL + propagation + publish safety = {dnskey / 3600:.2f} h (RFC 7583 §3.3.2)",
        2: f"registration: the parent's delay, {PARENT_DELAY / 3600:.0f} h here (DS seen)",
        3: f"DS TTL + parent propagation = {ds / 3600:.2f} h, then DNSKEY TTL + propagation + retire safety "
           f"= {(dnskey - seconds(k.get('publish-safety', '1h')) + retire) / 3600:.2f} h (RFC 7583 §3.3.2)",
    }
    for i, (label, start, end, listing) in enumerate(phases):
        print(f"== phase {i}: {label}")
        print(f"   {(end - start) / 3600:.2f} h; formula: {formula[i]}")
        print(listing)


if __name__ == "__main__":
    main()
