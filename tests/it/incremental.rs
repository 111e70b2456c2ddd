//! Incremental signing through the real binary: a managed run keeps the
//! signatures of the version last published and makes only what it must.
//!
//! Every version any test here publishes is compared with the one before
//! it by [`check_minimal`], from the text of the two files alone: an RRSIG
//! over an RRset that did not change, by a key that signed it before and
//! still signs it, with more than refresh + pre-refresh of validity left,
//! must be the very same record; every other RRSIG must be new. So a
//! change of one record re-signs that RRset and the denial records around
//! it, a rollover step re-signs what the key states require, and refresh
//! re-signs what falls due. Every version also passes BIND's
//! dnssec-verify and Knot's kzonecheck.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Store, bind_verify, expect_success, have_tool, knot_check, run};

const HOUR: i64 = 3600;
const DAY: i64 = 86400;
const ORIGIN: &str = "tld.";
/// The test policy's refresh + pre-refresh, and validity.
const RENEW_WITHIN: i64 = 3 * DAY + 2 * HOUR;
const VALIDITY: i64 = 10 * DAY;

/// One published version, read from its text: each RRset's records
/// (TTL and RDATA) and each RRset's RRSIGs by key tag.
#[derive(Debug, Default)]
struct Version {
    rrsets: BTreeMap<(String, String), BTreeSet<String>>,
    rrsigs: BTreeMap<(String, String), BTreeMap<u16, String>>,
}

impl Version {
    fn read(path: &Path) -> Version {
        let text = std::fs::read_to_string(path).expect("read the published zone");
        let mut version = Version::default();
        for line in text.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty()) {
            let fields: Vec<&str> = line.splitn(5, '\t').collect();
            let [owner, ttl, _class, rtype, rdata] = fields[..] else { panic!("unexpected line {line:?}") };
            let owner = owner.to_ascii_lowercase();
            if rtype == "RRSIG" {
                let parts: Vec<&str> = rdata.split_whitespace().collect();
                let tag: u16 = parts[6].parse().expect("key tag");
                let previous =
                    version.rrsigs.entry((owner, parts[0].to_owned())).or_default().insert(tag, rdata.into());
                assert!(previous.is_none(), "two RRSIGs by one key over one RRset: {line}");
            } else {
                version.rrsets.entry((owner, rtype.to_owned())).or_default().insert(format!("{ttl} {rdata}"));
            }
        }
        version
    }

    fn rrsig_count(&self) -> usize {
        self.rrsigs.values().map(BTreeMap::len).sum()
    }
}

/// The expiration of an RRSIG given as text (YYYYMMDDHHmmSS), in Unix seconds.
fn expiration(rrsig: &str) -> i64 {
    let stamp = rrsig.split_whitespace().nth(4).expect("expiration");
    let field = |range: std::ops::Range<usize>| stamp[range].parse::<i64>().expect("digits");
    let days = signet::time::days_from_civil(field(0..4), field(4..6), field(6..8));
    days * DAY + field(8..10) * HOUR + field(10..12) * 60 + field(12..14)
}

/// What changed between two versions, as [`check_minimal`] found it.
#[derive(Debug, Default)]
struct Change {
    /// RRSIGs kept byte for byte.
    kept: usize,
    /// RRSIGs made anew, by the RRset they cover.
    made: BTreeSet<(String, String)>,
    /// How many RRSIGs were made anew.
    made_count: usize,
}

/// Checks that `new` (published at `now`) keeps exactly the RRSIGs of
/// `old` that may be kept, and returns what it kept and made.
fn check_minimal(old: &Version, new: &Version, now: i64) -> Change {
    let mut change = Change::default();
    for (rrset, sigs) in &new.rrsigs {
        let unchanged = old.rrsets.get(rrset) == new.rrsets.get(rrset);
        for (tag, sig) in sigs {
            let before = old.rrsigs.get(rrset).and_then(|s| s.get(tag));
            // A tag in both versions is taken to name the same key: a
            // test's few keys could share a tag only by a 1-in-65536
            // chance, and then this fails (signet would re-sign), never
            // passes wrongly.
            let keepable = before
                .is_some_and(|b| unchanged && expiration(b) - now > RENEW_WITHIN && expiration(b) <= now + VALIDITY);
            if keepable {
                assert_eq!(Some(sig), before, "{rrset:?} by {tag}: an RRSIG that could be kept was made anew");
                change.kept += 1;
            } else {
                assert_ne!(Some(sig), before, "{rrset:?} by {tag}: an RRSIG that is due or stale was kept");
                change.made.insert(rrset.clone());
                change.made_count += 1;
            }
        }
    }
    change
}

