//! `signet status`: what an operator on call needs of each zone, read
//! from the database alone, so that it answers whether or not `signet
//! serve` runs: the serials in and out, the last run, the next wake-up and
//! why, when the published signatures expire, the gate's memo and its
//! last full verification, what waits for the operator, the last
//! failure, and the journal of differences.

use serde::Serialize;

use super::report::{ParentView, key_report};
use crate::db::{
    Database, DbError, DsCheck, DsSubmission, GateMemoInfo, JournalSummary, JournalVersion, Remote, RemoteRole, RunRow,
    TransferInState, TransferOutState, ZoneRow,
};
use crate::rollover::Observation;

/// One zone's status.
#[derive(Debug, Serialize)]
pub struct ZoneStatus {
    /// The apex.
    pub zone: String,
    /// Its policy.
    pub policy: String,
    /// Signed, going insecure (and what it waits for), or unsigned.
    pub dnssec: String,
    /// The unsigned zone file.
    pub input: String,
    /// The signed zone file.
    pub output: String,
    /// The input's SOA serial when it was last read.
    pub input_serial: Option<i64>,
    /// The serial published.
    pub published_serial: Option<i64>,
    /// The last run.
    pub last_run: Option<RunSummary>,
    /// When the zone is next due, and why.
    pub next_wake: Option<Wakeup>,
    /// The earliest RRSIG expiration in the published zone (Unix
    /// seconds), as the gate read it.
    pub signatures_expire_at: Option<i64>,
    /// The published signatures are within the policy's refresh margin of
    /// expiry: runs must succeed soon.
    pub signatures_expiring: bool,
    /// The gate's memo of the last publication, if one is stored.
    pub gate_memo: Option<GateMemoInfo>,
    /// The last publication whose gate verified every signature with
    /// crypto (Unix seconds).
    pub last_full_verification: Option<i64>,
    /// When a run is next full by the policy's schedule (`None`: the
    /// policy keeps no memo, every run is full).
    pub full_verification_due: Option<i64>,
    /// When an operator asked for a full verification not yet done.
    pub full_verification_requested: Option<i64>,
    /// Runs that published nothing since the last publication.
    pub consecutive_failures: i64,
    /// The last run that published nothing.
    pub last_failure: Option<RunSummary>,
    /// What the operator must do, key by key.
    pub todo: Vec<String>,
    /// The journal of differences between published versions (how far
    /// back IXFR reaches).
    pub journal: JournalSummary,
    /// The `signet serve` serving the database, if one runs.
    pub service: Option<ServiceInfo>,
    /// The zone's lease, when services share the state (PostgreSQL): who
    /// signs it, since when, with which fencing number.
    pub lease: Option<crate::db::LeaseInfo>,
    /// The serial a running service serves to secondaries: the one
    /// published (None without a service).
    pub served_serial: Option<i64>,
    /// The transfer of the input from its primaries (None: the input is
    /// a file).
    pub transfer_in: Option<TransferInStatus>,
    /// The secondaries and what each last acknowledged and transferred.
    pub secondaries: Vec<SecondaryStatus>,
    /// The zone's own `notify-source` (empty: serve's applies).
    pub notify_source: Vec<String>,
    /// The zone's own `transfer-source` (empty: serve's applies).
    pub transfer_source: Vec<String>,
    /// The parent: its servers, what the check waits for, the DS set
    /// last submitted (None: nothing is configured for the parent).
    pub parent: Option<ParentStatus>,
    /// With an offline KSK (online side): how far the imported signed key
    /// responses reach (None: the KSK is not offline, or nothing was
    /// imported yet).
    pub offline: Option<super::offline::ResponseCover>,
    /// The imported responses run out within the policy's
    /// `keys.response-warning`: a ceremony is due.
    pub responses_running_out: bool,
    /// The command every verified version is offered to before it is
    /// published (None: versions are published without review).
    pub review_hook: Option<crate::db::ReviewHook>,
    /// The newest review: its serial, verdict, why and when (a `pending`
    /// one waits for `signet zone approve|reject`).
    pub last_review: Option<crate::db::Review>,
}

