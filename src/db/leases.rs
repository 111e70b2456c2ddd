//! Several signers, one state: a lease per zone, with fencing.
//!
//! A zone is signed only by the holder of its lease (a row: holder,
//! fencing number, expiry). Taking a lease that is free or expired makes
//! the taker the holder and adds one to the fencing number; the holder
//! renews it well before it expires. Every write a run makes (the commit,
//! a key made, a failed run recorded) checks in its own transaction that
//! the lease is still the run's, by holder, fencing number and expiry
//! ([`check_fence`]): a process that lost its lease (paused past it,
//! partitioned from the database, its clock jumped) commits nothing,
//! whatever it believes. Expiry is judged by the database's clock, the
//! one clock every signer shares; the transactions that take, renew and
//! check leases are writers, which follow each other ([`Database::write`]).
//!
//! The signers' own rows (`signers`) say who is alive (a heartbeat with
//! every renewal) for `signet status` and for sharing the zones out.

use sqlx::{Any, Transaction};

use super::events::{Actor, Event, EventKind, insert_event};
use super::{Database, DbError, Result};

/// The database's clock in milliseconds, per dialect.
const SQLITE_NOW_MS: &str = "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
const POSTGRES_NOW_MS: &str = "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// A lease held: what a run's writes are fenced with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The zone.
    pub zone_id: i64,
    /// Who holds it.
    pub holder: String,
    /// The fencing number of this holding.
    pub fencing: i64,
}

/// A zone's lease as `signet status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseInfo {
    /// Who holds (or last held) it.
    pub holder: String,
    /// The fencing number of that holding.
    pub fencing: i64,
    /// Since when that holder has it (Unix seconds).
    pub since: i64,
    /// Whether it is unexpired now.
    pub live: bool,
    /// When it expires (or expired), Unix seconds.
    pub expires: i64,
}

/// A zone's lease passing to a new holder: from `previous` (holder and
/// fencing number), or none.
struct Handover {
    zone_id: i64,
    previous: Option<(String, i64)>,
}

impl Handover {
    /// Writes the new holding (the next fencing number, from the
    /// database's `clock` for `duration_ms`) and its audit row (at `now`).
    async fn write(
        self,
        tx: &mut Transaction<'_, Any>,
        holder: &str,
        clock: i64,
        duration_ms: i64,
        now: i64,
    ) -> Result<Fence> {
        let (fencing, why) = match self.previous {
            Some((other, fencing)) => {
                (fencing + 1, format!("{holder} took the zone's lease (fencing {}) from {other}", fencing + 1))
            }
            None => (1, format!("{holder} took the zone's lease (fencing 1)")),
        };
        let event = Event::note(now, Actor::Machine, EventKind::Lease, None, why);
        insert_event(tx, Some(self.zone_id), &event).await?;
        sqlx::query(
            "INSERT INTO zone_leases (zone_id, holder, fencing, since, expires_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (zone_id) DO UPDATE SET holder = excluded.holder, fencing = excluded.fencing,
                since = excluded.since, expires_at = excluded.expires_at",
        )
        .bind(self.zone_id)
        .bind(holder)
        .bind(fencing)
        .bind(clock)
        .bind(clock + duration_ms)
        .execute(&mut **tx)
        .await?;
        Ok(Fence { zone_id: self.zone_id, holder: holder.to_owned(), fencing })
    }
}

impl Database {
    /// The database's clock now, in milliseconds.
    async fn now_ms(&self, tx: &mut Transaction<'_, Any>) -> Result<i64> {
        let sql = if self.is_postgres() { POSTGRES_NOW_MS } else { SQLITE_NOW_MS };
        Ok(sqlx::query_scalar(sql).fetch_one(&mut **tx).await?)
    }

