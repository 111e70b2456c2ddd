//! The managed run of one zone (`signet sign ZONE`): advance the zone's
//! rollover state machine to now, make the keys it asks for, sign with the
//! keys the key states say, through the gate, and record the run — key
//! states, transitions, consumed observations — in one transaction after
//! the zone is published.
//!
//! Order matters for safety: the database learns of a transition only
//! once the zone that carries it is in place. A run killed before that
//! leaves the old states, which the next run takes up again later (a
//! later start of every timer: never less safe); a run killed after the
//! rename but before the commit is redone the same way.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::gate::{Checked, GateFailure, Predecessor, check_through_gate, sign_in_memory_through_gate};
use super::gate_memo::{self, FullReason};
use super::journal::diff_for_commit;
use super::keys::{advance_with_new_keys, key_store, open_signing_keys, parent_ds, purge_removed_keys, signing_keys};
use super::oneshot::published_serial;
use super::output::PendingOutput;
use super::review::{Offer, review};
use super::{ManageError, zone_name};
use crate::chain::Chain;
use crate::db::{
    Actor, Database, Event, EventKind, Fence, GateMemoCommit, JournalEntry, MemoBlob, PublishedZone, RunCommit,
    RunRecord, RunResult, ZoneRow, ZoneSnapshot,
};
use crate::keys::KeyUri;
use crate::policy::Policy;
use crate::publish::Installed;
use crate::rollover::{Action, Step, publication};
use crate::sign::{
    Basis, SignError, SignSettings, SignStats, SigningKeys, check_input, sign_changes, sign_zone_in_memory,
    sign_zone_until,
};
use crate::time::format_time;
use crate::verify::{Progress, Report, SignatureMemo, VerifiedVersion, VerifyOptions};
use crate::zone::{Name, Zone, read_zone_file, read_zone_file_with_digest};

/// How a run is done, besides the zone and the time.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions<'a> {
    /// The time was given (`--now`): lifts the check that the clock did
    /// not go backwards.
    pub explicit_now: bool,
    /// Make new keys here instead of in the policy's `keys.store` (a
    /// dry-run's throw-away key store).
    pub key_store: Option<&'a KeyUri>,
    /// Where the gate reports its progress.
    pub progress: &'a dyn Progress,
    /// Destroy the material of keys removed longer than `keys.purge-after`
    /// ago (off for a dry-run that makes keys in its caller's store).
    pub purge: bool,
    /// Set by a service that is stopping: the run publishes nothing once
    /// this is true ([`ManageError::Abandoned`]).
    pub abandon: Option<&'a AtomicBool>,
    /// Verify every signature with crypto, not taking any from the gate's
    /// memo (`signet sign ZONE --full-verify`).
    pub full_verify: bool,
    /// The version last published, when the caller holds it (a service
    /// keeps the zone its last run published): the run takes its
    /// signatures from it, and its journal entry is the difference from
    /// it, instead of reading the output again. It must be the version
    /// last published; when unsure, pass None.
    pub previous: Option<&'a Zone>,
    /// Set by a caller that serves the zone from memory (a service): the
    /// gate runs on the zone in memory, the version it passed is recorded
    /// and handed to the caller to serve, and only then written to the
    /// output through the file's own gate.
    pub serving: Option<Serving<'a>>,
    /// The zone's lease, held by the caller (a service whose state
    /// several signers share): the run holds the zone by it instead of
    /// taking the zone's lock, and every write of the run is fenced with
    /// it.
    pub lease: Option<&'a Fence>,
}

/// How a service takes part in a run ([`RunOptions::serving`]).
#[derive(Clone, Copy)]
pub struct Serving<'a> {
    /// The unsigned zone the service holds (read by an earlier run, or
    /// brought by a transfer in): signed instead of the input file.
    pub input: Option<HeldInput<'a>>,
    /// Called with the version the gate passed, once it is recorded and
    /// before its file is written: the service serves it and notifies.
    pub serve: &'a (dyn Fn(&VerifiedVersion) + Sync),
    /// What the version passed as [`RunOptions::previous`] was signed
    /// from, when the service knows: lets the run sign only the changes.
    pub basis: Option<ChangeBasis<'a>>,
    /// The memo the gate collected for the version the service serves:
    /// the gate's memo for this run, instead of the stored one (which a
    /// service writes after serving, [`MemoBlob::Later`]).
    pub memo: Option<&'a Arc<SignatureMemo>>,
}

