//! The query loop of the end-to-end tests: a thread per zone asks a
//! validating resolver, every `TICK`, for a positive answer, an
//! NXDOMAIN, a NODATA, a wildcard and the DNSKEY RRset, and counts every
//! answer that is not right and authentic (SERVFAIL, no AD, a wrong
//! RCODE, an empty answer, a timeout). The zones it asks about are made
//! by [`probed_zone_text`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::dns_servers::{self, Resolved};
use super::serve::wait_for;

/// How many `hN` hosts each zone holds (fresh names for the queries).
pub const HOSTS: usize = 200;
/// How often the query loop asks.
pub const TICK: Duration = Duration::from_millis(250);
/// The longest the resolver may take for one answer.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A zone the probes fit: an apex with its name server, `www` (positive answers,
/// and NODATA for MX), a wildcard `*.wild`, and `HOSTS` hosts `hN`.
pub fn probed_zone_text(zone: &str, ttl: u32) -> String {
    let mut text = format!(
        "$ORIGIN {zone}\n$TTL {ttl}\n@ IN SOA ns hostmaster 1 60 30 600 {ttl}\n@ NS ns\nns A 192.0.2.1\n\
         www A 192.0.2.80\n*.wild A 192.0.2.81\n"
    );
    for i in 0..HOSTS {
        text.push_str(&format!("h{i} A 198.51.100.{}\n", i % 250 + 1));
    }
    text
}

/// One query of the loop and what a right answer is.
#[derive(Debug, Clone)]
pub struct Probe {
    pub name: String,
    pub rtype: u16,
    /// The RCODE expected (0 NOERROR, 3 NXDOMAIN).
    pub rcode: u8,
    /// Whether the answer section must hold records.
    pub answers: bool,
}

pub const A: u16 = 1;
const MX: u16 = 15;
const DNSKEY: u16 = 48;

/// The queries of tick `n` for `zone`: a positive answer, an NXDOMAIN, a
/// NODATA, a wildcard and the DNSKEY RRset. The NXDOMAIN and wildcard
/// names are new each tick (Unbound may still answer them from the NSEC
/// records it holds, RFC 8198), and the host asked cycles through `HOSTS`,
/// so that many answers are not cache hits.
fn probes(zone: &str, n: usize) -> [Probe; 6] {
    let p = |name: String, rtype, rcode, answers| Probe { name, rtype, rcode, answers };
    [
        p(format!("www.{zone}"), A, 0, true),
        p(format!("h{}.{zone}", n % HOSTS), A, 0, true),
        p(format!("nx{n}.{zone}"), A, 3, false),
        p(format!("www.{zone}"), MX, 0, false),
        p(format!("q{n}.wild.{zone}"), A, 0, true),
        p(zone.to_owned(), DNSKEY, 0, true),
    ]
}

/// A query that went wrong: when (Unix seconds, fractional), what, how.
#[derive(Debug, Clone)]
pub struct Failure {
    pub at: f64,
    pub probe: Probe,
    pub what: String,
}

/// What the loop saw for one zone.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub queries: u64,
    pub authentic: u64,
    pub servfail: u64,
    /// Every SERVFAIL, missing AD, wrong RCODE, empty answer or timeout.
    pub failures: Vec<Failure>,
}

impl Tally {
    pub fn record(&mut self, probe: &Probe, result: Result<Resolved, String>) {
        self.queries += 1;
        let what = match result {
            Err(e) => Some(format!("no answer: {e}")),
            Ok(r) => {
                self.authentic += u64::from(r.authentic);
                self.servfail += u64::from(r.rcode == 2);
                match r {
                    _ if r.rcode == 2 => Some("SERVFAIL".to_owned()),
                    _ if !r.authentic => Some(format!("no AD (rcode {}, {} answers)", r.rcode, r.answers)),
                    _ if r.rcode != probe.rcode => Some(format!("rcode {}, expected {}", r.rcode, probe.rcode)),
                    _ if (r.answers > 0) != probe.answers => Some(format!("{} answers", r.answers)),
                    _ => None,
                }
            }
        };
        if let Some(what) = what {
            let at =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
            self.failures.push(Failure { at, probe: probe.clone(), what });
        }
    }
}