/// A managed zone in a temporary directory, soft keys, and the versions it
/// published.
struct Managed {
    dir: tempfile::TempDir,
    store: Store,
    db: PathBuf,
    input: PathBuf,
    output: PathBuf,
    versions: Vec<(i64, Version)>,
}

fn policy(denial: &str, store: &Store) -> String {
    format!(
        "[keys]\nalgorithm = \"ECDSAP256SHA256\"\nksk-lifetime = \"0\"\nzsk-lifetime = \"0\"\ndnskey-ttl = \"1h\"\n\
         publish-safety = \"10m\"\nretire-safety = \"10m\"\nstore = \"{}\"\n\
         [signatures]\nvalidity = \"10d\"\ndnskey-validity = \"10d\"\nrefresh = \"3d\"\njitter = \"2d\"\npre-refresh = \"2h\"\n\
         [denial]\n{denial}\n\
         [zone]\npropagation-delay = \"5m\"\nmax-ttl = \"1d\"\nserial = \"increment\"\n\
         [parent]\nds-ttl = \"1h\"\npropagation-delay = \"5m\"\nregistration-delay = \"1h\"\n",
        store.uri()
    )
}

impl Managed {
    /// `names` delegations from bench/genzone.py under NSEC, NSEC3 or
    /// NSEC3 opt-out (`denial` is the policy's `[denial]` body).
    fn new(denial: &str, names: u32) -> Option<Managed> {
        if !["dnssec-verify", "kzonecheck", "python3"].iter().all(|t| have_tool(t)) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::soft(&dir.path().join("keys"));
        let db = dir.path().join("signet.db");
        let input = dir.path().join("tld.zone");
        let output = dir.path().join("tld.signed");
        let genzone = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/genzone.py");
        let made = run(Command::new("python3").arg(genzone).args(["--count", &names.to_string(), "-o"]).arg(&input));
        expect_success("genzone.py", &made);
        let policy_file = dir.path().join("p.toml");
        std::fs::write(&policy_file, policy(denial, &store)).expect("write policy");
        let zone = Managed { dir, store, db, input, output, versions: Vec::new() };
        zone.ok(zone.signet().arg("init"));
        zone.ok(zone.signet().args(["policy", "import"]).arg(&policy_file));
        let mut add = zone.signet();
        add.args(["zone", "add", ORIGIN, "--policy", "p", "--input"])
            .arg(&zone.input)
            .arg("--output")
            .arg(&zone.output);
        zone.ok(&mut add);
        Some(zone)
    }

    fn signet(&self) -> Command {
        let mut command = self.store.signet();
        command.env("SIGNET_DB", &self.db).current_dir(self.dir.path());
        command
    }

