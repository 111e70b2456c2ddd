//! `signet dry-run`: rehearses a policy on a simulated clock with the
//! production code — the rollover machine, the signer and the gate, run by
//! the same managed run as `signet sign ZONE` — in a throw-away database
//! with soft keys, against a simulated parent that publishes the DS RRset
//! the zone's CDS (or, with CDS off, the operator) asks for `--ds-delay`
//! later. After every published version the cache-model
//! safety check runs; the first unsafe instant ends the run with exit 1.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::managed::{RunOutcome, sign_managed};
use super::table::{table, when};
use super::{EXIT_REFUSED, Format};
use crate::dryrun::parent::{DsChange, Parent};
use crate::dryrun::safety::{CacheModel, Checker, Unsafe, ds_name};
use crate::dryrun::trace::Trace;
use crate::dryrun::version::ZoneVersion;
use crate::dryrun::{Event, EventKind, KeyInfo, KeySummary, example, key_summary, svg};
use crate::keys::PublishedKey;
use crate::policy::Policy;
use crate::rollover::{Action, Observation, Record, RecordState, Step, advance, publication};
use crate::store::{NewZone, Store};
use crate::time::{format_duration, format_time, parse_time};
use crate::verify::trust::ds_matches;
use crate::zone::dnssec::key_tag;
use crate::zone::{Name, read_zone_file};

/// Arguments of `signet dry-run`.
#[derive(Debug, Args)]
pub struct DryRunArgs {
    /// The policy to rehearse.
    #[arg(long)]
    policy: PathBuf,
    /// The zone (apex).
    #[arg(long)]
    origin: String,
    /// The unsigned zone to sign (default: a small example zone whose
    /// largest TTL is the policy's max-ttl).
    #[arg(long)]
    zone: Option<PathBuf>,
    /// Start of the simulated time (RFC 3339 or Unix seconds).
    #[arg(long)]
    from: String,
    /// End of the simulated time.
    #[arg(long)]
    until: String,
    /// How long after the zone publishes CDS the parent publishes the DS
    /// set it names (default: the policy's parent registration-delay).
    #[arg(long)]
    ds_delay: Option<String>,
    /// Replace the policy at a time, e.g. `2027-06-01T00:00:00Z=new.toml`
    /// (an algorithm change is rehearsed this way). Repeatable.
    #[arg(long = "change-policy", value_name = "TIME=FILE")]
    change_policy: Vec<String>,
    /// Write every published version, the parent's DS and index.json here.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Draw the timeline to this SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Make keys in this store instead of throw-away soft keys.
    #[arg(long)]
    key_store: Option<String>,
    /// Inject a fault, to see the safety check catch it.
    #[arg(long, value_enum)]
    fault: Option<Fault>,
}

/// Faults a dry-run can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fault {
    /// The machine is told that zone signatures were published (and
    /// withdrawn) one max-ttl earlier than they were, so it takes the new
    /// ZSK's signatures for omnipresent and withdraws the old ZSK's DNSKEY
    /// one TTL early.
    EarlyZskWithdrawal,
}

/// A policy file, parsed, and its text (what the database stores).
struct PolicyFile {
    policy: Policy,
    source: String,
}

/// A policy that replaces the current one at a time.
struct PolicyChange {
    at: i64,
    file: PolicyFile,
}

/// What the operator asked for, checked.
struct Plan {
    origin: Name,
    policy_name: String,
    policy: PolicyFile,
    changes: Vec<PolicyChange>,
    from: i64,
    until: i64,
    ds_delay: i64,
    zone: Option<PathBuf>,
    key_store: Option<String>,
    fault: Option<Fault>,
}

impl Plan {
    fn from_args(args: &DryRunArgs) -> anyhow::Result<Plan> {
        let origin = super::parse_origin(&args.origin)?;
        let time = |flag: &str, text: &str| parse_time(text).with_context(|| format!("--{flag} {text:?}"));
        let (from, until) = (time("from", &args.from)?, time("until", &args.until)?);
        if until <= from {
            bail!("--until {} is not after --from {}", args.until, args.from);
        }
        let policy = read_policy(&args.policy)?;
        let mut changes = Vec::new();
        for change in &args.change_policy {
            let (at, file) =
                change.split_once('=').with_context(|| format!("--change-policy {change:?}: expected TIME=FILE"))?;
            let at = time("change-policy", at)?;
            if at <= from || at > until {
                bail!("--change-policy {change:?}: the time is not within --from … --until");
            }
            changes.push(PolicyChange { at, file: read_policy(Path::new(file))? });
        }
        changes.sort_by_key(|c| c.at);
        let ds_delay = match &args.ds_delay {
            Some(text) => humantime::parse_duration(text)
                .map(|d| d.as_secs() as i64)
                .map_err(|e| anyhow::anyhow!("--ds-delay {text:?}: {e}"))?,
            None => policy.policy.parent.registration_delay,
        };
        Ok(Plan {
            origin,
            policy_name: policy.policy.name.clone(),
            policy,
            changes,
            from,
            until,
            ds_delay: ds_delay.max(1),
            zone: args.zone.clone(),
            key_store: args.key_store.clone(),
            fault: args.fault,
        })
    }

