//! Going insecure and back (issue 28), end to end on the wall clock with
//! RFC 7583's timing compressed to seconds, followed by a validating
//! resolver.
//!
//! `going_insecure_and_back_through_unbound`: Knot signs the parent
//! `test.` and takes the DS of `ins.test.` by RFC 2136 UPDATE; `signet
//! serve` signs `ins.test.` (an ECDSA CSK, in a SoftHSM token), NSD is its
//! secondary, each on its own loopback address, and Unbound validates
//! with a trust anchor for `test.` only. The zone is put under a policy
//! with `insecure = true`: signet publishes CDS/CDNSKEY DELETE, sends the
//! parent the empty DS set by UPDATE, sees the DS gone at Knot (the parent
//! check), waits the DS TTL and the propagation delay, and only then puts
//! out the zone unsigned. Back under the signed policy it makes a new key,
//! publishes it, and sends its DS. While Unbound is asked every 250 ms,
//! no answer may be SERVFAIL, time out, or carry another RCODE; answers
//! must be validated (AD) before, unvalidated (insecure) in the middle and
//! validated again at the end.
//!
//! The negative control, `unsigned_while_the_ds_is_cached_gives_servfail`:
//! the same zone, but Unbound keeps every record at least 60 s
//! (`cache-min-ttl`) while signet's policy counts on the DS leaving caches
//! 1 s after the parent drops it. signet then withdraws the DNSKEYs while
//! Unbound still holds the DS: it must answer SERVFAIL, so that the
//! positive test can fail.

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::dns_servers::{Server, dig, resolve, soa_serial};
use common::knot_parent::KnotParent;
use common::query_loop::{
    A, PER_TICK, QUERY_TIMEOUT, QueryLoop, Tally, probed_zone_text, report, servfails, wait_ticks,
};
use common::serve::{Serve, wait_for, write_by_rename};
use common::{Store, expect_success, have_tool, run};
use signet::zone::reader::read_records_file;
use signet::zone::{Name, Rtype};

const PARENT: &str = "test.";
const ZONE: &str = "ins.test.";
const TTL: u32 = 3;
/// The longest a zone may take to be signed, transferred and trusted.
const SETTLE: Duration = Duration::from_secs(90);
/// The longest going insecure, or coming back, may take.
const PHASE: Duration = Duration::from_secs(120);

/// The signed policy; `insecure` adds `insecure = true`, with the same
/// timing. `ds_ttl`: what the policy counts on for the parent's DS.
fn policy_text(store: &Store, name: &str, insecure: bool, ds_ttl: &str) -> String {
    format!(
        "name = \"{name}\"\ninsecure = {insecure}\n\
         [keys]\nalgorithm = \"ECDSAP256SHA256\"\ncsk = true\nksk-lifetime = \"0\"\n\
         dnskey-ttl = \"2s\"\npublish-safety = \"1s\"\nretire-safety = \"1s\"\nstore = \"{}\"\n\
         [signatures]\nvalidity = \"2h\"\ndnskey-validity = \"2h\"\nrefresh = \"1h\"\njitter = \"1m\"\ninception-offset = \"5m\"\n\
         [denial]\ntype = \"nsec\"\n\
         [zone]\npropagation-delay = \"2s\"\nmax-ttl = \"{TTL}s\"\nserial = \"increment\"\n\
         [parent]\nds-ttl = \"{ds_ttl}\"\npropagation-delay = \"2s\"\nregistration-delay = \"1s\"\ncds = true\n\
         check-interval-min = \"1s\"\ncheck-interval = \"2s\"\n",
        store.uri()
    )
}

/// The child's side: its database and token, serve, NSD, the parent.
struct Deployment {
    store: Store,
    db: PathBuf,
    signed: PathBuf,
    parent: KnotParent,
    nsd: Server,
    serve: Serve,
}

