//! Several signers, one truth, followed by a validating resolver
//! (issue 26), on loopback and on the wall clock.
//!
//! `ksk_rollover_goes_on_when_the_holder_dies_with_the_ds_pending`:
//! - the parent registry is Knot: it signs `test.` itself and takes its
//!   children's DS by RFC 2136 UPDATE, from the signers' addresses and
//!   with a TSIG key only;
//! - three `signet serve` share one PostgreSQL state and one SoftHSM
//!   token, each on its own loopback address; the zone's lease (6 s)
//!   says which one signs `ksk.test.`;
//! - NSD is the secondary of `ksk.test.` with all three as primaries;
//! - Unbound validates from `test.`'s KSK (the child's DS comes from
//!   Knot), and a query loop asks it every 250 ms for a positive answer,
//!   an NXDOMAIN, a NODATA, a wildcard and the DNSKEY RRset.
//!
//! The KSK rolls (`key rollover --ksk`, an operator's command written to
//! the database, whoever holds the zone). Once the new KSK's DS is
//! pending at the parent, the holder is killed with SIGKILL. Required:
//! - another service takes the zone within one lease period of the kill
//!   (and a moment for the taking's transaction);
//! - it finishes the rollover from the stored states: the DS is sent by
//!   UPDATE and seen by query, and the old KSK is removed;
//! - Unbound never answers SERVFAIL, and every answer has AD;
//! - NSD's serial never goes backwards;
//! - no key is made twice, no DS set is sent more than once besides one
//!   repeat across the handover;
//! - the audit names the handover from the killed service.
//!
//! With `--nocapture` it prints the failover's figures (kill → lease
//! taken → first publication by the new holder) and the query counts.

use crate::common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::Store;
use common::dns_servers::{
    SerialWatch, Server, Tsig, UnboundConfig, dig, free_addr, knot_ksk, knotd_signing_parent_at, nsd_secondary_of_all,
    random_base, soa_serial, unbound_resolver,
};
use common::postgres::SignetOnPostgres;
use common::query_loop::{A, PER_TICK, QUERY_TIMEOUT, QueryLoop, probed_zone_text, report, wait_ticks};
use common::serve::{Serve, wait_for, write_by_rename};

const PARENT: &str = "test.";
const ZONE: &str = "ksk.test.";
/// The zone's lease.
const LEASE: Duration = Duration::from_secs(6);
const SERVICES: usize = 3;
/// The TTL of every record of both zones.
const TTL: u32 = 3;
/// The DS TTL the child's policy gives (and the UPDATE sets at the
/// parent): long enough that the new DS stays pending for a while.
const DS_TTL: u32 = 10;
/// The log lines of a lease taken and of a version published.
const TAKEN: &str = "zone's lease taken";
const PUBLISHED: &str = "zone published";
/// The longest the zone may take to be signed, delegated and trusted.
const SETTLE: Duration = Duration::from_secs(120);
/// The longest the rollover may take.
const ROLLOVER: Duration = Duration::from_secs(240);

/// The peers this test runs.
fn tools() -> bool {
    ["nsd", "knotd", "knotc", "unbound", "unbound-checkconf", "softhsm2-util"].iter().all(|t| common::have_tool(t))
}

/// The parent: `test.` with a delegation to `ksk.test.` and no DS yet.
fn parent_text() -> String {
    format!(
        "{PARENT} {TTL} IN SOA ns.{PARENT} hostmaster.{PARENT} 1 60 30 600 {TTL}\n\
         {PARENT} {TTL} IN NS ns.{PARENT}\nns.{PARENT} {TTL} IN A 192.0.2.53\n\
         {ZONE} {TTL} IN NS ns.{ZONE}\nns.{ZONE} {TTL} IN A 192.0.2.1\n"
    )
}

