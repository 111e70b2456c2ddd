//! Dead is dead: a `signet serve` killed with SIGKILL that its parent has
//! not reaped yet (a zombie) holds neither the service lock of its
//! database nor the signing lock of the zone it was signing. A restart
//! (a second serve) and a `signet sign ZONE` go ahead while the zombie is
//! still there; a live serve is still refused.

use crate::common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::serve::{Serve, wait_for};

const ORIGIN: &str = "tld.";

struct Setup {
    dir: tempfile::TempDir,
    db: PathBuf,
    output: PathBuf,
}

impl Setup {
    /// A managed zone of 10,000 delegations with soft keys: a run takes
    /// long enough to be caught under way.
    fn new() -> Option<Setup> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (zone, policy) = common::big_tld(dir.path(), ORIGIN, 10_000)?;
        let db = dir.path().join("signet.db");
        let output = dir.path().join("tld.signed");
        let setup = Setup { dir, db, output };
        setup.ok(&["init"]);
        setup.ok(&["policy", "import", policy.to_str()?, "--name", "p"]);
        setup.ok(&[
            "zone",
            "add",
            ORIGIN,
            "--policy",
            "p",
            "--input",
            zone.to_str()?,
            "--output",
            setup.output.to_str()?,
        ]);
        Some(setup)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = common::signet();
        command.env_remove("SIGNET_NOW").arg("--db").arg(&self.db).args(args);
        command
    }

    fn ok(&self, args: &[&str]) {
        common::expect_success(&format!("signet {}", args.join(" ")), &common::run(&mut self.command(args)));
    }

    fn serve(&self, label: &str) -> Serve {
        Serve::start(self.command(&["serve"]), label, None)
    }

    /// The candidate a run of process `pid` writes beside the output: there
    /// while that run signs and verifies, under the zone's lock.
    fn candidate_of(&self, pid: u32) -> PathBuf {
        self.dir.path().join(format!(".tld.signed.signet-{pid}.tmp"))
    }
}

/// The state letter of a process (R, S, Z, …), from /proc/PID/stat.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().next()?.chars().next()
}

#[test]
fn killed_serve_not_yet_reaped_holds_no_lock() {
    let Some(setup) = Setup::new() else { return };
    let mut first = setup.serve("first");

    // Caught in the middle of a run: it holds the service lock and the
    // zone's signing lock.
    let candidate = setup.candidate_of(first.pid);
    let started = Instant::now();
    while !candidate.exists() {
        assert!(started.elapsed() < Duration::from_secs(60), "no run of the first serve seen\n{}", first.tail());
        assert!(first.running(), "the first serve ended\n{}", first.tail());
        std::thread::sleep(Duration::from_millis(2));
    }
    // SIGKILL from outside; this test, its parent, does not wait for it.
    common::expect_success("kill -KILL", &common::run(Command::new("kill").arg("-KILL").arg(first.pid.to_string())));
    wait_for(Duration::from_secs(10), || (state(first.pid) == Some('Z')).then_some(()))
        .unwrap_or_else(|_| panic!("serve {} is not a zombie: state {:?}", first.pid, state(first.pid)));

    // The zone's lock: a command-line run signs the zone.
    let sign = common::run(&mut setup.command(&["sign", ORIGIN]));
    common::expect_success("signet sign while the killed serve is a zombie", &sign);
    assert!(setup.output.exists(), "the zone is published");

    // The service lock: a second serve starts and serves.
    let second = setup.serve("second");
    second.wait_log(&["signet serve started"], Duration::from_secs(20));
    assert_eq!(state(first.pid), Some('Z'), "the first serve is still unreaped");

    // A live serve is still refused, naming the one that runs.
    let refused = common::run_bounded(&mut setup.command(&["serve"]));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "a third serve must be refused: {refused:?}");
    assert!(stderr.contains(&format!("pid {}", second.pid)), "the refusal names pid {}: {stderr}", second.pid);
    second.stop();
    drop(first);
}
