//! The rehearsal itself: the managed run of [`crate::manage`] on a
//! simulated clock, in a throw-away database and key store, against the
//! simulated `Parent`; after every published version, the cache-model
//! check of [`Checker`]. The first unsafe instant (or a version the gate
//! refuses) ends it.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ceremonies::{CeremonyPlan, KSK_ID_OFFSET, KskSide};
use super::parent::{DsChange, DsRequest, Parent};
use super::safety::{CacheModel, Checker, Unsafe, ds_name};
use super::trace::Trace;
use super::version::ZoneVersion;
use super::{KeyInfo, KeySummary, example, key_summary};
use crate::db::{Actor, Event, EventKind};
use crate::db::{Database, DbError, DbLocation, NewZone};
use crate::keys::{KeyUri, PublishedKey};
use crate::manage::{ManageError, RunOptions, RunOutcome, run_zone};
use crate::policy::{Policy, PolicyError};
use crate::rollover::{
    Goal, Key, Observation, Record, RecordState, Step, advance, publication, successor_cause, successor_due_at,
};
use crate::sign::random_salt;
use crate::time::{format_duration, format_time};
use crate::verify::NoProgress;
use crate::zone::dnssec::{Ds, ds_matches, key_tag};
use crate::zone::{Name, ReadError, read_zone_file};

