//! Zone transfers in the database: TSIG keys by name (the secret stays in
//! its file, which the database only names), each zone's remotes, and
//! what the transfers in and out last did.

use sqlx::{Any, Transaction};

use super::{Actor, Database, DbError, Event, EventKind, Result, insert_event};
// What the transfers report is recorded as xfr's own events: db stores
// them, as it stores rollover's states.
use crate::xfr::store::{NotifyOutcome, TransferIn, TransferOut};

/// What a remote is to its zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteRole {
    /// A primary the zone's input is transferred from; its NOTIFY is
    /// accepted.
    Primary,
    /// A secondary: notified (if `notify`), allowed to transfer.
    Secondary,
    /// Another client allowed to transfer.
    Acl,
    /// An authoritative server of the parent, asked for the zone's DS.
    ParentAgent,
    /// A resolver the parent's name servers are found through (they are
    /// then asked as parent agents).
    ParentDiscovery,
    /// A validating resolver whose answer to the DS query (AD set) must
    /// agree with the agents'.
    ParentValidator,
    /// A server the DS RRset is updated at by RFC 2136.
    ParentUpdate,
    /// The zone's own source address for NOTIFY (one row per family).
    NotifySource,
    /// The zone's own source address for SOA queries, transfers in, the
    /// parent's checks and UPDATEs.
    TransferSource,
}

impl RemoteRole {
    /// Its name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteRole::Primary => "primary",
            RemoteRole::Secondary => "secondary",
            RemoteRole::Acl => "acl",
            RemoteRole::ParentAgent => "parent-agent",
            RemoteRole::ParentDiscovery => "parent-discovery",
            RemoteRole::ParentValidator => "parent-validator",
            RemoteRole::ParentUpdate => "parent-update",
            RemoteRole::NotifySource => "notify-source",
            RemoteRole::TransferSource => "transfer-source",
        }
    }

    /// Every role.
    pub const ALL: [RemoteRole; 9] = [
        RemoteRole::Primary,
        RemoteRole::Secondary,
        RemoteRole::Acl,
        RemoteRole::ParentAgent,
        RemoteRole::ParentDiscovery,
        RemoteRole::ParentValidator,
        RemoteRole::ParentUpdate,
        RemoteRole::NotifySource,
        RemoteRole::TransferSource,
    ];

    fn parse(text: &str) -> Option<RemoteRole> {
        RemoteRole::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// A remote that has to do with the parent.
    pub fn is_parent(self) -> bool {
        matches!(
            self,
            RemoteRole::ParentAgent
                | RemoteRole::ParentDiscovery
                | RemoteRole::ParentValidator
                | RemoteRole::ParentUpdate
        )
    }
}

/// One remote of a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// What it is to the zone.
    pub role: RemoteRole,
    /// `ADDR:PORT` for a primary or secondary, `ADDR/LEN` for an ACL
    /// entry; None: any address (an ACL entry by key alone).
    pub address: Option<String>,
    /// The TSIG key its messages are signed with (and must be).
    pub tsig_key: Option<String>,
    /// A secondary that is sent NOTIFY.
    pub notify: bool,
    /// A parent-update server: the parent zone updated (None: the zone's
    /// name less its first label).
    pub parent_zone: Option<String>,
}

impl Remote {
    /// A remote of `role` at `address`, signed with `tsig_key`.
    pub fn new(role: RemoteRole, address: Option<String>, tsig_key: Option<String>) -> Remote {
        Remote { role, address, tsig_key, notify: false, parent_zone: None }
    }
}

/// A TSIG key as the database knows it: no secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TsigKeyRow {
    /// The key's name (absolute, lowercase).
    pub name: String,
    /// Its algorithm (`hmac-sha256`).
    pub algorithm: String,
    /// The file that holds the secret.
    pub secret_path: String,
}

/// The last transfer of a zone's input from its primaries.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct TransferInState {
    /// The serial the primaries last answered.
    pub primary_serial: Option<i64>,
    /// When they were last asked.
    pub checked_at: Option<i64>,
    /// The last complete transfer: when.
    pub transfer_at: Option<i64>,
    /// Its serial.
    pub transfer_serial: Option<i64>,
    /// `axfr` or `ixfr`.
    pub transfer_kind: Option<String>,
    /// Records it carried.
    pub transfer_records: Option<i64>,
    /// Bytes it carried.
    pub transfer_bytes: Option<i64>,
    /// The last failure since the last success: when.
    pub error_at: Option<i64>,
    /// What failed.
    pub error: Option<String>,
}

