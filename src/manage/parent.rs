//! The parent in the loop, for one zone: a round of the check by query
//! (every agent asked, the verdict recorded as `ds seen`/`ds gone` with
//! every answer in the audit), and what the check waits for.
//! `signet ds check` runs one round; `signet serve` runs them on the
//! check interval with backoff while a DS change is pending.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::task::JoinSet;

use super::ManageError;
use crate::chain::Chain;
use crate::db::{Actor, Database, DsCheck, DsSubmission, Event, EventKind, Remote, RemoteRole, ZoneSnapshot};
use crate::keys::PublishedKey;
use crate::parent::check::{Asking, Cut, PendingKey, Server, ServerAnswer, Verdict, Want, answers_text, ask, judge};
use crate::parent::submit::{SubmitError, WantedDs, push_update_from, run_submit_command, submission_text};
use crate::policy::ParentPolicy;
use crate::rollover::Observation;
use crate::xfr::acl::{AddressError, parse_socket};
use crate::xfr::source::{SourceChoice, SourceDefaults};
use crate::xfr::tsig::TsigKey;
use crate::zone::{Name, NameError};

/// Finds a loaded TSIG key by name (absolute, lowercase).
pub type KeyLookup<'a> = &'a (dyn Fn(&str) -> Option<Arc<TsigKey>> + Sync);

/// The servers a zone's parent is checked at.
#[derive(Debug, Default)]
pub struct ParentServers {
    /// The parent agents: authoritative servers of the parent.
    pub agents: Vec<Server>,
    /// A validating resolver whose answer must agree.
    pub validator: Option<Server>,
    /// The parent zone, when known: a `parent-update` server's
    /// `--parent-zone`, else what discovery found. Only its answers
    /// count (unknown: any zone above the child's).
    pub parent_zone: Option<Name>,
    /// What could not be used, one line each.
    pub problems: Vec<String>,
}

/// What one round of the check did.
#[derive(Debug, Default)]
pub struct Round {
    /// Every answer, one line.
    pub answers: String,
    /// What was recorded (`ds seen`/`ds gone`), one line each.
    pub observed: Vec<String>,
    /// What still waits, one line each.
    pub waiting: Vec<String>,
    /// When the next round is due (None: nothing waits).
    pub next_at: Option<i64>,
}

/// The keys whose DS change is pending and not yet observed (an
/// observation recorded and not yet taken in by a run is not asked for
/// again).
pub fn pending_keys(snapshot: &ZoneSnapshot) -> Vec<PendingKey> {
    let observed = |id: i64| {
        snapshot
            .pending
            .iter()
            .any(|(_, o)| matches!(*o, Observation::DsSeen { key } | Observation::DsGone { key } if key == id))
    };
    snapshot
        .keys
        .iter()
        .filter(|s| !observed(s.key.id))
        .filter_map(|s| {
            let want = match s.key.ds_pending? {
                true => Want::Seen,
                false => Want::Gone,
            };
            Some(PendingKey { id: s.key.id, tag: s.key.tag, dnskey: s.dnskey.clone(), want })
        })
        .collect()
}

/// Reads every TSIG key the database names from its file (for a command
/// run outside `signet serve`, which keeps them loaded).
pub async fn load_tsig_keys(db: &Database) -> Result<HashMap<String, Arc<TsigKey>>, ManageError> {
    let mut keys = HashMap::new();
    for row in db.tsig_keys().await? {
        let name = Name::from_text(&row.name, None).map_err(|e| ManageError::Argument(e.to_string()))?;
        let key = TsigKey::read_file_named(&row.secret_path, &name)
            .map_err(|e| ManageError::Argument(format!("TSIG key {}: {e}", row.name)))?;
        keys.insert(row.name, Arc::new(key));
    }
    Ok(keys)
}

/// Does the zone have anything to check the parent with?
pub fn has_agents(remotes: &[Remote]) -> bool {
    remotes.iter().any(|r| matches!(r.role, RemoteRole::ParentAgent | RemoteRole::ParentDiscovery))
}

/// The zone's agents (configured, and found through a discovering
/// resolver) and its validating resolver.
pub async fn parent_servers(zone: &Name, remotes: &[Remote], keys: KeyLookup<'_>) -> ParentServers {
    parent_servers_from(zone, remotes, keys, &SourceDefaults::default()).await
}

