//! The parent in the loop (issue 15), end to end on loopback and on the
//! wall clock: real rollovers followed by a real validating resolver.
//!
//! `rollovers_through_a_validating_resolver`: a parent zone `test.` signed
//! by one `signet serve`, four child zones signed by a second one (its own
//! database), all five transferred to one NSD, and Unbound validating
//! with a trust anchor for `test.` only (the children's DS come from the
//! parent). Each child's DS set reaches the parent through the child
//! policy's `parent.submit-command` (a shell script that rewrites the
//! parent's unsigned input), and the child's serve checks the DS by
//! querying NSD (`zone parent-agent add`). Under policies compressed to
//! seconds, while a query loop asks Unbound every 250 ms for a positive
//! answer, an NXDOMAIN, a NODATA, a wildcard and the DNSKEY RRset of each
//! child, the children go through a ZSK rollover then an emergency one
//! (`zsk.test.`), a KSK rollover with a kill -9 of the child's serve in
//! the middle (`ksk.test.`), a CSK rollover (`csk.test.`) and an algorithm
//! rollover RSASHA256 → ECDSAP256SHA256 (`alg.test.`), all at once.
//! Required: no SERVFAIL, AD on every answer, every rollover complete
//! (the old keys removed), every DS seen and gone by the parent check
//! (actor `machine`), none by hand. With `--nocapture` it prints the
//! query counts and each rollover's phases from the audit trail.
//!
//! Two negative controls, each the same loop against a deliberately unsafe
//! timing, must see SERVFAIL, so that the positive test can fail:
//! `ds_ttl_shorter_than_the_parents_gives_servfail` (a child whose policy
//! says its DS TTL is 1 s while the parent publishes it with 60 s, rolled
//! KSK; an ordinary Unbound) and `unsafe_timing_gives_servfail` (a ZSK
//! rollover without publish safety under TTLs of 1 s, and an Unbound that
//! keeps every record 30 s, `cache-min-ttl`).
//!
//! The three tests take turns (about 85 s in all on 2 shared cores). A
//! failing test keeps its directory: databases, serve logs, zone files,
//! NSD's and Unbound's configurations and logs.

use crate::common;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::dns_servers::{self, Server, UnboundConfig};
use common::query_loop::{A, PER_TICK, QUERY_TIMEOUT, QueryLoop, probed_zone_text, report, servfails, wait_ticks};
use common::serve::{Serve, wait_for, write_by_rename};
use common::{Store, expect_success, have_tool, run};

const PARENT: &str = "test.";
/// Rolls its ZSK, then rolls it again as compromised.
const ZSK: &str = "zsk.test.";
/// Rolls its KSK; its serve is killed in the middle.
const KSK: &str = "ksk.test.";
/// Rolls its CSK.
const CSK: &str = "csk.test.";
/// Rolls from RSASHA256 to ECDSAP256SHA256.
const ALG: &str = "alg.test.";
const CHILDREN: [&str; 4] = [ZSK, KSK, CSK, ALG];
/// The negative control's child: its policy says the DS TTL is 1 s, the
/// parent publishes its DS with a TTL of `LIE_DS_TTL`.
const LIE: &str = "lie.test.";
/// The DS TTL the parent really gives `lie.test.`.
/// Long enough that Unbound still holds the old DS set when the old KSK
/// goes, whatever the parent check's backoff took.
const LIE_DS_TTL: u32 = 60;

/// The longest a zone may take to be signed, transferred and trusted.
const SETTLE: Duration = Duration::from_secs(90);
/// The longest all the rollovers together may take.
const ROLLOVERS: Duration = Duration::from_secs(240);

/// The peers: NSD serves, Unbound validates, the submit script locks the
/// parent's input with flock.
fn tools() -> bool {
    ["nsd", "nsd-checkconf", "unbound", "unbound-checkconf", "flock"].iter().all(|t| have_tool(t))
}

/// Unix time now.
fn unix_now() -> i64 {
    signet::time::wall_clock()
}

/// A policy's timing (durations as policy text).
#[derive(Debug, Clone, Copy)]
struct Timing {
    dnskey_ttl: &'static str,
    publish_safety: &'static str,
    retire_safety: &'static str,
    propagation: &'static str,
    max_ttl: &'static str,
    ds_ttl: &'static str,
    /// The TTL of every record in the zone's input (at most `max_ttl`).
    zone_ttl: u32,
}

/// RFC 7583's timing compressed to seconds, with every margin there. The
/// propagation delay is 2 s, not 1 s: NSD reloads at most once a second
/// (`xfrd-reload-timeout`), so with several zones changing at once it
/// serves a transferred version up to about 1.1 s after signet published it.
const SAFE: Timing = Timing {
    dnskey_ttl: "2s",
    publish_safety: "1s",
    retire_safety: "1s",
    propagation: "2s",
    max_ttl: "3s",
    ds_ttl: "2s",
    zone_ttl: 3,
};

