//! Real name servers for the transfer tests: NSD, Knot (`knotd`) and BIND
//! (`named`) from the Debian packages, and Unbound as a validating
//! resolver for the rollover tests, started on 127.0.0.1 on free ports,
//! each in a directory of its own that holds its configuration, pid file,
//! database or journal, control socket and log (no system path is used;
//! none of them changes user or chroots). They run in the foreground in a
//! process group of their own and are stopped by pid on drop (SIGTERM,
//! SIGKILL after 5 s). Beside them: TSIG keys in each server's syntax,
//! `dig` and a raw DNS client to look at what a server serves, and a TCP
//! proxy that cuts a transfer off after so many bytes.
//!
//! Measured on the development machine (2 cores, shared with two builds):
//! each server answers 50–125 ms after its start (knotd 50–60 ms, named
//! 65–100 ms, NSD 80–125 ms); the first AXFR of a 600-record zone takes a
//! few ms once asked for; after named reloads a change, NSD serves it
//! within 0.1–1.1 s and knotd within 0.55–1.1 s (knotd waits about half a
//! second after a NOTIFY). The harness's own test runs in about 3 s.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::serve::wait_for;

/// How long a server may take to answer after its start.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server may take to end after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Ports handed out by [`free_port`] in this process, never handed twice.
static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A port of 127.0.0.1 free for both UDP and TCP (both bound, then let go),
/// not handed out before by this process.
pub fn free_port() -> u16 {
    free_addr(LOCALHOST).port()
}

/// An address of `ip` (one of 127.0.0.0/8: every one is local on Linux)
/// with a port free there for both UDP and TCP, not handed out before by
/// this process. Servers on 127.0.0.2, 127.0.0.3, … are told apart by
/// address, as secondaries are in the wild.
pub fn free_addr(ip: IpAddr) -> SocketAddr {
    for _ in 0..100 {
        let Ok(tcp) = TcpListener::bind((ip, 0)) else { continue };
        let Ok(port) = tcp.local_addr().map(|a| a.port()) else { continue };
        if UdpSocket::bind((ip, port)).is_err() {
            continue;
        }
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if !handed.contains(&port) {
            handed.push(port);
            return SocketAddr::new(ip, port);
        }
    }
    panic!("no port of {ip} free for both UDP and TCP in 100 tries");
}

/// A TSIG key (HMAC-SHA256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tsig {
    /// The key's name, as a domain name without the final dot.
    pub name: String,
    /// The secret, base64.
    pub secret_b64: String,
}

impl Tsig {
    /// A key of `name` with a random 32-byte secret.
    pub fn generate(name: &str) -> Tsig {
        let mut secret = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret).expect("random secret");
        Tsig { name: name.trim_end_matches('.').to_owned(), secret_b64: data_encoding::BASE64.encode(&secret) }
    }

    /// The same name with another secret: a wrong key.
    pub fn with_other_secret(&self) -> Tsig {
        Tsig { name: self.name.clone(), ..Tsig::generate(&self.name) }
    }

    /// BIND's key clause (named.conf, rndc, and signet's `--secret-file`).
    pub fn bind_clause(&self) -> String {
        format!("key \"{}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{}\";\n}};\n", self.name, self.secret_b64)
    }

    /// NSD's `key:` clause.
    pub fn nsd_clause(&self) -> String {
        format!("key:\n  name: \"{}\"\n  algorithm: hmac-sha256\n  secret: \"{}\"\n", self.name, self.secret_b64)
    }

    /// One item of Knot's `key:` section.
    pub fn knot_item(&self) -> String {
        format!("  - id: {}\n    algorithm: hmac-sha256\n    secret: {}\n", self.name, self.secret_b64)
    }

    /// dig's and kdig's `-y` argument.
    pub fn dig_arg(&self) -> String {
        format!("hmac-sha256:{}:{}", self.name, self.secret_b64)
    }

    /// Writes the BIND key clause to `path` with mode 0600, for
    /// `signet tsig add NAME --secret-file PATH`.
    pub fn write_secret_file(&self, path: &Path) {
        use std::os::unix::fs::OpenOptionsExt as _;
        let _ = std::fs::remove_file(path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        file.write_all(self.bind_clause().as_bytes()).expect("write the secret file");
    }
}

/// Which server a [`Server`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// NSD.
    Nsd,
    /// Knot DNS.
    Knot,
    /// BIND 9.
    Named,
    /// Unbound, a validating resolver.
    Unbound,
}

impl Kind {
    /// The program that runs it.
    fn program(self) -> &'static str {
        match self {
            Kind::Nsd => "nsd",
            Kind::Knot => "knotd",
            Kind::Named => "named",
            Kind::Unbound => "unbound",
        }
    }
}

/// A running name server in its own directory; stopped on drop.
#[derive(Debug)]
pub struct Server {
    kind: Kind,
    dir: PathBuf,
    zone: String,
    addr: SocketAddr,
    args: Vec<String>,
    logs: Vec<PathBuf>,
    child: Option<Child>,
    pid: u32,
    /// named: the rndc key file and control port.
    rndc: Option<(PathBuf, u16)>,
    /// The zone file a primary serves.
    zone_file: Option<PathBuf>,
    /// How long it took to answer after its (last) start.
    pub started_in: Duration,
}

