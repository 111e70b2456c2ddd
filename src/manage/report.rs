//! What each key of a zone waits for: a dry step of the machine at `now`
//! (nothing is written), each record's next move or the reason it waits,
//! and what the operator must do.

use std::collections::BTreeMap;

use crate::db::{Database, DbError, DsCheck, RemoteRole, ZoneSnapshot};
use crate::rollover::{Key, Observation, Record, advance};
use crate::time::{format_minute, format_time};

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

/// How the zone's parent is dealt with: checked by query, submitted to by
/// command or update, and what the check waits for.
#[derive(Debug, Default)]
pub struct ParentView {
    /// The parent is checked by query (agents, or a discovering resolver).
    pub checked: bool,
    /// The DS set is submitted by the policy's command or by update.
    pub submitted: bool,
    /// What the check waits for, per key.
    pub checks: Vec<DsCheck>,
}

impl ParentView {
    /// The zone's parent view from the database.
    pub async fn read(db: &Database, snapshot: &ZoneSnapshot) -> Result<ParentView, DbError> {
        let remotes = db.remotes(snapshot.zone.id).await?;
        let has = |role| remotes.iter().any(|r| r.role == role);
        Ok(ParentView {
            checked: has(RemoteRole::ParentAgent) || has(RemoteRole::ParentDiscovery),
            submitted: has(RemoteRole::ParentUpdate) || snapshot.policy.parent.submit_command.is_some(),
            checks: db.ds_checks(snapshot.zone.id).await?,
        })
    }
}

/// Every key of the zone with its states, what each record waits for
/// (from a dry step of the machine at `now`), and what the operator must
/// do (nothing for what the parent check and submission do).
pub fn key_report(snapshot: &ZoneSnapshot, now: i64, parent: &ParentView) -> Vec<KeyLine> {
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
            todo: todo(&snapshot.zone.name, key, parent),
            uri: stored.uri.clone(),
        });
    }
    lines
}

/// What the operator must do now for a key, and what the parent check
/// waits for.
fn todo(zone: &str, key: &Key, parent: &ParentView) -> Vec<String> {
    let tag = key.tag;
    let Some(seen) = key.ds_pending else { return Vec::new() };
    let mut lines = Vec::new();
    match (seen, parent.submitted) {
        (_, true) => {}
        (true, false) => lines.push(format!("submit this DS to the parent: signet ds show {zone} --keytag {tag}")),
        (false, false) => lines.push(format!("ask the parent to remove the DS of key tag {tag}")),
    }
    let want = if seen { "seen" } else { "gone" };
    if !parent.checked {
        lines.push(match seen {
            true => format!("when the parent publishes it, confirm with: signet ds seen {zone} --keytag {tag}"),
            false => format!("when it is gone, confirm with: signet ds gone {zone} --keytag {tag}"),
        });
        return lines;
    }
    let check = parent.checks.iter().find(|c| c.key_id == key.id && c.want == want);
    lines.push(match check {
        Some(c) => format!(
            "the parent check waits for the DS to be {want} at every agent, since {}; {} check(s){}{}",
            format_time(c.since),
            c.checks,
            c.answers.as_ref().map(|a| format!(", last: {a}")).unwrap_or_default(),
            c.next_at.map(|at| format!("; next check {}", format_time(at))).unwrap_or_default()
        ),
        None => format!("the parent check will ask every agent whether the DS is {want}"),
    });
    lines
}
