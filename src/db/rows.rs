//! Rows as stored, and their conversion to and from the model types.

use sqlx::any::AnyRow;
use sqlx::{Any, Row as _, Transaction};

use super::events::{Actor, Event, EventKind};
use super::{DbError, Result};
use crate::rollover::{Goal, Key, Observation, Record, RecordState, RecordStatus};
use crate::zone::dnssec::{Algorithm, Role};

/// A stored policy.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PolicyRow {
    /// Row id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The TOML text.
    pub source: String,
    /// When it was imported.
    pub imported_at: i64,
}

impl PolicyRow {
    /// The stored text, parsed and checked.
    pub fn parse(&self) -> Result<crate::policy::Policy> {
        let source = std::path::Path::new(&self.name);
        crate::policy::Policy::from_text(&self.source, source)
            .map(|(policy, _)| policy)
            .map_err(|source| DbError::Policy { name: self.name.clone(), source })
    }
}

/// A stored zone.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ZoneRow {
    /// Row id.
    pub id: i64,
    /// The apex.
    pub name: String,
    /// Its policy's id.
    pub policy_id: i64,
    /// Its policy's name.
    pub policy_name: String,
    /// The unsigned zone file.
    pub input_path: String,
    /// The signed zone file.
    pub output_path: String,
    /// NSEC3 salt.
    pub nsec3_salt: Vec<u8>,
    /// Serial last published.
    pub last_serial: Option<i64>,
    /// `now` of the last run.
    pub last_run_at: Option<i64>,
    /// When the machine wants to run again.
    pub next_run_at: Option<i64>,
    /// When the zone was added.
    pub created_at: i64,
    /// Why it is next due.
    pub next_run_why: Option<String>,
    /// SHA-256 of the input the last published run read.
    pub input_digest: Option<Vec<u8>>,
    /// That input's SOA serial.
    pub input_serial: Option<i64>,
    /// The earliest RRSIG expiration in the published zone.
    pub sig_expires_at: Option<i64>,
    /// When `signet zone reload` asked for a re-read.
    pub reload_at: Option<i64>,
    /// The service's next try after failed runs.
    pub retry_at: Option<i64>,
    /// The last publication whose gate verified every signature with
    /// crypto (no memo).
    pub full_verified_at: Option<i64>,
    /// When `signet zone reload --full-verify` asked for one (not yet done).
    pub full_verify_asked_at: Option<i64>,
    /// The output's stamp right after the last publication.
    pub output_stamp: Option<String>,
}

/// What the service watches of a zone (see [`super::Database::zone_watch`]).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ZoneWatch {
    /// Row id.
    pub id: i64,
    /// The apex.
    pub name: String,
    /// The unsigned zone file.
    pub input_path: String,
    /// Its policy.
    pub policy_id: i64,
    /// When that policy was last imported.
    pub policy_imported_at: i64,
    /// When `signet zone reload` last asked.
    pub reload_at: Option<i64>,
    /// When the machine wants to run.
    pub next_run_at: Option<i64>,
    /// The last run.
    pub last_run_at: Option<i64>,
    /// The newest operator request not yet taken in.
    pub pending_request: Option<i64>,
    /// The newest review an operator decided (`signet zone
    /// approve|reject`).
    pub review_decision: Option<i64>,
}

/// A key with what only the database knows of it.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// The machine's view.
    pub key: Key,
    /// Where it lives.
    pub uri: String,
    /// Its DNSKEY RDATA.
    pub dnskey: Vec<u8>,
}

/// A run row.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct RunRow {
    /// When.
    pub at: i64,
    /// Serial.
    pub serial: Option<i64>,
    /// `published`, `refused`, `failed`.
    pub result: String,
    /// RRSIGs made.
    pub rrsigs: i64,
    /// Gate errors.
    pub errors: i64,
    /// Summary or error.
    pub message: Option<String>,
    /// Wall seconds.
    pub seconds: f64,
    /// The input's SOA serial, when the run read it.
    pub input_serial: Option<i64>,
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct KeyRow {
    id: i64,
    uri: String,
    role: String,
    algorithm: i64,
    key_tag: i64,
    dnskey: Vec<u8>,
    goal: String,
    dnskey_state: String,
    dnskey_since: i64,
    krrsig_state: String,
    krrsig_since: i64,
    zrrsig_state: String,
    zrrsig_since: i64,
    ds_state: String,
    ds_since: i64,
    created_at: i64,
    active_at: Option<i64>,
    retire_at: Option<i64>,
    predecessor_id: Option<i64>,
    successor_id: Option<i64>,
    // Flags are integers (0, 1) in both dialects: sqlx's Any driver
    // decodes a boolean only from a boolean column.
    compromised: i64,
    ds_pending: Option<i64>,
}

fn corrupt(what: &'static str, value: impl ToString) -> DbError {
    DbError::Corrupt { what, value: value.to_string() }
}

fn parse_state(text: &str, since: i64) -> Result<RecordStatus> {
    Ok(RecordStatus { state: state_from_text(text)?, since })
}

fn state_from_text(text: &str) -> Result<RecordState> {
    Ok(match text {
        "hidden" => RecordState::Hidden,
        "rumoured" => RecordState::Rumoured,
        "omnipresent" => RecordState::Omnipresent,
        "unretentive" => RecordState::Unretentive,
        other => return Err(corrupt("record state", other)),
    })
}