/// Why a rehearsal could not be run to a verdict.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// A policy file does not read or check.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The throw-away database failed.
    #[error(transparent)]
    Database(#[from] DbError),
    /// No NSEC3 salt could be made.
    #[error(transparent)]
    Salt(#[from] crate::sign::SignError),
    /// A managed run failed (not refused: that is a verdict).
    #[error(transparent)]
    Run(#[from] ManageError),
    /// The published version does not read back.
    #[error("reading back the published zone")]
    ReadBack(#[source] ReadError),
    /// An offline-KSK policy rehearsed without ceremonies, or without CDS
    /// (the simulated parent follows CDS).
    #[error("{0}")]
    Offline(String),
    /// A file of the rehearsal could not be written.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A fault a dry-run can inject, to see the safety check catch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The machine is told that zone signatures were published (and
    /// withdrawn) one max-ttl earlier than they were, so it takes the new
    /// ZSK's signatures for omnipresent and withdraws the old ZSK's DNSKEY
    /// one TTL early.
    EarlyZskWithdrawal,
    /// The machine is told that the parent stopped serving a DS one DS
    /// TTL plus the parent's propagation delay before it did (a `ds gone`
    /// read off one parent server, or guessed), so it takes the DS for
    /// gone from caches and withdraws the key's DNSKEY (going insecure:
    /// every DNSKEY) while resolvers may still hold the DS.
    EarlyDsGone,
}

impl Fault {
    /// The record whose moves the fault back-dates, and by how much.
    fn back_dates(self, policy: &Policy) -> (Record, i64) {
        match self {
            Fault::EarlyZskWithdrawal => (Record::Zrrsig, policy.zone.max_ttl),
            Fault::EarlyDsGone => (Record::Ds, policy.parent.ds_ttl + policy.parent.propagation_delay),
        }
    }
}

/// A policy file, read once: parsed, and its text (what the database stores).
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// The policy.
    pub policy: Policy,
    /// Its TOML text.
    pub source: String,
}

impl PolicyFile {
    /// Reads and checks a policy file; returns it with its warnings.
    pub fn read(path: &Path) -> Result<(PolicyFile, Vec<crate::policy::Warning>), PolicyError> {
        let source =
            std::fs::read_to_string(path).map_err(|source| PolicyError::Read { file: path.to_owned(), source })?;
        let (policy, warnings) = Policy::from_text(&source, path)?;
        Ok((PolicyFile { policy, source }, warnings))
    }
}

/// A policy that replaces the current one at a time.
#[derive(Debug, Clone)]
pub struct PolicyChange {
    /// When.
    pub at: i64,
    /// The new policy.
    pub file: PolicyFile,
}

/// What to rehearse.
#[derive(Debug, Clone)]
pub struct Rehearsal {
    /// The zone's apex.
    pub origin: Name,
    /// The policy at the start.
    pub policy: PolicyFile,
    /// Policies replacing it later, in time order.
    pub changes: Vec<PolicyChange>,
    /// Start of the simulated time.
    pub from: i64,
    /// End of the simulated time.
    pub until: i64,
    /// How long after the zone asks for a DS change the parent makes it.
    pub ds_delay: i64,
    /// The unsigned zone (default: the example zone).
    pub zone: Option<PathBuf>,
    /// Where keys are made (default: soft keys in the work directory).
    pub key_store: Option<KeyUri>,
    /// A fault to inject.
    pub fault: Option<Fault>,
    /// Write a trace of every version here.
    pub trace: Option<PathBuf>,
    /// With an offline KSK (`keys.offline-ksk`): when the ceremonies are.
    pub ceremonies: Option<CeremonyPlan>,
}

impl Rehearsal {
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

    /// Whether the fault can show anything under these policies: it moves
    /// zone signatures between ZSKs, which a CSK-only rehearsal never does.
    pub fn fault_applies(&self) -> bool {
        self.fault.is_none() || self.policies().any(|p| !p.keys.csk)
    }
}

/// How the rehearsal ended.
#[derive(Debug, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Every instant was safe.
    Safe,
    /// A combination of cached records fails to validate.
    Unsafe(Box<Unsafe>),
    /// The zone's KSK is offline and no imported response covered the
    /// time any more (a ceremony too late): nothing new was published.
    Uncovered {
        /// When.
        at: i64,
        /// The run's reason.
        reason: String,
    },
    /// The gate refused a version.
    Refused {
        /// When.
        at: i64,
        /// The gate's findings, one line each.
        findings: Vec<String>,
    },
}

impl Verdict {
    /// When the rehearsal stopped (`until` if it ran to the end).
    pub fn end(&self, until: i64) -> i64 {
        match self {
            Verdict::Safe => until,
            Verdict::Unsafe(u) => u.at,
            Verdict::Refused { at, .. } | Verdict::Uncovered { at, .. } => *at,
        }
    }
}

/// What a policy change did to the keys, judged at the run of its instant.
#[derive(Debug, Serialize)]
pub struct PolicyChangeReport {
    /// When.
    pub at: i64,
    /// The new policy, in words: name, key layout, algorithm, lifetimes.
    pub policy: String,
    /// The keys the run at the change made: each with the key it replaces
    /// and why the new policy calls for it (an algorithm rollover, a
    /// lifetime the new policy says is over, a key layout with no key of
    /// that role). Empty when the change started no rollover.
    pub started: Vec<StartedKey>,
    /// The keys in use that the change did not replace, with when the new
    /// policy will make their successors and when the old one would have.
    pub kept: Vec<KeptKey>,
}

/// A key made at a policy change.
#[derive(Debug, Serialize)]
pub struct StartedKey {
    /// The new key.
    pub key: i64,
    /// The key it replaces, if any.
    pub predecessor: Option<i64>,
    /// Why, in words.
    pub cause: String,
}

/// A key in use that a policy change did not replace.
#[derive(Debug, Serialize)]
pub struct KeptKey {
    /// The key.
    pub key: i64,
    /// When the new policy makes its successor (`None`: unlimited lifetime).
    pub successor_due: Option<i64>,
    /// When the old policy would have.
    pub successor_due_before: Option<i64>,
}

/// Everything a rehearsal found.
#[derive(Debug, Serialize)]
pub struct Rehearsed {
    /// The policy's name.
    pub policy: String,
    /// The zone.
    pub zone: String,
    /// Start.
    pub from: i64,
    /// End.
    pub until: i64,
    /// The parent's delay.
    pub ds_delay: i64,
    /// Versions published, each through the gate.
    pub versions: u64,
    /// Instants checked.
    pub instants: u64,
    /// Combinations of cached records checked.
    pub combinations: u64,
    /// How it ended.
    pub verdict: Verdict,
    /// What happened, in order.
    pub events: Vec<Event>,
    /// Each key's milestones.
    pub keys: Vec<KeySummary>,
    /// Each policy change and what it started.
    pub policy_changes: Vec<PolicyChangeReport>,
}

impl Rehearsed {
    /// The keys, as the event table and the drawing name them.
    pub fn key_infos(&self) -> Vec<KeyInfo> {
        self.keys.iter().map(|k| k.key.clone()).collect()
    }
}

/// Rehearses `rehearsal` in a private temporary directory, removed afterwards.
pub async fn rehearse(rehearsal: Rehearsal) -> Result<Rehearsed, DryRunError> {
    let work = WorkDir::new()?;
    let mut sim = Simulation::start(rehearsal, &work.0).await?;
    let verdict = sim.run().await?;
    if let Some(trace) = &sim.trace {
        trace.finish().map_err(|source| io_error(&sim.rehearsal.trace, source))?;
    }
    if let Some(ksk) = sim.ksk.take() {
        sim.events.extend(ksk.events);
        sim.events.sort_by_key(|e| e.time);
    }
    // Requests and responses plan ahead: what they planned past the end
    // did not happen in the rehearsal.
    let end = verdict.end(sim.rehearsal.until);
    sim.events.retain(|e| e.time <= end);
    // A key planned past the end, or by a plan a later ceremony replaced,
    // was never made in the rehearsal's time.
    let keys = sim.keys.values().map(|k| key_summary(k, &sim.events)).filter(|k| k.created.is_some()).collect();
    Ok(Rehearsed {
        policy: sim.rehearsal.policy.policy.name.clone(),
        zone: sim.zone_name.clone(),
        from: sim.rehearsal.from,
        until: sim.rehearsal.until,
        ds_delay: sim.rehearsal.ds_delay,
        versions: sim.versions,
        instants: sim.checker.instants,
        combinations: sim.checker.combinations,
        verdict,
        events: sim.events,
        keys,
        policy_changes: sim.policy_changes,
    })
}

fn io_error(path: &Option<PathBuf>, source: std::io::Error) -> DryRunError {
    DryRunError::Io { path: path.clone().unwrap_or_default(), source }
}

/// A private directory for the throw-away database, keys and zones,
/// removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<WorkDir, DryRunError> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("signet-dry-run-{}-{nanos}", std::process::id()));
        make_private_dir(&dir)?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn make_private_dir(dir: &Path) -> Result<(), DryRunError> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|source| DryRunError::Io { path: dir.to_owned(), source })
}

