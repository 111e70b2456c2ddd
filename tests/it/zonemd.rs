//! ZONEMD (RFC 8976): `[zone] zonemd` in the policy puts a digest of the
//! whole zone at the apex, signed like any RRset.
//!
//! - signet's zones with SHA-384, SHA-512 or both, under NSEC, NSEC3 and
//!   NSEC3 opt-out, with soft keys and SoftHSM keys, are accepted by
//!   signet verify, ldns-verify-zone (1.8.3, which checks the digest: a
//!   zone with one glue address changed is refused here, so its
//!   acceptance means something), kzonecheck and dnssec-verify. Knot
//!   3.2's kzonecheck does NOT check the ZONEMD digest (it accepts the
//!   changed zone; tested below, so that a Knot that starts checking is
//!   noticed): for Knot, it checks signatures, chain and bitmap only;
//! - a zone with one record changed after the digest, its RRSIG made
//!   valid again (the changed RRset and its signature taken from a
//!   second signing by the same keys), is refused by `signet verify`
//!   naming ZONEMD, and by both of the gate's entry points
//!   (`verify_file`, `verify_version`), with the memo of the untampered
//!   version's verification in hand too;
//! - a zone Knot signed with `zonemd-generate` (kzonesign) is accepted,
//!   and refused once one of its glue records is changed;
//! - policies: a repeated hash is refused naming the field.
//!
//! The change path keeping ZONEMD right after each edit is in
//! `change_path.rs` (the ZONEMD rounds).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::common::{self, Store};
use signet::verify::{Code, GateError, NoProgress, VerifyOptions, verify_file, verify_version};
use signet::zone::{Name, read_zone_file};

const ORIGIN: &str = "example.";

/// The tools every test here needs.
fn have_tools() -> bool {
    ["ldns-verify-zone", "kzonecheck", "dnssec-verify"].iter().all(|t| common::have_tool(t))
}

/// Signs `input` with fresh keys of `store` under `denial` and `zonemd`
/// (the policy's list, e.g. `"sha384"`), into `dir/NAME.zone` with its DS.
struct Signed {
    zone: PathBuf,
    ds: PathBuf,
}

fn sign(store: &Store, dir: &Path, keys: &[String], input: &Path, denial: &str, zonemd: &str, name: &str) -> Signed {
    let policy = common::write_policy(dir, name, "13", denial, &format!("[zone]\nzonemd = [{zonemd}]"));
    let (zone, ds) = (dir.join(format!("{name}.zone")), dir.join(format!("{name}.ds")));
    let mut command = store.signet();
    command.arg("sign").arg(input).args(["--origin", ORIGIN]).arg("--policy").arg(&policy);
    for key in keys {
        command.args(["--key", key]);
    }
    command.arg("-o").arg(&zone).arg("--ds-out").arg(&ds);
    common::expect_success(&format!("signet sign {name}"), &common::run(&mut command));
    Signed { zone, ds }
}

fn key_pair(store: &Store) -> Vec<String> {
    ["ksk", "zsk"].iter().map(|role| format!("{}:{role}", store.generate("13", role, role))).collect()
}

/// The apex ZONEMD records of a zone file: (serial, scheme, hash, digest length).
fn zonemd_records(path: &Path) -> Vec<(u32, u8, u8, usize)> {
    let origin = Name::from_text(ORIGIN, None).expect("origin");
    let zone = read_zone_file(path, &origin).expect("zone reads");
    let apex = zone.node(origin.as_ref()).expect("apex");
    apex.rrset(signet::zone::Rtype::ZONEMD)
        .map(|set| {
            set.rdatas()
                .filter_map(signet::zone::zonemd::Zonemd::parse)
                .map(|z| (z.serial, z.scheme, z.hash, z.digest.len()))
                .collect()
        })
        .unwrap_or_default()
}

/// A copy of `zone` with one glue address changed: no signature covers
/// glue, so only the ZONEMD digest no longer matches.
fn glue_changed(zone: &Path, to: &Path) {
    let text = std::fs::read_to_string(zone).expect("read zone");
    assert!(text.contains("192.0.2.150"), "the realistic zone's glue ns1.insecure.example. is in the signed zone");
    std::fs::write(to, text.replace("192.0.2.150", "192.0.2.151")).expect("write changed zone");
}

