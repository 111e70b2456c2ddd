//! `signet serve` logs in to a PKCS#11 token once for its life, not at
//! every run: SoftHSM 2 rewrites its `token.object` at each login
//! (truncate, then write), and a crash in that window loses the token
//! with every key in it. Real serve, real SoftHSM: the token's
//! `token.object` stays as it was across runs that sign with its keys.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::serve::{Serve, wait_for, write_by_rename};
use common::{Store, expect_success, run};

const POLICY: &str = r#"
name = "hsm"
[keys]
algorithm = "ECDSAP256SHA256"
ksk-lifetime = "0"
zsk-lifetime = "0"
store = "pkcs11:token=signet"
[denial]
type = "nsec"
[zone]
serial = "increment"
"#;

fn zone_text(serial: u32, address: &str) -> String {
    format!(
        "$ORIGIN a.test.\n$TTL 300\n@ SOA ns1 hostmaster {serial} 60 30 600 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A {address}\n"
    )
}

/// Every token.object under the SoftHSM token directory, with its
/// modification time and inode.
fn token_objects(store: &Path) -> Vec<(PathBuf, SystemTime, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(store).expect("token directory").flatten() {
        let file = entry.path().join("token.object");
        if let Ok(meta) = std::fs::metadata(&file) {
            found.push((file, meta.modified().expect("mtime"), meta.ino()));
        }
    }
    found
}

#[test]
fn serve_logs_in_to_the_token_once_not_at_every_run() {
    if !common::have_tool("softhsm2-util") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::softhsm(&dir.path().join("hsm"));
    let db = dir.path().join("signet.db");
    let signet = |args: &[&str]| {
        let mut command = store.signet();
        command.env("SIGNET_DB", &db).env_remove("SIGNET_NOW").args(args);
        command
    };
    expect_success("init", &run(&mut signet(&["init"])));
    let policy = dir.path().join("hsm.toml");
    std::fs::write(&policy, POLICY).expect("policy");
    expect_success("policy import", &run(signet(&["policy", "import"]).arg(&policy)));
    let input = dir.path().join("a.test.zone");
    let output = dir.path().join("a.test.signed");
    write_by_rename(&input, &zone_text(1, "192.0.2.2"));
    let mut add = signet(&["zone", "add", "a.test.", "--policy", "hsm", "--input"]);
    expect_success("zone add", &run(add.arg(&input).arg("--output").arg(&output)));

    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[serve]\npoll-interval = \"100ms\"\n").expect("config");
    let mut command: Command = signet(&["serve", "--config"]);
    command.arg(&config);
    let serve = Serve::start(command, "hsm-session", None);
    let first = wait_for(Duration::from_secs(30), || Some(common::published_serial(&output)).filter(|&s| s > 0))
        .unwrap_or_else(|_| panic!("no first publication\n{}", serve.tail()));

    // The keys are made and the service is logged in; from now on, runs
    // only sign.
    let tokens = dir.path().join("hsm/store");
    let before = token_objects(&tokens);
    assert_eq!(before.len(), 1, "one token: {before:?}");
    let mut serial = first;
    for round in 2..=4u32 {
        write_by_rename(&input, &zone_text(round, &format!("192.0.2.{round}")));
        serial = wait_for(Duration::from_secs(30), || Some(common::published_serial(&output)).filter(|&s| s > serial))
            .unwrap_or_else(|_| panic!("round {round} not published\n{}", serve.tail()));
        assert!(std::fs::read_to_string(&output).expect("output").contains(&format!("192.0.2.{round}")));
    }
    let after = token_objects(&tokens);
    assert_eq!(
        before, after,
        "token.object was rewritten by the runs after the first (a login each): the service must stay logged in"
    );

    // The token goes away (an HSM unplugged): runs fail, the output stays.
    let away = dir.path().join("hsm/store.away");
    std::fs::rename(&tokens, &away).expect("move the token away");
    write_by_rename(&input, &zone_text(5, "192.0.2.5"));
    serve.wait_log(&["a.test.", "run failed", "token"], Duration::from_secs(30));
    assert_eq!(common::published_serial(&output), serial, "the last good output stays");

    // It comes back: the service logs in to it again (once) and publishes,
    // without a restart; later runs use that session again.
    std::fs::rename(&away, &tokens).expect("move the token back");
    serial = wait_for(Duration::from_secs(30), || Some(common::published_serial(&output)).filter(|&s| s > serial))
        .unwrap_or_else(|_| panic!("nothing published once the token is back\n{}", serve.tail()));
    assert!(std::fs::read_to_string(&output).expect("output").contains("192.0.2.5"));
    let relogged = token_objects(&tokens);
    for round in 6..=7u32 {
        write_by_rename(&input, &zone_text(round, &format!("192.0.2.{round}")));
        serial = wait_for(Duration::from_secs(30), || Some(common::published_serial(&output)).filter(|&s| s > serial))
            .unwrap_or_else(|_| panic!("round {round} not published\n{}", serve.tail()));
    }
    assert_eq!(
        relogged,
        token_objects(&tokens),
        "token.object was rewritten after the token came back: one login for the rest of the service's life"
    );
    serve.stop();
}
