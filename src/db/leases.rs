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
        let fencing = match row {
            Some((other, fencing, expires)) if other != holder && expires > clock => {
                return Err(DbError::LeaseHeld { holder: other, fencing, expires_in_ms: expires - clock });
            }
            Some((other, fencing, expires)) if other == holder && expires > clock => {
                sqlx::query("UPDATE zone_leases SET expires_at = $1 WHERE zone_id = $2")
                    .bind(clock + duration_ms)
                    .bind(zone_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(Fence { zone_id, holder: holder.to_owned(), fencing });
            }
            Some((other, fencing, _)) => {
                let why = format!("{holder} took the zone's lease (fencing {}) from {other}", fencing + 1);
                insert_event(&mut tx, Some(zone_id), &Event::note(now, Actor::Machine, EventKind::Lease, None, why))
                    .await?;
                fencing + 1
            }
            None => {
                let why = format!("{holder} took the zone's lease (fencing 1)");
                insert_event(&mut tx, Some(zone_id), &Event::note(now, Actor::Machine, EventKind::Lease, None, why))
                    .await?;
                1
            }
        };
        sqlx::query(
            "INSERT INTO zone_leases (zone_id, holder, fencing, since, expires_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (zone_id) DO UPDATE SET holder = excluded.holder, fencing = excluded.fencing,
                since = excluded.since, expires_at = excluded.expires_at",
        )
        .bind(zone_id)
        .bind(holder)
        .bind(fencing)
        .bind(clock)
        .bind(clock + duration_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Fence { zone_id, holder: holder.to_owned(), fencing })
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