/// A policy of soft keys in `store`, never rolled by lifetime (the test
/// asks for each rollover), signatures valid 2 h (the least `policy check`
/// allows), the parent checked every 1 s, 2 s, 4 s … at most 4 s while a DS
/// change is pending. `parent` adds lines to `[parent]`.
fn policy_text(name: &str, store: &Store, keys: &str, denial: &str, timing: &Timing, parent: &str) -> String {
    let t = timing;
    format!(
        "name = \"{name}\"\n\
         [keys]\n{keys}\nksk-lifetime = \"0\"\nzsk-lifetime = \"0\"\ndnskey-ttl = \"{}\"\npublish-safety = \"{}\"\n\
         retire-safety = \"{}\"\nstore = \"{}\"\n\
         [signatures]\nvalidity = \"2h\"\ndnskey-validity = \"2h\"\nrefresh = \"1h\"\njitter = \"1m\"\ninception-offset = \"5m\"\n\
         [denial]\n{denial}\n\
         [zone]\npropagation-delay = \"{}\"\nmax-ttl = \"{}\"\nserial = \"increment\"\n\
         [parent]\nds-ttl = \"{}\"\npropagation-delay = \"{}\"\nregistration-delay = \"1s\"\n{parent}",
        t.dnskey_ttl,
        t.publish_safety,
        t.retire_safety,
        store.uri(),
        t.propagation,
        t.max_ttl,
        t.ds_ttl,
        t.propagation,
    )
}

/// The parent zone with a delegation (NS and glue) to each child. The SOA
/// is one line with the owner and TTL written out (the submit script
/// moves its serial on: field 7); the DS records are the script's.
fn parent_text(children: &[&str], ttl: u32) -> String {
    let mut text = format!(
        "{PARENT} {ttl} IN SOA ns.{PARENT} hostmaster.{PARENT} 1 60 30 600 {ttl}\n\
         {PARENT} {ttl} IN NS ns.{PARENT}\nns.{PARENT} {ttl} IN A 192.0.2.53\nwww.{PARENT} {ttl} IN A 192.0.2.80\n"
    );
    for child in children {
        text.push_str(&format!("{child} {ttl} IN NS ns.{child}\nns.{child} {ttl} IN A 192.0.2.1\n"));
    }
    text
}

/// The parent's registry, as a child policy's `submit-command` runs it:
/// the DS records of `$SIGNET_ZONE` on standard input (then its DNSKEYs,
/// ignored) replace the zone's DS records in the parent's unsigned input,
/// whose SOA serial moves on; written to a temporary file and renamed,
/// under a lock (the children submit concurrently). Each submission is
/// logged with its time. With `ds_ttl`, every DS gets that TTL instead of
/// the one the child's policy gives (a parent whose DS TTL the child's
/// policy gets wrong).
fn write_submit_script(dir: &Path, parent_input: &Path, ds_ttl: Option<u32>) -> PathBuf {
    let script = dir.join("submit-ds.sh");
    let text = format!(
        r#"#!/bin/sh
set -eu
input='{input}'
ds=$(awk -v ttl='{ttl}' '$4 == "DS" {{ if (ttl != "") $2 = ttl; print }}')
exec 9>"$input.lock"
flock 9
awk -v zone="$SIGNET_ZONE" '!($1 == zone && $4 == "DS") {{ if ($4 == "SOA") $7 = $7 + 1; print }}' "$input" >"$input.$$"
printf '%s\n' "$ds" | grep . >>"$input.$$" || true
mv "$input.$$" "$input"
echo "$(date +%s.%N) $SIGNET_ZONE $(printf '%s\n' "$ds" | grep -c . || true)" >>'{log}'
"#,
        input = parent_input.display(),
        ttl = ds_ttl.map_or(String::new(), |t| t.to_string()),
        log = dir.join("submissions.log").display()
    );
    std::fs::write(&script, text).expect("write the submit script");
    script
}

/// One signet database and the `signet serve --listen` that runs it.
#[derive(Debug)]
struct Signer {
    label: &'static str,
    dir: PathBuf,
    store: Store,
    db: PathBuf,
    config: PathBuf,
    /// Where its serve answers transfers (NSD's primary).
    listen: SocketAddr,
    serve: Option<Serve>,
    starts: usize,
    /// Every key seen in a `key list`, by id (a removed key leaves it).
    names: Mutex<BTreeMap<i64, String>>,
}

impl Signer {
    /// A signer whose serve listens (and sends NOTIFY) on `ip`.
    fn new(root: &Path, label: &'static str, ip: IpAddr) -> Signer {
        let dir = root.join(label);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let config = dir.join("serve.toml");
        std::fs::write(&config, "[serve]\nretry-min = \"1s\"\nretry-max = \"4s\"\nstop-timeout = \"5s\"\n")
            .expect("write the serve config");
        let signer = Signer {
            label,
            store: Store::soft(&dir.join("keys")),
            db: dir.join("signet.db"),
            config,
            listen: dns_servers::free_addr(ip),
            dir,
            serve: None,
            starts: 0,
            names: Mutex::default(),
        };
        signer.ok(&["init"]);
        signer
    }

    fn command(&self, args: &[&str]) -> Command {
        self.store.on_db(&self.db, args)
    }

