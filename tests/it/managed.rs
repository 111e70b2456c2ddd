//! Managed signing through the real binary, with SoftHSM keys and a
//! simulated clock (`--now`): the zone's lifecycle under a policy —
//! initial signing, ZSK rollovers by lifetime, a KSK rollover with the DS
//! flow (`ds seen`, `ds gone`), an algorithm rollover 8 → 13, a CSK
//! zone's rollover, an emergency ZSK rollover. After every run the
//! published zone passes signet verify against the DS the parent has (as
//! this test plays the parent) and BIND's dnssec-verify, and `key list`
//! agrees with the DNSKEY RRset published.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Store;

const ORIGIN: &str = "example.";
// dnssec-verify judges signatures by the wall clock and cannot be told
// another time: the simulated clock runs in the 40 days before the wall
// clock, and signatures are valid for 60 days, so that every zone signed
// on the way is valid for BIND now too.
fn start() -> i64 {
    signet::time::wall_clock() - 40 * DAY
}
const HOUR: i64 = 3600;
const DAY: i64 = 86400;

/// A database, a SoftHSM token, a zone under management, and the parent
/// as this test plays it.
struct Zone {
    dir: tempfile::TempDir,
    store: Store,
    db: PathBuf,
    output: PathBuf,
    now: i64,
    csk: bool,
    /// DS records the parent publishes, by key tag.
    parent: BTreeMap<u16, Vec<String>>,
    /// Parent actions due: (time, tag, seen?).
    parent_due: Vec<(i64, u16, bool)>,
    /// When the simulation started.
    start: i64,
    /// Every key `key list` has shown: id → role.
    seen_keys: BTreeMap<i64, String>,
}

fn policy_text(algorithm: &str, csk: bool) -> String {
    let keys = if csk { "csk = true\nksk-lifetime = \"0\"" } else { "ksk-lifetime = \"0\"\nzsk-lifetime = \"10d\"" };
    format!(
        "[keys]\nalgorithm = \"{algorithm}\"\n{keys}\ndnskey-ttl = \"1h\"\npublish-safety = \"10m\"\nretire-safety = \"10m\"\nstore = \"pkcs11:token=signet\"\n\
         [signatures]\nvalidity = \"60d\"\ndnskey-validity = \"60d\"\nrefresh = \"20d\"\njitter = \"1d\"\n\
         [denial]\ntype = \"nsec3\"\n\
         [zone]\npropagation-delay = \"5m\"\nmax-ttl = \"1d\"\nserial = \"unixtime\"\n\
         [parent]\nds-ttl = \"1h\"\npropagation-delay = \"5m\"\nregistration-delay = \"1h\"\n"
    )
}

impl Zone {
    fn new(algorithm: &str, csk: bool) -> Option<Zone> {
        if !["softhsm2-util", "dnssec-verify"].iter().all(|t| common::have_tool(t)) {
            return None;
        }
        let start = start();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::softhsm(&dir.path().join("hsm"));
        let db = dir.path().join("signet.db");
        let output = dir.path().join("example.signed");
        let zone = Zone {
            dir,
            store,
            db,
            output,
            now: start,
            start,
            csk,
            parent: BTreeMap::new(),
            parent_due: Vec::new(),
            seen_keys: BTreeMap::new(),
        };
        zone.ok(&["init"]);
        let policy = zone.dir.path().join("policy.toml");
        std::fs::write(&policy, policy_text(algorithm, csk)).expect("write policy");
        zone.ok(&["policy", "import", policy.to_str().expect("path"), "--name", "test"]);
        let input = common::realistic_zone();
        let (input, output) =
            (input.to_str().expect("path").to_owned(), zone.output.to_str().expect("path").to_owned());
        zone.ok(&["zone", "add", ORIGIN, "--policy", "test", "--input", &input, "--output", &output]);
        Some(zone)
    }

    fn signet(&self, args: &[&str]) -> Output {
        let mut command = self.store.signet();
        command.arg("--db").arg(&self.db).args(["--now", &self.now.to_string()]).args(args);
        common::run(&mut command)
    }