/// A KSK and a ZSK in the SoftHSM token, RFC 7583's timing compressed to
/// seconds with every margin there, the parent checked every 1 s, 2 s.
fn policy_text(store: &Store) -> String {
    format!(
        "name = \"ha\"\n\
         [keys]\nalgorithm = \"ECDSAP256SHA256\"\nksk-lifetime = \"0\"\nzsk-lifetime = \"0\"\ndnskey-ttl = \"2s\"\n\
         publish-safety = \"1s\"\nretire-safety = \"1s\"\nstore = \"{}\"\n\
         [signatures]\nvalidity = \"2h\"\ndnskey-validity = \"2h\"\nrefresh = \"1h\"\njitter = \"1m\"\ninception-offset = \"5m\"\n\
         [denial]\ntype = \"nsec\"\n\
         [zone]\npropagation-delay = \"2s\"\nmax-ttl = \"{TTL}s\"\nserial = \"increment\"\n\
         [parent]\nds-ttl = \"{DS_TTL}s\"\npropagation-delay = \"2s\"\nregistration-delay = \"1s\"\n\
         check-interval-min = \"1s\"\ncheck-interval = \"2s\"\n",
        store.uri()
    )
}

/// The state, the services, the parent, the secondary and the resolver.
struct Deployment {
    signet: SignetOnPostgres,
    /// Each service's address, and the service while it runs.
    services: Vec<(SocketAddr, Option<Serve>)>,
    knot: Server,
    nsd: Server,
    unbound: Option<Server>,
}

impl Deployment {
    fn new() -> Deployment {
        let at = random_base();
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::softhsm(&dir.path().join("token"));
        let signet = SignetOnPostgres::with_store(&at, dir, store);
        let services: Vec<(SocketAddr, Option<Serve>)> =
            (0..SERVICES).map(|i| (free_addr(at(4 + i as u8)), None)).collect();
        let signers: Vec<IpAddr> = services.iter().map(|(addr, _)| addr.ip()).collect();
        let tsig = Tsig::generate("parent-update");
        let knot_dir = signet.dir.path().join("knot");
        let knot = knotd_signing_parent_at(free_addr(at(2)), &knot_dir, PARENT, &parent_text(), &signers, &tsig);
        let nsd_addr = free_addr(at(3));
        let primaries: Vec<SocketAddr> = services.iter().map(|(addr, _)| *addr).collect();
        let nsd = nsd_secondary_of_all(nsd_addr, &signet.dir.path().join("nsd"), ZONE, &primaries);
        let deployment = Deployment { signet, services, knot, nsd, unbound: None };
        deployment.manage_zone(&tsig);
        deployment
    }

    /// The zone under the policy, NSD its secondary, Knot its parent for
    /// UPDATE and for the DS check.
    fn manage_zone(&self, tsig: &Tsig) {
        let s = &self.signet;
        s.ok(&["init"]);
        std::fs::write(s.path("ha.toml"), policy_text(&s.store)).expect("policy");
        s.ok(&["policy", "import", &s.path("ha.toml"), "--name", "ha"]);
        write_by_rename(std::path::Path::new(&s.path("ksk.test.zone")), &probed_zone_text(ZONE, TTL));
        let (input, output) = (s.path("ksk.test.zone"), s.path("ksk.test.signed"));
        s.ok(&["zone", "add", ZONE, "--policy", "ha", "--input", &input, "--output", &output]);
        s.ok(&["zone", "secondary", "add", ZONE, &self.nsd.addr().to_string()]);
        let secret = s.path("update.key");
        tsig.write_secret_file(std::path::Path::new(&secret));
        s.ok(&["tsig", "add", &tsig.name, "--secret-file", &secret]);
        let knot = self.knot.addr().to_string();
        s.ok(&["zone", "parent-update", "add", ZONE, &knot, "--tsig", &tsig.name]);
        s.ok(&["zone", "parent-agent", "add", ZONE, &knot, "--tsig", &tsig.name]);
        let config = format!("[serve]\nlease = \"{}s\"\nretry-min = \"1s\"\nretry-max = \"2s\"\n", LEASE.as_secs());
        std::fs::write(s.path("serve.toml"), config).expect("config");
    }

    /// Starts service `i` on its address.
    fn start(&mut self, i: usize) {
        let (addr, _) = self.services[i];
        let config = self.signet.path("serve.toml");
        let command = self.signet.command(&["serve", "--config", &config, "--listen", &addr.to_string()]);
        let log = self.signet.dir.path().join(format!("serve-{i}.log"));
        self.services[i].1 = Some(Serve::start(command, &format!("ha{i}"), Some(log)));
    }

