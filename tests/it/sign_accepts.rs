//! `signet sign` on the realistic zone (wildcard, empty non-terminals,
//! glue, mixed-case names in RDATA, many types and TTLs), for every
//! algorithm signet signs with, with soft keys and with keys in a real
//! SoftHSM token, under NSEC, NSEC3 and NSEC3 opt-out: the output must be
//! accepted by signet verify (against the DS `--ds-out` wrote), BIND's
//! dnssec-verify, Knot's kzonecheck and ldns-verify-zone.

use crate::common;

use std::collections::HashSet;
use std::path::Path;

use common::Store;
use signet::zone::{Name, Rtype};

const ORIGIN: &str = "example.";
const DENIALS: [&str; 3] = ["nsec", "nsec3", "nsec3-optout"];

/// Signs with a KSK and a ZSK (or one CSK) of `algorithm` from `store`
/// under each denial, and has every validator check the result.
fn sign_and_check_all(store: &Store, algorithm: &str, csk: bool, dir: &Path) {
    if !["dnssec-verify", "kzonecheck", "ldns-verify-zone", "openssl"].iter().all(|t| common::have_tool(t)) {
        return;
    }
    let keys: Vec<String> = if csk {
        vec![format!("{}:csk", store.generate(algorithm, "csk", &format!("csk{algorithm}")))]
    } else {
        ["ksk", "zsk"]
            .iter()
            .map(|role| format!("{}:{role}", store.generate(algorithm, role, &format!("{role}{algorithm}"))))
            .collect()
    };
    for denial in DENIALS {
        let case = format!("{store:?} alg {algorithm} {denial}{}", if csk { " csk" } else { "" });
        let policy = common::write_policy(dir, denial, algorithm, denial, if csk { "csk = true" } else { "" });
        let out = dir.join(format!("{denial}.zone"));
        let ds = dir.join(format!("{denial}.ds"));
        let mut command = store.signet();
        command.arg("sign").arg(common::realistic_zone()).args(["--origin", ORIGIN]).arg("--policy").arg(&policy);
        for key in &keys {
            command.args(["--key", key]);
        }
        command.arg("-o").arg(&out).arg("--ds-out").arg(&ds);
        common::expect_success(&format!("signet sign, {case}"), &common::run(&mut command));
        let (exit, report) =
            common::signet_verify_json(env!("CARGO_BIN_EXE_signet"), &out, ORIGIN, Some(&ds), common::At::WallClock);
        assert_eq!(exit, Some(0), "{case}: signet verify: {report:#}");
        let verified = report["stats"]["rrsigs_verified"].as_u64().unwrap_or(0);
        assert!(verified > 50 && Some(verified) == report["stats"]["rrsigs"].as_u64(), "{case}: {report:#}");
        // A CSK carries the SEP flag; BIND then wants -z to take it as a ZSK too.
        let mut bind = std::process::Command::new("dnssec-verify");
        bind.args(["-q", "-o", ORIGIN]).args(if csk { &["-z"][..] } else { &[][..] }).arg(&out);
        common::expect_success(&format!("dnssec-verify on {case}"), &common::run(&mut bind));
        common::expect_success(&format!("kzonecheck on {case}"), &common::knot_check(&out, ORIGIN));
        common::expect_success(&format!("ldns-verify-zone on {case}"), &common::ldns_verify(&out));
        assert_preserved(&out, &case);
    }
}

/// Every input record is in the output, byte for byte (owner case and
/// mixed-case names inside RDATA included), the SOA but for its serial.
fn assert_preserved(out: &Path, case: &str) {
    let origin = Name::from_text(ORIGIN, None).expect("origin");
    let records = |path: &Path| -> HashSet<(Vec<u8>, u16, Vec<u8>)> {
        let zone = signet::read_zone_file(path, &origin).expect("zone reads");
        zone.records()
            .map(|r| {
                (r.owner.wire().to_vec(), r.rtype.0, if r.rtype == Rtype::SOA { Vec::new() } else { r.rdata.to_vec() })
            })
            .collect()
    };
    let signed = records(out);
    let unsigned = records(&common::realistic_zone());
    let lost: Vec<_> = unsigned.difference(&signed).collect();
    assert!(lost.is_empty(), "{case}: input records missing from the output: {lost:?}");
}

macro_rules! sign_tests {
    ($($name:ident: $store:ident, $alg:expr, $csk:expr;)*) => {$(
        #[test]
        fn $name() {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::$store(&dir.path().join("keys"));
            sign_and_check_all(&store, $alg, $csk, dir.path());
        }
    )*};
}

sign_tests! {
    soft_rsasha256: soft, "8", false;
    soft_ecdsap256: soft, "13", false;
    soft_ecdsap384: soft, "14", false;
    soft_ed25519: soft, "15", false;
    soft_ed25519_csk: soft, "15", true;
    softhsm_rsasha256: softhsm, "8", false;
    softhsm_ecdsap256: softhsm, "13", false;
    softhsm_ecdsap384: softhsm, "14", false;
    softhsm_ed25519: softhsm, "15", false;
    softhsm_ecdsap256_csk: softhsm, "13", true;
}
