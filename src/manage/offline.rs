//! The offline KSK's two sides (issue 27).
//!
//! Online, with a policy's `keys.offline-ksk`: the zone's database holds
//! only ZSKs. [`write_request`] plans the ZSKs the rollover machine will
//! publish, period by period, making the keys it will need ahead of their
//! time (each recorded as made when the plan makes it), and writes the
//! request. [`import_response`] checks every signature of a response and
//! that it answers the requests written before storing it. Each run then
//! publishes the DNSKEY RRset and RRSIGs of the period in force
//! ([`advance_with_response`]): the machine moves the ZSKs within what
//! that period publishes, the KSKs stand in as omnipresent keys, and the
//! gate verifies the response's signatures like every other.
//!
//! On the KSK side, a database and a token holding only the KSKs:
//! [`sign_request`] checks a request, runs the KSK's rollover machine
//! across its periods (from its plan at the request's start), and signs
//! each period's DNSKEY RRset (and CDS/CDNSKEY where the policy publishes
//! them), splitting periods where the machine moves a KSK and where the
//! signatures would otherwise age past the policy's refresh.

use std::collections::HashMap;
use std::path::Path;

use super::keys::{Within, advance_making_keys, machine_keys, open_proven, stored_public};
use super::run::{anchor_key_paths, database_dir, step_events};
use super::{ManageError, zone_name, zone_origin};
use crate::db::{
    Actor, Database, Event, EventKind, NewZone, OfflineCommit, OfflinePeriod, OfflineSide, StoredKey, ZoneSnapshot,
};
use crate::keys::{KeyUri, SigningKey, SmallFileError, read_small_file};
use crate::offline::{self, Document, Kind, Period, Record, check_request, check_response, split_keys};
use crate::parent::submit::WantedDs;
use crate::rollover::{self, Action, Key, Observation, RecordState, Step, publication};
use crate::sign::{PresignedKeys, Signer, Window, sign_apex_rrset};
use crate::time::format_time;
use crate::zone::dnssec::{Algorithm, Dnskey, Role, key_tag};
use crate::zone::{Name, Rtype, read_records_str};

/// A request or response longer than this is not one.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// At most this many machine steps in one plan.
const MAX_STEPS: usize = 100_000;

/// A request written ([`write_request`]).
#[derive(Debug)]
pub struct RequestWritten {
    /// Its text.
    pub text: String,
    /// Each period's start and ZSK key tags.
    pub periods: Vec<(i64, Vec<u16>)>,
    /// Key tags of the ZSKs made for it, ahead of their time.
    pub made: Vec<u16>,
}

/// A response imported ([`import_response`]).
#[derive(Debug)]
pub struct ResponseImported {
    /// Its periods.
    pub periods: usize,
    /// The first period's start.
    pub first: i64,
    /// The last period's start.
    pub last: i64,
    /// When the last period's signatures expire.
    pub expires: i64,
    /// Key tags of its KSKs.
    pub ksks: Vec<u16>,
    /// The zone trusted no KSK before: these are trusted from now on.
    pub first_trust: bool,
}

/// A response signed on the KSK side ([`sign_request`]).
#[derive(Debug)]
pub struct ResponseSigned {
    /// Its text.
    pub text: String,
    /// Its periods (the request's, split where needed).
    pub periods: usize,
    /// Key tags of the KSKs it publishes.
    pub ksks: Vec<u16>,
    /// Key state transitions planned across it.
    pub transitions: usize,
}

/// How far the imported responses reach ([`response_cover`]).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ResponseCover {
    /// The last period's start.
    pub last_start: i64,
    /// When the last period's signatures expire: nothing can be published
    /// after (less the policy's refresh).
    pub expires: i64,
    /// From when `signet status` warns (the policy's `response-warning`
    /// before `expires`).
    pub warn_from: i64,
}

fn refuse(snapshot: &ZoneSnapshot, reason: impl Into<String>) -> ManageError {
    ManageError::Offline { zone: zone_name(snapshot).to_owned(), reason: reason.into() }
}

async fn offline_snapshot(db: &Database, name: &Name, side: Role) -> Result<ZoneSnapshot, ManageError> {
    let mut snapshot = db.snapshot(name).await?;
    anchor_key_paths(&mut snapshot, &database_dir(db));
    if !snapshot.policy.keys.offline_ksk {
        let policy = snapshot.policy.name.clone();
        return Err(refuse(&snapshot, format!("policy {policy} does not keep the KSK offline (keys.offline-ksk)")));
    }
    if let Some(refusal) = wrong_side(&snapshot, side) {
        return Err(refusal);
    }
    Ok(snapshot)
}