/// The zone's own `transfer-source` among its remotes (rows that do not
/// read are left out: they were checked when stored).
pub fn zone_transfer_source(remotes: &[Remote]) -> Vec<IpAddr> {
    remotes
        .iter()
        .filter(|r| r.role == RemoteRole::TransferSource)
        .filter_map(|r| r.address.as_deref()?.parse().ok())
        .collect()
}

/// [`parent_servers`], each asked from the source `sources` and the
/// zone's own `transfer-source` choose (`xfr::source`).
pub async fn parent_servers_from(
    zone: &Name,
    remotes: &[Remote],
    keys: KeyLookup<'_>,
    sources: &SourceDefaults,
) -> ParentServers {
    let choice = sources.transfer(&zone_transfer_source(remotes));
    let mut servers = ParentServers { parent_zone: configured_parent(remotes), ..ParentServers::default() };
    for remote in remotes.iter().filter(|r| r.role.is_parent()) {
        let Some(addr) = remote.address.as_deref().and_then(|a| parse_socket(a).ok()) else {
            servers.problems.push(format!("{} {:?}: not an address", remote.role.as_str(), remote.address));
            continue;
        };
        let key = match remote.tsig_key.as_deref() {
            Some(name) => match keys(name) {
                Some(key) => Some(key),
                None => {
                    servers.problems.push(format!("{} {addr}: TSIG key {name} is not loaded", remote.role.as_str()));
                    continue;
                }
            },
            None => None,
        };
        let source = choice.for_peer(addr).ip;
        match remote.role {
            RemoteRole::ParentAgent => servers.agents.push(Server { addr, key, source }),
            RemoteRole::ParentValidator => servers.validator = Some(Server { addr, key, source }),
            RemoteRole::ParentDiscovery => discover(zone, addr, &choice, &mut servers).await,
            _ => {}
        }
    }
    servers
}

/// The parent zone a `parent-update` server was configured with
/// (`--parent-zone`), if any.
fn configured_parent(remotes: &[Remote]) -> Option<Name> {
    remotes
        .iter()
        .filter(|r| r.role == RemoteRole::ParentUpdate)
        .find_map(|r| r.parent_zone.as_deref().and_then(|z| Name::from_text(z, Some(Name::root().as_ref())).ok()))
}

/// Adds the parent's name servers, as the resolver at `resolver` finds
/// them, to the agents; the parent zone it found is the parent's side
/// of the cut, unless one is configured.
async fn discover(zone: &Name, resolver: SocketAddr, choice: &SourceChoice, servers: &mut ParentServers) {
    let source = choice.for_peer(resolver).ip;
    match crate::parent::discover::parent_servers_from(resolver, source, zone, DISCOVERY_TIMEOUT).await {
        Ok(found) => {
            match &servers.parent_zone {
                None => servers.parent_zone = Some(found.parent_zone.clone()),
                Some(configured) if !configured.as_ref().eq_ignore_case(found.parent_zone.as_ref()) => {
                    servers.problems.push(format!(
                        "discovery through {resolver} found the parent zone {}, not the configured {configured}: \
                         only answers of {configured} count",
                        found.parent_zone
                    ));
                }
                Some(_) => {}
            }
            for addr in found.addresses() {
                if !servers.agents.iter().any(|a| a.addr == addr) {
                    servers.agents.push(Server { addr, key: None, source: choice.for_peer(addr).ip });
                }
            }
        }
        Err(e) => servers.problems.push(format!("discovery through {resolver}: {}", Chain(&e))),
    }
}

/// How long finding the parent's servers may take, all queries included.
const DISCOVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long one update server may take, UDP and TCP retry included.
const UPDATE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Asks every agent, and the validator, at once.
async fn ask_all(zone: &Name, servers: &ParentServers) -> (Vec<ServerAnswer>, Option<ServerAnswer>) {
    let cut = Cut { child: zone.clone(), parent: servers.parent_zone.clone() };
    let mut asked = JoinSet::new();
    for (i, agent) in servers.agents.iter().enumerate() {
        let (agent, cut) = (agent.clone(), cut.clone());
        asked.spawn(async move { (i, ask(&agent, &cut, Asking::Agent).await) });
    }
    let validator = servers.validator.clone().map(|validator| {
        let cut = cut.clone();
        tokio::spawn(async move { ask(&validator, &cut, Asking::Validator).await })
    });
    let mut answers: Vec<(usize, ServerAnswer)> = asked.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    let validator = match validator {
        Some(task) => task.await.ok(),
        None => None,
    };
    (answers.into_iter().map(|(_, a)| a).collect(), validator)
}

