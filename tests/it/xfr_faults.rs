//! Transfers that cannot lose or bloat a zone, and a DNS side that follows
//! the RFCs (issue 23, items 3 to 9), through the real `signet serve`.
//!
//! The misbehaving primaries are fakes in this file: a UDP and TCP
//! listener on a 127.0.0.x address of its own and a free port, answering
//! the SOA query with the serial it is set to and a transfer with the
//! messages a scenario builds (raw bytes). Each refused transfer must
//! leave the copy and the output as they were and be named in the log and
//! in `signet status`.

use crate::common;

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::serve::{Serve, wait_for, write_by_rename};
use common::{Store, run};

const ZONE: &str = "example.test.";
/// How long signet may take for a transfer and a signing.
const PROPAGATION: Duration = Duration::from_secs(30);

// ---- DNS messages as bytes ----

fn wire_name(text: &str) -> Vec<u8> {
    let mut wire = Vec::new();
    for label in text.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    wire
}

fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12);
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(&flags.to_be_bytes());
    for count in counts {
        bytes.extend_from_slice(&count.to_be_bytes());
    }
    bytes
}

fn question(name: &str, qtype: u16) -> Vec<u8> {
    let mut bytes = wire_name(name);
    bytes.extend_from_slice(&qtype.to_be_bytes());
    bytes.extend_from_slice(&1u16.to_be_bytes());
    bytes
}

fn rr(owner: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    let mut bytes = wire_name(owner);
    bytes.extend_from_slice(&rtype.to_be_bytes());
    bytes.extend_from_slice(&1u16.to_be_bytes());
    bytes.extend_from_slice(&ttl.to_be_bytes());
    bytes.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    bytes.extend_from_slice(rdata);
    bytes
}

fn soa_rr(owner: &str, serial: u32) -> Vec<u8> {
    let mut rdata = wire_name("ns1.example.test.");
    rdata.extend(wire_name("hostmaster.example.test."));
    // Refresh 1 h (NOTIFY and the tests' timing drive the checks), retry
    // 10 min, expire 1 week, minimum 60.
    for value in [serial, 3600, 600, 604_800, 60] {
        rdata.extend_from_slice(&value.to_be_bytes());
    }
    rr(owner, 6, 60, &rdata)
}

fn soa(serial: u32) -> Vec<u8> {
    soa_rr(ZONE, serial)
}

fn a_rr(owner: &str, last: u8) -> Vec<u8> {
    rr(owner, 1, 60, &[192, 0, 2, last])
}

fn ns_rr() -> Vec<u8> {
    rr(ZONE, 2, 60, &wire_name("ns1.example.test."))
}

/// The marker TXT record, rebuilt properly (length byte counted in RDLENGTH).
fn marker(serial: u32) -> Vec<u8> {
    let text = format!("v{serial}");
    let mut rdata = vec![text.len() as u8];
    rdata.extend_from_slice(text.as_bytes());
    rr("marker.example.test.", 16, 60, &rdata)
}

/// The whole zone at `serial` as AXFR records: SOA, body, SOA.
fn axfr_records(serial: u32) -> Vec<Vec<u8>> {
    let mut records = vec![soa(serial)];
    records.extend([ns_rr(), a_rr("ns1.example.test.", 1), a_rr("www.example.test.", 80)]);
    records.push(marker(serial));
    records.push(soa(serial));
    records
}

/// One answer message to the request `id`/`query`, with `records`.
fn answer(id: u16, query: &[u8], rcode: u16, records: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = header(id, 0x8400 | rcode, [1, records.len() as u16, 0, 0]);
    bytes.extend_from_slice(query);
    for record in records {
        bytes.extend_from_slice(record);
    }
    bytes
}

/// A request as the fake primary reads it.
#[derive(Debug, Clone)]
struct Asked {
    id: u16,
    opcode: u8,
    qtype: u16,
    /// The question's bytes (name, type, class).
    question: Vec<u8>,
}

fn read_asked(bytes: &[u8]) -> Option<Asked> {
    let mut at = 12;
    while *bytes.get(at)? != 0 {
        at += 1 + usize::from(bytes[at]);
    }
    let end = at + 5;
    let question = bytes.get(12..end)?.to_vec();
    let qtype = u16::from_be_bytes([bytes[at + 1], bytes[at + 2]]);
    Some(Asked { id: u16::from_be_bytes([bytes[0], bytes[1]]), opcode: (bytes[2] >> 3) & 0x0F, qtype, question })
}

fn framed(message: &[u8]) -> Vec<u8> {
    let mut bytes = (message.len() as u16).to_be_bytes().to_vec();
    bytes.extend_from_slice(message);
    bytes
}

fn read_framed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).ok()?;
    Some(message)
}

// ---- the fake primary ----

/// What the fake primary sends for a transfer: messages, each sent after
/// its delay. An `Err` message ends the connection.
type Scenario = dyn Fn(&Asked) -> Vec<(Duration, Vec<u8>)> + Send + Sync;

/// A fake primary: UDP and TCP on one address; answers SOA queries with
/// `serial`, transfers with the scenario.
struct FakePrimary {
    addr: SocketAddr,
    serial: Arc<AtomicU32>,
    soa_queries: Arc<AtomicUsize>,
    transfers: Arc<Mutex<Vec<u16>>>,
    scenario: Arc<Mutex<Arc<Scenario>>>,
    stop: Arc<AtomicBool>,
}