impl Server {
    /// A server of `kind` run from `dir` with `args`, not yet started; its
    /// logs are `log` (a file in `dir`, if it writes one) and its
    /// standard error.
    fn new(kind: Kind, dir: &Path, zone: String, addr: SocketAddr, args: Vec<String>, log: Option<&str>) -> Server {
        let mut logs: Vec<PathBuf> = log.map(|l| dir.join(l)).into_iter().collect();
        logs.push(dir.join("stderr"));
        Server {
            kind,
            dir: dir.to_owned(),
            zone,
            addr,
            args,
            logs,
            child: None,
            pid: 0,
            rndc: None,
            zone_file: None,
            started_in: Duration::ZERO,
        }
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Which server it is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Its log so far (log files and standard error).
    pub fn log(&self) -> String {
        let mut text = String::new();
        for path in &self.logs {
            let content = std::fs::read_to_string(path).unwrap_or_default();
            if !content.is_empty() {
                let _ = writeln!(text, "--- {} ---\n{}", path.display(), content.trim_end());
            }
        }
        text
    }

    /// Its log, labelled, for a failure message.
    pub fn describe(&self) -> String {
        format!("{:?} at {} (pid {}, dir {}):\n{}", self.kind, self.addr, self.pid, self.dir.display(), self.log())
    }

    /// The lines of its log that hold every one of `needles`.
    pub fn log_lines(&self, needles: &[&str]) -> Vec<String> {
        self.log().lines().filter(|l| needles.iter().all(|n| l.contains(n))).map(str::to_owned).collect()
    }

    /// Waits for a log line with every one of `needles`.
    pub fn wait_log(&self, needles: &[&str], within: Duration) -> String {
        wait_for(within, || self.log_lines(needles).into_iter().next()).unwrap_or_else(|w| {
            panic!("no log line with {needles:?} after {w:?} in {}", self.describe());
        })
    }

    fn spawn(&mut self) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stderr"))
            .expect("open the server's stderr file");
        let mut command = Command::new(self.kind.program());
        command.args(&self.args).current_dir(&self.dir).stdin(Stdio::null()).stdout(stderr.try_clone().expect("dup"));
        command.stderr(stderr);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let started = Instant::now();
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", self.kind.program()));
        self.pid = child.id();
        self.child = Some(child);
        // It is up when it answers a query for its zone over UDP (any
        // answer: a secondary without its zone yet says SERVFAIL) and
        // accepts TCP connections.
        let up = wait_for(START_TIMEOUT, || {
            if exited(self.pid) {
                return Some(false);
            }
            let answered = query(self.addr, &self.zone, Qtype::Soa, &QueryOptions::default()).is_ok();
            (answered && TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok()).then_some(true)
        });
        match up {
            Ok(true) => {}
            Ok(false) => panic!("{:?} ended at its start: {}", self.kind, self.describe()),
            Err(waited) => panic!("{:?} does not answer {waited:?} after its start: {}", self.kind, self.describe()),
        }
        self.started_in = started.elapsed();
        eprintln!("{:?} started at {} (pid {}) in {:?}", self.kind, self.addr, self.pid, self.started_in);
    }

    /// Stops it: SIGTERM to its process group, SIGKILL after 5 s (and to
    /// whatever of the group is left once it ended).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // The leader is not reaped before the end: its pid, and so the
        // group's id, cannot be reused meanwhile.
        signal_group(self.pid, "TERM");
        let ended = wait_for(STOP_TIMEOUT, || exited(self.pid).then_some(())).is_ok();
        if !ended {
            eprintln!("{:?} (pid {}) still runs {STOP_TIMEOUT:?} after SIGTERM: SIGKILL", self.kind, self.pid);
        }
        signal_group(self.pid, "KILL");
        let _ = child.wait();
    }

    /// named or knotd primary: writes `zone_text` (its SOA on one line) to
    /// the zone file and has the server reload it; waits until it serves
    /// the new serial, and panics (with its log) if it does not.
    pub fn reload(&self, zone_text: &str) {
        let file = self.zone_file.as_ref().expect("reload: not a primary");
        let serial = text_serial(zone_text).expect("reload: the zone text has no SOA on one line");
        let temporary = file.with_extension("new");
        std::fs::write(&temporary, zone_text).expect("write the zone file");
        std::fs::rename(&temporary, file).expect("rename the zone file");
        let output = match (self.kind, &self.rndc) {
            (Kind::Named, Some((key, port))) => super::run(Command::new("rndc").arg("-k").arg(key).args([
                "-s",
                &self.addr.ip().to_string(),
                "-p",
                &port.to_string(),
                "reload",
                &self.zone,
            ])),
            (Kind::Knot, _) => super::run(
                Command::new("knotc").arg("-s").arg(self.dir.join("knot.sock")).args(["zone-reload", &self.zone]),
            ),
            _ => panic!("reload: {:?} is not a primary", self.kind),
        };
        assert!(
            output.status.success(),
            "reload of {:?} failed: {}{}\n{}",
            self.kind,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.describe()
        );
        wait_serial(self, &self.zone, serial, Duration::from_secs(10));
    }

    /// named primary: stops it, forgets its journal, writes `zone_text` and
    /// starts it again on the same port: the way to make a primary's serial
    /// go backwards (named refuses a lower serial on reload).
    pub fn restart_with(&mut self, zone_text: &str) {
        let file = self.zone_file.clone().expect("restart_with: not a primary");
        let serial = text_serial(zone_text).expect("restart_with: the zone text has no SOA on one line");
        self.stop();
        for entry in std::fs::read_dir(&self.dir).expect("ls").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".jnl") || name.ends_with(".jnl.new") || name == "journal" {
                let path = entry.path();
                let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
            }
        }
        std::fs::write(&file, zone_text).expect("write the zone file");
        self.spawn();
        wait_serial(self, &self.zone, serial, Duration::from_secs(10));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Has process `pid` (our child, not yet reaped) ended? A zombie has.
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).is_none_or(|s| s == "Z"),
        Err(_) => true,
    }
}

/// Sends a signal to the process group `pgid` (one this module started).
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg("--").arg(format!("-{pgid}")).output();
}

/// Makes `dir` (and its parents) and returns it, absolute.
fn server_dir(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    std::fs::canonicalize(dir).expect("canonicalize")
}

fn fqdn(zone: &str) -> String {
    format!("{}.", zone.trim_end_matches('.'))
}

/// NSD as a secondary of `zone` from `primary`: it accepts NOTIFY from the
/// primary's address and requests transfers from it (IXFR over TCP, NSD's
/// default for `request-xfr`, falling back to AXFR), with the key if
/// given. Its zone file is written in `dir`.
pub fn nsd_secondary(dir: &Path, zone: &str, primary: SocketAddr, tsig: Option<&Tsig>) -> Server {
    nsd_secondary_at(free_addr(LOCALHOST), dir, zone, primary, tsig)
}

/// [`nsd_secondary`] at a given address (from [`free_addr`]): for a
/// primary told of the secondary before it starts. It also sends its
/// transfer requests from that address (`outgoing-interface`).
pub fn nsd_secondary_at(addr: SocketAddr, dir: &Path, zone: &str, primary: SocketAddr, tsig: Option<&Tsig>) -> Server {
    nsd_secondary_of(addr, dir, &[(zone, primary)], tsig)
}

/// NSD at `addr` as the secondary of several zones, each `(zone, its
/// primary)`, as [`nsd_secondary_at`] is of one (the same key for all, if
/// given); each zone's file is `secondary.ZONEzone` in `dir`. It is up
/// when it answers for the first zone.
pub fn nsd_secondary_of(addr: SocketAddr, dir: &Path, zones: &[(&str, SocketAddr)], tsig: Option<&Tsig>) -> Server {
    let zones: Vec<(&str, &[SocketAddr])> =
        zones.iter().map(|(zone, primary)| (*zone, std::slice::from_ref(primary))).collect();
    nsd_secondary_with(addr, dir, &zones, tsig)
}

