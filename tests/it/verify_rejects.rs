//! `signet verify` rejects deliberately broken zones, and each finding
//! names the right owner, type and key tag.
//!
//! Every case starts from a zone that BIND's `dnssec-signzone` signed with
//! real keys and that signet accepts; the case then breaks one thing. Where
//! the breakage must carry a *valid* signature (a wrong bitmap that is
//! re-signed, an expired RRSIG whose crypto is right, ...), the test
//! re-signs with the real key files through `support::sign_rrset`.

use crate::common;
use crate::common::bind_keys as support;

use std::path::{Path, PathBuf};
use std::process::Command;

use signet::zone::dnssec::{Nsec3, Nsec3Param, Rrsig, encode_type_bitmap};
use signet::zone::rdata::canonical_rdata;
use signet::zone::writer::write_record;
use signet::zone::{Name, RecordRef, Rtype, read_zone_file};
use support::BindKey;

const ORIGIN: &str = "example.";
const CLASS_IN: u16 = 1;

/// A record we can edit.
#[derive(Debug, Clone)]
struct Rec {
    owner: Name,
    rtype: Rtype,
    ttl: u32,
    rdata: Vec<u8>,
}

/// A signed zone with its keys, ready to be broken.
struct Signed {
    dir: tempfile::TempDir,
    records: Vec<Rec>,
    ds: PathBuf,
    ksk: BindKey,
    zsk: BindKey,
}

fn origin() -> Name {
    Name::from_text(ORIGIN, None).expect("valid origin")
}

fn name(text: &str) -> Name {
    Name::from_text(text, Some(origin().as_ref())).expect("valid name")
}

fn now() -> u32 {
    signet::time::wall_clock() as u32
}

/// Signs the realistic zone with BIND (algorithm `algs`, denial `denial`)
/// and loads it and its keys.
fn sign(algs: &str, denial: &str) -> Signed {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("signed");
    let unsigned = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/realistic.zone");
    common::sign_with_peer("bind", algs, denial, &unsigned, ORIGIN, &out);
    let zone = read_zone_file(&out.join("signed.zone"), &origin()).expect("BIND output reads");
    let records = zone
        .records()
        .map(|r| Rec { owner: r.owner.to_owned(), rtype: r.rtype, ttl: r.ttl, rdata: r.rdata.to_vec() })
        .collect();
    let keys_dir = out.join("keys");
    // The ECDSA keys: the only ones the tests re-sign with.
    let (ksk, zsk) = support::load_bind_keys(&keys_dir, &origin(), 13);
    Signed { ds: out.join("ds.txt"), dir, records, ksk, zsk }
}

impl Signed {
    /// Writes the (edited) records to a file and runs `signet verify`
    /// with the DS as trust anchor; returns exit code and findings.
    fn verify(&self, case: &str) -> (i32, Vec<serde_json::Value>) {
        let path = self.dir.path().join(format!("{case}.zone"));
        let mut text = String::new();
        for rec in &self.records {
            let record = RecordRef { owner: rec.owner.as_ref(), rtype: rec.rtype, ttl: rec.ttl, rdata: &rec.rdata };
            write_record(record, CLASS_IN, &mut text);
            text.push('\n');
        }
        std::fs::write(&path, text).expect("write case zone");
        let output = Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(["verify", "--format", "json", "--origin", ORIGIN, "--trust-anchor"])
            .arg(&self.ds)
            .arg(&path)
            .output()
            .expect("run signet");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("{case}: no JSON report ({e}); stderr:\n{}", String::from_utf8_lossy(&output.stderr))
        });
        let findings = report["findings"].as_array().cloned().unwrap_or_default();
        (output.status.code().unwrap_or(-1), findings)
    }

    /// Index of the first record matching owner and type.
    fn find(&self, owner: &Name, rtype: Rtype) -> usize {
        self.records
            .iter()
            .position(|r| r.owner.as_ref().eq_ignore_case(owner.as_ref()) && r.rtype == rtype)
            .unwrap_or_else(|| panic!("no {rtype} at {owner}"))
    }

    /// Indexes of the RRSIGs at `owner` covering `covered`.
    fn rrsigs_over(&self, owner: &Name, covered: Rtype) -> Vec<usize> {
        (0..self.records.len())
            .filter(|&i| {
                let r = &self.records[i];
                r.rtype == Rtype::RRSIG
                    && r.owner.as_ref().eq_ignore_case(owner.as_ref())
                    && Rrsig::parse(&r.rdata).is_some_and(|s| s.type_covered == covered)
            })
            .collect()
    }

    fn remove_rrsigs_over(&mut self, owner: &Name, covered: Rtype) {
        let mut doomed = self.rrsigs_over(owner, covered);
        doomed.sort_unstable_by(|a, b| b.cmp(a));
        for i in doomed {
            self.records.remove(i);
        }
    }

    /// Replaces the RRSIGs over an RRset by one made with `key`.
    fn resign(&mut self, owner: &Name, rtype: Rtype, key: &BindKey, times: (u32, u32), tag_override: Option<u16>) {
        let members: Vec<&Rec> = self
            .records
            .iter()
            .filter(|r| r.owner.as_ref().eq_ignore_case(owner.as_ref()) && r.rtype == rtype)
            .collect();
        assert!(!members.is_empty(), "no {rtype} RRset at {owner}");
        let ttl = members[0].ttl;
        let rdatas: Vec<Vec<u8>> = members.iter().map(|r| canonical_rdata(rtype, &r.rdata).into_owned()).collect();
        let fields = support::SigFields { inception: times.0, expiration: times.1, tag_override };
        let rdata = support::sign_rrset(key, owner, rtype, ttl, &rdatas, &origin(), fields);
        self.remove_rrsigs_over(owner, rtype);
        self.records.push(Rec { owner: owner.clone(), rtype: Rtype::RRSIG, ttl, rdata });
    }
}