/// A key this database holds that belongs to the other side: a KSK where
/// `side` is the online signer's (`Role::Zsk`), a ZSK where it is the KSK
/// side's.
fn other_sides_key(snapshot: &ZoneSnapshot, side: Role) -> Option<&StoredKey> {
    let theirs = |k: &&StoredKey| if side == Role::Zsk { k.key.role.signs_keys() } else { k.key.role.signs_zone() };
    snapshot.keys.iter().find(theirs)
}

/// The refusal of a command of `side` on the other side's database.
fn wrong_side(snapshot: &ZoneSnapshot, side: Role) -> Option<ManageError> {
    let key = other_sides_key(snapshot, side)?;
    let (this, other) = match side {
        Role::Zsk => ("the KSK side's", "it signs requests (signet ksr sign); the online signer signs the zone"),
        _ => ("the online signer's", "requests are signed on the KSK side"),
    };
    Some(refuse(
        snapshot,
        format!("this database holds {} key tag {}: it is {this}; {other}", key.key.role, key.key.tag),
    ))
}

fn read_file(snapshot: &ZoneSnapshot, file: &Path) -> Result<String, ManageError> {
    let cannot = |e: SmallFileError| refuse(snapshot, format!("{}: {e}", file.display()));
    let bytes = read_small_file(file, MAX_FILE_BYTES).map_err(cannot)?;
    String::from_utf8(bytes).map_err(|_| cannot(SmallFileError::NotUtf8))
}

/// A key that stands in for a key of the other side, every record its
/// role affects omnipresent (the other side vouches for it), but a KSK's
/// DS while the zone was never published (`unpublished`): no resolver
/// holds anything of the zone, so its first ZSK may sign at once, as a
/// new zone's first key does.
fn stand_in(id: i64, role: Role, algorithm: Algorithm, tag: u16, unpublished: bool) -> Key {
    let mut key = Key::new(id, role, algorithm, tag, 0);
    let affected: Vec<rollover::Record> = rollover::Record::ALL.into_iter().filter(|&r| key.affects(r)).collect();
    for record in affected.into_iter().filter(|&r| !(unpublished && r == rollover::Record::Ds)) {
        key.set(record, RecordState::Omnipresent, 0);
    }
    key
}

/// A period's records as master-file text, as stored.
fn period_body(zone: &Name, period: &Period) -> String {
    let mut body = String::new();
    offline::write_records(zone, &period.records, &mut body);
    body
}

/// A stored period read back.
fn stored_period(snapshot: &ZoneSnapshot, zone: &Name, stored: &OfflinePeriod) -> Result<Period, ManageError> {
    let source = Path::new("(stored offline period)");
    let records = read_records_str(&stored.body, zone, source)
        .map_err(|e| refuse(snapshot, format!("stored period {}: {e}", format_time(stored.start))))?;
    let records = records.into_iter().map(|r| Record { rtype: r.rtype, ttl: r.ttl, rdata: r.rdata, line: 0 }).collect();
    Ok(Period { start: stored.start, line: 0, records })
}

fn tags<'a>(rdatas: impl IntoIterator<Item = &'a [u8]>) -> Vec<u16> {
    rdatas.into_iter().map(key_tag).collect()
}

// ---------------------------------------------------------------- online