impl FakePrimary {
    fn start(addr: SocketAddr, serial: u32, scenario: Arc<Scenario>) -> FakePrimary {
        let udp = UdpSocket::bind(addr).expect("bind the fake primary (UDP)");
        let tcp = TcpListener::bind(addr).expect("bind the fake primary (TCP)");
        let primary = FakePrimary {
            addr,
            serial: Arc::new(AtomicU32::new(serial)),
            soa_queries: Arc::default(),
            transfers: Arc::default(),
            scenario: Arc::new(Mutex::new(scenario)),
            stop: Arc::default(),
        };
        udp.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        tcp.set_nonblocking(true).expect("nonblocking");
        let (serial, queries, stop) =
            (Arc::clone(&primary.serial), Arc::clone(&primary.soa_queries), Arc::clone(&primary.stop));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                let Ok((len, from)) = udp.recv_from(&mut buf) else { continue };
                let Some(asked) = read_asked(&buf[..len]) else { continue };
                if asked.opcode == 0 && asked.qtype == 6 {
                    queries.fetch_add(1, Ordering::Relaxed);
                    let reply = answer(asked.id, &asked.question, 0, &[soa(serial.load(Ordering::Relaxed))]);
                    let _ = udp.send_to(&reply, from);
                }
            }
        });
        let (serial, queries, stop) =
            (Arc::clone(&primary.serial), Arc::clone(&primary.soa_queries), Arc::clone(&primary.stop));
        let (transfers, scenario) = (Arc::clone(&primary.transfers), Arc::clone(&primary.scenario));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let (serial, queries, transfers, stop) =
                    (Arc::clone(&serial), Arc::clone(&queries), Arc::clone(&transfers), Arc::clone(&stop));
                let scenario = Arc::clone(&scenario.lock().expect("scenario"));
                std::thread::spawn(move || {
                    let Some(request) = read_framed(&mut stream) else { return };
                    let Some(asked) = read_asked(&request) else { return };
                    if asked.qtype == 6 {
                        queries.fetch_add(1, Ordering::Relaxed);
                        let reply = answer(asked.id, &asked.question, 0, &[soa(serial.load(Ordering::Relaxed))]);
                        let _ = stream.write_all(&framed(&reply));
                        return;
                    }
                    transfers.lock().expect("transfers").push(asked.qtype);
                    for (delay, message) in scenario(&asked) {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(delay);
                        if stream.write_all(&framed(&message)).is_err() {
                            return;
                        }
                    }
                    // Wait for the client to close.
                    let _ = stream.read(&mut [0u8; 1]);
                });
            }
        });
        primary
    }

    fn set(&self, serial: u32, scenario: Arc<Scenario>) {
        *self.scenario.lock().expect("scenario") = scenario;
        self.serial.store(serial, Ordering::Relaxed);
    }

    fn transfers(&self) -> Vec<u16> {
        self.transfers.lock().expect("transfers").clone()
    }
}

impl Drop for FakePrimary {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The good AXFR of `serial`, in one message.
fn good_axfr(serial: u32) -> Arc<Scenario> {
    Arc::new(move |asked: &Asked| vec![(Duration::ZERO, answer(asked.id, &asked.question, 0, &axfr_records(serial)))])
}

/// A free port on `ip` for both UDP and TCP, never one handed out before
/// in this run (serve's DNS and metrics ports must differ).
fn free_addr(ip: [u8; 4]) -> SocketAddr {
    common::dns_servers::free_addr(IpAddr::from(ip))
}

// ---- signet ----

/// A database with a policy, a zone whose input is the fake primary, and
/// signet serve.
struct Env {
    dir: tempfile::TempDir,
    store: Store,
    db: PathBuf,
    output: PathBuf,
    listen: SocketAddr,
    /// serve's metrics endpoint (HTTP).
    metrics: SocketAddr,
    serve: Option<Serve>,
}

impl Env {
    /// The database and the policy; serve listens on `listen_ip`.
    fn new(listen_ip: [u8; 4]) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::soft(&dir.path().join("keys"));
        let env = Env {
            db: dir.path().join("signet.db"),
            output: dir.path().join("example.signed"),
            listen: free_addr(listen_ip),
            metrics: free_addr(listen_ip),
            dir,
            store,
            serve: None,
        };
        env.ok(&["init"]);
        let policy_file = env.dir.path().join("p.toml");
        std::fs::write(&policy_file, common::steady_policy(&env.store, "keep")).expect("write policy");
        env.ok(&["policy", "import", policy_file.to_str().expect("path"), "--name", "p"]);
        env
    }

    fn command(&self, args: &[&str]) -> Command {
        self.store.on_db(&self.db, args)
    }

    fn ok(&self, args: &[&str]) -> Output {
        self.store.ok_on(&self.db, args)
    }

    fn add_primary_zone(&self, primary: SocketAddr) {
        let (primary, output) = (primary.to_string(), self.output.to_str().expect("path"));
        self.ok(&["zone", "add", ZONE, "--policy", "p", "--output", output, "--primary", &primary]);
    }

    /// The copy of the primary's zone: the zone's input.
    fn copy(&self) -> PathBuf {
        PathBuf::from(format!("{}.unsigned", self.output.display()))
    }

