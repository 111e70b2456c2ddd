//! The offline KSK under `signet serve`, followed by a validating resolver
//! (issue 27), on the wall clock with RFC 7583's timing compressed to
//! seconds.
//!
//! `serve_with_an_offline_ksk_through_unbound`: Knot signs the parent
//! `test.` and takes the DS of `off.test.` by RFC 2136 UPDATE. The online
//! side is a `signet serve` holding only ZSKs in a SoftHSM token, NSD its
//! secondary; it sends the parent the DS set the response's CDS names, by
//! UPDATE with TSIG, as for any zone. The KSK side is a database and a
//! second token with no service, as on a machine without a network. A
//! ceremony (request, response, import) is held every 25 s, each reaching
//! 80 s ahead; the test is the operator who carries what the parent
//! publishes to the KSK side (`ds seen|gone`). Under a 20 s ZSK and a 45 s KSK, with
//! Unbound trusting `test.` only and asked every 250 ms, the zone goes
//! through several ZSK rollovers inside responses and a KSK rollover
//! across them. Required: no SERVFAIL, AD on every answer, the KSK
//! rollover complete (the first KSK gone from the zone).

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::dns_servers::{Server, dig};
use common::knot_parent::KnotParent;
use common::query_loop::{A, PER_TICK, QUERY_TIMEOUT, QueryLoop, probed_zone_text, report, wait_ticks};
use common::serve::{Serve, wait_for, write_by_rename};
use common::{Store, expect_success, have_tool, run};
use signet::zone::dnssec::key_tag;
use signet::zone::reader::read_records_file;
use signet::zone::{Name, Rtype};

const PARENT: &str = "test.";
const ZONE: &str = "off.test.";
const TTL: u32 = 3;
const DS_TTL: u32 = 2;
const SETTLE: Duration = Duration::from_secs(90);
/// Between ceremonies, and how far each request reaches.
const CEREMONY_EVERY: i64 = 25;
const REACH: i64 = 80;
/// The longest the KSK rollover may take.
const ROLLOVER: Duration = Duration::from_secs(300);

fn policy_text(store: &Store) -> String {
    format!(
        "name = \"offline\"\n\
         [keys]\nalgorithm = \"ECDSAP256SHA256\"\noffline-ksk = true\nzsk-lifetime = \"20s\"\nksk-lifetime = \"45s\"\n\
         dnskey-ttl = \"2s\"\npublish-safety = \"1s\"\nretire-safety = \"1s\"\nstore = \"{}\"\n\
         [signatures]\nvalidity = \"2h\"\ndnskey-validity = \"2h\"\nrefresh = \"1h\"\njitter = \"1m\"\ninception-offset = \"5m\"\n\
         [denial]\ntype = \"nsec\"\n\
         [zone]\npropagation-delay = \"2s\"\nmax-ttl = \"{TTL}s\"\nserial = \"increment\"\n\
         [parent]\nds-ttl = \"{DS_TTL}s\"\npropagation-delay = \"2s\"\nregistration-delay = \"1s\"\ncds = true\n",
        store.uri()
    )
}

/// One database and its key store.
struct Side {
    store: Store,
    db: PathBuf,
}

impl Side {
    fn command(&self, args: &[&str]) -> Command {
        self.store.on_db(&self.db, args)
    }

    fn ok(&self, args: &[&str]) -> Output {
        let output = run(&mut self.command(args));
        expect_success(&format!("signet {}", args.join(" ")), &output);
        output
    }
}

/// The key tags of the zone's published KSKs and ZSKs.
fn published(signed: &Path) -> (BTreeSet<u16>, BTreeSet<u16>) {
    let origin = Name::from_text(ZONE, None).expect("origin");
    let records = read_records_file(signed, &origin).unwrap_or_default();
    let (mut ksks, mut zsks) = (BTreeSet::new(), BTreeSet::new());
    for record in records.iter().filter(|r| r.owner == origin) {
        match record.rtype {
            Rtype::DNSKEY if record.rdata[1] & 1 == 1 => ksks.insert(key_tag(&record.rdata)),
            Rtype::DNSKEY => zsks.insert(key_tag(&record.rdata)),
            _ => false,
        };
    }
    (ksks, zsks)
}

/// The key tags of the DS set the parent serves for the zone.
fn parent_ds(knot: &Server) -> BTreeSet<u16> {
    let answer = dig(knot.addr(), &["+short", ZONE, "DS"]);
    answer.lines().filter_map(|line| line.split_whitespace().next()?.parse().ok()).collect()
}

/// The operator carries what the parent did to the KSK side: each DS
/// that appeared is `ds seen`, each that went `ds gone`.
fn carry_parent(seen: &mut BTreeSet<u16>, now: &BTreeSet<u16>, ksk: &Side) {
    for tag in now.difference(seen) {
        ksk.ok(&["ds", "seen", ZONE, "--keytag", &tag.to_string()]);
    }
    for tag in seen.difference(now) {
        ksk.ok(&["ds", "gone", ZONE, "--keytag", &tag.to_string()]);
    }
    seen.clone_from(now);
}