/// NSD at `addr` as the secondary of `zone` from every one of `primaries`
/// (NOTIFY accepted from each, transfers asked of each in turn): the
/// secondary of several signers sharing one state.
pub fn nsd_secondary_of_all(addr: SocketAddr, dir: &Path, zone: &str, primaries: &[SocketAddr]) -> Server {
    nsd_secondary_with(addr, dir, &[(zone, primaries)], None)
}

fn nsd_secondary_with(addr: SocketAddr, dir: &Path, zones: &[(&str, &[SocketAddr])], tsig: Option<&Tsig>) -> Server {
    let dir = server_dir(dir);
    let (ip, d) = (addr.ip(), dir.display());
    let key_name = tsig.map_or("NOKEY".to_owned(), |t| t.name.clone());
    let mut conf = nsd_server_clause(&dir, addr);
    if let Some(tsig) = tsig {
        conf.push_str(&tsig.nsd_clause());
    }
    for (zone, primaries) in zones {
        let zone = fqdn(zone);
        let _ = write!(conf, "zone:\n  name: \"{zone}\"\n  zonefile: \"{d}/secondary.{zone}zone\"\n");
        for primary in *primaries {
            let _ = write!(
                conf,
                "  allow-notify: {} {key_name}\n  request-xfr: {}@{} {key_name}\n",
                primary.ip(),
                primary.ip(),
                primary.port()
            );
        }
        let _ = write!(conf, "  provide-xfr: 127.0.0.0/8 NOKEY\n  outgoing-interface: {ip}\n");
    }
    let zone = fqdn(zones.first().expect("NSD: at least one zone").0);
    nsd_server(dir, zone, addr, &conf, None)
}

/// NSD at `addr` as the primary of `zone` from `zone_text` alone (no
/// transfers, no NOTIFY): a server of that zone and of nothing else.
pub fn nsd_primary_at(addr: SocketAddr, dir: &Path, zone: &str, zone_text: &str) -> Server {
    let dir = server_dir(dir);
    let zone = fqdn(zone);
    let zone_file = dir.join("primary.zone");
    std::fs::write(&zone_file, zone_text).expect("write the zone file");
    let mut conf = nsd_server_clause(&dir, addr);
    let _ = write!(conf, "zone:\n  name: \"{zone}\"\n  zonefile: \"{}\"\n", zone_file.display());
    nsd_server(dir, zone, addr, &conf, Some(zone_file))
}

/// NSD's `server:` and `remote-control:` clauses for a server at `addr`
/// with everything in `dir`.
fn nsd_server_clause(dir: &Path, addr: SocketAddr) -> String {
    let (ip, port, d) = (addr.ip(), addr.port(), dir.display());
    format!(
        "server:\n  ip-address: {ip}\n  port: {port}\n  do-ip4: yes\n  do-ip6: no\n  username: \"\"\n  chroot: \"\"\n\
         \x20 zonesdir: \"{d}\"\n  database: \"\"\n  zonelistfile: \"{d}/zone.list\"\n  xfrdfile: \"{d}/xfrd.state\"\n\
         \x20 xfrdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  logfile: \"{d}/nsd.log\"\n  cookie-secret-file: \"{d}/cookiesecrets.txt\"\n\
         \x20 verbosity: 2\n  server-count: 1\n  reuseport: no\n  hide-version: yes\n  zonefiles-write: 0\n\
         remote-control:\n  control-enable: yes\n  control-interface: \"{d}/nsd.ctl\"\n"
    )
}

/// Writes `conf` as `dir/nsd.conf`, checks it with nsd-checkconf and
/// starts NSD answering for `zone` at `addr`.
fn nsd_server(dir: PathBuf, zone: String, addr: SocketAddr, conf: &str, zone_file: Option<PathBuf>) -> Server {
    std::fs::write(dir.join("nsd.conf"), conf).expect("write nsd.conf");
    let checked = super::run(Command::new("nsd-checkconf").arg(dir.join("nsd.conf")));
    super::expect_success("nsd-checkconf", &checked);
    let args = vec!["-d".into(), "-c".into(), format!("{}/nsd.conf", dir.display())];
    let mut server = Server::new(Kind::Nsd, &dir, zone, addr, args, Some("nsd.log"));
    server.zone_file = zone_file;
    server.spawn();
    server
}

/// Knot's configuration: server, control socket, databases and log in `dir`.
fn knot_conf(dir: &Path, addr: SocketAddr, keys: &[&Tsig], rest: &str) -> String {
    let d = dir.display();
    let mut conf = format!(
        "server:\n  rundir: \"{d}\"\n  pidfile: \"{d}/knot.pid\"\n  listen: {}@{}\n\
         \x20 background-workers: 1\n  udp-workers: 1\n  tcp-workers: 1\n\
         control:\n  listen: \"{d}/knot.sock\"\n\
         database:\n  storage: \"{d}\"\n  journal-db-max-size: 64M\n  kasp-db-max-size: 16M\n  timer-db-max-size: 16M\n\
         \x20 catalog-db-max-size: 16M\n\
         log:\n  - target: \"{d}/knot.log\"\n    any: info\n",
        addr.ip(),
        addr.port()
    );
    if !keys.is_empty() {
        conf.push_str("key:\n");
        for key in keys {
            conf.push_str(&key.knot_item());
        }
    }
    conf.push_str(rest);
    conf
}

fn knot_server(dir: PathBuf, zone: String, addr: SocketAddr, conf: String, zone_file: Option<PathBuf>) -> Server {
    std::fs::write(dir.join("knot.conf"), conf).expect("write knot.conf");
    let checked = super::run(Command::new("knotc").arg("-c").arg(dir.join("knot.conf")).arg("conf-check"));
    super::expect_success("knotc conf-check", &checked);
    let args = vec!["-c".into(), dir.join("knot.conf").display().to_string()];
    let mut server = Server::new(Kind::Knot, &dir, zone, addr, args, Some("knot.log"));
    server.zone_file = zone_file;
    server.spawn();
    server
}

