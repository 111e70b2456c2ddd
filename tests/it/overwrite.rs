//! Nothing is overwritten that should not be (issue 11, part 2), through
//! the real binary: two zones cannot share an output, an output cannot be
//! the input, the managed serial always passes the one at the output, a
//! DS file that cannot be written changes nothing, a symlinked output is
//! written through with its mode and group kept, and a stale signing lock
//! whose pid now belongs to another program is taken over.

use crate::common;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::Store;

const ORIGIN: &str = "example.";
const NOW: &str = "2026-12-01T00:00:00Z";

/// A database with one managed zone whose keys are soft keys.
struct Managed {
    dir: tempfile::TempDir,
    db: PathBuf,
    output: PathBuf,
}

impl Managed {
    fn new() -> Managed {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).expect("mkdir");
        let extra = format!("store = \"file:{}\"", keys.display());
        let policy = common::write_policy(dir.path(), "policy", "13", "nsec", &extra);
        let db = dir.path().join("signet.db");
        let output = dir.path().join("example.signed");
        let managed = Managed { dir, db, output };
        managed.ok(&["init"]);
        managed.ok(&["policy", "import", policy.to_str().expect("path"), "--name", "p"]);
        let input = common::realistic_zone();
        managed.ok(&[
            "zone",
            "add",
            ORIGIN,
            "--policy",
            "p",
            "--input",
            path(&input),
            "--output",
            path(&managed.output),
        ]);
        managed
    }

    fn signet(&self, args: &[&str]) -> Output {
        common::run(common::signet().arg("--db").arg(&self.db).args(["--now", NOW]).args(args))
    }

    fn ok(&self, args: &[&str]) -> Output {
        let output = self.signet(args);
        common::expect_success(&format!("signet {}", args.join(" ")), &output);
        output
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The SOA serial on the first line of a signed zone.
fn serial(file: &Path) -> u32 {
    let text = std::fs::read_to_string(file).expect("read output");
    let soa = text.lines().next().expect("a first line");
    soa.split_whitespace().nth(6).expect("serial field").parse().expect("a serial")
}

#[test]
fn two_zones_cannot_share_an_output() {
    let m = Managed::new();
    let input = common::realistic_zone();
    let add = |name: &str, output: &Path| {
        m.signet(&["zone", "add", name, "--policy", "p", "--input", path(&input), "--output", path(output)])
    };
    let same = add("b.example.", &m.output);
    assert_eq!(same.status.code(), Some(2), "{}", stderr(&same));
    assert!(stderr(&same).contains("already publishes to"), "{}", stderr(&same));
    // Another spelling of the same file: through a symlinked directory.
    let link = m.dir.path().join("link");
    std::os::unix::fs::symlink(m.dir.path(), &link).expect("symlink");
    let spelled = add("c.example.", &link.join("example.signed"));
    assert_eq!(spelled.status.code(), Some(2), "{}", stderr(&spelled));
    let input_as_output = add("d.example.", &input);
    assert_eq!(input_as_output.status.code(), Some(2), "{}", stderr(&input_as_output));
    assert!(stderr(&input_as_output).contains("is the input"), "{}", stderr(&input_as_output));
}

#[test]
fn one_shot_sign_refuses_to_overwrite_its_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::soft(&dir.path().join("keys"));
    let (ksk, zsk) = (store.generate("13", "ksk", "ksk"), store.generate("13", "zsk", "zsk"));
    let policy = common::write_policy(dir.path(), "policy", "13", "nsec", "");
    let zone = dir.path().join("z.zone");
    std::fs::copy(common::realistic_zone(), &zone).expect("copy");
    let before = std::fs::read(&zone).expect("read");
    let output = common::run(
        store
            .signet()
            .arg("sign")
            .arg(&zone)
            .args(["--origin", ORIGIN, "--policy", path(&policy)])
            .args(["--key", &format!("{ksk}:ksk"), "--key", &format!("{zsk}:zsk")])
            .arg("-o")
            .arg(&zone),
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("is the input"), "{}", stderr(&output));
    assert_eq!(std::fs::read(&zone).expect("read"), before, "the unsigned zone changed");
}

#[test]
fn the_managed_serial_passes_the_one_at_the_output() {
    let m = Managed::new();
    m.ok(&["sign", ORIGIN]);
    // A hand edit (or a run killed between rename and commit) leaves a
    // serial at the output that the database has not seen.
    let text = std::fs::read_to_string(&m.output).expect("read");
    let old = serial(&m.output);
    std::fs::write(&m.output, text.replacen(&format!(" {old} "), " 2000000000 ", 1)).expect("edit");
    assert_eq!(serial(&m.output), 2_000_000_000);
    m.ok(&["sign", ORIGIN]);
    assert_eq!(serial(&m.output), 2_000_000_001, "the new serial must pass the one at the output");
}