impl Deployment {
    /// Knot's parent, signet serve and NSD up, the zone signed under the
    /// policy `signed` and served by NSD; `insecure_ds_ttl` is the DS TTL
    /// the `insecure` policy counts on.
    fn start(dir: &Path, insecure_ds_ttl: &str) -> Deployment {
        let parent = KnotParent::start(dir, PARENT, ZONE, TTL);
        let store = Store::softhsm(&dir.join("token"));
        let db = dir.join("signet.db");
        let ok = |args: &[&str]| ok_on(&store, &db, args);
        ok(&["init"]);
        for (name, insecure, ds_ttl) in [("signed", false, "2s"), ("insecure", true, insecure_ds_ttl)] {
            let policy = dir.join(format!("{name}.toml"));
            std::fs::write(&policy, policy_text(&store, name, insecure, ds_ttl)).expect("policy");
            ok(&["policy", "import", policy.to_str().expect("utf-8")]);
        }
        let (input, signed) = (dir.join("ins.test.zone"), dir.join("ins.test.signed"));
        write_by_rename(&input, &probed_zone_text(ZONE, TTL));
        let paths = (input.to_str().expect("utf-8"), signed.to_str().expect("utf-8"));
        ok(&["zone", "add", ZONE, "--policy", "signed", "--input", paths.0, "--output", paths.1]);
        ok(&["zone", "secondary", "add", ZONE, &parent.nsd_addr.to_string()]);
        parent.register_updates(dir, ok);
        ok(&["zone", "parent-agent", "add", ZONE, &parent.knot.addr().to_string()]);
        let config = dir.join("serve.toml");
        std::fs::write(&config, "[serve]\nretry-min = \"1s\"\nretry-max = \"2s\"\n").expect("config");
        let listen = parent.serve_addr.to_string();
        let command = store.on_db(&db, &["serve", "--config", config.to_str().expect("utf-8"), "--listen", &listen]);
        let serve = Serve::start(command, "insecure", Some(dir.join("serve.log")));
        let nsd = parent.nsd(dir, &serve);
        Deployment { store, db, signed, parent, nsd, serve }
    }

    fn ok(&self, args: &[&str]) -> Output {
        ok_on(&self.store, &self.db, args)
    }

    /// Unbound trusting `test.` only, reaching the zone at NSD.
    fn resolver(&self, dir: &Path, extra: &str) -> Server {
        self.parent.resolver(dir, &self.nsd, extra)
    }

    /// Waits until the parent publishes the zone's DS (`true`) or none.
    fn wait_parent_ds(&self, present: bool, within: Duration) {
        let has_ds = || !dig(self.parent.knot.addr(), &["+short", ZONE, "DS"]).trim().is_empty();
        wait_for(within, || (has_ds() == present).then_some(())).unwrap_or_else(|w| {
            panic!("the parent's DS present={present} not reached after {w:?}\n{}", self.serve.tail())
        });
    }

    /// Waits until NSD serves the zone signed (`true`) or unsigned: the
    /// output file has (or lacks) a DNSKEY RRset and NSD has its serial.
    fn wait_served_signed(&self, signed: bool, within: Duration) -> u32 {
        wait_for(within, || {
            let (has_dnskey, serial) = output_state(&self.signed)?;
            (has_dnskey == signed && soa_serial(self.nsd.addr(), ZONE)? >= serial).then_some(serial)
        })
        .unwrap_or_else(|w| panic!("NSD does not serve signed={signed} after {w:?}\n{}", self.serve.tail()))
    }
}

fn ok_on(store: &Store, db: &Path, args: &[&str]) -> Output {
    let output = run(&mut store.on_db(db, args));
    expect_success(&format!("signet {}", args.join(" ")), &output);
    output
}

/// Whether the output file holds a DNSKEY RRset at the apex, and its serial.
fn output_state(signed: &Path) -> Option<(bool, u32)> {
    let origin = Name::from_text(ZONE, None).expect("origin");
    let records = read_records_file(signed, &origin).ok()?;
    let apex = records.iter().filter(|r| r.owner == origin);
    let mut has_dnskey = false;
    let mut serial = None;
    for record in apex {
        match record.rtype {
            Rtype::DNSKEY => has_dnskey = true,
            Rtype::SOA => serial = signet::zone::dnssec::soa_fields(&record.rdata).map(|(serial, _)| serial),
            _ => {}
        }
    }
    Some((has_dnskey, serial?))
}

/// Waits until Unbound answers `www` with NOERROR and AD (`validated`)
/// or without it (insecure).
fn wait_answer(resolver: SocketAddr, validated: bool, within: Duration, serve: &Serve) {
    let www = format!("www.{ZONE}");
    wait_for(within, || {
        resolve(resolver, &www, A, QUERY_TIMEOUT).ok().filter(|r| r.rcode == 0 && r.authentic == validated)
    })
    .unwrap_or_else(|w| panic!("Unbound: no answer with AD={validated} for {www} after {w:?}\n{}", serve.tail()));
}

