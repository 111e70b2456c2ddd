//! `signet serve` survives a full disk under its database: a run whose
//! commit fails with "database or disk is full" is reported and leaves
//! the output, the served zone and the database in agreement (the
//! version before stays everywhere); once there is room, the next run
//! publishes, without a restart.
//!
//! The database lives on a small tmpfs of its own, mounted in a user and
//! mount namespace (`unshare --user --map-root-user --mount`, no
//! privilege needed) in which serve runs; the test reaches it through
//! `/proc/PID/root` and fills it with a file until it is full. The
//! output is on the ordinary file system, with room: only the commit
//! fails.

use crate::common;

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::dns_servers;
use common::serve::{Serve, wait_for, write_by_rename};
use common::{expect_success, run};

const ZONE: &str = "a.test.";

fn policy(keys: &Path) -> String {
    format!(
        r#"
name = "full"
[keys]
algorithm = "ED25519"
ksk-lifetime = "0"
zsk-lifetime = "0"
store = "file:{}"
[denial]
type = "nsec"
[zone]
serial = "increment"
"#,
        keys.display()
    )
}

/// The zone, with `hosts` A records more than its apex needs: a version
/// with many more of them makes a commit larger than any before, which
/// must find new room in the database's write-ahead log.
fn zone_text(serial: u32, hosts: u32) -> String {
    let mut text =
        format!("$ORIGIN {ZONE}\n$TTL 300\n@ SOA ns1 hostmaster {serial} 60 30 600 300\n@ NS ns1\nns1 A 192.0.2.1\n");
    for i in 0..hosts {
        text.push_str(&format!("host{i} A 198.51.{}.{}\n", i / 250, i % 250 + 1));
    }
    text
}