fn valid_times() -> (u32, u32) {
    (now() - 3600, now() + 30 * 86400)
}

/// Asserts exit 1 and a finding with this code, owner, type and key tag.
fn assert_finding(result: &(i32, Vec<serde_json::Value>), code: &str, owner: &str, rtype: &str, keytag: Option<u16>) {
    let (exit, findings) = result;
    let listing: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
    assert_eq!(*exit, 1, "expected exit 1; findings:\n{}", listing.join("\n"));
    let found = findings.iter().any(|f| {
        f["severity"] == "error"
            && f["code"] == code
            && f["owner"].as_str().is_some_and(|o| o.eq_ignore_ascii_case(owner))
            && f["rtype"] == rtype
            && keytag.is_none_or(|tag| f["keytag"] == tag)
    });
    assert!(found, "no {code} finding for {owner}/{rtype} keytag {keytag:?}; findings:\n{}", listing.join("\n"));
}

/// Asserts that every error finding has one of the given codes (the case
/// breaks one thing and must not be reported as something else).
fn assert_only(result: &(i32, Vec<serde_json::Value>), codes: &[&str]) {
    for f in result.1.iter().filter(|f| f["severity"] == "error") {
        assert!(codes.iter().any(|c| f["code"] == *c), "unexpected finding {f}");
    }
}

#[test]
fn untouched_zone_is_valid() {
    let signed = sign("13", "nsec3");
    let result = signed.verify("untouched");
    assert_eq!(result.0, 0, "findings: {:?}", result.1);
}

#[test]
fn malformed_rrsig_over_one_nsec3() {
    let mut signed = sign("13", "nsec3");
    let nsec3_owner =
        signed.records.iter().find(|r| r.rtype == Rtype::NSEC3).map(|r| r.owner.clone()).expect("an NSEC3");
    let at = signed.rrsigs_over(&nsec3_owner, Rtype::NSEC3)[0];
    signed.records[at].rdata.pop(); // a P-256 signature is 64 octets; 63 is malformed
    let result = signed.verify("malformed");
    assert_finding(&result, "bogus-signature", &nsec3_owner.to_string(), "NSEC3", Some(signed.zsk.tag));
    assert!(result.1.iter().any(|f| f["message"].as_str().is_some_and(|m| m.contains("malformed"))));
    assert_only(&result, &["bogus-signature"]);
}

/// The .de failure: signatures by a private key that is not the one the
/// published DNSKEY belongs to, carrying the published ZSK's tag.
#[test]
fn impostor_key_with_the_zsk_tag() {
    let mut signed = sign("13", "nsec3");
    let impostor = support::generate_bind_key(&signed.dir.path().join("impostor"), "ECDSAP256SHA256", &origin());
    let tag = signed.zsk.tag;
    for owner in ["www.example.", "example."] {
        let rtype = if owner == "example." { Rtype::MX } else { Rtype::A };
        signed.resign(&name(owner), rtype, &impostor, valid_times(), Some(tag));
    }
    let result = signed.verify("impostor");
    assert_finding(&result, "bogus-signature", "www.example.", "A", Some(tag));
    assert_finding(&result, "bogus-signature", "example.", "MX", Some(tag));
    assert_only(&result, &["bogus-signature"]);
}