    /// Takes zone `zone_id`'s lease for `holder` for `duration_ms`, if it
    /// is free, expired or `holder`'s already (then renewed); a new holder
    /// gets the next fencing number, and the audit names the handover.
    /// `now` is the caller's time for the audit row. Held by another:
    /// [`DbError::LeaseHeld`], naming it.
    pub async fn take_lease(&self, zone_id: i64, holder: &str, duration_ms: i64, now: i64) -> Result<Fence> {
        let mut tx = self.write().await?;
        let clock = self.now_ms(&mut tx).await?;
        let row: Option<(String, i64, i64)> =
            sqlx::query_as("SELECT holder, fencing, expires_at FROM zone_leases WHERE zone_id = $1")
                .bind(zone_id)
                .fetch_optional(&mut *tx)
                .await?;
        let fence = match row {
            Some((other, fencing, expires)) if other != holder && expires > clock => {
                return Err(DbError::LeaseHeld { holder: other, fencing, expires_in_ms: expires - clock });
            }
            Some((other, fencing, expires)) if other == holder && expires > clock => {
                sqlx::query("UPDATE zone_leases SET expires_at = $1 WHERE zone_id = $2")
                    .bind(clock + duration_ms)
                    .bind(zone_id)
                    .execute(&mut *tx)
                    .await?;
                Fence { zone_id, holder: holder.to_owned(), fencing }
            }
            previous => {
                let handover = Handover { zone_id, previous: previous.map(|(h, f, _)| (h, f)) };
                handover.write(&mut tx, holder, clock, duration_ms, now).await?
            }
        };
        tx.commit().await?;
        Ok(fence)
    }

    /// Takes, in one transaction, up to `limit` leases that are free or
    /// expired (the zones of a dead signer, or new ones), lowest zone id
    /// first, for `holder`; each handover is in the audit.
    pub async fn take_free_leases(&self, holder: &str, duration_ms: i64, limit: usize, now: i64) -> Result<Vec<Fence>> {
        let mut tx = self.write().await?;
        let clock = self.now_ms(&mut tx).await?;
        let free: Vec<(i64, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT zones.id, zone_leases.holder, zone_leases.fencing
             FROM zones LEFT JOIN zone_leases ON zone_leases.zone_id = zones.id
             WHERE zones.removed_at IS NULL AND (zone_leases.zone_id IS NULL OR zone_leases.expires_at <= $1)
             ORDER BY zones.id LIMIT $2",
        )
        .bind(clock)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        let mut fences = Vec::with_capacity(free.len());
        for (zone_id, previous_holder, fencing) in free {
            let handover = Handover { zone_id, previous: previous_holder.zip(fencing) };
            fences.push(handover.write(&mut tx, holder, clock, duration_ms, now).await?);
        }
        tx.commit().await?;
        Ok(fences)
    }

