//! Recorded events: one notion for the audit trail of a zone and the
//! event table of a dry-run (which reads its own throw-away audit trail).
//! Every key transition, key made or removed, DS request, observation,
//! policy change and run is one [`Event`], one audit row.

use serde::Serialize;
use sqlx::{Any, Transaction};

use super::{Database, Result, rows};
use crate::rollover::{Record, RecordState};

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// The machine made a key.
    KeyCreated,
    /// A record of a key changed state.
    Transition,
    /// The zone asked the parent for a DS change (CDS published, or the
    /// operator told to submit it).
    DsRequested,
    /// The parent was seen to change its DS RRset (a parent check or the
    /// dry-run's simulated parent), reported to the machine.
    Parent,
    /// The operator said the parent publishes a DS.
    DsSeen,
    /// The operator said the parent withdrew a DS.
    DsGone,
    /// The operator asked for a rollover.
    Rollover,
    /// The operator declared a key compromised.
    Compromised,
    /// A policy was imported, or replaced the zone's.
    PolicyChange,
    /// A zone was put under management.
    ZoneAdded,
    /// A zone left management.
    ZoneRemoved,
    /// The machine removed a key it is done with (hidden everywhere).
    KeyRemoved,
    /// A removed key's material was destroyed in its store.
    KeyPurged,
    /// A fault a dry-run injected.
    Fault,
    /// A signing run ended.
    Run,
    /// The zone's transfers changed: its input's primaries, its
    /// secondaries, who may transfer it, or a TSIG key.
    Transfers,
    /// A signer took the zone's lease from another (or first): who signs
    /// it from now on (several signers sharing one PostgreSQL state).
    Lease,
    /// An offline KSK's request written, response signed or imported.
    Offline,
}

impl EventKind {
    const ALL: [EventKind; 18] = [
        EventKind::KeyCreated,
        EventKind::Transition,
        EventKind::DsRequested,
        EventKind::Parent,
        EventKind::DsSeen,
        EventKind::DsGone,
        EventKind::Rollover,
        EventKind::Compromised,
        EventKind::PolicyChange,
        EventKind::ZoneAdded,
        EventKind::ZoneRemoved,
        EventKind::KeyRemoved,
        EventKind::KeyPurged,
        EventKind::Fault,
        EventKind::Run,
        EventKind::Transfers,
        EventKind::Lease,
        EventKind::Offline,
    ];

    /// The name stored in the audit trail (and printed in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::KeyCreated => "key-created",
            EventKind::Transition => "transition",
            EventKind::DsRequested => "ds-requested",
            EventKind::Parent => "parent",
            EventKind::DsSeen => "ds-seen",
            EventKind::DsGone => "ds-gone",
            EventKind::Rollover => "rollover",
            EventKind::Compromised => "compromised",
            EventKind::PolicyChange => "policy-change",
            EventKind::ZoneAdded => "zone-add",
            EventKind::ZoneRemoved => "zone-remove",
            EventKind::KeyRemoved => "key-removed",
            EventKind::KeyPurged => "key-purged",
            EventKind::Fault => "fault",
            EventKind::Run => "run",
            EventKind::Transfers => "transfers",
            EventKind::Lease => "lease",
            EventKind::Offline => "offline",
        }
    }

    /// The kind a stored name stands for (`policy-import` is what the
    /// first schema called a policy change).
    pub fn from_stored(name: &str) -> Option<EventKind> {
        if name == "policy-import" {
            return Some(EventKind::PolicyChange);
        }
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// signet: the machine, a run, a parent check.
    Machine,
    /// A person, through a command.
    Operator,
}

impl Actor {
    /// `machine` or `operator`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Machine => "machine",
            Actor::Operator => "operator",
        }
    }
}

/// One recorded event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// When (Unix seconds; the run's `now`).
    pub time: i64,
    /// Who.
    pub actor: Actor,
    /// What kind.
    pub kind: EventKind,
    /// The key, if one is concerned.
    pub key: Option<i64>,
    /// The record, for a transition.
    pub record: Option<Record>,
    /// The state before, for a transition.
    pub from: Option<RecordState>,
    /// The state after, for a transition.
    pub to: Option<RecordState>,
    /// Why, or what, in words.
    pub why: String,
}

impl Event {
    /// An event that is not a transition.
    pub fn note(time: i64, actor: Actor, kind: EventKind, key: Option<i64>, why: impl Into<String>) -> Event {
        Event { time, actor, kind, key, record: None, from: None, to: None, why: why.into() }
    }

    /// The operator's report of an observation, as recorded.
    pub fn by_operator(time: i64, observation: &crate::rollover::Observation, why: impl Into<String>) -> Event {
        use crate::rollover::Observation;
        let (kind, key) = match *observation {
            Observation::DsSeen { key } => (EventKind::DsSeen, Some(key)),
            Observation::DsGone { key } => (EventKind::DsGone, Some(key)),
            Observation::Rollover { .. } => (EventKind::Rollover, None),
            Observation::Compromised { key } => (EventKind::Compromised, Some(key)),
        };
        Event::note(time, Actor::Operator, kind, key, why)
    }

    /// A key's record moving from one state to another, by the machine.
    pub fn transition(time: i64, transition: &crate::rollover::Transition) -> Event {
        Event {
            time,
            actor: Actor::Machine,
            kind: EventKind::Transition,
            key: Some(transition.key),
            record: Some(transition.record),
            from: Some(transition.from),
            to: Some(transition.to),
            why: transition.why.clone(),
        }
    }
}

impl Database {
    /// Records an event that changes nothing else (a parent's DS that
    /// matches no key of the zone, say).
    pub async fn record_event(&self, zone_id: i64, event: &Event) -> Result<()> {
        let mut tx = self.write().await?;
        insert_event(&mut tx, Some(zone_id), event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest events of a zone, oldest first.
    pub async fn events(&self, zone_id: i64, limit: i64) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, event, key_id, record, from_state, to_state, message FROM audit
             WHERE zone_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(zone_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().rev().map(|row| rows::event_from_row(row).map(|(_, e)| e)).collect()
    }

    /// The zone's events after audit row `after` (0: all), oldest first,
    /// each with its row id.
    pub async fn events_after(&self, zone_id: i64, after: i64) -> Result<Vec<(i64, Event)>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, event, key_id, record, from_state, to_state, message FROM audit
             WHERE zone_id = $1 AND id > $2 ORDER BY id",
        )
        .bind(zone_id)
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::event_from_row).collect()
    }
}

/// Inserts one audit row.
pub(super) async fn insert_event(tx: &mut Transaction<'_, Any>, zone: Option<i64>, event: &Event) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit (zone_id, key_id, at, actor, event, record, from_state, to_state, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(zone)
    .bind(event.key)
    .bind(event.time)
    .bind(event.actor.as_str())
    .bind(event.kind.as_str())
    .bind(event.record.map(|r| r.as_str()))
    .bind(event.from.map(|s| s.as_str()))
    .bind(event.to.map(|s| s.as_str()))
    .bind(&event.why)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