/// How the zone's parent is checked and submitted to.
#[derive(Debug, Serialize)]
pub struct ParentStatus {
    /// Each server to do with the parent: `ROLE ADDR:PORT [key K]`.
    pub servers: Vec<String>,
    /// The policy's submit command is set.
    pub submit_command: bool,
    /// What the check waits for, per key.
    pub waiting: Vec<DsWait>,
    /// The DS set last submitted (or being submitted).
    pub submission: Option<DsSubmission>,
}

/// What the parent check waits for, for one key.
#[derive(Debug, Serialize)]
pub struct DsWait {
    /// The key's tag.
    pub keytag: u16,
    /// The check's row.
    #[serde(flatten)]
    pub check: DsCheck,
}

/// The transfer of a zone's input from its primaries.
#[derive(Debug, Serialize)]
pub struct TransferInStatus {
    /// The primaries, `ADDR:PORT`.
    pub primaries: Vec<String>,
    /// The TSIG key the transfers are signed with.
    pub tsig_key: Option<String>,
    /// The serial the primaries last answered.
    pub primary_serial: Option<i64>,
    /// When they were last asked (Unix seconds).
    pub checked_at: Option<i64>,
    /// The last complete transfer.
    pub last_transfer: Option<TransferIn>,
    /// The last failure since then.
    pub last_error: Option<TransferFailure>,
}

/// A complete transfer in.
#[derive(Debug, Serialize)]
pub struct TransferIn {
    /// When (Unix seconds).
    pub at: i64,
    /// The serial.
    pub serial: Option<i64>,
    /// `axfr` or `ixfr`.
    pub kind: Option<String>,
    /// Records carried.
    pub records: Option<i64>,
    /// Bytes carried.
    pub bytes: Option<i64>,
}

/// A failed check or transfer.
#[derive(Debug, Serialize)]
pub struct TransferFailure {
    /// When (Unix seconds).
    pub at: i64,
    /// What failed.
    pub message: String,
}

/// A secondary of the zone.
#[derive(Debug, Serialize)]
pub struct SecondaryStatus {
    /// `ADDR:PORT`.
    pub address: String,
    /// The TSIG key.
    pub tsig_key: Option<String>,
    /// It is sent NOTIFY.
    pub notify: bool,
    /// The last serial it acknowledged a NOTIFY for.
    pub notified_serial: Option<i64>,
    /// When (Unix seconds).
    pub notify_acked_at: Option<i64>,
    /// Its last transfer.
    pub last_transfer: Option<TransferOut>,
    /// The last NOTIFY sent to it, acknowledged or given up on.
    pub last_notify: Option<NotifyOutcome>,
    /// How many published versions it is behind the one served, by the
    /// serial it last transferred (at least that many when the journal
    /// no longer reaches its serial; None before its first transfer).
    pub versions_behind: Option<i64>,
}

/// The last NOTIFY to a secondary.
#[derive(Debug, Serialize)]
pub struct NotifyOutcome {
    /// The serial announced.
    pub serial: i64,
    /// When it was acknowledged or given up on (Unix seconds).
    pub at: Option<i64>,
    /// How many times it was sent.
    pub tries: Option<i64>,
    /// What the secondary answered: `NOERROR`, `REFUSED`, `NOTAUTH`,
    /// `NOTAUTH/BADKEY` (the TSIG error after the slash); None: no answer.
    pub answered: Option<String>,
    /// Why it was given up on (None: acknowledged).
    pub error: Option<String>,
    /// The address it left from.
    pub source: Option<String>,
}

/// How many versions the serial `theirs` is behind `served`, by the
/// journal's chain of versions (`journal`: any order). At least the
/// chain's length plus one when the chain does not reach `theirs`; 0
/// when `theirs` is the served serial or newer; None when either is
/// unknown.
pub fn versions_behind(journal: &[JournalVersion], served: Option<i64>, theirs: Option<i64>) -> Option<i64> {
    let (served, theirs) = (served?, theirs?);
    let as_u32 = |s: i64| u32::try_from(s).ok();
    if served == theirs || crate::zone::serial::serial_gt(as_u32(theirs)?, as_u32(served)?) {
        return Some(0);
    }
    let from: std::collections::HashMap<i64, i64> = journal.iter().map(|v| (v.serial_to, v.serial_from)).collect();
    let (mut at, mut count) = (served, 0);
    while let Some(&previous) = from.get(&at) {
        count += 1;
        if previous == theirs || count > journal.len() as i64 {
            return Some(count);
        }
        at = previous;
    }
    Some(count + 1)
}