/// The answers that went wrong for a zone going insecure: SERVFAIL, no
/// answer, or another RCODE than expected (a missing AD, and a DNSKEY
/// query answered NODATA, are what insecure means).
fn broken(tally: &Tally) -> Vec<String> {
    tally
        .failures
        .iter()
        .filter(|f| f.what == "SERVFAIL" || f.what.starts_with("no answer") || f.what.starts_with("rcode"))
        .map(|f| format!("{:.1} {} {}: {}", f.at, f.probe.name, f.probe.rtype, f.what))
        .collect()
}

fn tools() {
    for tool in ["softhsm2-util", "knotd", "nsd", "unbound", "nsupdate", "dig"] {
        assert!(have_tool(tool), "{tool} is needed (bash .ci/setup installs it)");
    }
}

#[test]
fn going_insecure_and_back_through_unbound() {
    tools();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let zone = Deployment::start(dir, "2s");
    zone.wait_parent_ds(true, SETTLE);
    let unbound = zone.resolver(&dir.join("unbound"), "");
    wait_answer(unbound.addr(), true, SETTLE, &zone.serve);
    let queries = QueryLoop::start(unbound.addr(), &[ZONE]);
    wait_ticks(&queries, 8, PER_TICK);
    let validated_before = queries.tallies()[ZONE].authentic;

    zone.ok(&["zone", "set-policy", ZONE, "insecure"]);
    zone.wait_parent_ds(false, PHASE);
    let unsigned_serial = zone.wait_served_signed(false, PHASE);
    wait_answer(unbound.addr(), false, PHASE, &zone.serve);
    // Past every TTL, insecure answers all along.
    wait_ticks(&queries, 4 * (u64::from(TTL) + 2), PER_TICK);
    let middle = queries.tallies()[ZONE].clone();
    let status = String::from_utf8_lossy(&zone.ok(&["zone", "status", ZONE]).stdout).into_owned();

    zone.ok(&["zone", "set-policy", ZONE, "signed"]);
    let signed_serial = zone.wait_served_signed(true, PHASE);
    zone.wait_parent_ds(true, PHASE);
    wait_answer(unbound.addr(), true, PHASE, &zone.serve);
    wait_ticks(&queries, 4 * (u64::from(TTL) + 2), PER_TICK);
    let elapsed = queries.started.elapsed();
    let tallies = queries.stop();
    let tally = &tallies[ZONE];
    eprintln!("{}\nunsigned at serial {unsigned_serial}, signed again at {signed_serial}", report(&tallies, elapsed));
    let broken = broken(tally);
    assert!(broken.is_empty(), "no answer may fail while the zone goes insecure and back:\n{}", broken.join("\n"));
    assert!(validated_before > 0, "validated before");
    assert!(middle.queries > middle.authentic, "insecure answers while unsigned");
    assert!(tally.authentic > middle.authentic, "validated again at the end");
    assert!(signed_serial > unsigned_serial);
    assert!(status.contains("dnssec unsigned"), "zone status says the zone is unsigned:\n{status}");
}

#[test]
fn unsigned_while_the_ds_is_cached_gives_servfail() {
    tools();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let zone = Deployment::start(dir, "1s");
    zone.wait_parent_ds(true, SETTLE);
    // A fresh Unbound fetches the DS now and keeps it 60 s.
    let unbound = zone.resolver(&dir.join("unbound"), "  cache-min-ttl: 60\n");
    wait_answer(unbound.addr(), true, SETTLE, &zone.serve);
    let queries = QueryLoop::start(unbound.addr(), &[ZONE]);
    zone.ok(&["zone", "set-policy", ZONE, "insecure"]);
    zone.wait_served_signed(false, PHASE);
    let seen = wait_for(Duration::from_secs(50), || (servfails(&queries, ZONE) > 0).then_some(()));
    let elapsed = queries.started.elapsed();
    let tallies = queries.stop();
    eprintln!("{}", report(&tallies, elapsed));
    assert!(
        seen.is_ok(),
        "withdrawing the DNSKEYs while a resolver holds the DS must give SERVFAIL\n{}",
        zone.serve.tail()
    );
}

/// The CLI refuses to put a zone under a policy that is not stored.
#[test]
fn set_policy_names_a_stored_policy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::soft(&tmp.path().join("keys"));
    let db = tmp.path().join("signet.db");
    ok_on(&store, &db, &["init"]);
    let output = run(&mut store.on_db(&db, &["zone", "set-policy", "example.", "nothing"]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("example.") || stderr.contains("nothing"), "{stderr}");
}
