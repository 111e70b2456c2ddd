//! What the operator tells the machine between runs: start a rollover,
//! a key is compromised, the parent now publishes (or withdrew) a DS.
//! Each is recorded as an observation, with an audit row, for the next
//! run to take in.

use super::ManageError;
use crate::db::{Database, Event, StoredKey, ZoneRow};
use crate::rollover::{Goal, Observation};
use crate::zone::Name;
use crate::zone::dnssec::Role;

/// Records a rollover request for the zone's `role` key (every active one
/// declared compromised if `emergency`). Returns what was recorded, one
/// line each.
pub async fn request_rollover(
    db: &Database,
    name: &Name,
    role: Role,
    emergency: bool,
    now: i64,
) -> Result<Vec<String>, ManageError> {
    let snapshot = db.snapshot(name).await?;
    let zone = &snapshot.zone;
    check_role(&zone.name, snapshot.policy.keys.csk, role)?;
    if !emergency {
        let message = format!("operator: rollover of the {role} requested");
        let observation = Observation::Rollover { role };
        db.observe(zone.id, &observation, &Event::by_operator(now, &observation, &message)).await?;
        return Ok(vec![message]);
    }
    let active: Vec<&StoredKey> = snapshot
        .keys
        .iter()
        .filter(|k| k.key.role == role && k.key.goal == Goal::Omnipresent && !k.key.compromised)
        .collect();
    if active.is_empty() {
        return Err(ManageError::Argument(format!("zone {} has no active {role} to replace", zone.name)));
    }
    let mut recorded = Vec::new();
    for key in active {
        let message = format!("operator: {role} key tag {} declared compromised: emergency rollover", key.key.tag);
        let observation = Observation::Compromised { key: key.key.id };
        db.observe(zone.id, &observation, &Event::by_operator(now, &observation, &message)).await?;
        recorded.push(message);
    }
    Ok(recorded)
}

/// A rollover of a role the policy does not use would be taken in and
/// do nothing: refuse it.
fn check_role(zone: &str, csk_policy: bool, role: Role) -> Result<(), ManageError> {
    let fits = if csk_policy { role == Role::Csk } else { role != Role::Csk };
    if fits {
        return Ok(());
    }
    let uses = if csk_policy { "a CSK" } else { "a KSK and a ZSK" };
    Err(ManageError::Argument(format!("zone {zone} has no {role}: its policy uses {uses}")))
}

/// The zone's KSK or CSK with key tag `tag`.
pub async fn key_by_tag(db: &Database, zone: &ZoneRow, tag: u16) -> Result<StoredKey, ManageError> {
    let mut keys: Vec<StoredKey> =
        db.keys(zone.id).await?.into_iter().filter(|k| k.key.tag == tag && k.key.role.signs_keys()).collect();
    match keys.len() {
        1 => Ok(keys.remove(0)),
        0 => Err(ManageError::Argument(format!(
            "zone {} has no KSK or CSK with key tag {tag} (see: signet key list {})",
            zone.name, zone.name
        ))),
        n => Err(ManageError::Argument(format!(
            "zone {} has {n} KSKs with key tag {tag}; they cannot be told apart by tag",
            zone.name
        ))),
    }
}

/// Records that the parent now publishes (`seen`) or no longer publishes
/// the DS of key tag `tag`. Returns what was recorded.
pub async fn report_ds(db: &Database, name: &Name, tag: u16, seen: bool, now: i64) -> Result<String, ManageError> {
    let zone = db.zone(name).await?;
    let key = key_by_tag(db, &zone, tag).await?.key.id;
    let (observation, what) = if seen {
        (Observation::DsSeen { key }, "publishes")
    } else {
        (Observation::DsGone { key }, "no longer publishes")
    };
    let message = format!("operator: the parent {what} the DS of key tag {tag}");
    db.observe(zone.id, &observation, &Event::by_operator(now, &observation, &message)).await?;
    Ok(message)
}
