//! The gate's signature memo as stored: one blob per zone, written only in
//! the commit of the publication it describes, and the times of the last
//! full verification and of an operator's request for one. The blob is
//! opaque here: `verify::SignatureMemo` reads and checks it.

use sqlx::{Any, Transaction};

use super::{Database, Result};
use crate::zone::Name;

/// What a published run leaves of the gate's memo, written in its commit.
#[derive(Debug, Clone, Copy, Default)]
pub struct GateMemoCommit<'a> {
    /// What becomes of the stored memo.
    pub memo: MemoBlob<'a>,
    /// The gate verified every signature with crypto (no memo used): the
    /// last full verification becomes this run's time.
    pub full: bool,
    /// The full-verification request the run saw when it started; a full
    /// run clears it, unless a newer one came in meanwhile.
    pub asked_at: Option<i64>,
}

/// The stored memo a publication leaves.
#[derive(Debug, Clone, Copy, Default)]
pub enum MemoBlob<'a> {
    /// None: the zone keeps no memo (off, or over the cap), and a stored
    /// one is dropped with the publication it described.
    #[default]
    None,
    /// The memo the gate collected (`SignatureMemo::to_bytes`) and its
    /// entry count.
    Store(&'a [u8], u64),
    /// The stored memo stays until [`Database::store_gate_memo`] writes
    /// the new one: a service writes it after serving the version, off
    /// the path to the secondaries. A stored memo of an older version is
    /// still a memo: every digest in it was verified, it only misses more.
    Later,
}

/// The stored memo's description, without its blob (`signet status`).
#[derive(Debug, Clone, Copy, sqlx::FromRow, serde::Serialize)]
pub struct GateMemoInfo {
    /// The serial of the publication it describes.
    pub serial: Option<i64>,
    /// When that run was.
    pub made_at: i64,
    /// Digests in it.
    pub entries: i64,
}