/// The unsigned input a served version was signed from, and the
/// fingerprint of the keys and settings it was signed with
/// ([`Published::fingerprint`]).
#[derive(Debug, Clone, Copy)]
pub struct ChangeBasis<'a> {
    /// The unsigned input.
    pub input: &'a Zone,
    /// [`crate::sign::SignSettings::fingerprint`] of its run.
    pub fingerprint: u64,
}

impl std::fmt::Debug for Serving<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving").field("input", &self.input).finish_non_exhaustive()
    }
}

/// An unsigned zone held by a service ([`Serving::input`]).
#[derive(Debug, Clone, Copy)]
pub struct HeldInput<'a> {
    /// The zone.
    pub zone: &'a Zone,
    /// The SHA-256 of the input file it was read from; None for a copy
    /// transferred in and not yet written (the digest recorded stays).
    pub digest: Option<&'a [u8]>,
}

/// A published run.
#[derive(Debug)]
pub struct Published {
    /// The machine's step: transitions, actions, the next wake-up.
    pub step: Step,
    /// What the signer made.
    pub stats: SignStats,
    /// The gate's report.
    pub report: Report,
    /// Why the gate verified every signature with crypto (`None`: it
    /// took some from its memo).
    pub full_verification: Option<FullReason>,
    /// The version published, as the gate verified it.
    pub zone: Arc<Zone>,
    /// The unsigned input this run read from its file, with its digest,
    /// for a serving caller to hold ([`RunOptions::serving`]).
    pub input: Option<(Arc<Zone>, Vec<u8>)>,
    /// Served from memory, its output file still to be written
    /// ([`super::output::write_pending_output`]).
    pub pending_output: Option<PendingOutput>,
    /// The fingerprint of the keys and settings it was signed with, for
    /// the next run's [`ChangeBasis`].
    pub fingerprint: u64,
}

/// How a managed run ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// Published, and the new key states committed.
    Published(Box<Published>),
    /// The gate refused: nothing published, key states unchanged.
    Refused(Box<Report>),
}

/// Signs zone `name` at `now`, holding the zone's lock for the run.
pub async fn run_zone(
    db: &Database,
    name: &Name,
    now: i64,
    options: &RunOptions<'_>,
) -> Result<RunOutcome, ManageError> {
    let mut snapshot = db.snapshot(name).await?;
    anchor_key_paths(&mut snapshot, &database_dir(db));
    let (zone_id, zone_text) = (snapshot.zone.id, snapshot.zone.name.clone());
    let started = std::time::Instant::now();
    // A run refused for the clock is recorded like any failed run, so
    // that status shows it (it takes no lock: it does nothing).
    let clock = clock_check(&snapshot, now, options);
    let hold = match clock {
        Ok(()) => Some(ZoneHold::take(db, &snapshot.zone, now, options.lease).await?),
        Err(_) => None,
    };
    snapshot.fence = hold.as_ref().and_then(|h| h.fence.clone());
    let result = match clock {
        Ok(()) => run_locked(db, snapshot, now, options).await,
        Err(e) => Err(e),
    };
    let record = run_record(&result, now, started.elapsed().as_secs_f64());
    finish_run(db, (zone_id, &zone_text), hold.as_ref(), record).await;
    result
}

/// How a run holds its zone: the zone's lock it took (the pid in an
/// SQLite database, a lease of its own in PostgreSQL), or a service's
/// lease it runs under.
#[derive(Debug)]
pub(super) struct ZoneHold {
    /// What the run's writes are fenced with (a lease).
    pub fence: Option<Fence>,
    /// The run took the lock and lets go of it at its end (a service's
    /// lease outlives the run).
    taken: bool,
}

impl ZoneHold {
    /// Holds `zone` by `lease` if given, else by its lock.
    pub(super) async fn take(
        db: &Database,
        zone: &ZoneRow,
        now: i64,
        lease: Option<&Fence>,
    ) -> Result<ZoneHold, ManageError> {
        Ok(match lease {
            Some(fence) => ZoneHold { fence: Some(fence.clone()), taken: false },
            None => ZoneHold { fence: db.lock_zone(zone, std::process::id(), now).await?, taken: true },
        })
    }
}