#[test]
fn a_ds_file_that_cannot_be_written_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::soft(&dir.path().join("keys"));
    let (ksk, zsk) = (store.generate("13", "ksk", "ksk"), store.generate("13", "zsk", "zsk"));
    let policy = common::write_policy(dir.path(), "policy", "13", "nsec", "");
    let out = dir.path().join("signed.zone");
    let sign = |ds_out: &Path| {
        common::run(
            store
                .signet()
                .arg("sign")
                .arg(common::realistic_zone())
                .args(["--origin", ORIGIN, "--policy", path(&policy)])
                .args(["--key", &format!("{ksk}:ksk"), "--key", &format!("{zsk}:zsk")])
                .arg("-o")
                .arg(&out)
                .arg("--ds-out")
                .arg(ds_out),
        )
    };
    let good = dir.path().join("ds.txt");
    common::expect_success("sign with --ds-out", &sign(&good));
    assert!(std::fs::read_to_string(&good).expect("ds file").contains("\tDS\t"));
    let before = std::fs::read(&out).expect("read");
    let failed = sign(&dir.path().join("missing-dir/ds.txt"));
    assert_eq!(failed.status.code(), Some(2), "{}", stderr(&failed));
    assert_eq!(std::fs::read(&out).expect("read"), before, "the zone was published although --ds-out failed");
    assert!(!dir.path().join("missing-dir").exists());
}

#[test]
fn a_symlinked_output_is_written_through_with_mode_and_group_kept() {
    let m = Managed::new();
    m.ok(&["sign", ORIGIN]);
    // Move the real file elsewhere and leave a symlink at the output path.
    let real = m.dir.path().join("published/example.zone");
    std::fs::create_dir(real.parent().expect("dir")).expect("mkdir");
    std::fs::rename(&m.output, &real).expect("move");
    std::os::unix::fs::symlink(&real, &m.output).expect("symlink");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let gid = 65534; // nogroup: a group that is not root's
    let chowned = std::os::unix::fs::chown(&real, None, Some(gid)).is_ok();
    let old = serial(&real);
    m.ok(&["sign", ORIGIN]);
    let link = std::fs::symlink_metadata(&m.output).expect("output");
    assert!(link.file_type().is_symlink(), "the symlink was replaced by a regular file");
    assert!(serial(&real) != old, "the link's target was not updated");
    let meta = std::fs::metadata(&real).expect("target");
    assert_eq!(meta.mode() & 0o7777, 0o640, "mode not kept");
    if chowned {
        assert_eq!(meta.gid(), gid, "group not kept");
    }
}

/// Writes a signing lock for `pid` started at `started` into the
/// database, as a signet process would have (with Python's sqlite3, not
/// signet's code).
fn record_lock(db: &Path, pid: u32, started: &str) {
    let lock = format!("UPDATE zones SET lock_pid = {pid}, lock_since = 0, lock_started = {started}");
    let python = common::run(std::process::Command::new("python3").args([
        "-c",
        &format!("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('{lock}'); c.commit()"),
        path(db),
    ]));
    common::expect_success("python3 sqlite3", &python);
}

#[test]
fn a_stale_lock_held_by_another_program_is_taken_over() {
    let m = Managed::new();
    m.ok(&["sign", ORIGIN]);
    // Another program now has the pid the lock names; it started after
    // the signet that took the lock.
    let mut other = std::process::Command::new("sleep").arg("60").spawn().expect("sleep");
    let pid = other.id();
    record_lock(&m.db, pid, "1");
    let run = m.signet(&["sign", ORIGIN]);
    let _ = other.kill();
    let _ = other.wait();
    common::expect_success("sign over a stale lock", &run);
    // A live signer's lock is respected and named.
    let mut holder = std::process::Command::new("sleep").arg("60").spawn().expect("sleep");
    let pid = holder.id();
    let started = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let started: String = started[started.rfind(')').expect(")") + 1..].split_whitespace().nth(19).expect("f22").into();
    record_lock(&m.db, pid, &started);
    let busy = m.signet(&["sign", ORIGIN]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(busy.status.code(), Some(2), "{}", stderr(&busy));
    assert!(stderr(&busy).contains(&format!("sleep (pid {pid})")), "{}", stderr(&busy));
}