    /// Starts serve with `config` lines under `[serve]`.
    fn start_serve(&mut self, config: &str) {
        let file = self.dir.path().join("serve.toml");
        let metrics = self.metrics;
        std::fs::write(
            &file,
            format!(
                "[serve]\nretry-min = \"1s\"\nretry-max = \"4s\"\nstop-timeout = \"5s\"\nmetrics = \"{metrics}\"\n{config}"
            ),
        )
        .expect("write the serve config");
        let listen = self.listen.to_string();
        let command = self.command(&["serve", "--config", file.to_str().expect("path"), "--listen", &listen]);
        let log = self.dir.path().join("serve.log");
        self.serve = Some(Serve::start(command, "xfr-faults", Some(log)));
    }

    fn serve(&self) -> &Serve {
        self.serve.as_ref().expect("serve started")
    }

    /// `signet status ZONE --format json`: the zone's object.
    fn status(&self) -> serde_json::Value {
        let output = self.ok(&["status", ZONE, "--format", "json"]);
        let all: serde_json::Value = serde_json::from_slice(&output.stdout).expect("status JSON");
        all.as_array().and_then(|a| a.first()).cloned().expect("the zone in status")
    }

    /// The metrics text serve exposes, empty if it does not answer.
    fn metrics(&self) -> String {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.metrics, Duration::from_secs(2)) else {
            return String::new();
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.metrics);
        let mut response = String::new();
        if stream.write_all(request.as_bytes()).is_err() || stream.read_to_string(&mut response).is_err() {
            return String::new();
        }
        response
    }

    /// Waits until the metrics have the line `wanted` (name, labels, value).
    fn wait_metric(&self, wanted: &str) {
        wait_for(Duration::from_secs(15), || self.metrics().lines().any(|line| line.trim() == wanted).then_some(()))
            .unwrap_or_else(|w| panic!("no metric {wanted:?} within {w:?}:\n{}", self.metrics()));
    }

    /// Waits until the output holds the SOA serial `serial`.
    fn wait_output(&self, serial: u32) {
        let wanted = format!(" {serial} 3600 600 604800 60");
        wait_for(PROPAGATION, || {
            std::fs::read_to_string(&self.output).ok().filter(|text| text.contains(&wanted)).map(drop)
        })
        .unwrap_or_else(|w| panic!("no output with serial {serial} within {w:?}\n{}", self.serve().tail()));
    }

    /// The copy and the output, to compare before and after a refusal.
    /// The copy is written after the output (off the path to the
    /// secondaries): it is waited for.
    fn files(&self) -> (Vec<u8>, Vec<u8>) {
        let copy = wait_for(PROPAGATION, || std::fs::read(self.copy()).ok())
            .unwrap_or_else(|w| panic!("no copy within {w:?}\n{}", self.serve().tail()));
        (copy, std::fs::read(&self.output).expect("the output"))
    }

    /// Waits for a refused transfer with `needle`: in the log, and in
    /// status as the last error; the copy and the output stay `before`.
    fn expect_refused(&self, needle: &str, before: &(Vec<u8>, Vec<u8>)) {
        self.serve().wait_log(&["transfer failed, nothing changed", needle], PROPAGATION);
        let status = wait_for(Duration::from_secs(10), || {
            let status = self.status();
            let message = status["transfer_in"]["last_error"]["message"].as_str().unwrap_or_default().to_owned();
            message.contains(needle).then_some(status)
        })
        .unwrap_or_else(|w| panic!("status has no last error with {needle:?} after {w:?}: {:#}", self.status()));
        eprintln!("status: {}", status["transfer_in"]["last_error"]);
        self.wait_metric(&format!("signet_zone_transfer_in_failing{{zone=\"{ZONE}\"}} 1"));
        assert!(self.files() == *before, "the copy or the output changed after a refused transfer ({needle})");
    }
}

/// A primary zone transferred at `serial` from a fresh fake primary on
/// `ip`, serve started with `config`, the output published.
fn started(ip: u8, serial: u32, config: &str) -> (Env, FakePrimary) {
    let primary = FakePrimary::start(free_addr([127, 0, 23, ip]), serial, good_axfr(serial));
    let mut env = Env::new([127, 0, 23, ip + 100]);
    env.add_primary_zone(primary.addr);
    env.start_serve(config);
    env.wait_output(serial);
    (env, primary)
}

// ---- item 4: transfers in bounded and whole ----

#[test]
fn an_axfr_with_a_second_soa_is_refused_and_the_copy_stays() {
    let (env, primary) = started(11, 10, "");
    let before = env.files();
    // Serial 11: an AXFR (the answer to the IXFR) with serial 9's SOA among its records.
    primary.set(
        11,
        Arc::new(|asked: &Asked| {
            let mut records = axfr_records(11);
            records.insert(2, soa(9));
            vec![(Duration::ZERO, answer(asked.id, &asked.question, 0, &records))]
        }),
    );
    // The refresh timer is an hour: a NOTIFY from the primary's address wakes the check.
    send_notify(&env, primary.addr.ip(), 11, 1);
    env.expect_refused("a second SOA (serial 9)", &before);
    let copy = std::fs::read_to_string(env.copy()).expect("copy");
    assert_eq!(copy.matches("\tSOA\t").count(), 1, "the copy holds one SOA:\n{copy}");
}

#[test]
fn an_ixfr_short_of_its_announced_serial_is_refused() {
    let (env, primary) = started(12, 1020, "");
    let before = env.files();
    // Announced 1030, the steps reach 1021 only.
    primary.set(
        1030,
        Arc::new(|asked: &Asked| {
            let records = [soa(1030), soa(1020), marker(1020), soa(1021), marker(1021), soa(1030)];
            vec![(Duration::ZERO, answer(asked.id, &asked.question, 0, &records))]
        }),
    );
    send_notify(&env, primary.addr.ip(), 1030, 1);
    env.expect_refused("end at serial 1021, not at the serial 1030", &before);
}