/// Refuses a time before the zone's last run, unless the time was given.
fn clock_check(snapshot: &ZoneSnapshot, now: i64, options: &RunOptions<'_>) -> Result<(), ManageError> {
    match snapshot.zone.last_run_at.filter(|last| now < *last) {
        Some(last) if !options.explicit_now => Err(ManageError::ClockWentBack {
            zone: snapshot.zone.name.clone(),
            last: format_time(last),
            now: format_time(now),
        }),
        _ => Ok(()),
    }
}

/// Records a run that published nothing and lets go of the zone's lock
/// if the run took it. A database that cannot take either (a full disk)
/// is logged, not returned: the run's own outcome is what the caller must
/// see; the next run takes over a lock left behind by this process (or a
/// dead one).
pub(super) async fn finish_run(
    db: &Database,
    (zone_id, zone): (i64, &str),
    hold: Option<&ZoneHold>,
    record: Option<RunRecord>,
) {
    let fence = hold.and_then(|h| h.fence.as_ref());
    if let Some(run) = record
        && let Err(e) = db.record_unpublished_run(zone_id, &run, fence).await
    {
        tracing::error!(
            zone,
            result = run.result.as_str(),
            "cannot record the run: {}; the run: {}",
            Chain(&e),
            run.message
        );
    }
    if let Some(hold) = hold.filter(|h| h.taken)
        && let Err(e) = db.unlock_zone(zone_id, std::process::id(), hold.fence.as_ref()).await
    {
        tracing::error!(zone, "cannot release the zone's signing lock: {}", Chain(&e));
    }
}

/// The run row of a run that published nothing (the published run is
/// recorded by its commit).
fn run_record(result: &Result<RunOutcome, ManageError>, at: i64, seconds: f64) -> Option<RunRecord> {
    match result {
        // A version its review did not approve is recorded as a review.
        Ok(RunOutcome::Published(_)) | Err(ManageError::Abandoned { .. } | ManageError::NotApproved { .. }) => None,
        Ok(RunOutcome::Refused(report)) => Some(RunRecord {
            at,
            result: RunResult::Refused,
            errors: report.stats.errors,
            warnings: report.stats.warnings,
            findings: serde_json::to_string(&report.findings).ok(),
            message: report.summary_line(),
            seconds,
            ..RunRecord::default()
        }),
        Err(e) => Some(RunRecord {
            at,
            result: RunResult::Failed,
            message: Chain(e).to_string(),
            seconds,
            ..RunRecord::default()
        }),
    }
}

