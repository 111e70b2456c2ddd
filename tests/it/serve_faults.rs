//! `signet serve` under faults and operator commands, with a real serve
//! process, real SoftHSM and a real SQLite file (the rollovers, SIGTERM
//! in a run and kill -9 are in tests/it/serve.rs):
//!
//! - the HSM's token disappears and comes back: runs fail, the output
//!   stays, then the service publishes again without a restart;
//! - a broken input while the published signatures near expiry: every
//!   failed run says so at error level, and status and the metrics show it;
//! - `zone add` and `zone remove` while serve runs, `zone reload`, SIGHUP
//!   with a changed and with a broken configuration;
//! - `signet status` without a service.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::serve::{Serve, wait_for, write_by_rename};
use common::{Store, expect_success, run};

/// A policy whose signatures come within the refresh margin half a minute
/// after they are made (validity 1 h, the least a policy takes; refresh
/// margin 59 min 30 s), so that a failing zone must warn soon.
const POLICY: &str = r#"
name = "short"
[keys]
algorithm = "ECDSAP256SHA256"
ksk-lifetime = "0"
zsk-lifetime = "0"
dnskey-ttl = "5s"
publish-safety = "2s"
retire-safety = "2s"
store = "pkcs11:token=signet"
[signatures]
validity = "1h"
dnskey-validity = "1h"
refresh = "3570s"
jitter = "5s"
inception-offset = "10s"
[denial]
type = "nsec"
[zone]
propagation-delay = "1s"
max-ttl = "5s"
serial = "increment"
[parent]
ds-ttl = "5s"
propagation-delay = "1s"
registration-delay = "1s"
"#;

fn zone_text(origin: &str, serial: u32, address: &str) -> String {
    format!(
        "$ORIGIN {origin}\n$TTL 5\n@ SOA ns1 hostmaster {serial} 60 30 600 5\n@ NS ns1\nns1 A 192.0.2.1\nwww A {address}\n"
    )
}

struct Setup {
    dir: tempfile::TempDir,
    store: Store,
    db: PathBuf,
}

