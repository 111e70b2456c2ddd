//! Secrets stay secret: a PIN written into a key URI, in any spelling, on
//! the command line or in a policy, is refused without being printed
//! (whatever the log level) or stored; the database is private (0600)
//! whatever mode the file had.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

const PIN: &str = "S3cretPin4711";

/// Every way a PIN can be written into a URI: path or query, any case,
/// the attribute name percent-encoded, after another error.
fn spellings() -> Vec<String> {
    [
        "pkcs11:token=signet;id=%01?pin-value={pin}",
        "pkcs11:token=signet;id=%01;pin-value={pin}",
        "pkcs11:token=signet;pin-value={pin}",
        "pkcs11:pin-value={pin};token=signet",
        "pkcs11:token=signet;id=%01?PIN-VALUE={pin}",
        "pkcs11:token=signet;id=%01?Pin-Value={pin}&pin-source=env:X",
        "pkcs11:token=signet;id=%01?pin%2Dvalue={pin}",
        "pkcs11:token=signet;id=%01;PIN%2dVALUE={pin}",
        "pkcs11:token=signet;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value={pin}",
        "pkcs11:token=signet;id=%zz?pin-value={pin}",
        "pkcs11:token=signet%3Bpin-value%3D{pin}",
    ]
    .iter()
    .map(|s| s.replace("{pin}", PIN))
    .collect()
}

/// signet at the most verbose, in `dir`, with its database there.
fn signet(dir: &Path, args: &[&str]) -> Output {
    common::run(
        common::signet()
            .current_dir(dir)
            .env("SIGNET_LOG", "trace")
            .env("SIGNET_PKCS11_PIN", "1234")
            .args(["-v", "-v", "-v", "--db"])
            .arg(dir.join("signet.db"))
            .args(args),
    )
}

/// The command was refused (exit 2) and printed nothing of the PIN.
fn assert_refused_quietly(what: &str, output: &Output) {
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!stdout.contains(PIN) && !stderr.contains(PIN), "{what} printed the PIN:\n{stdout}\n{stderr}");
    assert_eq!(output.status.code(), Some(2), "{what} must be refused:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
}

fn database_files(dir: &Path) -> Vec<PathBuf> {
    ["signet.db", "signet.db-wal", "signet.db-shm"].iter().map(|f| dir.join(f)).filter(|f| f.exists()).collect()
}

#[test]
fn a_pin_in_a_uri_is_refused_unprinted_and_unstored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    common::expect_success("signet init", &signet(dir, &["init"]));
    let zone = common::realistic_zone();
    let zone = zone.to_str().expect("utf-8");
    let policy = common::write_policy(dir, "plain", "13", "nsec", "");
    let policy = policy.to_str().expect("utf-8");
    for (i, uri) in spellings().iter().enumerate() {
        let sign = ["sign", zone, "--origin", "example.", "--policy", policy, "-o", "out.zone", "--key"];
        for key in [format!("{uri}:ksk"), uri.clone(), format!("file:k.pk8 {uri}:zsk"), format!("{uri}:nonsense")] {
            assert_refused_quietly(&format!("sign --key {i}"), &signet(dir, &[&sign[..], &[&key]].concat()));
        }
        let generate = ["key", "generate", "--algorithm", "13", "--role", "ksk", "--origin", "example.", "--store"];
        assert_refused_quietly(&format!("key generate {i}"), &signet(dir, &[&generate[..], &[uri]].concat()));
        let file = dir.join(format!("pin{i}.toml"));
        std::fs::write(&file, format!("[keys]\nalgorithm = 13\nstore = \"{uri}\"\n")).expect("write policy");
        let file = file.to_str().expect("utf-8");
        let window = ["--origin", "example.", "--from", "2027-01-01T00:00:00Z", "--until", "2027-01-02T00:00:00Z"];
        let dry_run = [&["dry-run", "--policy", file][..], &window].concat();
        for command in [&["policy", "check", file][..], &["policy", "import", file], &dry_run] {
            let output = signet(dir, command);
            assert_refused_quietly(&format!("{command:?} ({i})"), &output);
            assert!(String::from_utf8_lossy(&output.stderr).contains("keys.store"), "{command:?} names the field");
        }
        let dry_run = [&["dry-run", "--policy", policy][..], &window, &["--key-store", uri]].concat();
        assert_refused_quietly(&format!("dry-run --key-store {i}"), &signet(dir, &dry_run));
    }
    common::expect_success("zone list", &signet(dir, &["zone", "list"]));
    for file in database_files(dir) {
        let bytes = std::fs::read(&file).expect("read the database");
        assert!(!bytes.windows(PIN.len()).any(|w| w == PIN.as_bytes()), "{} holds the PIN", file.display());
    }
}

/// A database that exists with mode 0644 (copied under umask 022, say)
/// ends up 0600, with its WAL and shared-memory files.
#[test]
fn a_world_readable_database_is_made_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    common::expect_success("signet init", &signet(dir, &["init"]));
    // SQLite removes its side files when the last connection closes; an
    // empty WAL and shared-memory file is what a crash can leave.
    for file in ["signet.db", "signet.db-wal", "signet.db-shm"].map(|f| dir.join(f)) {
        if !file.exists() {
            std::fs::write(&file, b"").expect("write");
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod 0644");
    }
    let output = signet(dir, &["zone", "list"]);
    common::expect_success("zone list", &output);
    assert!(String::from_utf8_lossy(&output.stderr).contains("made 0600"), "the operator is told");
    for file in database_files(dir) {
        let mode = std::fs::metadata(&file).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", file.display());
    }
    // An empty file made 0644 beforehand and given to init ends up 0600 too.
    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").expect("write");
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o644)).expect("chmod 0644");
    common::expect_success("init", &common::run(common::signet().arg("--db").arg(&empty).arg("init")));
    assert_eq!(std::fs::metadata(&empty).expect("stat").permissions().mode() & 0o777, 0o600);
}