#[test]
fn an_axfr_closing_soa_under_another_owner_is_refused() {
    let (env, primary) = started(13, 5, "");
    let before = env.files();
    primary.set(
        6,
        Arc::new(|asked: &Asked| {
            let mut records = axfr_records(6);
            let last = records.len() - 1;
            records[last] = soa_rr("other.example.test.", 6);
            vec![(Duration::ZERO, answer(asked.id, &asked.question, 0, &records))]
        }),
    );
    send_notify(&env, primary.addr.ip(), 6, 1);
    env.expect_refused("an SOA record for other.example.test.", &before);
}

#[test]
fn ixfr_answered_notimp_or_formerr_falls_back_to_axfr() {
    let (env, primary) = started(14, 1, "");
    for (serial, rcode) in [(2u32, 4u16), (3, 1)] {
        primary.set(
            serial,
            Arc::new(move |asked: &Asked| {
                let message = if asked.qtype == 251 {
                    answer(asked.id, &asked.question, rcode, &[])
                } else {
                    answer(asked.id, &asked.question, 0, &axfr_records(serial))
                };
                vec![(Duration::ZERO, message)]
            }),
        );
        send_notify(&env, primary.addr.ip(), serial, 1);
        env.wait_output(serial);
        // hickory's names for NOTIMP and FORMERR.
        let name = if rcode == 4 { "NOTIMP" } else { "FORMERR" };
        env.serve().wait_log(&["IXFR answered", name, "asking for AXFR"], Duration::from_secs(5));
    }
    // IXFR first each time, then AXFR (after the first AXFR of all).
    assert_eq!(primary.transfers(), [252, 251, 252, 251, 252]);
}

#[test]
fn an_endless_axfr_is_capped_and_memory_stays_bounded() {
    let (env, primary) = started(15, 1, "transfer-max-records = 200000\n");
    let before = env.files();
    let pid = env.serve().pid;
    let rss_before = vm_kib(pid, "VmRSS:");
    // Serial 2: an AXFR without end, 500 records a message.
    primary.set(
        2,
        Arc::new(|asked: &Asked| {
            let mut records = vec![soa(2)];
            records.extend((0..499).map(|i| a_rr(&format!("h{i}.example.test."), (i % 250) as u8)));
            let first = answer(asked.id, &asked.question, 0, &records);
            let more: Vec<Vec<u8>> =
                (0..500).map(|i| a_rr(&format!("more{i}.example.test."), (i % 250) as u8)).collect();
            let next = answer(asked.id, &asked.question, 0, &more);
            // 10,000 messages (5 million records): far past the cap.
            std::iter::once((Duration::ZERO, first))
                .chain(std::iter::repeat_n((Duration::ZERO, next), 10_000))
                .collect()
        }),
    );
    send_notify(&env, primary.addr.ip(), 2, 1);
    env.expect_refused("transfer-max-records (200000 records)", &before);
    let peak = vm_kib(pid, "VmHWM:");
    let rss_after = vm_kib(pid, "VmRSS:");
    // Two more refused tries (2 s, then 4 s later): memory must not pile up.
    let failures = env.serve().count(&["transfer failed, nothing changed", "transfer-max-records"]);
    wait_for(Duration::from_secs(20), || {
        (env.serve().count(&["transfer failed, nothing changed", "transfer-max-records"]) >= failures + 2).then_some(())
    })
    .unwrap_or_else(|w| panic!("no two more refused tries within {w:?}\n{}", env.serve().tail()));
    let rss_later = vm_kib(pid, "VmRSS:");
    let peak_later = vm_kib(pid, "VmHWM:");
    eprintln!(
        "serve's memory (KiB): resident {rss_before} before, peak {peak} at the refusal, resident {rss_after} after; \
         after two more refused tries resident {rss_later}, peak {peak_later}"
    );
    // Without the cap the 5 million records would take well over 800 MB.
    assert!(peak > 0 && peak < 400 * 1024, "serve's peak memory {peak} KiB");
    // Each try is stopped at the same cap: the tries do not pile up. (The
    // allocator keeps freed memory for the process, so the resident size
    // does not drop back; it may grow by a try's worth when a try runs on
    // another thread's arena.)
    assert!(peak_later < 400 * 1024, "the peak grew from {peak} to {peak_later} KiB over two more tries");
}

#[test]
fn a_slow_drip_meets_the_transfer_deadline() {
    let (env, primary) = started(16, 1, "transfer-timeout = \"3s\"\n");
    let before = env.files();
    // One message every second, each under the 10 s a message may take.
    primary.set(
        2,
        Arc::new(|asked: &Asked| {
            let first = answer(asked.id, &asked.question, 0, &[soa(2), ns_rr()]);
            let next = answer(asked.id, &asked.question, 0, &[a_rr("www.example.test.", 80)]);
            std::iter::once((Duration::ZERO, first))
                .chain(std::iter::repeat_n((Duration::from_secs(1), next), 30))
                .collect()
        }),
    );
    let started = Instant::now();
    send_notify(&env, primary.addr.ip(), 2, 1);
    env.expect_refused("transfer-timeout (3s)", &before);
    assert!(started.elapsed() < Duration::from_secs(15), "refused after {:?}", started.elapsed());
}

// ---- item 5: retries ----

