//! signet deployed as an operator deploys it (issue 23): a hidden primary
//! (BIND `named`), `signet serve`, and three secondaries (NSD, knotd,
//! named), each server on an address of its own in 127.0.0.0/8 (for the
//! test with named, 127.53.0.x in a network namespace of the test's own:
//! `in_own_network`; NSD alone: a random `127.X.Y.0`), TSIG on every hop, and access lists by
//! address: named allows transfers only to signet's address with the key,
//! each secondary takes NOTIFY only from signet's address (RFC 1996
//! §3.10). A message from the wrong source address fails the test: on one
//! host a socket bound to the wildcard leaves from 127.0.0.1, which none of
//! them knows.
//!
//! - `five_kinds_of_change_reach_every_secondary_by_ixfr`: a delegation
//!   added, one removed, an A record changed, a DS added to a delegation,
//!   the MX and a TTL changed, each at named; each reaches all three
//!   secondaries by IXFR (signet's record of what each transferred), every
//!   copy (AXFR from the secondary) passes `signet verify` at the wall
//!   clock's time, and the time from the change at named to all three
//!   serving it is measured and printed.
//! - `notify_from_the_wrong_source_is_refused_by_every_secondary`: the
//!   same deployment with signet's NOTIFYs leaving from 127.0.0.1, as they
//!   did before the fix: NSD, named and knotd refuse them (REFUSED,
//!   REFUSED, NOTAUTH/BADKEY, and their logs say so), signet gives up
//!   after two tries each and no secondary takes the change.
//! - `a_secondary_that_knows_another_address_refuses`: NSD whose access
//!   list names another address refuses signet's NOTIFY; signet gives up
//!   after two tries with one error line that names the source address as
//!   the likely cause, `signet status` says what NSD answered, and the next
//!   publication tries again.

use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::dns_servers::{self, Server, Tsig};
use common::serve::{Serve, wait_for, write_by_rename};
use common::{Store, expect_success, have_tool, run};

const ZONE: &str = "example.test.";
/// How long a change may take from named to every secondary.
const PROPAGATION: Duration = Duration::from_secs(30);

/// The unsigned zone, one state of it; its SOA on one line.
#[derive(Debug, Clone)]
struct Content {
    serial: u32,
    /// Delegations: (label, with a DS).
    delegations: Vec<(String, bool)>,
    www: String,
    mx: String,
    mx_ttl: u32,
}

impl Content {
    fn text(&self) -> String {
        let mut text = format!(
            "$ORIGIN {ZONE}\n$TTL 300\n@ IN SOA ns1 hostmaster {} 3600 600 86400 300\n@ NS ns1\n@ NS ns2\n\
             ns1 A 192.0.2.1\nns2 A 192.0.2.2\nwww A {}\n@ {} MX {}\n",
            self.serial, self.www, self.mx_ttl, self.mx
        );
        for (label, ds) in &self.delegations {
            text.push_str(&format!("{label} NS ns.{label}\nns.{label} A 198.51.100.53\n"));
            if *ds {
                text.push_str(&format!(
                    "{label} DS 12345 13 2 {}\n",
                    "49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE4B4A8C6F5AA0C9A0A3D6D1A2"
                ));
            }
        }
        for i in 0..100 {
            text.push_str(&format!("h{i} A 198.51.{}.{}\n", i / 250, i % 250 + 1));
        }
        text
    }
}

fn tools() -> bool {
    ["nsd", "knotd", "named", "rndc", "dig"].iter().all(|t| have_tool(t))
}

/// A database with the policy, and signet's address.
struct Env {
    dir: tempfile::TempDir,
    store: Store,
    db: PathBuf,
    config: PathBuf,
    listen: SocketAddr,
    output: PathBuf,
    serve: Option<Serve>,
}