async fn run_locked(
    db: &Database,
    mut snapshot: ZoneSnapshot,
    now: i64,
    options: &RunOptions<'_>,
) -> Result<RunOutcome, ManageError> {
    let started = std::time::Instant::now();
    let origin = super::zone_origin(&snapshot)?;
    let output = std::path::PathBuf::from(&snapshot.zone.output_path);
    crate::publish::remove_stale_candidates(&output);
    // The published version is read beside the input, when the caller
    // does not hold it.
    let read_previous = || options.previous.is_none().then(|| previous_version(&output, &origin)).flatten();
    let (input, read_previous) = rayon::join(|| run_input(&snapshot, &origin, options), read_previous);
    let (input_digest, unsigned) = input?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "input ready and checked");
    let previous = options.previous.or(read_previous.as_ref());
    let input_serial = unsigned.zone().soa_serial();
    let key_store = key_store(&snapshot, options.key_store).cloned();
    // With an offline KSK the response in force fixes the apex's key
    // RRsets and their signatures; the machine moves the ZSKs within it.
    let (mut step, presigned, next_period) = if snapshot.policy.keys.offline_ksk {
        let in_force =
            super::offline::advance_with_response(db, &mut snapshot, key_store.as_ref(), &origin, now).await?;
        (in_force.step, Some(in_force.presigned), in_force.next_period)
    } else {
        (advance_with_new_keys(db, &mut snapshot, key_store.as_ref(), &origin, now, None).await?, None, None)
    };
    let zone = &snapshot.zone;
    let policy = &snapshot.policy;
    let publication = publication(&step.keys);
    let opened = open_signing_keys(&zone.name, &snapshot.keys, &step.keys, &publication)?;
    let mut keys = signing_keys(&publication, &opened, policy);
    keys.presigned = presigned.as_ref();
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "key states advanced, signing keys open");
    let mut settings = SignSettings::from_policy(policy, now, zone.nsec3_salt.clone());
    // The serial at the output counts too: after a kill between rename and
    // commit, or a hand edit, the database's is not the newest.
    let recorded = zone.last_serial.and_then(|s| u32::try_from(s).ok());
    let published = published_serial(Path::new(&zone.output_path), &origin);
    settings.last_serial = later_serial(later_serial(recorded, published), undone_serial(&zone.name));
    let held_memo = options.serving.as_ref().and_then(|serving| serving.memo);
    let mut gate_plan = gate_memo::plan(db, zone, policy, now, options.full_verify, held_memo).await?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "gate planned");
    let verify = VerifyOptions {
        now,
        min_validity: policy.signatures.refresh,
        trust_anchor: parent_ds(&step.keys, &opened, &origin, policy),
        memo: gate_plan.memo.take(),
        collect_memo: gate_plan.collect,
        allow_unsigned: keys.unsigned,
    };
    let fingerprint = settings.fingerprint(&keys);
    let change_basis = change_basis(options, fingerprint, zone.sig_expires_at, &settings);
    let gate = Gate {
        change_basis,
        output: &output,
        origin: &origin,
        verify: &verify,
        predecessor: Predecessor { serial: settings.last_serial, zone: previous },
        keys: &keys,
        settings: &settings,
        progress: options.progress,
        abandon: options.abandon,
        in_memory: options.serving.is_some(),
    };
    let passed = match gate.pass(unsigned.zone(), previous) {
        Ok(passed) => passed,
        Err(GateFailure::Refused(report)) => return Ok(RunOutcome::Refused(report)),
        Err(failure) => return Err(gate_failed(&snapshot.zone, failure)),
    };
    let Gated { stats, report, memo, zone: published_zone, settle, refused_incremental } = passed;
    let offer = Offer {
        zone: &published_zone,
        file: settle.file(),
        output: &output,
        serial: stats.serial,
        previous_serial: later_serial(recorded, published),
        previous,
        rrsigs: stats.rrsigs + stats.rrsigs_kept,
    };
    review(db, &snapshot, &offer, now, options.abandon).await?;
    let settle = settle.install(options.abandon).map_err(|failure| gate_failed(&snapshot.zone, failure))?;
    let mut due = resign_due(policy, report.stats.earliest_expiration, now);
    if presigned.is_some() {
        // The run renewed every signature it makes; what is still due is
        // the response's, which only its next period renews.
        if due <= now {
            due = next_period.unwrap_or(now + 3600);
        }
        step.next = [step.next, next_period].into_iter().flatten().min();
    }
    let next_run_why = match step.next {
        Some(next) if next <= due => "a key state transition",
        _ => "the signatures' refresh",
    };
    step.next = Some(step.next.map_or(due, |next| next.min(due)));
    let published = PublishedZone {
        input_digest: input_digest.clone(),
        signatures_expire: report.stats.earliest_expiration,
        next_run_why: next_run_why.to_owned(),
        // A version served from memory has its file written after it is
        // served: its stamp is recorded then.
        output_stamp: match settle {
            Settled::Installed(_) => crate::publish::Stamp::of(&output).map(|stamp| stamp.to_string()),
            Settled::Served(_) => None,
        },
    };
    let run = RunRecord {
        at: now,
        serial: Some(stats.serial),
        result: RunResult::Published,
        rrsigs: stats.rrsigs,
        records: stats.records,
        errors: report.stats.errors,
        warnings: report.stats.warnings,
        findings: None,
        message: run_message(
            &stats,
            step.transitions.len(),
            refused_incremental.as_deref(),
            &gate_plan.describe(&report.stats),
        ),
        seconds: started.elapsed().as_secs_f64(),
        input_serial,
    };
    let events = step_events(&step, now, policy.parent.cds);
    let diff = diff_for_commit(previous, &published_zone, &policy.journal);
    drop(read_previous);
    let pending_output = match settle {
        Settled::Installed(installed) => {
            let stored_memo = gate_memo::to_store(&zone.name, memo.as_deref());
            let rows = Rows { run, published, memo: gate_plan.commit(gate_memo::blob(stored_memo.as_ref())), diff };
            commit_or_undo(db, &snapshot, &step, &events, rows, installed).await?;
            None
        }
        Settled::Served(version) => {
            // The memo (33 MB for a million signatures) is serialized and
            // written after the version is served, off the path.
            let rows = Rows { run, published, memo: gate_plan.commit(MemoBlob::Later), diff };
            commit(db, &snapshot, &step, &events, rows).await?;
            tracing::debug!(seconds = started.elapsed().as_secs_f64(), "committed");
            if let Some(serving) = &options.serving {
                (serving.serve)(&version);
            }
            gate_memo::store_later(db, &snapshot, now, stats.serial, memo.as_deref()).await;
            // The file's gate takes every signature from this version's
            // own memo: it checks the file is this version.
            let verify = VerifyOptions { memo: version.memo().cloned(), collect_memo: false, ..verify };
            Some(PendingOutput { output, serial: stats.serial, version, verify })
        }
    };
    if options.purge {
        purge_removed_keys(db, &snapshot, now).await?;
    }
    Ok(RunOutcome::Published(Box::new(Published {
        step,
        stats,
        report,
        full_verification: gate_plan.full,
        zone: published_zone,
        input: unsigned.into_read().filter(|_| options.serving.is_some()).map(|zone| (zone, input_digest)),
        pending_output,
        fingerprint,
    })))
}

