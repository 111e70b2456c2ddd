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

/// A policy of days, for the tests that run on the wall clock with soft
/// keys.
fn daily_policy(store: &str) -> String {
    compressed_policy(store)
        .replace("zsk-lifetime = \"15m\"", "zsk-lifetime = \"30d\"")
        .replace("ksk-lifetime = \"60m\"", "ksk-lifetime = \"365d\"")
        .replace("validity = \"4h\"\ndnskey-validity = \"4h\"", "validity = \"14d\"\ndnskey-validity = \"14d\"")
        .replace("refresh = \"90m\"", "refresh = \"5d\"")
        .replace("inception-offset = \"3h\"", "inception-offset = \"1h\"")
}

/// An online side and a KSK side with soft keys under the daily policy,
/// on the wall clock; the zone added to both.
fn soft_sides(dir: &Path) -> (Side, Side, PathBuf) {
    let online = Side::new(&dir.join("online"), Store::soft(&dir.join("online/keys")));
    let ksk = Side::new(&dir.join("ksk"), Store::soft(&dir.join("ksk/keys")));
    for side in [&online, &ksk] {
        let policy = side.db.with_file_name("offline.toml");
        std::fs::write(&policy, daily_policy(&side.store.uri())).expect("policy");
        side.ok(&["policy", "import", policy.to_str().expect("utf-8")]);
    }
    let (unsigned, signed) = (dir.join("example.zone"), dir.join("example.signed"));
    std::fs::write(&unsigned, UNSIGNED).expect("zone");
    let paths = (unsigned.to_str().expect("utf-8"), signed.to_str().expect("utf-8"));
    online.ok(&["zone", "add", ZONE, "--policy", "offline", "--input", paths.0, "--output", paths.1]);
    ksk.ok(&["zone", "add", ZONE, "--policy", "offline", "--ksk-side"]);
    (online, ksk, signed)
}

/// `signet skr import` of `text` (written to a file in `dir`): the
/// output.
fn import_text(online: &Side, dir: &Path, name: &str, text: &str) -> Output {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write response");
    run(&mut online.store.on_db(&online.db, &["skr", "import", ZONE, path.to_str().expect("utf-8")]))
}

