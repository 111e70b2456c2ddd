//! The gate's memo in a managed run (README, "The gate's memo"): before
//! the gate, whether it may take signatures from the memo of the last
//! publication or must verify every one with crypto; after it, what the
//! run leaves for the next one.
//!
//! A run is full when the policy keeps no memo, when an operator asked
//! (`signet sign ZONE --full-verify`, `signet zone reload ZONE
//! --full-verify`), when `gate.full-verification-interval` has passed
//! since the last full verification, or when no memo is stored or the
//! stored one does not read back. The schedule bounds how long a verifier
//! bug at a signature's first verification can be carried forward; a
//! damaged memo only costs that re-verification.

use std::fmt;
use std::sync::Arc;

use crate::db::{Database, DbError, GateMemoCommit, MemoBlob, ZoneRow, ZoneSnapshot};
use crate::policy::Policy;
use crate::time::{format_duration, format_time};
use crate::verify::{MemoError, SignatureMemo, Stats};

/// The most entries a stored memo holds (16 Mi: 512 MiB of digests, 15
/// times the 1M-delegation reference zone signed with NSEC). A zone with
/// more valid RRSIGs keeps no memo, and each of its runs is full.
pub const MAX_MEMO_ENTRIES: usize = 16 << 20;

/// Why a run's gate verifies every signature with crypto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FullReason {
    /// `gate.full-verification-interval` is 0: no memo is kept.
    MemoOff,
    /// `signet sign ZONE --full-verify`.
    Asked,
    /// `signet zone reload ZONE --full-verify`, at this time.
    Requested(i64),
    /// No full verification yet, or the last one (at this time) is longer
    /// ago than the interval.
    Scheduled {
        /// The last full verification.
        last: Option<i64>,
        /// `gate.full-verification-interval`.
        interval: i64,
    },
    /// No memo is stored (the memo of the last publication was over the
    /// cap, or the database predates memos).
    NoMemo,
    /// The stored memo does not read back.
    Damaged(MemoError),
}

impl fmt::Display for FullReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FullReason::MemoOff => write!(f, "gate.full-verification-interval is 0: no memo"),
            FullReason::Asked => write!(f, "--full-verify"),
            FullReason::Requested(at) => write!(f, "asked for at {} (zone reload --full-verify)", format_time(*at)),
            FullReason::Scheduled { last: None, .. } => write!(f, "the first full verification"),
            FullReason::Scheduled { last: Some(at), interval } => write!(
                f,
                "the last was at {}, {} or more ago (gate.full-verification-interval)",
                format_time(*at),
                format_duration(*interval)
            ),
            FullReason::NoMemo => write!(f, "no memo stored"),
            FullReason::Damaged(e) => write!(f, "the stored memo is damaged: {e}"),
        }
    }
}

/// How this run's gate verifies, decided before it runs.
#[derive(Debug)]
pub struct GatePlan {
    /// The memo of the last publication (`None` for a full run).
    pub memo: Option<Arc<SignatureMemo>>,
    /// Why the run is full (`None`: the memo is used).
    pub full: Option<FullReason>,
    /// Collect the memo for the next run (off when the policy keeps none).
    pub collect: bool,
    /// The operator's request this run answers, if full.
    asked_at: Option<i64>,
}

/// Decides how the gate of `zone`'s run at `now` verifies; uses the memo
/// a service `held` (that of the version it serves, which its gate
/// collected), or else reads the stored one, only when the run may use
/// a memo.
pub async fn plan(
    db: &Database,
    zone: &ZoneRow,
    policy: &Policy,
    now: i64,
    asked: bool,
    held: Option<&Arc<SignatureMemo>>,
) -> Result<GatePlan, DbError> {
    let interval = policy.gate.full_verification_interval;
    let mut plan = GatePlan { memo: None, full: None, collect: interval > 0, asked_at: zone.full_verify_asked_at };
    plan.full = full_due(zone, interval, now, asked);
    if plan.full.is_none()
        && let Some(memo) = held.filter(|memo| memo.len() <= MAX_MEMO_ENTRIES)
    {
        plan.memo = Some(Arc::clone(memo));
    } else if plan.full.is_none() {
        match db.gate_memo(zone.id).await?.map(|bytes| SignatureMemo::from_bytes(&bytes)) {
            Some(Ok(memo)) => plan.memo = Some(Arc::new(memo)),
            Some(Err(e)) => {
                tracing::warn!(zone = %zone.name, "the gate's stored memo does not read ({e}): verifying every signature");
                plan.full = Some(FullReason::Damaged(e));
            }
            None => plan.full = Some(FullReason::NoMemo),
        }
    }
    if let Some(why) = &plan.full {
        tracing::info!(zone = %zone.name, "the gate verifies every signature with crypto: {why}");
    }
    Ok(plan)
}

/// Why the run must be full whatever the stored memo, if it must.
fn full_due(zone: &ZoneRow, interval: i64, now: i64, asked: bool) -> Option<FullReason> {
    if interval == 0 {
        return Some(FullReason::MemoOff);
    }
    if asked {
        return Some(FullReason::Asked);
    }
    if let Some(at) = zone.full_verify_asked_at {
        return Some(FullReason::Requested(at));
    }
    match zone.full_verified_at {
        Some(last) if now.saturating_sub(last) < interval => None,
        last => Some(FullReason::Scheduled { last, interval }),
    }
}

