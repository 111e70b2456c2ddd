//! Signing runs: the one transaction a published run commits, the rows
//! of runs that published nothing, and what status reads of them.

use sqlx::{Any, Row as _, Transaction};

use super::events::{Actor, Event, EventKind, insert_event};
use super::leases::check_fence;
use super::{Database, Fence, GateMemoCommit, JournalEntry, Result, RunRow, journal, memo, rows};
use crate::rollover::Key;

/// How a signing run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunResult {
    /// The zone went through the gate and is in place.
    Published,
    /// The gate refused the zone: nothing published.
    Refused,
    /// The run failed before the gate's verdict: nothing published.
    #[default]
    Failed,
}

impl RunResult {
    /// `published`, `refused` or `failed`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Published => "published",
            RunResult::Refused => "refused",
            RunResult::Failed => "failed",
        }
    }
}

/// A signing run, as recorded.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    /// The time of the run.
    pub at: i64,
    /// The serial published (or attempted).
    pub serial: Option<u32>,
    /// How it ended.
    pub result: RunResult,
    /// RRSIGs made.
    pub rrsigs: u64,
    /// Records written.
    pub records: u64,
    /// Gate errors.
    pub errors: u64,
    /// Gate warnings.
    pub warnings: u64,
    /// The gate's findings (JSON) when refused.
    pub findings: Option<String>,
    /// A message: the error, or a summary.
    pub message: String,
    /// Wall seconds.
    pub seconds: f64,
    /// The input's SOA serial, if the input was read.
    pub input_serial: Option<u32>,
}

/// What a published run leaves for `signet status` and the service.
#[derive(Debug, Clone, Default)]
pub struct PublishedZone {
    /// SHA-256 of the input file the run read.
    pub input_digest: Vec<u8>,
    /// The earliest RRSIG expiration in the published zone, as the gate
    /// read it.
    pub signatures_expire: Option<i64>,
    /// Why the zone is next due (`next_run_at`).
    pub next_run_why: String,
    /// The output's stamp right after publication
    /// ([`crate::publish::Stamp`]).
    pub output_stamp: Option<String>,
}

/// Everything a published run changes, written in one transaction.
#[derive(Debug)]
pub struct RunCommit<'a> {
    /// The keys after the machine's step.
    pub keys: &'a [Key],
    /// What the step did (transitions, DS requests, keys removed), one
    /// audit event each, in order.
    pub events: &'a [Event],
    /// Keys done with: marked removed.
    pub removed: &'a [i64],
    /// Observations taken in.
    pub consumed: &'a [i64],
    /// When the machine wants to run again.
    pub next_run_at: Option<i64>,
    /// The run itself.
    pub run: RunRecord,
    /// The published zone, as status shows it.
    pub published: PublishedZone,
    /// The published version's difference from the one before, for the
    /// journal; None when the version before is unknown (the first
    /// publication, or a previous output that could not be read), which
    /// starts the zone's journal afresh (`db::journal`).
    pub diff: Option<JournalEntry>,
    /// The gate's memo for the next run, and whether this one was full.
    pub memo: GateMemoCommit<'a>,
    /// The lease the run holds the zone by (signers sharing the
    /// database): the commit is made only if it is still the run's.
    pub fence: Option<&'a Fence>,
}

impl RunCommit<'_> {
    /// The commit of `run` publishing with no key, event, journal or memo
    /// change: the base that tests and benchmarks fill in.
    pub fn publication(run: RunRecord) -> RunCommit<'static> {
        RunCommit {
            keys: &[],
            events: &[],
            removed: &[],
            consumed: &[],
            next_run_at: None,
            run,
            published: PublishedZone::default(),
            diff: None,
            memo: GateMemoCommit::default(),
            fence: None,
        }
    }
}

