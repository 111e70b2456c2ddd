//! The gate's signature memo (issue 13). At the verifier: a memo collected
//! by one verification makes the next one take every unchanged signature
//! from it with the same findings; a signature corrupted in the zone
//! while its good twin's digest is in the memo is still refused, naming
//! owner, type and key tag; a tampered memo entry only costs that
//! signature a verification; time is judged anew. Through the binary: a
//! second managed run takes signatures from the stored memo; a garbled
//! stored memo is a warning and a full verification, never a refusal;
//! `--full-verify`, `zone reload --full-verify` and the policy's interval
//! each make a run full; `signet status` shows the memo.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use signet::keys::soft::SoftStore;
use signet::keys::{Algorithm, KeyStore, PublishedKey, Role, SigningKey};
use signet::policy::Policy;
use signet::sign::{SignSettings, Signer, SigningKeys, sign_zone};
use signet::verify::{
    Anchor, Code, NoProgress, Report, Severity, SignatureMemo, Verification, VerifyOptions, verify_zone_with_memo,
};
use signet::zone::{Name, Zone};

const NOW: i64 = 1_795_000_000;
const DAY: i64 = 86400;

/// The realistic zone signed with an ECDSA KSK and ZSK (NSEC3), as text,
/// with the DS of its KSK.
struct Signed {
    text: String,
    origin: Name,
    anchor: Vec<u8>,
    zsk_tag: u16,
}

fn signed_zone() -> Signed {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SoftStore::new(dir.path());
    let ksk = store.generate(Algorithm::EcdsaP256Sha256, 256, "ksk").expect("ksk");
    let zsk = store.generate(Algorithm::EcdsaP256Sha256, 256, "zsk").expect("zsk");
    let origin = Name::from_text("example.", None).expect("origin");
    let (policy, _) = Policy::from_text("[denial]\ntype = \"nsec3\"\n", Path::new("p.toml")).expect("policy");
    let unsigned = signet::read_zone_file(&common::realistic_zone(), &origin).expect("zone");
    let (ksk_published, zsk_published) =
        (PublishedKey::new(ksk.as_ref(), Role::Ksk), PublishedKey::new(zsk.as_ref(), Role::Zsk));
    let keys = SigningKeys {
        published: vec![ksk_published.clone(), zsk_published.clone()],
        key_signers: vec![Signer { key: ksk.as_ref(), tag: ksk_published.tag }],
        zone_signers: vec![Signer { key: zsk.as_ref() as &dyn SigningKey, tag: zsk_published.tag }],
        cds: vec![],
        ..SigningKeys::default()
    };
    let settings = SignSettings::from_policy(&policy, NOW, Vec::new());
    let mut text = Vec::new();
    sign_zone(unsigned, &keys, &settings, &mut text).expect("signed");
    let anchor = ksk_published.ds_rdata(origin.as_ref(), 2).expect("ds");
    Signed { text: String::from_utf8(text).expect("text"), origin, anchor, zsk_tag: zsk_published.tag }
}

impl Signed {
    fn zone(&self, text: &str) -> Zone {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("signed.zone");
        std::fs::write(&path, text).expect("write");
        signet::read_zone_file(&path, &self.origin).expect("reads")
    }

    fn verify(&self, text: &str, now: i64, memo: Option<&SignatureMemo>) -> Verification {
        let options = VerifyOptions {
            now,
            min_validity: 0,
            trust_anchor: Some(vec![Anchor::Ds(self.anchor.clone())]),
            memo: memo.cloned().map(Arc::new),
            collect_memo: true,
            allow_unsigned: false,
        };
        verify_zone_with_memo(&self.zone(text), &options, &NoProgress)
    }
}

fn lines(report: &Report) -> Vec<String> {
    report.findings.iter().map(|f| f.to_line()).collect()
}

/// Flips one bit in the signature of the first RRSIG over `rtype` with a
/// key tag of `tag`; returns the text and that RRSIG's owner.
fn corrupt_signature(text: &str, rtype: &str, tag: u16) -> (String, String) {
    let mut owner = None;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let is_target = owner.is_none()
            && fields.len() > 12
            && fields[3] == "RRSIG"
            && fields[4] == rtype
            && fields[10] == tag.to_string();
        if !is_target {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        owner = Some(fields[0].to_owned());
        // The signature is the base64 after the signer (field 11); a
        // character in its middle changes one signature byte.
        let signature: String = fields[12..].concat();
        let mut bytes: Vec<u8> = signature.into_bytes();
        let middle = bytes.len() / 2;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        let mut new_line = fields[..12].join(" ");
        new_line.push(' ');
        new_line.push_str(std::str::from_utf8(&bytes).expect("base64"));
        out.push_str(&new_line);
        out.push('\n');
    }
    (out, owner.unwrap_or_else(|| panic!("no RRSIG over {rtype} by key {tag}")))
}

