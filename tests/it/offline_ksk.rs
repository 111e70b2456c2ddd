//! The offline KSK (issue 27): an online signer with only ZSKs and a KSK
//! side with only KSKs, each with its own database and SoftHSM token.
//!
//! `a_quarter_with_an_offline_ksk`: minutes stand for days. Near the wall
//! clock (so that BIND's dnssec-verify, which judges by it, checks every
//! version; kzonecheck is given each version's time), the online side
//! signs every simulated minute for 100 minutes under a policy with a
//! 15-minute ZSK and a 60-minute KSK. Three ceremonies (a request, its
//! response, its import) cover it, plus an emergency one after a ZSK is
//! declared compromised. The test plays the parent: before each
//! ceremony it takes the CDS the zone last published as the DS set and
//! carries what changed to the KSK side (`signet ds seen|gone`), as an
//! operator would. Required: every version passes dnssec-verify and
//! kzonecheck; a ZSK rollover happens inside the first response; the
//! compromised ZSK is gone within minutes of the emergency response; the
//! KSK rolls across the responses (old and new published together, then
//! the new alone); neither side ever holds the other's keys.
//!
//! `tampered_responses_are_refused_at_import`: one signature byte, a
//! DNSKEY swapped for another, a period that overlaps the one before;
//! each refused naming what is wrong, and nothing stored.
//!
//! `knot_signs_our_request_and_we_sign_knots`: Knot's `keymgr sign-ksr`
//! answers a signet request, and the response is imported and published;
//! signet's KSK side answers a request of Knot's `keymgr generate-ksr`,
//! and Knot's `validate-skr` and `import-skr` take the response.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Store, expect_success, have_tool, run};
use signet::zone::dnssec::key_tag;
use signet::zone::reader::read_records_file;
use signet::zone::{Name, Rtype};

const ZONE: &str = "example.";
const MINUTE: i64 = 60;

/// Minutes for days. The inception offset (3 h) reaches back past the
/// whole simulated span, so every signature made is valid by the wall
/// clock too.
fn compressed_policy(store: &str) -> String {
    format!(
        r#"name = "offline"
[keys]
algorithm = "ECDSAP256SHA256"
offline-ksk = true
zsk-lifetime = "15m"
ksk-lifetime = "60m"
dnskey-ttl = "60s"
publish-safety = "30s"
retire-safety = "30s"
store = "{store}"
[signatures]
validity = "4h"
dnskey-validity = "4h"
refresh = "90m"
jitter = "10m"
inception-offset = "3h"
[denial]
type = "nsec"
[zone]
propagation-delay = "30s"
max-ttl = "2m"
serial = "unixtime"
[parent]
ds-ttl = "60s"
propagation-delay = "30s"
registration-delay = "2m"
cds = true
"#
    )
}

const UNSIGNED: &str = "\
$ORIGIN example.
$TTL 120
@ SOA ns1 hostmaster 1 7200 3600 1209600 120
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.2
mail A 192.0.2.3
@ MX 10 mail
";

/// One side: its database and its key store.
struct Side {
    store: Store,
    db: PathBuf,
}

impl Side {
    fn new(dir: &Path, store: Store) -> Side {
        std::fs::create_dir_all(dir).expect("mkdir");
        let side = Side { store, db: dir.join("signet.db") };
        let policy = dir.join("offline.toml");
        std::fs::write(&policy, compressed_policy(&side.store.uri())).expect("policy");
        side.ok(&["init"]);
        side.ok(&["policy", "import", policy.to_str().expect("utf-8")]);
        side
    }

    fn at(&self, now: i64, args: &[&str]) -> Output {
        let now = now.to_string();
        let mut all = vec!["--now", &now];
        all.extend_from_slice(args);
        run(&mut self.store.on_db(&self.db, &all))
    }

    fn ok_at(&self, now: i64, args: &[&str]) -> Output {
        let output = self.at(now, args);
        expect_success(&format!("signet --now {now} {}", args.join(" ")), &output);
        output
    }

    fn ok(&self, args: &[&str]) -> Output {
        self.store.ok_on(&self.db, args)
    }

