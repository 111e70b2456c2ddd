//! A service's output file, written after the version is served.
//!
//! A run that serves from memory ([`super::run::Serving`]) commits the
//! version the gate passed, hands it to the DNS side, and leaves its file
//! to this module: written from the verified version, read back and
//! verified through the file's own gate (with that version's memo, so no
//! signature needs crypto again), and installed, under the zone's lock,
//! only while that version is still the one last published. The caller
//! does it once the run has let go of the version before, so that at most
//! the new version, the file read back and the input are in memory.
//!
//! A failure keeps the old file and withdraws nothing served (the version
//! served passed the same verifier); it is recorded as a failed run, so
//! that status shows it and the service tries again.
//!
//! A service stopped between serving a version and writing its file
//! leaves the file one or more versions behind the database. At its
//! start it rebuilds the version last published from the file and the
//! journal ([`restore_published`]), verifies it in full, serves it again
//! and writes it: the secondaries see the same serial and the journal's
//! chain goes on unbroken.

use std::path::PathBuf;
use std::sync::Arc;

use super::ManageError;
use super::gate::{GateFailure, write_through_gate};
use super::run::{ZoneHold, finish_run, gate_failed};
use crate::chain::Chain;
use crate::db::{Database, DbError, Fence, RunRecord, RunResult};
use crate::verify::{NoProgress, Progress, SignatureMemo, VerifiedVersion, VerifyOptions, verify_version};
use crate::zone::diff::ZoneDiff;
use crate::zone::{Name, Zone, read_zone_file};

/// A served version whose output file is still to be written.
#[derive(Debug)]
pub struct PendingOutput {
    /// The zone's output file.
    pub output: PathBuf,
    /// The serial published.
    pub serial: u32,
    /// The version served.
    pub version: VerifiedVersion,
    /// How the file's gate verifies (the run's time, trust anchor and
    /// validity, and the version's own memo).
    pub verify: VerifyOptions,
}

/// How writing a pending output ended.
#[derive(Debug, PartialEq, Eq)]
pub enum OutputWritten {
    /// In place, its stamp recorded.
    Written,
    /// Not written: a newer version was published meanwhile (from the
    /// command line), whose file is its own.
    Superseded,
    /// Not written, the old file kept: why (recorded as a failed run).
    Failed(String),
}

/// Writes `pending` to the output of zone `name` through the file's gate,
/// holding the zone's lock (or the service's `lease`). Blocking work (the
/// file is written and read back): run it off the async workers.
pub async fn write_pending_output(
    db: &Database,
    name: &Name,
    pending: &PendingOutput,
    progress: &dyn Progress,
    lease: Option<&Fence>,
) -> Result<OutputWritten, ManageError> {
    let zone = db.zone(name).await?;
    let hold = match ZoneHold::take(db, &zone, pending.verify.now, lease).await {
        Ok(hold) => hold,
        // Another signer holds the zone: it publishes a newer version,
        // with its own file.
        Err(ManageError::Database(DbError::Busy { .. } | DbError::LeaseHeld { .. })) => {
            return Ok(OutputWritten::Superseded);
        }
        Err(e) => return Err(e),
    };
    let written = write_locked(db, name, pending, progress).await;
    // A failure is recorded as a failed run, and the lock let go, as a
    // run does it.
    let record = match &written {
        Ok(OutputWritten::Failed(message)) => Some(RunRecord {
            at: pending.verify.now,
            result: RunResult::Failed,
            message: message.clone(),
            ..RunRecord::default()
        }),
        _ => None,
    };
    finish_run(db, (zone.id, &zone.name), Some(&hold), record).await;
    written
}

async fn write_locked(
    db: &Database,
    name: &Name,
    pending: &PendingOutput,
    progress: &dyn Progress,
) -> Result<OutputWritten, ManageError> {
    let row = db.zone(name).await?;
    if row.last_serial != Some(i64::from(pending.serial)) {
        return Ok(OutputWritten::Superseded);
    }
    let serial = pending.serial;
    let failure = match write_through_gate(&pending.output, &pending.version, &pending.verify, progress) {
        Ok(passed) => {
            let stamp = crate::publish::Stamp::of(&pending.output).map(|stamp| stamp.to_string()).unwrap_or_default();
            passed.installed.keep();
            db.record_output_written(row.id, serial, &stamp).await?;
            return Ok(OutputWritten::Written);
        }
        Err(GateFailure::Refused(report)) => {
            format!("the output file's gate refused the file written: {}; the old file stays", report.summary_line())
        }
        Err(failure) => {
            let error = gate_failed(&row, failure);
            format!("the output file was not written: {}; the old file stays", Chain(&error))
        }
    };
    Ok(OutputWritten::Failed(format!("serial {serial} is served, but {failure}")))
}

/// The version last published, when the output file is behind it: the
/// file's version with the journal's differences since its serial
/// applied, verified in full (every check, the stored memo for crypto; no
/// trust anchor: the DNSKEY RRset must be signed by a key with the SEP
/// bit, as for `signet verify` without one), ready to serve again and to
/// write. None when the file is missing or unreadable, the journal does
/// not reach back to its serial, or the version rebuilt does not pass:
/// the zone is then signed again before anything is served. Blocking
/// work: run it off the async workers.
pub async fn restore_published(db: &Database, name: &Name, now: i64) -> Result<Option<PendingOutput>, ManageError> {
    let row = db.zone(name).await?;
    let Some(last) = row.last_serial.and_then(|serial| u32::try_from(serial).ok()) else { return Ok(None) };
    let output = PathBuf::from(&row.output_path);
    let Ok(file) = read_zone_file(&output, name) else { return Ok(None) };
    let Some(serial) = file.soa_serial() else { return Ok(None) };
    let zone = if serial == last {
        file
    } else {
        let Some(chain) = db.journal_since(row.id, serial).await? else { return Ok(None) };
        match replay(file, chain.into_iter().map(|(_, diff)| diff)) {
            Ok(zone) if zone.soa_serial() == Some(last) => zone,
            Ok(_) => return Ok(None),
            Err(why) => {
                tracing::warn!(zone = %row.name, "the version published cannot be rebuilt from the output and the journal: {why}");
                return Ok(None);
            }
        }
    };
    let policy = db.parsed_policy(row.policy_id).await?;
    let memo = db.gate_memo(row.id).await?.and_then(|bytes| SignatureMemo::from_bytes(&bytes).ok()).map(Arc::new);
    let verify = VerifyOptions {
        now,
        min_validity: policy.signatures.refresh,
        trust_anchor: None,
        memo,
        collect_memo: true,
        // A zone going insecure may have put out its unsigned version.
        allow_unsigned: policy.insecure,
    };
    match verify_version(zone, &verify, &NoProgress) {
        Ok(version) => {
            let verify = VerifyOptions { memo: version.memo().cloned(), collect_memo: false, ..verify };
            Ok(Some(PendingOutput { output, serial: last, version, verify }))
        }
        Err(e) => {
            tracing::warn!(zone = %row.name, serial = last, "the version rebuilt from the output and the journal does not pass the gate: {}", Chain(&e));
            Ok(None)
        }
    }
}

/// `zone` with the encoded differences `diffs` applied in order.
fn replay(mut zone: Zone, diffs: impl Iterator<Item = Vec<u8>>) -> Result<Zone, String> {
    for bytes in diffs {
        let diff = ZoneDiff::decode(&bytes).map_err(|e| Chain(&e).to_string())?;
        zone = diff.apply_to(&zone).map_err(|e| Chain(&e).to_string())?;
    }
    Ok(zone)
}
