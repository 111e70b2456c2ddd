//! The review hook (issue 28): a zone's command that every verified
//! candidate is offered to, after the gate and before the commit, so
//! that a version the hook (or an operator) does not approve changes
//! nothing: no key state, no journal entry, no output, nothing served.
//!
//! The hook gets the candidate as a file (the sealed candidate beside
//! the output, or, for a version in memory, the version written beside
//! the output as `.NAME.review.signet-PID.tmp`, removed after) and what
//! it is in its environment; its exit status decides: 0 approves, 75
//! (`EX_TEMPFAIL`) leaves the decision to an operator (`signet zone
//! approve|reject`), anything else rejects, and a hook killed by a
//! signal or past its timeout rejects too.
//!
//! A verdict binds to the candidate's content ([`content_fingerprint`]),
//! not to its signatures: a later run signing the same content again
//! finds it: waiting, it stays held without asking the hook again;
//! approved, it is published; rejected, it stays unpublished until the
//! content changes. A timeout or a crash is offered again at the next
//! run. Other content supersedes a review that waits.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::ManageError;
use crate::chain::Chain;
use crate::child::{Ended, Finished, last_lines, supervise};
use crate::db::{Database, Decider, NewReview, Review, ReviewHook, Verdict, ZoneSnapshot};
use crate::publish::Candidate;
use crate::zone::diff::ZoneDiff;
use crate::zone::writer::write_zone;
use crate::zone::{Rtype, Zone};

/// The exit status by which a hook leaves the decision to an operator
/// (`EX_TEMPFAIL` of sysexits.h).
pub const EXIT_WAIT: i32 = 75;

/// A candidate the gate passed, as it is offered for review.
#[derive(Debug, Clone, Copy)]
pub(super) struct Offer<'a> {
    /// The version verified.
    pub zone: &'a Zone,
    /// Its file, when the gate verified one (the sealed candidate).
    pub file: Option<&'a Path>,
    /// The zone's output (a version in memory is written beside it).
    pub output: &'a Path,
    /// Its serial.
    pub serial: u32,
    /// The serial published before it, if any.
    pub previous_serial: Option<u32>,
    /// The version published before it, when the run has it.
    pub previous: Option<&'a Zone>,
    /// Its RRSIGs.
    pub rrsigs: u64,
}

/// Why a verified candidate was not published: its review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotApproved {
    /// The review (its serial, verdict and reason).
    pub review: Review,
    /// The hook's timeout (for the words of a timeout).
    pub timeout: i64,
}

impl NotApproved {
    /// Whether an operator's decision is awaited.
    pub fn is_pending(&self) -> bool {
        self.review.verdict == Verdict::Pending
    }
}

impl std::fmt::Display for NotApproved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.review;
        let by = match r.decided_by {
            Some(Decider::Operator) => "by the operator",
            _ => "by the review hook",
        };
        match r.verdict {
            Verdict::Pending => write!(f, "serial {} waits for an operator's review", r.serial)?,
            Verdict::Rejected => write!(f, "serial {} rejected {by}", r.serial)?,
            Verdict::TimedOut => {
                write!(f, "serial {}: the review hook ran past its {} s and was killed", r.serial, self.timeout)?
            }
            Verdict::Crashed => write!(f, "serial {}: the review hook crashed", r.serial)?,
            Verdict::Approved | Verdict::Superseded => write!(f, "serial {}: {}", r.serial, r.verdict)?,
        }
        if let Some(reason) = r.reason.as_deref().filter(|reason| !reason.is_empty()) {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

/// The SHA-256 of a version's content: every record but RRSIG and
/// ZONEMD, in the zone's canonical order, owner names lowercased, the
/// SOA's serial left out. Two runs over the same input and keys give the
/// same fingerprint, whatever their signatures and serials.
pub fn content_fingerprint(zone: &Zone) -> Vec<u8> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"signet review content v1\0");
    for record in zone.records().filter(|r| r.rtype != Rtype::RRSIG && r.rtype != Rtype::ZONEMD) {
        let owner = record.owner.wire().to_ascii_lowercase();
        let rdata = match record.rtype {
            // The serial is the 4 bytes after the two names (20 bytes
            // from the end: serial, refresh, retry, expire, minimum).
            Rtype::SOA if record.rdata.len() >= 20 => {
                let mut rdata = record.rdata.to_vec();
                let at = rdata.len() - 20;
                rdata[at..at + 4].fill(0);
                rdata
            }
            _ => record.rdata.to_vec(),
        };
        for part in [&owner[..], &record.rtype.0.to_be_bytes(), &record.ttl.to_be_bytes(), &rdata[..]] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
    }
    context.finish().as_ref().to_vec()
}

