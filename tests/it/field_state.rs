//! Safety and state found in the field (issue 22), through the real
//! binary with soft keys at fixed times (every command gets `--now`):
//! a kept serial never names two versions, a run refused for the clock is
//! a failed run in status, `serve` refuses a fixed clock, a killed run's
//! temporary files go at the next run even when it fails early, and a
//! policy's relative `file:` key store is the database directory's,
//! created when missing.

use crate::common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

const ORIGIN: &str = "example.";
/// 2026-12-01T00:00:00Z.
const NOW: i64 = 1_796_083_200;
const HOUR: i64 = 3600;
const DAY: i64 = 86400;

/// A database with one managed zone on soft keys, its input a copy the
/// test edits.
struct Managed {
    dir: tempfile::TempDir,
    db: PathBuf,
    input: PathBuf,
    output: PathBuf,
}

impl Managed {
    /// `serial` is the policy's `zone.serial`.
    fn new(serial: &str) -> Managed {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, policy_text(&format!("file:{}", keys.display()), serial)).expect("write policy");
        Managed::with_policy(dir, &policy)
    }

    fn with_policy(dir: tempfile::TempDir, policy: &Path) -> Managed {
        let db = dir.path().join("signet.db");
        let input = dir.path().join("example.zone");
        let output = dir.path().join("example.signed");
        std::fs::copy(common::realistic_zone(), &input).expect("copy the input");
        let managed = Managed { dir, db, input, output };
        managed.ok(&["init"], NOW);
        managed.ok(&["policy", "import", path(policy), "--name", "p"], NOW);
        managed.ok(
            &[
                "zone",
                "add",
                ORIGIN,
                "--policy",
                "p",
                "--input",
                path(&managed.input),
                "--output",
                path(&managed.output),
            ],
            NOW,
        );
        managed
    }

    fn command(&self, now: Option<i64>) -> std::process::Command {
        let mut command = common::signet();
        command.current_dir(self.dir.path()).arg("--db").arg(&self.db);
        if let Some(now) = now {
            command.args(["--now", &now.to_string()]);
        }
        command
    }

    fn signet(&self, args: &[&str], now: i64) -> Output {
        common::run(self.command(Some(now)).args(args))
    }

    fn ok(&self, args: &[&str], now: i64) -> Output {
        let output = self.signet(args, now);
        common::expect_success(&format!("signet {}", args.join(" ")), &output);
        output
    }

    fn status(&self, now: i64) -> serde_json::Value {
        let output = self.ok(&["status", ORIGIN, "--format", "json"], now);
        let status: serde_json::Value = serde_json::from_slice(&output.stdout).expect("status JSON");
        status[0].clone()
    }

    /// Sets the input's SOA serial.
    fn set_input_serial(&self, serial: u32) {
        let text = std::fs::read_to_string(&self.input).expect("read input");
        let old = text.lines().find(|l| l.contains("; serial")).expect("the serial line").to_owned();
        let new = format!("                         {serial} ; serial");
        std::fs::write(&self.input, text.replacen(&old, &new, 1)).expect("write input");
    }
}

/// A policy on Ed25519 soft keys with short signature validity.
fn policy_text(store: &str, serial: &str) -> String {
    format!(
        "[keys]\nalgorithm = \"ED25519\"\nstore = \"{store}\"\nzsk-lifetime = \"90d\"\nksk-lifetime = \"365d\"\n\
         [signatures]\nvalidity = \"14d\"\ndnskey-validity = \"14d\"\nrefresh = \"5d\"\njitter = \"0s\"\n\
         [denial]\ntype = \"nsec\"\n[zone]\nserial = \"{serial}\"\n"
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The SOA serial of a signed zone file.
fn serial(file: &Path) -> u32 {
    let text = std::fs::read_to_string(file).expect("read output");
    let soa = text.lines().find(|l| l.split_whitespace().nth(3) == Some("SOA")).expect("an SOA line");
    soa.split_whitespace().nth(6).expect("serial field").parse().expect("a serial")
}

/// Issue 22.1: under `serial = "keep"`, a run that would change the zone
/// (a rollover step, signatures refreshed) without a new input serial
/// publishes nothing and says why; the same version again is fine; a new
/// input serial publishes. (Before: a second, different version under
/// serial 2026112201.)
#[test]
fn kept_serial_never_names_two_versions() {
    let zone = Managed::new("keep");
    zone.ok(&["sign", ORIGIN], NOW);
    let first = std::fs::read(&zone.output).expect("read output");
    assert_eq!(serial(&zone.output), 2026112201);

    // Nothing to change an hour later: the same version, published again.
    zone.ok(&["sign", ORIGIN], NOW + HOUR);
    assert_eq!(std::fs::read(&zone.output).expect("read output"), first, "the same version");

    // A ZSK rollover starts: a new DNSKEY, under the same serial.
    zone.ok(&["key", "rollover", ORIGIN, "--zsk"], NOW + 2 * HOUR);
    let held = zone.signet(&["sign", ORIGIN], NOW + 2 * HOUR);
    assert_eq!(held.status.code(), Some(2), "a held run fails: {}", stderr(&held));
    let message = stderr(&held);
    assert!(
        message.contains("serial 2026112201 does not move past the published 2026112201") && message.contains("keep"),
        "the refusal names the serial and the policy: {message}"
    );
    assert_eq!(std::fs::read(&zone.output).expect("read output"), first, "nothing published");
    let status = zone.status(NOW + 2 * HOUR);
    assert_eq!(status["last_run"]["result"], "failed", "{status:#}");
    assert!(status["last_run"]["message"].as_str().is_some_and(|m| m.contains("does not move past")), "{status:#}");
    assert_eq!(status["published_serial"].as_u64(), Some(2026112201), "{status:#}");

    // Signatures due for refresh: also a change, also held.
    let held = zone.signet(&["sign", ORIGIN], NOW + 10 * DAY);
    assert_eq!(held.status.code(), Some(2), "{}", stderr(&held));
    assert_eq!(std::fs::read(&zone.output).expect("read output"), first, "nothing published");

    // A serial behind the published one is held too.
    zone.set_input_serial(2026112101);
    let behind = zone.signet(&["sign", ORIGIN], NOW + 10 * DAY);
    assert!(stderr(&behind).contains("serial 2026112101 does not move past"), "{}", stderr(&behind));

    // A new input serial: the change is published under it.
    zone.set_input_serial(2026112202);
    zone.ok(&["sign", ORIGIN], NOW + 10 * DAY);
    assert_eq!(serial(&zone.output), 2026112202);
    let (code, report) = common::signet_verify_json(
        env!("CARGO_BIN_EXE_signet"),
        &zone.output,
        ORIGIN,
        None,
        common::At::Fixed(NOW + 10 * DAY),
    );
    assert_eq!(code, Some(0), "{report:#}");
}

/// Issue 22.1: `policy check` says what `keep` implies.
#[test]
fn policy_check_explains_keep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("keep.toml");
    std::fs::write(&policy, policy_text("file:keys", "keep")).expect("write policy");
    let output = common::run(common::signet().args(["policy", "check"]).arg(&policy));
    common::expect_success("policy check", &output);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), stderr(&output));
    assert!(text.contains("keep") && text.contains("publishes nothing"), "{text}");
}

