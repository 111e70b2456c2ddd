//! Zone transfers with real name servers (issue 14), through the real
//! `signet` binary: `signet serve --listen` as the primary of NSD and Knot
//! secondaries, BIND's `named` as signet's unsigned hidden primary, TSIG on
//! every hop, and what must not happen (a wrong key, a disallowed address,
//! a primary cut off mid-transfer, a primary's serial going backwards, a
//! NOTIFY from a stranger) changing nothing that is published.
//!
//! The servers come from tests/common/dns_servers.rs: signet on an address
//! of its own (a random `127.X.Y.3`), so that the secondaries, which take
//! NOTIFY only from it, refuse one from the wrong source; named (which
//! listens only on an interface's address) on 127.0.0.1 and the others on
//! 127.0.0.x, each on a free port, in the test's temporary directory, stopped when the test
//! ends. A failing test prints signet serve's log and each server's log,
//! and keeps its directory.
//!
//! `harness_named_to_nsd_and_knotd` (ignored: it does not run signet)
//! checks the harness itself: `cargo test --test it transfer::harness -- --ignored`.

use crate::common;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::dns_servers::{self, Qtype, QueryOptions, Server, Tsig};
use common::serve::{Serve, wait_for, write_by_rename};
use common::{Store, bind_verify, expect_success, have_tool, knot_check, run};

const ZONE: &str = "example.test.";
/// How long signet may take for a transfer, a signing and its NOTIFY.
const PROPAGATION: Duration = Duration::from_secs(20);

/// The unsigned zone: a marker TXT record the tests change, and `hosts`
/// hosts (A and TXT) so that an AXFR is much bigger than an IXFR of one
/// change. Its SOA is on one line (the harness reads the serial from it).
fn zone_text(serial: u32, marker: &str, hosts: usize) -> String {
    let mut text = format!(
        "$ORIGIN {ZONE}\n$TTL 60\n@ IN SOA ns1 hostmaster {serial} 60 30 600 60\n@ NS ns1\n@ NS ns2\n\
         ns1 A 192.0.2.1\nns2 A 192.0.2.2\nmarker TXT \"{marker}\"\nwww A 192.0.2.80\n"
    );
    for i in 0..hosts {
        text.push_str(&format!(
            "h{i} A 198.51.{}.{}\nh{i} TXT \"host {i} {}\"\n",
            i / 250,
            i % 250 + 1,
            "x".repeat(20)
        ));
    }
    text
}

/// The same zone with every host's TXT record changed: a big difference.
fn zone_text_all_changed(serial: u32, marker: &str, hosts: usize) -> String {
    zone_text(serial, marker, hosts).replace(&"x".repeat(20), &"y".repeat(20))
}

/// The tools every test needs; `false` (the test is skipped with a note)
/// when one is missing outside CI.
fn tools() -> bool {
    ["nsd", "knotd", "named", "rndc", "knotc", "dig", "dnssec-verify", "kzonecheck"].iter().all(|t| have_tool(t))
}

/// A database with a policy, the zone's files, and signet's address.
struct Env {
    dir: tempfile::TempDir,
    store: Store,
    db: PathBuf,
    config: PathBuf,
    /// Where `signet serve --listen` answers.
    listen: SocketAddr,
    input: PathBuf,
    output: PathBuf,
    serve: Option<Serve>,
    /// How many serves were started (for the log file's name).
    serves: usize,
}