impl Database {
    /// Writes everything a published run changed, in one transaction: key
    /// states, removed keys, consumed observations, the run, an audit row
    /// per transition, the version's difference in the journal (pruned to
    /// its bounds), the zone's serial and next wake-up, and the gate's
    /// memo of the version (`db::memo`).
    pub async fn commit_run(&self, zone_id: i64, commit: &RunCommit<'_>) -> Result<()> {
        let at = commit.run.at;
        let mut tx = self.write().await?;
        check_fence(self, &mut tx, zone_id, commit.fence).await?;
        for key in commit.keys {
            rows::update_key(&mut tx, key).await?;
        }
        for event in commit.events {
            insert_event(&mut tx, Some(zone_id), event).await?;
        }
        mark_removed_and_consumed(&mut tx, commit.removed, commit.consumed, at).await?;
        let run_id = insert_run(&mut tx, zone_id, &commit.run).await?;
        journal::record(&mut tx, zone_id, run_id, at, commit.diff.as_ref()).await?;
        let published = &commit.published;
        sqlx::query(
            "UPDATE zones SET last_serial = $1, last_run_at = $2, next_run_at = $3, next_run_why = $4, input_digest = $5,
             input_serial = $6, sig_expires_at = $7, output_stamp = $8 WHERE id = $9",
        )
        .bind(commit.run.serial.map(i64::from))
        .bind(at)
        .bind(commit.next_run_at)
        .bind(&published.next_run_why)
        .bind(&published.input_digest)
        .bind(commit.run.input_serial.map(i64::from))
        .bind(published.signatures_expire)
        .bind(&published.output_stamp)
        .bind(zone_id)
        .execute(&mut *tx)
        .await?;
        memo::commit(&mut tx, zone_id, at, commit.run.serial, &commit.memo).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a run that published nothing (refused by the gate, or
    /// failed); key states stay as they were.
    /// Fenced like a commit.
    pub async fn record_unpublished_run(&self, zone_id: i64, run: &RunRecord, fence: Option<&Fence>) -> Result<()> {
        let mut tx = self.write().await?;
        check_fence(self, &mut tx, zone_id, fence).await?;
        insert_run(&mut tx, zone_id, run).await?;
        sqlx::query(
            "UPDATE zones SET last_run_at = CASE WHEN last_run_at > $1 THEN last_run_at ELSE $1 END WHERE id = $2",
        )
        .bind(run.at)
        .bind(zone_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The last run of the zone that did not publish, if any.
    pub async fn last_failure(&self, zone_id: i64) -> Result<Option<RunRow>> {
        Ok(sqlx::query_as::<_, RunRow>(
            "SELECT at, serial, result, rrsigs, errors, message, seconds, input_serial FROM runs
             WHERE zone_id = $1 AND result != 'published' ORDER BY id DESC LIMIT 1",
        )
        .bind(zone_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// When the zone was last published (not merely run).
    pub async fn last_publication(&self, zone_id: i64) -> Result<Option<i64>> {
        Ok(sqlx::query("SELECT max(at) FROM runs WHERE zone_id = $1 AND result = 'published'")
            .bind(zone_id)
            .fetch_one(&self.pool)
            .await?
            .get(0))
    }

    /// How many runs of the zone failed or were refused since its last
    /// publication.
    pub async fn consecutive_failures(&self, zone_id: i64) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT count(*) FROM runs WHERE zone_id = $1 AND id > COALESCE(
                 (SELECT max(id) FROM runs WHERE zone_id = $1 AND result = 'published'), 0)",
        )
        .bind(zone_id)
        .fetch_one(&self.pool)
        .await?
        .get(0))
    }

    /// The newest runs of a zone, newest first.
    pub async fn runs(&self, zone_id: i64, limit: i64) -> Result<Vec<RunRow>> {
        Ok(sqlx::query_as::<_, RunRow>(
            "SELECT at, serial, result, rrsigs, errors, message, seconds, input_serial FROM runs WHERE zone_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(zone_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Inserts a run row and its audit event; returns the run's id.
async fn insert_run(tx: &mut Transaction<'_, Any>, zone_id: i64, run: &RunRecord) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO runs (zone_id, at, serial, result, rrsigs, records, errors, warnings, findings, message, seconds,
         input_serial) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(zone_id)
    .bind(run.at)
    .bind(run.serial.map(i64::from))
    .bind(run.result.as_str())
    .bind(run.rrsigs as i64)
    .bind(run.records as i64)
    .bind(run.errors as i64)
    .bind(run.warnings as i64)
    .bind(&run.findings)
    .bind(&run.message)
    .bind(run.seconds)
    .bind(run.input_serial.map(i64::from))
    .fetch_one(&mut **tx)
    .await?;
    let message = format!(
        "run {}: serial {}, {}",
        run.result.as_str(),
        run.serial.map_or("-".to_owned(), |s| s.to_string()),
        run.message
    );
    insert_event(tx, Some(zone_id), &Event::note(run.at, Actor::Machine, EventKind::Run, None, message)).await?;
    Ok(id)
}

/// Marks keys removed (hidden everywhere, done with) and observations
/// taken in, at `at`: what a run's commit and an offline step's write.
pub(super) async fn mark_removed_and_consumed(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    removed: &[i64],
    consumed: &[i64],
    at: i64,
) -> Result<()> {
    for &key in removed {
        sqlx::query("UPDATE keys SET removed_at = $1 WHERE id = $2").bind(at).bind(key).execute(&mut **tx).await?;
    }
    for &observation in consumed {
        sqlx::query("UPDATE observations SET consumed_at = $1 WHERE id = $2")
            .bind(at)
            .bind(observation)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
