//! How the command line behaves at its edges (issue 11, parts 4 and 5):
//! a closed pipe ends a command quietly, `--format json` errors are JSON,
//! no colour goes into a pipe, an error chain is printed once, a rollover
//! of a role the zone does not use is refused, and a failed run is
//! recorded.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const ORIGIN: &str = "example.";
const NOW: &str = "2026-12-01T00:00:00Z";

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A database with zone `example.` under a KSK+ZSK policy whose key
/// store is `store`.
fn managed(dir: &Path, store: &str) -> PathBuf {
    let policy = common::write_policy(dir, "policy", "13", "nsec", &format!("store = \"{store}\""));
    let db = dir.join("signet.db");
    let signet = |args: &[&str]| {
        let output = common::run(common::signet().arg("--db").arg(&db).args(["--now", NOW]).args(args));
        common::expect_success(&format!("signet {}", args.join(" ")), &output);
    };
    signet(&["init"]);
    signet(&["policy", "import", policy.to_str().expect("path"), "--name", "p"]);
    let input = common::realistic_zone();
    let output = dir.join("example.signed");
    let (input, output) = (input.to_str().expect("path"), output.to_str().expect("path"));
    signet(&["zone", "add", ORIGIN, "--policy", "p", "--input", input, "--output", output]);
    db
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    // The reading end is closed before signet writes its first line.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let zone = common::realistic_zone();
    let output = common::run(
        common::signet()
            .args(["verify", "--origin", ORIGIN])
            .arg(&zone)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped()),
    );
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    assert_eq!(output.status.code(), Some(141), "{}", stderr(&output));
}

#[test]
fn json_errors_are_json_on_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.db");
    let output = common::run(common::signet().arg("--db").arg(&missing).args(["zone", "list", "--format", "json"]));
    assert_eq!(output.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a JSON error on stdout");
    let message = json["error"]["message"].as_str().expect("a message");
    assert!(message.contains("signet init"), "{message}");
    assert_eq!(json["error"]["exit_code"], 2);
}

#[test]
fn no_colour_goes_into_a_pipe() {
    let output = common::run(
        common::signet()
            .args(["-v", "-v", "verify", "--origin", ORIGIN])
            .arg(common::realistic_zone())
            .env_remove("NO_COLOR"),
    );
    let text = stderr(&output);
    assert!(text.contains("INFO") || text.contains("DEBUG"), "logs expected: {text}");
    assert!(!text.contains('\u{1b}'), "ANSI escapes in a pipe: {text:?}");
}

#[test]
fn an_error_chain_is_printed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = common::write_policy(dir.path(), "policy", "13", "nsec", "");
    let missing = dir.path().join("missing.pk8");
    let output = common::run(
        common::signet()
            .arg("sign")
            .arg(common::realistic_zone())
            .args(["--origin", ORIGIN, "--policy", policy.to_str().expect("path")])
            .args(["--key", &format!("file:{}:csk", missing.display())])
            .arg("-o")
            .arg(dir.path().join("out.zone")),
    );
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert_eq!(text.matches("No such file or directory").count(), 1, "{text}");
}

#[test]
fn a_rollover_of_a_role_the_zone_does_not_use_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).expect("mkdir");
    let db = managed(dir.path(), &format!("file:{}", keys.display()));
    let output =
        common::run(common::signet().arg("--db").arg(&db).args(["--now", NOW, "key", "rollover", ORIGIN, "--csk"]));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("no csk"), "{}", stderr(&output));
}

#[test]
fn a_failed_run_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A key store that cannot be made: a file stands where its directory would be.
    let store = dir.path().join("not-a-directory");
    std::fs::write(&store, "").expect("write file");
    let db = managed(dir.path(), &format!("file:{}", store.display()));
    let sign = common::run(common::signet().arg("--db").arg(&db).args(["--now", NOW, "sign", ORIGIN]));
    assert_eq!(sign.status.code(), Some(2), "{}", stderr(&sign));
    let status = common::run(
        Command::new(env!("CARGO_BIN_EXE_signet"))
            .arg("--db")
            .arg(&db)
            .args(["zone", "status", ORIGIN, "--format", "json"]),
    );
    common::expect_success("zone status", &status);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    let runs = json["runs"].as_array().expect("runs");
    assert!(runs.iter().any(|r| r["result"] == "failed"), "{runs:?}");
}

#[test]
fn one_shot_keys_of_another_algorithm_than_the_policy_are_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::Store::soft(&dir.path().join("keys"));
    let csk = store.generate("13", "csk", "csk");
    let policy = common::write_policy(dir.path(), "policy", "15", "nsec", "csk = true");
    let output = common::run(
        store
            .signet()
            .arg("sign")
            .arg(common::realistic_zone())
            .args(["--origin", ORIGIN, "--policy", policy.to_str().expect("path")])
            .args(["--key", &format!("{csk}:csk")])
            .arg("-o")
            .arg(dir.path().join("out.zone")),
    );
    common::expect_success("sign", &output);
    assert!(stderr(&output).contains("not of the policy's keys.algorithm"), "{}", stderr(&output));
}

#[test]
fn a_key_or_pin_file_that_is_not_a_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo");
    let made = common::run(Command::new("mkfifo").arg("-m").arg("600").arg(&fifo));
    common::expect_success("mkfifo", &made);
    let policy = common::write_policy(dir.path(), "policy", "13", "nsec", "csk = true");
    let started = std::time::Instant::now();
    let output = common::run(
        common::signet()
            .arg("sign")
            .arg(common::realistic_zone())
            .args(["--origin", ORIGIN, "--policy", policy.to_str().expect("path")])
            .args(["--key", &format!("file:{}:csk", fifo.display())])
            .arg("-o")
            .arg(dir.path().join("out.zone")),
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("not a regular file"), "{}", stderr(&output));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