impl Setup {
    fn new() -> Option<Setup> {
        if !common::have_tool("softhsm2-util") {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::softhsm(&dir.path().join("hsm"));
        let db = dir.path().join("signet.db");
        let setup = Setup { dir, store, db };
        expect_success("init", &run(&mut setup.signet(&["init"])));
        let policy = setup.path("short.toml");
        std::fs::write(&policy, POLICY).expect("policy");
        expect_success("policy import", &run(setup.signet(&["policy", "import"]).arg(&policy)));
        Some(setup)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn signet(&self, args: &[&str]) -> Command {
        let mut command = self.store.signet();
        command.env("SIGNET_DB", &self.db).env_remove("SIGNET_NOW").args(args);
        command
    }

    /// Adds zone `origin` with an input file; returns (input, output).
    fn add_zone(&self, origin: &str) -> (PathBuf, PathBuf) {
        let input = self.path(&format!("{origin}zone"));
        let output = self.path(&format!("{origin}signed"));
        write_by_rename(&input, &zone_text(origin, 1, "192.0.2.2"));
        let mut add = self.signet(&["zone", "add", origin, "--policy", "short", "--input"]);
        add.arg(&input).arg("--output").arg(&output);
        expect_success("zone add", &run(&mut add));
        (input, output)
    }

    fn status(&self, origin: &str) -> serde_json::Value {
        let output = run(&mut self.signet(&["status", origin, "--format", "json"]));
        expect_success("status", &output);
        let all: serde_json::Value = serde_json::from_slice(&output.stdout).expect("status JSON");
        all[0].clone()
    }

    fn serve(&self, config: &Path) -> Serve {
        let mut command = self.signet(&["serve", "--log-format", "json", "--config"]);
        command.arg(config);
        Serve::start(command, "faults", None)
    }
}

fn wait_serial_above(path: &Path, above: u64, within: Duration) -> u64 {
    wait_for(within, || Some(common::published_serial(path)).filter(|&s| s > above))
        .unwrap_or_else(|_| panic!("{} still at serial {above} after {within:?}", path.display()))
}

fn config(setup: &Setup, text: &str) -> PathBuf {
    let path = setup.path("serve.toml");
    std::fs::write(&path, format!("[serve]\nretry-min = \"2s\"\nretry-max = \"4s\"\n{text}")).expect("config");
    path
}

#[test]
fn hsm_that_disappears_and_comes_back_is_picked_up_again() {
    let Some(setup) = Setup::new() else { return };
    let (input, output) = setup.add_zone("a.test.");
    let serve = setup.serve(&config(&setup, ""));
    let first = wait_serial_above(&output, 0, Duration::from_secs(20));
    let published = std::fs::read(&output).expect("output");

    // The token's directory goes away (an HSM unplugged); the input changes.
    let store = setup.path("hsm/store");
    let away = setup.path("hsm/store.away");
    std::fs::rename(&store, &away).expect("move the token away");
    write_by_rename(&input, &zone_text("a.test.", 2, "192.0.2.3"));
    serve.wait_log(&["a.test.", "run failed", "token"], Duration::from_secs(10));
    let status = setup.status("a.test.");
    assert!(status["consecutive_failures"].as_i64() >= Some(1), "status shows the failures: {status}");
    assert!(status["last_failure"]["message"].as_str().is_some_and(|m| m.contains("token")), "{status}");
    assert_eq!(std::fs::read(&output).expect("output"), published, "the last good output stays");

    // The token comes back: a retry publishes, without a restart.
    std::fs::rename(&away, &store).expect("move the token back");
    let second = wait_serial_above(&output, first, Duration::from_secs(20));
    assert!(std::fs::read_to_string(&output).expect("output").contains("192.0.2.3"));
    let status = setup.status("a.test.");
    assert_eq!(status["consecutive_failures"], 0, "{status}");
    assert_eq!(status["published_serial"].as_u64(), Some(second));
    serve.stop();
}

#[test]
fn failing_zone_near_expiry_says_so_every_run() {
    let Some(setup) = Setup::new() else { return };
    let (input, output) = setup.add_zone("a.test.");
    let metrics_port = common::dns_servers::free_port();
    let serve = setup.serve(&config(&setup, &format!("metrics = \"127.0.0.1:{metrics_port}\"\n")));
    wait_serial_above(&output, 0, Duration::from_secs(20));
    let published = std::fs::read(&output).expect("output");
    std::fs::write(&input, "$ORIGIN a.test.\n@ SOA ns1 hostmaster 2 60 30 600 5\n@ NS ns1\nwww A not-an-address\n")
        .expect("break the input");
    serve.wait_log(&["a.test.", "run failed", "not-an-address"], Duration::from_secs(10));
    // Validity 1 h less up to 5 s of jitter, refresh margin 59 min 30 s:
    // within 30 s the signatures are inside the margin, and every failed
    // run from then on must say so.
    serve.wait_log(&["a.test.", "ERROR", "expire", "runs keep failing"], Duration::from_secs(45));
    let status = setup.status("a.test.");
    assert_eq!(status["signatures_expiring"], true, "{status}");
    assert!(status["next_wake"]["why"].as_str().is_some_and(|w| w.contains("retry")), "{status}");
    let metrics = http_get(metrics_port, "/metrics");
    assert!(metrics.contains("signet_zone_signature_expiry_timestamp_seconds{zone=\"a.test.\"}"), "{metrics}");
    assert!(metrics.contains("signet_zone_signatures_expiring{zone=\"a.test.\"} 1"), "{metrics}");
    let published_at = status["last_run"]["at"].as_i64().unwrap_or(0);
    assert!(
        !metrics
            .contains(&format!("signet_zone_last_publication_timestamp_seconds{{zone=\"a.test.\"}} {published_at}")),
        "the last publication is not the last (failed) run: {metrics}"
    );
    assert_eq!(std::fs::read(&output).expect("output"), published, "the last good output stays");
    let before = serve.count(&["runs keep failing"]);
    serve.wait_log(&["run started", "retry"], Duration::from_secs(10));
    wait_for(Duration::from_secs(10), || Some(()).filter(|()| serve.count(&["runs keep failing"]) > before))
        .unwrap_or_else(|_| panic!("a later failed run did not warn again\n{}", serve.tail()));
    serve.stop();
}

#[test]
fn operator_commands_reach_a_running_service() {
    let Some(setup) = Setup::new() else { return };
    let (_, a_output) = setup.add_zone("a.test.");

    // Status works without a service.
    let status = setup.status("a.test.");
    assert!(status["service"].is_null() && status["last_run"].is_null(), "{status}");

    let config_path = config(&setup, "");
    let serve = setup.serve(&config_path);
    let a_serial = wait_serial_above(&a_output, 0, Duration::from_secs(20));
    assert!(setup.status("a.test.")["service"]["pid"].as_u64() == Some(u64::from(serve.pid)));

    // zone add: served within a poll; zone remove: its task stops.
    let (_, b_output) = setup.add_zone("b.test.");
    wait_serial_above(&b_output, 0, Duration::from_secs(20));
    expect_success("zone remove", &run(&mut setup.signet(&["zone", "remove", "b.test."])));
    serve.wait_log(&["b.test.", "left management"], Duration::from_secs(5));
    let listed = run(&mut setup.signet(&["zone", "list"]));
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("b.test."));

    // zone reload: a run even though the input did not change.
    let started = serve.count(&["a.test.", "run started"]);
    expect_success("zone reload", &run(&mut setup.signet(&["zone", "reload", "a.test."])));
    serve.wait_log(&["a.test.", "run started", "reload"], Duration::from_secs(5));
    wait_serial_above(&a_output, a_serial, Duration::from_secs(10));
    assert!(serve.count(&["a.test.", "run started"]) > started);

    // SIGHUP: a broken configuration is refused and the old one kept; a
    // good one is taken.
    std::fs::write(&config_path, "[serve]\nretry-min = \"never\"\n").expect("config");
    serve.signal("HUP");
    serve.wait_log(&["SIGHUP", "unchanged", "retry-min"], Duration::from_secs(5));
    std::fs::write(&config_path, "[serve]\nretry-min = \"3s\"\n").expect("config");
    serve.signal("HUP");
    serve.wait_log(&["SIGHUP", "read again"], Duration::from_secs(5));
    assert_eq!(serve.count(&["panicked"]), 0, "{}", serve.tail());
    serve.stop();
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics endpoint");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}
