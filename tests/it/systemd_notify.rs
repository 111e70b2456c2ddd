//! `signet serve` under systemd's `Type=notify`: started with
//! `NOTIFY_SOCKET` naming a Unix datagram socket that this test binds (as
//! systemd would), it sends READY=1 once it serves, RELOADING=1 and then
//! READY=1 again on SIGHUP, WATCHDOG=1 when `WATCHDOG_USEC` asks for it,
//! and STOPPING=1 on SIGTERM.

use crate::common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use common::serve::Serve;

/// The socket systemd would listen on, bound in `dir`.
fn notify_socket(dir: &Path) -> (UnixDatagram, std::path::PathBuf) {
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    socket.set_read_timeout(Some(Duration::from_millis(200))).expect("read timeout");
    (socket, path)
}

/// Reads messages until one has a line `wanted`, within `within`; every
/// message read on the way is kept in `seen`.
fn wait_message(socket: &UnixDatagram, wanted: &str, within: Duration, seen: &mut Vec<String>, serve: &Serve) {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < within {
        if let Ok(length) = socket.recv(&mut buffer) {
            let message = String::from_utf8_lossy(&buffer[..length]).into_owned();
            seen.push(message.clone());
            if message.lines().any(|line| line == wanted) {
                return;
            }
        }
    }
    panic!("no {wanted} within {within:?}; messages: {seen:?}\n{}", serve.tail());
}

/// A database with one managed zone (soft keys in `dir/keys`), as serve
/// finds it at a deployment's first start.
fn database_with_a_zone(dir: &Path) -> (common::Store, std::path::PathBuf) {
    let store = common::Store::soft(&dir.join("keys"));
    let db = dir.join("signet.db");
    let (policy, input, output) = (dir.join("p.toml"), dir.join("example.zone"), dir.join("example.signed"));
    std::fs::write(&policy, common::steady_policy(&store, "increment")).expect("write the policy");
    std::fs::write(&input, "$TTL 300\nexample. SOA ns.example. h.example. 1 3600 600 86400 300\nexample. NS ns.example.\nns.example. A 192.0.2.1\n")
        .expect("write the input");
    let path = |p: &Path| p.to_str().expect("path").to_owned();
    for args in [
        vec!["init".to_owned()],
        vec!["policy".into(), "import".into(), path(&policy), "--name".into(), "p".into()],
        vec![
            "zone".into(),
            "add".into(),
            "example.".into(),
            "--policy".into(),
            "p".into(),
            "--input".into(),
            path(&input),
            "--output".into(),
            path(&output),
        ],
    ] {
        common::expect_success(&args.join(" "), &common::run(store.signet().arg("--db").arg(&db).args(&args)));
    }
    (store, db)
}

#[test]
fn serve_tells_systemd_ready_reloading_watchdog_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, db) = database_with_a_zone(dir.path());
    let (socket, path) = notify_socket(dir.path());

    let mut command = store.signet();
    command
        .arg("--db")
        .arg(&db)
        .arg("serve")
        .env("NOTIFY_SOCKET", &path)
        // A watchdog of 400 ms: WATCHDOG=1 every 200 ms.
        .env("WATCHDOG_USEC", "400000");
    let mut serve = Serve::start(command, "notify", None);
    let mut seen = Vec::new();
    wait_message(&socket, "READY=1", Duration::from_secs(30), &mut seen, &serve);
    assert!(seen.iter().any(|m| m.lines().any(|l| l.starts_with("STATUS=serving 1 zone"))), "{seen:?}");
    wait_message(&socket, "WATCHDOG=1", Duration::from_secs(10), &mut seen, &serve);

    serve.signal("HUP");
    wait_message(&socket, "RELOADING=1", Duration::from_secs(10), &mut seen, &serve);
    let reload = seen.last().cloned().unwrap_or_default();
    assert!(reload.lines().any(|l| l.starts_with("MONOTONIC_USEC=")), "RELOADING=1 needs MONOTONIC_USEC: {reload:?}");
    wait_message(&socket, "READY=1", Duration::from_secs(10), &mut seen, &serve);

    serve.signal("TERM");
    wait_message(&socket, "STOPPING=1", Duration::from_secs(10), &mut seen, &serve);
    let status = serve.wait(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "serve after SIGTERM: {status:?}\n{}", serve.tail());
}

#[test]
fn without_notify_socket_serve_runs_as_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("signet.db");
    common::expect_success("init", &common::run(common::signet().arg("--db").arg(&db).arg("init")));
    let mut command = common::signet();
    command.arg("--db").arg(&db).arg("serve").env_remove("NOTIFY_SOCKET").env_remove("WATCHDOG_USEC");
    let serve = Serve::start(command, "plain", None);
    serve.wait_log(&["signet serve started"], Duration::from_secs(30));
    serve.stop();
}