impl Database {
    /// The zone's stored memo, as stored (`None`: there is none).
    pub async fn gate_memo(&self, zone_id: i64) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar("SELECT memo FROM gate_memos WHERE zone_id = $1")
            .bind(zone_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// What the zone's stored memo describes, without reading it.
    pub async fn gate_memo_info(&self, zone_id: i64) -> Result<Option<GateMemoInfo>> {
        Ok(sqlx::query_as("SELECT serial, made_at, entries FROM gate_memos WHERE zone_id = $1")
            .bind(zone_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Writes the memo of the publication of `serial` at `at`, after its
    /// commit ([`MemoBlob::Later`]).
    /// Fenced like a run's commit.
    pub async fn store_gate_memo(
        &self,
        zone_id: i64,
        at: i64,
        serial: u32,
        blob: MemoBlob<'_>,
        fence: Option<&super::Fence>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        super::leases::check_fence(self, &mut tx, zone_id, fence).await?;
        write_blob(&mut tx, zone_id, at, Some(serial), blob).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Asks the next run of the zone to verify every signature with crypto
    /// (`signet zone reload --full-verify`), and a running service to run
    /// it now (a reload).
    pub async fn request_full_verification(&self, name: &Name, now: i64) -> Result<()> {
        let zone = self.zone(name).await?;
        sqlx::query("UPDATE zones SET full_verify_asked_at = $1, reload_at = $1 WHERE id = $2")
            .bind(now)
            .bind(zone.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Writes the memo part of a published run's commit, inside its
/// transaction: the new memo replaces the old one (or none is kept), and
/// a full verification is recorded.
pub(super) async fn commit(
    tx: &mut Transaction<'_, Any>,
    zone_id: i64,
    at: i64,
    serial: Option<u32>,
    memo: &GateMemoCommit<'_>,
) -> Result<()> {
    write_blob(tx, zone_id, at, serial, memo.memo).await?;
    if memo.full {
        sqlx::query(
            "UPDATE zones SET full_verified_at = $1,
                 full_verify_asked_at = CASE WHEN full_verify_asked_at IS NOT DISTINCT FROM $2 THEN NULL ELSE full_verify_asked_at END
             WHERE id = $3",
        )
        .bind(at)
        .bind(memo.asked_at)
        .bind(zone_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Stores `blob` as the zone's memo, of the publication of `serial` at
/// `at` ([`MemoBlob::Later`] leaves the stored one).
async fn write_blob(
    tx: &mut Transaction<'_, Any>,
    zone_id: i64,
    at: i64,
    serial: Option<u32>,
    blob: MemoBlob<'_>,
) -> Result<()> {
    match blob {
        MemoBlob::Store(blob, entries) => {
            sqlx::query(
                "INSERT INTO gate_memos (zone_id, serial, made_at, entries, memo) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (zone_id) DO UPDATE SET serial = excluded.serial, made_at = excluded.made_at,
                    entries = excluded.entries, memo = excluded.memo",
            )
            .bind(zone_id)
            .bind(serial.map(i64::from))
            .bind(at)
            .bind(i64::try_from(entries).unwrap_or(i64::MAX))
            .bind(blob)
            .execute(&mut **tx)
            .await?;
        }
        MemoBlob::None => {
            sqlx::query("DELETE FROM gate_memos WHERE zone_id = $1").bind(zone_id).execute(&mut **tx).await?;
        }
        MemoBlob::Later => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{DbError, RunCommit, RunRecord, RunResult};

    use crate::db::scratch::database;

    /// Commits a published run of `serial` at `at` with `memo`.
    async fn publish(db: &Database, zone: i64, serial: u32, at: i64, memo: GateMemoCommit<'_>) {
        let run = RunRecord { at, serial: Some(serial), result: RunResult::Published, ..RunRecord::default() };
        let commit = RunCommit { memo, ..RunCommit::publication(run) };
        db.commit_run(zone, &commit).await.expect("commit");
    }

    #[tokio::test]
    async fn the_memo_is_stored_replaced_and_dropped_with_its_publication() {
        let (db, _, zone, _dir) = database().await;
        assert_eq!(db.gate_memo(zone).await.expect("read"), None);
        let first = GateMemoCommit { memo: MemoBlob::Store(b"first", 3), full: true, asked_at: None };
        publish(&db, zone, 1, 100, first).await;
        assert_eq!(db.gate_memo(zone).await.expect("read").as_deref(), Some(&b"first"[..]));
        let info = db.gate_memo_info(zone).await.expect("info").expect("stored");
        assert_eq!((info.serial, info.made_at, info.entries), (Some(1), 100, 3));
        publish(&db, zone, 2, 200, GateMemoCommit { memo: MemoBlob::Store(b"second", 5), ..first }).await;
        assert_eq!(db.gate_memo(zone).await.expect("read").as_deref(), Some(&b"second"[..]));
        publish(&db, zone, 3, 300, GateMemoCommit::default()).await;
        assert_eq!(db.gate_memo(zone).await.expect("read"), None, "no memo kept: the old one goes");
        assert!(db.gate_memo_info(zone).await.expect("info").is_none());
    }

    #[tokio::test]
    async fn a_memo_written_later_replaces_the_stored_one_only_then() {
        let (db, _, zone, _dir) = database().await;
        let first = GateMemoCommit { memo: MemoBlob::Store(b"first", 3), full: true, asked_at: None };
        publish(&db, zone, 1, 100, first).await;
        publish(&db, zone, 2, 200, GateMemoCommit { memo: MemoBlob::Later, ..first }).await;
        let info = db.gate_memo_info(zone).await.expect("info").expect("stored");
        assert_eq!((info.serial, info.made_at), (Some(1), 100), "the commit leaves the stored memo");
        db.store_gate_memo(zone, 200, 2, MemoBlob::Store(b"second", 5), None).await.expect("store");
        assert_eq!(db.gate_memo(zone).await.expect("read").as_deref(), Some(&b"second"[..]));
        let info = db.gate_memo_info(zone).await.expect("info").expect("stored");
        assert_eq!((info.serial, info.made_at, info.entries), (Some(2), 200, 5));
        db.store_gate_memo(zone, 300, 3, MemoBlob::None, None).await.expect("store");
        assert_eq!(db.gate_memo(zone).await.expect("read"), None);
    }

    #[tokio::test]
    async fn a_full_run_records_its_time_and_clears_only_the_request_it_saw() {
        let (db, name, zone, _dir) = database().await;
        db.request_full_verification(&name, 50).await.expect("request");
        let row = db.zone(&name).await.expect("zone");
        assert_eq!((row.full_verify_asked_at, row.reload_at, row.full_verified_at), (Some(50), Some(50), None));
        // A run that used the memo answers nothing.
        publish(&db, zone, 1, 100, GateMemoCommit { memo: MemoBlob::None, full: false, asked_at: Some(50) }).await;
        assert_eq!(db.zone(&name).await.expect("zone").full_verify_asked_at, Some(50));
        // A full run that saw the request clears it.
        publish(&db, zone, 2, 200, GateMemoCommit { memo: MemoBlob::None, full: true, asked_at: Some(50) }).await;
        let row = db.zone(&name).await.expect("zone");
        assert_eq!((row.full_verify_asked_at, row.full_verified_at), (None, Some(200)));
        // A request made while a full run ran survives it.
        db.request_full_verification(&name, 250).await.expect("request");
        publish(&db, zone, 3, 300, GateMemoCommit { memo: MemoBlob::None, full: true, asked_at: None }).await;
        let row = db.zone(&name).await.expect("zone");
        assert_eq!((row.full_verify_asked_at, row.full_verified_at), (Some(250), Some(300)));
        let missing = Name::from_text("missing.", None).expect("name");
        assert!(matches!(db.request_full_verification(&missing, 1).await, Err(DbError::NotFound { .. })));
    }
}