/// Knot (`knotd`) at `addr` (from [`free_addr`]) as a secondary of `zone`
/// from `primary`; it also sends its requests from there (`via`).
pub fn knotd_secondary_at(
    addr: SocketAddr,
    dir: &Path,
    zone: &str,
    primary: SocketAddr,
    tsig: Option<&Tsig>,
) -> Server {
    let dir = server_dir(dir);
    let zone = fqdn(zone);
    let key_line = tsig.map_or(String::new(), |t| format!("    key: {}\n", t.name));
    let rest = format!(
        "remote:\n  - id: primary\n    address: {}@{}\n    via: {}\n{key_line}\
         acl:\n  - id: notify_from_primary\n    address: {}\n{key_line}    action: notify\n\
         \x20 - id: transfer_to_tests\n    address: 127.0.0.0/8\n    action: transfer\n\
         zone:\n  - domain: {zone}\n    storage: \"{}\"\n    file: secondary.zone\n    master: primary\n\
         \x20   acl: [notify_from_primary, transfer_to_tests]\n    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: changes\n",
        primary.ip(),
        primary.port(),
        addr.ip(),
        primary.ip(),
        dir.display()
    );
    let conf = knot_conf(&dir, addr, &tsig.into_iter().collect::<Vec<_>>(), &rest);
    knot_server(dir, zone, addr, conf, None)
}

/// Knot (`knotd`) as a primary of `zone` from `zone_text`: transfers to
/// anyone with the key (or anyone at all without one), NOTIFY to
/// `notify` (with the key); a reload ([`Server::reload`]) makes the
/// difference into its journal, so that it answers IXFR.
pub fn knotd_primary(dir: &Path, zone: &str, zone_text: &str, notify: &[SocketAddr], tsig: Option<&Tsig>) -> Server {
    knotd_primary_at(free_addr(LOCALHOST), dir, zone, zone_text, notify, tsig)
}

/// [`knotd_primary`] at a given address (from [`free_addr`]).
pub fn knotd_primary_at(
    addr: SocketAddr,
    dir: &Path,
    zone: &str,
    zone_text: &str,
    notify: &[SocketAddr],
    tsig: Option<&Tsig>,
) -> Server {
    knotd_primary_with(addr, dir, zone, zone_text, &KnotPrimary { notify, tsig, ..KnotPrimary::default() })
}

/// Knot (`knotd`) at `addr` as a primary of `zone` (no NOTIFY, transfers
/// to anyone) that also accepts RFC 2136 dynamic updates of `zone` from
/// the address `from` only, signed with `key` (Knot's `acl` with
/// `action: update`, as a parent's registry interface would be); an
/// update from another address, unsigned or signed with another key is
/// refused. An update is applied (and served) before Knot answers it.
pub fn knotd_update_primary_at(
    addr: SocketAddr,
    dir: &Path,
    zone: &str,
    zone_text: &str,
    from: IpAddr,
    key: &Tsig,
) -> Server {
    let update = Some((std::slice::from_ref(&from), key));
    knotd_primary_with(addr, dir, zone, zone_text, &KnotPrimary { update, ..KnotPrimary::default() })
}

/// Knot (`knotd`) at `addr` as a parent registry: the primary of `zone`,
/// which it signs itself (`dnssec-signing`, Knot's default policy: an
/// ECDSA P-256 KSK and ZSK, NSEC), taking RFC 2136 updates of its
/// children's DS from the addresses `from` with `key` only, and signing
/// each at once. Its KSK is what a resolver trusts ([`knot_ksk`]).
pub fn knotd_signing_parent_at(
    addr: SocketAddr,
    dir: &Path,
    zone: &str,
    zone_text: &str,
    from: &[IpAddr],
    key: &Tsig,
) -> Server {
    let options = KnotPrimary { update: Some((from, key)), signing: true, ..KnotPrimary::default() };
    knotd_primary_with(addr, dir, zone, zone_text, &options)
}

/// A parent zone `parent` (SOA, NS and its glue) delegating `child`
/// (NS and glue), every record with `ttl`: the unsigned input of a
/// signing parent such as [`knotd_signing_parent_at`].
pub fn delegating_parent_text(parent: &str, child: &str, ttl: u32) -> String {
    format!(
        "{parent} {ttl} IN SOA ns.{parent} hostmaster.{parent} 1 60 30 600 {ttl}\n\
         {parent} {ttl} IN NS ns.{parent}\nns.{parent} {ttl} IN A 192.0.2.53\n\
         {child} {ttl} IN NS ns.{child}\nns.{child} {ttl} IN A 192.0.2.1\n"
    )
}

/// The DNSKEY record of the KSK (flags 257) `server` serves at `zone`, in
/// master-file form: a trust anchor.
pub fn knot_ksk(server: SocketAddr, zone: &str) -> Option<String> {
    let zone = fqdn(zone);
    let keys = dig(server, &["+short", &zone, "DNSKEY"]);
    keys.lines().find(|l| l.starts_with("257 ")).map(|key| format!("{zone} DNSKEY {key}"))
}

/// What a Knot primary does besides serving its zone.
#[derive(Debug, Default, Clone, Copy)]
struct KnotPrimary<'a> {
    /// NOTIFY goes to these.
    notify: &'a [SocketAddr],
    /// Transfers (and NOTIFY) with this key only.
    tsig: Option<&'a Tsig>,
    /// Dynamic updates from these addresses, with this key.
    update: Option<(&'a [IpAddr], &'a Tsig)>,
    /// Knot signs the zone.
    signing: bool,
}

fn knotd_primary_with(addr: SocketAddr, dir: &Path, zone: &str, zone_text: &str, options: &KnotPrimary) -> Server {
    let KnotPrimary { notify, tsig, update, signing } = *options;
    let dir = server_dir(dir);
    let zone = fqdn(zone);
    let zone_file = dir.join("primary.zone");
    std::fs::write(&zone_file, zone_text).expect("write the zone file");
    let key_line = tsig.map_or(String::new(), |t| format!("    key: {}\n", t.name));
    let mut rest = String::from("remote:\n");
    let own_ip = addr.ip();
    for (i, addr) in notify.iter().enumerate() {
        // NOTIFY leaves from the primary's own address (`via`): a receiver
        // that takes NOTIFY only from its primary's address accepts it.
        let _ = write!(
            rest,
            "  - id: secondary{i}\n    address: {}@{}\n    via: {via}\n{key_line}",
            addr.ip(),
            addr.port(),
            via = own_ip
        );
    }
    if notify.is_empty() {
        rest.clear();
    }
    let update_acl = update.map_or(String::new(), |(from, k)| {
        let from: Vec<String> = from.iter().map(IpAddr::to_string).collect();
        format!("  - id: update\n    address: [{}]\n    key: {}\n    action: update\n", from.join(", "), k.name)
    });
    let acls = if update.is_some() { "[transfer, update]" } else { "transfer" };
    let _ = write!(
        rest,
        "acl:\n  - id: transfer\n    address: 0.0.0.0/0\n{key_line}    action: transfer\n{update_acl}\
         zone:\n  - domain: {zone}\n    storage: \"{}\"\n    file: primary.zone\n    acl: {acls}\n\
         \x20   zonefile-sync: -1\n    zonefile-load: difference\n    journal-content: changes\n    serial-policy: increment\n",
        dir.display()
    );
    if signing {
        rest.push_str("    dnssec-signing: on\n");
    }
    if !notify.is_empty() {
        let ids: Vec<String> = (0..notify.len()).map(|i| format!("secondary{i}")).collect();
        let _ = writeln!(rest, "    notify: [{}]", ids.join(", "));
    }
    let mut keys: Vec<&Tsig> = tsig.into_iter().collect();
    keys.extend(update.map(|(_, k)| k).filter(|k| Some(*k) != tsig));
    let conf = knot_conf(&dir, addr, &keys, &rest);
    let server = knot_server(dir, zone.clone(), addr, conf, Some(zone_file));
    let serial = text_serial(zone_text).expect("the zone text has no SOA on one line");
    wait_serial(&server, &zone, serial, Duration::from_secs(10));
    server
}