/// An audit row as an [`Event`], with its row id.
pub(super) fn event_from_row(row: &AnyRow) -> Result<(i64, Event)> {
    let kind: String = row.get("event");
    let actor: String = row.get("actor");
    let record: Option<String> = row.get("record");
    let from: Option<String> = row.get("from_state");
    let to: Option<String> = row.get("to_state");
    let event = Event {
        time: row.get("at"),
        actor: if actor == "operator" { Actor::Operator } else { Actor::Machine },
        kind: EventKind::from_stored(&kind).ok_or_else(|| corrupt("audit event", &kind))?,
        key: row.get("key_id"),
        record: record
            .map(|r| Record::ALL.into_iter().find(|x| x.as_str() == r).ok_or_else(|| corrupt("audit record", r)))
            .transpose()?,
        from: from.as_deref().map(state_from_text).transpose()?,
        to: to.as_deref().map(state_from_text).transpose()?,
        why: row.get("message"),
    };
    Ok((row.get("id"), event))
}

impl KeyRow {
    pub(super) fn into_stored(self) -> Result<StoredKey> {
        let role = Role::from_text(&self.role).map_err(|_| corrupt("role", &self.role))?;
        let algorithm = u8::try_from(self.algorithm)
            .ok()
            .and_then(Algorithm::from_number)
            .ok_or_else(|| corrupt("algorithm", self.algorithm))?;
        let goal = match self.goal.as_str() {
            "omnipresent" => Goal::Omnipresent,
            "hidden" => Goal::Hidden,
            other => return Err(corrupt("goal", other)),
        };
        let records = [
            parse_state(&self.dnskey_state, self.dnskey_since)?,
            parse_state(&self.krrsig_state, self.krrsig_since)?,
            parse_state(&self.zrrsig_state, self.zrrsig_since)?,
            parse_state(&self.ds_state, self.ds_since)?,
        ];
        let key = Key {
            id: self.id,
            role,
            algorithm,
            tag: u16::try_from(self.key_tag).map_err(|_| corrupt("key tag", self.key_tag))?,
            goal,
            records,
            created: self.created_at,
            active: self.active_at,
            retire: self.retire_at,
            predecessor: self.predecessor_id,
            successor: self.successor_id,
            compromised: self.compromised != 0,
            ds_pending: self.ds_pending.map(|pending| pending != 0),
        };
        Ok(StoredKey { key, uri: self.uri, dnskey: self.dnskey })
    }
}

pub(super) async fn insert_key(
    tx: &mut Transaction<'_, Any>,
    zone_id: i64,
    uri: &str,
    dnskey: &[u8],
    key: &Key,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO keys (zone_id, uri, role, algorithm, key_tag, dnskey, goal,
            dnskey_state, dnskey_since, krrsig_state, krrsig_since, zrrsig_state, zrrsig_since, ds_state, ds_since,
            created_at, predecessor_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
    )
    .bind(zone_id)
    .bind(uri)
    .bind(key.role.as_str())
    .bind(i64::from(key.algorithm.number()))
    .bind(i64::from(key.tag))
    .bind(dnskey)
    .bind(key.goal.as_str());
    let row = bind_records(row, key).bind(key.created).bind(key.predecessor).fetch_one(&mut **tx).await?;
    Ok(row.get(0))
}

fn bind_records<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    key: &Key,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    for record in Record::ALL {
        let status = key.record(record);
        query = query.bind(status.state.as_str()).bind(status.since);
    }
    query
}

pub(super) async fn update_key(tx: &mut Transaction<'_, Any>, key: &Key) -> Result<()> {
    let query = sqlx::query(
        "UPDATE keys SET goal = $1,
            dnskey_state = $2, dnskey_since = $3, krrsig_state = $4, krrsig_since = $5,
            zrrsig_state = $6, zrrsig_since = $7, ds_state = $8, ds_since = $9,
            active_at = $10, retire_at = $11, predecessor_id = $12, successor_id = $13, compromised = $14, ds_pending = $15
         WHERE id = $16",
    )
    .bind(key.goal.as_str());
    bind_records(query, key)
        .bind(key.active)
        .bind(key.retire)
        .bind(key.predecessor)
        .bind(key.successor)
        .bind(i64::from(key.compromised))
        .bind(key.ds_pending.map(i64::from))
        .bind(key.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// kind, key id, role of an observation.
pub(super) fn observation_columns(observation: &Observation) -> (&'static str, Option<i64>, Option<&'static str>) {
    match observation {
        Observation::DsSeen { key } => ("ds-seen", Some(*key), None),
        Observation::DsGone { key } => ("ds-gone", Some(*key), None),
        Observation::Rollover { role } => ("rollover", None, Some(role.as_str())),
        Observation::Compromised { key } => ("compromised", Some(*key), None),
    }
}

pub(super) fn observation_from_row(row: &AnyRow) -> Result<(i64, Observation)> {
    let id: i64 = row.get("id");
    let kind: String = row.get("kind");
    let key: Option<i64> = row.get("key_id");
    let role: Option<String> = row.get("role");
    let need_key = || key.ok_or_else(|| corrupt("observation key", &kind));
    let observation = match kind.as_str() {
        "ds-seen" => Observation::DsSeen { key: need_key()? },
        "ds-gone" => Observation::DsGone { key: need_key()? },
        "compromised" => Observation::Compromised { key: need_key()? },
        "rollover" => Observation::Rollover {
            role: Role::from_text(role.as_deref().unwrap_or("")).map_err(|_| corrupt("observation role", &kind))?,
        },
        other => return Err(corrupt("observation", other)),
    };
    Ok((id, observation))
}
