//! Dry-runs: a policy's rollovers rehearsed on a simulated clock.
//!
//! The driver (`signet dry-run`, in the command line) runs the production
//! code — the rollover machine, the signer and the gate — against a
//! throw-away database, soft keys and a simulated parent. This module holds
//! what it needs besides:
//!
//! - [`version`]: what each published version of the zone holds, read back
//!   from the signed file;
//! - [`parent`]: the parent, publishing the CDS it sees after a delay;
//! - [`safety`]: the cache-model check, at every instant, of every mix of
//!   cached DS, DNSKEY and signed RRsets a resolver could hold;
//! - [`svg`]: the timeline drawing;
//! - [`example`]: the zone signed when the operator gives none.

pub mod example;
pub mod parent;
pub mod safety;
pub mod svg;
pub mod trace;
pub mod version;

use serde::Serialize;

use crate::rollover::{Record, RecordState};

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// The machine made a key.
    KeyCreated,
    /// A record of a key changed state.
    Transition,
    /// The zone asked the parent for a DS change (CDS published).
    DsRequested,
    /// The parent changed its DS RRset; reported to the machine.
    Parent,
    /// The policy was replaced.
    PolicyChange,
    /// The machine removed a key it is done with.
    KeyRemoved,
    /// A fault the dry-run injected.
    Fault,
}

/// A key, as the event table and the drawing name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The database id.
    pub id: i64,
    /// `ksk`, `zsk` or `csk`.
    pub role: String,
    /// Algorithm number.
    pub algorithm: u8,
    /// Key tag.
    pub tag: u16,
    /// The key it replaces, if it is a successor.
    pub predecessor: Option<i64>,
}

impl KeyInfo {
    /// `zsk 12345/8`.
    pub fn label(&self) -> String {
        format!("{} {}/{}", self.role, self.tag, self.algorithm)
    }
}

/// One line of the event table.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// When (Unix seconds).
    pub time: i64,
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
    pub fn note(time: i64, kind: EventKind, key: Option<i64>, why: impl Into<String>) -> Event {
        Event { time, kind, key, record: None, from: None, to: None, why: why.into() }
    }
}

/// Each record's state over time, for one key: `(record, since, state)`
/// in time order, from the transitions among `events`.
pub fn state_history(events: &[Event], key: i64) -> Vec<(Record, i64, RecordState)> {
    events
        .iter()
        .filter(|e| e.key == Some(key) && e.kind == EventKind::Transition)
        .filter_map(|e| Some((e.record?, e.time, e.to?)))
        .collect()
}

/// When each of a key's milestones came.
#[derive(Debug, Serialize)]
pub struct KeySummary {
    /// The key.
    #[serde(flatten)]
    pub key: KeyInfo,
    /// Made.
    pub created: Option<i64>,
    /// DNSKEY published.
    pub published: Option<i64>,
    /// It first signed.
    pub active: Option<i64>,
    /// It stopped signing (its signatures withdrawn).
    pub retired: Option<i64>,
    /// DNSKEY withdrawn.
    pub withdrawn: Option<i64>,
    /// Removed, hidden everywhere.
    pub removed: Option<i64>,
    /// Its DS published by the parent.
    pub ds_seen: Option<i64>,
    /// Its DS withdrawn by the parent.
    pub ds_gone: Option<i64>,
}

/// A key's milestones, from the events.
pub fn key_summary(key: &KeyInfo, events: &[Event]) -> KeySummary {
    let mine: Vec<&Event> = events.iter().filter(|e| e.key == Some(key.id)).collect();
    let first = |kind: EventKind| mine.iter().find(|e| e.kind == kind).map(|e| e.time);
    let moved = |records: &[Record], to: RecordState| {
        mine.iter().find(|e| e.record.is_some_and(|r| records.contains(&r)) && e.to == Some(to)).map(|e| e.time)
    };
    let signatures = [Record::Krrsig, Record::Zrrsig];
    KeySummary {
        key: key.clone(),
        created: first(EventKind::KeyCreated),
        published: moved(&[Record::Dnskey], RecordState::Rumoured),
        active: moved(&signatures, RecordState::Rumoured),
        retired: moved(&signatures, RecordState::Unretentive),
        withdrawn: moved(&[Record::Dnskey], RecordState::Unretentive),
        removed: first(EventKind::KeyRemoved),
        ds_seen: moved(&[Record::Ds], RecordState::Rumoured),
        ds_gone: moved(&[Record::Ds], RecordState::Unretentive),
    }
}