/// The input the served version was signed from, if this run may sign
/// only what changed since: the service knows it, the version was signed
/// with the same keys and settings (`fingerprint`), and none of its
/// signatures is due for refresh (the earliest expires after the renewal
/// margin), so every signature of an unchanged RRset would be kept.
fn change_basis<'a>(
    options: &RunOptions<'a>,
    fingerprint: u64,
    signatures_expire: Option<i64>,
    settings: &SignSettings,
) -> Option<&'a Zone> {
    let basis = options.serving.as_ref()?.basis?;
    let fresh = signatures_expire.is_some_and(|at| at - settings.now > settings.renew_within);
    (basis.fingerprint == fingerprint && fresh).then_some(basis.input)
}

/// The unsigned input, with the digest to record for it: the zone the
/// caller holds, or the input file read once, with the digest of exactly
/// the bytes read (if the file changes meanwhile, a service sees the
/// change by its digest).
fn run_input<'a>(
    snapshot: &ZoneSnapshot,
    origin: &Name,
    options: &RunOptions<'a>,
) -> Result<(Vec<u8>, Unsigned<'a>), ManageError> {
    let zone = zone_name(snapshot);
    let input = Path::new(&snapshot.zone.input_path);
    if let Some(held) = options.serving.as_ref().and_then(|serving| serving.input) {
        check_input(held.zone, origin).map_err(ManageError::content(zone, input))?;
        let digest = held.digest.map(<[u8]>::to_vec).or_else(|| snapshot.zone.input_digest.clone());
        return Ok((digest.unwrap_or_default(), Unsigned::Held(held.zone)));
    }
    let (unsigned, digest) = read_input(snapshot, origin)?;
    Ok((digest, Unsigned::Read(unsigned)))
}

/// The unsigned zone a run signs.
#[derive(Debug)]
enum Unsigned<'a> {
    /// Held by the caller ([`Serving::input`]).
    Held(&'a Zone),
    /// Read from the input file by this run.
    Read(Zone),
}

impl Unsigned<'_> {
    fn zone(&self) -> &Zone {
        match self {
            Unsigned::Held(zone) => zone,
            Unsigned::Read(zone) => zone,
        }
    }

    /// The zone read by this run, for a serving caller to hold.
    fn into_read(self) -> Option<Arc<Zone>> {
        match self {
            Unsigned::Held(_) => None,
            Unsigned::Read(zone) => Some(Arc::new(zone)),
        }
    }
}

/// Everything the gate step of a run needs.
struct Gate<'a> {
    /// The unsigned input `previous` was signed from, when only the
    /// changes since need signing.
    change_basis: Option<&'a Zone>,
    output: &'a Path,
    origin: &'a Name,
    verify: &'a VerifyOptions,
    predecessor: Predecessor<'a>,
    keys: &'a SigningKeys<'a>,
    settings: &'a SignSettings,
    progress: &'a dyn Progress,
    abandon: Option<&'a AtomicBool>,
    in_memory: bool,
}