/// The simulation's state.
struct Simulation {
    rehearsal: Rehearsal,
    db: Database,
    key_store: KeyUri,
    zone_name: String,
    output: PathBuf,
    parent: Parent,
    checker: Checker,
    policy: Policy,
    events: Vec<Event>,
    last_event: i64,
    keys: BTreeMap<i64, KeyInfo>,
    versions: u64,
    trace: Option<Trace>,
    zone_id: i64,
    policy_changes: Vec<PolicyChangeReport>,
    /// The offline KSK's side, when the policy keeps the KSK offline.
    ksk: Option<KskSide>,
}

impl Simulation {
    async fn start(rehearsal: Rehearsal, work: &Path) -> Result<Simulation, DryRunError> {
        let key_store = match &rehearsal.key_store {
            Some(uri) => uri.clone(),
            None => {
                let dir = work.join("keys");
                make_private_dir(&dir)?;
                KeyUri::File(dir)
            }
        };
        let input = match &rehearsal.zone {
            Some(file) => std::path::absolute(file).map_err(|source| DryRunError::Io { path: file.clone(), source })?,
            None => {
                let file = work.join("unsigned.zone");
                let text = example::example_zone(&rehearsal.origin.to_string(), rehearsal.max_ttl());
                std::fs::write(&file, text).map_err(|source| DryRunError::Io { path: file.clone(), source })?;
                file
            }
        };
        let output = work.join("signed.zone");
        let db = Database::open(&DbLocation::File(work.join("dry-run.db")), true).await?;
        let policy = &rehearsal.policy.policy;
        db.import_policy(&policy.name, &rehearsal.policy.source, rehearsal.from).await?;
        let salt = random_salt(policy.denial.salt_length)?;
        let new = NewZone {
            name: &rehearsal.origin,
            policy: &policy.name,
            input: &input.display().to_string(),
            output: &output.display().to_string(),
            salt: &salt,
            remotes: &[],
        };
        let zone_id = db.add_zone(&new, rehearsal.from).await?;
        let ksk = match (policy.keys.offline_ksk, &rehearsal.ceremonies) {
            (false, _) => None,
            (true, None) => {
                return Err(DryRunError::Offline(
                    "the policy keeps the KSK offline: say when the ceremonies are (--ceremony-every)".to_owned(),
                ));
            }
            (true, Some(_)) if !policy.parent.cds => {
                return Err(DryRunError::Offline(
                    "the rehearsed parent follows CDS, which an offline KSK signs: set parent.cds = true".to_owned(),
                ));
            }
            (true, Some(plan)) => {
                let store = match &rehearsal.key_store {
                    Some(uri) => uri.clone(),
                    None => {
                        let dir = work.join("ksk-keys");
                        make_private_dir(&dir)?;
                        KeyUri::File(dir)
                    }
                };
                let source = (policy.name.as_str(), rehearsal.policy.source.as_str());
                Some(KskSide::start(work, &rehearsal.origin, source, store, plan.clone(), rehearsal.from).await?)
            }
        };
        let trace = match &rehearsal.trace {
            Some(dir) => Some(Trace::create(dir).map_err(|source| DryRunError::Io { path: dir.clone(), source })?),
            None => None,
        };
        Ok(Simulation {
            parent: Parent::new(rehearsal.ds_delay),
            checker: {
                let mut checker = Checker::new(rehearsal.origin.clone(), rehearsal.cache_model());
                checker.set_going_insecure(policy.insecure);
                checker
            },
            policy: policy.clone(),
            zone_name: crate::db::zone_key(&rehearsal.origin),
            trace,
            rehearsal,
            db,
            key_store,
            output,
            events: Vec::new(),
            last_event: 0,
            keys: BTreeMap::new(),
            zone_id,
            versions: 0,
            policy_changes: Vec::new(),
            ksk,
        })
    }

