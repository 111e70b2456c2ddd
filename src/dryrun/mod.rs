//! Dry-runs: a policy's rollovers rehearsed on a simulated clock.
//!
//! [`simulation`] runs the production code — the managed run of
//! [`crate::manage`]: the rollover machine, the signer and the gate —
//! against a throw-away database, soft keys and a simulated parent. Its
//! events are the throw-away database's audit trail ([`Event`]). Beside it:
//!
//! - `version`: what each published version of the zone holds, read back
//!   from the signed file;
//! - `parent`: the parent, publishing the CDS it sees after a delay;
//! - [`safety`]: the cache-model check, at every instant, of every mix of
//!   cached DS, DNSKEY and signed RRsets a resolver could hold;
//! - [`svg`]: the timeline drawing;
//! - `example`: the zone signed when the operator gives none.

pub mod ceremonies;
pub(crate) mod example;
pub(crate) mod parent;
pub mod safety;
pub mod simulation;
pub mod svg;
pub(crate) mod trace;
pub(crate) mod version;

use serde::Serialize;

pub use crate::db::{Event, EventKind};
use crate::rollover::{Record, RecordState};

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