/// What one client of a zone's transfers out last did.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct TransferOutState {
    /// The client's IP address.
    pub address: String,
    /// The last serial it acknowledged a NOTIFY for.
    pub notified_serial: Option<i64>,
    /// When.
    pub notify_acked_at: Option<i64>,
    /// Its last transfer: when.
    pub transfer_at: Option<i64>,
    /// The serial it got.
    pub transfer_serial: Option<i64>,
    /// For IXFR, the serial it had.
    pub transfer_from: Option<i64>,
    /// `axfr`, `ixfr`, or `up-to-date`.
    pub transfer_kind: Option<String>,
    /// The serial of the last NOTIFY sent to it (acknowledged or given
    /// up on).
    pub notify_serial: Option<i64>,
    /// When it was acknowledged or given up on.
    pub notify_at: Option<i64>,
    /// How many times it was sent.
    pub notify_tries: Option<i64>,
    /// What the secondary answered: its RCODE, and a TSIG error after a
    /// slash (`NOTAUTH/BADKEY`); None without an answer.
    pub notify_answer: Option<String>,
    /// Why it was given up on (None: acknowledged).
    pub notify_error: Option<String>,
    /// The address it left from.
    pub notify_source: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RemoteRow {
    zone_id: i64,
    role: String,
    address: Option<String>,
    tsig_key: Option<String>,
    notify: i64,
    parent_zone: Option<String>,
}

impl RemoteRow {
    fn remote(self) -> Option<(i64, Remote)> {
        let role = RemoteRole::parse(&self.role)?;
        let RemoteRow { zone_id, address, tsig_key, notify, parent_zone, .. } = self;
        Some((zone_id, Remote { role, address, tsig_key, notify: notify != 0, parent_zone }))
    }
}

