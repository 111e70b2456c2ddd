//! The gate as one step: sign into a candidate beside the output, seal
//! it, let the verifier read all of it back, and install it only with the
//! verifier's proof. The signer and the verifier meet only here; neither
//! knows the other.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::PublishFailure;
use crate::publish::{Candidate, Installed, install};
use crate::sign::SignError;
use crate::verify::{GateError, Progress, Report, SignatureMemo, VerifyOptions, verify_file};
use crate::zone::Name;

/// Why the gate did not publish.
#[derive(Debug)]
pub enum GateFailure {
    /// The signer failed.
    Sign(SignError),
    /// Writing, reading back or installing failed.
    Publish(PublishFailure),
    /// The verifier found errors: nothing was published.
    Refused(Box<Report>),
    /// The caller asked to stop (a service shutting down): nothing was
    /// published.
    Abandoned,
}

/// A zone the gate passed and installed.
#[derive(Debug)]
pub struct Passed<T> {
    /// What the signer returned.
    pub made: T,
    /// The verifier's report (warnings only).
    pub report: Report,
    /// The memo the verifier collected ([`VerifyOptions::collect_memo`]),
    /// for the gate of the next publication.
    pub memo: Option<SignatureMemo>,
    /// The zone as the verifier read it back: the published bytes.
    pub zone: Option<crate::zone::Zone>,
    /// The publication, to keep once recorded or undo if that failed
    /// (dropped: kept).
    pub installed: Installed,
}

/// The caller's progress, with the abandon flag as the verifier's stop.
#[derive(Debug)]
struct Stoppable<'a> {
    inner: &'a dyn Progress,
    abandon: Option<&'a AtomicBool>,
}

impl Progress for Stoppable<'_> {
    fn advance(&self, done: u64, total: u64) {
        self.inner.advance(done, total);
    }

    fn stop_requested(&self) -> bool {
        self.abandon.is_some_and(|flag| flag.load(Ordering::SeqCst))
    }
}

/// Writes a zone with `sign` into a candidate beside `target`, verifies
/// the candidate in full and installs it. Returns what `sign` returned,
/// the verifier's report and memo; on any failure `target` is untouched.
///
/// `abandon`, when set, stops the run: the signer and the verifier look
/// at it every few hundred names, the gate between the stages; once it is
/// true the candidate is dropped, so that a service stopping never
/// publishes after it was told to stop. A verification stopped part-way
/// gives no verdict ([`GateError::Stopped`]).
pub fn sign_through_gate<T>(
    target: &Path,
    origin: &Name,
    options: &VerifyOptions,
    progress: &dyn Progress,
    abandon: Option<&AtomicBool>,
    sign: impl FnOnce(&mut dyn Write) -> Result<T, SignError>,
) -> Result<Passed<T>, GateFailure> {
    let publish = |e| GateFailure::Publish(PublishFailure::Io(e));
    let abandoned = || abandon.is_some_and(|flag| flag.load(Ordering::SeqCst));
    let mut candidate = Candidate::create(target).map_err(publish)?;
    let made = sign(candidate.writer()).map_err(GateFailure::Sign)?;
    if abandoned() {
        return Err(GateFailure::Abandoned);
    }
    let sealed = candidate.seal().map_err(publish)?;
    let progress = Stoppable { inner: progress, abandon };
    let mut verified = match verify_file(sealed.path(), origin, options, &progress) {
        Ok(verified) => verified,
        Err(GateError::Stopped) => return Err(GateFailure::Abandoned),
        Err(GateError::Read(e)) => return Err(GateFailure::Publish(PublishFailure::ReadBack(e))),
        Err(GateError::Refused(report)) => return Err(GateFailure::Refused(report)),
    };
    if abandoned() {
        return Err(GateFailure::Abandoned);
    }
    let (report, memo, zone) = (verified.report().clone(), verified.take_memo(), verified.take_zone());
    let installed = install(sealed, verified).map_err(publish)?;
    Ok(Passed { made, report, memo, zone, installed })
}