    /// Runs from `from` to `until`, or to the first unsafe instant.
    async fn run(&mut self) -> Result<Verdict, DryRunError> {
        let mut now = self.rehearsal.from;
        let mut changes = std::mem::take(&mut self.rehearsal.changes).into_iter().peekable();
        let key_store = self.key_store.clone();
        // Keys made in the caller's own store are never destroyed by a rehearsal.
        let purge = self.rehearsal.key_store.is_none();
        let options = RunOptions {
            explicit_now: true,
            key_store: Some(&key_store),
            progress: &NoProgress,
            purge,
            abandon: None,
            full_verify: false,
            previous: None,
            serving: None,
            lease: None,
        };
        loop {
            let first_event = self.events.len();
            if let Some(change) = self.parent.act(now) {
                self.parent_changed(&change, now).await?;
            }
            let mut replaced = None;
            while let Some(PolicyChange { file, .. }) = changes.next_if(|c| c.at <= now) {
                if replaced.is_none() {
                    let keys = self.db.keys(self.zone_id).await?.into_iter().map(|k| k.key).collect::<Vec<_>>();
                    replaced = Some((self.policy.clone(), keys));
                }
                self.db.import_policy(&self.rehearsal.policy.policy.name, &file.source, now).await?;
                tracing::info!(policy = %describe_policy(&file.policy), "policy replaced");
                self.policy = file.policy;
                self.checker.set_going_insecure(self.policy.insecure);
            }
            self.hold_ceremony(now).await?;
            let outcome = match run_zone(&self.db, &self.rehearsal.origin, now, &options).await {
                // A zone whose KSK is offline and no response covers now:
                // nothing is published, as in production.
                Err(ManageError::Offline { reason, .. }) => return Ok(Verdict::Uncovered { at: now, reason }),
                other => other?,
            };
            let step = match outcome {
                RunOutcome::Published(published) => published.step,
                RunOutcome::Refused(report) => {
                    let findings = report.findings.iter().map(|f| f.to_line()).collect();
                    return Ok(Verdict::Refused { at: now, findings });
                }
            };
            if let Some((old, before)) = replaced {
                let report = policy_change_report(&old, &self.policy, &before, &step, now);
                self.policy_changes.push(report);
            }
            self.record_keys(&step);
            self.collect_events().await?;
            if let Some(found) = self.publish_version(&step, now, first_event)? {
                return Ok(Verdict::Unsafe(found));
            }
            let mut next = self.db.zone(&self.rehearsal.origin).await?.next_run_at;
            if let Some(fault) = self.rehearsal.fault {
                next = earliest(next, self.inject_fault(fault, &step, now).await?);
                self.collect_events().await?;
            }
            next = earliest(next, self.parent.due());
            next = earliest(next, self.ksk.as_ref().map(KskSide::due));
            next = earliest(next, changes.peek().map(|c| c.at));
            match next {
                Some(t) if t <= self.rehearsal.until => now = t.max(now + 1),
                _ => return Ok(Verdict::Safe),
            }
        }
    }