#[test]
fn tampered_responses_are_refused_at_import() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (online, ksk, _) = soft_sides(dir);
    let now = signet::time::wall_clock();
    let (request, response) = (dir.join("r.ksr"), dir.join("r.skr"));
    let until = (now + 40 * 86_400).to_string();
    online.ok(&["ksr", "request", ZONE, "--until", &until, "-o", request.to_str().expect("utf-8")]);
    ksk.ok(&["ksr", "sign", ZONE, request.to_str().expect("utf-8"), "-o", response.to_str().expect("utf-8")]);
    let good = std::fs::read_to_string(&response).expect("response");
    let lines: Vec<&str> = good.lines().collect();

    // One byte of the first DNSKEY signature.
    let at = lines.iter().position(|l| l.contains("\tRRSIG\tDNSKEY ")).expect("an RRSIG over the DNSKEY RRset");
    let mut flipped = lines.clone();
    let line = lines[at];
    let middle = line.len() - 20;
    let swapped = if &line[middle..=middle] == "A" { "B" } else { "A" };
    let tampered_line = format!("{}{swapped}{}", &line[..middle], &line[middle + 1..]);
    flipped[at] = &tampered_line;
    let output = import_text(&online, dir, "byte.skr", &(flipped.join("\n") + "\n"));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a flipped signature byte was imported");
    assert!(err.contains("byte.skr:1:") && err.contains("DNSKEY") && err.contains("keytag="), "{err}");
    assert!(err.contains("does not verify") || err.contains("malformed"), "{err}");
    println!("a flipped byte: {err}");

    // A ZSK's DNSKEY swapped for another key's.
    let other = Store::soft(&dir.join("other"));
    let made = run(other.signet().args(["key", "generate", "--format", "json", "--origin", ZONE]).args([
        "--store",
        &other.uri(),
        "--algorithm",
        "13",
        "--role",
        "zsk",
        "--label",
        "intruder",
    ]));
    expect_success("signet key generate", &made);
    let json: serde_json::Value = serde_json::from_slice(&made.stdout).expect("key generate prints JSON");
    let intruder = json["dnskey"].as_str().expect("a DNSKEY").to_owned();
    let zsk_at = lines.iter().position(|l| l.contains("\tDNSKEY\t256 ")).expect("a ZSK");
    let mut swapped_key = lines.clone();
    let intruder_line = format!("{ZONE}\t60\tIN\tDNSKEY\t{}", intruder.split("DNSKEY").last().expect("rdata").trim());
    swapped_key[zsk_at] = &intruder_line;
    let output = import_text(&online, dir, "swapped.skr", &(swapped_key.join("\n") + "\n"));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a swapped DNSKEY was imported");
    assert!(err.contains("swapped.skr:1:") && err.contains("DNSKEY"), "{err}");
    println!("a swapped DNSKEY: {err}");

    // A period that overlaps the one before.
    let headers: Vec<usize> =
        lines.iter().enumerate().filter(|(_, l)| l.starts_with(";; SignedKeyResponse 1.0 1")).map(|(i, _)| i).collect();
    assert!(headers.len() >= 2, "the response has several periods");
    let first_time = lines[headers[0]].split_whitespace().nth(3).expect("time").to_owned();
    let mut overlapping = lines.clone();
    let second = lines[headers[1]].replacen(lines[headers[1]].split_whitespace().nth(3).expect("time"), &first_time, 1);
    overlapping[headers[1]] = &second;
    let output = import_text(&online, dir, "overlap.skr", &(overlapping.join("\n") + "\n"));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "overlapping periods were imported");
    assert!(err.contains(&format!("overlap.skr:{}:", headers[1] + 1)) && err.contains("periods overlap"), "{err}");
    println!("an overlapping period: {err}");

    // Nothing of them was stored; the good one then imports.
    let shown = online.ok(&["skr", "show", ZONE]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("no signed key response imported"));
    online.ok(&["skr", "import", ZONE, response.to_str().expect("utf-8")]);
    online.ok(&["sign", ZONE]);

    // A whole response made by another KSK, every signature good: its
    // KSK is not one the zone trusts.
    let rogue = Side::new(&dir.join("rogue"), Store::soft(&dir.join("rogue/keys")));
    let policy = rogue.db.with_file_name("offline.toml");
    std::fs::write(&policy, daily_policy(&rogue.store.uri())).expect("policy");
    rogue.ok(&["policy", "import", policy.to_str().expect("utf-8")]);
    rogue.ok(&["zone", "add", ZONE, "--policy", "offline", "--ksk-side"]);
    let forged = dir.join("forged.skr");
    rogue.ok(&["ksr", "sign", ZONE, request.to_str().expect("utf-8"), "-o", forged.to_str().expect("utf-8")]);
    let output = run(&mut online.store.on_db(&online.db, &["skr", "import", ZONE, forged.to_str().expect("utf-8")]));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a response of an untrusted KSK was imported");
    assert!(err.contains("forged.skr:1:") && err.contains("the KSKs this zone trusts"), "{err}");
    println!("another KSK: {err}");
}

/// A Knot configuration for `example.` whose KASP lives in `dir`:
/// `offline-ksk` with `manual` (keymgr's offline commands want both).
fn knot_config(dir: &Path, ksk_side: bool) -> PathBuf {
    std::fs::create_dir_all(dir.join("keys")).expect("mkdir");
    let lifetimes =
        if ksk_side { "    ksk-lifetime: 365d\n    cds-cdnskey-publish: always\n" } else { "    zsk-lifetime: 30d\n" };
    let text = format!(
        "server:\n    rundir: {d}\ndatabase:\n    storage: {d}\nkeystore:\n  - id: default\n    config: {d}/keys\n\
         policy:\n  - id: offline\n    algorithm: ecdsap256sha256\n    offline-ksk: on\n    manual: on\n\
         {lifetimes}    rrsig-lifetime: 14d\n    rrsig-refresh: 7d\n    dnskey-ttl: 60\n    zone-max-ttl: 120\n\
         template:\n  - id: default\n    storage: {d}\nzone:\n  - domain: {ZONE}\n    dnssec-signing: on\n    dnssec-policy: offline\n",
        d = dir.display()
    );
    let path = dir.join("knot.conf");
    std::fs::write(&path, text).expect("knot.conf");
    path
}

fn keymgr(config: &Path, args: &[&str]) -> Output {
    run(Command::new("keymgr").arg("-c").arg(config).arg(ZONE).args(args))
}