#[test]
fn the_first_transfer_is_retried_soon_when_the_primary_was_down() {
    let addr = free_addr([127, 0, 23, 17]);
    let mut env = Env::new([127, 0, 23, 117]);
    env.add_primary_zone(addr);
    env.start_serve("");
    env.serve().wait_log(&["transfer failed, nothing changed"], PROPAGATION);
    let up = Instant::now();
    let _primary = FakePrimary::start(addr, 7, good_axfr(7));
    env.wait_output(7);
    eprintln!("published {:?} after the primary came up", up.elapsed());
    assert!(up.elapsed() < Duration::from_secs(20), "took {:?}", up.elapsed());
}

// ---- item 6: NOTIFY coalesced ----

#[test]
fn a_notify_storm_makes_one_check() {
    let (env, primary) = started(18, 1, "");
    primary.set(2, good_axfr(2));
    let queries = primary.soa_queries.load(Ordering::Relaxed);
    send_notify(&env, primary.addr.ip(), 2, 300);
    env.wait_output(2);
    // NOTIFYs still arriving after the transfer must not be checked one by
    // one: watch the count for 2 s more.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let checks = primary.soa_queries.load(Ordering::Relaxed) - queries;
    eprintln!("300 NOTIFYs: {checks} SOA queries");
    assert!((1..=3).contains(&checks), "300 NOTIFYs made {checks} SOA queries");
}

/// Sends `count` NOTIFYs for `serial` from `from` (the primary's address).
fn send_notify(env: &Env, from: IpAddr, serial: u32, count: usize) {
    let socket = UdpSocket::bind(SocketAddr::new(from, 0)).expect("bind the NOTIFY socket");
    for i in 0..count {
        let mut message = header(i as u16, 0x2400, [1, 1, 0, 0]);
        message.extend(question(ZONE, 6));
        message.extend(soa(serial));
        socket.send_to(&message, env.listen).expect("send NOTIFY");
    }
}

/// A line of `/proc/PID/status` in KiB (`VmRSS:`, `VmHWM:`), 0 if it
/// cannot be read.
fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or("");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).unwrap_or(0)
}

// ---- the DNS side: a zone from a file, served ----

/// A zone from a file with `text`, serve started, the output published;
/// `acl` are the networks allowed to transfer.
fn file_zone(listen_ip: u8, text: &str, acl: &[&str], secondaries: &[SocketAddr]) -> Env {
    let mut env = Env::new([127, 0, 23, listen_ip]);
    let input = env.dir.path().join("example.zone");
    write_by_rename(&input, text);
    let (input, output) = (input.to_str().expect("path"), env.output.to_str().expect("path"));
    env.ok(&["zone", "add", ZONE, "--policy", "p", "--input", input, "--output", output]);
    for net in acl {
        env.ok(&["zone", "acl", "add", ZONE, net]);
    }
    for secondary in secondaries {
        env.ok(&["zone", "secondary", "add", ZONE, &secondary.to_string(), "--no-notify"]);
    }
    env.start_serve("");
    env.wait_output(1);
    wait_for(PROPAGATION, || soa_over_udp(env.listen, acl_ip(acl)).filter(|a| a[3] & 0x0F == 0).map(drop))
        .unwrap_or_else(|w| panic!("serve does not answer the SOA within {w:?}\n{}", env.serve().tail()));
    env
}

fn acl_ip(acl: &[&str]) -> IpAddr {
    acl.first().and_then(|net| net.split('/').next()).and_then(|ip| ip.parse().ok()).expect("an ACL address")
}

/// The zone's text up to its records; `names` are the SOA's MNAME and RNAME.
fn zone_head(names: &str) -> String {
    format!(
        "$ORIGIN {ZONE}\n$TTL 60\n@ IN SOA {names} 1 3600 600 604800 60\n@ NS ns1\nns1 A 192.0.2.1\n\
         www A 192.0.2.80\n"
    )
}

fn soa_over_udp(server: SocketAddr, from: IpAddr) -> Option<Vec<u8>> {
    let mut query = header(0x1234, 0, [1, 0, 0, 0]);
    query.extend(question(ZONE, 6));
    udp_ask(server, from, &query)
}