/// Offers a verified candidate for review, if the zone has a hook: Ok(())
/// to publish it, [`ManageError::NotApproved`] if not. A decision already
/// taken on the same content stands (see the module's text).
pub(super) async fn review(
    db: &Database,
    snapshot: &ZoneSnapshot,
    offer: &Offer<'_>,
    now: i64,
    abandon: Option<&AtomicBool>,
) -> Result<(), ManageError> {
    let zone = &snapshot.zone;
    let Some(hook) = db.review_hook(zone.id).await? else { return Ok(()) };
    let fingerprint = content_fingerprint(offer.zone);
    let latest = db.latest_review(zone.id).await?;
    let not_approved = |review: Review| ManageError::NotApproved {
        zone: zone.name.clone(),
        stop: Box::new(NotApproved { review, timeout: hook.timeout }),
    };
    if let Some(review) = latest.clone().filter(|r| r.fingerprint == fingerprint) {
        match review.verdict {
            Verdict::Approved => {
                tracing::info!(zone = %zone.name, serial = offer.serial, approved = review.serial,
                    "review: this content was approved (serial {}): published", review.serial);
                return Ok(());
            }
            Verdict::Pending | Verdict::Rejected => return Err(not_approved(review)),
            Verdict::TimedOut | Verdict::Crashed | Verdict::Superseded => {}
        }
    }
    let supersedes = latest.filter(|r| r.verdict == Verdict::Pending).map(|r| r.id);
    let Judged { verdict, reason } = offer_to_hook(&zone.name, &hook, offer, &fingerprint, abandon).await?;
    let new = NewReview {
        serial: offer.serial,
        fingerprint: &fingerprint,
        verdict,
        reason: reason.as_deref(),
        records: offer.zone.len() as u64,
        rrsigs: offer.rrsigs,
        at: now,
    };
    let why = audit_line(&new, supersedes.is_some());
    let id = db.record_review(zone.id, &new, supersedes, &why, snapshot.fence.as_ref()).await?;
    log_verdict(&zone.name, &new);
    if verdict == Verdict::Approved {
        return Ok(());
    }
    let decided_by = (verdict != Verdict::Pending).then_some(Decider::Hook);
    let (records, rrsigs) = (new.records, new.rrsigs);
    Err(not_approved(Review {
        id,
        serial: offer.serial,
        fingerprint,
        verdict,
        reason,
        decided_by,
        records,
        rrsigs,
        offered_at: now,
        decided_at: decided_by.map(|_| now),
    }))
}

/// The hook's verdict on one offer.
#[derive(Debug)]
struct Judged {
    verdict: Verdict,
    reason: Option<String>,
}