    fn ok(&self, args: &[&str]) -> Output {
        let output = run(&mut self.command(args));
        expect_success(&format!("signet ({}) {}", self.label, args.join(" ")), &output);
        output
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let output = self.ok(&all);
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("signet {args:?} printed no JSON ({e}): {}", String::from_utf8_lossy(&output.stdout))
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes and imports a policy (again: a changed policy).
    fn import_policy(&self, name: &str, text: &str) {
        let file = self.path(&format!("{}.toml", name.trim_end_matches('.')));
        std::fs::write(&file, text).expect("write policy");
        self.ok(&["policy", "import", file.to_str().expect("path"), "--name", name]);
    }

    /// The zone with a file input of `text`, transferred to `secondary`.
    fn add_zone(&self, zone: &str, policy: &str, text: &str, secondary: SocketAddr) -> PathBuf {
        let input = self.path(&format!("{zone}zone"));
        write_by_rename(&input, text);
        let output = self.path(&format!("{zone}signed"));
        let (input_arg, output_arg) = (input.to_str().expect("path"), output.to_str().expect("path"));
        self.ok(&["zone", "add", zone, "--policy", policy, "--input", input_arg, "--output", output_arg]);
        self.ok(&["zone", "secondary", "add", zone, &secondary.to_string()]);
        input
    }

    fn start(&mut self) {
        self.starts += 1;
        let listen = self.listen.to_string();
        let command = self.command(&["serve", "--config", self.config.to_str().expect("path"), "--listen", &listen]);
        let log = self.path(&format!("serve-{}.log", self.starts));
        self.serve = Some(Serve::start(command, &format!("{}-{}", self.label, self.starts), Some(log)));
    }

    fn serve(&self) -> &Serve {
        self.serve.as_ref().expect("serve runs")
    }

    /// SIGKILL to its serve.
    fn kill_9(&mut self) {
        if let Some(mut serve) = self.serve.take() {
            serve.kill_9();
        }
    }

    /// The keys of `key list ZONE --format json` (removed keys are not).
    fn keys(&self, zone: &str) -> Vec<serde_json::Value> {
        let keys = self.json(&["key", "list", zone])[0]["keys"].as_array().cloned().unwrap_or_default();
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        for k in &keys {
            let name = format!(
                "{} {} (alg {})",
                k["role"].as_str().unwrap_or("?").to_uppercase(),
                k["keytag"],
                k["algorithm"]
            );
            names.insert(k["id"].as_i64().unwrap_or(0), name);
        }
        keys
    }

    /// A key's role, tag and algorithm, if a `key list` showed it.
    fn key_name(&self, id: Option<i64>) -> String {
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        id.and_then(|id| names.get(&id).cloned()).unwrap_or_default()
    }

    /// The zone's whole audit trail, oldest first (`zone status --audit 0`).
    fn audit(&self, zone: &str) -> Vec<AuditRow> {
        let status = self.json(&["zone", "status", zone, "--audit", "0"]);
        status["audit"].as_array().map(|rows| rows.iter().map(AuditRow::from_json).collect()).unwrap_or_default()
    }

    /// Its serve's log tail and every zone's keys, for a failure message.
    fn context(&self, zones: &[&str]) -> String {
        let mut text = self.serve.as_ref().map_or("serve not running".to_owned(), Serve::tail);
        for zone in zones {
            let list = run(&mut self.command(&["key", "list", zone]));
            text.push_str(&format!("\n{}", String::from_utf8_lossy(&list.stdout)));
        }
        text
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        if let Some(mut serve) = self.serve.take() {
            serve.kill_9();
        }
    }
}

/// One row of the audit trail, as `zone status --format json` shows it.
#[derive(Debug, Clone)]
struct AuditRow {
    at: i64,
    /// `machine` or `operator`.
    actor: String,
    /// `transition`, `ds-seen`, `key-removed`, …
    event: String,
    key: Option<i64>,
    /// A transition's `record from → to`.
    change: Option<String>,
    /// Why (a transition's, after its `record from → to: `).
    why: String,
}

impl AuditRow {
    fn from_json(row: &serde_json::Value) -> AuditRow {
        let text = |field: &str| row[field].as_str().map(str::to_owned);
        let change = match (text("record"), text("from_state"), text("to_state")) {
            (Some(record), Some(from), Some(to)) => Some(format!("{record} {from} → {to}")),
            _ => None,
        };
        let message = text("message").unwrap_or_default();
        let why = change.as_ref().and_then(|c| message.strip_prefix(&format!("{c}: "))).unwrap_or(&message).to_owned();
        AuditRow {
            at: row["at"].as_i64().unwrap_or(0),
            actor: text("actor").unwrap_or_default(),
            event: text("event").unwrap_or_default(),
            key: row["key_id"].as_i64(),
            change,
            why,
        }
    }
}

/// Is every record of every key of `keys` omnipresent (goal omnipresent)
/// or hidden (goal hidden): no transition pending?
fn settled(keys: &[serde_json::Value]) -> bool {
    keys.iter().all(|k| {
        let goal = k["goal"].as_str().unwrap_or("");
        k["states"].as_object().is_some_and(|states| states.values().all(|s| s.as_str() == Some(goal)))
    })
}

/// The ids of the keys of `keys` whose goal is omnipresent.
fn active_ids(keys: &[serde_json::Value]) -> Vec<i64> {
    keys.iter().filter(|k| k["goal"] == "omnipresent").filter_map(|k| k["id"].as_i64()).collect()
}

// ---------------------------------------------------------------------------
// The world: parent, children, NSD, Unbound.

/// The parent's signer, the children's signer, the NSD that serves all
/// zones, and the validating resolver.
struct World {
    parent: Signer,
    children: Signer,
    /// The child zones.
    zones: Vec<&'static str>,
    parent_input: PathBuf,
    submit_script: PathBuf,
    nsd: Option<Server>,
    unbound: Option<Server>,
    /// Last: removed once every process in it is stopped.
    dir: Kept,
}

impl World {
    /// Both signers with their zones (`zones` the children) and policies,
    /// NSD, both serves, and Unbound trusting `test.`. With `ds_ttl`, the
    /// parent publishes the children's DS with that TTL, whatever their
    /// policies say.
    fn new(zones: &[&'static str], ds_ttl: Option<u32>) -> World {
        let dir = Kept(tempfile::tempdir().expect("tempdir"));
        // Every server on an address of its own: NSD takes NOTIFY and
        // transfers only from the signer it knows as the zone's primary.
        let at = dns_servers::random_base();
        let parent = Signer::new(dir.path(), "parent", at(1));
        let children = Signer::new(dir.path(), "children", at(2));
        let parent_input = parent.path("test.zone");
        let submit_script = write_submit_script(dir.path(), &parent_input, ds_ttl);
        let zones = zones.to_vec();
        let mut world = World { dir, parent, children, zones, parent_input, submit_script, nsd: None, unbound: None };
        let nsd = dns_servers::free_addr(at(3));
        world.add_parent(nsd);
        for child in world.zones.clone() {
            world.add_child(child, nsd);
        }
        world.parent.start();
        world.children.start();
        world.nsd = Some(dns_servers::nsd_secondary_of(nsd, &world.dir.path().join("nsd"), &world.nsd_zones(), None));
        world.start_unbound();
        world
    }

    fn nsd(&self) -> &Server {
        self.nsd.as_ref().expect("NSD runs")
    }

    fn unbound(&self) -> &Server {
        self.unbound.as_ref().expect("Unbound runs")
    }

    /// The parent: never rolled, and no DS of its own anywhere (its DS is
    /// Unbound's trust anchor).
    fn add_parent(&self, nsd: SocketAddr) {
        let keys = "algorithm = \"ECDSAP256SHA256\"";
        // Room for the DS TTL of a lying parent.
        let timing = Timing { max_ttl: "1m", ..SAFE };
        let policy = policy_text("parent", &self.parent.store, keys, "type = \"nsec\"", &timing, "");
        self.parent.import_policy("parent", &policy);
        let input = self.parent.add_zone(PARENT, "parent", &parent_text(&self.zones, SAFE.zone_ttl), nsd);
        assert_eq!(input, self.parent_input);
    }

    /// A child zone under the policy of its first keys (`child_keys`),
    /// its DS submitted by the script and checked at NSD.
    fn add_child(&self, child: &str, nsd: SocketAddr) {
        let (keys, denial, timing) = child_keys(child);
        let policy = policy_text(child, &self.children.store, keys, denial, &timing, &self.parent_lines());
        self.children.import_policy(child, &policy);
        self.children.add_zone(child, child, &probed_zone_text(child, timing.zone_ttl), nsd);
        self.children.ok(&["zone", "parent-agent", "add", child, &nsd.to_string()]);
    }

    /// The `[parent]` lines of a child's policy: the DS set submitted by
    /// the script, the parent checked after 1 s, 2 s, 4 s, then every 4 s.
    fn parent_lines(&self) -> String {
        format!(
            "check-interval-min = \"1s\"\ncheck-interval = \"4s\"\nsubmit-command = \"sh {}\"\n",
            self.submit_script.display()
        )
    }

    /// Every zone NSD is the secondary of, with its primary.
    fn nsd_zones(&self) -> Vec<(&'static str, SocketAddr)> {
        let mut zones = vec![(PARENT, self.parent.listen)];
        zones.extend(self.zones.iter().map(|child| (*child, self.children.listen)));
        zones
    }

    /// Unbound with a stub for every zone at NSD and the DS of the
    /// parent's KSK as its trust anchor, once NSD serves the parent.
    fn start_unbound(&mut self) {
        let nsd = self.nsd().addr();
        wait_for(SETTLE, || dns_servers::soa_serial(nsd, PARENT))
            .unwrap_or_else(|w| panic!("NSD does not serve {PARENT} after {w:?}\n{}", self.context()));
        let ksk = self.parent.keys(PARENT).into_iter().find(|k| k["role"] == "ksk").expect("the parent's KSK");
        let tag = ksk["keytag"].to_string();
        let ds = self.parent.ok(&["ds", "show", PARENT, "--keytag", &tag]);
        let anchor = String::from_utf8_lossy(&ds.stdout).lines().next().expect("a DS line").to_owned();
        let config = UnboundConfig {
            stubs: self.nsd_zones().iter().map(|(zone, _)| ((*zone).to_owned(), nsd)).collect(),
            trust_anchors: vec![anchor],
            extra: String::new(),
        };
        self.unbound = Some(dns_servers::unbound_resolver(&self.dir.path().join("unbound"), &config));
    }

    /// Waits until every child's keys are settled and Unbound answers for
    /// its `www` with AD.
    fn wait_children_trusted(&self) {
        for &child in &self.zones {
            wait_for(SETTLE, || settled(&self.children.keys(child)).then_some(()))
                .unwrap_or_else(|w| panic!("{child}: keys not settled after {w:?}\n{}", self.context()));
            let www = format!("www.{child}");
            wait_for(SETTLE, || {
                dns_servers::resolve(self.unbound().addr(), &www, A, QUERY_TIMEOUT).ok().filter(|r| r.authentic)
            })
            .unwrap_or_else(|w| panic!("Unbound: no AD for {www} after {w:?}\n{}", self.context()));
        }
    }

    /// The submit script's runs for `zone`: when, and how many DS it left.
    fn submissions(&self, zone: &str) -> Vec<(f64, usize)> {
        let log = std::fs::read_to_string(self.dir.path().join("submissions.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
                [at, z, count] if z == zone => Some((at.parse().ok()?, count.parse().ok()?)),
                _ => None,
            })
            .collect()
    }

    /// The algorithm rollover: `alg.test.`'s policy imported again with
    /// ECDSAP256SHA256 instead of RSASHA256.
    fn roll_algorithm(&self) {
        let keys = "algorithm = \"ECDSAP256SHA256\"";
        let policy = policy_text(ALG, &self.children.store, keys, child_keys(ALG).1, &SAFE, &self.parent_lines());
        self.children.import_policy(ALG, &policy);
    }

    /// Once `ksk.test.`'s new KSK waits for the parent (its DS asked for,
    /// not yet seen; or, if that moment was missed, seen and not yet
    /// omnipresent), kill -9 the children's serve and start it again: the
    /// new one takes over the lock the killed one left, and the check and
    /// the rollover go on from the database.
    fn kill_and_restart_mid_ksk(&mut self, before: &[serde_json::Value]) {
        let moment = |keys: &[serde_json::Value]| {
            let new = keys.iter().find(|k| k["role"] == "ksk" && !before.iter().any(|b| b["id"] == k["id"]))?;
            let pending = new["todo"].as_array().is_some_and(|t| !t.is_empty());
            match new["states"]["ds"].as_str() {
                Some("hidden") if pending => Some("its DS asked of the parent, not yet seen"),
                Some("rumoured") => Some("its DS seen at the parent, not yet omnipresent"),
                _ => None,
            }
        };
        let moment = wait_for(SETTLE, || moment(&self.children.keys(KSK)))
            .unwrap_or_else(|w| panic!("{KSK}: the new KSK's DS not asked for after {w:?}\n{}", self.context()));
        let killed = self.children.serve().pid;
        self.children.kill_9();
        eprintln!("{KSK}: the new KSK waits for the parent ({moment}): serve (pid {killed}) killed with SIGKILL");
        self.children.start();
        // The kernel let go of the killed serve's lock; its record in the
        // database is what the new serve takes over.
        self.children.serve().wait_log(&["stale service record taken over"], SETTLE);
        eprintln!("{KSK}: serve restarted (pid {}), the stale service record taken over", self.children.serve().pid);
    }

    /// Both serves' logs, the keys, NSD's and Unbound's logs.
    fn context(&self) -> String {
        let mut text = self.parent.context(&[PARENT]);
        text.push('\n');
        text.push_str(&self.children.context(&self.zones));
        for server in self.nsd.iter().chain(&self.unbound) {
            text.push('\n');
            text.push_str(&tail(&server.describe(), 60));
        }
        text
    }
}

/// A test's temporary directory, kept when the test fails (databases,
/// logs, zones, the servers' configurations).
struct Kept(tempfile::TempDir);

impl Kept {
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.disable_cleanup(true);
            eprintln!("kept for inspection: {}", self.0.path().display());
        }
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A child's first keys, its denial and its timing: ECDSA KSK and ZSK
/// with NSEC (the ZSK rollovers), with NSEC3 (the KSK rollover), an
/// Ed25519 CSK, RSASHA256 KSK and ZSK with NSEC3 (the algorithm
/// rollover); and the negative control's KSK and ZSK, whose policy says
/// the DS TTL is 1 s.
fn child_keys(child: &str) -> (&'static str, &'static str, Timing) {
    let ecdsa = "algorithm = \"ECDSAP256SHA256\"";
    match child {
        ZSK => (ecdsa, "type = \"nsec\"", SAFE),
        KSK => (ecdsa, "type = \"nsec3\"", SAFE),
        CSK => ("algorithm = \"ED25519\"\ncsk = true", "type = \"nsec\"", SAFE),
        ALG => ("algorithm = \"RSASHA256\"\nbits = 2048", "type = \"nsec3\"", SAFE),
        LIE => (ecdsa, "type = \"nsec\"", Timing { ds_ttl: "1s", ..SAFE }),
        other => panic!("no keys for {other}"),
    }
}

// ---------------------------------------------------------------------------
// Rollovers: asked for, waited for, described.

/// Whether `now` (a zone's keys) is `before` rolled for `roles`: every key
/// settled, each key of a rolled role that was active in `before` gone
/// (goal hidden), a new one of that role active, and the active keys of
/// the other roles unchanged.
fn rolled(before: &[serde_json::Value], now: &[serde_json::Value], roles: &[&str]) -> bool {
    let active = |keys: &[serde_json::Value], role: &str| -> Vec<i64> {
        active_ids(keys).into_iter().filter(|id| keys.iter().any(|k| k["id"] == *id && k["role"] == role)).collect()
    };
    settled(now)
        && ["ksk", "zsk", "csk"].iter().all(|role| {
            let (old, new) = (active(before, role), active(now, role));
            if roles.contains(role) { !new.is_empty() && new.iter().all(|id| !old.contains(id)) } else { old == new }
        })
}

/// Waits until `zone` is `before` rolled for `roles` (see [`rolled`]);
/// returns its keys then.
fn wait_rolled(world: &World, zone: &str, before: &[serde_json::Value], roles: &[&str]) -> Vec<serde_json::Value> {
    wait_for(ROLLOVERS, || Some(world.children.keys(zone)).filter(|now| rolled(before, now, roles))).unwrap_or_else(
        |w| panic!("{zone}: the rollover of {roles:?} is not complete after {w:?}\n{}", world.context()),
    )
}

/// The audit trail of `zone` from `since` on, one line per event (runs
/// left out), with the submit script's runs (`submissions`: when, how many
/// DS it left in the parent's input), times relative to `since`, keys named
/// by role, tag and algorithm: the rollover's phases.
fn phases(signer: &Signer, zone: &str, since: i64, submissions: &[(f64, usize)]) -> String {
    signer.keys(zone);
    let line = |at: f64, actor: &str, key: &str, change: &str, why: &str| {
        let why: String = why.chars().take(110).collect();
        (at, format!("  +{:>5.1} s  {actor:<8} {key:<20} {change:<34} {why}\n", at - since as f64))
    };
    let mut lines = Vec::new();
    for e in signer.audit(zone).iter().filter(|e| e.at >= since && e.event != "run") {
        let change = e.change.as_deref().unwrap_or(&e.event);
        lines.push(line(e.at as f64, &e.actor, &signer.key_name(e.key), change, &e.why));
    }
    for &(at, count) in submissions.iter().filter(|(at, _)| *at >= since as f64) {
        lines.push(line(at, "script", "", "submit-command", &format!("the parent's input now has {count} DS")));
    }
    // Stable: events of one second stay in the audit's order.
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    lines.into_iter().fold(format!("{zone} (t0 = {since}):\n"), |text, (_, l)| text + &l)
}

/// A second `signet serve` on `signer`'s database is refused (exit 2),
/// naming the pid of the one that runs.
fn second_serve_refused(signer: &Signer) {
    let pid = signer.serve().pid;
    let listen = dns_servers::free_addr(signer.listen.ip()).to_string();
    let mut second = signer.command(&["serve", "--config", signer.config.to_str().expect("path"), "--listen", &listen]);
    let refused = common::run_bounded(&mut second);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "a second serve must exit 2: {refused:?}");
    assert!(stderr.contains(&format!("pid {pid}")), "the refusal must name pid {pid}: {stderr}");
}

/// The two tests take turns: both rely on timing, on a machine of two
/// cores.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// This test's turn, if the peers it needs are installed (else it says
/// why it is skipped).
fn turn_if_tools() -> Option<std::sync::MutexGuard<'static, ()>> {
    if !tools() {
        eprintln!("note: rollover_e2e skipped: it needs nsd, unbound and flock");
        return None;
    }
    Some(turn())
}