#[test]
fn a_second_verification_takes_every_signature_from_the_memo_with_the_same_findings() {
    let signed = signed_zone();
    let first = signed.verify(&signed.text, NOW, None);
    let stats = &first.report.stats;
    assert!(first.report.valid, "{}", first.report.to_text());
    assert_eq!(stats.rrsigs_from_memo, 0);
    assert_eq!(stats.rrsigs_verified, stats.rrsigs, "every RRSIG verified");
    let memo = first.memo.expect("collected");
    assert_eq!(memo.len() as u64, stats.rrsigs_verified, "one entry per valid RRSIG, bounded by the zone");

    let second = signed.verify(&signed.text, NOW + 60, Some(&memo));
    assert!(second.report.valid, "{}", second.report.to_text());
    assert_eq!(second.report.stats.rrsigs_from_memo, stats.rrsigs, "every signature from the memo");
    assert_eq!(second.report.stats.rrsigs_verified, stats.rrsigs_verified);
    assert_eq!(lines(&second.report), lines(&first.report), "the same findings");
    assert_eq!(second.memo.as_ref(), Some(&memo), "the next memo is the same set");
    assert!(second.report.summary_line().contains(&format!("({} from the gate's memo)", stats.rrsigs)));

    // Plain verification (no memo, no collection) computes no memo.
    let options = VerifyOptions { now: NOW, ..VerifyOptions::default() };
    let plain = verify_zone_with_memo(&signed.zone(&signed.text), &options, &NoProgress);
    assert!(plain.memo.is_none() && plain.report.stats.rrsigs_from_memo == 0);
}

#[test]
fn a_corrupted_signature_whose_good_twin_is_in_the_memo_is_refused() {
    let signed = signed_zone();
    let memo = signed.verify(&signed.text, NOW, None).memo.expect("memo");
    for rtype in ["MX", "NSEC3", "SOA"] {
        let (bad, owner) = corrupt_signature(&signed.text, rtype, signed.zsk_tag);
        let verdict = signed.verify(&bad, NOW + 60, Some(&memo));
        let report = &verdict.report;
        assert!(!report.valid, "{rtype}: the corrupted zone must be refused");
        let errors: Vec<_> = report.findings.iter().filter(|f| f.severity == Severity::Error).collect();
        assert_eq!(errors.len(), 1, "{rtype}: exactly the corrupted RRSIG: {errors:#?}");
        let f = errors[0];
        assert_eq!(f.code, Code::BogusSignature, "{f:#?}");
        assert_eq!((f.owner.as_str(), f.rtype.as_str(), f.keytag), (owner.as_str(), rtype, Some(signed.zsk_tag)));
        assert_eq!(report.stats.rrsigs_from_memo, report.stats.rrsigs - 1, "{rtype}: every other one from the memo");
        let next = verdict.memo.expect("collected");
        assert_eq!(next.len(), memo.len() - 1, "{rtype}: the bad signature's input is not remembered");
    }
}

#[test]
fn a_tampered_memo_entry_only_costs_its_signature_a_verification() {
    let signed = signed_zone();
    let memo = signed.verify(&signed.text, NOW, None).memo.expect("memo");
    let mut bytes = memo.to_bytes();
    // The last byte of entry 3 (after the 20-byte header), checksum
    // recomputed: the file is consistent, the entry names no input.
    bytes[20 + 3 * 32 + 31] ^= 0x01;
    let body = bytes.len() - 32;
    let checksum = ring::digest::digest(&ring::digest::SHA256, &bytes[..body]);
    bytes[body..].copy_from_slice(checksum.as_ref());
    let tampered = SignatureMemo::from_bytes(&bytes).expect("a consistent memo reads");
    let verdict = signed.verify(&signed.text, NOW + 60, Some(&tampered));
    assert!(verdict.report.valid, "{}", verdict.report.to_text());
    let stats = &verdict.report.stats;
    assert_eq!(stats.rrsigs_from_memo, stats.rrsigs - 1, "one signature verified with crypto again");
    assert_eq!(verdict.memo.as_ref(), Some(&memo), "and remembered rightly again");
    // A flipped byte without the checksum made again is no memo at all.
    let mut garbled = memo.to_bytes();
    garbled[20 + 5] ^= 0x01;
    assert!(SignatureMemo::from_bytes(&garbled).is_err());
}

