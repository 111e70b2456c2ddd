#!/usr/bin/env python3
"""Generate the reference TLD-like zone for the signet benchmarks.

    bench/genzone.py [--origin tld.] [--count 1000000] [--seed 1] [-o FILE]

The zone holds an SOA, two apex NS with glue (A and AAAA), then COUNT
delegations, each with two NS:

  * 10 % have in-bailiwick name servers ns1/ns2.<label>.<origin> with an A
    record each (a third of those also with an AAAA record): glue;
  * the others point at out-of-zone hosters (ns1.hoster123.net. ...);
  * 5 % have a DS record (algorithm 13, digest type 2, 32-byte digest).

Everything is derived from BLAKE2b(seed, index), so the same arguments give
byte-identical output on every machine and every Python 3 version (no use of
the `random` module, whose derived functions have changed between versions).
Python standard library only.
"""

import argparse
import hashlib
import sys

TTL_SOA = 86400
TTL_NS = 86400
TTL_DS = 3600
SERIAL = 2026050501

# Pieces for pronounceable labels: registrants like names they can say.
ONSETS = ("b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r",
          "s", "t", "v", "w", "z", "br", "ch", "cl", "dr", "fl", "gr", "kr",
          "pl", "sch", "sk", "st", "str", "th", "tr")
VOWELS = ("a", "e", "i", "o", "u", "ei", "au", "ie", "ou", "y")
CODAS = ("", "", "", "n", "r", "s", "l", "m", "t", "ng", "ck", "x")
WORDS = ("shop", "web", "online", "net", "consult", "bau", "haus", "tech",
         "media", "design", "cloud", "immo", "auto", "reisen", "praxis",
         "info", "service", "group", "digital", "studio", "berlin", "hamburg",
         "koeln", "muenchen", "legal", "energie", "garten", "foto", "verlag")
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
HOSTER_TLDS = ("net", "com", "de", "eu", "org", "io", "nl", "at", "ch", "fr")
HOSTER_BASES = ("hoster", "dns", "nameserver", "hosting", "webspace",
                "serverhost", "domaindns", "anycast", "ns-cloud", "provider")
N_HOSTERS = 2500