    /// The longest delays and DS TTL of every policy the run uses: the
    /// longest any cache may hold what was published under any of them.
    fn cache_model(&self) -> CacheModel {
        self.policies().fold(CacheModel { zone_propagation: 0, parent_propagation: 0, ds_ttl: 0 }, |m, p| CacheModel {
            zone_propagation: m.zone_propagation.max(p.zone.propagation_delay),
            parent_propagation: m.parent_propagation.max(p.parent.propagation_delay),
            ds_ttl: m.ds_ttl.max(p.parent.ds_ttl),
        })
    }

    /// The smallest max-ttl of every policy the run uses.
    fn max_ttl(&self) -> i64 {
        self.policies().map(|p| p.zone.max_ttl).min().unwrap_or(self.policy.policy.zone.max_ttl)
    }

    /// Every policy the run uses.
    fn policies(&self) -> impl Iterator<Item = &Policy> {
        std::iter::once(&self.policy).chain(self.changes.iter().map(|c| &c.file)).map(|f| &f.policy)
    }
}

fn read_policy(file: &Path) -> anyhow::Result<PolicyFile> {
    let (policy, warnings) = Policy::from_file(file)?;
    super::print_policy_warnings(file, &warnings);
    let source = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
    Ok(PolicyFile { policy, source })
}

/// The policy text with `keys.store` pointed at `store`.
fn with_key_store(source: &str, store: &str) -> anyhow::Result<String> {
    let mut table: toml::Table = source.parse().context("policy")?;
    let keys = table.entry("keys").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(keys) = keys else { bail!("policy: [keys] is not a table") };
    keys.insert("store".to_owned(), toml::Value::String(store.to_owned()));
    Ok(toml::to_string(&table)?)
}

/// A private directory for the throw-away database, keys and zones,
/// removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> anyhow::Result<WorkDir> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("signet-dry-run-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).with_context(|| format!("making {}", dir.display()))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How the rehearsal ended.
#[derive(Debug, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
enum Verdict {
    /// Every instant was safe.
    Safe,
    /// A combination of cached records fails to validate.
    Unsafe(Box<Unsafe>),
    /// The gate refused a version.
    Refused { at: i64, findings: Vec<String> },
}

/// The simulation's state.
struct Simulation {
    plan: Plan,
    store: Store,
    zone_id: i64,
    zone_name: String,
    output: PathBuf,
    parent: Parent,
    checker: Checker,
    policy: Policy,
    events: Vec<Event>,
    keys: BTreeMap<i64, KeyInfo>,
    versions: u64,
    trace: Option<Trace>,
}

impl Simulation {
    async fn start(mut plan: Plan, work: &Path, trace: Option<&Path>) -> anyhow::Result<Simulation> {
        let key_store = match &plan.key_store {
            Some(uri) => uri.clone(),
            None => {
                let dir = work.join("keys");
                std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
                format!("file:{}", dir.display())
            }
        };
        let input = match &plan.zone {
            Some(file) => std::path::absolute(file)?,
            None => {
                let file = work.join("unsigned.zone");
                std::fs::write(&file, example::example_zone(&plan.origin.to_string(), plan.max_ttl()))?;
                file
            }
        };
        let output = work.join("signed.zone");
        let files = std::iter::once(&mut plan.policy).chain(plan.changes.iter_mut().map(|c| &mut c.file));
        for file in files {
            file.source = with_key_store(&file.source, &key_store)?;
        }
        let store = Store::open(&work.join("dry-run.db"), true).await?;
        store.import_policy(&plan.policy_name, &plan.policy.source, plan.from).await?;
        let zone_name = plan.origin.to_string().to_ascii_lowercase();
        let salt = super::sign::random_salt(plan.policy.policy.denial.salt_length)?;
        let new = NewZone {
            name: &zone_name,
            policy: &plan.policy_name,
            input: &input.display().to_string(),
            output: &output.display().to_string(),
            salt: &salt,
        };
        let zone_id = store.add_zone(&new, plan.from).await?;
        Ok(Simulation {
            parent: Parent::new(plan.ds_delay),
            checker: Checker::new(plan.origin.clone(), plan.cache_model()),
            policy: plan.policy.policy.clone(),
            trace: trace.map(Trace::create).transpose().context("--trace")?,
            plan,
            store,
            zone_id,
            zone_name,
            output,
            events: Vec::new(),
            keys: BTreeMap::new(),
            versions: 0,
        })
    }