#[test]
fn rollovers_through_a_validating_resolver() {
    let Some(_turn) = turn_if_tools() else { return };
    let started = Instant::now();
    let mut world = World::new(&CHILDREN, None);
    world.wait_children_trusted();
    // The KSK zone's check also wants Unbound's validated (AD) answer to agree.
    let validator = world.unbound().addr().to_string();
    world.children.ok(&["zone", "parent-resolver", "add", KSK, &validator, "--validate"]);
    eprintln!("parent and children signed, transferred and trusted after {:?}", started.elapsed());
    second_serve_refused(&world.children);

    let queries = QueryLoop::start(world.unbound().addr(), &CHILDREN);
    wait_ticks(&queries, 4, PER_TICK);
    let before: BTreeMap<&str, Vec<serde_json::Value>> =
        CHILDREN.iter().map(|c| (*c, world.children.keys(c))).collect();
    let t0 = unix_now();
    world.children.ok(&["key", "rollover", ZSK, "--zsk"]);
    world.children.ok(&["key", "rollover", KSK, "--ksk"]);
    world.children.ok(&["key", "rollover", CSK, "--csk"]);
    world.roll_algorithm();
    world.kill_and_restart_mid_ksk(&before[KSK]);
    let zsk_rolled = wait_rolled(&world, ZSK, &before[ZSK], &["zsk"]);
    check_removed(&world.children, ZSK, &before[ZSK], &["zsk"]);
    let t_emergency = unix_now();
    world.children.ok(&["key", "rollover", ZSK, "--zsk", "--emergency"]);
    wait_rolled(&world, ZSK, &zsk_rolled, &["zsk"]);
    check_removed(&world.children, ZSK, &zsk_rolled, &["zsk"]);
    wait_rolled(&world, KSK, &before[KSK], &["ksk"]);
    check_removed(&world.children, KSK, &before[KSK], &["ksk"]);
    wait_rolled(&world, CSK, &before[CSK], &["csk"]);
    check_removed(&world.children, CSK, &before[CSK], &["csk"]);
    let alg = wait_rolled(&world, ALG, &before[ALG], &["ksk", "zsk"]);
    check_removed(&world.children, ALG, &before[ALG], &["ksk", "zsk"]);
    assert!(alg.iter().all(|k| k["algorithm"] == 13), "{ALG}: only ECDSAP256SHA256 keys left: {alg:#?}");
    let done = unix_now();
    eprintln!("all rollovers complete {} s after they were asked for", done - t0);

    // The caches go on holding what the rollovers' last steps replaced:
    // the loop asks on for longer than every TTL.
    wait_ticks(&queries, 16, PER_TICK);
    let elapsed = queries.started.elapsed();
    let tallies = queries.stop();
    eprintln!("{}", report(&tallies, elapsed));
    for child in CHILDREN {
        eprintln!("{}", phases(&world.children, child, t0, &world.submissions(child)));
    }
    eprintln!("(the emergency rollover of {ZSK} was asked for at +{} s)", t_emergency - t0);
    for (zone, tally) in &tallies {
        assert!(tally.failures.is_empty(), "{zone}: every answer must validate\n{}", report(&tallies, elapsed));
        assert_eq!(tally.authentic, tally.queries, "{zone}: AD on every answer");
    }
    for child in CHILDREN {
        check_ds_by_query(&world.children, child, &before[child], &world.children.keys(child));
    }
    eprintln!("rollovers_through_a_validating_resolver: {:?}", started.elapsed());
}