    fn ok(&self, args: &[&str]) -> Output {
        let output = self.signet(args);
        common::expect_success(&format!("signet {}", args.join(" ")), &output);
        output
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        serde_json::from_slice(&self.ok(&args).stdout).expect("JSON output")
    }

    /// One managed run at `now`, then every check; returns `next`.
    fn sign(&mut self) -> Option<i64> {
        self.parent_acts();
        let run = self.json(&["sign", ORIGIN]);
        self.check_published();
        self.answer_todos();
        run["next"].as_i64()
    }

    /// The parent: DS changes asked for come into effect after two hours.
    fn parent_acts(&mut self) {
        let (due, later): (Vec<_>, Vec<_>) = self.parent_due.drain(..).partition(|(at, _, _)| *at <= self.now);
        self.parent_due = later;
        for (_, tag, seen) in due {
            let tag_text = tag.to_string();
            if seen {
                let ds = self.json(&["ds", "show", ORIGIN, "--keytag", &tag_text]);
                let lines: Vec<String> =
                    ds["ds"].as_array().into_iter().flatten().filter_map(|l| l.as_str().map(str::to_owned)).collect();
                self.parent.insert(tag, lines.into_iter().take(1).collect());
                self.ok(&["ds", "seen", ORIGIN, "--keytag", &tag_text]);
            } else {
                self.parent.remove(&tag);
                self.ok(&["ds", "gone", ORIGIN, "--keytag", &tag_text]);
            }
        }
    }

    /// What `key list` says to do, the test does (as the parent would).
    fn answer_todos(&mut self) {
        let list = self.json(&["key", "list", ORIGIN]);
        for key in list[0]["keys"].as_array().into_iter().flatten() {
            let tag = key["keytag"].as_u64().unwrap_or(0) as u16;
            for todo in key["todo"].as_array().into_iter().flatten().filter_map(|t| t.as_str()) {
                let seen = todo.starts_with("submit this DS");
                let wanted = todo.starts_with("submit this DS") || todo.starts_with("ask the parent to remove");
                if wanted && !self.parent_due.iter().any(|(_, t, s)| *t == tag && *s == seen) {
                    self.parent_due.push((self.now + 2 * HOUR, tag, seen));
                }
            }
        }
    }