#[test]
fn expired_and_not_yet_valid_signatures() {
    let mut signed = sign("13", "nsec3");
    let zsk = signed.zsk.clone();
    signed.resign(&name("www.example."), Rtype::A, &zsk, (now() - 20 * 86400, now() - 10 * 86400), None);
    signed.resign(&name("example."), Rtype::MX, &zsk, (now() + 10 * 86400, now() + 40 * 86400), None);
    let result = signed.verify("times");
    assert_finding(&result, "signature-expired", "www.example.", "A", Some(zsk.tag));
    assert_finding(&result, "signature-not-yet-valid", "example.", "MX", Some(zsk.tag));
    assert_only(&result, &["signature-expired", "signature-not-yet-valid"]);
}

#[test]
fn missing_rrsig() {
    let mut signed = sign("13", "nsec3");
    signed.remove_rrsigs_over(&name("example."), Rtype::MX);
    let result = signed.verify("missing-rrsig");
    assert_finding(&result, "missing-signature", "example.", "MX", None);
    assert_only(&result, &["missing-signature"]);
}

#[test]
fn nsec3_removed_from_the_chain() {
    let mut signed = sign("13", "nsec3");
    let www = name("www.example.");
    let (hash_owner, params) = nsec3_owner_of(&signed, &www);
    let at = signed.find(&hash_owner, Rtype::NSEC3);
    signed.records.remove(at);
    signed.remove_rrsigs_over(&hash_owner, Rtype::NSEC3);
    let result = signed.verify("nsec3-removed");
    assert_finding(&result, "missing-nsec3", "www.example.", "NSEC3", None);
    assert_finding(&result, "broken-nsec3-chain", &predecessor_nsec3(&signed, &hash_owner, &params), "NSEC3", None);
    assert_only(&result, &["missing-nsec3", "broken-nsec3-chain"]);
}

#[test]
fn wrong_type_bitmap_validly_resigned() {
    let mut signed = sign("13", "nsec3");
    let www = name("www.example.");
    let (hash_owner, _) = nsec3_owner_of(&signed, &www);
    let at = signed.find(&hash_owner, Rtype::NSEC3);
    let rdata = signed.records[at].rdata.clone();
    let nsec3 = Nsec3::parse(&rdata).expect("NSEC3 parses");
    let bitmap_at = rdata.len() - nsec3.types.bytes().len();
    let mut changed = rdata[..bitmap_at].to_vec();
    encode_type_bitmap(nsec3.types.types().chain([Rtype::MX]), &mut changed);
    signed.records[at].rdata = changed;
    let zsk = signed.zsk.clone();
    signed.resign(&hash_owner, Rtype::NSEC3, &zsk, valid_times(), None);
    let result = signed.verify("bitmap");
    assert_finding(&result, "wrong-bitmap", &hash_owner.to_string(), "NSEC3", None);
    assert_only(&result, &["wrong-bitmap"]);
}

#[test]
fn record_data_changed_after_signing() {
    let mut signed = sign("13", "nsec3");
    let at = signed.find(&name("www.example."), Rtype::A);
    let last = signed.records[at].rdata.len() - 1;
    signed.records[at].rdata[last] ^= 1;
    let result = signed.verify("data-changed");
    assert_finding(&result, "bogus-signature", "www.example.", "A", Some(signed.zsk.tag));
    assert_only(&result, &["bogus-signature"]);
}

#[test]
fn dnskey_rrset_not_signed_by_the_anchor_key() {
    let mut signed = sign("13", "nsec3");
    let apex = origin();
    let zsk = signed.zsk.clone();
    // Only the ZSK signs the DNSKEY RRset now; the DS names the KSK.
    signed.resign(&apex, Rtype::DNSKEY, &zsk, valid_times(), None);
    let result = signed.verify("untrusted");
    assert_finding(&result, "untrusted", "example.", "DNSKEY", Some(signed.ksk.tag));
    assert_only(&result, &["untrusted"]);
}