/// Every key of `roles` active in `before` has been removed (the audit's
/// `key-removed`).
fn check_removed(signer: &Signer, zone: &str, before: &[serde_json::Value], roles: &[&str]) {
    let audit = signer.audit(zone);
    for key in before.iter().filter(|k| k["goal"] == "omnipresent" && roles.iter().any(|r| k["role"] == *r)) {
        let id = key["id"].as_i64();
        assert!(
            audit.iter().any(|e| e.event == "key-removed" && e.key == id),
            "{zone}: key {id:?} ({}) rolled but not removed",
            signer.key_name(id)
        );
    }
}

/// The audit of `zone`: every `ds-seen` and `ds-gone` is the parent
/// check's (actor `machine`, message `parent check: …`), none the
/// operator's; each KSK or CSK of `after` was seen, each one of `before`
/// that rolled (gone from `after`) was seen gone.
fn check_ds_by_query(signer: &Signer, zone: &str, before: &[serde_json::Value], after: &[serde_json::Value]) {
    let audit = signer.audit(zone);
    let ds: Vec<&AuditRow> = audit.iter().filter(|e| e.event == "ds-seen" || e.event == "ds-gone").collect();
    for e in &ds {
        assert!(
            e.actor == "machine" && e.why.starts_with("parent check:"),
            "{zone}: a DS observation not by the parent check: {e:?}"
        );
    }
    // Each submission by the script is in the audit with the DS it sent.
    let submitted: Vec<&AuditRow> = audit
        .iter()
        .filter(|e| e.event == "ds-requested" && e.why.starts_with("DS set submitted to the parent by submit-command"))
        .collect();
    assert!(!submitted.is_empty(), "{zone}: no submission by the submit-command in the audit");
    for e in &submitted {
        assert!(e.why.split_whitespace().any(|w| w == "DS"), "{zone}: a submission without its DS: {e:?}");
    }
    let sep = |keys: &[serde_json::Value]| -> Vec<i64> {
        active_ids(keys).into_iter().filter(|id| keys.iter().any(|k| k["id"] == *id && k["role"] != "zsk")).collect()
    };
    let (old, new) = (sep(before), sep(after));
    // In the KSK zone the validating resolver, added before the rollover,
    // answered in every observation of it.
    let observed = |event: &str, id: i64| {
        ds.iter().any(|e| e.event == event && e.key == Some(id) && (zone != KSK || e.why.contains("; validator ")))
    };
    for id in &new {
        assert!(
            observed("ds-seen", *id),
            "{zone}: no ds-seen of key {} by the parent check: {ds:#?}",
            signer.key_name(Some(*id))
        );
    }
    for id in old.iter().filter(|id| !new.contains(id)) {
        assert!(
            observed("ds-gone", *id),
            "{zone}: no ds-gone of key {} by the parent check: {ds:#?}",
            signer.key_name(Some(*id))
        );
    }
}