    /// Runs from `from` to `until`, or to the first unsafe instant.
    async fn run(&mut self) -> anyhow::Result<Verdict> {
        let mut now = self.plan.from;
        let mut changes = std::mem::take(&mut self.plan.changes).into_iter().peekable();
        loop {
            let first_event = self.events.len();
            if let Some(change) = self.parent.act(now) {
                self.parent_changed(&change, now).await?;
            }
            while let Some(PolicyChange { file, .. }) = changes.next_if(|c| c.at <= now) {
                self.store.import_policy(&self.plan.policy_name, &file.source, now).await?;
                let why = format!("policy replaced: {}", describe_policy(&file.policy));
                self.events.push(Event::note(now, EventKind::PolicyChange, None, why));
                self.policy = file.policy;
            }
            let step = match sign_managed(&self.store, &self.zone_name, now, true).await? {
                RunOutcome::Published { step, .. } => step,
                RunOutcome::Refused(report) => {
                    let findings = report.findings.iter().map(|f| f.to_line()).collect();
                    return Ok(Verdict::Refused { at: now, findings });
                }
            };
            self.record_step(&step, now);
            if let Some(found) = self.publish_version(&step, now, first_event)? {
                return Ok(Verdict::Unsafe(found));
            }
            let mut next = self.store.zone(&self.zone_name).await?.next_run_at;
            if self.plan.fault == Some(Fault::EarlyZskWithdrawal) {
                next = earliest(next, self.inject_early_withdrawal(&step, now).await?);
            }
            next = earliest(next, self.parent.due());
            next = earliest(next, changes.peek().map(|c| c.at));
            match next {
                Some(t) if t <= self.plan.until => now = t.max(now + 1),
                _ => return Ok(Verdict::Safe),
            }
        }
    }

    /// The parent changed its DS RRset: tell the machine which keys' DS
    /// appeared or went, as an operator would with `ds seen`/`ds gone`.
    async fn parent_changed(&mut self, change: &DsChange, now: i64) -> anyhow::Result<()> {
        self.checker.ds_published(self.parent.ds(), now);
        let stored = self.store.keys(self.zone_id).await?;
        let origin = self.plan.origin.clone();
        let key_of = |ds: &[u8]| {
            stored.iter().find(|k| ds_matches(origin.as_ref(), ds, &k.dnskey) == Some(true)).map(|k| k.key.id)
        };
        let seen = change.added.iter().map(|ds| (ds, true));
        let gone = change.removed.iter().map(|ds| (ds, false));
        for (ds, added) in seen.chain(gone) {
            let key = key_of(ds);
            let verb = if added { "publishes" } else { "withdraws" };
            let why = format!("the parent {verb} DS {}", ds_name(ds));
            self.events.push(Event::note(now, EventKind::Parent, key, why.clone()));
            if let Some(key) = key {
                let observation = if added { Observation::DsSeen { key } } else { Observation::DsGone { key } };
                self.store.observe(self.zone_id, &observation, now, &format!("simulated parent: {why}")).await?;
            }
        }
        Ok(())
    }

    /// Turns a managed run's step into events.
    fn record_step(&mut self, step: &Step, now: i64) {
        let (submit, retract) = if self.policy.parent.cds {
            ("DS submitted: CDS/CDNSKEY ask the parent for it", "DS retraction asked: CDS/CDNSKEY leave it out")
        } else {
            (
                "DS submitted to the parent by the operator (CDS is off)",
                "DS retraction sent to the parent by the operator",
            )
        };
        for key in &step.keys {
            if self.keys.contains_key(&key.id) {
                continue;
            }
            let info = KeyInfo {
                id: key.id,
                role: key.role.to_string(),
                algorithm: key.algorithm.number(),
                tag: key.tag,
                predecessor: key.predecessor,
            };
            let why = match key.predecessor {
                Some(p) => format!("key made to replace key {p}"),
                None => "key made".to_owned(),
            };
            self.events.push(Event::note(now, EventKind::KeyCreated, Some(key.id), why));
            self.keys.insert(key.id, info);
        }
        for t in &step.transitions {
            self.events.push(Event {
                time: now,
                kind: EventKind::Transition,
                key: Some(t.key),
                record: Some(t.record),
                from: Some(t.from),
                to: Some(t.to),
                why: t.why.clone(),
            });
        }
        for action in &step.actions {
            let (kind, key, why) = match *action {
                Action::SubmitDs { key } => (EventKind::DsRequested, key, submit),
                Action::RetractDs { key } => (EventKind::DsRequested, key, retract),
                Action::RemoveKey { key } => (EventKind::KeyRemoved, key, "hidden everywhere: key removed"),
                Action::CreateKey { .. } => continue,
            };
            self.events.push(Event::note(now, kind, Some(key), why));
        }
    }