/// Issue 22.8: a run refused because the clock went back is a failed run
/// in status (it showed "published, 0 failures"); `serve` refuses a fixed
/// clock instead of ignoring it, and the clock error no longer sends a
/// service's operator to --now.
#[test]
fn a_clock_gone_back_is_a_failed_run_and_serve_refuses_a_fixed_clock() {
    let zone = Managed::new("increment");
    let later = signet::time::wall_clock() + DAY;
    zone.ok(&["sign", ORIGIN], later);
    let refused = common::run(zone.command(None).args(["sign", ORIGIN]));
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("clock went backwards"), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("signet serve runs on the wall clock only"), "{}", stderr(&refused));
    let status = zone.status(later);
    assert_eq!(status["last_run"]["result"], "failed", "{status:#}");
    assert!(status["last_run"]["message"].as_str().is_some_and(|m| m.contains("clock went backwards")), "{status:#}");

    for fixed in
        [zone.command(Some(NOW)).arg("serve"), zone.command(None).arg("serve").env("SIGNET_NOW", NOW.to_string())]
    {
        let output = common::run_bounded(fixed);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains("signet serve runs on the wall clock"), "{}", stderr(&output));
    }
}

/// Issue 22.9: a killed run's temporary file goes at the next run, even
/// one that fails before it writes anything (it stayed, and on a full
/// disk every later run failed).
#[test]
fn a_killed_runs_temp_file_goes_at_the_next_run() {
    let zone = Managed::new("increment");
    zone.ok(&["sign", ORIGIN], NOW);
    // A pid above the kernel's limit (2^22) belongs to no process.
    let stale = zone.dir.path().join(".example.signed.signet-4999999.tmp");
    std::fs::write(&stale, "a killed run's candidate").expect("write temp");
    std::fs::write(&zone.input, "this is not a zone\n").expect("break the input");
    let failed = zone.signet(&["sign", ORIGIN], NOW + HOUR);
    assert_eq!(failed.status.code(), Some(2), "{}", stderr(&failed));
    assert!(!stale.exists(), "the stale candidate stays after a run that failed before writing");
}

/// Issue 22.10: a newcomer's first managed zone with a shipped policy
/// whose key store is `file:keys`: the directory is made (0700) beside
/// the database, whatever the working directory, and later runs from
/// elsewhere find the same keys.
#[test]
fn a_relative_file_key_store_is_made_beside_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/small-csk-ed25519.toml");
    let zone = Managed::with_policy(dir, &shipped);
    let elsewhere = tempfile::tempdir().expect("another working directory");
    let sign = |cwd: &Path, now: i64| {
        common::run(common::signet().current_dir(cwd).arg("--db").arg(&zone.db).args([
            "--now",
            &now.to_string(),
            "sign",
            ORIGIN,
        ]))
    };
    common::expect_success("the first managed run, from another directory", &sign(elsewhere.path(), NOW));
    let keys = zone.dir.path().join("keys");
    let mode = std::fs::metadata(&keys).expect("the key store is made beside the database").permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "the key store's mode");
    assert!(!elsewhere.path().join("keys").exists(), "nothing is made in the working directory");
    let made: Vec<_> = std::fs::read_dir(&keys).expect("list keys").flatten().collect();
    assert_eq!(made.len(), 1, "one CSK");
    common::expect_success("a run from /", &sign(Path::new("/"), NOW + HOUR));
    assert_eq!(std::fs::read_dir(&keys).expect("list keys").count(), 1, "the same key, no new one");
}