/// BIND (`named`) as the primary of `zone` from `zone_text`: transfers to
/// holders of the key (or to anyone without one), NOTIFY to exactly
/// `notify` (with the key), at once (`notify-delay 0`), and
/// `ixfr-from-differences yes` (without a size limit), so that after
/// [`Server::reload`] it answers IXFR. rndc's key and port are in `dir`.
pub fn named_primary(dir: &Path, zone: &str, zone_text: &str, notify: &[SocketAddr], tsig: Option<&Tsig>) -> Server {
    named_primary_at(free_port(), dir, zone, zone_text, notify, tsig)
}

/// [`named_primary`] on a given port (from [`free_port`]): for secondaries
/// started before it.
pub fn named_primary_at(
    port: u16,
    dir: &Path,
    zone: &str,
    zone_text: &str,
    notify: &[SocketAddr],
    tsig: Option<&Tsig>,
) -> Server {
    named_primary_on(SocketAddr::new(LOCALHOST, port), dir, zone, zone_text, notify, tsig, None)
}

/// [`named_primary`] at `addr` (from [`free_addr`]), as an operator
/// deploys a hidden primary: it sends its NOTIFYs and everything else from
/// that address (`notify-source`, `transfer-source`), rndc listens there
/// too, and with `transfer_to` it allows transfers only to a client at that
/// address that also signs with the key (`!{ !ADDR; any; }; key K;`, the
/// BIND idiom for address and key).
pub fn named_primary_on(
    addr: SocketAddr,
    dir: &Path,
    zone: &str,
    zone_text: &str,
    notify: &[SocketAddr],
    tsig: Option<&Tsig>,
    transfer_to: Option<IpAddr>,
) -> Server {
    let dir = server_dir(dir);
    let zone = fqdn(zone);
    let (ip, port) = (addr.ip(), addr.port());
    let control = free_addr(ip).port();
    let d = dir.display();
    let zone_file = dir.join("primary.zone");
    std::fs::write(&zone_file, zone_text).expect("write the zone file");
    let rndc_key = Tsig::generate("rndc-key");
    std::fs::write(dir.join("rndc.key"), rndc_key.bind_clause()).expect("write rndc.key");
    let key_ref = tsig.map_or(String::new(), |t| format!(" key \"{}\"", t.name));
    let also_notify: String = notify.iter().map(|a| format!(" {} port {}{key_ref};", a.ip(), a.port())).collect();
    let allow_transfer = match (tsig, transfer_to) {
        (Some(t), Some(client)) => format!("!{{ !{client}; any; }}; key \"{}\";", t.name),
        (None, Some(client)) => format!("{client};"),
        (Some(t), None) => format!("key \"{}\";", t.name),
        (None, None) => "any;".to_owned(),
    };
    let mut conf = rndc_key.bind_clause();
    if let Some(tsig) = tsig {
        conf.push_str(&tsig.bind_clause());
    }
    let _ = write!(
        conf,
        "controls {{ inet {ip} port {control} allow {{ 127.0.0.0/8; }} keys {{ \"rndc-key\"; }}; }};\n\
         options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n\
         \x20 managed-keys-directory \"{d}\";\n  listen-on port {port} {{ {ip}; }};\n  listen-on-v6 {{ none; }};\n\
         \x20 notify-source {ip};\n  transfer-source {ip};\n\
         \x20 recursion no;\n  dnssec-validation no;\n  notify explicit;\n  also-notify {{{also_notify} }};\n\
         \x20 notify-delay 0;\n  ixfr-from-differences yes;\n  max-ixfr-ratio unlimited;\n\
         \x20 allow-transfer {{ {allow_transfer} }};\n}};\n\
         zone \"{zone}\" {{ type primary; file \"{}\"; }};\n",
        zone_file.display()
    );
    std::fs::write(dir.join("named.conf"), conf).expect("write named.conf");
    let checked = super::run(Command::new("named-checkconf").arg(dir.join("named.conf")));
    super::expect_success("named-checkconf", &checked);
    // -g: foreground, log to standard error; no -u: no change of user.
    let args = vec!["-g".into(), "-4".into(), "-n".into(), "1".into(), "-c".into(), format!("{d}/named.conf")];
    let mut server = Server::new(Kind::Named, &dir, zone.clone(), addr, args, None);
    server.rndc = Some((dir.join("rndc.key"), control));
    server.zone_file = Some(zone_file);
    server.spawn();
    let serial = text_serial(zone_text).expect("the zone text has no SOA on one line");
    wait_serial(&server, &zone, serial, Duration::from_secs(10));
    server
}