#[test]
fn knot_signs_our_request_and_we_sign_knots() {
    if !have_tool("keymgr") || !have_tool("dnssec-verify") {
        panic!("keymgr and dnssec-verify are needed (bash .ci/setup installs knot and bind9-utils)");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (online, ksk, signed) = soft_sides(dir);
    let now = signet::time::wall_clock();
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();

    // Knot's KSK side answers signet's request.
    let knot_ksk = knot_config(&dir.join("knot-ksk"), true);
    let made = keymgr(&knot_ksk, &["generate", "ksk=yes", "algorithm=13", "created=-1d", "publish=-1d"]);
    expect_success("keymgr generate", &made);
    let ksk_id = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    expect_success("keymgr set", &keymgr(&knot_ksk, &["set", &ksk_id, "ready=-1d", "active=-1d"]));
    let request = dir.join("signet.ksr");
    let until = (now + 40 * 86_400).to_string();
    online.ok(&["ksr", "request", ZONE, "--until", &until, "-o", &path(&request)]);
    let knot_response = keymgr(&knot_ksk, &["sign-ksr", &path(&request)]);
    expect_success("keymgr sign-ksr", &knot_response);
    let response = dir.join("knot.skr");
    std::fs::write(&response, &knot_response.stdout).expect("response");
    online.ok(&["skr", "import", ZONE, &path(&response)]);
    online.ok(&["sign", ZONE]);
    let bind = run(Command::new("dnssec-verify").args(["-q", "-o", ZONE]).arg(&signed));
    assert!(bind.status.success(), "dnssec-verify: {}", String::from_utf8_lossy(&bind.stderr));
    let (ksks, zsks, _) = apex_keys(&signed);
    assert_eq!((ksks.len(), zsks.len()), (1, 1), "Knot's KSK and our ZSK are published");

    // signet's KSK side answers Knot's request.
    let knot_zsk = knot_config(&dir.join("knot-zsk"), false);
    expect_success("keymgr pregenerate", &keymgr(&knot_zsk, &["pregenerate", "+40d"]));
    let knot_request = keymgr(&knot_zsk, &["generate-ksr", "+0", "+40d"]);
    expect_success("keymgr generate-ksr", &knot_request);
    let request = dir.join("knot.ksr");
    std::fs::write(&request, &knot_request.stdout).expect("request");
    let response = dir.join("signet.skr");
    ksk.ok(&["ksr", "sign", ZONE, &path(&request), "-o", &path(&response)]);
    expect_success("keymgr validate-skr", &keymgr(&knot_zsk, &["validate-skr", &path(&response)]));
    expect_success("keymgr import-skr", &keymgr(&knot_zsk, &["import-skr", &path(&response)]));
}

#[test]
fn responses_running_out_are_never_silent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (online, ksk, signed) = soft_sides(dir);
    let day = 86_400;
    let now = signet::time::wall_clock();
    let status = |at: i64| -> serde_json::Value {
        let output = online.ok_at(at, &["status", ZONE, "--format", "json"]);
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("status prints JSON");
        json.as_array().and_then(|zones| zones.first()).cloned().expect("one zone")
    };
    // Before any response: nothing is published, and status says what to do.
    let refused = online.at(now, &["sign", ZONE]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no signed key response imported"));
    let todo = status(now)["todo"].to_string();
    assert!(todo.contains("no signed key response imported"), "{todo}");

    let (request, response) = (dir.join("r.ksr"), dir.join("r.skr"));
    let until = (now + 20 * day).to_string();
    online.ok_at(now, &["ksr", "request", ZONE, "--until", &until, "-o", request.to_str().expect("utf-8")]);
    ksk.ok_at(now, &["ksr", "sign", ZONE, request.to_str().expect("utf-8"), "-o", response.to_str().expect("utf-8")]);
    online.ok_at(now, &["skr", "import", ZONE, response.to_str().expect("utf-8")]);
    online.ok_at(now, &["sign", ZONE]);
    let serial = common::published_serial(&signed);

    // The last period starts at +20 d, its signatures last 14 d: the
    // responses run out at +34 d, and the policy warns 14 d before.
    let fresh = status(now);
    assert_eq!(fresh["responses_running_out"], false, "{fresh}");
    assert_eq!(fresh["offline"]["expires"].as_i64(), Some(now + 34 * day), "{fresh}");
    let warned = status(now + 21 * day);
    assert_eq!(warned["responses_running_out"], true, "{warned}");
    assert!(warned["todo"].to_string().contains("the imported responses run out"), "{warned}");
    let listed = online.ok_at(now + 21 * day, &["key", "list", ZONE]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("TODO offline KSK: the imported responses run out"));
    online.ok_at(now + 21 * day, &["sign", ZONE]);

    // Past what the responses cover (their signatures within the refresh
    // margin): nothing new is published, and the run says why.
    let serial_before = common::published_serial(&signed);
    assert!(serial_before > serial);
    let late = online.at(now + 30 * day, &["sign", ZONE]);
    let err = String::from_utf8_lossy(&late.stderr);
    assert!(!late.status.success(), "a run past the responses published");
    assert!(err.contains("no imported response covers") && err.contains("import a new response"), "{err}");
    assert_eq!(common::published_serial(&signed), serial_before, "the zone served stays as it was");
    let failing = status(now + 30 * day);
    assert_eq!(failing["consecutive_failures"], 1, "{failing}");
}