#[test]
fn zsk_removed_from_the_dnskey_rrset() {
    let mut signed = sign("13", "nsec3");
    let apex = origin();
    let zsk_rdata = signed.zsk.dnskey_rdata.clone();
    signed.records.retain(|r| !(r.rtype == Rtype::DNSKEY && r.rdata == zsk_rdata));
    let ksk = signed.ksk.clone();
    signed.resign(&apex, Rtype::DNSKEY, &ksk, valid_times(), None);
    let result = signed.verify("zsk-removed");
    assert_finding(&result, "unknown-key", "www.example.", "A", Some(signed.zsk.tag));
    assert_finding(&result, "unknown-key", "example.", "SOA", Some(signed.zsk.tag));
    assert_only(&result, &["unknown-key"]);
}

#[test]
fn nsec3param_not_matching_the_chain() {
    let mut signed = sign("13", "nsec3");
    let apex = origin();
    let at = signed.find(&apex, Rtype::NSEC3PARAM);
    let param = Nsec3Param::parse(&signed.records[at].rdata).expect("NSEC3PARAM parses");
    let iterations = param.params.iterations + 5;
    signed.records[at].rdata[2..4].copy_from_slice(&iterations.to_be_bytes());
    let zsk = signed.zsk.clone();
    signed.resign(&apex, Rtype::NSEC3PARAM, &zsk, valid_times(), None);
    let result = signed.verify("nsec3param");
    assert_finding(&result, "nsec3param-mismatch", "example.", "NSEC3PARAM", None);
    assert_only(&result, &["nsec3param-mismatch"]);
}

#[test]
fn rrsig_over_glue() {
    let mut signed = sign("13", "nsec3");
    let glue = signed
        .records
        .iter()
        .find(|r| r.rtype == Rtype::A && r.owner.to_string().starts_with("ns1.secure"))
        .map(|r| r.owner.clone());
    let glue = glue.expect("the realistic zone has glue ns1.secure.example.");
    let zsk = signed.zsk.clone();
    signed.resign(&glue, Rtype::A, &zsk, valid_times(), None);
    let result = signed.verify("glue");
    assert_finding(&result, "signature-over-non-authoritative", &glue.to_string(), "A", Some(zsk.tag));
    assert_only(&result, &["signature-over-non-authoritative"]);
}

#[test]
fn rrset_missing_one_of_two_algorithms() {
    let mut signed = sign("8+13", "nsec3");
    let apex = origin();
    let doomed: Vec<usize> = signed
        .rrsigs_over(&apex, Rtype::MX)
        .into_iter()
        .filter(|&i| Rrsig::parse(&signed.records[i].rdata).is_some_and(|s| s.algorithm == 8))
        .collect();
    assert_eq!(doomed.len(), 1, "one RSASHA256 RRSIG over the apex MX");
    signed.records.remove(doomed[0]);
    let result = signed.verify("one-algorithm");
    assert_finding(&result, "missing-signature", "example.", "MX", None);
    assert_only(&result, &["missing-signature"]);
}

#[test]
fn different_ttls_within_one_rrset() {
    let mut signed = sign("13", "nsec3");
    let apex = origin();
    let at = signed.find(&apex, Rtype::NS);
    signed.records[at].ttl += 60;
    let result = signed.verify("ttls");
    assert_finding(&result, "ttl-inconsistent", "example.", "NS", None);
}

/// The NSEC3 owner for `name` and the chain's parameters.
fn nsec3_owner_of(signed: &Signed, name: &Name) -> (Name, Vec<u8>) {
    let rdata = signed.records.iter().find(|r| r.rtype == Rtype::NSEC3).map(|r| r.rdata.clone()).expect("an NSEC3");
    let nsec3 = Nsec3::parse(&rdata).expect("NSEC3 parses");
    let hash = signet::zone::dnssec::nsec3_hash(name.as_ref(), &nsec3.params).expect("SHA-1");
    let label = data_encoding::BASE32HEX_NOPAD.encode(&hash).to_ascii_lowercase();
    (Name::from_text(&label, Some(origin().as_ref())).expect("hashed name"), rdata)
}

/// The owner of the NSEC3 that now precedes a removed one in the chain.
fn predecessor_nsec3(signed: &Signed, removed: &Name, _params: &[u8]) -> String {
    let mut owners: Vec<&Name> = signed.records.iter().filter(|r| r.rtype == Rtype::NSEC3).map(|r| &r.owner).collect();
    owners.sort_by(|a, b| a.as_ref().canonical_cmp(b.as_ref()));
    let before = owners.iter().rev().find(|o| o.as_ref().canonical_cmp(removed.as_ref()).is_lt()).or(owners.last());
    before.expect("other NSEC3 records").to_string()
}