/// Writes a request for the periods from `from` to `until`: the ZSKs the
/// machine will publish, period by period, as it plans them now (from the
/// keys' stored states, assuming each run comes when due), making the
/// ZSKs it will need in the key store. The request's last period starts
/// at `until` and lasts until the next response takes over.
pub async fn write_request(
    db: &Database,
    name: &Name,
    (from, until): (i64, i64),
    now: i64,
    key_store: Option<&KeyUri>,
) -> Result<RequestWritten, ManageError> {
    let mut snapshot = offline_snapshot(db, name, Role::Zsk).await?;
    if from < now {
        let reason = format!("the request would start at {}, before now: the past is published", format_time(from));
        return Err(refuse(&snapshot, reason));
    }
    if until <= from {
        return Err(refuse(&snapshot, format!("the request ends ({}) before it starts", format_time(until))));
    }
    let origin = zone_origin(&snapshot)?;
    let store = key_store.cloned().or_else(|| snapshot.policy.keys.store.clone());
    let before: Vec<i64> = snapshot.keys.iter().map(|k| k.key.id).collect();
    // A zone already published is planned from now, as its runs will go
    // (keys made then, not at the request's start); one never published
    // from the request's start, its first publication.
    let start = if snapshot.zone.last_serial.is_none() { from } else { now.min(from) };
    let planned = plan_zsks(db, &mut snapshot, (store.as_ref(), &origin), start, until).await?;
    let in_force = planned.iter().rev().find(|(t, _)| *t <= from).map(|(_, zsks)| zsks.clone()).unwrap_or_default();
    let mut plan = vec![(from, in_force)];
    plan.extend(planned.into_iter().filter(|(t, _)| *t > from && *t < until));
    let last = plan.last().map(|(_, zsks)| zsks.clone()).unwrap_or_default();
    plan.push((until, last));
    let document = request_document(&snapshot, &origin, &plan)?;
    let text = offline::write(&document, now);
    let stored: Vec<OfflinePeriod> = document
        .periods
        .iter()
        .map(|p| OfflinePeriod { start: p.start, body: period_body(&origin, p), expires: None })
        .collect();
    let made: Vec<u16> = snapshot.keys.iter().filter(|k| !before.contains(&k.key.id)).map(|k| k.key.tag).collect();
    let periods: Vec<(i64, Vec<u16>)> =
        document.periods.iter().map(|p| (p.start, tags(p.rdatas(Rtype::DNSKEY)))).collect();
    let why = format!(
        "key signing request written for {} to {}: {} periods; ZSKs made ahead for it: {made:?}",
        format_time(from),
        format_time(until),
        periods.len()
    );
    let events = [Event::note(now, Actor::Operator, EventKind::Offline, None, why)];
    let sides = [(OfflineSide::Request, stored.as_slice())];
    let commit = OfflineCommit { sides: &sides, events: &events, ..OfflineCommit::default() };
    db.commit_offline(snapshot.zone.id, &commit, now).await?;
    Ok(RequestWritten { text, periods, made })
}

/// The ZSKs the machine publishes from `start` to `until`: each change of
/// the set, with its time. The operator's pending requests (a rollover, a
/// compromised key) are taken in at `start` (the next run takes them in
/// for good); the keys the machine asks for are made, each as of the time
/// the plan makes it.
async fn plan_zsks(
    db: &Database,
    snapshot: &mut ZoneSnapshot,
    (store, origin): (Option<&KeyUri>, &Name),
    start: i64,
    until: i64,
) -> Result<Vec<(i64, Vec<i64>)>, ManageError> {
    let algorithm = snapshot.policy.keys.algorithm;
    let pending: Vec<Observation> = snapshot.pending.iter().map(|(_, o)| o.clone()).collect();
    let mut keys = machine_keys(&snapshot.keys);
    let mut unpublished = snapshot.zone.last_serial.is_none();
    let mut plan: Vec<(i64, Vec<i64>)> = Vec::new();
    let mut t = start;
    for step_number in 0..MAX_STEPS {
        // The plan assumes the zone is published from its first step on.
        keys.retain(|k| k.id >= 0);
        keys.push(stand_in(-1, Role::Ksk, algorithm, 0, unpublished));
        unpublished = false;
        let seen: &[Observation] = if step_number == 0 { &pending } else { &[] };
        let step = advance_making_keys(db, snapshot, (store, origin), keys, t, seen, None).await?;
        let zsks: Vec<i64> = publication(&step.keys).dnskey.into_iter().filter(|&id| id >= 0).collect();
        if plan.last().is_none_or(|(_, last)| *last != zsks) {
            plan.push((t, zsks));
        }
        keys = step.keys;
        match step.next.filter(|&next| next > t && next < until) {
            Some(next) => t = next,
            None => break,
        }
    }
    Ok(plan)
}

fn request_document(snapshot: &ZoneSnapshot, origin: &Name, plan: &[(i64, Vec<i64>)]) -> Result<Document, ManageError> {
    let ttl = snapshot.policy.keys.dnskey_ttl as u32;
    let mut periods = Vec::with_capacity(plan.len());
    for (start, zsks) in plan {
        let mut records = Vec::with_capacity(zsks.len());
        for id in zsks {
            let Some(key) = snapshot.keys.iter().find(|k| k.key.id == *id) else {
                return Err(refuse(snapshot, format!("the plan publishes key {id}, which is not stored")));
            };
            records.push(Record { rtype: Rtype::DNSKEY, ttl, rdata: key.dnskey.clone(), line: 0 });
        }
        periods.push(Period { start: *start, line: 0, records });
    }
    Ok(Document { kind: Kind::Request, zone: origin.clone(), periods })
}

