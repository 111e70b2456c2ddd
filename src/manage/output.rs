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

use std::path::PathBuf;

use super::ManageError;
use super::gate::{GateFailure, write_through_gate};
use super::run::gate_failed;
use crate::chain::Chain;
use crate::db::{Database, DbError, RunRecord, RunResult};
use crate::verify::{Progress, VerifiedVersion, VerifyOptions};
use crate::zone::Name;

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
/// holding the zone's lock. Blocking work (the file is written and read
/// back): run it off the async workers.
pub async fn write_pending_output(
    db: &Database,
    name: &Name,
    pending: &PendingOutput,
    progress: &dyn Progress,
) -> Result<OutputWritten, ManageError> {
    let zone = db.zone(name).await?;
    let pid = std::process::id();
    match db.lock_zone(&zone, pid, pending.verify.now).await {
        Ok(()) => {}
        // Another signer holds the zone: it publishes a newer version,
        // with its own file.
        Err(DbError::Busy { .. }) => return Ok(OutputWritten::Superseded),
        Err(e) => return Err(e.into()),
    }
    let written = write_locked(db, name, pending, progress).await;
    if let Err(e) = db.unlock_zone(zone.id, pid).await {
        tracing::error!(zone = %zone.name, "cannot release the zone's signing lock: {}", Chain(&e));
    }
    let written = written?;
    if let OutputWritten::Failed(message) = &written {
        let record = RunRecord {
            at: pending.verify.now,
            result: RunResult::Failed,
            message: message.clone(),
            ..RunRecord::default()
        };
        if let Err(e) = db.record_unpublished_run(zone.id, &record).await {
            tracing::error!(zone = %zone.name, "cannot record the run: {}", Chain(&e));
        }
    }
    Ok(written)
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
