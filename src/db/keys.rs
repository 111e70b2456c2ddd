//! Keys with their states, and the observations (operator requests,
//! parent checks) a run takes in about them.

use super::events::{Actor, Event, EventKind, insert_event};
use super::leases::{check_fence, check_held};
use super::{Database, Fence, Result, StoredKey, rows};
use crate::rollover::{Key, Observation};

impl Database {
    /// The zone's keys that are not yet removed, oldest first.
    pub async fn keys(&self, zone_id: i64) -> Result<Vec<StoredKey>> {
        let rows = sqlx::query_as::<_, rows::KeyRow>(
            "SELECT * FROM keys WHERE zone_id = $1 AND removed_at IS NULL ORDER BY id",
        )
        .bind(zone_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(rows::KeyRow::into_stored).collect()
    }

    /// Records a key just made in its key store (all records hidden); returns its id.
    /// Fenced: a run that lost the zone's lease records no key.
    pub async fn insert_key(
        &self,
        zone_id: i64,
        uri: &str,
        dnskey: &[u8],
        key: &Key,
        now: i64,
        fence: Option<&Fence>,
    ) -> Result<i64> {
        let mut tx = self.write().await?;
        check_fence(self, &mut tx, zone_id, fence).await?;
        let id: i64 = rows::insert_key(&mut tx, zone_id, uri, dnskey, key).await?;
        if let Some(predecessor) = key.predecessor {
            sqlx::query("UPDATE keys SET successor_id = $1 WHERE id = $2")
                .bind(id)
                .bind(predecessor)
                .execute(&mut *tx)
                .await?;
        }
        let replacing = key.predecessor.map(|p| format!(" to replace key {p}")).unwrap_or_default();
        let message = format!("{} key tag {} ({}) made{replacing}: {uri}", key.role, key.tag, key.algorithm);
        insert_event(
            &mut tx,
            Some(zone_id),
            &Event::note(now, Actor::Machine, EventKind::KeyCreated, Some(id), message),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Overwrites one key's states with those given, recording why (a
    /// dry-run's injected fault; managed runs write keys only through
    /// [`Database::commit_run`]).
    pub async fn inject_key_states(&self, zone_id: i64, key: &Key, event: &Event) -> Result<()> {
        let mut tx = self.write().await?;
        rows::update_key(&mut tx, key).await?;
        insert_event(&mut tx, Some(zone_id), event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Keys of the zone removed at or before `before` whose material is
    /// still in their stores: `(id, uri)`.
    pub async fn purgeable_keys(&self, zone_id: i64, before: i64) -> Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, uri FROM keys WHERE zone_id = $1 AND removed_at IS NOT NULL AND removed_at <= $2
             AND purged_at IS NULL ORDER BY id",
        )
        .bind(zone_id)
        .bind(before)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records that a removed key's material is destroyed.
    pub async fn mark_purged(&self, zone_id: i64, key_id: i64, event: &Event) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE keys SET purged_at = $1 WHERE id = $2 AND removed_at IS NOT NULL")
            .bind(event.time)
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        insert_event(&mut tx, Some(zone_id), event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records what the operator (or a parent check) reports, for the next
    /// run to take in, with its audit event. A parent check of a service
    /// sharing the state writes it only while `fence` holds (an operator's
    /// report is written whoever holds the zone).
    pub async fn observe(
        &self,
        zone_id: i64,
        observation: &Observation,
        event: &Event,
        fence: Option<&Fence>,
    ) -> Result<()> {
        let (kind, key, role) = rows::observation_columns(observation);
        let mut tx = self.write().await?;
        check_held(self, &mut tx, zone_id, fence).await?;
        sqlx::query("INSERT INTO observations (zone_id, key_id, kind, role, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(zone_id)
            .bind(key)
            .bind(kind)
            .bind(role)
            .bind(event.time)
            .execute(&mut *tx)
            .await?;
        insert_event(&mut tx, Some(zone_id), event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Observations not yet taken in by a run, oldest first, with their ids.
    pub async fn pending_observations(&self, zone_id: i64) -> Result<Vec<(i64, Observation)>> {
        let rows = sqlx::query(
            "SELECT id, kind, key_id, role FROM observations WHERE zone_id = $1 AND consumed_at IS NULL ORDER BY id",
        )
        .bind(zone_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::observation_from_row).collect()
    }
}