    fn ok(&self, command: &mut Command) -> String {
        let output = run(command);
        expect_success(&format!("{command:?}"), &output);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `signet sign` at `now`; checks the new version with the peers and
    /// against the one before. Returns the change and signet's own count
    /// of RRSIGs made.
    fn sign(&mut self, now: i64) -> (Change, u64) {
        let (made, _) = self.sign_unchecked(now);
        let version = Version::read(&self.output);
        let change = match self.versions.last() {
            Some((_, old)) => check_minimal(old, &version, now),
            None => Change { made_count: version.rrsig_count(), ..Change::default() },
        };
        assert_eq!(change.made_count as u64, made, "signet's count of RRSIGs made disagrees with the files");
        self.versions.push((now, version));
        (change, made)
    }

    /// `signet sign` at `now`, the new version checked by the peers only:
    /// signet's count of RRSIGs made, and its log.
    fn sign_unchecked(&self, now: i64) -> (u64, String) {
        let output = run(self.signet().args(["--now", &now.to_string(), "sign", ORIGIN]));
        expect_success(&format!("signet sign at {now}"), &output);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let made: u64 = stdout
            .lines()
            .find_map(|l| l.split(" RRSIGs made").next().filter(|_| l.contains(" RRSIGs made")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count of RRSIGs made in {stdout:?}"));
        let peers =
            [("dnssec-verify", bind_verify(&self.output, ORIGIN)), ("kzonecheck", knot_check(&self.output, ORIGIN))];
        for (tool, output) in peers {
            expect_success(&format!("{tool} on the version published at {now}"), &output);
        }
        (made, String::from_utf8_lossy(&output.stderr).into_owned())
    }

    /// The journal's record of the latest version: (removed, added).
    fn journal_counts(&self) -> (u64, u64) {
        let json = self.ok(self.signet().args(["--format", "json", "zone", "diff", ORIGIN]));
        let diff: serde_json::Value = serde_json::from_str(&json).expect("zone diff JSON");
        let count = |field: &str| diff["version"][field].as_u64().expect("a count");
        (count("removed"), count("added"))
    }

    /// Rewrites the input with `edit` applied to its text.
    fn edit_input(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(&self.input).expect("read input");
        let edited = edit(text.clone());
        assert_ne!(text, edited, "the edit changed nothing");
        std::fs::write(&self.input, edited).expect("write input");
    }

    fn key_tags(&self, now: i64, role: &str) -> Vec<u16> {
        let json = self.ok(self.signet().args(["--now", &now.to_string(), "--format", "json", "key", "list", ORIGIN]));
        let list: serde_json::Value = serde_json::from_str(&json).expect("key list JSON");
        list[0]["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .filter(|k| k["role"] == role)
            .map(|k| k["keytag"].as_u64().expect("keytag") as u16)
            .collect()
    }
}

/// Signatures are judged by the wall clock by the peers: the simulated
/// clock starts a week before it, so that every version is valid now.
fn start() -> i64 {
    signet::time::wall_clock() - 7 * DAY
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items.iter().map(|(o, t)| (o.to_string(), t.to_string())).collect()
}

/// The first secure delegation of the input (one with a DS).
fn first_ds(text: &str) -> String {
    text.lines().find(|l| l.contains(" DS ")).expect("a DS in the input").to_owned()
}

fn one_record_change(denial: &str, around: fn(&Version, &Version, &str) -> BTreeSet<(String, String)>) {
    let Some(mut zone) = Managed::new(denial, 2000) else { return };
    let t0 = start();
    let (_, first) = zone.sign(t0);
    assert!(first > 100, "the first version is signed in full ({first})");
    // Nothing changed but the serial: the SOA alone is signed.
    let (change, made) = zone.sign(t0 + HOUR);
    assert_eq!((change.made, made), (set(&[(ORIGIN, "SOA")]), 1));
    // One DS record's digest changes: that DS RRset and the SOA.
    let ds = first_ds(&std::fs::read_to_string(&zone.input).expect("read"));
    let owner = ds.split(' ').next().expect("owner").to_ascii_lowercase();
    zone.edit_input(|text| text.replacen(&ds, &format!("{}DEADBEEF", &ds[..ds.len() - 8]), 1));
    let (change, _) = zone.sign(t0 + 2 * HOUR);
    assert_eq!(change.made, set(&[(ORIGIN, "SOA"), (&owner, "DS")]));
    // The journal: the SOA, the DS and their RRSIGs out and in.
    assert_eq!(zone.journal_counts(), (4, 4));
    // A new secure delegation: its DS, its denial record and the one
    // before it in the chain, and the SOA; nothing else.
    zone.edit_input(|text| text + "aaa-new.tld. 86400 IN NS ns1.example.net.\naaa-new.tld. 3600 IN DS 12345 13 2 0011223344556677889900112233445566778899001122334455667788990011\n");
    let (change, _) = zone.sign(t0 + 3 * HOUR);
    let [.., (_, old), (_, new)] = &zone.versions[..] else { unreachable!() };
    let mut expected = set(&[(ORIGIN, "SOA"), ("aaa-new.tld.", "DS")]);
    expected.extend(around(old, new, "aaa-new.tld."));
    assert_eq!(
        change.made, expected,
        "{denial}: a new delegation re-signs only its own records and the chain around it"
    );
    assert!(change.kept > first as usize - 10, "nearly every signature was kept ({} of {first})", change.kept);
    // Out: the SOA, the predecessor's denial record, their RRSIGs. In:
    // those anew, the NS, the DS and its RRSIG, the new denial record and
    // its RRSIG.
    assert_eq!(zone.journal_counts(), (4, 9));
}

/// Under NSEC: the new name's NSEC and its predecessor's.
fn nsec_around(_old: &Version, new: &Version, name: &str) -> BTreeSet<(String, String)> {
    let predecessor = new
        .rrsets
        .iter()
        .find(|((_, t), records)| t == "NSEC" && records.iter().any(|r| r.split_whitespace().nth(1) == Some(name)))
        .map(|((o, _), _)| o.clone())
        .expect("the new name's predecessor in the NSEC chain");
    [(name.to_owned(), "NSEC".to_owned()), (predecessor, "NSEC".to_owned())].into()
}

/// Under NSEC3: the new name's NSEC3 and its predecessor's in hash
/// order, the two NSEC3 records that differ from the version before.
fn nsec3_around(old: &Version, new: &Version, _name: &str) -> BTreeSet<(String, String)> {
    let changed: BTreeSet<_> = new
        .rrsets
        .iter()
        .filter(|(key, records)| key.1 == "NSEC3" && old.rrsets.get(*key) != Some(*records))
        .map(|(key, _)| key.clone())
        .collect();
    let added = changed.iter().filter(|key| !old.rrsets.contains_key(*key)).count();
    assert_eq!((changed.len(), added), (2, 1), "the chain changes at the new name and its predecessor: {changed:?}");
    changed
}

#[test]
fn nsec_one_record_change_resigns_that_rrset_and_the_chain_around_it() {
    one_record_change("type = \"nsec\"", nsec_around);
}

#[test]
fn nsec3_one_record_change_resigns_that_rrset_and_the_chain_around_it() {
    one_record_change("type = \"nsec3\"", nsec3_around);
}

#[test]
fn nsec3_opt_out_one_record_change_resigns_that_rrset_and_the_chain_around_it() {
    one_record_change("type = \"nsec3\"\nopt-out = true", nsec3_around);
}

/// Under opt-out an insecure delegation has no NSEC3 and no RRSIG: adding
/// one re-signs the SOA alone.
#[test]
fn opt_out_insecure_delegation_resigns_the_soa_alone() {
    let Some(mut zone) = Managed::new("type = \"nsec3\"\nopt-out = true", 500) else { return };
    let t0 = start();
    zone.sign(t0);
    zone.edit_input(|text| text + "zzz-insecure.tld. 86400 IN NS ns1.example.net.\n");
    let (change, made) = zone.sign(t0 + HOUR);
    assert_eq!((change.made, made), (set(&[(ORIGIN, "SOA")]), 1));
}

/// A ZSK rollover (pre-publication): publishing the new DNSKEY re-signs
/// the DNSKEY RRset, the switch re-signs everything the ZSK signs and
/// nothing the KSK signs, removing the old DNSKEY re-signs the DNSKEY
/// RRset again; every other version re-signs the SOA alone.
#[test]
fn zsk_rollover_resigns_what_the_key_states_require() {
    let Some(mut zone) = Managed::new("type = \"nsec3\"", 1000) else { return };
    let t0 = start();
    // The DS is asked for once the KSK's DNSKEY is omnipresent (the run
    // at 2h); the ZSK's signatures are omnipresent a day after the start.
    zone.sign(t0);
    zone.sign(t0 + 2 * HOUR);
    let ksk = zone.key_tags(t0, "ksk")[0];
    zone.ok(zone.signet().args([
        "--now",
        &(t0 + 3 * HOUR).to_string(),
        "ds",
        "seen",
        ORIGIN,
        "--keytag",
        &ksk.to_string(),
    ]));
    for hours in [3, 12, 26] {
        zone.sign(t0 + hours * HOUR);
    }
    let old_zsk = zone.key_tags(t0 + 2 * DAY, "zsk")[0];
    zone.ok(zone.signet().args(["--now", &(t0 + 2 * DAY).to_string(), "key", "rollover", "--zsk", ORIGIN]));
    let (mut dnskey_changes, mut switches) = (0, 0);
    for step in 0..=24 {
        let now = t0 + 2 * DAY + step * 2 * HOUR;
        let (change, _) = zone.sign(now);
        let new = &zone.versions.last().expect("a version").1;
        let by_ksk = set(&[(ORIGIN, "DNSKEY"), (ORIGIN, "CDS"), (ORIGIN, "CDNSKEY")]);
        let zone_data: BTreeSet<_> = new.rrsigs.keys().filter(|k| !by_ksk.contains(*k)).cloned().collect();
        if change.made == set(&[(ORIGIN, "SOA")]) {
            continue;
        } else if change.made == set(&[(ORIGIN, "SOA"), (ORIGIN, "DNSKEY")]) {
            dnskey_changes += 1;
        } else if change.made == zone_data {
            switches += 1;
            let signers: BTreeSet<u16> = zone_data.iter().flat_map(|k| new.rrsigs[k].keys().copied()).collect();
            assert!(!signers.contains(&old_zsk), "after the switch the old ZSK signs nothing");
            assert_eq!(signers.len(), 1, "one ZSK signs the zone data");
        } else {
            let apex: Vec<_> = change.made.iter().filter(|(o, _)| o == ORIGIN).collect();
            let old = &zone.versions[zone.versions.len() - 2].1;
            panic!(
                "step {step}: a rollover version re-signed {} RRsets, at the apex {apex:?}; DNSKEY before {:?}, after {:?}",
                change.made.len(),
                old.rrsets.get(&(ORIGIN.to_owned(), "DNSKEY".to_owned())),
                new.rrsets.get(&(ORIGIN.to_owned(), "DNSKEY".to_owned()))
            );
        }
    }
    assert_eq!((dnskey_changes, switches), (2, 1), "the new DNSKEY published, the switch, the old DNSKEY removed");
}

/// Refresh is spread: the first version's expirations are jittered by
/// owner over 2 days, so a run every 2 hours re-signs a small share of
/// the zone each time, and by the end of the window every signature of
/// the first version has been replaced, none too late (the gate and
/// check_minimal see to that).
#[test]
fn refresh_spreads_over_the_jitter_window() {
    let Some(mut zone) = Managed::new("type = \"nsec\"", 2000) else { return };
    let t0 = start();
    let (_, first) = zone.sign(t0);
    let mut refreshed = Vec::new();
    // Due between t0 + 10d - 2d (jitter) - 3d2h and t0 + 10d - 3d2h.
    let mut now = t0 + 4 * DAY + 18 * HOUR;
    while now <= t0 + 7 * DAY {
        let (change, made) = zone.sign(now);
        refreshed.push(made - u64::from(change.made.contains(&(ORIGIN.to_owned(), "SOA".to_owned()))));
        now += 2 * HOUR;
    }
    let total: u64 = refreshed.iter().sum();
    let largest = refreshed.iter().copied().max().unwrap_or(0);
    let busy = refreshed.iter().filter(|&&n| n > 0).count();
    eprintln!("first version {first} RRSIGs; refreshed per run: {refreshed:?}");
    assert!(total + 1 >= first, "every signature of the first version was refreshed ({total} of {first})");
    assert!(largest * 8 < first, "no run refreshed more than an eighth of the zone ({largest} of {first})");
    assert!(busy >= 20, "refresh came in many small runs ({busy} of {})", refreshed.len());
    let (_, first_version) = &zone.versions[0];
    let (_, last_version) = zone.versions.last().expect("a version");
    let kept_since_start = first_version
        .rrsigs
        .iter()
        .flat_map(|(k, sigs)| sigs.values().map(move |s| (k, s)))
        .filter(|(k, s)| last_version.rrsigs.get(*k).is_some_and(|l| l.values().any(|v| v == *s)))
        .count();
    assert_eq!(kept_since_start, 0, "no signature of the first version survives its refresh");
}

/// A signature damaged in the published file (a flipped bit on disk) is
/// copied by the signer like any other, refused by the gate, which names
/// it, and the run signs the zone in full at once: the damage cannot hold
/// the zone up, nor reach the new version.
#[test]
fn damaged_published_signature_is_caught_and_the_zone_signed_in_full() {
    let Some(mut zone) = Managed::new("type = \"nsec3\"", 300) else { return };
    let t0 = start();
    let (_, first) = zone.sign(t0);
    // The gate's memo holds the digest of every signature just published,
    // the one about to be damaged among them.
    let status = zone.ok(zone.signet().args(["--format", "json", "status", ORIGIN]));
    let status: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
    assert_eq!(status[0]["gate_memo"]["entries"].as_u64(), Some(first), "{status}");
    let text = std::fs::read_to_string(&zone.output).expect("read output");
    let line = text.lines().find(|l| l.contains("\tRRSIG\tDS ")).expect("an RRSIG over a DS").to_owned();
    let owner = line.split('\t').next().expect("owner").to_owned();
    let tag = line.split_whitespace().nth(10).expect("key tag").to_owned();
    // Flip one base64 character in the middle of the signature.
    let at = line.len() - 20;
    let flipped = if &line[at..=at] == "A" { "B" } else { "A" };
    let damaged = format!("{}{flipped}{}", &line[..at], &line[at + 1..]);
    std::fs::write(&zone.output, text.replacen(&line, &damaged, 1)).expect("damage the output");
    let (made, log) = zone.sign_unchecked(t0 + HOUR);
    assert!(log.contains("signing in full"), "the refusal of the incremental candidate is logged: {log}");
    assert!(
        log.contains(&owner) && log.contains("DS") && log.contains(&tag),
        "the log names the damaged signature's owner {owner}, type and key tag {tag}: {log}"
    );
    assert_eq!(made, first, "the zone was signed again in full");
    let new = std::fs::read_to_string(&zone.output).expect("read output");
    assert!(!new.contains(&damaged), "the damaged signature is not published");
    let runs = zone.ok(zone.signet().args(["--format", "json", "zone", "status", ORIGIN]));
    assert!(runs.contains("signed in full after the gate refused"), "the run row says so: {runs}");
}

/// A policy change of denial type (NSEC to NSEC3 and back) replaces the
/// whole chain and re-signs it, and keeps every other signature: they
/// cover the same RRsets with the same keys (`check_minimal` holds each
/// version to exactly that; the peers accept each).
#[test]
fn denial_type_change_resigns_the_chain_and_keeps_the_rest() {
    let Some(mut zone) = Managed::new("type = \"nsec\"", 300) else { return };
    let t0 = start();
    zone.sign(t0);
    for (hours, denial) in [(1, "type = \"nsec3\""), (2, "type = \"nsec\"")] {
        let policy_file = zone.dir.path().join("p.toml");
        std::fs::write(&policy_file, policy(denial, &zone.store)).expect("write policy");
        zone.ok(zone.signet().args(["policy", "import"]).arg(&policy_file));
        let (change, _) = zone.sign(t0 + hours * HOUR);
        let [.., (_, old), (_, new)] = &zone.versions[..] else { unreachable!() };
        let chain = |v: &Version, t: &str| v.rrsigs.keys().filter(|(_, ty)| ty == t).count();
        let made_chain = change.made.iter().filter(|(_, t)| t.starts_with("NSEC")).count();
        let (before, after) = if denial.contains("nsec3") { ("NSEC", "NSEC3") } else { ("NSEC3", "NSEC") };
        assert!(chain(old, before) > 0 && chain(new, before) == 0, "{denial}: the old chain is gone");
        assert_eq!(made_chain, chain(new, after) + usize::from(after == "NSEC3"), "{denial}: the new chain is signed");
        assert!(change.kept > 0, "{denial}: the signatures over the zone's own data are kept");
    }
}
