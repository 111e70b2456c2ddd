//! Issue 22 item 2, through the real binary: a policy change never starts
//! a rollover that the new policy alone would not start.
//!
//! The zone signs under a policy with 2-day ZSKs and 5-day KSKs; 10 hours
//! later `signet policy import` replaces it with 90-day ZSKs and 365-day
//! KSKs, and longer TTLs, safety margins and registration delay (so longer
//! pre-publication times), and the next managed run must make no key: the
//! old code measured the old policy's retire times against the new
//! pre-publication times and replaced both 10-hour-old keys at once (for
//! the KSK, a needless DS change at the parent). The new policy's own ZSK
//! rollover then comes when its lifetime says, not a second earlier.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

const ORIGIN: &str = "example.";
const T0: i64 = 1_796_083_200; // 2026-12-01T00:00:00Z
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

struct Zone {
    dir: PathBuf,
    db: PathBuf,
}

impl Zone {
    fn new(dir: &Path) -> Zone {
        let zone = Zone { dir: dir.to_owned(), db: dir.join("signet.db") };
        std::fs::create_dir_all(dir.join("keys")).expect("mkdir keys");
        zone.ok(T0, &["init"]);
        zone
    }

    fn ok(&self, now: i64, args: &[&str]) -> Output {
        let output = common::run(
            common::signet()
                .env_remove("SIGNET_NOW")
                .env_remove("SIGNET_DB")
                .arg("--db")
                .arg(&self.db)
                .args(["--now", &now.to_string()])
                .args(args),
        );
        common::expect_success(&format!("signet --now {now} {}", args.join(" ")), &output);
        output
    }

    fn json(&self, now: i64, args: &[&str]) -> Value {
        let output = self.ok(now, &[&["--format", "json"], args].concat());
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("signet {args:?} printed no JSON ({e}): {}", String::from_utf8_lossy(&output.stdout))
        })
    }

    /// Writes `[keys]` lines and the rest of a policy, and imports it as `p`.
    fn import_policy(&self, now: i64, file: &str, keys: &str, parent: &str) {
        let store = self.dir.join("keys");
        let text = format!(
            "[keys]\nalgorithm = \"ECDSAP256SHA256\"\nstore = \"file:{}\"\n{keys}\n[denial]\ntype = \"nsec\"\n\
             [zone]\nmax-ttl = \"1d\"\npropagation-delay = \"5m\"\n[parent]\n{parent}\n",
            store.display()
        );
        let path = self.dir.join(file);
        std::fs::write(&path, text).expect("write policy");
        self.ok(now, &["policy", "import", path.to_str().expect("path"), "--name", "p"]);
    }

    /// The zone's keys as `key list` shows them: (id, role).
    fn keys(&self, now: i64) -> Vec<(i64, String)> {
        let list = self.json(now, &["key", "list", ORIGIN]);
        list[0]["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| (k["id"].as_i64().expect("id"), k["role"].as_str().expect("role").to_owned()))
            .collect()
    }

    /// The `key-created` events of the audit trail: (time, key id).
    fn created(&self, now: i64) -> Vec<(i64, i64)> {
        let status = self.json(now, &["zone", "status", ORIGIN, "--audit", "0"]);
        status["audit"]
            .as_array()
            .expect("audit")
            .iter()
            .filter(|row| row["event"] == "key-created")
            .map(|row| (row["at"].as_i64().expect("at"), row["key_id"].as_i64().expect("key")))
            .collect()
    }
}

#[test]
fn a_policy_with_longer_lifetimes_does_not_replace_young_keys_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = Zone::new(dir.path());
    zone.import_policy(T0, "p1.toml", "zsk-lifetime = \"2d\"\nksk-lifetime = \"5d\"", "registration-delay = \"1d\"");
    let input = common::realistic_zone();
    let output = dir.path().join("example.signed");
    let (input, output) = (input.to_str().expect("path"), output.to_str().expect("path"));
    zone.ok(T0, &["zone", "add", ORIGIN, "--policy", "p", "--input", input, "--output", output]);
    zone.ok(T0, &["sign", ORIGIN]);
    let first = zone.keys(T0);
    assert_eq!(first.len(), 2, "a KSK and a ZSK: {first:?}");

    // 10 hours later: longer lifetimes, and pre-publication times longer
    // than what was left of the old lifetimes (ZSK: DNSKEY TTL 1d + 5m +
    // publish safety 1d; KSK: that + registration 2d + DS TTL 1d + 1h).
    let change = T0 + 10 * HOUR;
    zone.import_policy(
        change,
        "p2.toml",
        "zsk-lifetime = \"90d\"\nksk-lifetime = \"365d\"\ndnskey-ttl = \"1d\"\npublish-safety = \"1d\"\n\
         retire-safety = \"1d\"",
        "registration-delay = \"2d\"",
    );
    zone.ok(change, &["sign", ORIGIN]);
    assert_eq!(zone.keys(change), first, "the policy change replaced keys 10 hours old");
    assert_eq!(zone.created(change).len(), 2, "keys made: {:?}", zone.created(change));

    // The new policy's ZSK rollover: its successor is made its
    // pre-publication time before 90 days from when the ZSK first signed.
    let zsk_prepublication = DAY + 5 * 60 + DAY;
    let due = T0 + 90 * DAY - zsk_prepublication;
    zone.ok(due - 1, &["sign", ORIGIN]);
    assert_eq!(zone.created(due - 1).len(), 2, "a key made before the new lifetime called for it");
    zone.ok(due, &["sign", ORIGIN]);
    let created = zone.created(due);
    assert_eq!(created.len(), 3, "{created:?}");
    let (at, id) = created[2];
    assert_eq!(at, due);
    let roles: Vec<(i64, String)> = zone.keys(due);
    assert!(roles.iter().any(|(k, role)| *k == id && role == "zsk"), "the new key is a ZSK: {roles:?}");
}