    /// The DS RRset the parent is asked for: the zone's CDS records, or,
    /// when the policy publishes none, the same set submitted by the
    /// operator (what CDS would have said).
    fn ds_asked_for(&self, step: &Step, version: &ZoneVersion) -> Vec<Vec<u8>> {
        if self.policy.parent.cds {
            return version.cds.clone();
        }
        let wanted = publication(&step.keys).cds;
        let digest = self.policy.parent.digest.number();
        step.keys
            .iter()
            .filter(|k| wanted.contains(&k.id))
            .filter_map(|k| {
                let rdata =
                    version.dnskeys.iter().find(|d| key_tag(d) == k.tag && d.get(3) == Some(&k.algorithm.number()))?;
                PublishedKey::from_public(k.algorithm, &rdata[4..], k.role).ds_rdata(self.plan.origin.as_ref(), digest)
            })
            .collect()
    }

    /// Reads back what was published, traces it, shows the DS request to
    /// the parent and runs the safety check at `now`: the first unsafe
    /// combination, if there is one.
    fn publish_version(&mut self, step: &Step, now: i64, first_event: usize) -> anyhow::Result<Option<Box<Unsafe>>> {
        let zone = read_zone_file(&self.output, &self.plan.origin).context("reading back the published zone")?;
        let version = ZoneVersion::from_zone(&zone, now);
        if let Some(trace) = &mut self.trace {
            let events = self.events[first_event..].to_vec();
            let ds_ttl = self.policy.parent.ds_ttl;
            trace.version(&zone, version.serial, now, self.parent.ds(), ds_ttl, events).context("--trace")?;
        }
        self.versions += 1;
        let asked = self.ds_asked_for(step, &version);
        self.parent.asked(&asked, now);
        Ok(self.checker.zone_published(version).and_then(|()| self.checker.check(now)).err())
    }

    /// The fault: each move of zone signatures this step made (new ones
    /// published, old ones withdrawn) is recorded as made one max-ttl
    /// earlier, so the machine believes caches caught up one TTL sooner.
    /// Returns when the machine now wants to run.
    async fn inject_early_withdrawal(&mut self, step: &Step, now: i64) -> anyhow::Result<Option<i64>> {
        let moved: Vec<(i64, RecordState)> = step
            .transitions
            .iter()
            .filter(|t| t.record == Record::Zrrsig && matches!(t.to, RecordState::Rumoured | RecordState::Unretentive))
            .map(|t| (t.key, t.to))
            .collect();
        if moved.is_empty() {
            return Ok(None);
        }
        let mut keys: Vec<_> = self.store.keys(self.zone_id).await?.into_iter().map(|k| k.key).collect();
        for (id, state) in moved {
            let Some(key) = keys.iter_mut().find(|k| k.id == id && k.state(Record::Zrrsig) == state) else { continue };
            let since = key.record(Record::Zrrsig).since - self.policy.zone.max_ttl;
            key.set(Record::Zrrsig, state, since);
            self.store.update_key(key).await?;
            let why = format!("fault injected: zrrsig recorded as {} since {}", state.as_str(), format_time(since));
            self.events.push(Event::note(now, EventKind::Fault, Some(id), why));
        }
        Ok(advance(&keys, &self.policy, now, &[]).next)
    }
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn describe_policy(policy: &Policy) -> String {
    let k = &policy.keys;
    let keys = if k.csk { "CSK".to_owned() } else { "KSK + ZSK".to_owned() };
    format!("{} ({keys}, {})", policy.name, k.algorithm)
}

/// Runs `signet dry-run`.
pub async fn run(args: DryRunArgs, format: Format) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let plan = Plan::from_args(&args)?;
    let work = WorkDir::new()?;
    let mut sim = Simulation::start(plan, &work.0, args.trace.as_deref()).await?;
    let verdict = sim.run().await?;
    if let Some(trace) = &sim.trace {
        trace.finish().context("--trace")?;
    }
    let keys: Vec<KeyInfo> = sim.keys.values().cloned().collect();
    if let Some(file) = &args.svg {
        let title = format!(
            "signet dry-run: {} for {} ({} to {})",
            sim.plan.policy_name,
            sim.zone_name,
            &format_time(sim.plan.from)[..10],
            &format_time(sim.plan.until)[..10]
        );
        let end = match &verdict {
            Verdict::Safe => sim.plan.until,
            Verdict::Unsafe(u) => u.at.max(sim.plan.from + 1),
            Verdict::Refused { at, .. } => (*at).max(sim.plan.from + 1),
        };
        std::fs::write(file, svg::timeline(&title, &keys, &sim.events, sim.plan.from, end))
            .with_context(|| format!("--svg {}", file.display()))?;
    }
    let report = Report {
        policy: &sim.plan.policy_name,
        zone: &sim.zone_name,
        from: sim.plan.from,
        until: sim.plan.until,
        ds_delay: sim.plan.ds_delay,
        versions: sim.versions,
        instants: sim.checker.instants,
        combinations: sim.checker.combinations,
        seconds: started.elapsed().as_secs_f64(),
        verdict: &verdict,
        events: &sim.events,
        keys: keys.iter().map(|k| key_summary(k, &sim.events)).collect(),
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print_text(&report, &sim.keys),
    }
    Ok(match verdict {
        Verdict::Safe => ExitCode::SUCCESS,
        Verdict::Unsafe(_) | Verdict::Refused { .. } => ExitCode::from(EXIT_REFUSED),
    })
}

