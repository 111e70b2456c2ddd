//! What each key of a zone waits for: a dry step of the machine at `now`
//! (nothing is written), each record's next move or the reason it waits,
//! and what the operator must do.

use std::collections::BTreeMap;

use crate::db::ZoneSnapshot;
use crate::rollover::{Key, Observation, Record, advance};
use crate::time::format_minute;

/// One key's line of `key list`, as data.
#[derive(Debug, serde::Serialize)]
pub struct KeyLine {
    /// The key's id.
    pub id: i64,
    /// `ksk`, `zsk` or `csk`.
    pub role: &'static str,
    /// Algorithm number.
    pub algorithm: u8,
    /// Key tag.
    pub keytag: u16,
    /// `omnipresent` or `hidden`.
    pub goal: &'static str,
    /// Each record's state.
    pub states: BTreeMap<&'static str, String>,
    /// Since when each record is in its state.
    pub since: BTreeMap<&'static str, i64>,
    /// Each record's next move, or what it waits for (`-`: nothing).
    pub next: BTreeMap<&'static str, String>,
    /// What the operator must do now.
    pub todo: Vec<String>,
    /// Where the key lives.
    pub uri: String,
}

/// Every key of the zone with its states, what each record waits for
/// (from a dry step of the machine at `now`), and what the operator must do.
pub fn key_report(snapshot: &ZoneSnapshot, now: i64) -> Vec<KeyLine> {
    let keys: Vec<Key> = snapshot.keys.iter().map(|s| s.key.clone()).collect();
    let pending: Vec<Observation> = snapshot.pending.iter().map(|(_, o)| o.clone()).collect();
    let dry = advance(&keys, &snapshot.policy, now, &pending);
    let mut lines = Vec::new();
    for stored in &snapshot.keys {
        let key = &stored.key;
        let mut states = BTreeMap::new();
        let mut since = BTreeMap::new();
        let mut next = BTreeMap::new();
        for record in Record::ALL.into_iter().filter(|r| key.affects(*r)) {
            states.insert(record.as_str(), key.state(record).as_str().to_owned());
            since.insert(record.as_str(), key.record(record).since);
            let due = dry.transitions.iter().find(|t| t.key == key.id && t.record == record);
            let wait = dry.waits.iter().find(|w| w.key == key.id && w.record == record);
            let text = match (due, wait) {
                (Some(t), _) => format!("→ {} now (next signet sign)", t.to.as_str()),
                (None, Some(w)) => match w.until {
                    Some(until) => format!("{} ({})", format_minute(until), w.reason),
                    None => w.reason.clone(),
                },
                (None, None) => "-".to_owned(),
            };
            next.insert(record.as_str(), text);
        }
        lines.push(KeyLine {
            id: key.id,
            role: key.role.as_str(),
            algorithm: key.algorithm.number(),
            keytag: key.tag,
            goal: key.goal.as_str(),
            states,
            since,
            next,
            todo: todo(&snapshot.zone.name, key),
            uri: stored.uri.clone(),
        });
    }
    lines
}

/// What the operator must do now for a key.
fn todo(zone: &str, key: &Key) -> Vec<String> {
    let tag = key.tag;
    match key.ds_pending {
        Some(true) => vec![
            format!("submit this DS to the parent: signet ds show {zone} --keytag {tag}"),
            format!("when the parent publishes it, confirm with: signet ds seen {zone} --keytag {tag}"),
        ],
        Some(false) => vec![
            format!("ask the parent to remove the DS of key tag {tag}"),
            format!("when it is gone, confirm with: signet ds gone {zone} --keytag {tag}"),
        ],
        None => Vec::new(),
    }
}
