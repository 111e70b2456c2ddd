//! The offline KSK's periods (issue 27): on the online side the requests
//! written and the responses imported, on the KSK side the responses
//! signed and the plan of the KSKs' states behind them.

use super::events::insert_event;
use super::leases::check_held;
use super::{Database, Event, Fence, Result, rows};
use crate::rollover::Key;

/// What an offline step writes ([`Database::commit_offline`]).
#[derive(Debug, Default)]
pub struct OfflineCommit<'a> {
    /// The periods of each side, each replacing that side's from its
    /// first start on.
    pub sides: &'a [(OfflineSide, &'a [OfflinePeriod])],
    /// Key states to write (the KSK side's, as of its plan's end).
    pub keys: &'a [Key],
    /// Keys removed (hidden everywhere, done with).
    pub removed: &'a [i64],
    /// Observations taken in.
    pub consumed: &'a [i64],
    /// The audit rows.
    pub events: &'a [Event],
    /// The lease it is fenced with, if any.
    pub fence: Option<&'a Fence>,
}

/// Which of a zone's offline periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineSide {
    /// A period of a request this (online) signer wrote: its ZSKs.
    Request,
    /// A period of a response: imported (online) or signed (KSK side).
    Response,
    /// The KSK side's key states at a response period's start.
    Plan,
}

impl OfflineSide {
    fn as_str(self) -> &'static str {
        match self {
            OfflineSide::Request => "request",
            OfflineSide::Response => "response",
            OfflineSide::Plan => "plan",
        }
    }
}

/// One stored period.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OfflinePeriod {
    /// When it starts (Unix seconds).
    pub start: i64,
    /// Its records as master-file text (a plan: the keys as JSON).
    pub body: String,
    /// A response's earliest RRSIG expiration.
    pub expires: Option<i64>,
}

impl Database {
    /// The zone's periods of one side, oldest first.
    pub async fn offline_periods(&self, zone_id: i64, side: OfflineSide) -> Result<Vec<OfflinePeriod>> {
        Ok(sqlx::query_as(
            "SELECT start, body, expires FROM offline_periods WHERE zone_id = $1 AND side = $2 ORDER BY start",
        )
        .bind(zone_id)
        .bind(side.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    /// The zone's periods of one side that start at or before `at`, the
    /// newest first, at most `limit`; and when the first period after
    /// `at` starts. What a run, the status and the metrics need, without
    /// reading every period.
    pub async fn offline_periods_at(
        &self,
        zone_id: i64,
        side: OfflineSide,
        at: i64,
        limit: i64,
    ) -> Result<(Vec<OfflinePeriod>, Option<i64>)> {
        let started = sqlx::query_as(
            "SELECT start, body, expires FROM offline_periods WHERE zone_id = $1 AND side = $2 AND start <= $3
             ORDER BY start DESC LIMIT $4",
        )
        .bind(zone_id)
        .bind(side.as_str())
        .bind(at)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(start) FROM offline_periods WHERE zone_id = $1 AND side = $2 AND start > $3",
        )
        .bind(zone_id)
        .bind(side.as_str())
        .bind(at)
        .fetch_one(&self.pool)
        .await?;
        Ok((started, next))
    }

    /// Writes what an offline step changed, in one transaction: the
    /// periods of each side given replace that side's from their first
    /// start on; key states, removed keys and consumed observations as a
    /// run's commit writes them; its audit rows.
    pub async fn commit_offline(&self, zone_id: i64, commit: &OfflineCommit<'_>, now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        check_held(self, &mut tx, zone_id, commit.fence).await?;
        for (side, periods) in commit.sides {
            let Some(from) = periods.iter().map(|p| p.start).min() else { continue };
            sqlx::query("DELETE FROM offline_periods WHERE zone_id = $1 AND side = $2 AND start >= $3")
                .bind(zone_id)
                .bind(side.as_str())
                .bind(from)
                .execute(&mut *tx)
                .await?;
            for period in *periods {
                sqlx::query(
                    "INSERT INTO offline_periods (zone_id, side, start, body, expires, made_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(zone_id)
                .bind(side.as_str())
                .bind(period.start)
                .bind(&period.body)
                .bind(period.expires)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        for key in commit.keys {
            rows::update_key(&mut tx, key).await?;
        }
        super::runs::mark_removed_and_consumed(&mut tx, commit.removed, commit.consumed, now).await?;
        for event in commit.events {
            insert_event(&mut tx, Some(zone_id), event).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