    /// The published zone validates against the parent's DS (signet and
    /// BIND), and `key list` names exactly the DNSKEYs it publishes.
    fn check_published(&mut self) {
        let mut verify = vec!["verify", self.output.to_str().expect("path"), "--origin", ORIGIN];
        let anchor = self.dir.path().join("parent-ds.txt");
        if !self.parent.is_empty() {
            std::fs::write(&anchor, self.parent.values().flatten().map(|l| format!("{l}\n")).collect::<String>())
                .expect("write");
            verify.extend(["--trust-anchor", anchor.to_str().expect("path")]);
        }
        let output = self.signet(&verify);
        common::expect_success(&format!("signet verify at {}", self.now - self.start), &output);
        let mut bind = Command::new("dnssec-verify");
        bind.args(["-q", "-o", ORIGIN]).args(if self.csk { &["-z"][..] } else { &[][..] }).arg(&self.output);
        common::expect_success(&format!("dnssec-verify at +{}s", self.now - self.start), &common::run(&mut bind));
        let list = self.json(&["key", "list", ORIGIN]);
        for key in list[0]["keys"].as_array().into_iter().flatten() {
            let (id, role) = (key["id"].as_i64().unwrap_or(0), key["role"].as_str().unwrap_or_default());
            self.seen_keys.insert(id, role.to_owned());
        }
        let mut listed: Vec<u64> = list[0]["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|k| matches!(k["states"]["dnskey"].as_str(), Some("rumoured" | "omnipresent")))
            .filter_map(|k| k["keytag"].as_u64())
            .collect();
        listed.sort_unstable();
        assert_eq!(listed, published_tags(&self.output), "key list vs the DNSKEY RRset at +{}s", self.now - self.start);
    }

    /// Runs until `until`, jumping to each `next` (at most a day apart).
    fn run_until(&mut self, until: i64) {
        while self.now < until {
            let next = self.sign();
            let parent_next = self.parent_due.iter().map(|(at, _, _)| *at).min();
            let jump =
                [next, parent_next].into_iter().flatten().filter(|&t| t > self.now).min().unwrap_or(self.now + DAY);
            self.now = jump.min(self.now + DAY).max(self.now + 60);
        }
    }

    fn keys(&self) -> Vec<serde_json::Value> {
        self.json(&["key", "list", ORIGIN])[0]["keys"].as_array().cloned().unwrap_or_default()
    }

    fn tags(&self, role: &str) -> Vec<u64> {
        self.keys().iter().filter(|k| k["role"] == role).filter_map(|k| k["keytag"].as_u64()).collect()
    }

    /// Keys seen over the whole run with `role`.
    fn made(&self, role: &str) -> usize {
        self.seen_keys.values().filter(|r| *r == role).count()
    }

    /// The audit trail's newest messages.
    fn audit(&self) -> Vec<String> {
        let status = self.json(&["zone", "status", ORIGIN]);
        status["audit"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["message"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Key tags of the DNSKEY RRset in a signed zone file.
fn published_tags(zone: &Path) -> Vec<u64> {
    let origin = signet::Name::from_text(ORIGIN, None).expect("origin");
    let zone = signet::read_zone_file(zone, &origin).expect("signed zone reads");
    let mut tags: Vec<u64> = zone
        .records()
        .filter(|r| r.rtype == signet::zone::Rtype::DNSKEY && r.owner.eq_ignore_case(origin.as_ref()))
        .map(|r| u64::from(signet::zone::dnssec::key_tag(r.rdata)))
        .collect();
    tags.sort_unstable();
    tags
}

#[test]
fn ksk_zsk_lifecycle_with_algorithm_rollover() {
    let Some(mut zone) = Zone::new("RSASHA256", false) else { return };
    // Initial signing; the first DS goes to the parent.
    zone.run_until(zone.start + 3 * DAY);
    assert_eq!(zone.parent.len(), 1, "the initial DS was submitted and seen");
    let first_ksk = zone.tags("ksk");
    // Two ZSK rollovers by lifetime (10d).
    zone.run_until(zone.start + 23 * DAY);
    assert!(zone.made("zsk") >= 3, "two ZSK rollovers: {:#?}", zone.audit());
    // A KSK rollover, asked for by the operator.
    zone.ok(&["key", "rollover", ORIGIN, "--ksk"]);
    zone.run_until(zone.start + 28 * DAY);
    let ksks = zone.tags("ksk");
    assert_eq!(ksks.len(), 1, "one KSK after the rollover: {ksks:?}");
    assert_ne!(ksks, first_ksk, "a new KSK");
    assert_eq!(zone.parent.keys().map(|&t| u64::from(t)).collect::<Vec<_>>(), ksks, "the parent has the new DS only");
    // Algorithm rollover 8 → 13: the policy changes.
    let policy = zone.dir.path().join("policy13.toml");
    std::fs::write(&policy, policy_text("ECDSAP256SHA256", false)).expect("write");
    zone.ok(&["policy", "import", policy.to_str().expect("path"), "--name", "test"]);
    zone.run_until(zone.start + 36 * DAY);
    let algorithms: Vec<u64> = zone.keys().iter().filter_map(|k| k["algorithm"].as_u64()).collect();
    assert!(!algorithms.is_empty() && algorithms.iter().all(|&a| a == 13), "only algorithm 13 left: {algorithms:?}");
    assert_eq!(zone.parent.len(), 1, "one DS at the parent, of algorithm 13");
}

#[test]
fn csk_rollover() {
    let Some(mut zone) = Zone::new("ED25519", true) else { return };
    zone.run_until(zone.start + 3 * DAY);
    let first = zone.tags("csk");
    zone.ok(&["key", "rollover", ORIGIN, "--csk"]);
    zone.run_until(zone.start + 9 * DAY);
    let now = zone.tags("csk");
    assert_eq!(now.len(), 1, "one CSK after the rollover");
    assert_ne!(now, first);
}

#[test]
fn emergency_zsk_rollover() {
    let Some(mut zone) = Zone::new("ECDSAP256SHA256", false) else { return };
    zone.run_until(zone.start + 3 * DAY);
    let compromised = zone.tags("zsk");
    zone.ok(&["key", "rollover", ORIGIN, "--zsk", "--emergency"]);
    let started = zone.now;
    zone.run_until(started + 3 * DAY);
    let zsks = zone.tags("zsk");
    assert_eq!(zsks.len(), 1);
    assert_ne!(zsks, compromised, "the compromised ZSK is gone");
    assert!(zone.audit().iter().any(|m| m.contains("compromised")));
}

#[test]
fn clock_going_backwards_is_refused() {
    let Some(mut zone) = Zone::new("ECDSAP256SHA256", false) else { return };
    // A run "in the future" (half an hour ahead: its signatures, valid from
    // an hour before, are still valid now), then the wall clock.
    zone.now = signet::time::wall_clock() + 1800;
    zone.sign();
    let mut command = zone.store.signet();
    command.arg("--db").arg(&zone.db).args(["sign", ORIGIN]).env_remove("SIGNET_NOW");
    let output = common::run(&mut command);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("clock went backwards") && stderr.contains("--now"), "{stderr}");
}

/// The CKA_IDs (hex, lowercase) of the objects in the zone's SoftHSM
/// token, as pkcs11-tool (opensc) lists them: a look into the token that
/// does not go through signet.
fn token_object_ids(zone: &Zone) -> Vec<String> {
    let common::Store::Pkcs11 { conf } = &zone.store else { panic!("a SoftHSM zone") };
    let module = "/usr/lib/softhsm/libsofthsm2.so";
    let output = common::run(
        Command::new("pkcs11-tool")
            .args(["--module", module, "--token-label", common::TEST_TOKEN, "--login", "--pin", common::TEST_PIN])
            .arg("--list-objects")
            .env("SOFTHSM2_CONF", conf),
    );
    common::expect_success("pkcs11-tool --list-objects", &output);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ID:"))
        .map(|id| id.trim().to_ascii_lowercase())
        .collect()
}

/// The CKA_ID in a key's `pkcs11:…;id=%01%02…` URI, as hex.
fn uri_id(uri: &str) -> String {
    let id = uri.split([';', '?']).find_map(|part| part.strip_prefix("id=")).expect("an id in the URI");
    id.replace('%', "").to_ascii_lowercase()
}

#[test]
fn removed_keys_are_destroyed_in_the_token_after_purge_after() {
    if !common::have_tool("pkcs11-tool") {
        return;
    }
    let Some(mut zone) = Zone::new("ECDSAP256SHA256", false) else { return };
    let policy = zone.dir.path().join("purge.toml");
    let text = policy_text("ECDSAP256SHA256", false).replace("[signatures]", "purge-after = \"1d\"\n[signatures]");
    std::fs::write(&policy, text).expect("write");
    zone.ok(&["policy", "import", policy.to_str().expect("path"), "--name", "test"]);
    zone.run_until(zone.start + 3 * DAY);
    let compromised: Vec<(u64, String)> = zone
        .keys()
        .iter()
        .filter(|k| k["role"] == "zsk")
        .map(|k| (k["keytag"].as_u64().unwrap_or(0), k["uri"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(compromised.len(), 1);
    let old_id = uri_id(&compromised[0].1);
    assert!(token_object_ids(&zone).contains(&old_id), "the ZSK is in the token");
    zone.ok(&["key", "rollover", ORIGIN, "--zsk", "--emergency"]);
    let deadline = zone.now + 3 * DAY;
    while zone.tags("zsk").contains(&compromised[0].0) {
        assert!(zone.now < deadline, "the compromised ZSK is removed within three days");
        let step = zone.now + HOUR;
        zone.run_until(step);
    }
    assert!(token_object_ids(&zone).contains(&old_id), "removed but not yet purged: still in the token");
    zone.run_until(zone.now + 2 * DAY);
    let ids = token_object_ids(&zone);
    assert!(!ids.contains(&old_id), "the removed ZSK's objects are gone from the token: {ids:?}");
    for key in zone.keys() {
        let id = uri_id(key["uri"].as_str().unwrap_or_default());
        assert_eq!(ids.iter().filter(|i| **i == id).count(), 2, "a live key keeps its private and public objects");
    }
    assert!(zone.audit().iter().any(|m| m.contains("key material destroyed")), "{:#?}", zone.audit());
}