impl Env {
    fn new(listen: SocketAddr) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::soft(&dir.path().join("keys"));
        let config = dir.path().join("serve.toml");
        std::fs::write(&config, "[serve]\nretry-min = \"1s\"\nretry-max = \"4s\"\nstop-timeout = \"5s\"\n")
            .expect("write the serve config");
        let env = Env {
            db: dir.path().join("signet.db"),
            output: dir.path().join("example.signed"),
            listen,
            dir,
            store,
            config,
            serve: None,
        };
        env.ok(&["init"]);
        let policy_file = env.path("p.toml");
        std::fs::write(&policy_file, common::steady_policy(&env.store, "increment")).expect("write policy");
        env.ok(&["policy", "import", policy_file.to_str().expect("path"), "--name", "p"]);
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn signet(&self, args: &[&str]) -> Output {
        run(&mut self.store.on_db(&self.db, args))
    }

    fn ok(&self, args: &[&str]) -> Output {
        self.store.ok_on(&self.db, args)
    }

    fn add_tsig(&self, key: &Tsig) {
        let file = self.path(&format!("{}.key", key.name));
        key.write_secret_file(&file);
        self.ok(&["tsig", "add", &key.name, "--secret-file", file.to_str().expect("path")]);
    }

    fn add_secondary(&self, addr: SocketAddr, tsig: &Tsig) {
        self.ok(&["zone", "secondary", "add", ZONE, &addr.to_string(), "--tsig", &tsig.name]);
    }

    fn start_serve(&mut self) {
        let mut command = self.store.on_db(&self.db, &[]);
        command.args(["serve", "--config", self.config.to_str().expect("path"), "--listen", &self.listen.to_string()]);
        self.serve = Some(Serve::start(command, "deployment", Some(self.path("serve.log"))));
    }

    fn serve(&self) -> &Serve {
        self.serve.as_ref().expect("serve runs")
    }

    fn status(&self) -> serde_json::Value {
        let output = self.signet(&["status", ZONE, "--format", "json"]);
        serde_json::from_slice::<serde_json::Value>(&output.stdout)
            .ok()
            .and_then(|all| all.as_array().and_then(|a| a.first()).cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    fn published_serial(&self) -> Option<u32> {
        self.status()["published_serial"].as_u64().map(|s| s as u32)
    }

    fn context(&self, servers: &[&Server]) -> String {
        let mut text = self.serve.as_ref().map_or("signet serve is not running".to_owned(), Serve::tail);
        text.push_str(&format!("\nstatus: {:#}", self.status()));
        for server in servers {
            text.push_str("\n\n");
            text.push_str(&server.describe());
        }
        text
    }

    /// Waits for a publication of a serial other than `not`.
    fn wait_published(&self, not: Option<u32>, servers: &[&Server]) -> u32 {
        wait_for(PROPAGATION, || {
            let serial = self.published_serial().filter(|s| Some(*s) != not)?;
            let text = std::fs::read_to_string(&self.output).ok()?;
            (dns_servers::text_serial(&text) == Some(serial)).then_some(serial)
        })
        .unwrap_or_else(|w| {
            panic!("expected a publication after {not:?} within {w:?}\n{}", self.context(servers));
        })
    }

    /// The secondary's copy (AXFR from it) has `serial`, holds `expect`
    /// (and not `absent`), and passes `signet verify` now.
    fn check_copy(&self, server: &Server, serial: u32, expect: &[&str], absent: &[&str]) {
        let text = dns_servers::axfr_text(server.addr(), ZONE, None);
        let kind = server.kind();
        assert_eq!(dns_servers::text_serial(&text), Some(serial), "{kind:?}'s copy\n{}", self.context(&[server]));
        let squeezed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for needle in expect {
            assert!(squeezed.contains(needle), "{kind:?}'s copy of {serial}: expected {needle:?}, got:\n{text}");
        }
        for needle in absent {
            assert!(!squeezed.contains(needle), "{kind:?}'s copy of {serial}: expected no {needle:?}, got:\n{text}");
        }
        let file = self.path(&format!("{kind:?}-{serial}.zone"));
        std::fs::write(&file, &text).expect("write the copy");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
        let verify =
            self.signet(&["verify", file.to_str().expect("path"), "--origin", ZONE, "--now", &now.to_string()]);
        expect_success(&format!("signet verify of {kind:?}'s copy {}", file.display()), &verify);
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut serve) = self.serve.take() {
            serve.kill_9();
        }
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("kept for inspection: {}", self.dir.path().display());
        }
    }
}