/// Imports a response: checks it against the requests this zone wrote and
/// the KSKs it trusts (every signature verified), and stores its periods
/// in place of the stored ones from its first period on. Nothing is
/// stored unless all of it passes.
pub async fn import_response(
    db: &Database,
    name: &Name,
    file: &Path,
    now: i64,
) -> Result<ResponseImported, ManageError> {
    let snapshot = offline_snapshot(db, name, Role::Zsk).await?;
    let origin = zone_origin(&snapshot)?;
    let text = read_file(&snapshot, file)?;
    let document = offline::parse(&text, Kind::Response, &origin, file)?;
    let zone_id = snapshot.zone.id;
    let requested = stored_periods(db, &snapshot, &origin, OfflineSide::Request).await?;
    if requested.is_empty() {
        return Err(refuse(&snapshot, "no request was written for this zone (signet ksr request)"));
    }
    let mut trusted: Vec<Vec<u8>> = stored_periods(db, &snapshot, &origin, OfflineSide::Response)
        .await?
        .iter()
        .flat_map(|p| split_keys(p).0)
        .collect();
    trusted.sort();
    trusted.dedup();
    let zsks_at = |start: i64| {
        let period = requested.iter().rev().find(|p| p.start <= start)?;
        Some(period.rdatas(Rtype::DNSKEY).map(<[u8]>::to_vec).collect())
    };
    let checked = check_response(&document, file, &trusted, zsks_at)?;
    let stored: Vec<OfflinePeriod> = checked
        .iter()
        .map(|c| OfflinePeriod {
            start: c.period.start,
            body: period_body(&origin, &c.period),
            expires: Some(c.expires),
        })
        .collect();
    let (first, last) = (stored[0].start, stored[stored.len() - 1].start);
    let expires = checked.last().map_or(last, |c| c.expires);
    let mut ksks: Vec<u16> = checked.iter().flat_map(|c| split_keys(&c.period).0).map(|k| key_tag(&k)).collect();
    ksks.sort_unstable();
    ksks.dedup();
    let first_trust = trusted.is_empty();
    let trust = if first_trust {
        format!("; the zone's first response: its KSKs {ksks:?} are trusted from now on (compare them with the DS)")
    } else {
        String::new()
    };
    let why = format!(
        "signed key response imported from {}: {} periods from {} to {}, signatures until {}{trust}",
        file.display(),
        stored.len(),
        format_time(first),
        format_time(last),
        format_time(expires)
    );
    let events = [Event::note(now, Actor::Operator, EventKind::Offline, None, why)];
    let sides = [(OfflineSide::Response, stored.as_slice())];
    let commit = OfflineCommit { sides: &sides, events: &events, ..OfflineCommit::default() };
    db.commit_offline(zone_id, &commit, now).await?;
    // A service runs the zone at once: the response may change what is
    // in force now (an emergency) and when the next period starts.
    db.request_reload(name, now).await?;
    Ok(ResponseImported { periods: stored.len(), first, last, expires, ksks, first_trust })
}

async fn stored_periods(
    db: &Database,
    snapshot: &ZoneSnapshot,
    origin: &Name,
    side: OfflineSide,
) -> Result<Vec<Period>, ManageError> {
    let rows = db.offline_periods(snapshot.zone.id, side).await?;
    rows.iter().map(|row| stored_period(snapshot, origin, row)).collect()
}

/// How far the zone's imported responses reach, if it has any.
pub async fn response_cover(db: &Database, zone_id: i64, warning: i64) -> Result<Option<ResponseCover>, ManageError> {
    let (last, _) = db.offline_periods_at(zone_id, OfflineSide::Response, i64::MAX, 1).await?;
    Ok(last.first().map(|last| {
        let expires = last.expires.unwrap_or(last.start);
        ResponseCover { last_start: last.start, expires, warn_from: expires - warning }
    }))
}

/// The DS set the zone asks its parent for with an offline KSK: the CDS
/// records of the response's period in force at `now` (the KSK side
/// publishes them while it wants a DS change), with the CDNSKEYs beside
/// them; `None` while the period publishes none. The submission goes on
/// as for any zone (`manage::parent::submit_round`: the policy's
/// submit-command, RFC 2136 UPDATE to the zone's parent-update servers).
pub async fn wanted_ds(
    db: &Database,
    snapshot: &ZoneSnapshot,
    origin: &Name,
    now: i64,
) -> Result<Option<WantedDs>, ManageError> {
    let (in_force, _) = db.offline_periods_at(snapshot.zone.id, OfflineSide::Response, now, 1).await?;
    let Some(row) = in_force.first() else { return Ok(None) };
    let period = stored_period(snapshot, origin, row)?;
    let ds: Vec<Vec<u8>> = period.rdatas(Rtype::CDS).map(<[u8]>::to_vec).collect();
    if ds.is_empty() {
        return Ok(None);
    }
    let ttl = |t: i64| u32::try_from(t).unwrap_or(u32::MAX);
    Ok(Some(WantedDs {
        zone: origin.clone(),
        ds,
        dnskeys: period.rdatas(Rtype::CDNSKEY).map(<[u8]>::to_vec).collect(),
        ds_ttl: ttl(snapshot.policy.parent.ds_ttl),
        dnskey_ttl: ttl(snapshot.policy.keys.dnskey_ttl),
    }))
}

