//! The gate as one step. For a file: sign into a candidate beside the
//! output, seal it, let the verifier read all of it back, and install it
//! only with the verifier's proof ([`sign_through_gate`]). For a service:
//! sign into memory and let the verifier walk every record of that very
//! zone, which is then what the service serves ([`sign_in_memory_through_gate`]);
//! its file is written later from the verified version, through the
//! file's own gate ([`write_through_gate`]). The signer and the verifier
//! meet only here; neither knows the other.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::PublishFailure;
use crate::publish::{Candidate, Installed, SealedCandidate, install};
use crate::sign::SignError;
use crate::verify::{
    GateError, Progress, Report, SignatureMemo, VerifiedVersion, VerifiedZone, VerifyOptions, verify_file,
    verify_version,
};
use crate::zone::diff::ZoneDiff;
use crate::zone::serial::serial_gt;
use crate::zone::writer::write_zone;
use crate::zone::{Name, Zone};

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
    /// The candidate would be a second, different version under a serial
    /// already published (or one behind it): nothing was published.
    SerialHeld(SerialHeld),
}

/// The version a candidate follows: its serial, and the zone itself where
/// the caller has it.
///
/// Secondaries compare serials only (RFC 1995, RFC 1996): a version
/// published under a serial they already hold never reaches them, and a
/// journal that starts again from it breaks IXFR. So one serial names one
/// version. A scheme that makes the serial (increment, unixtime,
/// datecounter) always moves past the last one; under `keep` the input's
/// serial is published as it is, and a run that would change the zone
/// without a new input serial must publish nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Predecessor<'a> {
    /// The last serial published, when known.
    pub serial: Option<u32>,
    /// The version published under it, when the caller could read it.
    pub zone: Option<&'a Zone>,
}

/// Why a candidate was held back: its serial does not move past the one
/// published and its content differs (or cannot be compared).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the candidate's serial {serial} does not move past the published {published}, and the zone would change \
     ({}): a secondary holding serial {published} would never take the new version, so nothing was published; \
     give the unsigned zone a serial greater than {published} (the policy's zone.serial is \"keep\")",
    changed.map_or_else(|| "the published version could not be read to compare".to_owned(), |n| format!("{n} record(s) differ"))
)]
pub struct SerialHeld {
    /// The candidate's serial.
    pub serial: u32,
    /// The serial published before it.
    pub published: u32,
    /// How many records differ (added and removed), when known.
    pub changed: Option<usize>,
}

impl Predecessor<'_> {
    /// Whether `candidate` may follow this version: its serial moves past
    /// the published one, or it is the very same version again.
    fn admits(&self, candidate: &Zone) -> Result<(), SerialHeld> {
        let (Some(published), Some(serial)) = (self.serial, candidate.soa_serial()) else {
            return Ok(());
        };
        if serial_gt(serial, published) {
            return Ok(());
        }
        let changed = self
            .zone
            .filter(|previous| previous.soa_serial() == Some(published))
            .and_then(|previous| ZoneDiff::between(previous, candidate).ok())
            .map(|diff| diff.removed_len() + diff.added_len());
        match changed {
            Some(0) if serial == published => Ok(()),
            changed => Err(SerialHeld { serial, published, changed }),
        }
    }
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
    pub zone: Arc<Zone>,
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
/// the candidate in full and installs it if `predecessor` admits it (one
/// serial, one version). Returns what `sign` returned,
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
    predecessor: Predecessor<'_>,
    progress: &dyn Progress,
    abandon: Option<&AtomicBool>,
    sign: impl FnOnce(&mut dyn Write) -> Result<T, SignError>,
) -> Result<Passed<T>, GateFailure> {
    check_through_gate(target, origin, options, predecessor, progress, abandon, sign)?.install(abandon)
}

/// A candidate file the gate passed, not yet installed: a managed run
/// offers it for review ([`super::review`]) before it installs it.
#[derive(Debug)]
pub struct Checked<T> {
    /// What the signer returned.
    pub made: T,
    /// The verifier's report (warnings only).
    pub report: Report,
    /// The memo the verifier collected.
    pub memo: Option<SignatureMemo>,
    /// The zone as the verifier read it back.
    pub zone: Arc<Zone>,
    candidate: SealedCandidate,
    verified: VerifiedZone,
}

impl<T> Checked<T> {
    /// The candidate's file: the bytes verified, which [`Checked::install`]
    /// renames into place.
    pub fn path(&self) -> &Path {
        self.candidate.path()
    }

    /// Installs the candidate at its target, unless the caller stops.
    pub fn install(self, abandon: Option<&AtomicBool>) -> Result<Passed<T>, GateFailure> {
        if abandon.is_some_and(|flag| flag.load(Ordering::SeqCst)) {
            return Err(GateFailure::Abandoned);
        }
        let Checked { made, report, memo, zone, candidate, verified } = self;
        let installed = install(candidate, verified).map_err(|e| GateFailure::Publish(PublishFailure::Io(e)))?;
        Ok(Passed { made, report, memo, zone, installed })
    }
}

