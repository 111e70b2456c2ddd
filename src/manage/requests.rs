//! What the operator tells the machine between runs: start a rollover,
//! a key is compromised, the parent now publishes (or withdrew) a DS.
//! Each is recorded as an observation, with an audit row, for the next
//! run to take in.

use std::path::{Path, PathBuf};

use super::ManageError;
use crate::db::{Database, DbError, Event, NewZone, StoredKey, ZoneRow};
use crate::rollover::{Goal, Observation};
use crate::sign::random_salt;
use crate::zone::Name;
use crate::zone::dnssec::Role;

/// The files of a zone to add.
#[derive(Debug)]
pub struct ZonePaths<'a> {
    /// The unsigned zone (for a zone transferred from primaries: where
    /// the last complete copy is kept).
    pub input: &'a Path,
    /// Where the signed zone is published.
    pub output: &'a Path,
    /// The primaries the input is transferred from, and other remotes.
    pub remotes: &'a [crate::db::Remote],
}

/// Puts zone `name` under management with policy `policy`. Refuses an
/// output that is the input, or that another zone publishes to (by any
/// path: symlinks and relative paths resolved). Returns the absolute
/// input and output paths stored.
pub async fn add_zone(
    db: &Database,
    name: &Name,
    policy: &str,
    paths: &ZonePaths<'_>,
    now: i64,
) -> Result<(PathBuf, PathBuf), ManageError> {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let (input, output) = (absolute(paths.input), absolute(paths.output));
    if same_file(&input, &output) {
        return Err(ManageError::Argument(format!(
            "--output {} is the input: signing would overwrite the unsigned zone",
            output.display()
        )));
    }
    for zone in db.zones().await? {
        if same_file(Path::new(&zone.output_path), &output) {
            return Err(DbError::OutputTaken { zone: zone.name, output: output.display().to_string() }.into());
        }
    }
    let salt = random_salt(db.policy(policy).await?.parse()?.denial.salt_length)
        .map_err(|e| ManageError::Argument(e.to_string()))?;
    let (input_text, output_text) = (input.display().to_string(), output.display().to_string());
    let zone = NewZone { name, policy, input: &input_text, output: &output_text, salt: &salt, remotes: paths.remotes };
    db.add_zone(&zone, now).await?;
    Ok((input, output))
}

/// Do two paths name one file? Compared after resolving symlinks and
/// `..`; for files that exist, by device and inode (hard links too).
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        return x.dev() == y.dev() && x.ino() == y.ino();
    }
    resolved(a) == resolved(b)
}

/// A path with its directory's symlinks resolved (the file itself may
/// not exist yet).
fn resolved(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    match (path.parent().and_then(|d| std::fs::canonicalize(d).ok()), path.file_name()) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => path.to_owned(),
    }
}

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
        db.observe(zone.id, &observation, &Event::by_operator(now, &observation, &message), None).await?;
        return Ok(vec![message]);
    }
    let active: Vec<&StoredKey> = snapshot
        .keys
        .iter()
        .filter(|k| k.key.role == role && k.key.goal == Goal::Omnipresent && !k.key.compromised)
        // A key made ahead of its time for an offline KSK's request has
        // signed nothing: it cannot be compromised in use.
        .filter(|k| k.key.created <= now)
        .collect();
    if active.is_empty() {
        return Err(ManageError::Argument(format!("zone {} has no active {role} to replace", zone.name)));
    }
    let mut recorded = Vec::new();
    for key in active {
        let message = format!("operator: {role} key tag {} declared compromised: emergency rollover", key.key.tag);
        let observation = Observation::Compromised { key: key.key.id };
        db.observe(zone.id, &observation, &Event::by_operator(now, &observation, &message), None).await?;
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
    db.observe(zone.id, &observation, &Event::by_operator(now, &observation, &message), None).await?;
    Ok(message)
}