/// BIND (`named`) at `addr` as a secondary of `zone` from `primary`, as
/// an operator writes it: its primary by address (and key, if given),
/// NOTIFY accepted from that address only (named's default: "refused
/// notify from non-primary" otherwise), its requests sent from `addr`
/// (`transfer-source`), IXFR once it has the zone (named's default),
/// transfers out to 127.0.0.0/8 (the tests' `dig`). It logs to standard
/// error ("Transfer status: success", "IXFR" in its transfer lines).
pub fn named_secondary_at(
    addr: SocketAddr,
    dir: &Path,
    zone: &str,
    primary: SocketAddr,
    tsig: Option<&Tsig>,
) -> Server {
    let dir = server_dir(dir);
    let zone = fqdn(zone);
    let (ip, port) = (addr.ip(), addr.port());
    let d = dir.display();
    let key_ref = tsig.map_or(String::new(), |t| format!(" key \"{}\"", t.name));
    let mut conf = tsig.map_or(String::new(), Tsig::bind_clause);
    let _ = write!(
        conf,
        "controls {{ }};\n\
         options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n\
         \x20 managed-keys-directory \"{d}\";\n  listen-on port {port} {{ {ip}; }};\n  listen-on-v6 {{ none; }};\n\
         \x20 recursion no;\n  dnssec-validation no;\n  notify no;\n  notify-source {ip};\n  transfer-source {ip};\n\
         \x20 allow-transfer {{ 127.0.0.0/8; }};\n}};\n\
         zone \"{zone}\" {{ type secondary; file \"{d}/secondary.zone\"; primaries {{ {} port {}{key_ref}; }}; }};\n",
        primary.ip(),
        primary.port()
    );
    std::fs::write(dir.join("named.conf"), conf).expect("write named.conf");
    let checked = super::run(Command::new("named-checkconf").arg(dir.join("named.conf")));
    super::expect_success("named-checkconf", &checked);
    let args = vec!["-g".into(), "-4".into(), "-n".into(), "1".into(), "-c".into(), format!("{d}/named.conf")];
    let mut server = Server::new(Kind::Named, &dir, zone, addr, args, None);
    server.spawn();
    server
}

/// A base of addresses in 127.0.0.0/8 for one test, `127.X.Y.0` with X and
/// Y random: the test's servers are `base(n)`, each on its own address, and
/// tests running at once do not meet (127.0.0.0/24 is left to the older
/// tests).
pub fn random_base() -> impl Fn(u8) -> IpAddr {
    let mut bytes = [0u8; 2];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("random");
    let (x, y) = (bytes[0] % 200 + 20, bytes[1] % 250 + 1);
    move |n| IpAddr::V4(Ipv4Addr::new(127, x, y, n))
}

/// What an Unbound started by [`unbound_resolver`] resolves and trusts.
#[derive(Debug, Clone, Default)]
pub struct UnboundConfig {
    /// `(zone, server)`: a `stub-zone` each. Unbound follows no delegation
    /// to a port other than 53, so every zone it must reach (the child
    /// zones too, not only their parent) needs one; it still asks the
    /// parent's stub for a child's DS and validates the chain.
    pub stubs: Vec<(String, SocketAddr)>,
    /// Trust anchors, each a DS or DNSKEY record in master-file form.
    pub trust_anchors: Vec<String>,
    /// More `server:` lines (each indented by two spaces), e.g.
    /// `  cache-min-ttl: 30\n`.
    pub extra: String,
}

/// Unbound as a validating resolver on 127.0.0.1 at a free port: in the
/// foreground (`-d`) with its own configuration in `dir`, no
/// remote-control, no user change or chroot, one thread; it may query
/// loopback servers (`do-not-query-localhost: no`), `test.` is not the
/// local zone RFC 6761 makes it by default, and every failure to validate
/// is logged (`val-log-level: 2`, `log-servfail`). It is up when it
/// answers `localhost.` (a local zone, no recursion needed).
pub fn unbound_resolver(dir: &Path, config: &UnboundConfig) -> Server {
    let dir = server_dir(dir);
    let addr = free_addr(LOCALHOST);
    let d = dir.display();
    let mut conf = format!(
        "server:\n  interface: {}\n  port: {}\n  do-ip4: yes\n  do-ip6: no\n  do-udp: yes\n  do-tcp: yes\n\
         \x20 username: \"\"\n  chroot: \"\"\n  directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n\
         \x20 use-syslog: no\n  logfile: \"{d}/unbound.log\"\n  log-time-ascii: yes\n  verbosity: 1\n\
         \x20 val-log-level: 2\n  log-servfail: yes\n  num-threads: 1\n  so-reuseport: no\n\
         \x20 access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: no\n\
         \x20 module-config: \"validator iterator\"\n  qname-minimisation: no\n  local-zone: \"test.\" nodefault\n",
        addr.ip(),
        addr.port()
    );
    for anchor in &config.trust_anchors {
        let _ = writeln!(conf, "  trust-anchor: \"{}\"", anchor.trim());
    }
    conf.push_str(&config.extra);
    conf.push_str("remote-control:\n  control-enable: no\n");
    for (zone, server) in &config.stubs {
        let _ =
            write!(conf, "stub-zone:\n  name: \"{}\"\n  stub-addr: {}@{}\n", fqdn(zone), server.ip(), server.port());
    }
    std::fs::write(dir.join("unbound.conf"), conf).expect("write unbound.conf");
    let checked = super::run(Command::new("unbound-checkconf").arg(dir.join("unbound.conf")));
    super::expect_success("unbound-checkconf", &checked);
    let args = vec!["-d".into(), "-c".into(), format!("{d}/unbound.conf")];
    let mut server = Server::new(Kind::Unbound, &dir, "localhost.".to_owned(), addr, args, Some("unbound.log"));
    server.spawn();
    server
}

/// What a validating resolver answered: the header's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The RCODE (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, …).
    pub rcode: u8,
    /// The AD bit: the resolver validated the answer.
    pub authentic: bool,
    /// How many records the answer section holds.
    pub answers: u16,
}

/// One recursive query with the DO bit (EDNS, 1232 octets) and the AD bit
/// set (RFC 6840 §5.7: the client wants to know) to the resolver at
/// `server`, over UDP, TCP when truncated; `Err` after `timeout`. Only the
/// header of the answer is read, so no record type can fail to parse.
pub fn resolve(server: SocketAddr, name: &str, rtype: u16, timeout: Duration) -> Result<Resolved, String> {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut id = [0u8; 2];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id).expect("random id");
    let mut message = Message::new(u16::from_be_bytes(id), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.metadata.authentic_data = true;
    let qname: Name = fqdn(name).parse().map_err(|e| format!("bad name {name}: {e}"))?;
    message.add_query(Query::query(qname, RecordType::from(rtype)));
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true);
    edns.set_max_payload(1232);
    message.set_edns(edns);
    let wire = message.to_vec().map_err(|e| format!("cannot build the query: {e}"))?;
    let socket = UdpSocket::bind((LOCALHOST, 0)).map_err(|e| format!("bind: {e}"))?;
    socket.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    socket.connect(server).map_err(|e| format!("connect to {server}: {e}"))?;
    socket.send(&wire).map_err(|e| format!("send to {server}: {e}"))?;
    let mut reply = vec![0u8; 65535];
    // A late answer to an earlier query cannot come here: the socket is new.
    let len = socket.recv(&mut reply).map_err(|e| format!("no answer from {server} for {name}: {e}"))?;
    reply.truncate(len);
    if reply.len() >= 12 && reply[2] & 0x02 != 0 {
        reply = tcp_exchange(server, SocketAddr::new(LOCALHOST, 0), &wire, timeout)?;
    }
    header_of(&reply, &wire).ok_or_else(|| format!("answer from {server} for {name} is not one: {reply:02x?}"))
}

