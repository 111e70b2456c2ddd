//! Several services sharing one PostgreSQL state: the zones' leases this
//! process holds, taken and renewed by one keeper task.
//!
//! Every [`Leases::renew_every`] (a third of the lease), or sooner when
//! another signer's lease expires sooner, the keeper writes the process's
//! heartbeat, renews every lease it holds (one statement), and takes free
//! or expired leases while it holds fewer than its share (one
//! transaction): the zones divided by the live services, rounded up (or
//! `max-zones`, if lower). A zone
//! whose lease it takes is woken for a run; a lease it fails to renew is
//! given up at once, and said. A zone task runs only while its zone's
//! lease is held, and a run's writes are fenced with it in the database
//! (`db::leases`); here the process also judges by its own monotonic
//! clock: a lease whose last successful renewal began more than a lease
//! period minus a safety margin ago is no longer used to serve, notify or
//! write a file, even before the database says so (a process paused past
//! its lease learns it on waking, before it does anything).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::chain::Chain;
use crate::db::{Database, DbError, Fence, signer_name};
use crate::time::wall_clock;

/// The part of a lease period kept as a margin: a lease is used only
/// until its period less this share has passed since the renewal began.
const SAFETY_DIVISOR: u32 = 5;

/// How long after another signer's lease expires a signer looks again
/// (the database's answer took a moment to arrive).
const EXPIRY_MARGIN: Duration = Duration::from_millis(50);

/// The shortest time between two rounds.
const MIN_ROUND: Duration = Duration::from_millis(100);

/// The leases of this process.
#[derive(Debug)]
pub(super) struct Leases {
    /// This process as a signer: "HOST/PID".
    pub name: String,
    terms: Mutex<Terms>,
    held: Mutex<HashMap<i64, Held>>,
}

/// The terms of the leases, from `[serve]` (read again on SIGHUP; a
/// round works with the terms it began with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Terms {
    /// How long a lease lasts.
    pub period: Duration,
    /// At most this many zones (0: the fair share only).
    pub max_zones: usize,
}

/// A lease held, and until when (by the monotonic clock) it may be used.
#[derive(Debug, Clone)]
struct Held {
    fence: Fence,
    usable_until: Instant,
}

impl Leases {
    pub(super) fn new(terms: Terms) -> Leases {
        Leases { name: signer_name(std::process::id()), terms: Mutex::new(terms), held: Mutex::default() }
    }

    pub(super) fn terms(&self) -> Terms {
        *self.terms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// New terms (SIGHUP): the next round renews and shares by them.
    pub(super) fn set_terms(&self, terms: Terms) {
        *self.terms.lock().unwrap_or_else(PoisonError::into_inner) = terms;
    }

    /// The holder name of this process's leases.
    fn holder(&self) -> String {
        format!("signet serve {}", self.name)
    }

    /// How often the keeper renews.
    pub(super) fn renew_every(&self) -> Duration {
        self.terms().period / 3
    }

    /// The fence of zone `zone_id`'s lease, if this process holds it and
    /// may still use it.
    pub(super) fn fence(&self, zone_id: i64) -> Option<Fence> {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&zone_id).filter(|h| Instant::now() < h.usable_until).map(|h| h.fence.clone())
    }

    /// Whether `fence` is still this process's, usable now.
    pub(super) fn usable(&self, fence: &Fence) -> bool {
        self.fence(fence.zone_id).is_some_and(|held| held == *fence)
    }