    /// Holds the offline KSK's ceremony due at `now`, if one is, and
    /// names the KSK side's keys.
    async fn hold_ceremony(&mut self, now: i64) -> Result<(), DryRunError> {
        let Some(ksk) = &mut self.ksk else { return Ok(()) };
        let online = (&self.db, &self.key_store);
        let Some(keys) = ksk.hold_if_due(online, &self.rehearsal.origin, now).await? else { return Ok(()) };
        for stored in keys {
            let key = &stored.key;
            self.keys.entry(key.id + KSK_ID_OFFSET).or_insert_with(|| KeyInfo {
                id: key.id + KSK_ID_OFFSET,
                role: key.role.to_string(),
                algorithm: key.algorithm.number(),
                tag: key.tag,
                predecessor: key.predecessor.map(|p| p + KSK_ID_OFFSET),
            });
        }
        Ok(())
    }

    /// The parent changed its DS RRset: tell the machine which keys' DS
    /// appeared or went, as an operator would with `ds seen`/`ds gone`
    /// (with an offline KSK, on the KSK side, which takes it in at its
    /// next ceremony).
    async fn parent_changed(&mut self, change: &DsChange, now: i64) -> Result<(), DryRunError> {
        self.checker.ds_published(self.parent.ds(), now);
        if let Some(ksk) = &self.ksk {
            let origin = self.rehearsal.origin.clone();
            let seen = change.added.iter().map(|ds| (ds, true));
            let gone = change.removed.iter().map(|ds| (ds, false));
            for (ds, added) in seen.chain(gone) {
                let verb = if added { "publishes" } else { "withdraws" };
                let why = format!("the parent {verb} DS {}; recorded on the KSK side", ds_name(ds));
                let event = Event::note(now, Actor::Operator, EventKind::Parent, None, why);
                ksk.parent_changed(&origin, ds, added, &event).await?;
            }
            return Ok(());
        }
        let zone = self.db.zone(&self.rehearsal.origin).await?;
        let stored = self.db.keys(zone.id).await?;
        let origin = self.rehearsal.origin.clone();
        let key_of = |ds: &[u8]| {
            stored.iter().find(|k| ds_matches(origin.as_ref(), ds, &k.dnskey) == Some(true)).map(|k| k.key.id)
        };
        let seen = change.added.iter().map(|ds| (ds, true));
        let gone = change.removed.iter().map(|ds| (ds, false));
        for (ds, added) in seen.chain(gone) {
            let key = key_of(ds);
            let verb = if added { "publishes" } else { "withdraws" };
            let event = Event::note(
                now,
                Actor::Machine,
                EventKind::Parent,
                key,
                format!("the parent {verb} DS {}", ds_name(ds)),
            );
            match key {
                Some(key) => {
                    let observation = if added { Observation::DsSeen { key } } else { Observation::DsGone { key } };
                    self.db.observe(zone.id, &observation, &event, None).await?;
                }
                None => self.db.record_event(zone.id, &event).await?,
            }
        }
        Ok(())
    }