#[test]
fn time_is_judged_anew_whatever_the_memo() {
    let signed = signed_zone();
    let memo = signed.verify(&signed.text, NOW, None).memo.expect("memo");
    let late = signed.verify(&signed.text, NOW + 400 * DAY, Some(&memo));
    let report = &late.report;
    assert!(!report.valid);
    let expired = report.findings.iter().filter(|f| f.code == Code::SignatureExpired).count() as u64;
    assert_eq!(expired, report.stats.rrsigs, "every signature expired, memo or not");
    assert_eq!(report.stats.rrsigs_verified, 0);
    assert_eq!(late.memo.map(|m| m.len()), Some(0), "nothing invalid is remembered");
}

// ---------------------------------------------------------------------
// Managed runs through the binary.

const ORIGIN: &str = "example.";

/// A database with the realistic zone under an Ed25519 policy with soft
/// keys. Ed25519 signatures are deterministic: a run at the same instant
/// as the one before makes the same signature over every unchanged RRset
/// (all but the SOA, whose serial moves), so memo hits show even before
/// the signer keeps signatures between runs.
struct Managed {
    dir: tempfile::TempDir,
    db: PathBuf,
    output: PathBuf,
}

fn policy(interval: &str) -> String {
    format!(
        "[keys]\nalgorithm = \"ED25519\"\nstore = \"file:keys\"\n[denial]\ntype = \"nsec3\"\n\
         [gate]\nfull-verification-interval = \"{interval}\"\n"
    )
}

impl Managed {
    fn new() -> Managed {
        let dir = tempfile::tempdir().expect("tempdir");
        let managed = Managed { db: dir.path().join("signet.db"), output: dir.path().join("example.signed"), dir };
        std::fs::create_dir(managed.dir.path().join("keys")).expect("mkdir");
        managed.ok(&["init"], NOW);
        managed.import(&policy("1d"));
        let input = common::realistic_zone();
        let (input, output) = (input.to_str().expect("path"), managed.output.to_str().expect("path"));
        managed.ok(&["zone", "add", ORIGIN, "--policy", "p", "--input", input, "--output", output], NOW);
        managed
    }

    fn import(&self, text: &str) {
        let path = self.dir.path().join("p.toml");
        std::fs::write(&path, text).expect("policy");
        self.ok(&["policy", "import", path.to_str().expect("path"), "--name", "p"], NOW);
    }

    fn run(&self, args: &[&str], now: i64) -> std::process::Output {
        let mut command = common::signet();
        // The key store's relative path is the working directory's.
        command.current_dir(self.dir.path()).arg("--db").arg(&self.db).args(["--now", &now.to_string()]).args(args);
        common::run(&mut command)
    }

    fn ok(&self, args: &[&str], now: i64) -> std::process::Output {
        let output = self.run(args, now);
        common::expect_success(&format!("signet {}", args.join(" ")), &output);
        output
    }

    /// A managed run: its JSON and standard error.
    fn sign(&self, extra: &[&str], now: i64) -> (serde_json::Value, String) {
        let mut args = vec!["sign", ORIGIN, "--format", "json"];
        args.extend(extra);
        let output = self.ok(&args, now);
        let json = serde_json::from_slice(&output.stdout).expect("JSON");
        let (code, report) = common::signet_verify_json(
            env!("CARGO_BIN_EXE_signet"),
            &self.output,
            ORIGIN,
            None,
            common::At::Fixed(now),
        );
        assert_eq!(code, Some(0), "the published zone verifies: {report}");
        (json, String::from_utf8_lossy(&output.stderr).into_owned())
    }

    fn status(&self, now: i64) -> serde_json::Value {
        let output = self.ok(&["status", ORIGIN, "--format", "json"], now);
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        json[0].clone()
    }

    /// Flips a byte in the middle of the stored memo, as a disk or a
    /// careless hand would.
    fn garble_memo(&self) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let url = format!("sqlite://{}", self.db.display());
            let pool = sqlx::SqlitePool::connect(&url).await.expect("open the database");
            let mut memo: Vec<u8> =
                sqlx::query_scalar("SELECT memo FROM gate_memos").fetch_one(&pool).await.expect("a memo is stored");
            let middle = memo.len() / 2;
            memo[middle] ^= 0x20;
            sqlx::query("UPDATE gate_memos SET memo = ?").bind(memo).execute(&pool).await.expect("update");
            pool.close().await;
        });
    }
}