/// What passed the gate, before it is recorded.
struct Gated {
    stats: SignStats,
    report: Report,
    memo: Option<Arc<SignatureMemo>>,
    /// The version published.
    zone: Arc<Zone>,
    settle: Settle,
    /// Why the candidate that kept signatures was refused, if it was.
    refused_incremental: Option<String>,
}

/// A passed version, before its review.
enum Settle {
    /// A file verified, to install once its review approves it.
    Checked(Box<Checked<SignStats>>),
    /// Verified in memory: served first, then written to the output.
    Served(VerifiedVersion),
}

/// A passed version once approved, settled when the run is recorded.
enum Settled {
    /// Installed at the output: kept once committed, undone if not.
    Installed(Installed),
    /// Verified in memory: served first, then written to the output.
    Served(VerifiedVersion),
}

impl Settle {
    /// The verified candidate's file, if the gate verified one.
    fn file(&self) -> Option<&Path> {
        match self {
            Settle::Checked(checked) => Some(checked.path()),
            Settle::Served(_) => None,
        }
    }

    /// A file verified and approved, installed at the output.
    fn install(self, abandon: Option<&AtomicBool>) -> Result<Settled, GateFailure> {
        match self {
            Settle::Checked(checked) => Ok(Settled::Installed(checked.install(abandon)?.installed)),
            Settle::Served(version) => Ok(Settled::Served(version)),
        }
    }
}

impl Gate<'_> {
    /// Signs (keeping what may be kept of `previous`) and passes the gate:
    /// in memory for a serving caller, through a file otherwise. A
    /// candidate that kept signatures and was refused is signed again in
    /// full: a kept signature the gate refuses (the published file
    /// damaged on disk, say) must not hold the zone up.
    fn pass(&self, unsigned: &Zone, previous: Option<&Zone>) -> Result<Gated, GateFailure> {
        let sign = |previous| {
            if self.in_memory { self.in_memory(unsigned, previous) } else { self.to_file(unsigned, previous) }
        };
        match sign(previous) {
            Err(GateFailure::Refused(report)) if previous.is_some() => {
                tracing::warn!(zone = %self.origin, verdict = %report.summary_line(), first = ?report.findings.first().map(|f| f.to_line()),
                    "the candidate that kept signatures of the published version was refused; signing in full");
                let mut gated = sign(None)?;
                gated.refused_incremental = Some(report.summary_line());
                Ok(gated)
            }
            other => other,
        }
    }

    fn in_memory(&self, unsigned: &Zone, previous: Option<&Zone>) -> Result<Gated, GateFailure> {
        let (stats, version) =
            sign_in_memory_through_gate(self.verify, self.predecessor, self.progress, self.abandon, || {
                if let Some((unsigned_before, signed)) = self.change_basis.zip(previous) {
                    let basis = Basis { signed, unsigned: unsigned_before };
                    if let Some(made) = sign_changes(basis, unsigned, self.keys, self.settings, self.abandon)? {
                        return Ok(made);
                    }
                    tracing::debug!(zone = %self.origin, "the change does not suit the change path: signing in full");
                }
                sign_zone_in_memory(unsigned, self.keys, self.settings, previous, self.abandon)
            })?;
        Ok(Gated {
            stats,
            report: version.report().clone(),
            memo: version.memo().cloned(),
            zone: Arc::clone(version.zone()),
            settle: Settle::Served(version),
            refused_incremental: None,
        })
    }

    fn to_file(&self, unsigned: &Zone, previous: Option<&Zone>) -> Result<Gated, GateFailure> {
        let mut checked = check_through_gate(
            self.output,
            self.origin,
            self.verify,
            self.predecessor,
            self.progress,
            self.abandon,
            |out| sign_zone_until(unsigned, self.keys, self.settings, previous, self.abandon, out),
        )?;
        Ok(Gated {
            stats: checked.made.clone(),
            report: checked.report.clone(),
            memo: checked.memo.take().map(Arc::new),
            zone: Arc::clone(&checked.zone),
            settle: Settle::Checked(Box::new(checked)),
            refused_incremental: None,
        })
    }
}