fn udp_ask(server: SocketAddr, from: IpAddr, message: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind(SocketAddr::new(from, 0)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    socket.send_to(message, server).ok()?;
    let mut buf = vec![0u8; 65535];
    let (len, _) = socket.recv_from(&mut buf).ok()?;
    Some(buf[..len].to_vec())
}

/// An SOA query with an OPT record: `payload`, `version`, DO if `dnssec_ok`.
fn edns_query(id: u16, payload: u16, version: u8, dnssec_ok: bool) -> Vec<u8> {
    let mut query = header(id, 0, [1, 0, 0, 1]);
    query.extend(question(ZONE, 6));
    let ttl = (u32::from(version) << 16) | if dnssec_ok { 0x8000 } else { 0 };
    query.push(0);
    query.extend_from_slice(&41u16.to_be_bytes());
    query.extend_from_slice(&payload.to_be_bytes());
    query.extend_from_slice(&ttl.to_be_bytes());
    query.extend_from_slice(&0u16.to_be_bytes());
    query
}

/// Skips a (possibly compressed) name at `at`; the offset after it.
fn skip_name(message: &[u8], mut at: usize) -> usize {
    loop {
        let len = message[at];
        if len == 0 {
            return at + 1;
        }
        if len & 0xC0 == 0xC0 {
            return at + 2;
        }
        at += 1 + usize::from(len);
    }
}

/// The records of a message: (type, TTL) in order, over all sections.
fn record_types(message: &[u8]) -> Vec<(u16, u32)> {
    let count = |i: usize| usize::from(u16::from_be_bytes([message[4 + 2 * i], message[5 + 2 * i]]));
    let mut at = 12;
    for _ in 0..count(0) {
        at = skip_name(message, at) + 4;
    }
    let mut records = Vec::new();
    for _ in 0..count(1) + count(2) + count(3) {
        at = skip_name(message, at);
        let rtype = u16::from_be_bytes([message[at], message[at + 1]]);
        let ttl = u32::from_be_bytes([message[at + 4], message[at + 5], message[at + 6], message[at + 7]]);
        let rdlength = usize::from(u16::from_be_bytes([message[at + 8], message[at + 9]]));
        records.push((rtype, ttl));
        at += 10 + rdlength;
    }
    records
}

// ---- item 3: an AXFR out never leaves a record out ----

#[test]
fn a_record_too_large_to_share_a_message_is_sent_in_one_of_its_own() {
    let strings: Vec<String> =
        (0..254).map(|i| format!("\"{}\"", char::from(b'a' + (i % 26) as u8).to_string().repeat(255))).collect();
    let text = format!("{}big TXT {}\n", zone_head("ns1 hostmaster"), strings.join(" "));
    let env = file_zone(131, &text, &["127.0.23.31/32"], &[]);
    let key_file = env.dir.path().join("xfr.key");
    let secret = "b4fSOyWnfWwOmh79zp1G23uCxK70RS/RKVxwJD5wmJ8=";
    std::fs::write(&key_file, format!("key \"xfr\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n"))
        .expect("key");
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    env.ok(&["tsig", "add", "xfr", "--secret-file", key_file.to_str().expect("path")]);
    env.ok(&["zone", "acl", "add", ZONE, "127.0.23.32/32", "--tsig", "xfr"]);
    let expected: usize = 254 * 255;
    for (from, key) in [("127.0.23.31", None), ("127.0.23.32", Some(format!("hmac-sha256:xfr:{secret}")))] {
        let port = env.listen.port().to_string();
        let server = format!("@{}", env.listen.ip());
        let mut args = vec!["-b", from, "-p", &port, &server, ZONE, "AXFR", "+time=10", "+tries=1"];
        if let Some(key) = &key {
            args.extend(["-y", key]);
        }
        // The TSIG key reaches serve at its next database poll.
        let text = wait_for(PROPAGATION, || {
            let output = run(Command::new("dig").args(&args));
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            (text.matches("\tSOA\t").count() == 2).then_some(text)
        })
        .unwrap_or_else(|w| panic!("no whole AXFR from {from} within {w:?}\n{}", env.serve().tail()));
        let big = text.lines().find(|l| l.starts_with("big.example.test.") && l.contains("\tTXT\t"));
        let letters = big.map_or(0, |line| line.chars().filter(char::is_ascii_lowercase).count());
        assert_eq!(letters, expected + "bigexampletest".len(), "the big TXT record from {from} (key {key:?})");
        assert!(
            text.lines().any(|l| l.starts_with("big.example.test.") && l.contains("RRSIG\tTXT")),
            "its RRSIG from {from}"
        );
        eprintln!("AXFR from {from}: the TXT of {expected} bytes is there");
    }
}

// ---- item 7: TCP is not for the taking ----

#[test]
fn strangers_holding_tcp_connections_do_not_starve_a_secondary() {
    let secondary = SocketAddr::new(IpAddr::from([127, 0, 23, 51]), 53);
    let env = file_zone(151, &zone_head("ns1 hostmaster"), &["127.0.23.52/32"], &[secondary]);
    // 64 strangers (127.0.0.1, in no access list) hold connections and ask
    // for the SOA every 2 s, for 15 s; a closed connection is opened again.
    let until = Instant::now() + Duration::from_secs(15);
    let opened = Arc::new(AtomicUsize::new(0));
    let listen = env.listen;
    let strangers: Vec<_> = (0..64)
        .map(|i| {
            let opened = Arc::clone(&opened);
            std::thread::spawn(move || {
                while Instant::now() < until {
                    let Ok(mut stream) = TcpStream::connect_timeout(&listen, Duration::from_secs(1)) else {
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    };
                    opened.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    while Instant::now() < until {
                        let mut query = header(i, 0, [1, 0, 0, 0]);
                        query.extend(question(ZONE, 6));
                        if stream.write_all(&framed(&query)).is_err() || read_framed(&mut stream).is_none() {
                            break;
                        }
                        std::thread::sleep(Duration::from_secs(2));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    wait_for(Duration::from_secs(10), || (opened.load(Ordering::Relaxed) >= 64).then_some(()))
        .expect("64 stranger connections");
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let port = env.listen.port().to_string();
    let server = format!("@{}", env.listen.ip());
    let output =
        run(Command::new("dig").args(["-b", "127.0.23.51", "-p", &port, &server, ZONE, "AXFR", "+time=3", "+tries=1"]));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let took = started.elapsed();
    eprintln!(
        "the secondary's AXFR took {took:?} with 64 strangers; connections opened by strangers: {}",
        opened.load(Ordering::Relaxed)
    );
    assert_eq!(text.matches("\tSOA\t").count(), 2, "the secondary's AXFR:\n{text}\n{}", env.serve().tail());
    assert!(took < Duration::from_secs(3), "the secondary waited {took:?}");
    for stranger in strangers {
        let _ = stranger.join();
    }
}

// ---- item 8: EDNS and truncation, FORMERR ----

#[test]
fn edns_badvers_do_bit_truncation_and_formerr() {
    // A long SOA MNAME and RNAME: the SOA (about 410 bytes) fits 512
    // bytes, the SOA and its RRSIG (about 110) together do not.
    let mname = format!("{}.{}.{}.{}.example.net.", "a".repeat(60), "b".repeat(60), "c".repeat(60), "d".repeat(50));
    let rname = format!("{}.{}", "h".repeat(60), "m".repeat(60));
    let env = file_zone(171, &zone_head(&format!("{mname} {rname}")), &["127.0.23.71/32"], &[]);
    let from = IpAddr::from([127, 0, 23, 71]);
    let ask = |message: &[u8]| udp_ask(env.listen, from, message).expect("an answer");
    let rcode = |answer: &[u8]| answer[3] & 0x0F;
    let opt_ttl = |answer: &[u8]| record_types(answer).into_iter().find(|(t, _)| *t == 41).map(|(_, ttl)| ttl);

    // EDNS version 1: BADVERS (extended RCODE 1 in the OPT, 0 in the header), version 0.
    let answer = ask(&edns_query(1, 1232, 1, false));
    assert_eq!((rcode(&answer), opt_ttl(&answer).map(|ttl| ttl >> 16)), (0, Some(0x0100)), "BADVERS: {answer:?}");
    assert_eq!(u16::from_be_bytes([answer[6], answer[7]]), 0, "no answer records with BADVERS");

    // DO is copied; SOA and RRSIG fit 1232 bytes.
    let answer = ask(&edns_query(2, 1232, 0, true));
    let types: Vec<u16> = record_types(&answer).into_iter().map(|(t, _)| t).collect();
    assert_eq!(types, [6, 46, 41], "SOA, its RRSIG, OPT");
    assert_eq!(opt_ttl(&answer).map(|ttl| ttl & 0x8000), Some(0x8000), "DO copied");
    assert_eq!(answer[2] & 0x02, 0, "not truncated");
    let answer = ask(&edns_query(3, 1232, 0, false));
    assert_eq!(opt_ttl(&answer).map(|ttl| ttl & 0x8000), Some(0), "DO not set when not asked");

    // 512 bytes: the RRSIG does not fit: TC (RFC 4035 §3.1.1).
    let answer = ask(&edns_query(4, 512, 0, true));
    assert!(answer.len() <= 512, "{} bytes", answer.len());
    assert_eq!(answer[2] & 0x02, 0x02, "TC when the RRSIG is left out");
    assert_eq!(record_types(&answer).first().map(|(t, _)| *t), Some(6));

    // A header and nothing else, though it counts a question: FORMERR with its ID.
    let answer = ask(&header(0xBEEF, 0x0100, [1, 0, 0, 0]));
    assert_eq!((u16::from_be_bytes([answer[0], answer[1]]), rcode(&answer)), (0xBEEF, 1), "FORMERR: {answer:?}");

    // Two questions: FORMERR (RFC 9619).
    let mut two = header(5, 0, [2, 0, 0, 0]);
    two.extend(question(ZONE, 6));
    two.extend(question(ZONE, 6));
    assert_eq!(rcode(&ask(&two)), 1, "two questions");

    // An IXFR whose SOA is another zone's: FORMERR.
    let mut ixfr = header(6, 0, [1, 0, 1, 0]);
    ixfr.extend(question(ZONE, 251));
    ixfr.extend(soa_rr("other.test.", 1));
    assert_eq!(rcode(&ask(&ixfr)), 1, "IXFR with another zone's SOA");
    let mut ixfr = header(7, 0, [1, 0, 1, 0]);
    ixfr.extend(question(ZONE, 251));
    ixfr.extend(soa(1));
    assert_eq!(rcode(&ask(&ixfr)), 0, "IXFR with the zone's SOA");
}

// ---- item 9: TSIG secrets, messages, fudge ----

/// Writes a BIND key file for `name` with the base64 `secret`, mode 0600.
fn key_file(env: &Env, name: &str, secret: &str) -> PathBuf {
    let file = env.dir.path().join(format!("{name}.key"));
    std::fs::write(&file, format!("key \"{name}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n")).expect("key");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    file
}

/// An SOA query for the zone signed with the hmac-sha256 key
/// `key_name`/`secret`, at `time_signed` with `fudge` (RFC 8945 §4.3).
fn signed_soa_query(id: u16, key_name: &str, secret: &[u8], time_signed: u64, fudge: u16) -> Vec<u8> {
    let mut message = header(id, 0, [1, 0, 0, 0]);
    message.extend(question(ZONE, 6));
    let (key, algorithm) = (wire_name(key_name), wire_name("hmac-sha256."));
    let time = &time_signed.to_be_bytes()[2..];
    let mut digest = message.clone();
    digest.extend_from_slice(&key);
    digest.extend_from_slice(&255u16.to_be_bytes());
    digest.extend_from_slice(&0u32.to_be_bytes());
    digest.extend_from_slice(&algorithm);
    digest.extend_from_slice(time);
    digest.extend_from_slice(&fudge.to_be_bytes());
    digest.extend_from_slice(&[0, 0, 0, 0]);
    let mac = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), &digest);
    let mut rdata = algorithm;
    rdata.extend_from_slice(time);
    rdata.extend_from_slice(&fudge.to_be_bytes());
    rdata.extend_from_slice(&(mac.as_ref().len() as u16).to_be_bytes());
    rdata.extend_from_slice(mac.as_ref());
    rdata.extend_from_slice(&id.to_be_bytes());
    rdata.extend_from_slice(&[0, 0, 0, 0]);
    message[10..12].copy_from_slice(&1u16.to_be_bytes());
    message.extend(key);
    message.extend_from_slice(&250u16.to_be_bytes());
    message.extend_from_slice(&255u16.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    message.extend(rdata);
    message
}

/// The RCODE of an answer and the error of its TSIG record, if it has one.
fn rcode_and_tsig_error(message: &[u8]) -> (u8, Option<u16>) {
    let count = |i: usize| usize::from(u16::from_be_bytes([message[4 + 2 * i], message[5 + 2 * i]]));
    let mut at = 12;
    for _ in 0..count(0) {
        at = skip_name(message, at) + 4;
    }
    let mut error = None;
    for _ in 0..count(1) + count(2) + count(3) {
        at = skip_name(message, at);
        let rtype = u16::from_be_bytes([message[at], message[at + 1]]);
        let rdlength = usize::from(u16::from_be_bytes([message[at + 8], message[at + 9]]));
        let rdata = at + 10;
        if rtype == 250 {
            let mac_size_at = skip_name(message, rdata) + 8;
            let mac_size = usize::from(u16::from_be_bytes([message[mac_size_at], message[mac_size_at + 1]]));
            let error_at = mac_size_at + 2 + mac_size + 2;
            error = Some(u16::from_be_bytes([message[error_at], message[error_at + 1]]));
        }
        at = rdata + rdlength;
    }
    (message[3] & 0x0F, error)
}

#[test]
fn tsig_short_secrets_messages_and_the_fudge_enforced() {
    let secret_text = "b4fSOyWnfWwOmh79zp1G23uCxK70RS/RKVxwJD5wmJ8=";
    let secret = data_encoding::BASE64.decode(secret_text.as_bytes()).expect("base64");

    // A secret of 3 bytes is refused, naming the length wanted (RFC 8945 §8).
    let env = file_zone(191, &zone_head("ns1 hostmaster"), &["127.0.23.91/32"], &[]);
    let short = key_file(&env, "short", "AQID");
    let output = run(&mut env.command(&["tsig", "add", "short", "--secret-file", short.to_str().expect("path")]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a 3-byte secret was taken:\n{stderr}");
    assert!(stderr.contains("has 3 bytes") && stderr.contains("at least 32"), "{stderr}");
    eprintln!("3-byte secret: {}", stderr.trim());

    // The fudge enforced is signet's 300 s, whatever the request's says.
    let file = key_file(&env, "xfr", secret_text);
    env.ok(&["tsig", "add", "xfr", "--secret-file", file.to_str().expect("path")]);
    let from = IpAddr::from([127, 0, 23, 91]);
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let ask = |offset: u64, fudge: u16| {
        let query = signed_soa_query(9, "xfr.", &secret, now() - offset, fudge);
        udp_ask(env.listen, from, &query).map(|answer| rcode_and_tsig_error(&answer))
    };
    // The key reaches serve at its next database poll.
    wait_for(PROPAGATION, || ask(0, 300).filter(|answer| *answer == (0, Some(0))))
        .unwrap_or_else(|w| panic!("a signed SOA query is not answered within {w:?}\n{}", env.serve().tail()));
    assert_eq!(ask(200, 300), Some((0, Some(0))), "200 s off, fudge 300: inside");
    // NOTAUTH (9) with BADTIME (18).
    assert_eq!(ask(400, 300), Some((9, Some(18))), "400 s off, fudge 300: BADTIME");
    assert_eq!(ask(400, 600), Some((9, Some(18))), "400 s off, the request's fudge 600: still BADTIME");
    assert_eq!(ask(400, 65535), Some((9, Some(18))), "400 s off, the request's fudge 65535: still BADTIME");
    env.serve().wait_log(&["BADTIME"], Duration::from_secs(5));

    // A TSIG failure says "TSIG" once: a primary that does not sign.
    let primary = FakePrimary::start(free_addr([127, 0, 23, 19]), 3, good_axfr(3));
    let mut env = Env::new([127, 0, 23, 119]);
    let file = key_file(&env, "xfr", secret_text);
    env.ok(&["tsig", "add", "xfr", "--secret-file", file.to_str().expect("path")]);
    let (addr, output) = (primary.addr.to_string(), env.output.to_str().expect("path").to_owned());
    env.ok(&["zone", "add", ZONE, "--policy", "p", "--output", &output, "--primary", &addr, "--tsig", "xfr"]);
    env.start_serve("");
    let line = env.serve().wait_log(&["transfer failed, nothing changed", "the answer is not signed"], PROPAGATION);
    let status = wait_for(Duration::from_secs(10), || {
        let message = env.status()["transfer_in"]["last_error"]["message"].as_str().unwrap_or_default().to_owned();
        message.contains("the answer is not signed").then_some(message)
    })
    .unwrap_or_else(|w| panic!("no TSIG error in status after {w:?}: {:#}", env.status()));
    eprintln!("status: {status}");
    assert_eq!(status.matches("TSIG").count(), 1, "{status}");
    assert_eq!(line.matches("TSIG").count(), 1, "{line}");
    assert!(!env.output.exists(), "nothing published from an unsigned answer");
}