/// A transfer served.
#[derive(Debug, Serialize)]
pub struct TransferOut {
    /// When (Unix seconds).
    pub at: i64,
    /// The serial served.
    pub serial: Option<i64>,
    /// `axfr`, `ixfr`, or `up-to-date`.
    pub kind: Option<String>,
    /// For IXFR, the serial the secondary had.
    pub from_serial: Option<i64>,
}

fn transfer_in_status(remotes: &[Remote], state: Option<TransferInState>) -> Option<TransferInStatus> {
    let primaries: Vec<&Remote> = remotes.iter().filter(|r| r.role == RemoteRole::Primary).collect();
    if primaries.is_empty() {
        return None;
    }
    let state = state.unwrap_or_default();
    Some(TransferInStatus {
        primaries: primaries.iter().filter_map(|r| r.address.clone()).collect(),
        tsig_key: primaries.iter().find_map(|r| r.tsig_key.clone()),
        primary_serial: state.primary_serial,
        checked_at: state.checked_at,
        last_transfer: state.transfer_at.map(|at| TransferIn {
            at,
            serial: state.transfer_serial,
            kind: state.transfer_kind.clone(),
            records: state.transfer_records,
            bytes: state.transfer_bytes,
        }),
        last_error: state.error_at.map(|at| TransferFailure { at, message: state.error.clone().unwrap_or_default() }),
    })
}

fn secondary_statuses(
    remotes: &[Remote],
    clients: &[TransferOutState],
    journal: &[JournalVersion],
    served: Option<i64>,
) -> Vec<SecondaryStatus> {
    let ip_of = |address: &str| crate::xfr::acl::parse_socket(address).map(crate::xfr::catalog::client_ip).ok();
    remotes
        .iter()
        .filter(|r| r.role == RemoteRole::Secondary)
        .map(|remote| {
            let address = remote.address.clone().unwrap_or_default();
            let ip = ip_of(&address);
            let state = clients.iter().find(|c| Some(&c.address) == ip.as_ref());
            SecondaryStatus {
                tsig_key: remote.tsig_key.clone(),
                notify: remote.notify,
                notified_serial: state.and_then(|s| s.notified_serial),
                notify_acked_at: state.and_then(|s| s.notify_acked_at),
                last_notify: state.and_then(|s| {
                    Some(NotifyOutcome {
                        serial: s.notify_serial?,
                        at: s.notify_at,
                        tries: s.notify_tries,
                        answered: s.notify_answer.clone(),
                        error: s.notify_error.clone(),
                        source: s.notify_source.clone(),
                    })
                }),
                versions_behind: versions_behind(journal, served, state.and_then(|s| s.transfer_serial)),
                last_transfer: state.and_then(|s| {
                    Some(TransferOut {
                        at: s.transfer_at?,
                        serial: s.transfer_serial,
                        kind: s.transfer_kind.clone(),
                        from_serial: s.transfer_from,
                    })
                }),
                address,
            }
        })
        .collect()
}

/// A run, as status shows it.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    /// When (Unix seconds).
    pub at: i64,
    /// `published`, `refused` or `failed`.
    pub result: String,
    /// Wall seconds.
    pub seconds: f64,
    /// What it made, or why it failed.
    pub message: String,
}

/// The next wake-up.
#[derive(Debug, Serialize)]
pub struct Wakeup {
    /// When (Unix seconds).
    pub at: i64,
    /// Why.
    pub why: String,
}

/// The service holding the database.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServiceInfo {
    /// Its pid.
    pub pid: i64,
    /// Since when it serves (Unix seconds).
    pub since: i64,
}

impl From<RunRow> for RunSummary {
    fn from(run: RunRow) -> RunSummary {
        RunSummary { at: run.at, result: run.result, seconds: run.seconds, message: run.message.unwrap_or_default() }
    }
}