// ---------------------------------------------------------------------------
// The negative control.

/// The zone of the negative control.
const UNSAFE_ZONE: &str = "unsafe.test.";

/// No publish or retire safety, and TTLs of 1 s: safe only for a resolver
/// that keeps records no longer than their TTL.
const UNSAFE: Timing = Timing {
    dnskey_ttl: "1s",
    publish_safety: "0s",
    retire_safety: "0s",
    propagation: "1s",
    max_ttl: "1s",
    ds_ttl: "1s",
    zone_ttl: 1,
};

/// How long the negative control's resolver keeps every record, whatever
/// its TTL (`cache-min-ttl`).
const CACHE_MIN_TTL: u32 = 30;

/// How many SERVFAILs the negative control waits for: more than one, so
/// that a window of failure shows, not a fluke.
const SERVFAILS_WANTED: u64 = 5;

#[test]
fn unsafe_timing_gives_servfail() {
    let Some(_turn) = turn_if_tools() else { return };
    let started = Instant::now();
    let dir = Kept(tempfile::tempdir().expect("tempdir"));
    let at = dns_servers::random_base();
    let mut signer = Signer::new(dir.path(), "unsafe", at(1));
    let keys = "algorithm = \"ECDSAP256SHA256\"";
    signer.import_policy("unsafe", &policy_text("unsafe", &signer.store, keys, "type = \"nsec\"", &UNSAFE, ""));
    let nsd_addr = dns_servers::free_addr(at(2));
    signer.add_zone(UNSAFE_ZONE, "unsafe", &probed_zone_text(UNSAFE_ZONE, UNSAFE.zone_ttl), nsd_addr);
    signer.start();
    let nsd = dns_servers::nsd_secondary_of(nsd_addr, &dir.path().join("nsd"), &[(UNSAFE_ZONE, signer.listen)], None);
    wait_for(SETTLE, || dns_servers::soa_serial(nsd.addr(), UNSAFE_ZONE))
        .unwrap_or_else(|w| panic!("NSD does not serve {UNSAFE_ZONE} after {w:?}\n{}", nsd.describe()));
    // The zone is its own trust anchor here: the anchor is the parent,
    // and the machine is told (truly) that the DS is there.
    let ksk = signer.keys(UNSAFE_ZONE).into_iter().find(|k| k["role"] == "ksk").expect("a KSK");
    let tag = ksk["keytag"].to_string();
    let ds = signer.ok(&["ds", "show", UNSAFE_ZONE, "--keytag", &tag]);
    signer.ok(&["ds", "seen", UNSAFE_ZONE, "--keytag", &tag]);
    let config = UnboundConfig {
        stubs: vec![(UNSAFE_ZONE.to_owned(), nsd.addr())],
        trust_anchors: vec![String::from_utf8_lossy(&ds.stdout).lines().next().expect("a DS").to_owned()],
        extra: format!("  cache-min-ttl: {CACHE_MIN_TTL}\n"),
    };
    let unbound = dns_servers::unbound_resolver(&dir.path().join("unbound"), &config);
    wait_for(SETTLE, || settled(&signer.keys(UNSAFE_ZONE)).then_some(()))
        .unwrap_or_else(|w| panic!("{UNSAFE_ZONE}: keys not settled after {w:?}\n{}", signer.context(&[UNSAFE_ZONE])));

    let queries = QueryLoop::start(unbound.addr(), &[UNSAFE_ZONE]);
    wait_ticks(&queries, 4, PER_TICK);
    let t0 = unix_now();
    signer.ok(&["key", "rollover", UNSAFE_ZONE, "--zsk"]);
    // The new ZSK signs 2 s after its DNSKEY is published; the resolver
    // holds the DNSKEY RRset without it for up to CACHE_MIN_TTL.
    let window = Duration::from_secs(u64::from(CACHE_MIN_TTL) + 30);
    let failed = wait_for(window, || (servfails(&queries, UNSAFE_ZONE) >= SERVFAILS_WANTED).then_some(()));
    let elapsed = queries.started.elapsed();
    let tallies = queries.stop();
    eprintln!("{}", report(&tallies, elapsed));
    eprintln!("{}", phases(&signer, UNSAFE_ZONE, t0, &[]));
    eprintln!("{}", tail(&unbound.log(), 10));
    assert!(
        failed.is_ok(),
        "the unsafe rollover must make the resolver fail\n{}\n{}",
        report(&tallies, elapsed),
        signer.context(&[UNSAFE_ZONE])
    );
    eprintln!("unsafe_timing_gives_servfail: {:?}", started.elapsed());
}