/// A memo ready to be stored.
#[derive(Debug)]
pub struct StoredMemo {
    bytes: Vec<u8>,
    entries: u64,
}

/// The memo the gate collected, serialized, unless it holds more than
/// [`MAX_MEMO_ENTRIES`] (logged: the next run is then full).
pub fn to_store(zone: &str, memo: Option<&SignatureMemo>) -> Option<StoredMemo> {
    let memo = memo?;
    if memo.len() > MAX_MEMO_ENTRIES {
        tracing::warn!(
            zone,
            entries = memo.len(),
            "the gate's memo is over its cap of {MAX_MEMO_ENTRIES} entries: none is kept, every run verifies in full"
        );
        return None;
    }
    Some(StoredMemo { entries: memo.len() as u64, bytes: memo.to_bytes() })
}

/// The stored form of `stored` (none: the stored memo is dropped).
pub fn blob(stored: Option<&StoredMemo>) -> MemoBlob<'_> {
    stored.map_or(MemoBlob::None, |s| MemoBlob::Store(&s.bytes, s.entries))
}

/// Stores the memo of a publication already committed with
/// [`MemoBlob::Later`] (a service, after serving the version); a failure
/// is logged and costs only memo hits: the stored memo stays that of an
/// earlier version.
pub async fn store_later(db: &Database, snapshot: &ZoneSnapshot, at: i64, serial: u32, memo: Option<&SignatureMemo>) {
    let zone = &snapshot.zone;
    let stored = to_store(&zone.name, memo);
    let fence = snapshot.fence.as_ref();
    if let Err(e) = db.store_gate_memo(zone.id, at, serial, blob(stored.as_ref()), fence).await {
        tracing::error!(zone = %zone.name, "cannot store the gate's memo (the next run after a restart verifies more with crypto): {e}");
    }
}

impl GatePlan {
    /// What the run's commit writes of the memo (`blob`), and a full
    /// verification if this run was one.
    pub fn commit<'a>(&self, blob: MemoBlob<'a>) -> GateMemoCommit<'a> {
        GateMemoCommit { memo: blob, full: self.full.is_some(), asked_at: self.asked_at }
    }

    /// For the run's message: `gate: 812 of 830 signatures from the
    /// gate's memo`, or why it verified in full.
    pub fn describe(&self, stats: &Stats) -> String {
        match &self.full {
            None => format!("{} of {} signatures from the gate's memo", stats.rrsigs_from_memo, stats.rrsigs_verified),
            Some(why) => format!("gate verified all {} signatures ({why})", stats.rrsigs_verified),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86400;

    fn zone(full_verified_at: Option<i64>, full_verify_asked_at: Option<i64>) -> ZoneRow {
        ZoneRow {
            id: 1,
            name: "example.".into(),
            policy_id: 1,
            policy_name: "p".into(),
            input_path: "in".into(),
            output_path: "out".into(),
            nsec3_salt: Vec::new(),
            last_serial: None,
            last_run_at: None,
            next_run_at: None,
            created_at: 0,
            next_run_why: None,
            input_digest: None,
            input_serial: None,
            sig_expires_at: None,
            reload_at: None,
            retry_at: None,
            full_verified_at,
            full_verify_asked_at,
            output_stamp: None,
        }
    }

    #[test]
    fn full_when_off_asked_requested_or_due() {
        let now = 10 * DAY;
        let recent = zone(Some(now - DAY + 1), None);
        assert_eq!(full_due(&recent, DAY, now, false), None, "within the interval: the memo may be used");
        assert_eq!(full_due(&recent, 0, now, false), Some(FullReason::MemoOff));
        assert_eq!(full_due(&recent, DAY, now, true), Some(FullReason::Asked));
        let requested = zone(Some(now - 60), Some(now - 30));
        assert_eq!(full_due(&requested, DAY, now, false), Some(FullReason::Requested(now - 30)));
        let due = zone(Some(now - DAY), None);
        assert_eq!(
            full_due(&due, DAY, now, false),
            Some(FullReason::Scheduled { last: Some(now - DAY), interval: DAY })
        );
        let never = zone(None, None);
        assert_eq!(full_due(&never, DAY, now, false), Some(FullReason::Scheduled { last: None, interval: DAY }));
    }

    #[test]
    fn the_commit_clears_the_request_seen_only_when_full() {
        let stored = StoredMemo { bytes: vec![1, 2, 3], entries: 7 };
        let plan = GatePlan { memo: None, full: Some(FullReason::Requested(5)), collect: true, asked_at: Some(5) };
        let commit = plan.commit(blob(Some(&stored)));
        assert!(matches!(commit.memo, MemoBlob::Store(&[1, 2, 3], 7)));
        assert_eq!((commit.full, commit.asked_at), (true, Some(5)));
        let incremental = GatePlan { full: None, memo: Some(Arc::default()), ..plan };
        assert!(!incremental.commit(MemoBlob::Later).full);
        assert!(matches!(blob(None), MemoBlob::None));
    }
}
