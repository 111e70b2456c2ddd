//! The parent in the database: what the check of the parent waits for,
//! per key whose DS is pending, and the DS set last submitted.

use super::{Database, Event, Result, insert_event};

/// What the check of the parent waits for, for one key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct DsCheck {
    /// The key.
    pub key_id: i64,
    /// `seen` (a DS submitted) or `gone` (a DS withdrawn).
    pub want: String,
    /// Since when the check waits for it.
    pub since: i64,
    /// The last check.
    pub checked_at: Option<i64>,
    /// The next check.
    pub next_at: Option<i64>,
    /// Checks so far.
    pub checks: i64,
    /// Every agent's answer at the last check.
    pub answers: Option<String>,
}

/// The DS set last submitted to the parent.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct DsSubmission {
    /// The DS RRset wanted, as text.
    pub wanted: String,
    /// How: `command`, `update` or both.
    pub via: Option<String>,
    /// When it was last submitted (None: not yet).
    pub submitted_at: Option<i64>,
    /// Attempts for this set.
    pub attempts: i64,
    /// The last failure for this set: when.
    pub error_at: Option<i64>,
    /// What failed.
    pub error: Option<String>,
}

impl Database {
    /// What the check of the parent waits for, per key.
    pub async fn ds_checks(&self, zone_id: i64) -> Result<Vec<DsCheck>> {
        Ok(sqlx::query_as(
            "SELECT key_id, want, since, checked_at, next_at, checks, answers FROM ds_checks
             WHERE zone_id = $1 ORDER BY key_id",
        )
        .bind(zone_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Keeps the checks of exactly `checks` (one row per key; a key no
    /// longer pending loses its row).
    /// Fenced by `fence`, if given (a service sharing the state).
    pub async fn set_ds_checks(&self, zone_id: i64, checks: &[DsCheck], fence: Option<&super::Fence>) -> Result<()> {
        let mut tx = self.write().await?;
        super::leases::check_held(self, &mut tx, zone_id, fence).await?;
        sqlx::query("DELETE FROM ds_checks WHERE zone_id = $1").bind(zone_id).execute(&mut *tx).await?;
        for check in checks {
            sqlx::query(
                "INSERT INTO ds_checks (zone_id, key_id, want, since, checked_at, next_at, checks, answers)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(zone_id)
            .bind(check.key_id)
            .bind(&check.want)
            .bind(check.since)
            .bind(check.checked_at)
            .bind(check.next_at)
            .bind(check.checks)
            .bind(&check.answers)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The DS set last submitted (or being submitted).
    pub async fn ds_submission(&self, zone_id: i64) -> Result<Option<DsSubmission>> {
        Ok(sqlx::query_as(
            "SELECT wanted, via, submitted_at, attempts, error_at, error FROM ds_submissions WHERE zone_id = $1",
        )
        .bind(zone_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records an attempt to submit `submission.wanted`, with its audit
    /// event.
    /// Fenced by `fence`, if given (a service sharing the state).
    pub async fn record_ds_submission(
        &self,
        zone_id: i64,
        submission: &DsSubmission,
        event: &Event,
        fence: Option<&super::Fence>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        super::leases::check_held(self, &mut tx, zone_id, fence).await?;
        sqlx::query(
            "INSERT INTO ds_submissions (zone_id, wanted, via, submitted_at, attempts, error_at, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (zone_id) DO UPDATE SET wanted = excluded.wanted, via = excluded.via,
                submitted_at = excluded.submitted_at, attempts = excluded.attempts,
                error_at = excluded.error_at, error = excluded.error",
        )
        .bind(zone_id)
        .bind(&submission.wanted)
        .bind(&submission.via)
        .bind(submission.submitted_at)
        .bind(submission.attempts)
        .bind(submission.error_at)
        .bind(&submission.error)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut tx, Some(zone_id), event).await?;
        tx.commit().await?;
        Ok(())
    }
}