/// The header of `reply` if it answers `query` (same ID, QR set).
fn header_of(reply: &[u8], query: &[u8]) -> Option<Resolved> {
    let header = reply.get(..12)?;
    (header[..2] == query[..2] && header[2] & 0x80 != 0).then(|| Resolved {
        rcode: header[3] & 0x0f,
        authentic: header[3] & 0x20 != 0,
        answers: u16::from_be_bytes([header[6], header[7]]),
    })
}

/// The SOA serial of a zone text whose SOA record is on one line.
pub fn text_serial(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let line = line.split(';').next()?;
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let at = tokens.iter().position(|t| t.eq_ignore_ascii_case("SOA"))?;
        if at > 0 && tokens[at - 1].eq_ignore_ascii_case("RRSIG") {
            return None;
        }
        tokens.get(at + 3)?.parse().ok()
    })
}

/// Runs dig against `server` with `args`; its standard output (and
/// standard error after it).
pub fn dig(server: SocketAddr, args: &[&str]) -> String {
    let output = super::run(
        Command::new("dig")
            .arg(format!("@{}", server.ip()))
            .args(["-p", &server.port().to_string(), "+time=2", "+tries=1"])
            .args(args),
    );
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The serial of the SOA that `server` answers for `zone` (UDP, no
/// recursion), or `None` if it answers none.
pub fn soa_serial(server: SocketAddr, zone: &str) -> Option<u32> {
    let answer = query(server, zone, Qtype::Soa, &QueryOptions::default()).ok()?;
    answer.soa_serial
}

/// Waits until `server` serves `zone` with `serial` (or a later one by
/// serial arithmetic), and returns the serial; panics with the server's
/// log after `timeout`.
pub fn wait_serial(server: &Server, zone: &str, serial: u32, timeout: Duration) -> u32 {
    wait_for(timeout, || soa_serial(server.addr, zone).filter(|&s| serial_ge(s, serial))).unwrap_or_else(|w| {
        panic!(
            "{:?} serves serial {:?} of {zone} after {w:?}, expected {serial}: {}",
            server.kind,
            soa_serial(server.addr, zone),
            server.describe()
        )
    })
}

/// `a >= b` in serial number arithmetic (RFC 1982).
pub fn serial_ge(a: u32, b: u32) -> bool {
    a == b || (a.wrapping_sub(b) as i32) > 0
}

/// AXFR of `zone` from `server` with dig: the records as a zone file (one
/// SOA, no TSIG records, no comments), or dig's output if it failed.
pub fn try_axfr(server: SocketAddr, zone: &str, tsig: Option<&Tsig>) -> Result<String, String> {
    let key = tsig.map(Tsig::dig_arg);
    let mut args = vec!["+nocmd", "+nostats", "+nocomments", "+onesoa", zone, "AXFR"];
    if let Some(key) = &key {
        args.extend(["-y", key]);
    }
    let output = dig(server, &args);
    let records = zone_records(&output);
    let has_soa = records.lines().any(|l| l.split_whitespace().nth(3) == Some("SOA"));
    if output.contains("Transfer failed") || output.contains("communications error") || !has_soa {
        return Err(output);
    }
    Ok(records)
}

/// AXFR of `zone` from `server` as a zone file; panics with dig's output.
pub fn axfr_text(server: SocketAddr, zone: &str, tsig: Option<&Tsig>) -> String {
    try_axfr(server, zone, tsig).unwrap_or_else(|out| panic!("AXFR of {zone} from {server} failed:\n{out}"))
}

/// IXFR of `zone` from `server` from `serial` with dig: the records in
/// the order received (TSIG records and comments dropped), or dig's
/// output if it failed.
pub fn try_ixfr(server: SocketAddr, zone: &str, serial: u32, tsig: Option<&Tsig>) -> Result<Vec<String>, String> {
    let key = tsig.map(Tsig::dig_arg);
    let ixfr = format!("IXFR={serial}");
    let mut args = vec!["+nocmd", "+nostats", "+nocomments", "+tcp", zone, &ixfr];
    if let Some(key) = &key {
        args.extend(["-y", key]);
    }
    let output = dig(server, &args);
    if output.contains("Transfer failed") || output.contains("communications error") {
        return Err(output);
    }
    Ok(zone_records(&output).lines().map(str::to_owned).collect())
}

/// The record lines of dig's output: no comments, no blank lines, no TSIG.
fn zone_records(output: &str) -> String {
    output
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .filter(|l| l.split_whitespace().nth(3) != Some("TSIG"))
        .fold(String::new(), |mut text, line| {
            text.push_str(line);
            text.push('\n');
            text
        })
}

/// The query types the raw client asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qtype {
    /// SOA.
    Soa,
    /// A.
    A,
    /// TXT.
    Txt,
    /// AXFR (TCP only).
    Axfr,
}

/// How the raw client asks.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Over TCP rather than UDP.
    pub tcp: bool,
    /// The source address (another of 127.0.0.0/8: 127.0.0.2, …).
    pub source: Option<IpAddr>,
    /// The opcode: 0 QUERY (default), 4 NOTIFY, 5 UPDATE.
    pub opcode: u8,
}

/// The raw client's view of the first answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// RCODE mnemonic (NOERROR, REFUSED, NOTIMP, NOTAUTH, …).
    pub rcode: String,
    /// The AA bit.
    pub authoritative: bool,
    /// The serial of an SOA in the answer section, if any.
    pub soa_serial: Option<u32>,
}