    /// The roles of the zone's keys in this database.
    fn roles(&self) -> BTreeSet<String> {
        let output = self.ok(&["key", "list", ZONE, "--format", "json"]);
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("key list prints JSON");
        let keys = json.as_array().and_then(|zones| zones.first()).map(|z| z["keys"].clone()).unwrap_or_default();
        keys.as_array().into_iter().flatten().filter_map(|k| k["role"].as_str().map(str::to_owned)).collect()
    }
}

fn origin() -> Name {
    Name::from_text(ZONE, None).expect("origin")
}

/// The key tags of a signed zone's DNSKEYs with (KSK) and without (ZSK)
/// the SEP bit, and those its CDS records name.
fn apex_keys(signed: &Path) -> (BTreeSet<u16>, BTreeSet<u16>, BTreeSet<u16>) {
    let records = read_records_file(signed, &origin()).expect("the signed zone reads");
    let (mut ksks, mut zsks, mut cds) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for record in records.iter().filter(|r| r.owner == origin()) {
        match record.rtype {
            Rtype::DNSKEY if record.rdata[1] & 1 == 1 => ksks.insert(key_tag(&record.rdata)),
            Rtype::DNSKEY => zsks.insert(key_tag(&record.rdata)),
            Rtype::CDS => cds.insert(u16::from_be_bytes([record.rdata[0], record.rdata[1]])),
            _ => false,
        };
    }
    (ksks, zsks, cds)
}

/// BIND (by the wall clock) and Knot (at `now`) on one version.
fn check_version(signed: &Path, now: i64, serial: &str) {
    let bind = run(Command::new("dnssec-verify").args(["-q", "-o", ZONE]).arg(signed));
    assert!(bind.status.success(), "dnssec-verify refuses serial {serial}: {}", String::from_utf8_lossy(&bind.stderr));
    let knot = run(Command::new("kzonecheck").args(["-o", ZONE, "-d", "on", "-t", &now.to_string()]).arg(signed));
    assert!(knot.status.success(), "kzonecheck refuses serial {serial}: {}", String::from_utf8_lossy(&knot.stdout));
}

/// The offline exchange: the online side writes a request for
/// `[from, until]`, the KSK side signs it, the online side imports it.
fn ceremony(online: &Side, ksk: &Side, dir: &Path, n: usize, now: i64, (from, until): (i64, i64)) {
    let request = dir.join(format!("request-{n}.ksr"));
    let response = dir.join(format!("response-{n}.skr"));
    let (from, until) = (from.to_string(), until.to_string());
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    online.ok_at(now, &["ksr", "request", ZONE, "--from", &from, "--until", &until, "-o", &path(&request)]);
    ksk.ok_at(now, &["ksr", "sign", ZONE, &path(&request), "-o", &path(&response)]);
    online.ok_at(now, &["skr", "import", ZONE, &path(&response)]);
}

/// The parent: takes the CDS set the zone publishes as its DS set, and
/// the operator carries what changed to the KSK side.
fn parent_follows(parent: &mut BTreeSet<u16>, signed: &Path, ksk: &Side, now: i64) {
    let (_, _, cds) = apex_keys(signed);
    if cds.is_empty() || cds == *parent {
        return;
    }
    for tag in cds.difference(parent) {
        ksk.ok_at(now, &["ds", "seen", ZONE, "--keytag", &tag.to_string()]);
    }
    for tag in parent.difference(&cds) {
        ksk.ok_at(now, &["ds", "gone", ZONE, "--keytag", &tag.to_string()]);
    }
    *parent = cds;
}