/// The parent's part of a zone's status (None when nothing is
/// configured for the parent and nothing was submitted).
async fn parent_status(
    db: &Database,
    snapshot: &crate::db::ZoneSnapshot,
    remotes: &[Remote],
    checks: Vec<DsCheck>,
) -> Result<Option<ParentStatus>, DbError> {
    let servers: Vec<String> = remotes
        .iter()
        .filter(|r| r.role.is_parent())
        .map(|r| {
            let key = r.tsig_key.as_deref().map(|k| format!(" key {k}")).unwrap_or_default();
            format!("{} {}{key}", r.role.as_str(), r.address.as_deref().unwrap_or("-"))
        })
        .collect();
    let submission = db.ds_submission(snapshot.zone.id).await?;
    let submit_command = snapshot.policy.parent.submit_command.is_some();
    if servers.is_empty() && submission.is_none() && !submit_command {
        return Ok(None);
    }
    let tag = |id: i64| snapshot.keys.iter().find(|k| k.key.id == id).map_or(0, |k| k.key.tag);
    let waiting = checks.into_iter().map(|check| DsWait { keytag: tag(check.key_id), check }).collect();
    Ok(Some(ParentStatus { servers, submit_command, waiting, submission }))
}

/// The status of every zone (or of `only`), at `now`.
pub async fn zone_statuses(
    db: &Database,
    only: Option<&crate::zone::Name>,
    now: i64,
) -> Result<Vec<ZoneStatus>, DbError> {
    let zones = match only {
        Some(name) => vec![db.zone(name).await?],
        None => db.zones().await?,
    };
    let service = db.service().await?.map(|(pid, since)| ServiceInfo { pid, since });
    let mut statuses = Vec::with_capacity(zones.len());
    for zone in zones {
        statuses.push(zone_status(db, zone, service, now).await?);
    }
    Ok(statuses)
}

async fn zone_status(
    db: &Database,
    zone: ZoneRow,
    service: Option<ServiceInfo>,
    now: i64,
) -> Result<ZoneStatus, DbError> {
    let origin = crate::zone::Name::from_text(&zone.name, None)
        .map_err(|_| DbError::Corrupt { what: "zone name", value: zone.name.clone() })?;
    let snapshot = db.snapshot(&origin).await?;
    let parent = ParentView::read(db, &snapshot).await?;
    let mut todo: Vec<String> = key_report(&snapshot, now, &parent)
        .into_iter()
        .flat_map(|key| {
            key.todo.into_iter().map(move |todo| format!("key {} ({} {}): {todo}", key.id, key.role, key.keytag))
        })
        .collect();
    let offline = if snapshot.policy.keys.offline_ksk {
        super::offline::response_cover(db, zone.id, snapshot.policy.keys.response_warning)
            .await
            .map_err(|e| DbError::Corrupt { what: "offline period", value: e.to_string() })?
    } else {
        None
    };
    let responses_running_out = offline.is_some_and(|cover| now >= cover.warn_from);
    if let Some(line) = super::offline::cover_todo(&snapshot, offline, now) {
        todo.push(line);
    }
    let last_run = db.runs(zone.id, 1).await?.into_iter().next();
    let failures = db.consecutive_failures(zone.id).await?;
    let last_failure = db.last_failure(zone.id).await?.map(RunSummary::from);
    let refresh = snapshot.policy.signatures.refresh;
    let interval = snapshot.policy.gate.full_verification_interval;
    let full_verification_due = match zone.full_verified_at {
        _ if interval == 0 => None,
        Some(last) => Some(last.saturating_add(interval)),
        None => Some(now),
    };
    let next_wake = match zone.retry_at {
        _ if !snapshot.pending.is_empty() => Some(reports_pending(&snapshot.pending, now)),
        Some(at) if failures > 0 => Some(Wakeup { at, why: format!("retry after {failures} failed run(s)") }),
        _ => zone.next_run_at.map(|at| Wakeup {
            at,
            why: zone.next_run_why.clone().unwrap_or_else(|| "the key state machine".to_owned()),
        }),
    };
    let remotes = db.remotes(zone.id).await?;
    let transfer_in = transfer_in_status(&remotes, db.transfer_in(zone.id).await?);
    let journal = db.journal(zone.id).await?;
    let secondaries = secondary_statuses(&remotes, &db.transfers_out(zone.id).await?, &journal, zone.last_serial);
    let sources = |role: RemoteRole| -> Vec<String> {
        remotes.iter().filter(|r| r.role == role).filter_map(|r| r.address.clone()).collect()
    };
    let (notify_source, transfer_source) = (sources(RemoteRole::NotifySource), sources(RemoteRole::TransferSource));
    let parent = parent_status(db, &snapshot, &remotes, parent.checks).await?;
    let review_hook = db.review_hook(zone.id).await?;
    let last_review = db.latest_review(zone.id).await?;
    if let Some(review) = last_review.as_ref().filter(|r| r.verdict == crate::db::Verdict::Pending) {
        todo.push(format!(
            "serial {} waits for your review: signet zone approve {} {} (or reject)",
            review.serial, zone.name, review.serial
        ));
    }
    Ok(ZoneStatus {
        review_hook,
        last_review,
        offline,
        responses_running_out,
        parent,
        served_serial: service.and(zone.last_serial),
        transfer_in,
        secondaries,
        notify_source,
        transfer_source,
        input_serial: last_run.as_ref().and_then(|r| r.input_serial).or(zone.input_serial),
        published_serial: zone.last_serial,
        last_run: last_run.map(RunSummary::from),
        next_wake,
        signatures_expire_at: zone.sig_expires_at,
        signatures_expiring: zone.sig_expires_at.is_some_and(|at| at - refresh <= now),
        gate_memo: db.gate_memo_info(zone.id).await?,
        last_full_verification: zone.full_verified_at,
        full_verification_due,
        full_verification_requested: zone.full_verify_asked_at,
        consecutive_failures: failures,
        last_failure,
        todo,
        journal: db.journal_summary(zone.id).await?,
        service,
        lease: db.lease(zone.id).await?,
        dnssec: dnssec_state(&snapshot),
        zone: zone.name,
        policy: zone.policy_name,
        input: zone.input_path,
        output: zone.output_path,
    })
}

