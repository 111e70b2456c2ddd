//! Zones: the managed zones, their paths and what the service watches of
//! them.

use sqlx::Row as _;

use super::events::{Actor, Event, EventKind, insert_event};
use super::{Database, DbError, Remote, Result, StoredKey, ZoneRow, ZoneWatch, transfers};
use crate::policy::Policy;
use crate::rollover::Observation;
use crate::zone::Name;

/// A zone with its policy's name, then `$tail` (a literal, so that the
/// query stays a static string).
macro_rules! zone_select {
    ($tail:literal) => {
        concat!(
            "SELECT z.id, z.name, z.policy_id, p.name AS policy_name, z.input_path, z.output_path, z.nsec3_salt, ",
            "z.last_serial, z.last_run_at, z.next_run_at, z.created_at, z.next_run_why, z.input_digest, z.input_serial, ",
            "z.sig_expires_at, z.reload_at, z.retry_at, z.full_verified_at, z.full_verify_asked_at, z.output_stamp ",
            "FROM zones z JOIN policies p ON p.id = z.policy_id ",
            $tail
        )
    };
}

/// One zone as a managed run needs it, read at once: the zone, its policy
/// (parsed), its keys and the operator's requests not yet taken in.
#[derive(Debug, Clone)]
pub struct ZoneSnapshot {
    /// The zone's row.
    pub zone: ZoneRow,
    /// Its policy, parsed and checked.
    pub policy: Policy,
    /// Its keys not yet removed, oldest first.
    pub keys: Vec<StoredKey>,
    /// Observations not yet taken in, oldest first, with their ids.
    pub pending: Vec<(i64, Observation)>,
    /// The lease the run holds the zone by, when signers share the
    /// database (set by the run once it holds the zone): every write of
    /// the run is fenced with it.
    pub fence: Option<super::Fence>,
}

/// How a zone's name is stored: absolute, lowercase (the one spelling
/// every lookup uses).
pub fn zone_key(name: &Name) -> String {
    name.to_string().to_ascii_lowercase()
}

/// A zone to add.
#[derive(Debug)]
pub struct NewZone<'a> {
    /// The apex.
    pub name: &'a Name,
    /// The policy's name.
    pub policy: &'a str,
    /// The unsigned zone file.
    pub input: &'a str,
    /// The signed zone file.
    pub output: &'a str,
    /// The NSEC3 salt to use.
    pub salt: &'a [u8],
    /// The primaries its input is transferred from, and its secondaries.
    pub remotes: &'a [Remote],
}