/// Everything the run found, as printed.
#[derive(Debug, Serialize)]
struct Report<'a> {
    policy: &'a str,
    zone: &'a str,
    from: i64,
    until: i64,
    ds_delay: i64,
    versions: u64,
    instants: u64,
    combinations: u64,
    seconds: f64,
    verdict: &'a Verdict,
    events: &'a [Event],
    keys: Vec<KeySummary>,
}

fn print_text(report: &Report<'_>, keys: &BTreeMap<i64, KeyInfo>) {
    println!(
        "dry-run of policy {} for {}, {} to {}; the parent publishes a DS {} after the CDS asks for it\n",
        report.policy,
        report.zone,
        format_time(report.from),
        format_time(report.until),
        format_duration(report.ds_delay)
    );
    let label = |id: Option<i64>| id.and_then(|id| keys.get(&id)).map_or_else(|| "-".to_owned(), KeyInfo::label);
    let mut rows = vec![["TIME", "KEY", "RECORD", "FROM → TO", "WHY"].map(String::from).to_vec()];
    for e in report.events {
        let change = match (e.from, e.to) {
            (Some(from), Some(to)) => format!("{} → {}", from.as_str(), to.as_str()),
            _ => "-".to_owned(),
        };
        let record = e.record.map_or("-", Record::as_str).to_owned();
        rows.push(vec![when(e.time), label(e.key), record, change, e.why.clone()]);
    }
    print!("{}", table(&rows));
    let mut rows = vec![
        ["KEY", "ID", "CREATED", "PUBLISHED", "ACTIVE", "RETIRED", "WITHDRAWN", "REMOVED", "DS SEEN", "DS GONE"]
            .map(String::from)
            .to_vec(),
    ];
    let at = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), when);
    for k in &report.keys {
        rows.push(vec![
            k.key.label(),
            k.key.id.to_string(),
            at(k.created),
            at(k.published),
            at(k.active),
            at(k.retired),
            at(k.withdrawn),
            at(k.removed),
            at(k.ds_seen),
            at(k.ds_gone),
        ]);
    }
    println!("\nkeys:");
    print!("{}", table(&rows));
    println!();
    match report.verdict {
        Verdict::Safe => println!(
            "safe: {} versions published, each through the gate; at {} instants, {} combinations of cached DS, DNSKEY and signed RRsets checked, and every one validates ({:.1} s)",
            report.versions, report.instants, report.combinations, report.seconds
        ),
        Verdict::Unsafe(u) => println!(
            "UNSAFE at {}: a resolver may hold the DS RRset the parent published at {} ({}), the DNSKEY RRset of serial {} and data of serial {}: {}",
            format_time(u.at),
            format_time(u.ds_published),
            if u.ds.is_empty() { "empty".to_owned() } else { u.ds.join(", ") },
            u.dnskey_serial,
            u.data_serial,
            u.reason
        ),
        Verdict::Refused { at, findings } => {
            println!("REFUSED at {}: the gate would not publish the version signed then:", format_time(*at));
            for f in findings {
                println!("  {f}");
            }
        }
    }
}