/// Where the zone stands with DNSSEC: signed, going insecure (the step
/// under way, RFC 6781 §4.3), or unsigned.
pub fn dnssec_state(snapshot: &crate::db::ZoneSnapshot) -> String {
    use crate::rollover::{Record, RecordState};
    let keys: Vec<_> = snapshot.keys.iter().map(|k| &k.key).collect();
    let any = |record: Record, states: &[RecordState]| keys.iter().any(|k| states.contains(&k.state(record)));
    let (at_parent, leaving) = ([RecordState::Rumoured, RecordState::Omnipresent], [RecordState::Unretentive]);
    let in_zone = any(Record::Dnskey, &at_parent);
    match () {
        _ if !snapshot.policy.insecure && in_zone => "signed".to_owned(),
        _ if !snapshot.policy.insecure => "signing: the first keys are on their way".to_owned(),
        _ if any(Record::Ds, &at_parent) => {
            "going insecure: the DS is being removed at the parent (CDS/CDNSKEY DELETE, submission)".to_owned()
        }
        _ if any(Record::Ds, &leaving) => {
            "going insecure: the DS is gone from the parent; waiting for it to leave caches".to_owned()
        }
        _ if in_zone => "going insecure: the DNSKEYs and signatures go at the next run".to_owned(),
        _ if keys.is_empty() => "unsigned (policy insecure)".to_owned(),
        _ => "unsigned; the last keys are leaving caches".to_owned(),
    }
}

/// Reports recorded by an operator or the parent check (`ds seen`, a
/// rollover asked for, …) and not yet taken in: the service runs the zone
/// at its next database poll, whatever else it waits for.
fn reports_pending(pending: &[(i64, Observation)], now: i64) -> Wakeup {
    let what: Vec<String> = pending
        .iter()
        .map(|(_, observation)| match observation {
            Observation::DsSeen { key } => format!("ds seen (key {key})"),
            Observation::DsGone { key } => format!("ds gone (key {key})"),
            Observation::Rollover { role } => format!("{role} rollover asked for"),
            Observation::Compromised { key } => format!("key {key} compromised"),
        })
        .collect();
    Wakeup { at: now, why: format!("reports not yet taken in: {}", what.join(", ")) }
}