    /// Names the keys of a step that are new to the rehearsal.
    fn record_keys(&mut self, step: &Step) {
        for key in &step.keys {
            self.keys.entry(key.id).or_insert_with(|| KeyInfo {
                id: key.id,
                role: key.role.to_string(),
                algorithm: key.algorithm.number(),
                tag: key.tag,
                predecessor: key.predecessor,
            });
        }
    }

    /// Takes the zone's new audit events into the event table (all but
    /// the run rows and the zone's addition).
    async fn collect_events(&mut self) -> Result<(), DryRunError> {
        for (id, event) in self.db.events_after(self.zone_id, self.last_event).await? {
            self.last_event = id;
            if !matches!(event.kind, EventKind::Run | EventKind::ZoneAdded) {
                self.events.push(event);
            }
        }
        Ok(())
    }

    /// The DS RRset the parent is asked for: the zone's CDS records, or,
    /// when the policy publishes none, the same set submitted by the
    /// operator (what CDS would have said).
    fn ds_asked_for(&self, step: &Step, version: &ZoneVersion) -> DsRequest {
        if self.policy.parent.cds {
            let delete = version.cds.iter().any(|cds| Ds::parse(cds).is_some_and(|ds| ds.is_delete()));
            return if delete {
                DsRequest::Delete
            } else if version.cds.is_empty() {
                DsRequest::Nothing
            } else {
                DsRequest::Set(version.cds.clone())
            };
        }
        let publication = publication(&step.keys);
        if publication.cds_delete {
            return DsRequest::Delete;
        }
        if publication.cds.is_empty() {
            return DsRequest::Nothing;
        }
        let wanted = publication.cds;
        let digest = self.policy.parent.digest.number();
        let set = step
            .keys
            .iter()
            .filter(|k| wanted.contains(&k.id))
            .filter_map(|k| {
                let rdata =
                    version.dnskeys.iter().find(|d| key_tag(d) == k.tag && d.get(3) == Some(&k.algorithm.number()))?;
                PublishedKey::from_public(k.algorithm, &rdata[4..], k.role)
                    .ds_rdata(self.rehearsal.origin.as_ref(), digest)
            })
            .collect();
        DsRequest::Set(set)
    }

    /// Reads back what was published, traces it, shows the DS request to
    /// the parent and runs the safety check at `now`: the first unsafe
    /// combination, if there is one.
    fn publish_version(
        &mut self,
        step: &Step,
        now: i64,
        first_event: usize,
    ) -> Result<Option<Box<Unsafe>>, DryRunError> {
        let zone = read_zone_file(&self.output, &self.rehearsal.origin).map_err(DryRunError::ReadBack)?;
        let version = ZoneVersion::from_zone(&zone, now);
        if let Some(trace) = &mut self.trace {
            let events = self.events[first_event..].to_vec();
            let ds_ttl = self.policy.parent.ds_ttl;
            trace
                .version(&zone, version.serial, now, self.parent.ds(), ds_ttl, events)
                .map_err(|source| io_error(&self.rehearsal.trace, source))?;
        }
        self.versions += 1;
        let asked = self.ds_asked_for(step, &version);
        self.parent.asked(&asked, now);
        Ok(self.checker.zone_published(version).and_then(|()| self.checker.check(now)).err())
    }