/// The negative control with an honest resolver: `lie.test.`'s policy says
/// its DS TTL is 1 s, the parent publishes its DS with 60 s. Its KSK
/// rollover removes the old KSK's DNSKEY a few seconds after the parent
/// dropped the old DS, while Unbound still holds the old DS set.
#[test]
fn ds_ttl_shorter_than_the_parents_gives_servfail() {
    let Some(_turn) = turn_if_tools() else { return };
    let started = Instant::now();
    let world = World::new(&[LIE], Some(LIE_DS_TTL));
    world.wait_children_trusted();
    let queries = QueryLoop::start(world.unbound().addr(), &[LIE]);
    wait_ticks(&queries, 4, PER_TICK);
    let t0 = unix_now();
    world.children.ok(&["key", "rollover", LIE, "--ksk"]);
    let window = Duration::from_secs(u64::from(LIE_DS_TTL) + 60);
    let failed = wait_for(window, || (servfails(&queries, LIE) >= SERVFAILS_WANTED).then_some(()));
    let elapsed = queries.started.elapsed();
    let tallies = queries.stop();
    eprintln!("{}", report(&tallies, elapsed));
    eprintln!("{}", phases(&world.children, LIE, t0, &world.submissions(LIE)));
    eprintln!("{}", tail(&world.unbound().log(), 10));
    assert!(
        failed.is_ok(),
        "the rollover under a DS TTL shorter than the parent's must make the resolver fail\n{}\n{}",
        report(&tallies, elapsed),
        world.context()
    );
    eprintln!("ds_ttl_shorter_than_the_parents_gives_servfail: {:?}", started.elapsed());
}
