//! Times signet cannot express are refused when read (`--now`, dry-run
//! bounds), naming the value and the limit; times it computes past the
//! last one it reads (a run at the end of year 9999) print without a panic.

use crate::common;

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

const ORIGIN: &str = "example.";
const TOO_LATE: &str = "99999999999999";

/// A managed zone with soft keys in `dir`: database, policy, zone.
struct Managed {
    dir: PathBuf,
}

impl Managed {
    fn new(dir: &Path) -> Managed {
        let keys = dir.join("keys");
        std::fs::DirBuilder::new().mode(0o700).create(&keys).expect("mkdir keys");
        let policy =
            format!("[keys]\nalgorithm = 13\nstore = \"file:{}\"\n[denial]\ntype = \"nsec\"\n", keys.display());
        std::fs::write(dir.join("p.toml"), policy).expect("write policy");
        Managed { dir: dir.to_owned() }
    }

    fn signet(&self, now: &str, args: &[&str]) -> Output {
        common::run(
            common::signet()
                .current_dir(&self.dir)
                .arg("--db")
                .arg(self.dir.join("signet.db"))
                .args(["--now", now])
                .args(args),
        )
    }

    fn ok(&self, now: &str, args: &[&str]) -> Output {
        let output = self.signet(now, args);
        common::expect_success(&format!("signet {args:?} at {now}"), &output);
        output
    }

    /// init, policy import, zone add, sign, all at `now`.
    fn start(&self, now: &str) {
        let input = common::realistic_zone();
        self.ok(now, &["init"]);
        self.ok(now, &["policy", "import", "p.toml"]);
        self.ok(
            now,
            &[
                "zone",
                "add",
                ORIGIN,
                "--policy",
                "p",
                "--input",
                input.to_str().expect("utf-8"),
                "--output",
                "out.zone",
            ],
        );
        self.ok(now, &["sign", ORIGIN]);
    }
}

fn assert_refused(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "expected exit 2:\n{stderr}");
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}:\n{stderr}");
    }
}

#[test]
fn now_out_of_range_is_refused_naming_value_and_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = Managed::new(dir.path());
    zone.start("2027-01-01T00:00:00Z");
    let needles = ["--now", TOO_LATE, "9999-12-31T23:59:59Z"];
    let signed = dir.path().join("out.zone");
    let verify = ["verify", signed.to_str().expect("utf-8"), "--origin", ORIGIN];
    assert_refused(&zone.signet(TOO_LATE, &verify), &needles);
    assert_refused(&zone.signet(TOO_LATE, &["sign", ORIGIN]), &needles);
    assert_refused(&zone.signet(TOO_LATE, &["key", "list", ORIGIN]), &needles);
    let keys = dir.path().join("keys");
    let ksk = common::Store::soft(&keys).generate("13", "csk", "one-shot");
    let input = common::realistic_zone();
    let one_shot = ["sign", input.to_str().expect("utf-8"), "--origin", ORIGIN];
    let key = format!("{ksk}:csk");
    let output =
        zone.signet(TOO_LATE, &[&one_shot[..], &["--policy", "p.toml", "--key", &key, "-o", "o.zone"]].concat());
    assert_refused(&output, &needles);
    assert_refused(&zone.signet("1969-12-31T23:59:59Z", &verify), &["1970-01-01T00:00:00Z"]);
}

#[test]
fn dry_run_bounds_out_of_range_are_refused() {
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/small-csk-ed25519.toml");
    let output = common::run(common::signet().args(["dry-run", "--origin", ORIGIN, "--policy"]).arg(&policy).args([
        "--from",
        "9999-12-01T00:00:00Z",
        "--until",
        "253402400000",
    ]));
    assert_refused(&output, &["--until", "253402400000", "9999-12-31T23:59:59Z"]);
}

/// Signed an hour before the end of 9999, the next run and the key
/// timers fall in year 10000: they print, and nothing panics.
#[test]
fn a_run_at_the_end_of_9999_prints_times_past_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = Managed::new(dir.path());
    let now = "9999-12-31T23:00:00Z";
    zone.start(now);
    let listed = zone.ok(now, &["key", "list", ORIGIN]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("+10000-01-01T01:05:00Z"));
    let signed = dir.path().join("out.zone");
    zone.ok(now, &["verify", signed.to_str().expect("utf-8"), "--origin", ORIGIN]);
}
