//! The gate's signature memo as stored: one blob per zone, written only in
//! the commit of the publication it describes, and the times of the last
//! full verification and of an operator's request for one. The blob is
//! opaque here: `verify::SignatureMemo` reads and checks it.

use sqlx::{Sqlite, Transaction};

use super::{Database, Result};
use crate::zone::Name;

/// What a published run leaves of the gate's memo, written in its commit.
#[derive(Debug, Clone, Copy, Default)]
pub struct GateMemoCommit<'a> {
    /// The memo the gate collected (`SignatureMemo::to_bytes`) and its
    /// entry count. `None`: the zone keeps no memo (off, or over the cap),
    /// and a stored one is dropped with the publication it described.
    pub memo: Option<(&'a [u8], u64)>,
    /// The gate verified every signature with crypto (no memo used): the
    /// last full verification becomes this run's time.
    pub full: bool,
    /// The full-verification request the run saw when it started; a full
    /// run clears it, unless a newer one came in meanwhile.
    pub asked_at: Option<i64>,
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
        Ok(sqlx::query_scalar("SELECT memo FROM gate_memos WHERE zone_id = ?")
            .bind(zone_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// What the zone's stored memo describes, without reading it.
    pub async fn gate_memo_info(&self, zone_id: i64) -> Result<Option<GateMemoInfo>> {
        Ok(sqlx::query_as("SELECT serial, made_at, entries FROM gate_memos WHERE zone_id = ?")
            .bind(zone_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Asks the next run of the zone to verify every signature with crypto
    /// (`signet zone reload --full-verify`), and a running service to run
    /// it now (a reload).
    pub async fn request_full_verification(&self, name: &Name, now: i64) -> Result<()> {
        let zone = self.zone(name).await?;
        sqlx::query("UPDATE zones SET full_verify_asked_at = ?1, reload_at = ?1 WHERE id = ?2")
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
    tx: &mut Transaction<'_, Sqlite>,
    zone_id: i64,
    at: i64,
    serial: Option<u32>,
    memo: &GateMemoCommit<'_>,
) -> Result<()> {
    match memo.memo {
        Some((blob, entries)) => {
            sqlx::query(
                "INSERT OR REPLACE INTO gate_memos (zone_id, serial, made_at, entries, memo) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(zone_id)
            .bind(serial.map(i64::from))
            .bind(at)
            .bind(i64::try_from(entries).unwrap_or(i64::MAX))
            .bind(blob)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM gate_memos WHERE zone_id = ?").bind(zone_id).execute(&mut **tx).await?;
        }
    }
    if memo.full {
        sqlx::query(
            "UPDATE zones SET full_verified_at = ?1,
                 full_verify_asked_at = CASE WHEN full_verify_asked_at IS ?2 THEN NULL ELSE full_verify_asked_at END
             WHERE id = ?3",
        )
        .bind(at)
        .bind(memo.asked_at)
        .bind(zone_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
