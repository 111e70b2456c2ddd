//! The process itself is safe: `kill -9` at any point of `signet sign`
//! leaves the previous output intact (or the complete new one) and a
//! database that the next run continues from; two signet processes on one
//! zone do not both sign it.

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ORIGIN: &str = "tld.";
const START: i64 = 1_795_000_000;

struct Setup {
    _dir: tempfile::TempDir,
    db: PathBuf,
    output: PathBuf,
}

impl Setup {
    /// A managed zone of 10,000 delegations with soft keys: big enough that
    /// a run takes a while to kill.
    fn new() -> Option<Setup> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (zone, policy) = common::big_tld(dir.path(), ORIGIN, 10_000)?;
        let setup = Setup { db: dir.path().join("signet.db"), output: dir.path().join("tld.signed"), _dir: dir };
        setup.ok(&["init"], START);
        setup.ok(&["policy", "import", policy.to_str()?, "--name", "p"], START);
        setup.ok(
            &["zone", "add", ORIGIN, "--policy", "p", "--input", zone.to_str()?, "--output", setup.output.to_str()?],
            START,
        );
        Some(setup)
    }

    fn command(&self, args: &[&str], now: i64) -> Command {
        let mut command = common::signet();
        command.arg("--db").arg(&self.db).args(["--now", &now.to_string()]).args(args);
        command
    }

    fn ok(&self, args: &[&str], now: i64) {
        common::expect_success(&format!("signet {}", args.join(" ")), &common::run(&mut self.command(args, now)));
    }

    /// The published zone, if any, is whole and valid.
    fn check_output(&self, now: i64, when: &str) {
        if !self.output.exists() {
            return;
        }
        let output =
            common::run(&mut self.command(&["verify", self.output.to_str().expect("path"), "--origin", ORIGIN], now));
        common::expect_success(&format!("the published zone {when}"), &output);
    }
}

#[test]
fn kill_9_at_random_points_of_sign() {
    let Some(setup) = Setup::new() else { return };
    let mut now = START;
    setup.ok(&["sign", ORIGIN], now);
    // Steady runs (the first one also made the keys) set the time scale:
    // the fastest of three, since the other test of this file may be
    // loading the machine at first.
    let mut run_time = Duration::MAX;
    for _ in 0..3 {
        now += 3600;
        let started = Instant::now();
        setup.ok(&["sign", ORIGIN], now);
        run_time = run_time.min(started.elapsed());
    }
    let mut killed_mid_run = 0;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..80 {
        if killed_mid_run >= 20 {
            break;
        }
        now += 3600;
        // A pseudo-random point in the first 90% of a run.
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let delay = run_time.mul_f64((seed >> 11) as f64 / (1u64 << 53) as f64 * 0.9);
        let mut child =
            setup.command(&["sign", ORIGIN], now).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
        std::thread::sleep(delay);
        if child.try_wait().expect("wait").is_none() {
            killed_mid_run += 1;
        } else {
            // The run was over before the kill: runs are faster than
            // measured, so aim earlier.
            run_time = run_time.mul_f64(0.8);
        }
        child.kill().ok(); // SIGKILL
        child.wait().expect("reap");
        setup.check_output(now, &format!("after kill -9 at {delay:?}"));
        // The next run continues from the database.
        setup.ok(&["sign", ORIGIN], now);
        setup.check_output(now, "after the run that followed the kill");
    }
    assert!(killed_mid_run >= 20, "only {killed_mid_run} kills landed mid-run");
    let leftovers: Vec<_> = std::fs::read_dir(setup.output.parent().expect("dir"))
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".signet-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn two_processes_do_not_both_sign() {
    let Some(setup) = Setup::new() else { return };
    setup.ok(&["sign", ORIGIN], START);
    let now = START + 3600;
    let spawn =
        || setup.command(&["sign", ORIGIN], now).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().expect("a"), b.wait_with_output().expect("b"));
    let outcomes = [&a, &b];
    assert!(outcomes.iter().any(|o| o.status.success()), "one of them signs");
    for o in outcomes.iter().filter(|o| !o.status.success()) {
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains("is busy"), "the other says the zone is busy: {stderr}");
    }
    setup.check_output(now, "after two concurrent runs");
}