/// A gate failure other than its refusal, as the run's error.
pub(super) fn gate_failed(zone: &ZoneRow, failure: GateFailure) -> ManageError {
    match failure {
        GateFailure::Abandoned | GateFailure::Sign(SignError::Stopped) => {
            ManageError::Abandoned { zone: zone.name.clone() }
        }
        GateFailure::Sign(source) => {
            ManageError::Sign { zone: zone.name.clone(), output: zone.output_path.clone(), source: Box::new(source) }
        }
        GateFailure::Publish(source) => {
            ManageError::Publish { zone: zone.name.clone(), output: zone.output_path.clone(), source: Box::new(source) }
        }
        GateFailure::SerialHeld(held) => ManageError::SerialHeld { zone: zone.name.clone(), source: held },
        // The caller takes the refusal out before.
        GateFailure::Refused(report) => ManageError::Argument(report.summary_line()),
    }
}

/// The directory relative `file:` key paths are taken from.
pub(super) fn database_dir(db: &Database) -> std::path::PathBuf {
    db.location().key_dir()
}

/// Takes relative `file:` paths (the policy's key store, key files made
/// in it) as relative to the database's directory: `store = "file:keys"`
/// names the same directory from the command line and from a service,
/// whatever their working directories.
pub(super) fn anchor_key_paths(snapshot: &mut ZoneSnapshot, dir: &Path) {
    if let Some(store) = &mut snapshot.policy.keys.store {
        *store = store.resolved_against(dir);
    }
    for key in &mut snapshot.keys {
        if let Ok(uri) = KeyUri::parse(&key.uri) {
            key.uri = uri.resolved_against(dir).to_string();
        }
    }
}

/// SHA-256 of a regular file's bytes: how the service tells a changed
/// input from a touched one.
pub fn file_digest(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0; 1 << 20];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(context.finish().as_ref().to_vec()),
            n => context.update(&buf[..n]),
        }
    }
}

/// The later of two serials in RFC 1982 arithmetic.
/// The serials of publications that this process put at an output and
/// then undid (their commit failed), by zone. The next run goes past
/// them: a name server that read the output in that moment never sees
/// another version under the same serial.
static UNDONE: std::sync::Mutex<std::collections::BTreeMap<String, u32>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn undone_serial(zone: &str) -> Option<u32> {
    UNDONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(zone).copied()
}

fn remember_undone(zone: &str, serial: u32) {
    let mut undone = UNDONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let later = later_serial(undone.get(zone).copied(), Some(serial)).unwrap_or(serial);
    undone.insert(zone.to_owned(), later);
}