    /// The fault: each move of the fault's record this step made (zone
    /// signatures published or withdrawn; a DS gone from the parent) is
    /// recorded as made earlier ([`Fault::back_dates`]), so the machine
    /// believes caches caught up that much sooner. Returns when the
    /// machine now wants to run.
    async fn inject_fault(&mut self, fault: Fault, step: &Step, now: i64) -> Result<Option<i64>, DryRunError> {
        let (record, earlier) = fault.back_dates(&self.policy);
        let moved: Vec<(i64, RecordState)> = step
            .transitions
            .iter()
            .filter(|t| t.record == record && matches!(t.to, RecordState::Rumoured | RecordState::Unretentive))
            .map(|t| (t.key, t.to))
            .collect();
        if moved.is_empty() {
            return Ok(None);
        }
        let zone = self.db.zone(&self.rehearsal.origin).await?;
        let mut keys: Vec<_> = self.db.keys(zone.id).await?.into_iter().map(|k| k.key).collect();
        for (id, state) in moved {
            let Some(key) = keys.iter_mut().find(|k| k.id == id && k.state(record) == state) else { continue };
            let since = key.record(record).since - earlier;
            key.set(record, state, since);
            let (record_name, state_name) = (record.as_str(), state.as_str());
            let why = format!("fault injected: {record_name} recorded as {state_name} since {}", format_time(since));
            let event = Event::note(now, Actor::Operator, EventKind::Fault, Some(id), why);
            self.db.inject_key_states(zone.id, key, &event).await?;
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

/// What the run at a policy change did to the keys: the keys it made, each
/// with the cause under the new policy alone (the machine's own
/// [`successor_cause`], so the report says why, or says plainly that the
/// new policy does not call for it), and the keys in use it kept, with
/// when the new policy and the old one make their successors.
fn policy_change_report(old: &Policy, new: &Policy, before: &[Key], step: &Step, now: i64) -> PolicyChangeReport {
    let made = step.keys.iter().filter(|k| !before.iter().any(|b| b.id == k.id));
    let started = made
        .map(|key| {
            let cause = match key.predecessor.and_then(|p| before.iter().find(|b| b.id == p)) {
                Some(predecessor) => successor_cause(predecessor, new, now, &[])
                    .map_or_else(|| "NOT called for by the new policy".to_owned(), |c| c.to_string()),
                None => format!("the policy wants a {} and the zone has none in use", key.role),
            };
            StartedKey { key: key.id, predecessor: key.predecessor, cause }
        })
        .collect();
    // A zone going insecure keeps no key: none has a successor to come.
    let kept = before
        .iter()
        .filter(|_| !new.insecure)
        .filter(|k| k.goal == Goal::Omnipresent && k.successor.is_none())
        .filter(|k| !step.keys.iter().any(|s| s.predecessor == Some(k.id)))
        .map(|k| KeptKey {
            key: k.id,
            successor_due: successor_due_at(k, new),
            successor_due_before: successor_due_at(k, old),
        })
        .collect();
    PolicyChangeReport { at: now, policy: describe_policy(new), started, kept }
}

fn describe_policy(policy: &Policy) -> String {
    let k = &policy.keys;
    let life = |seconds: i64| if seconds == 0 { "unlimited".to_owned() } else { format_duration(seconds) };
    let keys = if k.csk {
        format!("CSK {}", life(k.ksk_lifetime))
    } else {
        format!("KSK {} + ZSK {}", life(k.ksk_lifetime), life(k.zsk_lifetime))
    };
    let insecure = if policy.insecure { ", going insecure" } else { "" };
    format!("{} ({keys}, {}{insecure})", policy.name, k.algorithm)
}