/// Runs the hook on the candidate's file (writing a version in memory
/// beside the output first, removed after).
async fn offer_to_hook(
    zone: &str,
    hook: &ReviewHook,
    offer: &Offer<'_>,
    fingerprint: &[u8],
    abandon: Option<&AtomicBool>,
) -> Result<Judged, ManageError> {
    // A version in memory is written for the hook, and removed when this
    // returns.
    let written;
    let file = match offer.file {
        Some(file) => file,
        None => {
            written = write_review_file(zone, offer)?;
            written.path()
        }
    };
    let Some((program, args)) = hook.command.split_first() else {
        return Ok(Judged { verdict: Verdict::Crashed, reason: Some("the review hook has no command".to_owned()) });
    };
    let mut command = crate::child::command(program);
    command.args(args);
    for (name, value) in hook_environment(zone, offer, file, fingerprint) {
        command.env(name, value);
    }
    tracing::info!(zone, serial = offer.serial, hook = %program, "review: candidate offered to the review hook");
    let timeout = Duration::from_secs(u64::try_from(hook.timeout).unwrap_or(0).max(1));
    let stop = || abandon.is_some_and(|flag| flag.load(Ordering::SeqCst));
    let finished = supervise(command, None, timeout, &stop).await;
    match finished {
        Ok(Finished { ended: Ended::Stopped, .. }) => Err(ManageError::Abandoned { zone: zone.to_owned() }),
        Ok(finished) => Ok(judge(finished)),
        Err(e) => Ok(Judged {
            verdict: Verdict::Crashed,
            reason: Some(format!("the review hook {program:?} did not start: {}", Chain(&e))),
        }),
    }
}

/// The verdict an ended hook gives.
fn judge(finished: Finished) -> Judged {
    use std::os::unix::process::ExitStatusExt as _;
    let said = last_lines(&finished.stderr);
    let said = (!said.is_empty()).then_some(said);
    let with = |what: String| Some(said.as_ref().map_or_else(|| what.clone(), |said| format!("{what}: {said}")));
    match finished.ended {
        Ended::Exited(status) => match (status.code(), status.signal()) {
            (Some(0), _) => Judged { verdict: Verdict::Approved, reason: said },
            (Some(EXIT_WAIT), _) => Judged { verdict: Verdict::Pending, reason: said },
            (Some(code), _) => Judged { verdict: Verdict::Rejected, reason: with(format!("exit status {code}")) },
            (None, Some(signal)) => {
                Judged { verdict: Verdict::Crashed, reason: with(format!("killed by signal {signal}")) }
            }
            (None, None) => Judged { verdict: Verdict::Crashed, reason: with(status.to_string()) },
        },
        Ended::WaitFailed(e) => {
            Judged { verdict: Verdict::Crashed, reason: with(format!("its end could not be awaited: {e}")) }
        }
        Ended::TimedOut => {
            Judged { verdict: Verdict::TimedOut, reason: with("killed with its process group".to_owned()) }
        }
        Ended::Stopped => Judged { verdict: Verdict::Crashed, reason: with("stopped".to_owned()) },
    }
}

/// What the hook finds in its environment (besides [`crate::child`]'s
/// allow-list): never a secret.
fn hook_environment(zone: &str, offer: &Offer<'_>, file: &Path, fingerprint: &[u8]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("SIGNET_ZONE", zone.to_owned()),
        ("SIGNET_SERIAL", offer.serial.to_string()),
        ("SIGNET_PREVIOUS_SERIAL", offer.previous_serial.map(|s| s.to_string()).unwrap_or_default()),
        ("SIGNET_CANDIDATE", file.display().to_string()),
        ("SIGNET_OUTPUT", offer.output.display().to_string()),
        ("SIGNET_RECORDS", offer.zone.len().to_string()),
        ("SIGNET_RRSIGS", offer.rrsigs.to_string()),
        ("SIGNET_FINGERPRINT", data_encoding::HEXLOWER.encode(fingerprint)),
    ];
    let diff = offer.previous.and_then(|previous| ZoneDiff::between(previous, offer.zone).ok());
    let (removed, added) =
        diff.map_or((String::new(), String::new()), |d| (d.removed_len().to_string(), d.added_len().to_string()));
    env.push(("SIGNET_RECORDS_REMOVED", removed));
    env.push(("SIGNET_RECORDS_ADDED", added));
    env
}