/// One query (or NOTIFY, UPDATE) to `server` and its first answer, by a
/// client of its own (hickory-proto's messages): the rcode and AA bit dig
/// does not show for a failed transfer. Answers within 2 s or `Err`.
pub fn query(server: SocketAddr, zone: &str, qtype: Qtype, options: &QueryOptions) -> Result<Answer, String> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    let opcode = match options.opcode {
        0 => OpCode::Query,
        4 => OpCode::Notify,
        5 => OpCode::Update,
        other => OpCode::Unknown(other),
    };
    let mut id = [0u8; 2];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id).expect("random id");
    let id = u16::from_be_bytes(id);
    let mut message = Message::new(id, MessageType::Query, opcode);
    if opcode == OpCode::Notify {
        message.metadata.authoritative = true;
    }
    let name: Name = fqdn(zone).parse().map_err(|e| format!("bad name {zone}: {e}"))?;
    let rtype = match qtype {
        Qtype::Soa => RecordType::SOA,
        Qtype::A => RecordType::A,
        Qtype::Txt => RecordType::TXT,
        Qtype::Axfr => RecordType::AXFR,
    };
    message.add_query(Query::query(name, rtype));
    let wire = message.to_vec().map_err(|e| format!("cannot build the query: {e}"))?;
    let source = SocketAddr::new(options.source.unwrap_or(LOCALHOST), 0);
    let timeout = Duration::from_secs(2);
    let reply = if options.tcp || qtype == Qtype::Axfr {
        tcp_exchange(server, source, &wire, timeout)?
    } else {
        let socket = UdpSocket::bind(source).map_err(|e| format!("bind {source}: {e}"))?;
        socket.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        // Connected: a closed port is an error at once, not a timeout.
        socket.connect(server).map_err(|e| format!("connect to {server}: {e}"))?;
        socket.send(&wire).map_err(|e| format!("send to {server}: {e}"))?;
        let mut buf = vec![0u8; 65535];
        let len = socket.recv(&mut buf).map_err(|e| format!("no answer from {server}: {e}"))?;
        buf.truncate(len);
        buf
    };
    let answer = Message::from_vec(&reply).map_err(|e| format!("answer from {server} does not parse: {e}"))?;
    let soa_serial = answer.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    });
    Ok(Answer {
        rcode: format!("{:?}", answer.metadata.response_code).to_uppercase(),
        authoritative: answer.metadata.authoritative,
        soa_serial,
    })
}

/// Sends one message over TCP from `source` and reads the first answer.
fn tcp_exchange(server: SocketAddr, source: SocketAddr, wire: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let exchange = async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(source)?;
            let mut stream = socket.connect(server).await?;
            let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(wire);
            stream.write_all(&framed).await?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await?;
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut reply).await?;
            std::io::Result::Ok(reply)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(format!("TCP exchange with {server} from {source}: {e}")),
            Err(_) => Err(format!("TCP exchange with {server} from {source}: no answer in {timeout:?}")),
        }
    })
}

/// A proxy on 127.0.0.1 to `upstream`: UDP datagrams pass through, and each
/// TCP connection is closed (both ways) after the upstream's answer has
/// been forwarded for `cut_after` bytes: "a primary cut off
/// mid-transfer". `usize::MAX` cuts nothing.
#[derive(Debug)]
pub struct CutProxy {
    addr: SocketAddr,
    cut_after: Arc<AtomicUsize>,
    cuts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl CutProxy {
    /// Starts the proxy on a free port.
    pub fn start(upstream: SocketAddr, cut_after_bytes: usize) -> CutProxy {
        let (listener, udp) = loop {
            let port = free_port();
            if let (Ok(listener), Ok(udp)) = (TcpListener::bind((LOCALHOST, port)), UdpSocket::bind((LOCALHOST, port)))
            {
                break (listener, udp);
            }
        };
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        udp.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let cut_after = Arc::new(AtomicUsize::new(cut_after_bytes));
        let cuts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tcp_thread = {
            let (cut_after, cuts, stop) = (Arc::clone(&cut_after), Arc::clone(&cuts), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let limit = cut_after.load(Ordering::Relaxed);
                            let cuts = Arc::clone(&cuts);
                            std::thread::spawn(move || proxy_tcp(client, upstream, limit, &cuts));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        let udp_thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65535];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((len, client)) = udp.recv_from(&mut buf) else { continue };
                    let Ok(out) = UdpSocket::bind((LOCALHOST, 0)) else { continue };
                    let _ = out.set_read_timeout(Some(Duration::from_secs(2)));
                    if out.send_to(&buf[..len], upstream).is_err() {
                        continue;
                    }
                    let mut reply = vec![0u8; 65535];
                    if let Ok((n, _)) = out.recv_from(&mut reply) {
                        let _ = udp.send_to(&reply[..n], client);
                    }
                }
            })
        };
        eprintln!("CutProxy at {addr} to {upstream}, cutting after {cut_after_bytes} bytes");
        CutProxy { addr, cut_after, cuts, stop, threads: vec![tcp_thread, udp_thread] }
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts the TCP connections accepted from now on after `bytes` bytes of
    /// the upstream's answer (`usize::MAX`: never).
    pub fn set_cut_after(&self, bytes: usize) {
        self.cut_after.store(bytes, Ordering::Relaxed);
    }

    /// How many TCP connections it has cut so far.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::Relaxed)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One proxied TCP connection: the client's bytes go up as they come, the
/// upstream's come back until `limit`, then both ends are shut.
fn proxy_tcp(client: TcpStream, upstream: SocketAddr, limit: usize, cuts: &AtomicUsize) {
    let Ok(up) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(mut client_in), Ok(mut up_out)) = (client.try_clone(), up.try_clone()) else { return };
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut up_out);
        let _ = up_out.shutdown(Shutdown::Write);
    });
    let (mut up_in, mut client_out) = (up, client);
    let mut sent = 0usize;
    let mut buf = vec![0u8; 16384];
    loop {
        let n = match up_in.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let room = limit.saturating_sub(sent);
        let take = n.min(room);
        if client_out.write_all(&buf[..take]).is_err() {
            break;
        }
        sent += take;
        if take < n || sent >= limit {
            cuts.fetch_add(1, Ordering::Relaxed);
            eprintln!("CutProxy: cut a connection to {upstream} after {sent} bytes of its answer");
            break;
        }
    }
    let _ = client_out.shutdown(Shutdown::Both);
    let _ = up_in.shutdown(Shutdown::Both);
    let _ = forward.join();
}

/// A secondary's serials of a zone, sampled every 100 ms until
/// [`SerialWatch::finish`]: they must never go backwards.
pub struct SerialWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<u32>>>,
    thread: Option<JoinHandle<()>>,
}

impl SerialWatch {
    pub fn start(server: SocketAddr, zone: &str) -> SerialWatch {
        let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (flag, log, zone) = (Arc::clone(&stop), Arc::clone(&seen), zone.to_owned());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                if let Some(serial) = soa_serial(server, &zone) {
                    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                    if log.last() != Some(&serial) {
                        log.push(serial);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        SerialWatch { stop, seen, thread: Some(thread) }
    }

    /// Every serial seen, in order; panics if one went backwards.
    pub fn finish(mut self) -> Vec<u32> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for pair in seen.windows(2) {
            assert!(serial_ge(pair[1], pair[0]), "the serial went backwards: {seen:?}");
        }
        seen
    }
}