/// `signet status` of the zone, run in serve's namespaces (where the
/// database's tmpfs is mounted).
fn status(pid: u32, db: &Path) -> Option<serde_json::Value> {
    let output = run(Command::new("nsenter")
        .args(["--target", &pid.to_string(), "--user", "--mount", "--preserve-credentials"])
        .arg(env!("CARGO_BIN_EXE_signet"))
        .args(["status", ZONE, "--format", "json"])
        .env("SIGNET_DB", db));
    if !output.status.success() {
        eprintln!(
            "status: {:?} {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let all: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    Some(all[0].clone())
}

/// Fills the file system of `dir` with a file until a write fails (the
/// file system is full), then gives `room` bytes back; returns the file.
/// The room lets small transactions through (a run takes the zone's lock
/// and records itself) but not a commit that needs more.
fn fill(dir: &Path, room: u64) -> PathBuf {
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).expect("filler");
    let block = vec![0xa5u8; 64 * 1024];
    loop {
        if file.write_all(&block).and_then(|()| file.flush()).is_err() {
            break;
        }
    }
    // And the last crumbs, byte by byte.
    while file.write_all(&[0]).is_ok() {}
    let size = file.metadata().expect("filler size").len();
    file.set_len(size.saturating_sub(room)).expect("room");
    filler
}

#[test]
fn a_full_disk_under_the_database_is_survived_without_a_restart() {
    if !common::have_tool("unshare") || !common::have_tool("dig") {
        return;
    }
    // Can this machine make a user and mount namespace with a tmpfs?
    let probe = run(Command::new("unshare").args([
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        "mount -t tmpfs -o size=1m tmpfs /mnt",
    ]));
    if !probe.status.success() {
        eprintln!(
            "note: cannot mount a tmpfs in a user namespace here ({}): skipped",
            String::from_utf8_lossy(&probe.stderr).trim()
        );
        return;
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name);
    let keys = path("keys");
    std::fs::create_dir(&keys).expect("keys");
    std::fs::set_permissions(&keys, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
    // The database is made in `setup`, then copied to the tmpfs at `db`.
    std::fs::create_dir(path("setup")).expect("setup");
    std::fs::create_dir(path("db")).expect("db");
    let setup_db = path("setup/signet.db");
    let signet = |args: &[&str]| {
        let mut command = common::signet();
        command.env("SIGNET_DB", &setup_db).env_remove("SIGNET_NOW").args(args);
        command
    };
    expect_success("init", &run(&mut signet(&["init"])));
    let policy_file = path("full.toml");
    std::fs::write(&policy_file, policy(&keys)).expect("policy");
    expect_success("policy import", &run(signet(&["policy", "import"]).arg(&policy_file)));
    let (input, output) = (path("a.test.zone"), path("a.test.signed"));
    write_by_rename(&input, &zone_text(1, 10));
    let mut add = signet(&["zone", "add", ZONE, "--policy", "full", "--input"]);
    expect_success("zone add", &run(add.arg(&input).arg("--output").arg(&output)));
    // The test asks serve for the zone's SOA from 127.0.0.1.
    expect_success("zone acl add", &run(&mut signet(&["zone", "acl", "add", ZONE, "127.0.0.1/32"])));
    let config = path("serve.toml");
    std::fs::write(&config, "[serve]\npoll-interval = \"100ms\"\nretry-min = \"1s\"\nretry-max = \"2s\"\n")
        .expect("config");

    // serve, in a namespace of its own with the database on an 8 MiB
    // tmpfs (exec: the pid is serve's).
    let listen = dns_servers::free_addr(IpAddr::from([127, 0, 0, 9]));
    let db_dir = path("db");
    // The database with its write-ahead log, if the last command left one.
    let script = "mount -t tmpfs -o size=8m tmpfs \"$1\" && cp \"$2\" \"$1/\" \
        && { [ ! -e \"$2-wal\" ] || cp \"$2-wal\" \"$1/\"; } && shift 2 && exec \"$@\"";
    let mut command = Command::new("unshare");
    command
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"])
        .arg(&db_dir)
        .arg(&setup_db)
        .arg(env!("CARGO_BIN_EXE_signet"))
        .args(["serve", "--listen", &listen.to_string(), "--config"])
        .arg(&config)
        .env("SIGNET_DB", db_dir.join("signet.db"))
        .env_remove("SIGNET_NOW");
    let serve = Serve::start(command, "disk-full", None);
    // The tmpfs as the test sees it: through serve's root.
    let tmpfs = PathBuf::from(format!("/proc/{}/root{}", serve.pid, db_dir.display()));

    let first = wait_for(Duration::from_secs(30), || Some(common::published_serial(&output)).filter(|&s| s > 0))
        .unwrap_or_else(|_| panic!("no first publication\n{}", serve.tail()));
    let served = |serial: u64| {
        wait_for(Duration::from_secs(10), || dns_servers::soa_serial(listen, ZONE).filter(|&s| u64::from(s) == serial))
            .is_ok()
    };
    assert!(served(first), "serve does not serve serial {first}\n{}", serve.tail());
    let before = std::fs::read(&output).expect("output");

    // The disk under the database fills up; a bigger version arrives.
    let filler = fill(&tmpfs, 256 * 1024);
    write_by_rename(&input, &zone_text(2, 3000));
    serve.wait_log(&[ZONE, "run failed", "disk is full"], Duration::from_secs(60));
    // It was the commit that failed, and the service commits before it
    // serves or writes anything: nothing was put at the output to undo.
    assert_eq!(serve.count(&["could not be recorded"]), 0, "{}", serve.tail());
    // The failed commit left everything at the version before: the
    // output, what is served, what is stored.
    assert_eq!(std::fs::read(&output).expect("output"), before, "the output is the version before\n{}", serve.tail());
    assert!(served(first), "serve still serves serial {first}\n{}", serve.tail());
    let stored = wait_for(Duration::from_secs(10), || status(serve.pid, &db_dir.join("signet.db")))
        .expect("status on the full database");
    assert_eq!(stored["published_serial"].as_u64(), Some(first), "{stored}");
    assert_eq!(stored["served_serial"].as_u64(), Some(first), "{stored}");
    // The failed run is recorded (the room left takes a run row).
    assert_eq!(stored["last_run"]["result"], "failed", "{stored}");
    assert!(stored["last_run"]["message"].as_str().is_some_and(|m| m.contains("disk is full")), "{stored}");
    // It keeps failing on the full disk, for the same reason (a second
    // failed run, not a connection left unusable by the first).
    wait_for(Duration::from_secs(30), || (serve.count(&[ZONE, "run failed", "disk is full"]) >= 2).then_some(()))
        .unwrap_or_else(|_| panic!("no second run on the full disk\n{}", serve.tail()));
    assert_eq!(std::fs::read(&output).expect("output"), before);

    // Room again: a retry publishes the new version, without a restart,
    // and output, served zone and record agree.
    std::fs::remove_file(&filler).expect("remove the filler");
    let second = wait_for(Duration::from_secs(30), || Some(common::published_serial(&output)).filter(|&s| s > first))
        .unwrap_or_else(|_| panic!("nothing published once there is room\n{}", serve.tail()));
    assert!(std::fs::read_to_string(&output).expect("output").contains("host2999"));
    assert!(served(second), "serve does not serve serial {second}\n{}", serve.tail());
    let stored = wait_for(Duration::from_secs(10), || status(serve.pid, &db_dir.join("signet.db"))).expect("status");
    assert_eq!(stored["published_serial"].as_u64(), Some(second), "{stored}");
    assert_eq!(stored["consecutive_failures"], 0, "{stored}");
    assert_eq!(common::published_serial(&output), second, "the output is what is stored and served");
    let lines = serve.lines();
    assert!(
        !lines.iter().any(|l| l.contains("transaction depth")),
        "a connection was left in a transaction\n{}",
        serve.tail()
    );
    serve.stop();
}