/// What the operator must do about the imported responses, if anything:
/// the first import, or the next ceremony once the responses run out
/// within the policy's `keys.response-warning`. Not for the KSK side.
pub fn cover_todo(snapshot: &ZoneSnapshot, cover: Option<ResponseCover>, now: i64) -> Option<String> {
    if !snapshot.policy.keys.offline_ksk || other_sides_key(snapshot, Role::Zsk).is_some() {
        return None;
    }
    match cover {
        None => Some(
            "offline KSK: no signed key response imported: write a request (signet ksr request), have the KSK side \
             sign it (signet ksr sign) and import the response (signet skr import); nothing is published until then"
                .to_owned(),
        ),
        Some(cover) if now >= cover.warn_from => Some(format!(
            "offline KSK: the imported responses run out at {} ({} from now; the last period starts {}): \
             write a request, have it signed and import the response before then",
            format_time(cover.expires),
            crate::time::format_duration((cover.expires - now).max(0)),
            format_time(cover.last_start)
        )),
        Some(_) => None,
    }
}

/// What a run of a zone whose KSK is offline publishes.
pub(super) struct InForce {
    /// The machine's step, within the period in force.
    pub step: Step,
    /// The period's key RRsets and their signatures.
    pub presigned: PresignedKeys,
    /// When the next stored period starts: the run after is due then.
    pub next_period: Option<i64>,
}

/// The machine's step for a run of a zone whose KSK is offline, and the
/// key RRsets it publishes: those of the latest period in force (started,
/// its signatures valid for at least the policy's refresh) whose DNSKEY
/// RRset the key states allow. A run late for a period's ZSK change stays
/// on the period before while its signatures last.
pub(super) async fn advance_with_response(
    db: &Database,
    snapshot: &mut ZoneSnapshot,
    key_store: Option<&KeyUri>,
    origin: &Name,
    now: i64,
) -> Result<InForce, ManageError> {
    if let Some(refusal) = wrong_side(snapshot, Role::Zsk) {
        return Err(refusal);
    }
    // The three latest periods started: a run stays at most that far behind.
    let (started, next_period) = db.offline_periods_at(snapshot.zone.id, OfflineSide::Response, now, 3).await?;
    let min_validity = snapshot.policy.signatures.refresh;
    let usable: Vec<&OfflinePeriod> =
        started.iter().filter(|p| p.expires.unwrap_or(p.start) - now >= min_validity).collect();
    let mut refusals = Vec::new();
    for row in &usable {
        let period = stored_period(snapshot, origin, row)?;
        let Some(within) = response_within(snapshot, &period, &mut refusals) else { continue };
        let step = super::keys::advance_with_new_keys(db, snapshot, key_store, origin, now, Some(&within)).await?;
        let published = publication(&step.keys).dnskey;
        let mut wanted: Vec<i64> = within.dnskeys.iter().copied().filter(|&id| id >= 0).collect();
        wanted.sort_unstable();
        let mut have = published.clone();
        have.sort_unstable();
        if have == wanted {
            return Ok(InForce { step, presigned: presigned(&period), next_period });
        }
        refusals.push(format!(
            "the period from {} publishes ZSKs {:?}; the key states allow {:?}",
            format_time(period.start),
            key_tags(snapshot, &wanted),
            key_tags(snapshot, &have)
        ));
    }
    let reason = match (response_cover(db, snapshot.zone.id, 0).await?, refusals.is_empty()) {
        (None, _) => "no signed key response imported (signet skr import): nothing new is published".to_owned(),
        (Some(last), true) => format!(
            "no imported response covers {} with DNSKEY signatures valid for {} more (the last period starts {}, \
             its signatures expire {}): nothing new is published; import a new response",
            format_time(now),
            crate::time::format_duration(min_validity),
            format_time(last.last_start),
            format_time(last.expires)
        ),
        (Some(_), false) => format!("no response in force fits the keys: {}", refusals.join("; ")),
    };
    Err(refuse(snapshot, reason))
}