/// The wait after the `checks`-th check: the policy's first interval,
/// doubled for each check since, at most its longest.
pub fn backoff(parent: &ParentPolicy, checks: i64) -> i64 {
    let doublings = u32::try_from(checks.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    parent.check_interval_min.saturating_mul(1 << doublings).min(parent.check_interval)
}

/// The rows the check keeps for `pending`: a key's row carries over
/// while it waits for the same thing; a new one starts now.
fn carried_rows(pending: &[PendingKey], previous: &[DsCheck], now: i64) -> Vec<DsCheck> {
    pending
        .iter()
        .map(|key| {
            previous.iter().find(|row| row.key_id == key.id && row.want == key.want.as_str()).cloned().unwrap_or(
                DsCheck {
                    key_id: key.id,
                    want: key.want.as_str().to_owned(),
                    since: now,
                    checked_at: None,
                    next_at: Some(now),
                    checks: 0,
                    answers: None,
                },
            )
        })
        .collect()
}

/// When the zone's next round is due: the earliest of its rows (None:
/// nothing is pending).
pub fn next_due(rows: &[DsCheck]) -> Option<i64> {
    rows.iter().filter_map(|r| r.next_at).min()
}

/// Runs one round of the check for the zone in `snapshot` at `now` (if
/// `force`, whatever the rows say is due; else only when a row is due):
/// asks every server, records each conclusive verdict as an observation
/// with its audit row, keeps the rows of what still waits.
pub async fn check_round(
    db: &Database,
    snapshot: &ZoneSnapshot,
    keys: KeyLookup<'_>,
    now: i64,
    force: bool,
) -> Result<Round, ManageError> {
    check_round_from(db, snapshot, keys, now, force, &SourceDefaults::default()).await
}

/// [`check_round`], the servers asked from the source `sources` and the
/// zone's own `transfer-source` choose.
pub async fn check_round_from(
    db: &Database,
    snapshot: &ZoneSnapshot,
    keys: KeyLookup<'_>,
    now: i64,
    force: bool,
    sources: &SourceDefaults,
) -> Result<Round, ManageError> {
    let zone = &snapshot.zone;
    let origin = Name::from_text(&zone.name, None).map_err(|e| ManageError::Argument(e.to_string()))?;
    let pending = pending_keys(snapshot);
    let stored = db.ds_checks(zone.id).await?;
    // Nothing pending (a service's idle round for every zone it holds):
    // one read, and a write only to clear what an earlier change left.
    if pending.is_empty() {
        if !stored.is_empty() {
            db.set_ds_checks(zone.id, &[], snapshot.fence.as_ref()).await?;
        }
        return Ok(Round::default());
    }
    let remotes = db.remotes(zone.id).await?;
    let mut rows = carried_rows(&pending, &stored, now);
    if !has_agents(&remotes) {
        db.set_ds_checks(zone.id, &[], snapshot.fence.as_ref()).await?;
        return Ok(Round::default());
    }
    if !force && next_due(&rows).is_some_and(|at| at > now) {
        db.set_ds_checks(zone.id, &rows, snapshot.fence.as_ref()).await?;
        return Ok(Round { next_at: next_due(&rows), ..Round::default() });
    }
    let servers = parent_servers_from(&origin, &remotes, keys, sources).await;
    for problem in &servers.problems {
        tracing::warn!(zone = %zone.name, "parent check: {problem}");
    }
    let (agents, validator) = ask_all(&origin, &servers).await;
    let answers = answers_text(&agents, validator.as_ref());
    let mut round = Round { answers: answers.clone(), ..Round::default() };
    for key in &pending {
        let verdict = judge(&origin, key, &agents, validator.as_ref());
        let row = rows.iter_mut().find(|r| r.key_id == key.id);
        match (verdict, row) {
            (Verdict::Observed(observation), _) => {
                let (kind, what) = match key.want {
                    Want::Seen => (EventKind::DsSeen, "serves"),
                    Want::Gone => (EventKind::DsGone, "no longer serves"),
                };
                let why = format!("parent check: every agent {what} the DS of key tag {}: {answers}", key.tag);
                let event = Event::note(now, Actor::Machine, kind, Some(key.id), &why);
                db.observe(zone.id, &observation, &event, snapshot.fence.as_ref()).await?;
                tracing::info!(zone = %zone.name, tag = key.tag, "{why}");
                round.observed.push(why);
                rows.retain(|r| r.key_id != key.id);
            }
            (Verdict::Waiting(why), Some(row)) => {
                row.checks += 1;
                row.checked_at = Some(now);
                row.next_at = Some(now + backoff(&snapshot.policy.parent, row.checks));
                row.answers = Some(answers.clone());
                round.waiting.push(format!("key tag {}: {why}", key.tag));
            }
            (Verdict::Waiting(_), None) => {}
        }
    }
    db.set_ds_checks(zone.id, &rows, snapshot.fence.as_ref()).await?;
    round.next_at = next_due(&rows);
    Ok(round)
}

/// How long the submit command may run.
const SUBMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The DS set the zone wants at its parent, while a DS change is pending
/// (None: nothing to submit).
pub fn wanted_ds(snapshot: &ZoneSnapshot, origin: &Name) -> Option<WantedDs> {
    if !snapshot.keys.iter().any(|k| k.key.ds_pending.is_some()) {
        return None;
    }
    let keys: Vec<_> = snapshot.keys.iter().map(|s| s.key.clone()).collect();
    let wanted = crate::rollover::wanted_ds(&keys);
    let published: Vec<PublishedKey> = snapshot
        .keys
        .iter()
        .filter(|s| wanted.contains(&s.key.id))
        .map(|s| PublishedKey::from_public(s.key.algorithm, s.dnskey.get(4..).unwrap_or_default(), s.key.role))
        .collect();
    let parent = &snapshot.policy.parent;
    let ttl = |t: i64| u32::try_from(t).unwrap_or(u32::MAX);
    let dnskey_ttl = ttl(snapshot.policy.keys.dnskey_ttl);
    WantedDs::from_keys(origin, &published, parent.digest.number(), ttl(parent.ds_ttl), dnskey_ttl)
}

/// The DS set the zone wants at its parent now: from its keys' states,
/// or, with an offline KSK, from the CDS of the response in force
/// ([`super::offline::wanted_ds`]).
pub async fn wanted_ds_now(
    db: &Database,
    snapshot: &ZoneSnapshot,
    origin: &Name,
    now: i64,
) -> Result<Option<WantedDs>, ManageError> {
    if snapshot.policy.keys.offline_ksk {
        return super::offline::wanted_ds(db, snapshot, origin, now).await;
    }
    Ok(wanted_ds(snapshot, origin))
}

/// Submits the wanted DS set by the policy's command and to every update
/// server, unless that very set was submitted already (or failed, and its
/// retry is not yet due). Returns when to try again after a failure.
pub async fn submit_round(
    db: &Database,
    snapshot: &ZoneSnapshot,
    keys: KeyLookup<'_>,
    now: i64,
) -> Result<Option<i64>, ManageError> {
    submit_round_from(db, snapshot, keys, now, &SourceDefaults::default()).await
}

/// [`submit_round`], the UPDATEs sent from the source `sources` and the
/// zone's own `transfer-source` choose.
pub async fn submit_round_from(
    db: &Database,
    snapshot: &ZoneSnapshot,
    keys: KeyLookup<'_>,
    now: i64,
    sources: &SourceDefaults,
) -> Result<Option<i64>, ManageError> {
    let zone = &snapshot.zone;
    let origin = Name::from_text(&zone.name, None).map_err(|e| ManageError::Argument(e.to_string()))?;
    let Some(wanted) = wanted_ds_now(db, snapshot, &origin, now).await? else { return Ok(None) };
    let command = snapshot.policy.parent.submit_command.as_deref();
    let remotes = db.remotes(zone.id).await?;
    let choice = sources.transfer(&zone_transfer_source(&remotes));
    let updates: Vec<Remote> = remotes.into_iter().filter(|r| r.role == RemoteRole::ParentUpdate).collect();
    if command.is_none() && updates.is_empty() {
        return Ok(None);
    }
    let text = submission_text(&wanted);
    let previous = db.ds_submission(zone.id).await?.filter(|p| p.wanted == text);
    let attempts = previous.as_ref().map_or(0, |p| p.attempts);
    if let Some(p) = &previous {
        let retry_at = p.error_at.map(|at| at + backoff(&snapshot.policy.parent, attempts));
        match retry_at {
            None if p.submitted_at.is_some() => return Ok(None),
            Some(at) if at > now => return Ok(Some(at)),
            _ => {}
        }
    }
    let (via, errors) = submit(&wanted, command, &updates, &origin, keys, &choice).await;
    // The text is tab-separated (zone/writer): the type is the fourth field.
    let ds: Vec<String> = text
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.get(3) == Some(&"DS"))
        .map(|fields| fields.join(" "))
        .collect();
    let record = DsSubmission {
        wanted: text,
        via: Some(via.join(", ")),
        submitted_at: errors.is_empty().then_some(now),
        attempts: attempts + 1,
        error_at: (!errors.is_empty()).then_some(now),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
    };
    let why = match &record.error {
        None => format!("DS set submitted to the parent by {}: {}", via.join(" and "), ds.join("; ")),
        Some(error) => format!("DS submission to the parent failed: {error}"),
    };
    tracing::info!(zone = %zone.name, "{why}");
    let event = Event::note(now, Actor::Machine, EventKind::DsRequested, None, why);
    db.record_ds_submission(zone.id, &record, &event, snapshot.fence.as_ref()).await?;
    Ok(record.error_at.map(|at| at + backoff(&snapshot.policy.parent, record.attempts)))
}