/// Inserts (or replaces, by role and address) a remote of zone `zone_id`.
pub(super) async fn insert_remote(tx: &mut Transaction<'_, Any>, zone_id: i64, remote: &Remote) -> Result<()> {
    if let Some(key) = &remote.tsig_key {
        let known = sqlx::query("SELECT 1 FROM tsig_keys WHERE name = $1").bind(key).fetch_optional(&mut **tx).await?;
        if known.is_none() {
            return Err(DbError::NotFound { what: "TSIG key", name: key.clone() });
        }
    }
    sqlx::query(
        "INSERT INTO zone_remotes (zone_id, role, address, tsig_key, notify, parent_zone) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (zone_id, role, COALESCE(address, '')) DO UPDATE
         SET tsig_key = excluded.tsig_key, notify = excluded.notify, parent_zone = excluded.parent_zone",
    )
    .bind(zone_id)
    .bind(remote.role.as_str())
    .bind(&remote.address)
    .bind(&remote.tsig_key)
    .bind(i64::from(remote.notify))
    .bind(&remote.parent_zone)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes what the zone's transfers are and did (the zone leaves
/// management).
pub(super) async fn forget_zone(tx: &mut Transaction<'_, Any>, zone_id: i64) -> Result<()> {
    for delete in [
        "DELETE FROM zone_remotes WHERE zone_id = $1",
        "DELETE FROM transfer_in WHERE zone_id = $1",
        "DELETE FROM transfer_out WHERE zone_id = $1",
        "DELETE FROM ds_checks WHERE zone_id = $1",
        "DELETE FROM ds_submissions WHERE zone_id = $1",
    ] {
        sqlx::query(delete).bind(zone_id).execute(&mut **tx).await?;
    }
    Ok(())
}

fn remote_text(remote: &Remote) -> String {
    let address = remote.address.as_deref().unwrap_or("any address");
    match &remote.tsig_key {
        Some(key) => format!("{} {address} with TSIG key {key}", remote.role.as_str()),
        None => format!("{} {address}", remote.role.as_str()),
    }
}

impl Database {
    /// Registers a TSIG key: its name and the file holding its secret.
    pub async fn add_tsig_key(&self, name: &str, secret_path: &str, now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        let exists = sqlx::query("SELECT 1 FROM tsig_keys WHERE name = $1").bind(name).fetch_optional(&mut *tx).await?;
        if exists.is_some() {
            return Err(DbError::Exists { what: "TSIG key", name: name.to_owned() });
        }
        sqlx::query(
            "INSERT INTO tsig_keys (name, algorithm, secret_path, created_at) VALUES ($1, 'hmac-sha256', $2, $3)",
        )
        .bind(name)
        .bind(secret_path)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let message = format!("TSIG key {name} added (secret in {secret_path})");
        insert_event(&mut tx, None, &Event::note(now, Actor::Operator, EventKind::Transfers, None, message)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The TSIG keys, by name.
    pub async fn tsig_keys(&self) -> Result<Vec<TsigKeyRow>> {
        Ok(sqlx::query_as("SELECT name, algorithm, secret_path FROM tsig_keys ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Removes a TSIG key no zone uses.
    pub async fn remove_tsig_key(&self, name: &str, now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        let users: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT z.name FROM zone_remotes r JOIN zones z ON z.id = r.zone_id WHERE r.tsig_key = $1",
        )
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        if !users.is_empty() {
            let by = users.into_iter().map(|(zone,)| zone).collect::<Vec<_>>().join(", ");
            return Err(DbError::InUse { what: "TSIG key", name: name.to_owned(), by });
        }
        let deleted = sqlx::query("DELETE FROM tsig_keys WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if deleted.rows_affected() == 0 {
            return Err(DbError::NotFound { what: "TSIG key", name: name.to_owned() });
        }
        let message = format!("TSIG key {name} removed");
        insert_event(&mut tx, None, &Event::note(now, Actor::Operator, EventKind::Transfers, None, message)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The remotes of zone `zone_id`.
    pub async fn remotes(&self, zone_id: i64) -> Result<Vec<Remote>> {
        let rows: Vec<RemoteRow> = sqlx::query_as(
            "SELECT zone_id, role, address, tsig_key, notify, parent_zone FROM zone_remotes WHERE zone_id = $1 ORDER BY role, address",
        )
        .bind(zone_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().filter_map(RemoteRow::remote).map(|(_, r)| r).collect())
    }

    /// The remotes of every managed zone, by zone id.
    pub async fn all_remotes(&self) -> Result<Vec<(i64, Remote)>> {
        let rows: Vec<RemoteRow> = sqlx::query_as(
            "SELECT r.zone_id, r.role, r.address, r.tsig_key, r.notify, r.parent_zone FROM zone_remotes r
             JOIN zones z ON z.id = r.zone_id WHERE z.removed_at IS NULL ORDER BY r.zone_id, r.role, r.address",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().filter_map(RemoteRow::remote).collect())
    }

    /// Makes the zone's input `input_path`, transferred from `primaries`
    /// (none: the file is the input, edited by hand or a script).
    pub async fn set_input(&self, zone_id: i64, input_path: &str, primaries: &[Remote], now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM zone_remotes WHERE zone_id = $1 AND role = 'primary'")
            .bind(zone_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM transfer_in WHERE zone_id = $1").bind(zone_id).execute(&mut *tx).await?;
        sqlx::query("UPDATE zones SET input_path = $1 WHERE id = $2")
            .bind(input_path)
            .bind(zone_id)
            .execute(&mut *tx)
            .await?;
        for primary in primaries {
            insert_remote(&mut tx, zone_id, primary).await?;
        }
        let message = match primaries {
            [] => format!("input is the file {input_path}"),
            _ => {
                let from: Vec<String> = primaries.iter().map(remote_text).collect();
                format!("input transferred from {} (kept in {input_path})", from.join(", "))
            }
        };
        insert_event(&mut tx, Some(zone_id), &Event::note(now, Actor::Operator, EventKind::Transfers, None, message))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds (or changes) a secondary or ACL entry of zone `zone_id`.
    pub async fn add_remote(&self, zone_id: i64, remote: &Remote, now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        insert_remote(&mut tx, zone_id, remote).await?;
        let message = format!("{} added", remote_text(remote));
        insert_event(&mut tx, Some(zone_id), &Event::note(now, Actor::Operator, EventKind::Transfers, None, message))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a secondary or ACL entry; false if there was none.
    pub async fn remove_remote(&self, zone_id: i64, role: RemoteRole, address: Option<&str>, now: i64) -> Result<bool> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query(
            "DELETE FROM zone_remotes WHERE zone_id = $1 AND role = $2 AND address IS NOT DISTINCT FROM $3",
        )
        .bind(zone_id)
        .bind(role.as_str())
        .bind(address)
        .execute(&mut *tx)
        .await?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        let message = format!("{} {} removed", role.as_str(), address.unwrap_or("any address"));
        insert_event(&mut tx, Some(zone_id), &Event::note(now, Actor::Operator, EventKind::Transfers, None, message))
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// What the zone's transfers in last did (None: never tried).
    pub async fn transfer_in(&self, zone_id: i64) -> Result<Option<TransferInState>> {
        Ok(sqlx::query_as(
            "SELECT primary_serial, checked_at, transfer_at, transfer_serial, transfer_kind, transfer_records,
                    transfer_bytes, error_at, error FROM transfer_in WHERE zone_id = $1",
        )
        .bind(zone_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The primaries answered serial `serial` at `at`.
    pub async fn record_primary_serial(&self, zone_id: i64, serial: u32, at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO transfer_in (zone_id, primary_serial, checked_at) VALUES ($1, $2, $3)
             ON CONFLICT (zone_id) DO UPDATE SET primary_serial = $2, checked_at = $3",
        )
        .bind(zone_id)
        .bind(i64::from(serial))
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A transfer in completed: the failure before it is cleared.
    pub async fn record_transfer_in(&self, zone_id: i64, done: &TransferIn) -> Result<()> {
        sqlx::query(
            "INSERT INTO transfer_in (zone_id, primary_serial, checked_at, transfer_at, transfer_serial, transfer_kind,
                                      transfer_records, transfer_bytes)
             VALUES ($1, $2, $3, $3, $2, $4, $5, $6)
             ON CONFLICT (zone_id) DO UPDATE SET primary_serial = $2, checked_at = $3, transfer_at = $3,
                 transfer_serial = $2, transfer_kind = $4, transfer_records = $5, transfer_bytes = $6,
                 error_at = NULL, error = NULL",
        )
        .bind(zone_id)
        .bind(i64::from(done.serial))
        .bind(done.at)
        .bind(done.kind)
        .bind(i64::try_from(done.records).unwrap_or(i64::MAX))
        .bind(i64::try_from(done.bytes).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A check or transfer in failed (or was refused) at `at`.
    pub async fn record_transfer_error(&self, zone_id: i64, at: i64, message: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO transfer_in (zone_id, error_at, error) VALUES ($1, $2, $3)
             ON CONFLICT (zone_id) DO UPDATE SET error_at = $2, error = $3",
        )
        .bind(zone_id)
        .bind(at)
        .bind(message)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What each client of the zone's transfers out last did.
    pub async fn transfers_out(&self, zone_id: i64) -> Result<Vec<TransferOutState>> {
        Ok(sqlx::query_as(
            "SELECT address, notified_serial, notify_acked_at, transfer_at, transfer_serial, transfer_from, transfer_kind,
                    notify_serial, notify_at, notify_tries, notify_answer, notify_error, notify_source
             FROM transfer_out WHERE zone_id = $1 ORDER BY address",
        )
        .bind(zone_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A secondary at `address` acknowledged the NOTIFY for `serial`.
    pub async fn record_notify_ack(&self, zone_id: i64, address: &str, serial: u32, at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO transfer_out (zone_id, address, notified_serial, notify_acked_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (zone_id, address) DO UPDATE SET notified_serial = $3, notify_acked_at = $4",
        )
        .bind(zone_id)
        .bind(address)
        .bind(i64::from(serial))
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A NOTIFY was acknowledged or given up on.
    pub async fn record_notify_result(&self, zone_id: i64, result: &NotifyOutcome<'_>) -> Result<()> {
        let acked = result.acked.then_some((i64::from(result.serial), result.at));
        sqlx::query(
            "INSERT INTO transfer_out (zone_id, address, notified_serial, notify_acked_at, notify_serial, notify_at,
                                       notify_tries, notify_answer, notify_error, notify_source)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (zone_id, address) DO UPDATE SET
                 notified_serial = COALESCE($3, transfer_out.notified_serial),
                 notify_acked_at = COALESCE($4, transfer_out.notify_acked_at),
                 notify_serial = $5, notify_at = $6, notify_tries = $7, notify_answer = $8, notify_error = $9,
                 notify_source = $10",
        )
        .bind(zone_id)
        .bind(result.address)
        .bind(acked.map(|a| a.0))
        .bind(acked.map(|a| a.1))
        .bind(i64::from(result.serial))
        .bind(result.at)
        .bind(i64::from(result.tries))
        .bind(&result.answer)
        .bind(&result.error)
        .bind(&result.source)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replaces the zone's own `role` source addresses (none: serve's
    /// setting or default applies).
    pub async fn set_sources(&self, zone_id: i64, role: RemoteRole, addresses: &[String], now: i64) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM zone_remotes WHERE zone_id = $1 AND role = $2")
            .bind(zone_id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
        for address in addresses {
            insert_remote(&mut tx, zone_id, &Remote::new(role, Some(address.clone()), None)).await?;
        }
        let message = match addresses {
            [] => format!("{} unset: serve's setting or default applies", role.as_str()),
            _ => format!("{} {}", role.as_str(), addresses.join(" ")),
        };
        insert_event(&mut tx, Some(zone_id), &Event::note(now, Actor::Operator, EventKind::Transfers, None, message))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A transfer (or an up-to-date answer) was served.
    pub async fn record_transfer_out(&self, zone_id: i64, done: &TransferOut<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO transfer_out (zone_id, address, transfer_at, transfer_serial, transfer_from, transfer_kind)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (zone_id, address) DO UPDATE SET transfer_at = $3, transfer_serial = $4,
                 transfer_from = $5, transfer_kind = $6",
        )
        .bind(zone_id)
        .bind(done.address)
        .bind(done.at)
        .bind(i64::from(done.serial))
        .bind(done.from.map(i64::from))
        .bind(done.kind)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