/// The `secondaries` entry of status for `addr`.
fn secondary_status(status: &serde_json::Value, addr: SocketAddr) -> serde_json::Value {
    status["secondaries"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["address"] == addr.to_string()).cloned())
        .unwrap_or(serde_json::Value::Null)
}

/// Set in the copy of the test binary run inside the network namespace.
const IN_NAMESPACE: &str = "SIGNET_TEST_NETNS";
/// The addresses the namespace's loopback carries: `127.53.0.1` to
/// `127.53.0.20`.
fn namespace_addr(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 53, 0, n))
}

/// named listens only on the addresses of an interface (it scans them;
/// `listen-on` filters), and the host's loopback carries 127.0.0.1 alone:
/// a test that runs named on an address of its own needs that address on
/// an interface. Rather than change the host's, the test runs itself again
/// in a network namespace of its own (`unshare -rn`: a user namespace maps
/// the caller to root there, so no privilege is needed), whose loopback it
/// brings up with `127.53.0.1`–`127.53.0.20`. Returns true in that copy
/// (run the test), false in the caller once the copy ended (its output
/// printed, its failure this test's failure), or false with a note when
/// no namespace can be made.
fn in_own_network(test: &str) -> bool {
    if std::env::var_os(IN_NAMESPACE).is_some() {
        return true;
    }
    let mut script = String::from("set -e; ip link set lo up; ");
    for n in 1..=20 {
        script.push_str(&format!("ip addr add {}/32 dev lo; ", namespace_addr(n)));
    }
    script.push_str("exec \"$0\" \"$@\"");
    let exe = std::env::current_exe().expect("the test binary");
    let probe =
        run(Command::new("unshare").args(["-rn", "sh", "-c", "ip link set lo up && ip addr add 127.53.0.1/32 dev lo"]));
    if !probe.status.success() {
        eprintln!(
            "note: {test} skipped: no network namespace (unshare -rn: {})",
            String::from_utf8_lossy(&probe.stderr).trim()
        );
        return false;
    }
    // The test's full name in the test binary: its module path without
    // the crate's name.
    let module = module_path!().split_once("::").map_or("", |(_, module)| module);
    let full_name = format!("{module}::{test}");
    let output = run(Command::new("unshare")
        .args(["-rn", "sh", "-c", &script])
        .arg(exe)
        .args([full_name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(IN_NAMESPACE, "1"));
    eprint!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{test} failed in its network namespace (output above)");
    let ran = String::from_utf8_lossy(&output.stdout).contains("1 passed");
    assert!(ran, "{test}: the copy in the namespace did not run it (output above)");
    false
}

#[test]
fn five_kinds_of_change_reach_every_secondary_by_ixfr() {
    deployment("five_kinds_of_change_reach_every_secondary_by_ixfr", None);
}

/// The same deployment with signet's NOTIFYs leaving from 127.0.0.1, what
/// a socket bound to the wildcard used before the fix (issue 23): every
/// secondary refuses them (NSD "refused, no acl matches", named "refused
/// notify from non-primary", knotd NOTAUTH/BADKEY), signet gives up after
/// two tries each with one error line, status says what each answered,
/// and no secondary takes the change.
#[test]
fn notify_from_the_wrong_source_is_refused_by_every_secondary() {
    deployment("notify_from_the_wrong_source_is_refused_by_every_secondary", Some("127.0.0.1"));
}

/// The deployment; with `notify_source`, signet's NOTIFYs leave from that
/// address and the test checks they are refused.
fn deployment(test: &str, notify_source: Option<&str>) {
    if !tools() {
        eprintln!("note: deployment test skipped: it needs nsd, knotd, named, rndc and dig");
        return;
    }
    if !in_own_network(test) {
        return;
    }
    let started = Instant::now();
    let base = namespace_addr;
    let primary_addr = dns_servers::free_addr(base(2));
    let signet_addr = dns_servers::free_addr(base(3));
    let nsd_addr = dns_servers::free_addr(base(4));
    let knot_addr = dns_servers::free_addr(base(5));
    let named_addr = dns_servers::free_addr(base(6));
    eprintln!(
        "primary named {primary_addr}, signet {signet_addr}, secondaries NSD {nsd_addr}, knotd {knot_addr}, named {named_addr}"
    );
    let mut env = Env::new(signet_addr);
    let keys = [
        Tsig::generate("primary-key"),
        Tsig::generate("nsd-key"),
        Tsig::generate("knot-key"),
        Tsig::generate("named-key"),
    ];
    for key in &keys {
        env.add_tsig(key);
    }
    let [primary_key, nsd_key, knot_key, named_key] = &keys;
    let mut content = Content {
        serial: 100,
        delegations: vec![("child1".into(), false), ("child2".into(), false)],
        www: "192.0.2.80".into(),
        mx: "10 mail".into(),
        mx_ttl: 300,
    };
    let primary = dns_servers::named_primary_on(
        primary_addr,
        &env.path("primary"),
        ZONE,
        &content.text(),
        &[signet_addr],
        Some(primary_key),
        Some(signet_addr.ip()),
    );
    let output = env.output.to_str().expect("path").to_owned();
    let primary_text = primary_addr.to_string();
    env.ok(&[
        "zone",
        "add",
        ZONE,
        "--policy",
        "p",
        "--output",
        &output,
        "--primary",
        &primary_text,
        "--tsig",
        &primary_key.name,
    ]);
    if let Some(source) = notify_source {
        env.ok(&["zone", "notify-source", ZONE, source]);
    }
    env.add_secondary(nsd_addr, nsd_key);
    env.add_secondary(knot_addr, knot_key);
    env.add_secondary(named_addr, named_key);
    env.start_serve();
    let first = env.wait_published(None, &[&primary]);
    eprintln!("first publication (serial {first}) after {:?}", started.elapsed());

    let nsd = dns_servers::nsd_secondary_at(nsd_addr, &env.path("nsd"), ZONE, signet_addr, Some(nsd_key));
    let knot = dns_servers::knotd_secondary_at(knot_addr, &env.path("knot"), ZONE, signet_addr, Some(knot_key));
    let named = dns_servers::named_secondary_at(named_addr, &env.path("named"), ZONE, signet_addr, Some(named_key));
    let all = [&primary, &nsd, &knot, &named];
    for secondary in [&nsd, &knot, &named] {
        dns_servers::wait_serial(secondary, ZONE, first, PROPAGATION);
        env.check_copy(secondary, first, &["child1.example.test. 300 IN NS"], &[]);
    }

    type Change = (&'static str, fn(&mut Content), &'static [&'static str], &'static [&'static str]);
    let changes: [Change; 5] = [
        (
            "add a delegation",
            |c| c.delegations.push(("child3".into(), false)),
            &["child3.example.test. 300 IN NS ns.child3"],
            &[],
        ),
        ("remove a delegation", |c| c.delegations.retain(|(l, _)| l != "child2"), &[], &["child2.example.test."]),
        (
            "change an A record",
            |c| c.www = "192.0.2.81".into(),
            &["www.example.test. 300 IN A 192.0.2.81"],
            &["192.0.2.80"],
        ),
        (
            "add a DS to a delegation",
            |c| c.delegations.iter_mut().filter(|(l, _)| l == "child1").for_each(|d| d.1 = true),
            &["child1.example.test. 300 IN DS 12345 13 2"],
            &[],
        ),
        (
            "change the MX and its TTL",
            |c| {
                c.mx = "20 mail2".into();
                c.mx_ttl = 600;
            },
            &["example.test. 600 IN MX 20 mail2.example.test."],
            &["10 mail.example.test."],
        ),
    ];
    if notify_source.is_some() {
        wrong_source(&env, &mut content, &primary, [&nsd, &knot, &named], first);
        return;
    }
    let mut published = first;
    let mut timings = Vec::new();
    for (what, change, expect, absent) in changes {
        change(&mut content);
        content.serial += 1;
        let at = Instant::now();
        primary.reload(&content.text());
        let serial = env.wait_published(Some(published), &all);
        let signed_after = at.elapsed();
        let mut serving = Vec::new();
        for secondary in [&nsd, &knot, &named] {
            wait_for(PROPAGATION, || dns_servers::soa_serial(secondary.addr(), ZONE).filter(|s| *s == serial))
                .unwrap_or_else(|w| {
                    panic!(
                        "{what}: expected {:?} to serve {serial} within {w:?} of the change, got {:?}\n{}",
                        secondary.kind(),
                        dns_servers::soa_serial(secondary.addr(), ZONE),
                        env.context(&all)
                    )
                });
            serving.push((secondary.kind(), at.elapsed()));
        }
        let all_serving = at.elapsed();
        eprintln!(
            "{what}: signet published {serial} after {signed_after:?}; serving: {serving:?}; all three after {all_serving:?}"
        );
        timings.push((what, all_serving));
        // By IXFR: what signet served each secondary last.
        let status = env.status();
        for addr in [nsd_addr, knot_addr, named_addr] {
            let secondary = secondary_status(&status, addr);
            let transfer = &secondary["last_transfer"];
            assert!(
                transfer["kind"] == "ixfr" && transfer["serial"].as_u64() == Some(u64::from(serial)),
                "{what}: expected the secondary at {addr} to have taken {serial} by IXFR: {secondary:#}\n{}",
                env.context(&all)
            );
            assert_eq!(secondary["versions_behind"].as_i64(), Some(0), "{what}: {secondary:#}");
        }
        for secondary in [&nsd, &knot, &named] {
            env.check_copy(secondary, serial, expect, absent);
        }
        published = serial;
    }
    let status = env.status();
    for addr in [nsd_addr, knot_addr, named_addr] {
        let notify = &secondary_status(&status, addr)["last_notify"];
        assert_eq!(notify["answered"], "NOERROR", "the last NOTIFY to {addr}: {notify:#}");
        assert_eq!(notify["source"], signet_addr.ip().to_string(), "it left from signet's address: {notify:#}");
    }
    assert!(env.serve().count(&["NOTIFY for serial", "failed"]) == 0, "no NOTIFY failed\n{}", env.context(&[]));
    eprintln!("time from the change at named to all three secondaries serving it:");
    for (what, took) in &timings {
        eprintln!("  {what:28} {:.2} s", took.as_secs_f64());
    }
    eprintln!("five_kinds_of_change_reach_every_secondary_by_ixfr: {:?}", started.elapsed());
}

/// A change at `primary` published by signet, its NOTIFYs refused by the
/// three `secondaries`, which stay at `first`.
fn wrong_source(env: &Env, content: &mut Content, primary: &Server, secondaries: [&Server; 3], first: u32) {
    content.delegations.push(("child3".into(), false));
    content.serial += 1;
    primary.reload(&content.text());
    let serial = env.wait_published(Some(first), &[primary]);
    let all = [primary, secondaries[0], secondaries[1], secondaries[2]];
    for secondary in secondaries {
        let addr = secondary.addr();
        let line = wait_for(PROPAGATION, || {
            env.serve()
                .lines()
                .into_iter()
                .find(|l| l.contains(&format!("NOTIFY for serial {serial} to secondary {addr} failed after 2 tries")))
        })
        .unwrap_or_else(|w| panic!("expected the NOTIFY to {addr} given up on within {w:?}\n{}", env.context(&all)));
        assert!(line.contains("the NOTIFY left from 127.0.0.1"), "{line}");
        // Logged first, then recorded: wait for the record.
        let notify = wait_for(PROPAGATION, || {
            let notify = secondary_status(&env.status(), addr)["last_notify"].clone();
            (notify["serial"].as_u64() == Some(u64::from(serial))).then_some(notify)
        })
        .unwrap_or_else(|w| panic!("expected the NOTIFY to {addr} recorded within {w:?}\n{}", env.context(&all)));
        let expected = if secondary.kind() == dns_servers::Kind::Knot { "NOTAUTH/BADKEY" } else { "REFUSED" };
        assert_eq!(notify["answered"], expected, "{:?}: {notify:#}", secondary.kind());
        assert_eq!(notify["source"], "127.0.0.1", "{notify:#}");
    }
    let [nsd, _, named] = secondaries;
    nsd.wait_log(&["notify for example.test. from 127.0.0.1 refused, no acl matches"], PROPAGATION);
    named.wait_log(&["refused notify from non-primary: 127.0.0.1"], PROPAGATION);
    for secondary in secondaries {
        assert_eq!(dns_servers::soa_serial(secondary.addr(), ZONE), Some(first), "{}", secondary.describe());
    }
    eprintln!("every secondary refused signet's NOTIFY for {serial} from 127.0.0.1 and stays at {first}");
}

#[test]
fn a_secondary_that_knows_another_address_refuses() {
    if !tools() {
        return;
    }
    let base = dns_servers::random_base();
    let signet_addr = dns_servers::free_addr(base(3));
    let nsd_addr = dns_servers::free_addr(base(4));
    let mut env = Env::new(signet_addr);
    let key = Tsig::generate("nsd-key");
    env.add_tsig(&key);
    let input = env.path("example.zone");
    let mut content =
        Content { serial: 1, delegations: vec![], www: "192.0.2.80".into(), mx: "10 mail".into(), mx_ttl: 300 };
    write_by_rename(&input, &content.text());
    let (input_text, output) =
        (input.to_str().expect("path").to_owned(), env.output.to_str().expect("path").to_owned());
    env.ok(&["zone", "add", ZONE, "--policy", "p", "--input", &input_text, "--output", &output]);
    env.add_secondary(nsd_addr, &key);
    // NSD knows its primary at another address (the operator's mistake,
    // or a signet sending from the wrong one).
    let elsewhere = SocketAddr::new(base(9), signet_addr.port());
    let nsd = dns_servers::nsd_secondary_at(nsd_addr, &env.path("nsd"), ZONE, elsewhere, Some(&key));
    env.start_serve();
    let first = env.wait_published(None, &[&nsd]);
    let line = wait_for(PROPAGATION, || {
        env.serve()
            .lines()
            .into_iter()
            .find(|l| l.contains(&format!("NOTIFY for serial {first} to secondary {nsd_addr} failed")))
    })
    .unwrap_or_else(|w| panic!("expected the NOTIFY to NSD given up on within {w:?}\n{}", env.context(&[&nsd])));
    for needle in [
        "after 2 tries",
        "REFUSED",
        "the likely cause is the source address",
        &signet_addr.ip().to_string(),
        "notify-source",
    ] {
        assert!(line.contains(needle), "expected {needle:?} in the error line: {line}");
    }
    nsd.wait_log(&["notify", "refused"], Duration::from_secs(1));
    let status = env.status();
    let secondary = secondary_status(&status, nsd_addr);
    let notify = &secondary["last_notify"];
    assert_eq!(notify["answered"], "REFUSED", "status: {secondary:#}");
    assert_eq!(notify["serial"].as_u64(), Some(u64::from(first)), "status: {secondary:#}");
    assert_eq!(notify["tries"].as_i64(), Some(2), "status: {secondary:#}");
    assert_eq!(notify["source"], signet_addr.ip().to_string(), "status: {secondary:#}");
    assert!(notify["error"].as_str().is_some_and(|e| e.contains("source address")), "status: {secondary:#}");
    let text = String::from_utf8_lossy(&env.ok(&["status", ZONE]).stdout).into_owned();
    assert!(text.contains("NOTIFY FAILED") && text.contains("REFUSED"), "signet status:\n{text}");
    // Bounded: no more tries for that serial.
    std::thread::sleep(Duration::from_secs(4));
    let tries = env.serve().count(&["NOTIFY", &nsd_addr.to_string(), &format!("serial={first}")]);
    assert!(tries <= 2, "expected at most 2 lines for serial {first}, got {tries}\n{}", env.serve().tail());
    // The next publication tries again.
    content.serial += 1;
    content.www = "192.0.2.81".into();
    write_by_rename(&input, &content.text());
    let second = env.wait_published(Some(first), &[&nsd]);
    wait_for(PROPAGATION, || {
        env.serve()
            .lines()
            .into_iter()
            .find(|l| l.contains(&format!("NOTIFY for serial {second} to secondary {nsd_addr} failed")))
    })
    .unwrap_or_else(|w| {
        panic!("expected the next publication's NOTIFY tried and given up on within {w:?}\n{}", env.context(&[&nsd]))
    });
}
