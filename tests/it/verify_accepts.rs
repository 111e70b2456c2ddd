//! `signet verify` accepts, with zero errors, the realistic zone signed by
//! BIND, Knot and ldns with NSEC, NSEC3 and NSEC3 opt-out, for algorithms
//! 8 (2048-bit KSK, 1024-bit ZSK), 13 and 15 — and so do BIND's
//! dnssec-verify, Knot's kzonecheck and ldns-verify-zone on the same files.
//! The other algorithms signet checks (5, 7, 10, 14) are accepted too, and
//! Ed448 (16), which ring cannot check, is reported as unsupported: never
//! valid, never bogus.

use crate::common;

use std::path::Path;

const ORIGIN: &str = "example.";
const ALGORITHMS: [&str; 3] = ["8", "13", "15"];
const DENIALS: [&str; 3] = ["nsec", "nsec3", "nsec3-optout"];

/// Signs the realistic zone, checks that the peers' validators accept it,
/// and returns signet's exit code and JSON report.
fn sign_and_verify(tool: &str, alg: &str, denial: &str, dir: &Path) -> (Option<i32>, serde_json::Value) {
    let case = format!("{tool} alg {alg} {denial}");
    let unsigned = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/realistic.zone");
    let out = dir.join(format!("{tool}-{alg}-{denial}"));
    common::sign_with_peer(tool, alg, denial, &unsigned, ORIGIN, &out);
    let zone = out.join("signed.zone");
    common::expect_success(&format!("dnssec-verify on {case}"), &common::bind_verify(&zone, ORIGIN));
    common::expect_success(&format!("kzonecheck on {case}"), &common::knot_check(&zone, ORIGIN));
    common::expect_success(&format!("ldns-verify-zone on {case}"), &common::ldns_verify(&zone));
    common::signet_verify_json(
        env!("CARGO_BIN_EXE_signet"),
        &zone,
        ORIGIN,
        Some(&out.join("ds.txt")),
        common::At::WallClock,
    )
}

/// Asserts a clean bill: exit 0, valid, every RRSIG verified.
fn assert_accepted(case: &str, (exit, report): (Option<i32>, serde_json::Value)) {
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let errors: Vec<_> = findings.iter().filter(|f| f["severity"] == "error").collect();
    assert!(errors.is_empty(), "{case}: signet reports errors: {errors:#?}");
    assert_eq!(exit, Some(0), "{case}: exit code");
    assert_eq!(report["valid"], true, "{case}");
    let verified = report["stats"]["rrsigs_verified"].as_u64().unwrap_or(0);
    let rrsigs = report["stats"]["rrsigs"].as_u64().unwrap_or(0);
    assert!(verified > 50 && verified == rrsigs, "{case}: {verified} of {rrsigs} RRSIGs verified");
}

fn have_validators() -> bool {
    common::have_tool("dnssec-verify") && common::have_tool("kzonecheck") && common::have_tool("ldns-verify-zone")
}

fn accepts_everything_signed_by(tool: &str) {
    let binary = match tool {
        "bind" => "dnssec-signzone",
        "knot" => "kzonesign",
        _ => "ldns-signzone",
    };
    if !common::have_tool(binary) || !have_validators() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for alg in ALGORITHMS {
        for denial in DENIALS {
            let result = sign_and_verify(tool, alg, denial, dir.path());
            assert_accepted(&format!("{tool} alg {alg} {denial}"), result);
        }
    }
}

#[test]
fn accepts_bind_signed_zones() {
    accepts_everything_signed_by("bind");
}

#[test]
fn accepts_knot_signed_zones() {
    accepts_everything_signed_by("knot");
}

#[test]
fn accepts_ldns_signed_zones() {
    accepts_everything_signed_by("ldns");
}

#[test]
fn accepts_the_other_supported_algorithms() {
    if !common::have_tool("dnssec-signzone") || !have_validators() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (alg, denial) in [("5", "nsec"), ("7", "nsec3"), ("10", "nsec"), ("14", "nsec3-optout")] {
        assert_accepted(&format!("bind alg {alg} {denial}"), sign_and_verify("bind", alg, denial, dir.path()));
    }
}

#[test]
fn ed448_is_unsupported_never_valid_never_bogus() {
    if !common::have_tool("dnssec-signzone") || !have_validators() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (exit, report) = sign_and_verify("bind", "16", "nsec", dir.path());
    assert_eq!(exit, Some(1), "an unverifiable zone is not valid");
    assert_eq!(report["valid"], false);
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    assert!(findings.iter().any(|f| f["code"] == "unsupported-algorithm" && f["rtype"] == "DNSKEY"), "{findings:#?}");
    assert!(
        findings.iter().all(|f| f["code"] == "unsupported-algorithm"),
        "nothing else, and never bogus: {findings:#?}"
    );
    assert_eq!(report["stats"]["rrsigs_verified"], 0);
}