impl Env {
    /// `None` (the test is skipped) without the servers and tools.
    fn new() -> Option<Env> {
        if !tools() {
            eprintln!("note: transfer test skipped: it needs nsd, knotd, named, dig, dnssec-verify and kzonecheck");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::soft(&dir.path().join("keys"));
        let config = dir.path().join("serve.toml");
        std::fs::write(&config, "[serve]\nretry-min = \"1s\"\nretry-max = \"4s\"\nstop-timeout = \"5s\"\n")
            .expect("write the serve config");
        let env = Env {
            db: dir.path().join("signet.db"),
            input: dir.path().join("example.zone"),
            output: dir.path().join("example.signed"),
            // signet on an address of its own, not the 127.0.0.1 the
            // kernel picks for a socket bound to the wildcard: the
            // secondaries take NOTIFY only from it (issue 23).
            listen: dns_servers::free_addr(dns_servers::random_base()(3)),
            dir,
            store,
            config,
            serve: None,
            serves: 0,
        };
        env.ok(&["init"]);
        let policy_file = env.dir.path().join("p.toml");
        std::fs::write(&policy_file, common::steady_policy(&env.store, "increment")).expect("write policy");
        env.ok(&["policy", "import", policy_file.to_str().expect("path"), "--name", "p"]);
        Some(env)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        self.store.on_db(&self.db, args)
    }

    fn signet(&self, args: &[&str]) -> Output {
        run(&mut self.command(args))
    }

    fn ok(&self, args: &[&str]) -> Output {
        self.store.ok_on(&self.db, args)
    }

    /// `signet tsig add NAME --secret-file FILE` with the key written to a
    /// file of mode 0600 in the test's directory.
    fn add_tsig(&self, key: &Tsig) {
        let file = self.path(&format!("{}.key", key.name));
        key.write_secret_file(&file);
        self.ok(&["tsig", "add", &key.name, "--secret-file", file.to_str().expect("path")]);
    }

    /// The zone with a file input of `text`.
    fn add_file_zone(&self, text: &str) {
        write_by_rename(&self.input, text);
        let (input, output) = (self.input.to_str().expect("path"), self.output.to_str().expect("path"));
        self.ok(&["zone", "add", ZONE, "--policy", "p", "--input", input, "--output", output]);
        self.allow_tests_client();
    }

    /// The test's own client (dig, the raw client) asks from 127.0.0.1:
    /// an access list entry for it. Secondaries are on 127.0.0.2 and
    /// 127.0.0.3, strangers on 127.0.0.4 and up.
    fn allow_tests_client(&self) {
        self.ok(&["zone", "acl", "add", ZONE, "127.0.0.1/32"]);
    }

    /// The zone with `primary` as its input, with the key if given.
    fn add_primary_zone(&self, primary: SocketAddr, tsig: Option<&Tsig>) {
        let (primary, output) = (primary.to_string(), self.output.to_str().expect("path"));
        let mut args = vec!["zone", "add", ZONE, "--policy", "p", "--output", output, "--primary", &primary];
        if let Some(tsig) = tsig {
            args.extend(["--tsig", &tsig.name]);
        }
        self.ok(&args);
        self.allow_tests_client();
    }

    /// `signet zone secondary add` for a server at `addr`.
    fn add_secondary(&self, addr: SocketAddr, tsig: Option<&Tsig>) {
        let addr = addr.to_string();
        let mut args = vec!["zone", "secondary", "add", ZONE, &addr];
        if let Some(tsig) = tsig {
            args.extend(["--tsig", &tsig.name]);
        }
        self.ok(&args);
    }

    /// named as signet's hidden primary of the zone, sending NOTIFY to
    /// signet and transferring only to signet's address with `key` (a
    /// transfer from another source is refused). named listens only on an
    /// interface's own address, which outside a network namespace is
    /// 127.0.0.1 alone (tests/it/deployment.rs gives it one of its own).
    fn named_primary(&self, zone_text: &str, key: &Tsig) -> Server {
        let at = dns_servers::free_addr([127, 0, 0, 1].into());
        let dir = self.path("named");
        dns_servers::named_primary_on(at, &dir, ZONE, zone_text, &[self.listen], Some(key), Some(self.listen.ip()))
    }

    /// Starts `signet serve --listen` on the database.
    fn start_serve(&mut self) {
        self.serves += 1;
        let listen = self.listen.to_string();
        let command = self.command(&["serve", "--config", self.config.to_str().expect("path"), "--listen", &listen]);
        let label = format!("transfer-{}", self.serves);
        let log = self.path(&format!("serve-{}.log", self.serves));
        self.serve = Some(Serve::start(command, &label, Some(log)));
    }

    /// SIGTERM, and serve must end with 0.
    fn stop_serve(&mut self) {
        if let Some(serve) = self.serve.take() {
            serve.stop();
        }
    }

    fn serve(&self) -> &Serve {
        self.serve.as_ref().expect("serve runs")
    }

    /// signet serve's log and every server's log, for a failure message.
    fn context(&self, servers: &[&Server]) -> String {
        let mut text = match &self.serve {
            Some(serve) => serve.tail(),
            None => "signet serve is not running".to_owned(),
        };
        text.push_str(&format!("\nstatus: {:#}", self.status_or_null()));
        for server in servers {
            text.push_str("\n\n");
            text.push_str(&server.describe());
        }
        text
    }

    fn status_or_null(&self) -> serde_json::Value {
        let output = self.signet(&["status", ZONE, "--format", "json"]);
        serde_json::from_slice::<serde_json::Value>(&output.stdout)
            .ok()
            .and_then(|all| all.as_array().and_then(|a| a.first()).cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    /// `signet status ZONE --format json`: the zone's object.
    fn status(&self) -> serde_json::Value {
        let output = self.ok(&["status", ZONE, "--format", "json"]);
        let all: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("signet status printed no JSON ({e}): {}", String::from_utf8_lossy(&output.stdout))
        });
        all.as_array().and_then(|a| a.first()).cloned().unwrap_or_else(|| panic!("no zone in status: {all}"))
    }

    fn published_serial(&self) -> Option<u32> {
        self.status()["published_serial"].as_u64().map(|s| s as u32)
    }

    /// Waits until serve has published a serial other than `not`: the
    /// output holds it and the listener serves it (the catalog takes a
    /// version after the run that wrote it: a snapshot taken between the
    /// two saw "served None", then 101). Returns it.
    fn wait_published(&self, not: Option<u32>, servers: &[&Server]) -> u32 {
        wait_for(PROPAGATION, || {
            let serial = self.published_serial().filter(|s| Some(*s) != not)?;
            let text = std::fs::read_to_string(&self.output).ok()?;
            let served = dns_servers::soa_serial(self.listen, ZONE);
            (dns_servers::text_serial(&text) == Some(serial) && served == Some(serial)).then_some(serial)
        })
        .unwrap_or_else(|w| {
            panic!(
                "expected a published serial other than {not:?} within {w:?}, got {:?}\n{}",
                self.published_serial(),
                self.context(servers)
            )
        })
    }

    /// Waits for a serve log line with every one of `needles`.
    fn wait_log(&self, needles: &[&str], within: Duration, servers: &[&Server]) -> String {
        let serve = self.serve();
        wait_for(within, || serve.lines().into_iter().find(|l| needles.iter().all(|n| l.contains(n)))).unwrap_or_else(
            |w| panic!("expected a serve log line with {needles:?} within {w:?}, got none\n{}", self.context(servers)),
        )
    }

    /// The serve log lines (of the running serve) with every one of `needles`.
    fn log_lines(&self, needles: &[&str]) -> Vec<String> {
        self.serve().lines().into_iter().filter(|l| needles.iter().all(|n| l.contains(n))).collect()
    }

    /// What is published, to compare before and after a negative: the
    /// output's bytes, the serial signet answers, the status's serial.
    fn published(&self) -> Published {
        Published {
            output: std::fs::read(&self.output).unwrap_or_default(),
            served: dns_servers::soa_serial(self.listen, ZONE),
            status: self.published_serial(),
        }
    }

    /// The secondary's copy (AXFR with dig) has `serial` and passes signet
    /// verify, dnssec-verify and kzonecheck.
    fn check_copy(&self, server: &Server, serial: u32, marker: &str) {
        let text = dns_servers::axfr_text(server.addr(), ZONE, None);
        assert_eq!(
            dns_servers::text_serial(&text),
            Some(serial),
            "{:?}'s copy: expected serial {serial}\n{}",
            server.kind(),
            self.context(&[server])
        );
        assert!(
            text.contains(&format!("\"{marker}\"")),
            "{:?}'s copy: expected the marker \"{marker}\", got:\n{text}",
            server.kind()
        );
        let file = self.path(&format!("{:?}-copy-{serial}.zone", server.kind()));
        std::fs::write(&file, &text).expect("write the copy");
        let signet_verify = self.signet(&["verify", file.to_str().expect("path"), "--origin", ZONE]);
        expect_success(&format!("signet verify of {:?}'s copy {}", server.kind(), file.display()), &signet_verify);
        expect_success(&format!("dnssec-verify of {:?}'s copy", server.kind()), &bind_verify(&file, ZONE));
        expect_success(&format!("kzonecheck of {:?}'s copy", server.kind()), &knot_check(&file, ZONE));
        // The copy is what signet published: as many records of each type.
        let published = std::fs::read_to_string(&self.output).expect("read the output");
        if dns_servers::text_serial(&published) == Some(serial) {
            assert_eq!(
                type_counts(&text),
                type_counts(&published),
                "{:?}'s copy: expected the records of signet's output (counts by type)",
                server.kind()
            );
        }
    }

    /// Waits until the output holds `"marker"`; returns its serial.
    fn wait_marker(&self, marker: &str, servers: &[&Server]) -> u32 {
        let wanted = format!("\"{marker}\"");
        wait_for(PROPAGATION, || {
            let text = std::fs::read_to_string(&self.output).ok()?;
            text.contains(&wanted).then(|| dns_servers::text_serial(&text))?
        })
        .unwrap_or_else(|w| {
            panic!("expected the output to hold {wanted} within {w:?}, it does not\n{}", self.context(servers))
        })
    }
}

impl Drop for Env {
    /// A failing test keeps its directory (database, logs, copies).
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

/// What is published, before and after a negative.
#[derive(Debug, PartialEq, Eq)]
struct Published {
    output: Vec<u8>,
    served: Option<u32>,
    status: Option<u32>,
}

impl Published {
    fn summary(&self) -> String {
        format!("output {} bytes, served serial {:?}, status serial {:?}", self.output.len(), self.served, self.status)
    }
}

/// Asserts that nothing published changed (`what` names the negative).
fn assert_unchanged(env: &Env, before: &Published, what: &str, servers: &[&Server]) {
    let after = env.published();
    assert!(
        after == *before,
        "{what}: expected nothing published to change ({}), got {}{}\n{}",
        before.summary(),
        after.summary(),
        if after.output != before.output { " (the output's bytes changed)" } else { "" },
        env.context(servers)
    );
}

/// How many records of each type a zone text holds.
fn type_counts(text: &str) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with(';') && !l.starts_with('$') && !l.trim().is_empty()) {
        if let Some(rtype) = line.split_whitespace().nth(3) {
            *counts.entry(rtype.to_ascii_uppercase()).or_insert(0) += 1;
        }
    }
    counts
}