fn key_tags(snapshot: &ZoneSnapshot, ids: &[i64]) -> Vec<u16> {
    ids.iter().filter_map(|id| snapshot.keys.iter().find(|k| k.key.id == *id)).map(|k| k.key.tag).collect()
}

/// What a period fixes for the machine: its ZSKs by stored id, its KSKs
/// as stand-ins. `None` (with the reason noted) when it names a ZSK this
/// zone does not hold.
fn response_within(snapshot: &ZoneSnapshot, period: &Period, refusals: &mut Vec<String>) -> Option<Within> {
    let (ksks, zsks) = split_keys(period);
    let mut within = Within::default();
    for rdata in &zsks {
        match snapshot.keys.iter().find(|k| k.dnskey == *rdata) {
            Some(key) => within.dnskeys.push(key.key.id),
            None => {
                refusals.push(format!(
                    "the period from {} names ZSK {}, which this zone does not hold",
                    format_time(period.start),
                    key_tag(rdata)
                ));
                return None;
            }
        }
    }
    for (i, rdata) in ksks.iter().enumerate() {
        let algorithm = Dnskey::parse(rdata).and_then(|k| Algorithm::from_number(k.algorithm))?;
        let id = -(i as i64) - 1;
        let unpublished = snapshot.zone.last_serial.is_none();
        within.stand_ins.push(stand_in(id, Role::Ksk, algorithm, key_tag(rdata), unpublished));
        within.dnskeys.push(id);
    }
    Some(within)
}

fn presigned(period: &Period) -> PresignedKeys {
    let (rrsigs, records): (Vec<&Record>, Vec<&Record>) = period.records.iter().partition(|r| r.rtype == Rtype::RRSIG);
    PresignedKeys {
        records: records.into_iter().map(|r| (r.rtype, r.ttl, r.rdata.clone())).collect(),
        rrsigs: rrsigs.into_iter().map(|r| r.rdata.clone()).collect(),
    }
}

// -------------------------------------------------------------- KSK side

/// Puts zone `name` under management as its offline KSK side: its policy
/// must keep the KSK offline; it has no input and no output (both are
/// stored as `offline-ksk:ZONE`, which no run reads: a run refuses a
/// database holding KSKs of such a zone).
pub async fn add_ksk_side(db: &Database, name: &Name, policy: &str, now: i64) -> Result<(), ManageError> {
    let parsed = db.parsed_policy(db.policy(policy).await?.id).await?;
    if !parsed.keys.offline_ksk {
        return Err(ManageError::Argument(format!(
            "policy {policy} does not keep the KSK offline (keys.offline-ksk = true): it cannot have a KSK side"
        )));
    }
    let marker = format!("offline-ksk:{name}");
    let zone = NewZone { name, policy, input: &marker, output: &marker, salt: &[], remotes: &[] };
    db.add_zone(&zone, now).await?;
    Ok(())
}

/// Signs a request on the KSK side: checks it, runs the KSK's machine
/// across its periods from the plan in force at its start (taking in the
/// operator's observations there), makes the KSKs the machine asks for,
/// and signs each period; stores the response and the plan behind it in
/// place of those from the request's start on.
pub async fn sign_request(
    db: &Database,
    name: &Name,
    file: &Path,
    now: i64,
    key_store: Option<&KeyUri>,
) -> Result<ResponseSigned, ManageError> {
    let mut snapshot = offline_snapshot(db, name, Role::Ksk).await?;
    let origin = zone_origin(&snapshot)?;
    let text = read_file(&snapshot, file)?;
    let request = offline::parse(&text, Kind::Request, &origin, file)?;
    check_request(&request, file, snapshot.policy.keys.algorithm)?;
    let store = key_store.cloned().or_else(|| snapshot.policy.keys.store.clone());
    let mut signing = Ceremony::new(&origin);
    let mut keys = signing.starting_keys(db, &snapshot, request.periods[0].start).await?;
    let observations: Vec<Observation> = snapshot.pending.iter().map(|(_, o)| o.clone()).collect();
    let mut taken_in = false;
    for (i, period) in request.periods.iter().enumerate() {
        let end = request.periods.get(i + 1).map(|p| p.start);
        let mut t = period.start;
        loop {
            let seen: &[Observation] = if taken_in { &[] } else { &observations };
            taken_in = true;
            keys.push(stand_in(-1, Role::Zsk, snapshot.policy.keys.algorithm, 0, false));
            let step = advance_making_keys(db, &mut snapshot, (store.as_ref(), &origin), keys, t, seen, None).await?;
            keys = signing.take_step(&snapshot, step, period, t)?;
            // A period's signatures keep at least the renewal margin to its
            // end: the online side never wants them renewed before then.
            let signatures = &snapshot.policy.signatures;
            let refreshed = t + (signatures.dnskey_validity - signatures.renew_within()).max(3600);
            let next = signing.next.filter(|&n| n > t).map_or(refreshed, |n| n.min(refreshed));
            match end {
                Some(end) if next < end => t = next,
                _ => break,
            }
        }
    }
    signing.finish(db, &snapshot, &keys, file, now).await
}