/// Writes a version held in memory beside the output for the hook to
/// read (0644; removed when dropped).
fn write_review_file(zone: &str, offer: &Offer<'_>) -> Result<crate::publish::SealedCandidate, ManageError> {
    let mut target = offer.output.as_os_str().to_owned();
    target.push(".review");
    let failed = |source: crate::publish::PublishError| ManageError::Publish {
        zone: zone.to_owned(),
        output: offer.output.display().to_string(),
        source: Box::new(super::PublishFailure::Io(source)),
    };
    let mut candidate = Candidate::create(Path::new(&target)).map_err(failed)?;
    write_zone(offer.zone, candidate.writer())
        .map_err(|e| failed(crate::publish::PublishError::Io { path: Path::new(&target).to_owned(), source: e }))?;
    candidate.seal().map_err(failed)
}

/// The audit row of a hook's verdict.
fn audit_line(review: &NewReview<'_>, superseding: bool) -> String {
    let mut line = format!("review: serial {} {} by the review hook", review.serial, review.verdict);
    if review.verdict == Verdict::Pending {
        line = format!("review: serial {} waits for an operator (the review hook said wait)", review.serial);
    }
    if let Some(reason) = review.reason.filter(|r| !r.is_empty()) {
        line.push_str(&format!(": {reason}"));
    }
    if superseding {
        line.push_str("; it supersedes the review that waited");
    }
    line
}

fn log_verdict(zone: &str, review: &NewReview<'_>) {
    let (serial, verdict, reason) = (review.serial, review.verdict.as_str(), review.reason.unwrap_or(""));
    match review.verdict {
        Verdict::Approved => tracing::info!(zone, serial, verdict, reason, "review: approved by the review hook"),
        Verdict::Pending => tracing::warn!(
            zone,
            serial,
            verdict,
            reason,
            "review: the review hook asks an operator to decide: signet zone approve|reject {zone} {serial}"
        ),
        _ => tracing::warn!(
            zone,
            serial,
            verdict,
            reason,
            "review: not approved: nothing published, the last version stays"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(text: &str) -> Zone {
        let origin = crate::zone::Name::from_text("example.", None).expect("origin");
        crate::zone::read_zone_str(text, &origin, Path::new("test.zone")).expect("zone")
    }

    const BASE: &str = "example. 3600 IN SOA ns.example. host.example. 1 7200 3600 1209600 300\n\
                        example. 3600 IN NS ns.example.\nns.example. 3600 IN A 192.0.2.1\n";

    #[test]
    fn the_fingerprint_leaves_out_the_serial_and_signatures() {
        let a = zone(BASE);
        let b = zone(&BASE.replace(" 1 7200", " 2 7200"));
        assert_eq!(content_fingerprint(&a), content_fingerprint(&b));
        let c = zone(&BASE.replace("192.0.2.1", "192.0.2.2"));
        assert_ne!(content_fingerprint(&a), content_fingerprint(&c));
        let d = zone(&BASE.replace(" 7200 3600 ", " 7201 3600 "));
        assert_ne!(content_fingerprint(&a), content_fingerprint(&d), "the SOA's other fields count");
    }

    #[test]
    fn exit_statuses_give_verdicts() {
        use std::os::unix::process::ExitStatusExt as _;
        let ended =
            |raw| Finished { ended: Ended::Exited(std::process::ExitStatus::from_raw(raw)), stderr: b"why\n".to_vec() };
        assert_eq!(judge(ended(0)).verdict, Verdict::Approved);
        assert_eq!(judge(ended(75 << 8)).verdict, Verdict::Pending);
        let rejected = judge(ended(1 << 8));
        assert_eq!((rejected.verdict, rejected.reason.as_deref()), (Verdict::Rejected, Some("exit status 1: why")));
        assert_eq!(judge(ended(11)).verdict, Verdict::Crashed);
        let timed_out = judge(Finished { ended: Ended::TimedOut, stderr: Vec::new() });
        assert_eq!(timed_out.verdict, Verdict::TimedOut);
    }
}