/// The `secondaries` entry of status for `addr`.
fn secondary_status(status: &serde_json::Value, addr: SocketAddr) -> serde_json::Value {
    status["secondaries"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["address"] == addr.to_string()).cloned())
        .unwrap_or(serde_json::Value::Null)
}

/// NSD's log: the size in bytes of the transfer that brought `serial`
/// ("received update to serial N … of B bytes").
fn nsd_transfer_bytes(nsd: &Server, serial: u32) -> Option<u64> {
    nsd.log_lines(&[&format!("received update to serial {serial} "), " bytes"]).iter().find_map(|line| {
        let (_, rest) = line.rsplit_once(" of ")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// (1) NSD and knotd as signet's secondaries with TSIG: AXFR first, IXFR
/// after the input changes; both serve the new signed serial, and their
/// copies pass signet verify, dnssec-verify and kzonecheck.
#[test]
fn secondaries_take_axfr_then_ixfr() {
    let Some(mut env) = Env::new() else { return };
    let started = Instant::now();
    let (nsd_key, knot_key) = (Tsig::generate("nsd-key"), Tsig::generate("knot-key"));
    env.add_tsig(&nsd_key);
    env.add_tsig(&knot_key);
    env.add_file_zone(&zone_text(1, "v1", 300));
    // Each secondary on an address of its own, as in the wild.
    let nsd_addr = dns_servers::free_addr(IpAddr::from([127, 0, 0, 2]));
    let knot_addr = dns_servers::free_addr(IpAddr::from([127, 0, 0, 3]));
    env.add_secondary(nsd_addr, Some(&nsd_key));
    env.add_secondary(knot_addr, Some(&knot_key));
    env.start_serve();
    let first = env.wait_published(None, &[]);
    eprintln!("published serial {first} after {:?}", started.elapsed());

    // The secondaries start now: each bootstraps by AXFR at once.
    let nsd = dns_servers::nsd_secondary_at(nsd_addr, &env.path("nsd"), ZONE, env.listen, Some(&nsd_key));
    let knot = dns_servers::knotd_secondary_at(knot_addr, &env.path("knot"), ZONE, env.listen, Some(&knot_key));
    let servers = [&nsd, &knot];
    let t = Instant::now();
    for server in servers {
        wait_for(PROPAGATION, || dns_servers::soa_serial(server.addr(), ZONE).filter(|s| *s == first)).unwrap_or_else(
            |w| {
                panic!(
                    "expected {:?} to serve serial {first} within {w:?}, got {:?}\n{}",
                    server.kind(),
                    dns_servers::soa_serial(server.addr(), ZONE),
                    env.context(&servers)
                )
            },
        );
    }
    eprintln!("both secondaries serve {first} after {:?}", t.elapsed());
    assert!(
        !knot.log_lines(&["AXFR, incoming", "finished"]).is_empty(),
        "expected knotd's first transfer to be an AXFR\n{}",
        knot.describe()
    );
    let axfr_bytes = nsd_transfer_bytes(&nsd, first)
        .unwrap_or_else(|| panic!("expected NSD to log its transfer of serial {first}\n{}", nsd.describe()));

    // The input changes: signet publishes, notifies, and both take IXFR.
    write_by_rename(&env.input, &zone_text(2, "v2", 300));
    let changed = Instant::now();
    let second = env.wait_published(Some(first), &servers);
    for server in servers {
        wait_for(PROPAGATION, || dns_servers::soa_serial(server.addr(), ZONE).filter(|s| *s == second)).unwrap_or_else(
            |w| {
                panic!(
                    "expected {:?} to serve serial {second} within {w:?} of the input change, got {:?}\n{}",
                    server.kind(),
                    dns_servers::soa_serial(server.addr(), ZONE),
                    env.context(&servers)
                )
            },
        );
    }
    eprintln!("input change → both secondaries serve {second} after {:?}", changed.elapsed());
    let knot_ixfr = knot.log_lines(&["IXFR, incoming", "finished"]);
    assert!(
        !knot_ixfr.is_empty(),
        "expected knotd's second transfer to be an IXFR (\"IXFR, incoming … finished\")\n{}",
        env.context(&[&knot])
    );
    assert_eq!(
        knot.log_lines(&["AXFR, incoming", "finished"]).len(),
        1,
        "expected knotd to take one AXFR only (the first)\n{}",
        knot.describe()
    );
    // NSD's log names no transfer type: its second transfer must be a
    // fraction of the first (an IXFR of one record changed, not the zone).
    let ixfr_bytes = nsd_transfer_bytes(&nsd, second)
        .unwrap_or_else(|| panic!("expected NSD to log its transfer of serial {second}\n{}", nsd.describe()));
    eprintln!("NSD: AXFR of {axfr_bytes} bytes, then {ixfr_bytes} bytes; knotd: {knot_ixfr:?}");
    assert!(
        ixfr_bytes * 4 < axfr_bytes,
        "expected NSD's second transfer to be an IXFR, much smaller than the AXFR of {axfr_bytes} bytes, got {ixfr_bytes} bytes\n{}",
        env.context(&[&nsd])
    );
    // Status: each secondary's last transfer was IXFR from the first
    // serial, and its NOTIFY of the second serial was acknowledged.
    let status = wait_for(Duration::from_secs(5), || {
        let status = env.status();
        let done = [nsd_addr, knot_addr].iter().all(|&a| {
            let s = secondary_status(&status, a);
            s["notified_serial"].as_u64() == Some(u64::from(second)) && s["notify_acked_at"].is_number()
        });
        done.then_some(status)
    })
    .unwrap_or_else(|w| {
        panic!(
            "expected both secondaries' NOTIFY of {second} acknowledged in status within {w:?}\n{}",
            env.context(&[])
        )
    });
    assert_eq!(status["served_serial"].as_u64(), Some(u64::from(second)), "served_serial: {status:#}");
    for addr in [nsd_addr, knot_addr] {
        let s = secondary_status(&status, addr);
        assert_eq!(s["notify"], true, "secondary {addr}: {s:#}");
        assert_eq!(s["last_transfer"]["kind"], "ixfr", "secondary {addr}: expected its last transfer IXFR: {s:#}");
        assert_eq!(s["last_transfer"]["serial"].as_u64(), Some(u64::from(second)), "secondary {addr}: {s:#}");
        assert_eq!(s["last_transfer"]["from_serial"].as_u64(), Some(u64::from(first)), "secondary {addr}: {s:#}");
    }
    assert!(!env.log_lines(&["NOTIFY acknowledged"]).is_empty(), "expected \"NOTIFY acknowledged\" in serve's log");

    for server in servers {
        env.check_copy(server, second, "v2");
    }
    env.stop_serve();
    eprintln!("secondaries_take_axfr_then_ixfr: {:?}", started.elapsed());
}

/// (2) named as signet's unsigned hidden primary (TSIG), NSD as signet's
/// secondary: a change at named reaches NSD signed, by NOTIFY and IXFR at
/// each hop; a restart of serve signs from the kept unsigned copy without
/// a transfer, and the next change is again an IXFR.
#[test]
fn hidden_primary_to_secondary() {
    let Some(mut env) = Env::new() else { return };
    let started = Instant::now();
    let (primary_key, nsd_key) = (Tsig::generate("primary-key"), Tsig::generate("nsd-key"));
    env.add_tsig(&primary_key);
    env.add_tsig(&nsd_key);
    let named = env.named_primary(&zone_text(10, "v10", 300), &primary_key);
    env.add_primary_zone(named.addr(), Some(&primary_key));
    let nsd_addr = dns_servers::free_addr(IpAddr::from([127, 0, 0, 2]));
    env.add_secondary(nsd_addr, Some(&nsd_key));
    env.start_serve();
    let first = env.wait_published(None, &[&named]);
    eprintln!("first transfer and publication (serial {first}) after {:?}", started.elapsed());
    let status = env.status();
    let transfer_in = &status["transfer_in"];
    assert_eq!(transfer_in["primaries"][0], named.addr().to_string(), "transfer_in: {transfer_in:#}");
    assert_eq!(transfer_in["primary_serial"].as_u64(), Some(10), "transfer_in: {transfer_in:#}");
    assert_eq!(transfer_in["last_transfer"]["serial"].as_u64(), Some(10), "transfer_in: {transfer_in:#}");
    assert_eq!(transfer_in["last_transfer"]["kind"], "axfr", "the first transfer in: {transfer_in:#}");
    env.wait_log(&["transfer in"], Duration::from_secs(1), &[&named]);
    let kept = PathBuf::from(format!("{}.unsigned", env.output.display()));
    assert_eq!(
        std::fs::read_to_string(&kept).ok().as_deref().and_then(dns_servers::text_serial),
        Some(10),
        "expected the unsigned copy kept in {} with serial 10",
        kept.display()
    );

    let nsd = dns_servers::nsd_secondary_at(nsd_addr, &env.path("nsd"), ZONE, env.listen, Some(&nsd_key));
    dns_servers::wait_serial(&nsd, ZONE, first, PROPAGATION);

    // A change at named: NOTIFY → signet (IXFR in) → sign → publish →
    // NOTIFY → NSD (IXFR) serves the new signed serial.
    let changed = Instant::now();
    named.reload(&zone_text(11, "v11", 300));
    let second = env.wait_published(Some(first), &[&named, &nsd]);
    let published_after = changed.elapsed();
    wait_for(PROPAGATION, || dns_servers::soa_serial(nsd.addr(), ZONE).filter(|s| *s == second)).unwrap_or_else(|w| {
        panic!(
            "expected NSD to serve {second} within {w:?} of the change at named, got {:?}\n{}",
            dns_servers::soa_serial(nsd.addr(), ZONE),
            env.context(&[&named, &nsd])
        )
    });
    eprintln!(
        "change at named: published by signet after {published_after:?}, served by NSD after {:?}",
        changed.elapsed()
    );
    assert!(
        !named.log_lines(&["IXFR started", "(serial 10 -> 11)"]).is_empty(),
        "expected signet to take the change from named by IXFR (named's log: \"IXFR started … (serial 10 -> 11)\")\n{}",
        env.context(&[&named])
    );
    let status = env.status();
    let transfer_in = &status["transfer_in"];
    assert_eq!(transfer_in["last_transfer"]["kind"], "ixfr", "the second transfer in: {transfer_in:#}");
    assert_eq!(transfer_in["last_transfer"]["serial"].as_u64(), Some(11), "transfer_in: {transfer_in:#}");
    assert_eq!(transfer_in["primary_serial"].as_u64(), Some(11), "transfer_in: {transfer_in:#}");
    assert!(transfer_in["last_error"].is_null(), "no error: {transfer_in:#}");
    assert_eq!(
        std::fs::read_to_string(&kept).ok().as_deref().and_then(dns_servers::text_serial),
        Some(11),
        "expected the kept unsigned copy at serial 11"
    );
    env.check_copy(&nsd, second, "v11");

    // A restart: the zone is served from what was kept, with no transfer.
    let transfers_before = named.log_lines(&["transfer of", "started"]).len();
    env.stop_serve();
    env.start_serve();
    wait_for(Duration::from_secs(10), || dns_servers::soa_serial(env.listen, ZONE).filter(|s| *s == second))
        .unwrap_or_else(|w| {
            panic!(
                "expected the restarted serve to answer serial {second} within {w:?}, got {:?}\n{}",
                dns_servers::soa_serial(env.listen, ZONE),
                env.context(&[&named])
            )
        });
    std::thread::sleep(Duration::from_secs(2));
    let transfers_after = named.log_lines(&["transfer of", "started"]).len();
    assert_eq!(
        transfers_after,
        transfers_before,
        "expected no transfer from named after the restart (the unsigned copy is kept)\n{}",
        env.context(&[&named])
    );
    assert!(
        env.log_lines(&["transfer in"]).is_empty(),
        "expected no \"transfer in\" in the restarted serve's log\n{}",
        env.context(&[])
    );
    assert_eq!(env.published_serial(), Some(second), "the published serial stays after the restart");
    // The next change is again an IXFR, from 11: the copy's serial was kept.
    named.reload(&zone_text(12, "v12", 300));
    let third = env.wait_published(Some(second), &[&named, &nsd]);
    dns_servers::wait_serial(&nsd, ZONE, third, PROPAGATION);
    assert!(
        !named.log_lines(&["IXFR started", "(serial 11 -> 12)"]).is_empty(),
        "expected the restarted signet to take serial 12 by IXFR from 11\n{}",
        env.context(&[&named])
    );
    env.check_copy(&nsd, third, "v12");
    env.stop_serve();
    eprintln!("hidden_primary_to_secondary: {:?}", started.elapsed());
}

/// (3a) A secondary with a wrong key: its transfer is refused (NOTAUTH,
/// BADSIG logged), and nothing published changes.
#[test]
fn wrong_tsig_key_is_refused() {
    let Some(mut env) = Env::new() else { return };
    let key = Tsig::generate("nsd-key");
    env.add_tsig(&key);
    env.add_file_zone(&zone_text(1, "v1", 50));
    let nsd_addr = dns_servers::free_addr(IpAddr::from([127, 0, 0, 2]));
    env.add_secondary(nsd_addr, Some(&key));
    env.start_serve();
    env.wait_published(None, &[]);
    let before = env.published();
    assert!(before.served.is_some(), "expected signet to answer the SOA\n{}", env.context(&[]));

    // dig from the secondary's address with the wrong secret: refused;
    // with the right one: served.
    let wrong = key.with_other_secret();
    let axfr_from_secondary = |key: &Tsig| {
        let arg = key.dig_arg();
        dns_servers::dig(env.listen, &["-b", "127.0.0.2", "+onesoa", ZONE, "AXFR", "-y", &arg])
    };
    let refused = axfr_from_secondary(&wrong);
    assert!(
        dns_servers::text_serial(&refused).is_none(),
        "expected an AXFR with a wrong key refused, got a zone\n{}",
        env.context(&[])
    );
    assert!(
        refused.contains("BADSIG") || refused.contains("NOTAUTH") || refused.contains("tsig"),
        "expected dig to report NOTAUTH/BADSIG for the wrong key, got:\n{refused}"
    );
    let served = axfr_from_secondary(&key);
    assert_eq!(
        dns_servers::text_serial(&served),
        before.served,
        "expected an AXFR from the secondary's address with the right key served, got:\n{served}\n{}",
        env.context(&[])
    );

    // The dig with the right key is that address's last transfer; NSD's
    // refused ones must not replace it.
    let dug = secondary_status(&env.status(), nsd_addr)["last_transfer"].clone();
    assert!(!dug.is_null(), "expected the right key's AXFR recorded for the secondary's address");

    // NSD with the wrong key asks for the zone at its start: refused.
    let nsd = dns_servers::nsd_secondary_at(nsd_addr, &env.path("nsd"), ZONE, env.listen, Some(&wrong));
    env.wait_log(&["TSIG", "BADSIG"], Duration::from_secs(15), &[&nsd]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        dns_servers::soa_serial(nsd.addr(), ZONE),
        None,
        "expected NSD with a wrong key to have no zone\n{}",
        env.context(&[&nsd])
    );
    let s = secondary_status(&env.status(), nsd_addr);
    assert_eq!(s["last_transfer"], dug, "expected no transfer to NSD in status: {s:#}");
    assert!(!env.log_lines(&["refused"]).is_empty(), "expected \"transfer refused\" in serve's log");
    assert_unchanged(&env, &before, "a secondary with a wrong key", &[&nsd]);
    env.stop_serve();
}

/// (3a, in) signet's secret for the primary's key is wrong: the primary
/// refuses the transfer (NOTAUTH/BADSIG), nothing is published, and the
/// failure is reported; with the right secret in the key file (read again
/// when it changes), the primary's next NOTIFY is taken.
#[test]
fn wrong_tsig_key_at_the_primary_changes_nothing() {
    let Some(mut env) = Env::new() else { return };
    let key = Tsig::generate("primary-key");
    let named = env.named_primary(&zone_text(1, "v1", 50), &key);
    env.add_tsig(&key.with_other_secret());
    env.add_primary_zone(named.addr(), Some(&key));
    env.start_serve();
    let line = env.wait_log(&["transfer failed", "TSIG"], PROPAGATION, &[&named]);
    eprintln!("reported: {line}");
    let status = env.status();
    let error = status["transfer_in"]["last_error"]["message"].as_str().unwrap_or_default();
    assert!(error.contains("TSIG"), "expected the TSIG failure in status transfer_in.last_error, got {status:#}");
    assert!(status["published_serial"].is_null(), "expected nothing published, got {status:#}");
    assert!(!env.output.exists(), "expected no output file");

    key.write_secret_file(&env.path(&format!("{}.key", key.name)));
    std::thread::sleep(Duration::from_millis(1500));
    named.reload(&zone_text(2, "v2", 50));
    let serial = env.wait_marker("v2", &[&named]);
    eprintln!("with the right secret: serial {serial} published");
    env.stop_serve();
}

/// (3b) A client at an address not allowed is REFUSED (SOA and AXFR); an
/// allowed address, or a key allowed by an access list entry, is served.
#[test]
fn disallowed_address_is_refused() {
    let Some(mut env) = Env::new() else { return };
    env.add_file_zone(&zone_text(1, "v1", 50));
    let acl_key = Tsig::generate("acl-key");
    env.add_tsig(&acl_key);
    env.ok(&["zone", "acl", "add", ZONE, "--tsig", &acl_key.name]);
    env.start_serve();
    env.wait_published(None, &[]);
    let before = env.published();

    let from = |ip: [u8; 4]| QueryOptions { source: Some(IpAddr::from(ip)), ..QueryOptions::default() };
    let axfr = dns_servers::query(env.listen, ZONE, Qtype::Axfr, &from([127, 0, 0, 4]));
    assert_eq!(
        axfr.as_ref().map(|a| a.rcode.as_str()),
        Ok("REFUSED"),
        "expected AXFR from 127.0.0.4 REFUSED, got {axfr:?}\n{}",
        env.context(&[])
    );
    let soa = dns_servers::query(env.listen, ZONE, Qtype::Soa, &from([127, 0, 0, 4]));
    assert_eq!(
        soa.as_ref().map(|a| a.rcode.as_str()),
        Ok("REFUSED"),
        "expected SOA from 127.0.0.4 REFUSED, got {soa:?}"
    );
    let dig = dns_servers::dig(env.listen, &["-b", "127.0.0.4", ZONE, "AXFR"]);
    assert!(dig.contains("Transfer failed"), "expected dig -b 127.0.0.4 AXFR to fail, got:\n{dig}");
    env.wait_log(&["REFUSED"], Duration::from_secs(2), &[]);
    // Allowed: 127.0.0.1, and the key from anywhere.
    let allowed = dns_servers::query(env.listen, ZONE, Qtype::Axfr, &from([127, 0, 0, 1]));
    assert_eq!(allowed.as_ref().map(|a| a.rcode.as_str()), Ok("NOERROR"), "AXFR from 127.0.0.1: {allowed:?}");
    let key_arg = acl_key.dig_arg();
    let with_key = dns_servers::dig(env.listen, &["-b", "127.0.0.4", "+onesoa", ZONE, "AXFR", "-y", &key_arg]);
    assert!(
        !with_key.contains("Transfer failed") && dns_servers::text_serial(&with_key) == before.served,
        "expected AXFR from 127.0.0.4 with the access list's key served, got:\n{with_key}\n{}",
        env.context(&[])
    );
    assert_unchanged(&env, &before, "a disallowed address", &[]);
    env.stop_serve();
}

/// (3c) The primary cut off mid-transfer (a proxy closes the connection
/// after 60,000 bytes of a bigger answer): nothing published changes, the
/// failure is reported, and the next whole transfer is taken.
#[test]
fn primary_cut_off_mid_transfer() {
    let Some(mut env) = Env::new() else { return };
    const HOSTS: usize = 2000;
    let key = Tsig::generate("primary-key");
    env.add_tsig(&key);
    let named =
        dns_servers::named_primary(&env.path("named"), ZONE, &zone_text(1, "v1", HOSTS), &[env.listen], Some(&key));
    let proxy = dns_servers::CutProxy::start(named.addr(), usize::MAX);
    env.add_primary_zone(proxy.addr(), Some(&key));
    env.start_serve();
    let first = env.wait_published(None, &[&named]);
    let before = env.published();

    // Every host's TXT changes: the IXFR is some 200 kB, over several
    // messages; each connection is cut after 60,000 bytes.
    proxy.set_cut_after(60_000);
    let cuts_before = proxy.cuts();
    named.reload(&zone_text_all_changed(2, "v2", HOSTS));
    let error = wait_for(PROPAGATION, || {
        let status = env.status();
        let error = &status["transfer_in"]["last_error"];
        (proxy.cuts() > cuts_before && error["message"].is_string()).then(|| error.clone())
    })
    .unwrap_or_else(|w| {
        panic!(
            "expected a cut transfer ({} cut so far) reported in status transfer_in.last_error within {w:?}\n{}",
            proxy.cuts(),
            env.context(&[&named])
        )
    });
    eprintln!("cut transfer reported: {error}");
    env.wait_log(&["transfer failed"], Duration::from_secs(2), &[&named]);
    // Through a retry or two.
    std::thread::sleep(Duration::from_secs(3));
    assert_unchanged(&env, &before, "a transfer cut off", &[&named]);
    assert!(
        !std::fs::read_to_string(&env.output).unwrap_or_default().contains("\"v2\""),
        "expected none of the cut transfer published"
    );

    // The primary whole again: the next change is taken.
    proxy.set_cut_after(usize::MAX);
    named.reload(&zone_text_all_changed(3, "v3", HOSTS));
    let next = env.wait_marker("v3", &[&named]);
    assert_ne!(next, first, "expected a new serial published after the cut");
    eprintln!("after the cut: serial {next} published with the marker v3");
    let verified = env.signet(&["verify", env.output.to_str().expect("path"), "--origin", ZONE]);
    expect_success("signet verify of the output after the cut", &verified);
    env.stop_serve();
}

/// (3d) The primary's serial goes backwards: reported, not taken; the old
/// version stays published.
#[test]
fn primary_serial_backwards_is_not_taken() {
    let Some(mut env) = Env::new() else { return };
    let key = Tsig::generate("primary-key");
    env.add_tsig(&key);
    let mut named = env.named_primary(&zone_text(100, "v100", 50), &key);
    env.add_primary_zone(named.addr(), Some(&key));
    env.start_serve();
    env.wait_published(None, &[&named]);
    let before = env.published();

    // named restarted with serial 50 (named refuses a lower serial on a
    // reload): its NOTIFY at start reaches signet.
    named.restart_with(&zone_text(50, "v50", 50));
    let line = env.wait_log(&["serial went backwards"], PROPAGATION, &[&named]);
    eprintln!("reported: {line}");
    let error = wait_for(Duration::from_secs(5), || {
        let error = env.status()["transfer_in"]["last_error"].clone();
        error["message"].as_str().is_some_and(|m| m.contains("backwards")).then_some(error)
    })
    .unwrap_or_else(|w| {
        panic!("expected status transfer_in.last_error to say \"backwards\" within {w:?}\n{}", env.context(&[&named]))
    });
    eprintln!("status: {error}");
    std::thread::sleep(Duration::from_secs(2));
    assert_unchanged(&env, &before, "a primary's serial going backwards", &[&named]);
    let text = std::fs::read_to_string(&env.output).expect("read the output");
    assert!(text.contains("\"v100\"") && !text.contains("\"v50\""), "expected the old version (v100) to stay");
    env.stop_serve();
}

/// (3e) A NOTIFY from an address that is not the zone's primary is
/// REFUSED (and one from the primary's address without its key is not
/// accepted); no transfer follows.
#[test]
fn notify_from_stranger_is_refused() {
    let Some(mut env) = Env::new() else { return };
    let key = Tsig::generate("primary-key");
    env.add_tsig(&key);
    let named = env.named_primary(&zone_text(1, "v1", 50), &key);
    env.add_primary_zone(named.addr(), Some(&key));
    env.start_serve();
    env.wait_published(None, &[&named]);
    let before = env.published();
    let transfers = named.log_lines(&["transfer of", "started"]).len();

    let notify = |ip: [u8; 4]| QueryOptions { source: Some(IpAddr::from(ip)), opcode: 4, ..QueryOptions::default() };
    let stranger = dns_servers::query(env.listen, ZONE, Qtype::Soa, &notify([127, 0, 0, 4]));
    assert_eq!(
        stranger.as_ref().map(|a| a.rcode.as_str()),
        Ok("REFUSED"),
        "expected a NOTIFY from 127.0.0.4 REFUSED, got {stranger:?}\n{}",
        env.context(&[&named])
    );
    let unsigned = dns_servers::query(env.listen, ZONE, Qtype::Soa, &notify([127, 0, 0, 1]));
    assert!(
        unsigned.as_ref().is_ok_and(|a| a.rcode == "REFUSED" || a.rcode == "NOTAUTH"),
        "expected an unsigned NOTIFY from the primary's address (its key is configured) REFUSED or NOTAUTH, got {unsigned:?}"
    );
    env.wait_log(&["REFUSED"], Duration::from_secs(2), &[&named]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        named.log_lines(&["transfer of", "started"]).len(),
        transfers,
        "expected no transfer after a refused NOTIFY\n{}",
        env.context(&[&named])
    );
    assert_unchanged(&env, &before, "a NOTIFY from a stranger", &[&named]);
    env.stop_serve();
}

/// (4) What signet answers: the published SOA with AA; REFUSED for another
/// type or a zone it does not serve; NOTIMP for UPDATE; IXFR from the
/// current serial is the SOA alone, from an unknown serial the whole zone
/// (AXFR-style), from the serial before the difference.
#[test]
fn protocol_answers() {
    let Some(mut env) = Env::new() else { return };
    env.add_file_zone(&zone_text(1, "v1", 50));
    env.start_serve();
    let first = env.wait_published(None, &[]);

    for tcp in [false, true] {
        let soa = dns_servers::query(env.listen, ZONE, Qtype::Soa, &QueryOptions { tcp, ..QueryOptions::default() });
        let soa =
            soa.unwrap_or_else(|e| panic!("expected an answer to SOA (tcp {tcp}), got {e}\n{}", env.context(&[])));
        assert_eq!(
            (soa.rcode.as_str(), soa.authoritative, soa.soa_serial),
            ("NOERROR", true, Some(first)),
            "expected SOA (tcp {tcp}) NOERROR, AA, serial {first}, got {soa:?}"
        );
    }
    for (name, qtype, what) in [
        (ZONE, Qtype::A, "A at the apex"),
        (ZONE, Qtype::Txt, "TXT at the apex"),
        ("other.test.", Qtype::Soa, "SOA of a zone not served"),
    ] {
        let answer = dns_servers::query(env.listen, name, qtype, &QueryOptions::default());
        assert_eq!(answer.as_ref().map(|a| a.rcode.as_str()), Ok("REFUSED"), "expected {what} REFUSED, got {answer:?}");
    }
    let update =
        dns_servers::query(env.listen, ZONE, Qtype::Soa, &QueryOptions { opcode: 5, ..QueryOptions::default() });
    assert_eq!(update.as_ref().map(|a| a.rcode.as_str()), Ok("NOTIMP"), "expected UPDATE NOTIMP, got {update:?}");

    // IXFR from the current serial: the SOA alone.
    let current = dns_servers::try_ixfr(env.listen, ZONE, first, None)
        .unwrap_or_else(|out| panic!("expected IXFR={first} answered, got:\n{out}\n{}", env.context(&[])));
    assert!(
        current.len() == 1 && dns_servers::text_serial(&current[0]) == Some(first),
        "expected IXFR from the current serial {first} to be its SOA alone, got {current:#?}"
    );

    // A second version: IXFR from the first is the difference.
    write_by_rename(&env.input, &zone_text(2, "v2", 50));
    let second = env.wait_published(Some(first), &[]);
    let axfr = dns_servers::axfr_text(env.listen, ZONE, None);
    let axfr_records = axfr.lines().count();
    let diff = dns_servers::try_ixfr(env.listen, ZONE, first, None)
        .unwrap_or_else(|out| panic!("expected IXFR={first} answered, got:\n{out}\n{}", env.context(&[])));
    let serials: Vec<Option<u32>> = diff.iter().map(|l| soa_of(l)).filter(Option::is_some).collect();
    assert!(
        serials.len() == 4
            && soa_of(&diff[0]) == Some(second)
            && soa_of(&diff[1]) == Some(first)
            && soa_of(&diff[diff.len() - 1]) == Some(second),
        "expected IXFR from {first} to be incremental (SOA {second}, SOA {first}, removed, SOA {second}, added, SOA {second}), got {} records with SOAs {serials:?}:\n{}",
        diff.len(),
        diff.join("\n")
    );
    let (removed, added) =
        diff.split_at(diff.iter().skip(1).position(|l| soa_of(l) == Some(second)).map_or(0, |p| p + 1));
    assert!(
        removed.iter().any(|l| l.contains("\"v1\"")) && added.iter().any(|l| l.contains("\"v2\"")),
        "expected the IXFR to remove the marker v1 and add v2:\n{}",
        diff.join("\n")
    );
    assert!(
        diff.len() * 3 < axfr_records,
        "expected the IXFR ({} records) much smaller than the zone ({axfr_records})",
        diff.len()
    );

    // IXFR from a serial never published: the whole zone, AXFR-style.
    let unknown = first.wrapping_sub(1000);
    let whole = dns_servers::try_ixfr(env.listen, ZONE, unknown, None)
        .unwrap_or_else(|out| panic!("expected IXFR={unknown} answered, got:\n{out}"));
    let soas: Vec<Option<u32>> = whole.iter().map(|l| soa_of(l)).filter(Option::is_some).collect();
    assert!(
        whole.len() == axfr_records + 1 && soas == [Some(second), Some(second)],
        "expected IXFR from the unknown serial {unknown} answered AXFR-style ({} records between two SOAs {second}), got {} records with SOAs {soas:?}",
        axfr_records + 1,
        whole.len()
    );
    env.stop_serve();
}

/// The serial of an SOA record line (not an RRSIG over the SOA).
fn soa_of(line: &str) -> Option<u32> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields.get(3) == Some(&"SOA")).then(|| fields.get(6)?.parse().ok())?
}

/// The harness without signet: named primary → NSD and knotd secondaries
/// with TSIG; a reload at named reaches both by IXFR; a secondary with a
/// wrong key gets nothing; the proxy cuts a transfer.
#[test]
#[ignore = "checks the harness itself, without signet: cargo test --test it transfer::harness -- --ignored"]
fn harness_named_to_nsd_and_knotd() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let key = Tsig::generate("xfr-key");
    let primary_port = dns_servers::free_port();
    let primary = SocketAddr::from(([127, 0, 0, 1], primary_port));
    let nsd_addr = dns_servers::free_addr(IpAddr::from([127, 0, 0, 2]));
    let nsd = dns_servers::nsd_secondary_at(nsd_addr, &dir.path().join("nsd"), ZONE, primary, Some(&key));
    let knot_addr = dns_servers::free_addr(IpAddr::from([127, 0, 0, 3]));
    let knot = dns_servers::knotd_secondary_at(knot_addr, &dir.path().join("knot"), ZONE, primary, Some(&key));
    let wrong =
        dns_servers::nsd_secondary(&dir.path().join("nsd-wrong"), ZONE, primary, Some(&key.with_other_secret()));
    let named = dns_servers::named_primary_at(
        primary_port,
        &dir.path().join("named"),
        ZONE,
        &zone_text(1, "v1", 300),
        &[nsd.addr(), knot.addr(), wrong.addr()],
        Some(&key),
    );
    let t = Instant::now();
    dns_servers::wait_serial(&nsd, ZONE, 1, Duration::from_secs(10));
    dns_servers::wait_serial(&knot, ZONE, 1, Duration::from_secs(10));
    eprintln!("first transfers (AXFR) done {:?} after named started", t.elapsed());
    let t = Instant::now();
    named.reload(&zone_text(2, "v2", 300));
    dns_servers::wait_serial(&nsd, ZONE, 2, Duration::from_secs(10));
    eprintln!("NSD has serial 2 {:?} after the reload", t.elapsed());
    dns_servers::wait_serial(&knot, ZONE, 2, Duration::from_secs(10));
    eprintln!("knotd has serial 2 {:?} after the reload", t.elapsed());
    // Each secondary asked from its own address.
    for ip in ["127.0.0.2#", "127.0.0.3#"] {
        assert_eq!(named.log_lines(&[ip, "IXFR started", "(serial 1 -> 2)"]).len(), 1, "{}", named.describe());
    }
    assert_eq!(knot.log_lines(&["IXFR, incoming", "finished"]).len(), 1, "{}", knot.describe());
    let (axfr, ixfr) = (nsd_transfer_bytes(&nsd, 1), nsd_transfer_bytes(&nsd, 2));
    assert!(axfr.zip(ixfr).is_some_and(|(a, i)| i * 4 < a), "NSD: {axfr:?} then {ixfr:?}\n{}", nsd.describe());
    assert_eq!(dns_servers::soa_serial(wrong.addr(), ZONE), None, "{}", wrong.describe());
    assert!(!wrong.log_lines(&["bad tsig"]).is_empty(), "{}", wrong.describe());
    let copy = dns_servers::axfr_text(knot.addr(), ZONE, None);
    assert_eq!(dns_servers::text_serial(&copy), Some(2));
    let refused = dns_servers::query(
        named.addr(),
        ZONE,
        Qtype::Axfr,
        &QueryOptions { source: Some(IpAddr::from([127, 0, 0, 2])), ..QueryOptions::default() },
    );
    assert_eq!(refused.map(|a| a.rcode), Ok("REFUSED".to_owned()));
    let proxy = dns_servers::CutProxy::start(named.addr(), 3000);
    assert!(dns_servers::try_axfr(proxy.addr(), ZONE, Some(&key)).is_err());
    assert_eq!(proxy.cuts(), 1);
    proxy.set_cut_after(usize::MAX);
    assert!(dns_servers::try_axfr(proxy.addr(), ZONE, Some(&key)).is_ok());
    assert_eq!(dns_servers::soa_serial(proxy.addr(), ZONE), Some(2));
    // primary_cut_off_mid_transfer's premise: the IXFR of every host's
    // TXT changed in the zone of 2000 hosts spans messages well past the
    // cut at 60,000 bytes.
    let mut named = named;
    named.restart_with(&zone_text(1, "big", 2000));
    named.reload(&zone_text_all_changed(2, "big2", 2000));
    let ixfr = dns_servers::dig(named.addr(), &["-y", &key.dig_arg(), "+tcp", ZONE, "IXFR=1"]);
    let size = ixfr.lines().find(|l| l.contains("XFR size")).unwrap_or("").to_owned();
    eprintln!("IXFR of the big change: {size}");
    assert!(!named.log_lines(&["IXFR started", "(serial 1 -> 2)"]).is_empty(), "{}", named.describe());
    let bytes: usize = size.split("bytes ").nth(1).and_then(|b| b.trim_end_matches(')').parse().ok()).unwrap_or(0);
    assert!(bytes > 120_000, "{size}");
    let proxy = dns_servers::CutProxy::start(named.addr(), 60_000);
    let cut = dns_servers::try_ixfr(proxy.addr(), ZONE, 1, Some(&key));
    assert!(cut.is_err() && proxy.cuts() == 1, "{cut:?}");
    named.restart_with(&zone_text(1, "back", 300));
    let primary = dns_servers::knotd_primary(&dir.path().join("kp"), ZONE, &zone_text(5, "k5", 10), &[], Some(&key));
    primary.reload(&zone_text(6, "k6", 10));
    let diff = dns_servers::try_ixfr(primary.addr(), ZONE, 5, Some(&key)).expect("IXFR from knotd");
    assert_eq!(diff.len(), 6, "{diff:#?}");
}