/// The KSK side's work on one request.
struct Ceremony {
    zone: Name,
    response: Vec<Period>,
    plan: Vec<OfflinePeriod>,
    events: Vec<Event>,
    removed: Vec<i64>,
    opened: HashMap<i64, Box<dyn SigningKey>>,
    next: Option<i64>,
    ksks: Vec<u16>,
    transitions: usize,
}

impl Ceremony {
    fn new(zone: &Name) -> Ceremony {
        Ceremony {
            zone: zone.clone(),
            response: Vec::new(),
            plan: Vec::new(),
            events: Vec::new(),
            removed: Vec::new(),
            opened: HashMap::new(),
            next: None,
            ksks: Vec::new(),
            transitions: 0,
        }
    }

    /// The KSKs' states at `start`: the plan of an earlier response in
    /// force then, or the stored states. A key stored but not in that
    /// plan was made by the plan this request replaces, after `start`:
    /// it will never be published, and is removed.
    async fn starting_keys(
        &mut self,
        db: &Database,
        snapshot: &ZoneSnapshot,
        start: i64,
    ) -> Result<Vec<Key>, ManageError> {
        let plans = db.offline_periods(snapshot.zone.id, OfflineSide::Plan).await?;
        let Some(plan) = plans.iter().rev().find(|p| p.start <= start) else {
            return Ok(machine_keys(&snapshot.keys));
        };
        let mut keys: Vec<Key> = serde_json::from_str(&plan.body)
            .map_err(|e| refuse(snapshot, format!("stored plan of {}: {e}", format_time(plan.start))))?;
        keys.retain(|k| snapshot.keys.iter().any(|s| s.key.id == k.id));
        let superseded = snapshot.keys.iter().filter(|s| !keys.iter().any(|k| k.id == s.key.id));
        for stored in superseded {
            self.removed.push(stored.key.id);
            let why = format!("made by a plan this request replaces from {}: never published", format_time(start));
            self.events.push(Event::note(start, Actor::Machine, EventKind::KeyRemoved, Some(stored.key.id), why));
        }
        Ok(keys)
    }

    /// Records one step at `t` (inside the request's `period`) and signs
    /// the response's period there; returns the KSKs' states after it.
    fn take_step(
        &mut self,
        snapshot: &ZoneSnapshot,
        mut step: Step,
        period: &Period,
        t: i64,
    ) -> Result<Vec<Key>, ManageError> {
        let publish = publication(&step.keys);
        let cds = snapshot.policy.parent.cds;
        super::keys::strip_stand_ins(&mut step);
        self.transitions += step.transitions.len();
        self.events.extend(step_events(&step, t, cds));
        for action in &step.actions {
            if let Action::RemoveKey { key } = action {
                self.removed.push(*key);
            }
        }
        self.next = step.next;
        let keys: Vec<Key> = step.keys.into_iter().filter(|k| !self.removed.contains(&k.id)).collect();
        let ttl = period.records.first().map_or(snapshot.policy.keys.dnskey_ttl as u32, |r| r.ttl);
        let mut records: Vec<Record> = period.records.clone();
        for id in publish.dnskey.iter().filter(|&&id| id >= 0) {
            records.push(Record {
                rtype: Rtype::DNSKEY,
                ttl,
                rdata: stored_key(snapshot, *id)?.dnskey.clone(),
                line: 0,
            });
        }
        if cds {
            for id in publish.cds.iter().filter(|&&id| id >= 0) {
                let stored = stored_key(snapshot, *id)?;
                let digest = snapshot.policy.parent.digest.number();
                if let Some(ds) = stored_public(stored).ds_rdata(self.zone.as_ref(), digest) {
                    records.push(Record { rtype: Rtype::CDS, ttl, rdata: ds, line: 0 });
                }
                records.push(Record { rtype: Rtype::CDNSKEY, ttl, rdata: stored.dnskey.clone(), line: 0 });
            }
        }
        let signers: Vec<i64> = publish.key_signers.iter().copied().filter(|&id| id >= 0).collect();
        let rrsigs = self.sign_period(snapshot, &records, &signers, t)?;
        records.extend(rrsigs);
        for id in &signers {
            let tag = stored_key(snapshot, *id)?.key.tag;
            if !self.ksks.contains(&tag) {
                self.ksks.push(tag);
            }
        }
        let body = serde_json::to_string(&keys).map_err(|e| refuse(snapshot, format!("plan: {e}")))?;
        self.plan.push(OfflinePeriod { start: t, body, expires: None });
        self.response.push(Period { start: t, line: 0, records });
        Ok(keys)
    }