/// [`sign_through_gate`] up to the install: the candidate written,
/// sealed, verified in full and admitted after `predecessor`.
pub fn check_through_gate<T>(
    target: &Path,
    origin: &Name,
    options: &VerifyOptions,
    predecessor: Predecessor<'_>,
    progress: &dyn Progress,
    abandon: Option<&AtomicBool>,
    sign: impl FnOnce(&mut dyn Write) -> Result<T, SignError>,
) -> Result<Checked<T>, GateFailure> {
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
    let (report, memo, zone) = (verified.report().clone(), verified.take_memo(), Arc::clone(verified.zone()));
    predecessor.admits(&zone).map_err(GateFailure::SerialHeld)?;
    Ok(Checked { made, report, memo, zone, candidate: sealed, verified })
}

/// Signs into memory with `sign`, has the verifier walk every record of
/// the zone made, and hands it out as a [`VerifiedVersion`] if
/// `predecessor` admits it (one serial, one version). Nothing is written
/// anywhere: the caller serves the version and writes its file later
/// ([`write_through_gate`]). `abandon` works as for [`sign_through_gate`].
pub fn sign_in_memory_through_gate<T>(
    options: &VerifyOptions,
    predecessor: Predecessor<'_>,
    progress: &dyn Progress,
    abandon: Option<&AtomicBool>,
    sign: impl FnOnce() -> Result<(Zone, T), SignError>,
) -> Result<(T, VerifiedVersion), GateFailure> {
    let abandoned = || abandon.is_some_and(|flag| flag.load(Ordering::SeqCst));
    let (zone, made) = sign().map_err(GateFailure::Sign)?;
    if abandoned() {
        return Err(GateFailure::Abandoned);
    }
    #[cfg(debug_assertions)]
    let zone = test_hook::tamper_if_asked(zone);
    let progress = Stoppable { inner: progress, abandon };
    let version = match verify_version(zone, options, &progress) {
        Ok(version) => version,
        Err(GateError::Stopped) => return Err(GateFailure::Abandoned),
        Err(GateError::Read(e)) => return Err(GateFailure::Publish(PublishFailure::ReadBack(e))),
        Err(GateError::Refused(report)) => return Err(GateFailure::Refused(report)),
    };
    if abandoned() {
        return Err(GateFailure::Abandoned);
    }
    predecessor.admits(version.zone()).map_err(GateFailure::SerialHeld)?;
    Ok((made, version))
}

/// Writes `version` to its file `target` through the file's own gate: the
/// text written is read back and verified in full like any candidate
/// (with `options`, whose memo should be the version's own: then no
/// signature needs crypto again) before it is installed. On failure the
/// old file stays.
pub fn write_through_gate(
    target: &Path,
    version: &VerifiedVersion,
    options: &VerifyOptions,
    progress: &dyn Progress,
) -> Result<Passed<()>, GateFailure> {
    let zone = version.zone();
    let origin = zone.origin().to_owned();
    sign_through_gate(target, &origin, options, Predecessor::default(), progress, None, |out| {
        write_zone(zone, out).map_err(SignError::Write)
    })
}

/// A hook for tests only, compiled into debug builds and never into a
/// release: when `SIGNET_TEST_TAMPER` names a file that exists, the
/// candidate's apex SOA signature gets one byte flipped between signing
/// and the gate, so that a test can show the gate refuses what the signer
/// handed over and that nothing of it is served.
#[cfg(debug_assertions)]
mod test_hook {
    use crate::zone::{Rtype, Zone, ZoneBuilder};

    pub(super) fn tamper_if_asked(zone: Zone) -> Zone {
        let asked = std::env::var_os("SIGNET_TEST_TAMPER").is_some_and(|flag| std::path::Path::new(&flag).exists());
        let apex_soa_rrsig = |r: &crate::zone::RecordRef<'_>| {
            r.rtype == Rtype::RRSIG && r.rdata.get(..2) == Some(&[0, 6]) && r.owner.eq_ignore_case(zone.origin())
        };
        let Some((at, rrsig)) = zone.records().enumerate().find(|(_, r)| asked && apex_soa_rrsig(r)) else {
            return zone;
        };
        tracing::warn!("test hook: one byte of the apex SOA signature flipped before the gate");
        let mut rdata = rrsig.rdata.to_vec();
        if let Some(last) = rdata.last_mut() {
            *last ^= 0x01;
        }
        let mut tampered = ZoneBuilder::new(zone.origin().to_owned(), zone.class());
        tampered.push(rrsig.owner, rrsig.rtype, rrsig.ttl, &rdata);
        zone.edited_at(vec![at], tampered)
    }
}
