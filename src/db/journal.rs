//! The journal: each published version's difference from the version
//! published before it, stored in the transaction that records the
//! publication (`commit_run`), so that a version is in the journal iff
//! its publication is committed.
//!
//! Per zone the journal is one unbroken chain of serials ending at the
//! version last committed. When a publication comes without a diff (the
//! first one, or one whose previous version could not be read), or with a
//! diff that does not start at the journal's last serial (the output was
//! replaced behind signet's back, or a publication was not committed),
//! the older entries are deleted and the chain starts again: IXFR for a
//! serial the chain no longer reaches falls back to AXFR (RFC 1995 §4),
//! never to a difference that does not lead to the version served. Why
//! the journal is in the database and not beside the output:
//! ARCHITECTURE.md §3, "The journal".

use sqlx::{Any, Row as _, Transaction};

use super::{Database, Result};
use crate::policy::JournalPolicy;
use crate::zone::diff::EncodedDiff;

/// A published version's difference from the one before, and the bounds
/// of the zone's journal.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// The difference, encoded.
    pub diff: EncodedDiff,
    /// How much journal the zone keeps (its policy's `[journal]`).
    pub bounds: JournalPolicy,
}

/// One version in the journal, without its difference.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct JournalVersion {
    /// The serial it starts from.
    pub serial_from: i64,
    /// The serial it leads to (the version's own).
    pub serial_to: i64,
    /// When it was published (the run's `now`).
    pub published_at: i64,
    /// Records removed (the old SOA among them).
    pub removed: i64,
    /// Records added (the new SOA among them).
    pub added: i64,
    /// Size of the encoded difference.
    pub bytes: i64,
    /// The run that published it.
    pub run_id: Option<i64>,
}

/// A zone's journal in figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct JournalSummary {
    /// Versions kept.
    pub versions: i64,
    /// Their encoded size.
    pub bytes: i64,
    /// The oldest serial the chain starts from: IXFR reaches back to it.
    pub oldest_serial: Option<i64>,
    /// The newest serial it leads to.
    pub newest_serial: Option<i64>,
}

/// The columns of a [`JournalVersion`], then `$tail` (a literal, so that
/// the query stays a static string).
macro_rules! version_select {
    ($tail:literal) => {
        concat!("SELECT serial_from, serial_to, published_at, removed, added, bytes, run_id", $tail)
    };
}