/// The query loop: a thread per zone asks `resolver` the zone's probes
/// every `TICK` until stopped.
pub struct QueryLoop {
    stop: Arc<AtomicBool>,
    tallies: BTreeMap<String, Arc<Mutex<Tally>>>,
    threads: Vec<JoinHandle<()>>,
    pub started: Instant,
}

impl QueryLoop {
    pub fn start(resolver: SocketAddr, zones: &[&str]) -> QueryLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tallies = BTreeMap::new();
        let mut threads = Vec::new();
        for zone in zones {
            let tally = Arc::new(Mutex::new(Tally::default()));
            tallies.insert((*zone).to_owned(), Arc::clone(&tally));
            let (zone, stop) = ((*zone).to_owned(), Arc::clone(&stop));
            threads.push(std::thread::spawn(move || ask_until_stopped(resolver, &zone, &tally, &stop)));
        }
        QueryLoop { stop, tallies, threads, started: Instant::now() }
    }

    /// What the loop has seen so far, by zone.
    pub fn tallies(&self) -> BTreeMap<String, Tally> {
        self.tallies.iter().map(|(z, t)| (z.clone(), t.lock().unwrap_or_else(|p| p.into_inner()).clone())).collect()
    }

    /// Stops the threads; what they saw, by zone.
    pub fn stop(mut self) -> BTreeMap<String, Tally> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        self.tallies()
    }
}

impl Drop for QueryLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn ask_until_stopped(resolver: SocketAddr, zone: &str, tally: &Mutex<Tally>, stop: &AtomicBool) {
    let mut next = Instant::now();
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        for probe in probes(zone, n) {
            let result = dns_servers::resolve(resolver, &probe.name, probe.rtype, QUERY_TIMEOUT);
            tally.lock().unwrap_or_else(|p| p.into_inner()).record(&probe, result);
        }
        // The next tick at its time, or at once if this one ran late.
        next += TICK;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// The counts per zone and in all, and every failure, as text.
pub fn report(tallies: &BTreeMap<String, Tally>, elapsed: Duration) -> String {
    let mut text = format!("query loop over {:.0?}:\n", elapsed);
    let mut all = Tally::default();
    for (zone, t) in tallies {
        text.push_str(&format!(
            "  {zone:<12} {:>6} queries {:>6} with AD {:>4} SERVFAIL {:>4} failures\n",
            t.queries,
            t.authentic,
            t.servfail,
            t.failures.len()
        ));
        all.queries += t.queries;
        all.authentic += t.authentic;
        all.servfail += t.servfail;
        all.failures.extend(t.failures.iter().cloned());
    }
    text.push_str(&format!(
        "  {:<12} {:>6} queries {:>6} with AD {:>4} SERVFAIL {:>4} failures\n",
        "all",
        all.queries,
        all.authentic,
        all.servfail,
        all.failures.len()
    ));
    all.failures.sort_by(|a, b| a.at.total_cmp(&b.at));
    for f in all.failures.iter().take(40) {
        text.push_str(&format!("  at {:.3}: {} type {}: {}\n", f.at, f.probe.name, f.probe.rtype, f.what));
    }
    text
}

/// Waits until the loop has asked `ticks` more rounds of every zone.
pub fn wait_ticks(queries: &QueryLoop, ticks: u64, per_tick: u64) {
    let counts = |q: &QueryLoop| q.tallies().values().map(|t| t.queries).min().unwrap_or(0);
    let target = counts(queries) + ticks * per_tick;
    let within = TICK * (ticks as u32) * 4 + QUERY_TIMEOUT;
    wait_for(within, || (counts(queries) >= target).then_some(()))
        .unwrap_or_else(|w| panic!("the query loop did not ask {ticks} rounds in {w:?}"));
}

/// The queries of one tick per zone.
pub const PER_TICK: u64 = 6;

/// How many SERVFAILs the loop has had for `zone`.
pub fn servfails(queries: &QueryLoop, zone: &str) -> u64 {
    queries.tallies()[zone].servfail
}