/// signet verify's exit code and the codes of its error findings.
fn verify_errors(zone: &Path, ds: Option<&Path>) -> (Option<i32>, Vec<String>) {
    let (exit, report) =
        common::signet_verify_json(env!("CARGO_BIN_EXE_signet"), zone, ORIGIN, ds, common::At::WallClock);
    let errors = report["findings"]
        .as_array()
        .map(|findings| {
            findings
                .iter()
                .filter(|f| f["severity"] == "error")
                .map(|f| format!("{} {}", f["code"].as_str().unwrap_or(""), f["message"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    (exit, errors)
}

/// Every validator accepts `signed`; ldns-verify-zone refuses it once a
/// glue address is changed (so it checks the digest).
fn peers_accept(signed: &Signed, case: &str, dir: &Path) {
    let (exit, errors) = verify_errors(&signed.zone, Some(&signed.ds));
    assert_eq!(exit, Some(0), "{case}: signet verify: {errors:?}");
    common::expect_success(&format!("ldns-verify-zone, {case}"), &common::ldns_verify(&signed.zone));
    common::expect_success(&format!("kzonecheck, {case}"), &common::knot_check(&signed.zone, ORIGIN));
    let bind = common::run(std::process::Command::new("dnssec-verify").args(["-q", "-o", ORIGIN]).arg(&signed.zone));
    common::expect_success(&format!("dnssec-verify, {case}"), &bind);
    let changed = dir.join("glue-changed.zone");
    glue_changed(&signed.zone, &changed);
    let ldns = common::ldns_verify(&changed);
    assert!(!ldns.status.success(), "{case}: ldns-verify-zone accepted a zone whose ZONEMD does not match");
    assert!(String::from_utf8_lossy(&ldns.stderr).contains("ZONEMD"), "{case}: ldns names ZONEMD: {ldns:?}");
    let (exit, errors) = verify_errors(&changed, Some(&signed.ds));
    assert_eq!(exit, Some(1), "{case}: signet verify accepted the changed zone");
    // One error per digest the zone carries, and nothing else.
    let digests = zonemd_records(&signed.zone).len();
    assert!(digests > 0 && errors.len() == digests, "{case}: {errors:?}");
    assert!(errors.iter().all(|e| e.starts_with("zonemd-mismatch")), "{case}: {errors:?}");
    // Knot 3.2's kzonecheck does not check the digest: documented, and
    // noticed here if a later Knot does.
    let knot = common::knot_check(&changed, ORIGIN);
    assert!(knot.status.success(), "{case}: kzonecheck now checks ZONEMD digests: update the docs and tests");
}

#[test]
fn sha384_under_each_denial_is_accepted_by_the_peers() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::soft(&dir.path().join("keys"));
    let keys = key_pair(&store);
    for denial in ["nsec", "nsec3", "nsec3-optout"] {
        let signed = sign(&store, dir.path(), &keys, &common::realistic_zone(), denial, "\"sha384\"", denial);
        let records = zonemd_records(&signed.zone);
        assert_eq!(records.len(), 1, "{denial}: one ZONEMD: {records:?}");
        assert_eq!((records[0].1, records[0].2, records[0].3), (1, 1, 48), "{denial}: SIMPLE, SHA-384");
        peers_accept(&signed, denial, dir.path());
    }
}

#[test]
fn sha384_and_sha512_with_softhsm_are_accepted_by_the_peers() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::softhsm(&dir.path().join("keys"));
    let keys = key_pair(&store);
    let signed = sign(&store, dir.path(), &keys, &common::realistic_zone(), "nsec3", "\"sha384\", \"sha512\"", "both");
    let records = zonemd_records(&signed.zone);
    let hashes: Vec<(u8, u8, usize)> = records.iter().map(|r| (r.1, r.2, r.3)).collect();
    assert_eq!(hashes, [(1, 1, 48), (1, 2, 64)], "both digests: {records:?}");
    let soa_serial = common::published_serial(&signed.zone);
    assert!(records.iter().all(|r| u64::from(r.0) == soa_serial), "ZONEMD serial is the SOA's: {records:?}");
    peers_accept(&signed, "sha384+sha512 nsec3 softhsm", dir.path());
    let signed = sign(&store, dir.path(), &keys, &common::realistic_zone(), "nsec", "\"sha512\"", "sha512");
    assert_eq!(zonemd_records(&signed.zone).iter().map(|r| r.2).collect::<Vec<_>>(), [2]);
    peers_accept(&signed, "sha512 nsec softhsm", dir.path());
}

/// `zone` with the RRsets of `owner` of type `rtype`, and their RRSIGs,
/// taken from `other` (a signing of a changed input by the same keys).
fn graft(zone: &Path, other: &Path, owner: &str, rtype: &str, to: &Path) {
    let picked = |line: &str| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.first() == Some(&owner)
            && (fields.get(3) == Some(&rtype) || (fields.get(3) == Some(&"RRSIG") && fields.get(4) == Some(&rtype)))
    };
    let (base, donor) = (std::fs::read_to_string(zone).expect("read"), std::fs::read_to_string(other).expect("read"));
    let mut text: String = base.lines().filter(|l| !picked(l)).map(|l| format!("{l}\n")).collect();
    let moved: Vec<&str> = donor.lines().filter(|l| picked(l)).collect();
    assert!(moved.len() >= 2, "the donor has the RRset and its RRSIG: {moved:?}");
    for line in moved {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(to, text).expect("write grafted zone");
}

#[test]
fn a_record_changed_after_the_digest_is_refused_by_verify_and_the_gate() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::soft(&dir.path().join("keys"));
    let keys = key_pair(&store);
    let input = common::realistic_zone();
    let good = sign(&store, dir.path(), &keys, &input, "nsec", "\"sha384\"", "good");
    let changed_input = dir.path().join("changed-input.zone");
    let text = std::fs::read_to_string(&input).expect("read input");
    assert!(text.contains("\"deep name\""));
    std::fs::write(&changed_input, text.replace("\"deep name\"", "\"deep name, changed\"")).expect("write");
    let donor = sign(&store, dir.path(), &keys, &changed_input, "nsec", "\"sha384\"", "donor");
    let tampered = dir.path().join("tampered.zone");
    graft(&good.zone, &donor.zone, "a.b.c.example.", "TXT", &tampered);

    // signet verify: every signature valid, the one error the digest's.
    let (exit, errors) = verify_errors(&tampered, Some(&good.ds));
    assert_eq!(exit, Some(1), "signet verify accepted the tampered zone");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("zonemd-mismatch zone example.: ZONEMD serial"), "{errors:?}");
    assert!(errors[0].contains("computed") && errors[0].contains("found"), "{errors:?}");
    let ldns = common::ldns_verify(&tampered);
    assert!(!ldns.status.success(), "ldns-verify-zone refuses it too: {ldns:?}");

    // The gate, both ways in, the memo of the good version in hand.
    let origin = Name::from_text(ORIGIN, None).expect("origin");
    let now = signet::time::wall_clock();
    let options = VerifyOptions { now, collect_memo: true, ..VerifyOptions::default() };
    let passed = verify_file(&good.zone, &origin, &options, &NoProgress).expect("the good zone passes the gate");
    let mut passed = passed;
    let memo = passed.take_memo().map(Arc::new);
    assert!(memo.is_some(), "the gate collects a memo");
    let options = VerifyOptions { now, memo, ..VerifyOptions::default() };
    let refused = |outcome: Result<(), GateError>, way: &str| match outcome {
        Err(GateError::Refused(report)) => {
            let codes: Vec<Code> = report.findings.iter().map(|f| f.code).collect();
            assert_eq!(codes, [Code::ZonemdMismatch], "{way}: {}", report.to_text());
            assert!(report.stats.rrsigs_from_memo > 0, "{way}: the memo was used, and the digest still checked");
        }
        other => panic!("{way}: the gate did not refuse the tampered zone: {other:?}"),
    };
    refused(verify_file(&tampered, &origin, &options, &NoProgress).map(drop), "verify_file");
    let zone = read_zone_file(&tampered, &origin).expect("tampered zone reads");
    refused(verify_version(zone, &options, &NoProgress).map(drop), "verify_version");
}

#[test]
fn a_knot_made_zonemd_zone_is_accepted_and_refused_once_changed() {
    if !have_tools() || !common::have_tool("kzonesign") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (denial, hash) in [("nsec", "sha384"), ("nsec3", "sha512")] {
        let out = dir.path().join(format!("knot-{denial}"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/sign.sh");
        let mut command = std::process::Command::new("bash");
        command.arg(script).args(["knot", "13", denial]).arg(common::realistic_zone()).arg(ORIGIN).arg(&out);
        command.env("ZONEMD", hash);
        common::expect_success(&format!("kzonesign with ZONEMD {hash}"), &common::run(&mut command));
        let signed = out.join("signed.zone");
        let records = zonemd_records(&signed);
        assert_eq!(records.len(), 1, "Knot made one ZONEMD: {records:?}");
        let (exit, errors) = verify_errors(&signed, Some(&out.join("ds.txt")));
        assert_eq!(exit, Some(0), "{denial} {hash}: signet verify refused Knot's zone: {errors:?}");
        let changed = dir.path().join(format!("knot-{denial}-changed.zone"));
        glue_changed(&signed, &changed);
        let (exit, errors) = verify_errors(&changed, Some(&out.join("ds.txt")));
        assert_eq!(exit, Some(1), "{denial} {hash}: signet verify accepted Knot's zone changed");
        assert!(errors.len() == 1 && errors[0].starts_with("zonemd-mismatch"), "{errors:?}");
    }
}

#[test]
fn a_repeated_hash_is_refused_naming_the_field() {
    let source = Path::new("zonemd.toml");
    let refused = signet::policy::Policy::from_text("[zone]\nzonemd = [\"sha384\", \"sha384\"]\n", source)
        .expect_err("a repeated hash is refused");
    let text = refused.to_string();
    assert!(text.contains("zone.zonemd") && text.contains("sha384 is listed twice"), "{text}");
    let unknown = signet::policy::Policy::from_text("[zone]\nzonemd = [\"sha256\"]\n", source)
        .expect_err("an unknown hash is refused");
    assert!(unknown.to_string().contains("sha256"), "{unknown}");
    let (policy, _) =
        signet::policy::Policy::from_text("[zone]\nzonemd = [\"sha512\", \"sha384\"]\n", source).expect("both");
    assert_eq!(policy.zone.zonemd.len(), 2);
    let (policy, _) = signet::policy::Policy::from_text("", source).expect("defaults");
    assert!(policy.zone.zonemd.is_empty(), "no ZONEMD unless asked");
}

/// Under `serial = "keep"` an unchanged zone signed again must be the
/// same version (the gate admits no other under a held serial): the
/// ZONEMD signature is kept, as the signatures of every RRset are, since
/// the ZONEMD RRset is byte for byte the same. A changed zone gets a new
/// digest and a new signature.
#[test]
fn an_unchanged_zone_keeps_its_zonemd_signature_a_changed_one_does_not() {
    use signet::sign::{SignSettings, sign_zone_in_memory};
    use signet::zone::diff::ZoneDiff;

    let dir = tempfile::tempdir().expect("tempdir");
    let soft_keys = common::soft_keys::SoftKeys::new(dir.path());
    let keys = soft_keys.signing_keys();
    let text = "[zone]\nserial = \"keep\"\nzonemd = [\"sha384\"]\n[denial]\ntype = \"nsec\"\n";
    let (policy, _) = signet::policy::Policy::from_text(text, Path::new("keep.toml")).expect("policy");
    let now = signet::time::wall_clock();
    let mut settings = SignSettings::from_policy(&policy, now, Vec::new());
    let origin = Name::from_text(ORIGIN, None).expect("origin");
    let unsigned = read_zone_file(&common::realistic_zone(), &origin).expect("input reads");
    let (first, _) = sign_zone_in_memory(&unsigned, &keys, &settings, None, None).expect("signed");
    settings.now += 60;
    let (again, stats) = sign_zone_in_memory(&unsigned, &keys, &settings, Some(&first), None).expect("signed again");
    let diff = ZoneDiff::between(&first, &again).expect("a difference");
    assert_eq!((diff.removed_len(), diff.added_len(), stats.rrsigs), (0, 0, 0), "the same version again");

    let changed_text = std::fs::read_to_string(common::realistic_zone())
        .expect("read input")
        .replace("\"deep name\"", "\"deep name, changed\"");
    let changed = signet::zone::read_zone_str(&changed_text, &origin, Path::new("changed")).expect("reads");
    let (signed, stats) = sign_zone_in_memory(&changed, &keys, &settings, Some(&first), None).expect("signed");
    let diff = ZoneDiff::between(&first, &signed).expect("a difference");
    let zonemd_lines = diff.removed().chain(diff.added()).filter(|r| r.rtype == signet::zone::Rtype::ZONEMD).count();
    assert_eq!(zonemd_lines, 2, "the ZONEMD record replaced");
    assert_eq!(stats.rrsigs, 2, "the changed TXT and the ZONEMD signed anew");
    let options = VerifyOptions { now: settings.now, ..VerifyOptions::default() };
    verify_version(signed, &options, &NoProgress).expect("the changed version passes the gate");
}

/// A managed zone (`signet sign NAME`: keys in the database, the run
/// through the file gate, signatures of the published version kept)
/// publishes a ZONEMD that follows its input: the serial of each
/// version, a new digest once a record changed, ldns-verify-zone
/// accepting each version.
#[test]
fn a_managed_zone_publishes_a_zonemd_that_follows_its_input() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::soft(&dir.path().join("keys"));
    let db = dir.path().join("signet.db");
    store.ok_on(&db, &["init"]);
    let policy = dir.path().join("zm.toml");
    let text = common::steady_policy(&store, "increment")
        .replace("serial = \"increment\"\n", "serial = \"increment\"\nzonemd = [\"sha384\"]\n");
    std::fs::write(&policy, text).expect("write policy");
    store.ok_on(&db, &["policy", "import", policy.to_str().expect("path"), "--name", "zm"]);
    let (input, output) = (dir.path().join("example.zone"), dir.path().join("example.signed"));
    std::fs::copy(common::realistic_zone(), &input).expect("copy input");
    let (input_arg, output_arg) = (input.to_str().expect("path"), output.to_str().expect("path"));
    store.ok_on(&db, &["zone", "add", ORIGIN, "--policy", "zm", "--input", input_arg, "--output", output_arg]);
    let mut digests = Vec::new();
    for version in 0..3 {
        if version == 2 {
            let text = std::fs::read_to_string(&input).expect("read input");
            std::fs::write(&input, text.replace("\"deep name\"", "\"deep name, changed\"")).expect("edit input");
        }
        store.ok_on(&db, &["sign", ORIGIN]);
        common::expect_success(&format!("ldns-verify-zone, version {version}"), &common::ldns_verify(&output));
        let records = zonemd_records(&output);
        assert_eq!(records.len(), 1, "version {version}: {records:?}");
        assert_eq!(u64::from(records[0].0), common::published_serial(&output), "version {version}: serial");
        let origin = Name::from_text(ORIGIN, None).expect("origin");
        let zone = read_zone_file(&output, &origin).expect("output reads");
        let apex = zone.node(origin.as_ref()).expect("apex");
        let rdata = apex.rrset(signet::zone::Rtype::ZONEMD).and_then(|set| set.rdatas().next().map(<[u8]>::to_vec));
        digests.push(rdata.expect("a ZONEMD")[6..].to_vec());
    }
    // Version 1 moved only the SOA serial (and its signature); version 2
    // changed a record: every version has a digest of its own.
    assert!(digests[0] != digests[1] && digests[1] != digests[2], "each version its own digest");
}