/// Runs the command and every update; what was used and what failed.
async fn submit(
    wanted: &WantedDs,
    command: Option<&str>,
    updates: &[Remote],
    origin: &Name,
    keys: KeyLookup<'_>,
    choice: &SourceChoice,
) -> (Vec<String>, Vec<String>) {
    let (mut via, mut errors) = (Vec::new(), Vec::new());
    if let Some(command) = command {
        via.push("submit-command".to_owned());
        if let Err(e) = run_submit_command(command, wanted, SUBMIT_TIMEOUT).await {
            errors.push(Chain(&e).to_string());
        }
    }
    for update in updates {
        let address = update.address.as_deref().unwrap_or_default();
        via.push(format!("update at {address}"));
        if let Err(e) = push_one(wanted, update, origin, keys, choice).await {
            errors.push(Chain(&e).to_string());
        }
    }
    (via, errors)
}

/// Why one update of the parent's DS RRset failed.
#[derive(Debug, thiserror::Error)]
enum UpdateError {
    /// The remote's address does not read.
    #[error("update server {address}")]
    Address {
        /// The address as stored.
        address: String,
        /// Why it does not read.
        source: AddressError,
    },
    /// The remote names a TSIG key the service has not loaded.
    #[error("update server {address}: TSIG key {name} is not loaded")]
    KeyNotLoaded {
        /// The server.
        address: String,
        /// The key's name.
        name: String,
    },
    /// The remote's parent zone does not read.
    #[error("parent zone {zone}")]
    ParentZone {
        /// The name as stored.
        zone: String,
        /// Why it does not read.
        source: NameError,
    },
    /// The root zone was to be updated at its parent.
    #[error("the root has no parent to update")]
    Root,
    /// The update was sent and failed.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// No answer in time.
    #[error("update server {address}: no answer within {seconds} s")]
    Timeout {
        /// The server.
        address: String,
        /// The time allowed.
        seconds: u64,
    },
}