    fn holding(&self) -> usize {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Holds `fence`, renewed (or taken) for `period` in a transaction
    /// that began after `renewal_began`.
    fn set(&self, fence: Fence, renewal_began: Instant, period: Duration) {
        let usable_until = renewal_began + period - period / SAFETY_DIVISOR;
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.insert(fence.zone_id, Held { fence, usable_until });
    }

    fn drop_lease(&self, zone_id: i64) -> Option<Fence> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).remove(&zone_id).map(|h| h.fence)
    }

    fn fences(&self) -> Vec<Fence> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).values().map(|h| h.fence.clone()).collect()
    }

    /// The keeper: until shutdown, every [`Leases::renew_every`], the
    /// heartbeat, the renewals and the takings; each zone taken is sent
    /// on `taken`. At shutdown, the leases are let go of (another service
    /// takes them at once) and the signer's row removed.
    pub(super) async fn keep(
        self: Arc<Self>,
        db: Database,
        started: i64,
        taken: mpsc::UnboundedSender<i64>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let next = self.round(&db, started, &taken).await;
            tokio::select! {
                _ = tokio::time::sleep(next) => {}
                _ = shutdown.changed() => break,
            }
        }
        for fence in self.fences() {
            self.drop_lease(fence.zone_id);
            if let Err(e) = db.release_lease(&fence).await {
                tracing::warn!(zone_id = fence.zone_id, "cannot let go of the zone's lease: {}", Chain(&e));
            }
        }
        if let Err(e) = db.signer_gone(&self.name).await {
            tracing::warn!("cannot remove this signer's row: {}", Chain(&e));
        }
    }

    /// One round: heartbeat, renewals, takings; returns when the next one
    /// is due. A database that does not answer costs the leases whose
    /// time runs out meanwhile, nothing else.
    async fn round(&self, db: &Database, started: i64, taken: &mpsc::UnboundedSender<i64>) -> Duration {
        let began = Instant::now();
        let terms = self.terms();
        if let Err(e) = db.signer_heartbeat(&self.name, std::process::id(), started).await {
            tracing::warn!("cannot write this signer's heartbeat: {}", Chain(&e));
        }
        self.renew(db, began, terms.period, taken).await;
        let next = match self.take_share(db, terms, taken).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!("cannot take zones' leases: {}", Chain(&e));
                None
            }
        };
        self.forget_unusable();
        let every = terms.period / 3;
        next.map_or(every, |next| next.clamp(MIN_ROUND, every))
    }

    /// Renews every lease held, in one statement; a lease not renewed
    /// is given up at once. A lease the database says this process holds
    /// and it did not know of (its taking was committed, but the answer
    /// lost) is taken up, and its zone woken.
    async fn renew(&self, db: &Database, began: Instant, period: Duration, taken: &mpsc::UnboundedSender<i64>) {
        let held = self.fences();
        let renewed = match db.renew_leases(&self.holder(), millis(period)).await {
            Ok(renewed) => renewed,
            Err(e) => return tracing::warn!("cannot renew the zones' leases: {}", Chain(&e)),
        };
        for fence in renewed.iter().filter(|f| !held.contains(f)) {
            tracing::info!(
                zone_id = fence.zone_id,
                fencing = fence.fencing,
                "zone's lease found held: this process signs it"
            );
            self.set(fence.clone(), began, period);
            let _ = taken.send(fence.zone_id);
        }
        for fence in held {
            if renewed.contains(&fence) {
                self.set(fence, began, period);
            } else {
                self.drop_lease(fence.zone_id);
                tracing::warn!(
                    zone_id = fence.zone_id,
                    fencing = fence.fencing,
                    "lease lost: another signer has the zone, or the lease expired; this process signs, serves and commits nothing more of it"
                );
            }
        }
    }

    /// Leases whose time ran out without a renewal: given up.
    fn forget_unusable(&self) {
        let now = Instant::now();
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.retain(|zone_id, h| {
            let usable = now < h.usable_until;
            if !usable {
                tracing::warn!(
                    zone_id,
                    fencing = h.fence.fencing,
                    "lease lost: not renewed in time; this process signs, serves and commits nothing more of the zone"
                );
            }
            usable
        });
    }

    /// Takes free or expired leases up to this process's share, and lets
    /// go of those above it (a service that started first took every
    /// zone; those that start later get their part this way). Returns
    /// when the next lease another signer holds expires (and a little
    /// more): a signer that died is replaced one lease period after its
    /// last renewal, not a round later.
    async fn take_share(
        &self,
        db: &Database,
        terms: Terms,
        taken: &mpsc::UnboundedSender<i64>,
    ) -> Result<Option<Duration>, DbError> {
        let zones = db.zone_ids().await?.len();
        let live = db.live_signers(millis(terms.period)).await?.len().max(1);
        let mut share = zones.div_ceil(live);
        if terms.max_zones > 0 {
            share = share.min(terms.max_zones);
        }
        self.let_go_above(db, share).await;
        let wanted = share.saturating_sub(self.holding());
        if wanted > 0 {
            let began = Instant::now();
            for fence in db.take_free_leases(&self.holder(), millis(terms.period), wanted, wall_clock()).await? {
                tracing::info!(
                    zone_id = fence.zone_id,
                    fencing = fence.fencing,
                    "zone's lease taken: this process signs it"
                );
                let zone_id = fence.zone_id;
                self.set(fence, began, terms.period);
                let _ = taken.send(zone_id);
            }
        }
        let next = db.next_lease_expiry(&self.holder()).await?;
        Ok(next.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)) + EXPIRY_MARGIN))
    }

    /// Lets go of the leases above `share` (the newest zones first), for
    /// the other services to take at their next round. A run of such a
    /// zone under way commits nothing (its fence no longer holds): the
    /// new holder signs it again.
    async fn let_go_above(&self, db: &Database, share: usize) {
        let mut fences = self.fences();
        if fences.len() <= share {
            return;
        }
        fences.sort_by_key(|f| f.zone_id);
        for fence in fences.split_off(share) {
            self.drop_lease(fence.zone_id);
            match db.release_lease(&fence).await {
                Ok(()) => {
                    tracing::info!(zone_id = fence.zone_id, share, "zone's lease let go: above this service's share")
                }
                Err(e) => tracing::warn!(zone_id = fence.zone_id, "cannot let go of the zone's lease: {}", Chain(&e)),
            }
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
