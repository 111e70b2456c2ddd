//! Shared helpers for the integration tests: run the peer signers and the
//! independent validators, with their output shown when they fail.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Is a peer tool installed? In CI (CI=true) a missing tool is a failure;
/// elsewhere the caller may skip with a note.
pub fn have_tool(tool: &str) -> bool {
    let found =
        Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} is missing in CI: .ci/setup must install it");
    }
    if !found {
        eprintln!("note: {tool} not installed; run `bash .ci/setup`");
    }
    found
}

/// Runs a command and returns its output, panicking if it cannot start.
pub fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Panics with the command's output unless it succeeded.
pub fn expect_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Signs `unsigned` with a peer signer through tests/peers/sign.sh into
/// `out` (signed.zone, ds.txt, keys/).
pub fn sign_with_peer(tool: &str, algs: &str, denial: &str, unsigned: &Path, origin: &str, out: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/sign.sh");
    let output = run(Command::new("bash").arg(script).args([tool, algs, denial]).arg(unsigned).arg(origin).arg(out));
    expect_success(&format!("sign.sh {tool} {algs} {denial}"), &output);
}

/// BIND's dnssec-verify on a signed zone.
pub fn bind_verify(zone: &Path, origin: &str) -> Output {
    run(Command::new("dnssec-verify").args(["-q", "-o", origin]).arg(zone))
}

/// Knot's kzonecheck with full DNSSEC checks.
pub fn knot_check(zone: &Path, origin: &str) -> Output {
    run(Command::new("kzonecheck").args(["-o", origin, "-d", "on"]).arg(zone))
}

/// ldns-verify-zone on a signed zone (it checks every signature and the
/// NSEC/NSEC3 chain).
pub fn ldns_verify(zone: &Path) -> Output {
    run(Command::new("ldns-verify-zone").arg(zone))
}

/// `signet verify ... --format json`: exit code and the parsed report.
pub fn signet_verify_json(
    signet: &str,
    zone: &Path,
    origin: &str,
    anchor: Option<&Path>,
) -> (Option<i32>, serde_json::Value) {
    let mut command = Command::new(signet);
    command.args(["verify", "--format", "json", "--origin", origin]).arg(zone);
    if let Some(anchor) = anchor {
        command.arg("--trust-anchor").arg(anchor);
    }
    let output = run(&mut command);
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("signet verify printed no JSON report ({e}); stderr:\n{}", String::from_utf8_lossy(&output.stderr))
    });
    (output.status.code(), report)
}