    /// How long until the next unexpired lease another signer than
    /// `holder` holds expires, in milliseconds (None: there is none). A
    /// signer looks again then: a dead signer's zones are taken one lease
    /// period after its last renewal, and by then its heartbeat (written
    /// before that renewal) says it is dead, so the zones are shared out
    /// among the living.
    pub async fn next_lease_expiry(&self, holder: &str) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        let clock = self.now_ms(&mut tx).await?;
        let next: Option<i64> =
            sqlx::query_scalar("SELECT min(expires_at) FROM zone_leases WHERE holder <> $1 AND expires_at > $2")
                .bind(holder)
                .bind(clock)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(next.map(|expires| expires - clock))
    }

    /// Extends every unexpired lease `holder` holds to `duration_ms` from
    /// now, in one statement (a service may hold hundreds); returns the
    /// fences renewed: a lease the holder believes it has and that is not
    /// among them is lost (expired, or taken).
    pub async fn renew_leases(&self, holder: &str, duration_ms: i64) -> Result<Vec<Fence>> {
        let mut tx = self.write().await?;
        let clock = self.now_ms(&mut tx).await?;
        let renewed: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE zone_leases SET expires_at = $1 WHERE holder = $2 AND expires_at > $3 RETURNING zone_id, fencing",
        )
        .bind(clock + duration_ms)
        .bind(holder)
        .bind(clock)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(renewed
            .into_iter()
            .map(|(zone_id, fencing)| Fence { zone_id, holder: holder.to_owned(), fencing })
            .collect())
    }

    /// Lets go of a lease (it expires now; the row and its fencing number
    /// stay).
    pub async fn release_lease(&self, fence: &Fence) -> Result<()> {
        sqlx::query("UPDATE zone_leases SET expires_at = 0 WHERE zone_id = $1 AND holder = $2 AND fencing = $3")
            .bind(fence.zone_id)
            .bind(&fence.holder)
            .bind(fence.fencing)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Zone `zone_id`'s lease, if it ever had one.
    pub async fn lease(&self, zone_id: i64) -> Result<Option<LeaseInfo>> {
        let mut tx = self.pool.begin().await?;
        let clock = self.now_ms(&mut tx).await?;
        let row: Option<(String, i64, i64, i64)> =
            sqlx::query_as("SELECT holder, fencing, since, expires_at FROM zone_leases WHERE zone_id = $1")
                .bind(zone_id)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(row.map(|(holder, fencing, since, expires)| LeaseInfo {
            holder,
            fencing,
            since: since / 1000,
            live: expires > clock,
            expires: expires / 1000,
        }))
    }

    /// Writes (or refreshes) this signer's row: its heartbeat.
    pub async fn signer_heartbeat(&self, name: &str, pid: u32, started: i64) -> Result<()> {
        let mut tx = self.write().await?;
        let clock = self.now_ms(&mut tx).await?;
        sqlx::query(
            "INSERT INTO signers (name, pid, started, seen_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(name)
        .bind(i64::from(pid))
        .bind(started)
        .bind(clock)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes this signer's row (it stops).
    pub async fn signer_gone(&self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM signers WHERE name = $1").bind(name).execute(&self.pool).await?;
        Ok(())
    }

    /// The signers whose heartbeat is younger than `within_ms`: name, pid
    /// and start (Unix seconds), oldest first.
    pub async fn live_signers(&self, within_ms: i64) -> Result<Vec<(String, i64, i64)>> {
        let mut tx = self.pool.begin().await?;
        let clock = self.now_ms(&mut tx).await?;
        let rows = sqlx::query_as("SELECT name, pid, started FROM signers WHERE seen_at > $1 ORDER BY started, name")
            .bind(clock - within_ms)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }
}

/// Inside a write transaction about zone `zone_id`: with a fence, the
/// zone's lease must still be the fence's and unexpired; without one (a
/// database no signer shares a lease of), no one else may hold a live
/// lease of the zone.
pub(super) async fn check_fence(
    db: &Database,
    tx: &mut Transaction<'_, Any>,
    zone_id: i64,
    fence: Option<&Fence>,
) -> Result<()> {
    let clock = db.now_ms(tx).await?;
    let row: Option<(String, i64, i64)> =
        sqlx::query_as("SELECT holder, fencing, expires_at FROM zone_leases WHERE zone_id = $1")
            .bind(zone_id)
            .fetch_optional(&mut **tx)
            .await?;
    match (fence, row) {
        (Some(fence), Some((holder, fencing, expires)))
            if holder == fence.holder && fencing == fence.fencing && expires > clock =>
        {
            Ok(())
        }
        (Some(fence), row) => Err(DbError::LeaseLost {
            holder: fence.holder.clone(),
            fencing: fence.fencing,
            now_held_by: row.filter(|(_, _, expires)| *expires > clock).map(|(holder, fencing, _)| (holder, fencing)),
        }),
        (None, Some((holder, fencing, expires))) if expires > clock => {
            Err(DbError::LeaseHeld { holder, fencing, expires_in_ms: expires - clock })
        }
        (None, _) => Ok(()),
    }
}

/// [`check_fence`] when there is a fence; nothing to check otherwise (a
/// write an operator's command makes, whoever holds the zone).
pub(super) async fn check_held(
    db: &Database,
    tx: &mut Transaction<'_, Any>,
    zone_id: i64,
    fence: Option<&Fence>,
) -> Result<()> {
    match fence {
        Some(fence) => check_fence(db, tx, zone_id, Some(fence)).await,
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::scratch::database;
    use crate::db::{RunCommit, RunRecord, RunResult};

    const HOUR_MS: i64 = 3_600_000;

    async fn commit(db: &Database, zone: i64, serial: u32, fence: Option<&Fence>) -> Result<()> {
        let run = RunRecord { at: 60, serial: Some(serial), result: RunResult::Published, ..RunRecord::default() };
        db.commit_run(zone, &RunCommit { fence, ..RunCommit::publication(run) }).await
    }

    #[tokio::test]
    async fn a_lease_is_one_holders_and_its_fence_guards_every_commit() {
        let (db, name, zone, _dir) = database().await;
        let first = db.take_lease(zone, "a", HOUR_MS, 0).await.expect("take");
        assert_eq!(first.fencing, 1);
        let held = db.take_lease(zone, "b", HOUR_MS, 0).await.expect_err("a second holder");
        assert!(matches!(held, DbError::LeaseHeld { ref holder, fencing: 1, .. } if holder == "a"), "{held}");
        // Taking it again is renewing it: the same fencing number.
        assert_eq!(db.take_lease(zone, "a", HOUR_MS, 0).await.expect("take"), first);
        assert_eq!(db.renew_leases("a", HOUR_MS).await.expect("renew"), vec![first.clone()]);

        commit(&db, zone, 1, Some(&first)).await.expect("the holder commits");
        let impostor = Fence { fencing: 7, ..first.clone() };
        let refused = commit(&db, zone, 2, Some(&impostor)).await.expect_err("a wrong fencing number commits");
        assert!(matches!(refused, DbError::LeaseLost { fencing: 7, .. }), "{refused}");
        // Without a fence, nothing is written while another holds the zone.
        let refused = commit(&db, zone, 2, None).await.expect_err("a writer without the lease commits");
        assert!(matches!(refused, DbError::LeaseHeld { fencing: 1, .. }), "{refused}");
        assert_eq!(db.zone(&name).await.expect("zone").last_serial, Some(1));
    }

    #[tokio::test]
    async fn free_leases_are_taken_in_one_round_and_the_next_expiry_named() {
        let (db, _, first, _dir) = database().await;
        let mut zones = vec![first];
        for (text, output) in [("b.example.", "b.out"), ("c.example.", "c.out")] {
            let name = crate::zone::Name::from_text(text, None).expect("name");
            let zone = crate::db::NewZone { name: &name, policy: "p", input: text, output, salt: &[], remotes: &[] };
            zones.push(db.add_zone(&zone, 0).await.expect("zone"));
        }
        let other = db.take_lease(zones[1], "a", HOUR_MS, 0).await.expect("take");
        // Up to the limit, lowest zone first, never a live lease of another.
        let got = db.take_free_leases("b", HOUR_MS, 1, 0).await.expect("take");
        assert_eq!(got, vec![Fence { zone_id: zones[0], holder: "b".into(), fencing: 1 }]);
        let next = db.next_lease_expiry("b").await.expect("next").expect("a's lease expires");
        assert!(next > HOUR_MS - 60_000 && next <= HOUR_MS, "{next}");
        assert_eq!(db.next_lease_expiry("a").await.expect("next").map(|ms| ms > 0), Some(true), "b's");
        let got = db.take_free_leases("b", HOUR_MS, 5, 0).await.expect("take");
        assert_eq!(got.iter().map(|f| f.zone_id).collect::<Vec<_>>(), vec![zones[2]]);
        // An expired lease is taken with the next fencing number, named in the audit.
        db.release_lease(&other).await.expect("release");
        let got = db.take_free_leases("b", HOUR_MS, 5, 0).await.expect("take");
        assert_eq!(got, vec![Fence { zone_id: zones[1], holder: "b".into(), fencing: 2 }]);
        assert_eq!(db.next_lease_expiry("b").await.expect("next"), None, "b holds every lease");
        let audit = db.events(zones[1], 10).await.expect("audit");
        assert!(audit.iter().any(|e| e.kind == EventKind::Lease && e.why.contains("(fencing 2) from a")), "{audit:?}");
    }

    #[tokio::test]
    async fn a_new_holder_fences_the_old_one_out() {
        let (db, _, zone, _dir) = database().await;
        let old = db.take_lease(zone, "a", HOUR_MS, 0).await.expect("take");
        db.release_lease(&old).await.expect("release");
        assert_eq!(db.renew_leases("a", HOUR_MS).await.expect("renew"), vec![], "an expired lease renewed");
        let new = db.take_lease(zone, "b", HOUR_MS, 0).await.expect("take");
        assert_eq!(new.fencing, 2, "the fencing number grows with the new holder");
        let lost = commit(&db, zone, 5, Some(&old)).await.expect_err("the old holder commits");
        let text = lost.to_string();
        assert!(matches!(lost, DbError::LeaseLost { now_held_by: Some((ref h, 2)), .. } if h == "b"), "{text}");
        assert!(text.contains("no longer a's") && text.contains("b holds it (fencing 2)"), "{text}");
        commit(&db, zone, 5, Some(&new)).await.expect("the new holder commits");
        let info = db.lease(zone).await.expect("lease").expect("a lease");
        assert_eq!((info.holder.as_str(), info.fencing, info.live), ("b", 2, true));
        let audit = db.events(zone, 10).await.expect("audit");
        let handover = audit.iter().filter(|e| e.kind == EventKind::Lease).map(|e| e.why.clone()).collect::<Vec<_>>();
        assert!(handover.iter().any(|why| why.contains("b took the zone's lease (fencing 2) from a")), "{handover:?}");
    }
}