#[test]
fn a_quarter_with_an_offline_ksk() {
    if !have_tool("softhsm2-util") || !have_tool("dnssec-verify") || !have_tool("kzonecheck") {
        panic!("softhsm2-util, dnssec-verify and kzonecheck are needed (bash .ci/setup installs them)");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let online = Side::new(&dir.join("online"), Store::softhsm(&dir.join("zsk-token")));
    let ksk = Side::new(&dir.join("ksk"), Store::softhsm(&dir.join("ksk-token")));
    let (unsigned, signed) = (dir.join("example.zone"), dir.join("example.signed"));
    std::fs::write(&unsigned, UNSIGNED).expect("zone");
    let paths = (unsigned.to_str().expect("utf-8"), signed.to_str().expect("utf-8"));
    online.ok(&["zone", "add", ZONE, "--policy", "offline", "--input", paths.0, "--output", paths.1]);
    ksk.ok(&["zone", "add", ZONE, "--policy", "offline", "--ksk-side"]);

    let t0 = signet::time::wall_clock() / MINUTE * MINUTE;
    let end = t0 + 100 * MINUTE;
    ceremony(&online, &ksk, dir, 1, t0 - 10 * MINUTE, (t0, t0 + 45 * MINUTE));
    let emergency_at = t0 + 20 * MINUTE;
    let mut parent = BTreeSet::new();
    let mut history: Vec<(i64, BTreeSet<u16>, BTreeSet<u16>)> = Vec::new();
    let mut compromised = None;
    let mut last_serial = String::new();
    let mut t = t0;
    while t <= end {
        if t == emergency_at {
            let (_, zsks, _) = apex_keys(&signed);
            compromised = zsks.iter().next().copied();
            online.ok_at(t, &["key", "rollover", ZONE, "--zsk", "--emergency"]);
            online.ok_at(t, &["sign", ZONE]);
            ceremony(&online, &ksk, dir, 10, t + 30, (t + MINUTE, t0 + 45 * MINUTE));
            t += MINUTE;
        }
        for (n, at, from, until) in [(2, 40, 45, 75), (3, 70, 75, 105)] {
            if t == t0 + at * MINUTE {
                parent_follows(&mut parent, &signed, &ksk, t);
                ceremony(&online, &ksk, dir, n, t, (t0 + from * MINUTE, t0 + until * MINUTE));
            }
        }
        online.ok_at(t, &["sign", ZONE]);
        let serial = common::published_serial(&signed).to_string();
        if serial != last_serial {
            check_version(&signed, t, &serial);
            last_serial = serial;
        }
        let (ksks, zsks, _) = apex_keys(&signed);
        history.push((t, ksks, zsks));
        t += MINUTE;
    }

    let minute = |t: i64| (t - t0) / MINUTE;
    let zsk_sets: Vec<String> = history.iter().map(|(t, _, z)| format!("{}:{z:?}", minute(*t))).collect();
    let ksk_sets: Vec<String> = history.iter().map(|(t, k, _)| format!("{}:{k:?}", minute(*t))).collect();
    let crowded = history.iter().find(|(_, k, z)| k.len() > 2 || z.len() > 2);
    assert!(crowded.is_none(), "more than two keys of a role at once: {zsk_sets:?} {ksk_sets:?}");
    // A ZSK rollover inside the first response: one ZSK, two, then the new one alone.
    let first = &history[0].2;
    let rolled = history.iter().take_while(|(t, _, _)| *t < emergency_at).any(|(_, _, z)| z.len() == 1 && z != first);
    assert!(rolled, "no ZSK rollover before the emergency: {zsk_sets:?}");
    // The compromised ZSK is gone within 10 minutes of the emergency.
    let compromised = compromised.expect("a ZSK was published at the emergency");
    let gone = history.iter().find(|(t, _, z)| *t >= emergency_at && !z.contains(&compromised));
    assert!(
        gone.is_some_and(|(t, _, _)| *t <= emergency_at + 10 * MINUTE),
        "compromised ZSK {compromised} still published: {zsk_sets:?}"
    );
    // The KSK rolls across the responses: the first alone, both, the new alone.
    let first_ksk = history[0].1.clone();
    assert_eq!(first_ksk.len(), 1, "{ksk_sets:?}");
    assert!(history.iter().any(|(_, k, _)| k.len() == 2), "no new KSK published: {ksk_sets:?}");
    let last = &history[history.len() - 1].1;
    assert!(last.len() == 1 && *last != first_ksk, "the KSK rollover did not complete: {ksk_sets:?}");
    // Neither side holds the other's keys.
    assert_eq!(online.roles(), BTreeSet::from(["zsk".to_owned()]), "the online side holds only ZSKs");
    assert_eq!(ksk.roles(), BTreeSet::from(["ksk".to_owned()]), "the KSK side holds only KSKs");
    println!("ZSKs by minute: {zsk_sets:?}\nKSKs by minute: {ksk_sets:?}");
}
