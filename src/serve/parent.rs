//! The parent in the loop under the service: one task per zone that,
//! while a DS change is pending, submits the wanted DS set (the policy's
//! submit command, RFC 2136 updates) and checks the parent by query on
//! the policy's interval with backoff. An observation it records is an
//! operator request in the database's eyes: the supervisor's next poll
//! wakes the zone's task, whose run takes it in.
//!
//! The task sleeps until its next check is due, the zone's task
//! published a run (which may have asked the parent for a change: every
//! DS change is wanted by a run, and every run nudges this task), or
//! [`IDLE`] passed (a safety net: a service holding hundreds of zones
//! reads each of them that often with nothing pending).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::Shared;
use crate::chain::Chain;
use crate::manage::parent::{Round, check_round_from, submit_round_from};
use crate::time::wall_clock;
use crate::zone::Name;

/// The longest the task sleeps with nothing due.
const IDLE: Duration = Duration::from_secs(300);
/// The longest the task sleeps while a DS change is pending.
const PENDING_IDLE: i64 = 60;
/// The wait after the database could not be read.
const DB_RETRY: i64 = 5;

/// A zone's running parent task; aborted when dropped (the zone left
/// management).
#[derive(Debug)]
pub(super) struct ParentHandle {
    /// Notified after each run of the zone.
    pub nudge: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ParentHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the parent task of zone `origin` (id `zone_id`).
pub(super) fn start(shared: &Arc<Shared>, origin: Name, zone_id: i64) -> ParentHandle {
    let nudge = Arc::new(Notify::new());
    let task = ParentTask { origin, zone_id, shared: Arc::clone(shared), nudge: Arc::clone(&nudge) };
    ParentHandle { nudge, task: tokio::spawn(task.run(shared.shutdown.clone())) }
}

/// One zone's parent task.
#[derive(Debug)]
pub(super) struct ParentTask {
    /// The zone.
    pub origin: Name,
    /// Its id in the database.
    pub zone_id: i64,
    /// The service.
    pub shared: Arc<Shared>,
    /// Notified after each run of the zone.
    pub nudge: Arc<Notify>,
}

impl ParentTask {
    /// Runs until the service stops (or the task is aborted with its
    /// zone).
    pub(super) async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let next = self.round().await;
            let now = wall_clock();
            let sleep = next.map_or(IDLE, |at| Duration::from_secs(u64::try_from(at - now).unwrap_or(0))).min(IDLE);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.nudge.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One round: submit the wanted DS set if it changed, check the
    /// parent if due. Returns when to look again.
    async fn round(&self) -> Option<i64> {
        let now = wall_clock();
        // With a shared state the parent is the lease holder's business,
        // and what the round records is fenced with the lease. Another
        // holder's zone costs no query here: its run under a lease taken
        // later nudges this task.
        let fence = match &self.shared.leases {
            Some(leases) => match leases.fence(self.zone_id) {
                Some(fence) => Some(fence),
                None => return Some(now + i64::try_from(leases.renew_every().as_secs()).unwrap_or(DB_RETRY).max(1)),
            },
            None => None,
        };
        let db = &self.shared.db;
        let mut snapshot = match db.snapshot(&self.origin).await {
            Ok(snapshot) => snapshot,
            Err(e) => {
                tracing::error!(zone = %self.origin, "parent check: cannot read the zone: {}", Chain(&e));
                return Some(now + DB_RETRY);
            }
        };
        snapshot.fence = fence;
        let catalog = &self.shared.catalog;
        let lookup = |name: &str| Name::from_text(name, None).ok().and_then(|name| catalog.key(name.as_ref()));
        let sources = catalog.source_defaults();
        let retry_submission = match submit_round_from(db, &snapshot, &lookup, now, &sources).await {
            Ok(retry) => retry,
            Err(e) => {
                tracing::error!(zone = %self.origin, "DS submission failed: {}", Chain(&e));
                Some(now + DB_RETRY)
            }
        };
        let next_check = match check_round_from(db, &snapshot, &lookup, now, false, &sources).await {
            Ok(Round { next_at, waiting, answers, .. }) => {
                for line in &waiting {
                    tracing::info!(zone = %self.origin, answers = %answers, "parent check waits: {line}");
                }
                next_at
            }
            Err(e) => {
                tracing::error!(zone = %self.origin, "parent check failed: {}", Chain(&e));
                Some(now + DB_RETRY)
            }
        };
        // A DS change pending with nothing scheduled (no parent agent to
        // ask yet): looked at again sooner than IDLE, an agent may come.
        let pending = snapshot.keys.iter().any(|k| k.key.ds_pending.is_some());
        let next = [next_check, retry_submission].into_iter().flatten().min();
        next.or_else(|| pending.then_some(now + PENDING_IDLE))
    }
}