impl Database {
    /// The ids of the zones under management, oldest first.
    pub async fn zone_ids(&self) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar("SELECT id FROM zones WHERE removed_at IS NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Everything a managed run needs of zone `name`.
    pub async fn snapshot(&self, name: &Name) -> Result<ZoneSnapshot> {
        let zone = self.zone(name).await?;
        let policy = self.parsed_policy(zone.policy_id).await?;
        let keys = self.keys(zone.id).await?;
        let pending = self.pending_observations(zone.id).await?;
        Ok(ZoneSnapshot { zone, policy, keys, pending, fence: None })
    }

    /// Adds a zone under a policy.
    pub async fn add_zone(&self, zone: &NewZone<'_>, now: i64) -> Result<i64> {
        let policy = self.policy(zone.policy).await?;
        let mut tx = self.write().await?;
        let name = zone_key(zone.name);
        let exists = sqlx::query("SELECT 1 FROM zones WHERE name = $1").bind(&name).fetch_optional(&mut *tx).await?;
        if exists.is_some() {
            return Err(DbError::Exists { what: "zone", name });
        }
        let taken: Option<(String,)> =
            sqlx::query_as("SELECT name FROM zones WHERE output_path = $1 AND removed_at IS NULL")
                .bind(zone.output)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((other,)) = taken {
            return Err(DbError::OutputTaken { zone: other, output: zone.output.to_owned() });
        }
        let id: i64 = sqlx::query(
            "INSERT INTO zones (name, policy_id, input_path, output_path, nsec3_salt, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&name)
        .bind(policy.id)
        .bind(zone.input)
        .bind(zone.output)
        .bind(zone.salt)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        for remote in zone.remotes {
            transfers::insert_remote(&mut tx, id, remote).await?;
        }
        let message = format!("zone {name} added under policy {}", policy.name);
        insert_event(&mut tx, Some(id), &Event::note(now, Actor::Operator, EventKind::ZoneAdded, None, message))
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Every zone, by name.
    pub async fn zones(&self) -> Result<Vec<ZoneRow>> {
        Ok(sqlx::query_as::<_, ZoneRow>(zone_select!("WHERE z.removed_at IS NULL ORDER BY z.name"))
            .fetch_all(&self.pool)
            .await?)
    }

    /// A zone by name (any case).
    pub async fn zone(&self, name: &Name) -> Result<ZoneRow> {
        let key = zone_key(name);
        sqlx::query_as::<_, ZoneRow>(zone_select!("WHERE z.name = $1"))
            .bind(&key)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(DbError::NotFound { what: "zone", name: key })
    }

    /// Takes a zone out of management, keeping its history: its row is
    /// renamed `NAME#removed-ID`, so that the name can be added again.
    /// Refused while a process signs it. Returns its keys' URIs (their
    /// material stays in the stores).
    pub async fn remove_zone(&self, name: &Name, now: i64) -> Result<Vec<String>> {
        let zone = self.zone(name).await?;
        let pid = std::process::id();
        self.lock_zone(&zone, pid, now).await?;
        let uris: Vec<String> = self.keys(zone.id).await?.into_iter().map(|k| k.uri).collect();
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE zones SET removed_at = $1, name = name || '#removed-' || id, next_run_at = NULL,
                 lock_pid = NULL, lock_since = NULL, lock_started = NULL WHERE id = $2",
        )
        .bind(now)
        .bind(zone.id)
        .execute(&mut *tx)
        .await?;
        // Nothing will serve the zone's differences again; they may be large.
        sqlx::query("DELETE FROM journal WHERE zone_id = $1").bind(zone.id).execute(&mut *tx).await?;
        transfers::forget_zone(&mut tx, zone.id).await?;
        let why = format!("zone {} removed from management; {} key(s) left in their stores", zone.name, uris.len());
        insert_event(&mut tx, Some(zone.id), &Event::note(now, Actor::Operator, EventKind::ZoneRemoved, None, why))
            .await?;
        tx.commit().await?;
        Ok(uris)
    }

    /// Puts the zone under another stored policy (`signet zone
    /// set-policy`): its next run follows it, e.g. into going insecure
    /// (`insecure = true`) and back. Returns the name of the policy it
    /// was under.
    pub async fn set_zone_policy(&self, name: &Name, policy: &str, now: i64) -> Result<String> {
        let zone = self.zone(name).await?;
        let new = self.policy(policy).await?;
        let mut tx = self.write().await?;
        sqlx::query("UPDATE zones SET policy_id = $1, next_run_at = $2 WHERE id = $3")
            .bind(new.id)
            .bind(now)
            .bind(zone.id)
            .execute(&mut *tx)
            .await?;
        let why = format!("zone {} moved from policy {} to policy {}", zone.name, zone.policy_name, new.name);
        insert_event(&mut tx, Some(zone.id), &Event::note(now, Actor::Operator, EventKind::PolicyChange, None, why))
            .await?;
        tx.commit().await?;
        Ok(zone.policy_name)
    }

    /// Asks the service to read the zone's input again (`signet zone
    /// reload`).
    pub async fn request_reload(&self, name: &Name, now: i64) -> Result<()> {
        let zone = self.zone(name).await?;
        sqlx::query("UPDATE zones SET reload_at = $1 WHERE id = $2")
            .bind(now)
            .bind(zone.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records when the service tries a failing zone again (None: the
    /// zone is not failing).
    pub async fn set_retry(&self, zone_id: i64, at: Option<i64>) -> Result<()> {
        sqlx::query("UPDATE zones SET retry_at = $1 WHERE id = $2").bind(at).bind(zone_id).execute(&self.pool).await?;
        Ok(())
    }

    /// Records the stamp of the output file written for the version
    /// published under `serial`, after the publication (a service writes
    /// its file after the secondaries have it). Nothing is recorded if a
    /// newer version was published meanwhile.
    pub async fn record_output_written(&self, zone_id: i64, serial: u32, stamp: &str) -> Result<()> {
        sqlx::query("UPDATE zones SET output_stamp = $1 WHERE id = $2 AND last_serial = $3")
            .bind(stamp)
            .bind(zone_id)
            .bind(i64::from(serial))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records the digest of the input file written for the input of
    /// serial `input_serial` (a service keeps a transferred zone in memory
    /// and writes its copy after the publication). Nothing is recorded if
    /// the last publication read another input.
    pub async fn record_input_written(&self, zone_id: i64, input_serial: u32, digest: &[u8]) -> Result<()> {
        sqlx::query("UPDATE zones SET input_digest = $1 WHERE id = $2 AND input_serial = $3")
            .bind(digest)
            .bind(zone_id)
            .bind(i64::from(input_serial))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// What the service watches of every zone, read once per poll: a
    /// change in a row is an operator command landing.
    pub async fn zone_watch(&self) -> Result<Vec<ZoneWatch>> {
        Ok(sqlx::query_as::<_, ZoneWatch>(
            "SELECT z.id, z.name, z.input_path, z.policy_id, p.imported_at AS policy_imported_at, z.reload_at,
                    z.next_run_at, z.last_run_at,
                    (SELECT max(o.id) FROM observations o WHERE o.zone_id = z.id AND o.consumed_at IS NULL)
                        AS pending_request,
                    (SELECT max(r.id) FROM reviews r WHERE r.zone_id = z.id AND r.decided_by = 'operator')
                        AS review_decision
             FROM zones z JOIN policies p ON p.id = z.policy_id WHERE z.removed_at IS NULL ORDER BY z.name",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