/// Records a publication's difference (or the lack of one) inside the
/// publication's transaction, and keeps the journal within its bounds.
pub(super) async fn record(
    tx: &mut Transaction<'_, Any>,
    zone_id: i64,
    run_id: i64,
    at: i64,
    entry: Option<&JournalEntry>,
) -> Result<()> {
    let Some(JournalEntry { diff, bounds }) = entry else {
        return clear(tx, zone_id).await;
    };
    let last: Option<i64> =
        sqlx::query_scalar("SELECT serial_to FROM journal WHERE zone_id = $1 ORDER BY id DESC LIMIT 1")
            .bind(zone_id)
            .fetch_optional(&mut **tx)
            .await?;
    if last.is_some_and(|last| last != i64::from(diff.old_serial)) {
        clear(tx, zone_id).await?;
    }
    sqlx::query(
        "INSERT INTO journal (zone_id, run_id, serial_from, serial_to, published_at, removed, added, bytes, diff)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(zone_id)
    .bind(run_id)
    .bind(i64::from(diff.old_serial))
    .bind(i64::from(diff.new_serial))
    .bind(at)
    .bind(diff.removed as i64)
    .bind(diff.added as i64)
    .bind(diff.bytes.len() as i64)
    .bind(&diff.bytes)
    .execute(&mut **tx)
    .await?;
    prune(tx, zone_id, bounds).await
}

/// The chain starts again: nothing older leads to the version published.
async fn clear(tx: &mut Transaction<'_, Any>, zone_id: i64) -> Result<()> {
    sqlx::query("DELETE FROM journal WHERE zone_id = $1").bind(zone_id).execute(&mut **tx).await?;
    Ok(())
}

/// Deletes the oldest versions until at most `max-versions` of at most
/// `max-size` bytes together remain (a version larger than `max-size` on
/// its own is not kept either).
async fn prune(tx: &mut Transaction<'_, Any>, zone_id: i64, bounds: &JournalPolicy) -> Result<()> {
    let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT id, bytes FROM journal WHERE zone_id = $1 ORDER BY id DESC")
        .bind(zone_id)
        .fetch_all(&mut **tx)
        .await?;
    let (mut kept, mut total) = (0u64, 0u64);
    for (id, bytes) in rows {
        let bytes = bytes.max(0) as u64;
        if kept >= u64::from(bounds.max_versions) || total + bytes > bounds.max_size {
            sqlx::query("DELETE FROM journal WHERE zone_id = $1 AND id <= $2")
                .bind(zone_id)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            break;
        }
        kept += 1;
        total += bytes;
    }
    Ok(())
}

impl Database {
    /// The zone's journal, oldest version first.
    pub async fn journal(&self, zone_id: i64) -> Result<Vec<JournalVersion>> {
        let sql = version_select!(" FROM journal WHERE zone_id = $1 ORDER BY id");
        Ok(sqlx::query_as::<_, JournalVersion>(sql).bind(zone_id).fetch_all(&self.pool).await?)
    }

    /// The zone's journal in figures.
    pub async fn journal_summary(&self, zone_id: i64) -> Result<JournalSummary> {
        let row = sqlx::query(
            "SELECT count(*), CAST(COALESCE(sum(bytes), 0) AS BIGINT),
                    (SELECT serial_from FROM journal WHERE zone_id = $1 ORDER BY id LIMIT 1),
                    (SELECT serial_to FROM journal WHERE zone_id = $1 ORDER BY id DESC LIMIT 1)
             FROM journal WHERE zone_id = $1",
        )
        .bind(zone_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(JournalSummary {
            versions: row.get(0),
            bytes: row.get(1),
            oldest_serial: row.get(2),
            newest_serial: row.get(3),
        })
    }

    /// The version of the zone with serial `serial` (the newest version if
    /// None) and its encoded difference from the one before, if the
    /// journal has it.
    pub async fn journal_diff(&self, zone_id: i64, serial: Option<u32>) -> Result<Option<(JournalVersion, Vec<u8>)>> {
        let sql = version_select!(
            ", diff FROM journal WHERE zone_id = $1 AND ($2 IS NULL OR serial_to = $2) ORDER BY id DESC LIMIT 1"
        );
        let serial = serial.map(i64::from);
        let row = sqlx::query(sql).bind(zone_id).bind(serial).fetch_optional(&self.pool).await?;
        row.map(|row| version_and_diff(&row)).transpose()
    }

    /// The differences that lead from serial `serial` to the newest
    /// version, oldest first, for IXFR: empty if `serial` is the newest;
    /// None if the journal does not reach back to `serial` (serve the
    /// whole zone instead).
    pub async fn journal_since(&self, zone_id: i64, serial: u32) -> Result<Option<Vec<(JournalVersion, Vec<u8>)>>> {
        let chain: Vec<(i64, i64, i64)> =
            sqlx::query_as("SELECT id, serial_from, serial_to FROM journal WHERE zone_id = $1 ORDER BY id")
                .bind(zone_id)
                .fetch_all(&self.pool)
                .await?;
        let serial = i64::from(serial);
        if chain.last().is_some_and(|&(_, _, to)| to == serial) {
            return Ok(Some(Vec::new()));
        }
        let Some(&(first, _, _)) = chain.iter().find(|&&(_, from, _)| from == serial) else {
            return Ok(None);
        };
        let sql = version_select!(", diff FROM journal WHERE zone_id = $1 AND id >= $2 ORDER BY id");
        let rows = sqlx::query(sql).bind(zone_id).bind(first).fetch_all(&self.pool).await?;
        let versions = rows.iter().map(version_and_diff).collect::<Result<Vec<_>>>()?;
        let unbroken = versions.windows(2).all(|w| w[0].0.serial_to == w[1].0.serial_from);
        Ok(unbroken.then_some(versions))
    }
}

fn version_and_diff(row: &sqlx::any::AnyRow) -> Result<(JournalVersion, Vec<u8>)> {
    use sqlx::FromRow as _;
    Ok((JournalVersion::from_row(row)?, row.try_get("diff")?))
}

#[cfg(test)]
mod tests;