/// Request (online), signature (KSK side), import (online).
fn ceremony(online: &Side, ksk: &Side, dir: &Path, n: usize) {
    let now = signet::time::wall_clock();
    let (request, response) = (dir.join(format!("r{n}.ksr")), dir.join(format!("r{n}.skr")));
    let (from, until) = (now.to_string(), (now + REACH).to_string());
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    online.ok(&["ksr", "request", ZONE, "--from", &from, "--until", &until, "-o", &path(&request)]);
    ksk.ok(&["ksr", "sign", ZONE, &path(&request), "-o", &path(&response)]);
    online.ok(&["skr", "import", ZONE, &path(&response)]);
}

#[test]
fn serve_with_an_offline_ksk_through_unbound() {
    let tools = ["softhsm2-util", "knotd", "nsd", "unbound", "nsupdate"];
    if let Some(missing) = tools.iter().find(|t| !have_tool(t)) {
        panic!("{missing} is needed (bash .ci/setup installs it)");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let parent = KnotParent::start(dir, PARENT, ZONE, TTL);
    let knot = &parent.knot;

    let online = Side { store: Store::softhsm(&dir.join("zsk-token")), db: dir.join("online.db") };
    let ksk = Side { store: Store::softhsm(&dir.join("ksk-token")), db: dir.join("ksk.db") };
    for (side, name) in [(&online, "online"), (&ksk, "ksk")] {
        side.ok(&["init"]);
        let policy = dir.join(format!("{name}.toml"));
        std::fs::write(&policy, policy_text(&side.store)).expect("policy");
        side.ok(&["policy", "import", policy.to_str().expect("utf-8")]);
    }
    let (input, signed) = (dir.join("off.test.zone"), dir.join("off.test.signed"));
    write_by_rename(&input, &probed_zone_text(ZONE, TTL));
    let paths = (input.to_str().expect("utf-8"), signed.to_str().expect("utf-8"));
    online.ok(&["zone", "add", ZONE, "--policy", "offline", "--input", paths.0, "--output", paths.1]);
    online.ok(&["zone", "secondary", "add", ZONE, &parent.nsd_addr.to_string()]);
    ksk.ok(&["zone", "add", ZONE, "--policy", "offline", "--ksk-side"]);
    // The online signer sends the DS set the response's CDS names to the
    // parent by UPDATE, as for any zone.
    parent.register_updates(dir, |args| online.ok(args));
    let config = dir.join("serve.toml");
    std::fs::write(&config, "[serve]\nretry-min = \"1s\"\nretry-max = \"2s\"\n").expect("config");

    let mut ceremonies = 1;
    ceremony(&online, &ksk, dir, ceremonies);
    let mut last_ceremony = Instant::now();
    let command = online.command(&[
        "serve",
        "--config",
        config.to_str().expect("utf-8"),
        "--listen",
        &parent.serve_addr.to_string(),
    ]);
    let serve = Serve::start(command, "offline", Some(dir.join("serve.log")));
    let nsd = parent.nsd(dir, &serve);
    let unbound = parent.resolver(&dir.join("unbound"), &nsd, "");

    // The DS reaches the parent; the zone becomes secure.
    let mut carried = BTreeSet::new();
    let www = format!("www.{ZONE}");
    wait_for(SETTLE, || {
        carry_parent(&mut carried, &parent_ds(knot), &ksk);
        common::dns_servers::resolve(unbound.addr(), &www, A, QUERY_TIMEOUT).ok().filter(|r| r.authentic)
    })
    .unwrap_or_else(|w| panic!("Unbound: no AD for {www} after {w:?}\n{}", serve.tail()));

    let queries = QueryLoop::start(unbound.addr(), &[ZONE]);
    let (first_ksks, _) = published(&signed);
    let mut zsk_sets: Vec<BTreeSet<u16>> = Vec::new();
    let mut ksk_sets: Vec<BTreeSet<u16>> = Vec::new();
    let done = wait_for(ROLLOVER, || {
        if last_ceremony.elapsed() >= Duration::from_secs(CEREMONY_EVERY as u64) {
            ceremonies += 1;
            ceremony(&online, &ksk, dir, ceremonies);
            last_ceremony = Instant::now();
        }
        let (ksks, zsks) = published(&signed);
        carry_parent(&mut carried, &parent_ds(knot), &ksk);
        if zsk_sets.last() != Some(&zsks) {
            zsk_sets.push(zsks);
        }
        if ksk_sets.last() != Some(&ksks) {
            ksk_sets.push(ksks.clone());
        }
        let rolled = zsk_sets.len() >= 5 && ksk_sets.len() >= 3 && ksks.len() == 1 && ksks.is_disjoint(&first_ksks);
        rolled.then_some(())
    });
    if let Err(waited) = done {
        panic!(
            "the rollovers did not complete after {waited:?}: ZSKs {zsk_sets:?} KSKs {ksk_sets:?}\n{}",
            serve.tail()
        );
    }
    // Caches still hold what the last steps replaced: ask on past every TTL.
    wait_ticks(&queries, 4 * (TTL as u64 + 2), PER_TICK);
    let elapsed = queries.started.elapsed();
    let tallies = queries.stop();
    eprintln!("{}\nZSK sets {zsk_sets:?}\nKSK sets {ksk_sets:?}\n{ceremonies} ceremonies", report(&tallies, elapsed));
    let tally = &tallies[ZONE];
    assert!(tally.failures.is_empty(), "every answer must validate\n{}", report(&tallies, elapsed));
    assert_eq!(tally.authentic, tally.queries, "AD on every answer");
}