/// One RFC 2136 update of the parent's DS RRset at `update`'s server.
async fn push_one(
    wanted: &WantedDs,
    update: &Remote,
    origin: &Name,
    keys: KeyLookup<'_>,
    choice: &SourceChoice,
) -> Result<(), UpdateError> {
    let address = update.address.as_deref().unwrap_or_default();
    let server =
        parse_socket(address).map_err(|source| UpdateError::Address { address: address.to_owned(), source })?;
    let key = match update.tsig_key.as_deref() {
        Some(name) => Some(
            keys(name)
                .ok_or_else(|| UpdateError::KeyNotLoaded { address: address.to_owned(), name: name.to_owned() })?,
        ),
        None => None,
    };
    let parent_zone = match update.parent_zone.as_deref() {
        Some(zone) => {
            Name::from_text(zone, None).map_err(|source| UpdateError::ParentZone { zone: zone.to_owned(), source })?
        }
        None => origin.as_ref().parent().map(|p| p.to_owned()).ok_or(UpdateError::Root)?,
    };
    let source = choice.for_peer(server).ip;
    match tokio::time::timeout(UPDATE_LIMIT, push_update_from(server, source, key.as_ref(), &parent_zone, wanted)).await
    {
        Ok(result) => Ok(result?),
        Err(_) => Err(UpdateError::Timeout { address: address.to_owned(), seconds: UPDATE_LIMIT.as_secs() }),
    }
}