    /// The running service whose pid ends the holder's name.
    fn holder_index(&self, holder: &str) -> Option<usize> {
        self.services
            .iter()
            .position(|(_, serve)| serve.as_ref().is_some_and(|s| holder.ends_with(&format!("/{}", s.pid))))
    }

    /// How many lines of each service's log hold `needle` (0: not running).
    fn log_counts(&self, needle: &str) -> Vec<usize> {
        self.services.iter().map(|(_, serve)| serve.as_ref().map_or(0, |s| s.count(&[needle]))).collect()
    }

    /// The zone's lease as `signet status` shows it: holder, fencing, live.
    fn lease(&self) -> (String, i64, bool) {
        let status = self.signet.json(&["status", ZONE]);
        let lease = &status[0]["lease"];
        let holder = lease["holder"].as_str().unwrap_or_default().to_owned();
        (holder, lease["fencing"].as_i64().unwrap_or(0), lease["live"].as_bool().unwrap_or(false))
    }

    fn keys(&self) -> Vec<serde_json::Value> {
        self.signet.json(&["key", "list", ZONE])[0]["keys"].as_array().cloned().unwrap_or_default()
    }

    /// The zone's audit, one line each, oldest first.
    fn audit(&self) -> Vec<String> {
        let status = self.signet.json(&["zone", "status", ZONE, "--audit", "0"]);
        let rows = status["audit"].as_array().cloned().unwrap_or_default();
        rows.iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r["actor"].as_str().unwrap_or(""),
                    r["event"].as_str().unwrap_or(""),
                    r["message"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// Unbound with stubs for `test.` (Knot) and `ksk.test.` (NSD), trusting
    /// Knot's KSK of `test.`.
    fn start_unbound(&mut self) {
        let anchor = wait_for(SETTLE, || knot_ksk(self.knot.addr(), PARENT))
            .unwrap_or_else(|w| panic!("Knot serves no KSK of {PARENT} after {w:?}: {}", self.knot.describe()));
        let config = UnboundConfig {
            stubs: vec![(PARENT.to_owned(), self.knot.addr()), (ZONE.to_owned(), self.nsd.addr())],
            trust_anchors: vec![anchor],
            extra: String::new(),
        };
        self.unbound = Some(unbound_resolver(&self.signet.dir.path().join("unbound"), &config));
    }

    fn unbound(&self) -> &Server {
        self.unbound.as_ref().expect("Unbound runs")
    }

    /// The services' log tails, the keys, Knot's and NSD's state.
    fn context(&self) -> String {
        let mut text = String::new();
        for (i, (_, serve)) in self.services.iter().enumerate() {
            let tail = serve.as_ref().map_or("not running".to_owned(), Serve::tail);
            text.push_str(&format!("--- service {i}:\n{tail}\n"));
        }
        let keys = common::run(&mut self.signet.command(&["key", "list", ZONE]));
        text.push_str(&format!("--- keys:\n{}\n", String::from_utf8_lossy(&keys.stdout)));
        text.push_str(&format!("--- Knot:\n{}\n--- NSD:\n{}\n", self.knot.describe(), self.nsd.describe()));
        text
    }
}

/// Every record of every key at its goal: no transition pending.
fn settled(keys: &[serde_json::Value]) -> bool {
    keys.iter().all(|k| {
        let goal = k["goal"].as_str().unwrap_or("");
        k["states"].as_object().is_some_and(|states| states.values().all(|s| s.as_str() == Some(goal)))
    })
}

/// The KSKs of `keys` whose goal is omnipresent.
fn active_ksks(keys: &[serde_json::Value]) -> Vec<i64> {
    keys.iter().filter(|k| k["role"] == "ksk" && k["goal"] == "omnipresent").filter_map(|k| k["id"].as_i64()).collect()
}

/// Whether the new KSK (not in `before`) waits for the parent: its DS
/// asked for and not yet seen, or seen and not yet omnipresent.
fn ds_pending(before: &[i64], keys: &[serde_json::Value]) -> Option<&'static str> {
    let new = keys.iter().find(|k| k["role"] == "ksk" && !before.contains(&k["id"].as_i64().unwrap_or(0)))?;
    let todo = new["todo"].as_array().is_some_and(|t| !t.is_empty());
    match new["states"]["ds"].as_str() {
        Some("hidden") if todo => Some("its DS asked of the parent, not yet seen"),
        Some("rumoured") => Some("its DS seen at the parent, not yet omnipresent"),
        _ => None,
    }
}

#[test]
fn ksk_rollover_goes_on_when_the_holder_dies_with_the_ds_pending() {
    if !tools() {
        eprintln!("note: ha_e2e skipped: it needs nsd, knotd, unbound and softhsm2");
        return;
    }
    let started = Instant::now();
    let mut d = Deployment::new();
    d.start(0);
    wait_for(SETTLE, || soa_serial(d.nsd.addr(), ZONE))
        .unwrap_or_else(|w| panic!("NSD gets nothing after {w:?}\n{}", d.context()));
    d.start(1);
    d.start(2);
    d.start_unbound();
    // The first KSK's DS reaches Knot by UPDATE and is seen there; then
    // Unbound validates the zone.
    wait_for(SETTLE, || settled(&d.keys()).then_some(()))
        .unwrap_or_else(|w| panic!("keys not settled after {w:?}\n{}", d.context()));
    let www = format!("www.{ZONE}");
    wait_for(SETTLE, || {
        common::dns_servers::resolve(d.unbound().addr(), &www, A, QUERY_TIMEOUT).ok().filter(|r| r.authentic)
    })
    .unwrap_or_else(|w| panic!("Unbound: no AD for {www} after {w:?}\n{}", d.context()));
    eprintln!("{ZONE} signed, delegated and trusted after {:?}", started.elapsed());

    let watch = SerialWatch::start(d.nsd.addr(), ZONE);
    let queries = QueryLoop::start(d.unbound().addr(), &[ZONE]);
    wait_ticks(&queries, 4, PER_TICK);
    let before = active_ksks(&d.keys());
    d.signet.ok(&["key", "rollover", ZONE, "--ksk"]);

    // The new DS pending at the parent: the holder dies.
    let moment = wait_for(ROLLOVER, || ds_pending(&before, &d.keys()))
        .unwrap_or_else(|w| panic!("the new KSK's DS not asked for after {w:?}\n{}", d.context()));
    let (holder, fencing, _) = d.lease();
    let victim = d.holder_index(&holder).unwrap_or_else(|| panic!("no running service holds the zone: {holder}"));
    let taken_before = d.log_counts(TAKEN);
    let published_before = d.log_counts(PUBLISHED);
    if let Some(mut serve) = d.services[victim].1.take() {
        serve.kill_9();
    }
    let killed = Instant::now();
    eprintln!("new KSK: {moment}; service {victim} ({holder}, fencing {fencing}) killed with SIGKILL");

    // Another takes the zone within a lease period, and publishes. Timed
    // by the services' logs (read every 50 ms).
    let (taker, took) = wait_for(LEASE * 3, || {
        let now = d.log_counts(TAKEN);
        (0..SERVICES).find(|i| now[*i] > taken_before[*i]).map(|i| (i, killed.elapsed()))
    })
    .unwrap_or_else(|w| panic!("no takeover after {w:?}: {:?}\n{}", d.lease(), d.context()));
    let first_publication =
        wait_for(SETTLE, || (d.log_counts(PUBLISHED)[taker] > published_before[taker]).then(|| killed.elapsed()))
            .unwrap_or_else(|w| panic!("the new holder publishes nothing after {w:?}\n{}", d.context()));
    let (now_holder, now_fencing, live) = d.lease();
    assert!(live && d.holder_index(&now_holder) == Some(taker), "{now_holder} holds the lease, not service {taker}");
    assert!(now_fencing > fencing, "fencing {now_fencing} after {fencing}");
    eprintln!(
        "failover: lease taken by service {taker} {took:?} after the kill, its first publication {first_publication:?} after"
    );
    assert!(took <= LEASE + Duration::from_secs(1), "the zone taken {took:?} after the kill, lease {LEASE:?}");

    // The rollover completes under the new holder.
    let after = wait_for(ROLLOVER, || {
        let keys = d.keys();
        let now = active_ksks(&keys);
        (settled(&keys) && now.len() == 1 && !before.contains(&now[0])).then_some(keys)
    })
    .unwrap_or_else(|w| panic!("the KSK rollover is not complete after {w:?}\n{}", d.context()));
    eprintln!("KSK rollover complete {:?} after the kill", killed.elapsed());
    // Caches still hold what the last steps replaced: ask on past every TTL.
    wait_ticks(&queries, 4 * (DS_TTL as u64 + 2), PER_TICK);
    let elapsed = queries.started.elapsed();
    let tallies = queries.stop();
    eprintln!("{}", report(&tallies, elapsed));
    let tally = &tallies[ZONE];
    assert!(tally.failures.is_empty(), "every answer must validate\n{}", report(&tallies, elapsed));
    assert_eq!(tally.authentic, tally.queries, "AD on every answer");
    let serials = watch.finish();
    eprintln!("NSD's serials: {serials:?}");

    check_parent(&d, &after);
    check_exactly_once(&d, &holder);
    check_ixfr_across_the_failover(&d, victim, taker);
    eprintln!("ksk_rollover_goes_on_when_the_holder_dies_with_the_ds_pending: {:?}", started.elapsed());
}

/// Knot serves the new KSK's DS alone, and the audit shows the DS sent
/// by UPDATE and seen (and the old one gone) by the parent check.
fn check_parent(d: &Deployment, after: &[serde_json::Value]) {
    let ksk = after.iter().find(|k| k["role"] == "ksk" && k["goal"] == "omnipresent").expect("the new KSK");
    let served = dig(d.knot.addr(), &["+short", ZONE, "DS"]);
    let lines: Vec<&str> = served.lines().collect();
    assert!(lines.len() == 1 && lines[0].starts_with(&format!("{} 13 2 ", ksk["keytag"])), "Knot serves: {served}");
    let audit = d.audit();
    let by_update = audit.iter().filter(|l| l.contains("ds-requested") && l.contains("by update at")).count();
    assert!(by_update >= 3, "the first DS, both, the new one: {by_update} sent by UPDATE\n{}", audit.join("\n"));
    for event in ["ds-seen", "ds-gone"] {
        assert!(
            audit.iter().any(|l| l.starts_with(&format!("machine {event} parent check:"))),
            "no {event} by the parent check\n{}",
            audit.join("\n")
        );
    }
}

/// The new holder answered NSD's IXFR from a serial the dead holder
/// published: the differences came from the journal in the database.
fn check_ixfr_across_the_failover(d: &Deployment, victim: usize, taker: usize) {
    let log =
        |i: usize| std::fs::read_to_string(d.signet.dir.path().join(format!("serve-{i}.log"))).unwrap_or_default();
    let field = |line: &str, name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim_matches('"').to_owned())
    };
    let victims: Vec<String> =
        log(victim).lines().filter(|l| l.contains(PUBLISHED)).filter_map(|l| field(l, "serial")).collect();
    let taker_log = log(taker);
    let ixfrs: Vec<&str> =
        taker_log.lines().filter(|l| l.contains("transfer out") && l.contains("kind=\"ixfr\"")).collect();
    assert!(
        ixfrs.iter().any(|l| field(l, "from").is_some_and(|from| victims.contains(&from))),
        "no IXFR from a serial of the dead holder ({victims:?}) served by the new one:\n{}",
        ixfrs.join("\n")
    );
}

/// No key made twice; no DS set sent twice, but for one repeat across
/// the handover; the audit names the handover from `killed`.
fn check_exactly_once(d: &Deployment, killed: &str) {
    let made = d.signet.pg.query("signet", "SELECT count(*) FROM keys");
    assert_eq!(made, "3", "the first KSK and ZSK and the new KSK, each made once");
    let audit = d.audit();
    let mut sets: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for line in audit.iter().filter(|l| l.contains("ds-requested") && l.contains("by update at")) {
        let set = line.split_once(": ").map_or(line.as_str(), |(_, set)| set);
        *sets.entry(set.to_owned()).or_default() += 1;
    }
    let repeats: usize = sets.values().map(|n| n - 1).sum();
    assert!(repeats <= 1, "DS sets sent again: {sets:#?}");
    let handover = format!("from {killed}");
    assert!(
        audit.iter().any(|l| l.contains("took the zone's lease") && l.contains(&handover)),
        "the audit does not name the handover from {killed}:\n{}",
        audit.join("\n")
    );
}
