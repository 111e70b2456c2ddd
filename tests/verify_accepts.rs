//! `signet verify` accepts, with zero errors, the realistic zone signed by
//! BIND, Knot and ldns with NSEC, NSEC3 and NSEC3 opt-out, for algorithms
//! 8 (2048-bit KSK, 1024-bit ZSK), 13 and 15 — and so do BIND's
//! dnssec-verify and Knot's kzonecheck on the same files.

mod common;

use std::path::Path;

const ORIGIN: &str = "example.";
const ALGORITHMS: [&str; 3] = ["8", "13", "15"];
const DENIALS: [&str; 3] = ["nsec", "nsec3", "nsec3-optout"];

fn accepts_everything_signed_by(tool: &str) {
    let binary = match tool {
        "bind" => "dnssec-signzone",
        "knot" => "kzonesign",
        _ => "ldns-signzone",
    };
    if !common::have_tool(binary) || !common::have_tool("dnssec-verify") || !common::have_tool("kzonecheck") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let unsigned = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/realistic.zone");
    for alg in ALGORITHMS {
        for denial in DENIALS {
            let case = format!("{tool} alg {alg} {denial}");
            let out = dir.path().join(format!("{alg}-{denial}"));
            common::sign_with_peer(tool, alg, denial, &unsigned, ORIGIN, &out);
            let zone = out.join("signed.zone");
            common::expect_success(&format!("dnssec-verify on {case}"), &common::bind_verify(&zone, ORIGIN));
            common::expect_success(&format!("kzonecheck on {case}"), &common::knot_check(&zone, ORIGIN));
            let (exit, report) =
                common::signet_verify_json(env!("CARGO_BIN_EXE_signet"), &zone, ORIGIN, Some(&out.join("ds.txt")));
            let findings = report["findings"].as_array().cloned().unwrap_or_default();
            let errors: Vec<_> = findings.iter().filter(|f| f["severity"] == "error").collect();
            assert!(errors.is_empty(), "{case}: signet reports errors: {errors:#?}");
            assert_eq!(exit, Some(0), "{case}: exit code");
            assert_eq!(report["valid"], true, "{case}");
            let verified = report["stats"]["rrsigs_verified"].as_u64().unwrap_or(0);
            let rrsigs = report["stats"]["rrsigs"].as_u64().unwrap_or(0);
            assert!(verified > 50 && verified == rrsigs, "{case}: {verified} of {rrsigs} RRSIGs verified");
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