    /// The RRSIGs of every signer over each key RRset of `records`.
    fn sign_period(
        &mut self,
        snapshot: &ZoneSnapshot,
        records: &[Record],
        signers: &[i64],
        t: i64,
    ) -> Result<Vec<Record>, ManageError> {
        let policy = &snapshot.policy.signatures;
        let window =
            Window { inception: t - policy.inception_offset, expiration: t + policy.dnskey_validity, jitter: 0 };
        let mut rrsigs = Vec::new();
        for &id in signers {
            self.open(snapshot, id)?;
            let key = self.opened[&id].as_ref();
            let signer = Signer { key, tag: stored_key(snapshot, id)?.key.tag };
            for rtype in [Rtype::DNSKEY, Rtype::CDS, Rtype::CDNSKEY] {
                let rdatas: Vec<&[u8]> =
                    records.iter().filter(|r| r.rtype == rtype).map(|r| r.rdata.as_slice()).collect();
                let Some(ttl) = records.iter().find(|r| r.rtype == rtype).map(|r| r.ttl) else { continue };
                let rdata = sign_apex_rrset(self.zone.as_ref(), rtype, ttl, &rdatas, &signer, &window)
                    .map_err(|e| refuse(snapshot, format!("signing the {rtype} RRset of {}: {e}", format_time(t))))?;
                rrsigs.push(Record { rtype: Rtype::RRSIG, ttl, rdata, line: 0 });
            }
        }
        Ok(rrsigs)
    }

    /// Opens a KSK once and proves it against its DNSKEY.
    fn open(&mut self, snapshot: &ZoneSnapshot, id: i64) -> Result<(), ManageError> {
        if self.opened.contains_key(&id) {
            return Ok(());
        }
        let key = open_proven(zone_name(snapshot), stored_key(snapshot, id)?)?;
        self.opened.insert(id, key);
        Ok(())
    }

    async fn finish(
        self,
        db: &Database,
        snapshot: &ZoneSnapshot,
        keys: &[Key],
        file: &Path,
        now: i64,
    ) -> Result<ResponseSigned, ManageError> {
        let document = Document { kind: Kind::Response, zone: self.zone.clone(), periods: self.response };
        let text = offline::write(&document, now);
        let response: Vec<OfflinePeriod> = document
            .periods
            .iter()
            .map(|p| OfflinePeriod {
                start: p.start,
                body: period_body(&self.zone, p),
                expires: Some(offline::check::earliest_expiration(p)),
            })
            .collect();
        let (first, last) = (response[0].start, response[response.len() - 1].start);
        let mut events = self.events;
        events.push(Event::note(
            now,
            Actor::Operator,
            EventKind::Offline,
            None,
            format!(
                "key signing request {} signed: {} periods from {} to {}, KSKs {:?}, {} key state transitions planned",
                file.display(),
                response.len(),
                format_time(first),
                format_time(last),
                self.ksks,
                self.transitions
            ),
        ));
        let consumed: Vec<i64> = snapshot.pending.iter().map(|(id, _)| *id).collect();
        let sides = [(OfflineSide::Response, response.as_slice()), (OfflineSide::Plan, self.plan.as_slice())];
        let commit = OfflineCommit {
            sides: &sides,
            keys,
            removed: &self.removed,
            consumed: &consumed,
            events: &events,
            fence: None,
        };
        db.commit_offline(snapshot.zone.id, &commit, now).await?;
        Ok(ResponseSigned { text, periods: response.len(), ksks: self.ksks, transitions: self.transitions })
    }
}

/// A key of the snapshot, by id.
fn stored_key(snapshot: &ZoneSnapshot, id: i64) -> Result<&StoredKey, ManageError> {
    snapshot.keys.iter().find(|k| k.key.id == id).ok_or_else(|| refuse(snapshot, format!("key {id} is not stored")))
}