fn later_serial(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if crate::zone::serial::serial_gt(b, a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// What a step did, as audit events: its transitions, then its actions
/// (DS requests, keys removed) in order.
pub(super) fn step_events(step: &Step, now: i64, publish_cds: bool) -> Vec<Event> {
    let (submit, mut retract) = if publish_cds {
        ("DS submitted: CDS/CDNSKEY ask the parent for it", "DS retraction asked: CDS/CDNSKEY leave it out")
    } else {
        ("DS submitted to the parent by the operator (CDS is off)", "DS retraction sent to the parent by the operator")
    };
    if publication(&step.keys).cds_delete {
        retract = if publish_cds {
            "going insecure: DS retraction asked, CDS/CDNSKEY DELETE published (RFC 8078)"
        } else {
            "going insecure: the empty DS set sent to the parent by the operator (CDS is off)"
        };
    }
    let transitions = step.transitions.iter().map(|t| Event::transition(now, t));
    let actions = step.actions.iter().filter_map(|action| {
        let (kind, key, why) = match *action {
            Action::SubmitDs { key } => (EventKind::DsRequested, key, submit),
            Action::RetractDs { key } => (EventKind::DsRequested, key, retract),
            Action::RemoveKey { key } => (EventKind::KeyRemoved, key, "hidden everywhere: key removed"),
            Action::CreateKey { .. } => return None,
        };
        Some(Event::note(now, Actor::Machine, kind, Some(key), why))
    });
    transitions.chain(actions).collect()
}

/// What a published run records besides the key states: the run row,
/// the zone's published state, the gate's memo and the journal entry.
struct Rows<'a> {
    run: RunRecord,
    published: PublishedZone,
    memo: GateMemoCommit<'a>,
    diff: Option<JournalEntry>,
}

/// Writes the new key states, the step's events, removed keys and
/// consumed observations with the run, the gate's memo and the difference
/// from the version before, in one transaction.
async fn commit(
    db: &Database,
    snapshot: &ZoneSnapshot,
    step: &Step,
    events: &[Event],
    rows: Rows<'_>,
) -> Result<(), ManageError> {
    let removed: Vec<i64> = step
        .actions
        .iter()
        .filter_map(|a| match *a {
            Action::RemoveKey { key } => Some(key),
            _ => None,
        })
        .collect();
    let consumed: Vec<i64> = snapshot.pending.iter().map(|(id, _)| *id).collect();
    let commit = RunCommit {
        keys: &step.keys,
        events,
        removed: &removed,
        consumed: &consumed,
        next_run_at: step.next,
        run: rows.run,
        published: rows.published,
        diff: rows.diff,
        memo: rows.memo,
        fence: snapshot.fence.as_ref(),
    };
    db.commit_run(snapshot.zone.id, &commit).await?;
    Ok(())
}

/// Commits the run; if the commit fails (a full disk, say), puts the
/// version before back at the output, so that the output never gets
/// ahead of what the database records (and the service serves). The
/// version undone was never announced: no publish-command, NOTIFY or
/// transfer comes before the commit.
async fn commit_or_undo(
    db: &Database,
    snapshot: &ZoneSnapshot,
    step: &Step,
    events: &[Event],
    rows: Rows<'_>,
    installed: crate::publish::Installed,
) -> Result<(), ManageError> {
    let serial = rows.run.serial;
    let committed = commit(db, snapshot, step, events, rows).await;
    let Err(error) = committed else {
        installed.keep();
        return Ok(());
    };
    let zone = &snapshot.zone.name;
    if let Some(serial) = serial {
        remember_undone(zone, serial);
    }
    match installed.undo() {
        Ok(()) => {
            tracing::warn!(zone = %zone, serial, "the publication could not be recorded: the version before is back at the output ({})", Chain(&error))
        }
        Err(undo) => {
            tracing::error!(zone = %zone, serial, "the publication could not be recorded ({}), and the version before cannot be put back ({}): the output is ahead of the database until the next run publishes", Chain(&error), Chain(&undo))
        }
    }
    Err(error)
}

/// When the earliest signature published falls due for refresh: the zone
/// must be signed again by then, whatever the keys do. `earliest` is the
/// gate's reading of the zone just published (kept signatures included);
/// without it, the earliest a fresh signature could expire.
fn resign_due(policy: &Policy, earliest: Option<i64>, now: i64) -> i64 {
    let s = &policy.signatures;
    let earliest = earliest.unwrap_or(now + s.validity.min(s.dnskey_validity) - s.jitter);
    earliest - s.renew_within()
}

/// The run's line in the runs table and the log.
fn run_message(stats: &SignStats, transitions: usize, refused_incremental: Option<&str>, gate: &str) -> String {
    let mut message =
        format!("{} RRSIGs made, {} kept, {transitions} transition(s); {gate}", stats.rrsigs, stats.rrsigs_kept);
    if let Some(refused) = refused_incremental {
        message.push_str(&format!("; signed in full after the gate refused the incremental candidate ({refused})"));
    }
    message
}

/// The unsigned input, read (with the digest of the bytes read) and
/// checked against the content rules (before any key is made or opened).
fn read_input(snapshot: &ZoneSnapshot, origin: &Name) -> Result<(Zone, Vec<u8>), ManageError> {
    let input = Path::new(&snapshot.zone.input_path);
    let zone = zone_name(snapshot);
    let (unsigned, digest) = read_zone_file_with_digest(input, origin)
        .map_err(|source| ManageError::Input { zone: zone.to_owned(), source: Box::new(source) })?;
    check_input(&unsigned, origin).map_err(ManageError::content(zone, input))?;
    Ok((unsigned, digest))
}

/// The version published at `output`, whose signatures the signer may
/// keep. None when there is none yet or it cannot be read: then every
/// signature is made anew (logged, for a file that is there).
fn previous_version(output: &Path, origin: &Name) -> Option<Zone> {
    match read_zone_file(output, origin) {
        Ok(zone) => Some(zone),
        Err(e) if !output.exists() => {
            tracing::debug!(error = %e, "no published version: signing in full");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "the published version cannot be read: signing in full");
            None
        }
    }
}