fn verified(run: &serde_json::Value) -> (u64, u64, u64) {
    let v = &run["verified"];
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    (n("rrsigs"), n("rrsigs_verified"), n("rrsigs_from_memo"))
}

fn full_reason(run: &serde_json::Value) -> Option<String> {
    run["full_verification"].as_str().map(str::to_owned)
}

#[test]
fn managed_runs_use_the_stored_memo_and_verify_in_full_when_they_must() {
    let zone = Managed::new();
    // The first run: no full verification yet.
    let (first, _) = zone.sign(&[], NOW);
    let (rrsigs, all, from_memo) = verified(&first);
    assert_eq!((all, from_memo), (rrsigs, 0));
    assert_eq!(full_reason(&first).as_deref(), Some("the first full verification"));
    let status = zone.status(NOW);
    assert_eq!(status["gate_memo"]["entries"].as_u64(), Some(all), "{status}");
    assert_eq!(status["last_full_verification"].as_i64(), Some(NOW));

    // The second, at the same instant: the memo of the first. Only the
    // SOA's RRSIG is new (its serial moved).
    let (second, _) = zone.sign(&[], NOW);
    let (rrsigs, all, from_memo) = verified(&second);
    assert_eq!(full_reason(&second), None);
    assert_eq!((all, from_memo), (rrsigs, rrsigs - 1), "all but the SOA's from the memo");
    let message = zone.status(NOW)["last_run"]["message"].as_str().expect("message").to_owned();
    assert!(message.contains(&format!("{from_memo} of {all} signatures from the gate's memo")), "{message}");

    // An hour later the signer keeps every signature it may (all but the
    // SOA's), and exactly those come from the memo: a new signature never
    // does, a kept one always does.
    let (later, _) = zone.sign(&[], NOW + 3600);
    let kept = later["stats"]["rrsigs_kept"].as_u64().expect("rrsigs_kept");
    let (rrsigs, all, from_memo) = verified(&later);
    assert_eq!((all, kept), (rrsigs, rrsigs - 1), "{later}");
    assert_eq!(from_memo, kept, "the kept signatures, and only they, from the memo");

    // A garbled memo: a warning, every signature verified, published.
    zone.garble_memo();
    let (third, stderr) = zone.sign(&[], NOW);
    let (rrsigs, all, from_memo) = verified(&third);
    assert_eq!((all, from_memo), (rrsigs, 0), "nothing from a damaged memo");
    assert!(stderr.contains("the gate's stored memo does not read"), "{stderr}");
    assert!(full_reason(&third).is_some_and(|r| r.contains("damaged")), "{third}");
    let (fourth, _) = zone.sign(&[], NOW);
    assert_eq!(verified(&fourth).2, verified(&fourth).0 - 1, "the full run stored a good memo again");

    // --full-verify.
    let (fifth, _) = zone.sign(&["--full-verify"], NOW);
    let (rrsigs, all, from_memo) = verified(&fifth);
    assert_eq!((all, from_memo, full_reason(&fifth).as_deref()), (rrsigs, 0, Some("--full-verify")));

    // zone reload --full-verify: the next run is full, the one after not.
    zone.ok(&["zone", "reload", ORIGIN, "--full-verify"], NOW);
    assert_eq!(zone.status(NOW)["full_verification_requested"].as_i64(), Some(NOW));
    let (sixth, _) = zone.sign(&[], NOW);
    assert_eq!(verified(&sixth).2, 0);
    assert!(full_reason(&sixth).is_some_and(|r| r.contains("reload --full-verify")), "{sixth}");
    assert!(zone.status(NOW)["full_verification_requested"].is_null(), "the request is answered");
    let (seventh, _) = zone.sign(&[], NOW);
    assert_eq!(full_reason(&seventh), None);

    // The interval: within a day of the last full verification the memo
    // is used, a day after it the run is full.
    let (within, _) = zone.sign(&[], NOW + DAY - 1);
    assert_eq!(full_reason(&within), None);
    let (due, _) = zone.sign(&[], NOW + DAY);
    assert!(full_reason(&due).is_some_and(|r| r.contains("gate.full-verification-interval")), "{due}");
    assert_eq!(zone.status(NOW + DAY)["last_full_verification"].as_i64(), Some(NOW + DAY));

    // Interval 0: every run full, no memo kept.
    zone.import(&policy("0"));
    let (off, _) = zone.sign(&[], NOW + DAY);
    assert!(full_reason(&off).is_some_and(|r| r.contains("is 0")), "{off}");
    assert!(zone.status(NOW + DAY)["gate_memo"].is_null(), "no memo is kept");
}