class Stream:
    """Deterministic byte stream for one item: BLAKE2b(key=seed, index, block)."""

    __slots__ = ("key", "index", "block", "buf", "pos")

    def __init__(self, key: bytes, index: int):
        self.key = key
        self.index = index
        self.block = 0
        self.buf = b""
        self.pos = 0

    def _refill(self) -> None:
        msg = self.index.to_bytes(8, "big") + self.block.to_bytes(4, "big")
        self.buf = hashlib.blake2b(msg, key=self.key, digest_size=64).digest()
        self.block += 1
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            self._refill()
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def below(self, n: int) -> int:
        """Uniform-enough integer in [0, n) for small n (two bytes of input)."""
        pos = self.pos
        if pos + 2 > len(self.buf):
            return ((self.byte() << 8) | self.byte()) % n
        self.pos = pos + 2
        buf = self.buf
        return ((buf[pos] << 8) | buf[pos + 1]) % n

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def take(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            if self.pos >= len(self.buf):
                self._refill()
            chunk = self.buf[self.pos:self.pos + n - len(out)]
            self.pos += len(chunk)
            out += chunk
        return bytes(out)


def word(s: Stream, syllables: int) -> str:
    return "".join(s.pick(ONSETS) + s.pick(VOWELS) + s.pick(CODAS)
                   for _ in range(syllables))


def make_label(s: Stream) -> str:
    """A label of 6-20 characters of [a-z0-9-], never starting or ending in '-'."""
    kind = s.below(100)
    if kind < 45:                       # koralinde
        label = word(s, 2 + s.below(3))
    elif kind < 65:                     # mesta-shop, brauhaus-koeln
        label = word(s, 1 + s.below(2)) + s.pick(("-", "")) + s.pick(WORDS)
    elif kind < 80:                     # trivo24, autohaus2000
        label = word(s, 1 + s.below(3)) + str(s.below(10 ** (1 + s.below(4))))
    elif kind < 90:                     # anna-mueller style: two words
        label = word(s, 1 + s.below(2)) + "-" + word(s, 1 + s.below(2))
    else:                               # x7k2p9q1 style: random characters
        n = 6 + s.below(15)
        label = "".join(ALNUM[s.below(36)] for _ in range(n))
    if len(label) < 6:
        label += "".join(ALNUM[s.below(36)] for _ in range(6 - len(label)))
    return label[:20].strip("-").rjust(6, "x")


def hoster_name(i: int) -> str:
    base = HOSTER_BASES[i % len(HOSTER_BASES)]
    tld = HOSTER_TLDS[(i * 7) % len(HOSTER_TLDS)]
    return f"{base}{i}.{tld}."


def generate(origin: str, count: int, seed: int, out) -> None:
    key = hashlib.sha256(b"signet-genzone:" + str(seed).encode()).digest()
    w = out.write
    w(f"$TTL {TTL_NS}\n")
    w(f"{origin} {TTL_SOA} IN SOA a.nic.{origin} hostmaster.nic.{origin} "
      f"{SERIAL} 7200 3600 3600000 {TTL_SOA}\n")
    w(f"{origin} {TTL_NS} IN NS a.nic.{origin}\n")
    w(f"{origin} {TTL_NS} IN NS b.nic.{origin}\n")
    w(f"a.nic.{origin} {TTL_NS} IN A 192.0.2.1\n")
    w(f"a.nic.{origin} {TTL_NS} IN AAAA 2001:db8::1\n")
    w(f"b.nic.{origin} {TTL_NS} IN A 198.51.100.1\n")
    w(f"b.nic.{origin} {TTL_NS} IN AAAA 2001:db8:1::1\n")

    seen = {"nic"}
    chunk = []
    add = chunk.append
    for i in range(count):
        s = Stream(key, i)
        label = make_label(s)
        while label in seen:            # rare: derive a fresh candidate
            label = make_label(s)
        seen.add(label)
        owner = f"{label}.{origin}"
        glued = s.below(100) < 10
        secure = s.below(100) < 5      # independent of glue
        if glued:
            ns1, ns2 = f"ns1.{owner}", f"ns2.{owner}"
        else:
            h = hoster_name(s.below(N_HOSTERS))
            ns1, ns2 = f"ns1.{h}", f"ns2.{h}"
        add(f"{owner} {TTL_NS} IN NS {ns1}\n{owner} {TTL_NS} IN NS {ns2}\n")
        if glued:
            b = s.take(4)
            add(f"{ns1} {TTL_NS} IN A 198.18.{b[0]}.{b[1] or 1}\n"
                f"{ns2} {TTL_NS} IN A 198.19.{b[2]}.{b[3] or 1}\n")
            if s.below(3) == 0:
                h = s.take(4).hex()
                add(f"{ns1} {TTL_NS} IN AAAA 2001:db8:{h[:4]}::53\n"
                    f"{ns2} {TTL_NS} IN AAAA 2001:db8:{h[4:]}::53\n")
        if secure:
            tag = s.below(65536)
            add(f"{owner} {TTL_DS} IN DS {tag} 13 2 {s.take(32).hex().upper()}\n")
        if len(chunk) >= 8192:
            w("".join(chunk))
            chunk.clear()
    w("".join(chunk))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--origin", default="tld.", help="zone origin (default tld.)")
    p.add_argument("--count", type=int, default=1_000_000,
                   help="number of delegations (default 1000000)")
    p.add_argument("--seed", type=int, default=1, help="seed (default 1)")
    p.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    a = p.parse_args()
    origin = a.origin.lower()
    if not origin.endswith("."):
        origin += "."
    if origin == ".":
        p.error("the origin must not be the root")
    if a.count < 0:
        p.error("--count must be >= 0")
    if a.output == "-":
        generate(origin, a.count, a.seed, sys.stdout)
    else:
        with open(a.output, "w", encoding="ascii", newline="\n") as f:
            generate(origin, a.count, a.seed, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
