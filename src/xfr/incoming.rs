//! The transfer in of a zone whose input is a hidden primary: AXFR at
//! first, IXFR (RFC 1995) after, on the primary's NOTIFY and on the SOA's
//! refresh and retry timers.
//!
//! A transfer either completes or changes nothing: the records are
//! collected and checked (every owner in the zone, every RDATA well
//! formed for its type, the IXFR's deletions present in the copy, TSIG on
//! every message when a key is configured), the new copy is built in
//! memory, and only then written to the copy file by rename. The copy
//! file is the zone's input: the managed run reads it, checks its
//! content and signs it exactly as it would a file an operator edits,
//! and a restart signs from it without a transfer. A primary whose serial
//! goes backwards is reported and not taken.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{MessageType, OpCode, ResponseCode};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::acl::Peer;
use super::catalog::Catalog;
use super::client::{ClientError, Request, connect_from, exchange_from};
use super::outgoing::apex_soa;
use super::tsig::TsigKey;
use super::wire::{
    CLASS_IN, MessageWriter, ParsedMessage, Question, Section, WireRecord, read_framed, unix_now, write_framed,
};
use crate::db::{Database, TransferInDone};
use crate::time::{format_duration, wall_clock};
use crate::zone::rdata::check_rdata;
use crate::zone::serial::serial_gt;
use crate::zone::{Name, Rtype, Zone, ZoneBuilder, read_zone_file};

/// How long a primary has to answer a query, or to send the next
/// message of a transfer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest wait between two checks the timers ask for.
const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// The first retry after a failed check or transfer; each failure in a
/// row doubles it, up to the SOA's retry timer.
const FIRST_RETRY: Duration = Duration::from_secs(2);

/// The bounds of one transfer in (`transfer-max-records`,
/// `transfer-max-bytes`, `transfer-timeout` under `[serve]`): a primary
/// that sends more, or takes longer, has its transfer refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferLimits {
    /// Records in one answer (an AXFR's records, or an IXFR's).
    pub max_records: u64,
    /// Bytes of DNS messages in one answer.
    pub max_bytes: u64,
    /// The whole transfer, from the connection to the last message.
    pub timeout: Duration,
}

impl Default for TransferLimits {
    /// Sized for a TLD of 6 million names: about 20 million records and
    /// 1 GB of messages unsigned, with room to grow; an hour is 300 kB/s.
    fn default() -> TransferLimits {
        TransferLimits { max_records: 30_000_000, max_bytes: 2 << 30, timeout: Duration::from_secs(3600) }
    }
}

/// Why a check or a transfer failed. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The network.
    #[error("primary {primary}: {source}")]
    Io {
        /// The primary.
        primary: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("primary {primary}: no answer within {}", format_duration(ANSWER_TIMEOUT.as_secs() as i64))]
    Timeout {
        /// The primary.
        primary: SocketAddr,
    },
    /// The answer is not one signet takes.
    #[error("primary {primary}: {what}")]
    Answer {
        /// The primary.
        primary: SocketAddr,
        /// What is wrong with it.
        what: String,
    },
    /// The primary answered with an error RCODE.
    #[error("primary {primary}: answered {rcode}")]
    Rcode {
        /// The primary.
        primary: SocketAddr,
        /// Its RCODE.
        rcode: ResponseCode,
    },
    /// The transfer passed one of its limits.
    #[error("primary {primary}: the transfer passed {limit} ({value}): refused")]
    Limit {
        /// The primary.
        primary: SocketAddr,
        /// The setting, e.g. `transfer-max-records`.
        limit: &'static str,
        /// The setting's value, in words.
        value: String,
    },
    /// The TSIG key is missing or the answer's TSIG does not verify
    /// (`what` says TSIG).
    #[error("primary {primary}: {what}")]
    Tsig {
        /// The primary.
        primary: SocketAddr,
        /// What.
        what: String,
    },
    /// The zone has no primary to ask.
    #[error("no primary configured")]
    NoPrimary,
    /// The copy cannot be written.
    #[error("cannot write the copy {}: {source}", path.display())]
    Copy {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One zone's transfer in.
#[derive(Debug)]
pub struct Inbound {
    /// The zone's database id.
    pub zone_id: i64,
    /// The apex.
    pub origin: Name,
    /// The file that keeps the last complete copy: the zone's input.
    pub copy: PathBuf,
    /// The primaries, tried in order.
    pub primaries: Vec<Peer>,
    /// Where checks and transfers are recorded.
    pub db: Database,
    /// The TSIG keys.
    pub catalog: Arc<Catalog>,
    /// The bounds of each transfer.
    pub limits: TransferLimits,
}

/// The SOA timers of the copy (RFC 1035 §3.3.13).
#[derive(Debug, Clone, Copy)]
struct Timers {
    refresh: Duration,
    retry: Duration,
    expire: Duration,
}

impl Timers {
    fn of(zone: Option<&Zone>) -> Timers {
        let field = |rdata: &[u8], i: usize| {
            let at = crate::zone::dnssec::soa_serial_offset(rdata)? + 4 + 4 * i;
            rdata.get(at..at + 4).map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        };
        let soa = zone.and_then(apex_soa);
        let get = |i, default| Duration::from_secs(soa.and_then(|r| field(r.rdata, i)).unwrap_or(default));
        Timers {
            refresh: get(0, 3600).max(MIN_INTERVAL),
            retry: get(1, 600).max(MIN_INTERVAL),
            expire: get(2, 604_800),
        }
    }
}

/// What a check found.
enum Checked {
    /// The copy has the primary's serial.
    UpToDate(u32),
    /// The primary's serial is older than the copy's: not taken.
    Backwards { primary: SocketAddr, theirs: u32, ours: u32 },
    /// A new copy, written.
    New(Zone),
}

impl Inbound {
    /// Checks and transfers until `shutdown`, woken early by `wakes` (a
    /// primary's NOTIFY, with the serial it announced: NOTIFYs that come
    /// while a check is under way collapse into one check after it, and
    /// one announcing the copy's own serial wakes nothing); calls
    /// `changed` after every new copy is written.
    pub async fn run(
        self,
        mut wakes: watch::Receiver<Option<u32>>,
        mut shutdown: watch::Receiver<bool>,
        changed: impl Fn(),
    ) {
        let mut copy = self.load_copy().await.map(Arc::new);
        let mut last_success = tokio::time::Instant::now();
        let mut failures = 0u32;
        loop {
            let timers = Timers::of(copy.as_deref());
            // A NOTIFY that came before this check is answered by it.
            wakes.borrow_and_update();
            let wait = match self.check(copy.clone()).await {
                Ok(Checked::New(zone)) => {
                    copy = Some(Arc::new(zone));
                    last_success = tokio::time::Instant::now();
                    failures = 0;
                    changed();
                    Timers::of(copy.as_deref()).refresh
                }
                Ok(Checked::UpToDate(serial)) => {
                    tracing::debug!(zone = %self.origin, serial, "the copy has the primary's serial");
                    last_success = tokio::time::Instant::now();
                    failures = 0;
                    timers.refresh
                }
                Ok(Checked::Backwards { primary, theirs, ours }) => {
                    let message = format!(
                        "serial went backwards: primary {primary} serves serial {theirs}, the copy has {ours}; not taken"
                    );
                    tracing::error!(zone = %self.origin, "{message}");
                    self.record_error(&message).await;
                    failures = 0;
                    timers.refresh
                }
                Err(e) => {
                    let wait = retry_after(failures, timers.retry);
                    failures = failures.saturating_add(1);
                    tracing::error!(zone = %self.origin, retry_in = %format_duration(wait.as_secs() as i64),
                        "transfer failed, nothing changed: {e}");
                    self.record_error(&e.to_string()).await;
                    if last_success.elapsed() > timers.expire {
                        tracing::error!(zone = %self.origin, "the copy is past the SOA expire time: the primaries have not answered for {}; signet keeps signing the last copy",
                            format_duration(last_success.elapsed().as_secs() as i64));
                    }
                    wait
                }
            };
            let ours = copy.as_deref().and_then(apex_soa).and_then(|soa| super::wire::soa_serial(soa.rdata));
            let due = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => break,
                    woken = wakes.changed() => {
                        if woken.is_err() {
                            return;
                        }
                        let announced = *wakes.borrow_and_update();
                        if announced.is_some() && announced == ours {
                            tracing::debug!(zone = %self.origin, serial = ours, "NOTIFY for the copy's own serial: nothing to check");
                            continue;
                        }
                        break;
                    }
                    _ = shutdown.changed() => return,
                }
            }
        }
    }

    /// The copy on disk, if there is one that reads.
    async fn load_copy(&self) -> Option<Zone> {
        let (path, origin) = (self.copy.clone(), self.origin.clone());
        let read = tokio::task::spawn_blocking(move || path.exists().then(|| read_zone_file(&path, &origin)));
        match read.await.ok().flatten() {
            Some(Ok(zone)) => {
                tracing::info!(zone = %self.origin, copy = %self.copy.display(), "signing from the copy kept on disk until the primary has a newer serial");
                Some(zone)
            }
            Some(Err(e)) => {
                tracing::warn!(zone = %self.origin, "the copy kept on disk does not read ({e}): transferring the whole zone");
                None
            }
            None => None,
        }
    }

    async fn record_error(&self, message: &str) {
        if let Err(e) = self.db.record_transfer_error(self.zone_id, wall_clock(), message).await {
            tracing::error!(zone = %self.origin, "cannot record the transfer failure: {e}");
        }
    }

    /// Asks the primaries for their serial and transfers what is newer.
    async fn check(&self, copy: Option<Arc<Zone>>) -> Result<Checked, TransferError> {
        let ours = copy.as_deref().and_then(apex_soa).and_then(|soa| super::wire::soa_serial(soa.rdata));
        let mut last_error = None;
        for primary in &self.primaries {
            let key = self.key(primary)?;
            let source = self.catalog.transfer_source(self.origin.as_ref(), primary.addr).ip;
            let theirs = match query_serial(primary.addr, source, key.as_ref(), &self.origin).await {
                Ok(serial) => serial,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            if let Err(e) = self.db.record_primary_serial(self.zone_id, theirs, wall_clock()).await {
                tracing::error!(zone = %self.origin, "cannot record the primary's serial: {e}");
            }
            match ours {
                Some(ours) if ours == theirs => return Ok(Checked::UpToDate(theirs)),
                Some(ours) if serial_gt(ours, theirs) => {
                    return Ok(Checked::Backwards { primary: primary.addr, theirs, ours });
                }
                _ => {}
            }
            match self.transfer(primary, source, key.as_ref(), copy.clone(), theirs).await {
                Ok(zone) => return Ok(Checked::New(zone)),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(TransferError::NoPrimary))
    }

    fn key(&self, primary: &Peer) -> Result<Option<Arc<TsigKey>>, TransferError> {
        let Some(name) = &primary.key else { return Ok(None) };
        match self.catalog.key(name.as_ref()) {
            Some(key) => Ok(Some(key)),
            None => Err(TransferError::Tsig { primary: primary.addr, what: format!("TSIG key {name} is not loaded") }),
        }
    }

    /// Transfers from `primary` (IXFR from the copy's serial if there is
    /// a copy), builds the new copy and writes it.
    async fn transfer(
        &self,
        primary: &Peer,
        source: Option<IpAddr>,
        key: Option<&Arc<TsigKey>>,
        copy: Option<Arc<Zone>>,
        expected: u32,
    ) -> Result<Zone, TransferError> {
        let started = std::time::Instant::now();
        let peer = primary.addr;
        let received = match self.fetch_within(peer, source, key, copy.as_deref()).await {
            // A primary that does not do IXFR (RFC 1995 §4): ask for the
            // whole zone, as BIND and Knot do.
            Err(TransferError::Rcode { rcode: rcode @ (ResponseCode::NotImp | ResponseCode::FormErr), .. })
                if copy.is_some() =>
            {
                tracing::warn!(zone = %self.origin, primary = %peer, "IXFR answered {rcode}: asking for AXFR");
                self.fetch_within(peer, source, key, None).await?
            }
            received => received?,
        };
        let serial = received.serial;
        if serial_gt(expected, serial) {
            let what = format!("transferred serial {serial}, older than the {expected} the SOA query gave");
            return Err(TransferError::Answer { primary: primary.addr, what });
        }
        let (kind, records, bytes) = (received.kind(), received.records, received.bytes);
        // Building the copy and writing it are CPU and disk work: off the
        // service's async workers.
        let (origin, path) = (self.origin.clone(), self.copy.clone());
        let built = tokio::task::spawn_blocking(move || {
            let zone = received
                .into_zone(&origin, copy.as_deref())
                .map_err(|what| TransferError::Answer { primary: peer, what })?;
            write_copy(&path, &zone)?;
            Ok(zone)
        });
        let zone = built.await.unwrap_or_else(|e| {
            Err(TransferError::Copy { path: self.copy.clone(), source: std::io::Error::other(e) })
        })?;
        let done = TransferInDone { at: wall_clock(), serial, kind, records, bytes };
        if let Err(e) = self.db.record_transfer_in(self.zone_id, &done).await {
            tracing::error!(zone = %self.origin, "cannot record the transfer: {e}");
        }
        tracing::info!(zone = %self.origin, primary = %primary.addr, kind, serial, records, bytes,
            seconds = started.elapsed().as_secs_f64(), "transfer in complete: the copy is the zone's input now");
        Ok(zone)
    }
}

impl Inbound {
    /// [`fetch`] within the transfer's deadline.
    async fn fetch_within(
        &self,
        peer: SocketAddr,
        source: Option<IpAddr>,
        key: Option<&Arc<TsigKey>>,
        copy: Option<&Zone>,
    ) -> Result<Received, TransferError> {
        let limits = self.limits;
        match tokio::time::timeout(limits.timeout, fetch(peer, source, key, &self.origin, copy, &limits)).await {
            Ok(received) => received,
            Err(_) => Err(TransferError::Limit {
                primary: peer,
                limit: "transfer-timeout",
                value: format_duration(limits.timeout.as_secs() as i64),
            }),
        }
    }
}

/// The wait before the next try after `failures` failures in a row:
/// [`FIRST_RETRY`], doubled for each, at most `retry` (the SOA's).
fn retry_after(failures: u32, retry: Duration) -> Duration {
    FIRST_RETRY.saturating_mul(1 << failures.min(20)).min(retry)
}

/// Writes the copy next to its file and renames it into place.
fn write_copy(path: &std::path::Path, zone: &Zone) -> Result<(), TransferError> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let write = || -> std::io::Result<()> {
        let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&partial)?);
        crate::zone::writer::write_zone(zone, &mut file)?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&partial, path)
    };
    write().map_err(|source| {
        let _ = std::fs::remove_file(&partial);
        TransferError::Copy { path: path.to_owned(), source }
    })
}

fn answer_error(primary: SocketAddr, what: impl Into<String>) -> TransferError {
    TransferError::Answer { primary, what: what.into() }
}

/// Is the message the answer to the query: its ID, QR?
fn check_answer_to(primary: SocketAddr, parsed: &ParsedMessage<'_>, id: u16) -> Result<(), TransferError> {
    let header = &parsed.header;
    if header.id != id || header.message_type != MessageType::Response {
        return Err(answer_error(primary, "an answer that is not to the query sent (ID or QR)"));
    }
    Ok(())
}

/// The answer's RCODE: checked after its TSIG, so that a primary's TSIG
/// error (NOTAUTH with BADSIG, BADKEY, BADTIME) is reported as such.
fn check_rcode(primary: SocketAddr, parsed: &ParsedMessage<'_>) -> Result<(), TransferError> {
    match parsed.header.response_code {
        ResponseCode::NoError => Ok(()),
        rcode => Err(TransferError::Rcode { primary, rcode }),
    }
}

/// The primary's SOA serial: UDP, then TCP if the answer is truncated.
async fn query_serial(
    primary: SocketAddr,
    source: Option<IpAddr>,
    key: Option<&Arc<TsigKey>>,
    origin: &Name,
) -> Result<u32, TransferError> {
    let question = Question { name: origin.clone(), qtype: Rtype::SOA, qclass: CLASS_IN };
    let request = Request::new(Request::metadata(OpCode::Query), &question, |_| {}, key);
    let answer = exchange_from(primary, source, &request, ANSWER_TIMEOUT).await?;
    let parsed = ParsedMessage::parse(&answer).map_err(|e| answer_error(primary, e.to_string()))?;
    check_rcode(primary, &parsed)?;
    for record in parsed.answers() {
        let record = record.map_err(|e| answer_error(primary, e.to_string()))?;
        if record.rtype == Rtype::SOA && record.owner.as_ref().eq_ignore_case(origin.as_ref()) {
            return super::wire::soa_serial(&record.rdata).ok_or_else(|| answer_error(primary, "a malformed SOA"));
        }
    }
    Err(answer_error(primary, "no SOA for the zone in the answer"))
}

impl From<ClientError> for TransferError {
    fn from(error: ClientError) -> TransferError {
        match error {
            ClientError::Io { server, source } => TransferError::Io { primary: server, source },
            ClientError::Timeout { server, .. } => TransferError::Timeout { primary: server },
            ClientError::Answer { server, what } => TransferError::Answer { primary: server, what },
            ClientError::Tsig { server, what } => TransferError::Tsig { primary: server, what },
        }
    }
}

async fn connect(primary: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, TransferError> {
    match tokio::time::timeout(ANSWER_TIMEOUT, connect_from(primary, source)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(TransferError::Io { primary, source }),
        Err(_) => Err(TransferError::Timeout { primary }),
    }
}

async fn next_message(primary: SocketAddr, stream: &mut TcpStream) -> Result<Vec<u8>, TransferError> {
    match tokio::time::timeout(ANSWER_TIMEOUT, read_framed(stream)).await {
        Ok(Ok(Some(message))) => Ok(message),
        Ok(Ok(None)) => Err(answer_error(primary, "the connection closed before the transfer was complete")),
        Ok(Err(source)) => Err(TransferError::Io { primary, source }),
        Err(_) => Err(TransferError::Timeout { primary }),
    }
}

/// A record of a transfer, owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Owned {
    owner: Name,
    rtype: Rtype,
    ttl: u32,
    rdata: Vec<u8>,
}

impl Owned {
    fn from_wire(record: WireRecord<'_>) -> Owned {
        Owned { owner: record.owner, rtype: record.rtype, ttl: record.ttl, rdata: record.rdata.into_owned() }
    }

    fn is_soa(&self) -> bool {
        self.rtype == Rtype::SOA
    }

    fn serial(&self) -> Option<u32> {
        super::wire::soa_serial(&self.rdata)
    }

    /// What identifies the record in a deletion: owner (any case), type,
    /// canonical RDATA.
    fn identity(&self) -> (Name, Rtype, Vec<u8>) {
        (
            self.owner.as_ref().to_lowercase(),
            self.rtype,
            crate::zone::rdata::canonical_rdata(self.rtype, &self.rdata).into_owned(),
        )
    }
}

/// What a transfer brought.
#[derive(Debug)]
struct Received {
    serial: u32,
    /// The whole zone (AXFR, or an IXFR answered in full), or the
    /// differences: (deleted, added) per step.
    body: Body,
    records: u64,
    bytes: u64,
}

#[derive(Debug)]
enum Body {
    Whole(Vec<Owned>),
    Steps(Vec<(Vec<Owned>, Vec<Owned>)>),
}

impl Received {
    fn kind(&self) -> &'static str {
        match self.body {
            Body::Whole(_) => "axfr",
            Body::Steps(_) => "ixfr",
        }
    }

    /// The new copy: checked, then built.
    fn into_zone(self, origin: &Name, copy: Option<&Zone>) -> Result<Zone, String> {
        match self.body {
            Body::Whole(records) => build(origin, records.iter()),
            Body::Steps(steps) => {
                let copy = copy.ok_or("an incremental answer without a copy to apply it to")?;
                let (deleted, added) = net_change(steps)?;
                apply(origin, copy, &deleted, &added)
            }
        }
    }
}

/// The steps of an IXFR as one change to the copy: what it deletes from
/// the copy and what it adds. A record added by one step and deleted by a
/// later one is neither; a record deleted twice without being added in
/// between is an error.
fn net_change(steps: Vec<(Vec<Owned>, Vec<Owned>)>) -> Result<(Vec<Owned>, Vec<Owned>), String> {
    let mut deleted: Vec<Owned> = Vec::new();
    let mut gone: HashSet<(Name, Rtype, Vec<u8>)> = HashSet::new();
    let mut added: std::collections::HashMap<(Name, Rtype, Vec<u8>), Owned> = std::collections::HashMap::new();
    for (step_deleted, step_added) in steps {
        for record in step_deleted {
            let identity = record.identity();
            if added.remove(&identity).is_none() {
                if !gone.insert(identity) {
                    return Err(format!("the IXFR deletes {} {} twice", record.owner, record.rtype));
                }
                deleted.push(record);
            }
        }
        added.extend(step_added.into_iter().map(|record| (record.identity(), record)));
    }
    Ok((deleted, added.into_values().collect()))
}

/// A zone of `records`, each checked: in the zone, RDATA well formed.
fn build<'a>(origin: &Name, records: impl Iterator<Item = &'a Owned>) -> Result<Zone, String> {
    let mut builder = ZoneBuilder::new(origin.clone(), CLASS_IN);
    for record in records {
        check(origin, record)?;
        builder.push(record.owner.as_ref(), record.rtype, record.ttl, &record.rdata);
    }
    Ok(builder.finish())
}

fn check(origin: &Name, record: &Owned) -> Result<(), String> {
    if !record.owner.as_ref().is_at_or_below(origin.as_ref()) {
        return Err(format!("record {} {} is outside the zone", record.owner, record.rtype));
    }
    check_rdata(record.rtype, &record.rdata).map_err(|e| format!("record {} {}: {e}", record.owner, record.rtype))
}

/// `zone` with `deleted` taken out and `added` put in; every deletion
/// must match a record of the zone. Deletions are found by a binary
/// search for their owner, so the cost is one pass over the copy (already
/// in canonical order, which the builder keeps without sorting).
fn apply(origin: &Name, zone: &Zone, deleted: &[Owned], added: &[Owned]) -> Result<Zone, String> {
    let mut skip = HashSet::with_capacity(deleted.len());
    for record in deleted {
        let at = position_of(zone, record).ok_or_else(|| {
            format!("the IXFR deletes {} {}, which the copy does not have", record.owner, record.rtype)
        })?;
        skip.insert(at);
    }
    let mut builder = ZoneBuilder::new(origin.clone(), CLASS_IN);
    for (at, record) in zone.records().enumerate() {
        if !skip.contains(&at) {
            builder.push(record.owner, record.rtype, record.ttl, record.rdata);
        }
    }
    for record in added {
        check(origin, record)?;
        builder.push(record.owner.as_ref(), record.rtype, record.ttl, &record.rdata);
    }
    Ok(builder.finish())
}

/// Where `record` is in `zone` (same owner in any case, type, canonical
/// RDATA), if it is.
fn position_of(zone: &Zone, record: &Owned) -> Option<usize> {
    let owner = record.owner.as_ref();
    let start = zone.position_of(owner);
    let wanted = crate::zone::rdata::canonical_rdata(record.rtype, &record.rdata);
    zone.records_in(start..zone.len())
        .take_while(|r| r.owner.eq_ignore_case(owner))
        .position(|r| r.rtype == record.rtype && crate::zone::rdata::canonical_rdata(r.rtype, r.rdata) == wanted)
        .map(|offset| start + offset)
}

/// Transfers the zone from `primary`: IXFR from the copy's serial, or
/// AXFR without a copy. Every message is checked (ID, RCODE, TSIG).
async fn fetch(
    primary: SocketAddr,
    source: Option<IpAddr>,
    key: Option<&Arc<TsigKey>>,
    origin: &Name,
    copy: Option<&Zone>,
    limits: &TransferLimits,
) -> Result<Received, TransferError> {
    let soa = copy.and_then(apex_soa);
    let qtype = if soa.is_some() { Rtype::IXFR } else { Rtype::AXFR };
    let question = Question { name: origin.clone(), qtype, qclass: CLASS_IN };
    let fill = |writer: &mut MessageWriter| {
        if let Some(soa) = soa {
            writer.push(Section::Authority, soa, CLASS_IN);
        }
    };
    let request = Request::new(Request::metadata(OpCode::Query), &question, fill, key);
    let id = request.id();
    let mut verifier = request.verifier(primary)?;
    let mut stream = connect(primary, source).await?;
    write_framed(&mut stream, &request.bytes).await.map_err(|source| TransferError::Io { primary, source })?;
    let mut collector = Collector::new(
        origin.clone(),
        qtype == Rtype::IXFR,
        copy.and(soa).and_then(|s| super::wire::soa_serial(s.rdata)),
    );
    let mut bytes = 0u64;
    while !collector.done() {
        let message = next_message(primary, &mut stream).await?;
        bytes += message.len() as u64;
        if bytes > limits.max_bytes {
            return Err(TransferError::Limit {
                primary,
                limit: "transfer-max-bytes",
                value: format!("{} bytes", limits.max_bytes),
            });
        }
        let parsed = ParsedMessage::parse(&message).map_err(|e| answer_error(primary, e.to_string()))?;
        check_answer_to(primary, &parsed, id)?;
        if let Some(verifier) = verifier.as_mut() {
            verifier.verify(&message, unix_now()).map_err(|e| TransferError::Tsig { primary, what: e.to_string() })?;
        }
        check_rcode(primary, &parsed)?;
        for record in parsed.answers() {
            let record = record.map_err(|e| answer_error(primary, e.to_string()))?;
            if record.class != CLASS_IN {
                return Err(answer_error(primary, format!("a record of class {}", record.class)));
            }
            collector.take(Owned::from_wire(record)).map_err(|what| answer_error(primary, what))?;
            if collector.records > limits.max_records {
                return Err(TransferError::Limit {
                    primary,
                    limit: "transfer-max-records",
                    value: format!("{} records", limits.max_records),
                });
            }
        }
    }
    if let Some(verifier) = verifier {
        verifier.finish().map_err(|e| TransferError::Tsig { primary, what: e.to_string() })?;
    }
    collector.finish(bytes).map_err(|what| answer_error(primary, what))
}

/// Where a transfer's answer is, after its first SOA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// An AXFR, or an IXFR answered with the whole zone.
    Whole,
    /// An IXFR step's deletions (after its old SOA).
    Deleting,
    /// An IXFR step's additions (after its new SOA).
    Adding,
}

/// Sorts a transfer's records into the whole zone or IXFR steps, and
/// tells when the answer is complete.
#[derive(Debug)]
struct Collector {
    origin: Name,
    ixfr: bool,
    ours: Option<u32>,
    first: Option<Owned>,
    phase: Option<Phase>,
    whole: Vec<Owned>,
    /// (deleted, added) per step, each starting with its SOA.
    steps: Vec<(Vec<Owned>, Vec<Owned>)>,
    complete: bool,
    records: u64,
}

impl Collector {
    fn new(origin: Name, ixfr: bool, ours: Option<u32>) -> Collector {
        Collector {
            origin,
            ixfr,
            ours,
            first: None,
            phase: None,
            whole: Vec::new(),
            steps: Vec::new(),
            complete: false,
            records: 0,
        }
    }

    fn done(&self) -> bool {
        self.complete
    }

    fn take(&mut self, record: Owned) -> Result<(), String> {
        if self.complete {
            return Err("records after the transfer's closing SOA".to_owned());
        }
        self.records += 1;
        // Every SOA of a transfer is the zone's own: the opening and
        // closing ones, and those that open and close IXFR steps.
        if record.is_soa() && !record.owner.as_ref().eq_ignore_case(self.origin.as_ref()) {
            return Err(format!("an SOA record for {}, not for the zone {}", record.owner, self.origin));
        }
        let Some(first) = &self.first else {
            if !record.is_soa() {
                return Err(format!("the answer starts with {} {}, not the SOA", record.owner, record.rtype));
            }
            // Up to date: an IXFR answered with our own serial's SOA alone.
            self.complete = self.ixfr && record.serial() == self.ours;
            self.first = Some(record);
            return Ok(());
        };
        let newest = first.serial();
        let closing = record.is_soa() && record.serial() == newest;
        let phase = match self.phase {
            Some(phase) => phase,
            // An IXFR whose second record is an older SOA is incremental:
            // that SOA opens the first step's deletions.
            None if self.ixfr && record.is_soa() && !closing => {
                self.steps.push((vec![record], Vec::new()));
                self.phase = Some(Phase::Deleting);
                return Ok(());
            }
            None => Phase::Whole,
        };
        let step = self.steps.len().checked_sub(1);
        self.phase = Some(match (phase, step) {
            (Phase::Whole, _) if closing => {
                self.phase = Some(Phase::Whole);
                return self.close();
            }
            // A zone has one SOA: a second one, of another serial, in the
            // middle of the records is a broken answer (RFC 5936 §2.2).
            (Phase::Whole, _) if record.is_soa() => {
                return Err(format!(
                    "a second SOA (serial {}) among the zone's records, before the closing SOA of serial {}",
                    record.serial().map_or_else(|| "?".to_owned(), |s| s.to_string()),
                    newest.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                ));
            }
            (Phase::Whole, _) => {
                self.whole.push(record);
                Phase::Whole
            }
            (Phase::Deleting, Some(step)) => {
                let soa = record.is_soa();
                let (deleted, added) = &mut self.steps[step];
                if soa {
                    added.push(record)
                } else {
                    deleted.push(record)
                }
                if soa { Phase::Adding } else { Phase::Deleting }
            }
            (Phase::Adding, _) if closing => return self.close(),
            (Phase::Adding, Some(step)) => {
                if record.is_soa() {
                    self.steps.push((vec![record], Vec::new()));
                    Phase::Deleting
                } else {
                    self.steps[step].1.push(record);
                    Phase::Adding
                }
            }
            (_, None) => return Err("an IXFR step without its SOA".to_owned()),
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), String> {
        self.complete = true;
        Ok(())
    }

    fn finish(self, bytes: u64) -> Result<Received, String> {
        let first = self.first.ok_or("an empty answer")?;
        let serial = first.serial().ok_or("a malformed SOA")?;
        let body = match self.phase {
            Some(Phase::Whole) => {
                let mut whole = self.whole;
                whole.push(first);
                Body::Whole(whole)
            }
            // Incremental, or up to date (one SOA: no step).
            _ => {
                check_chain(&self.steps, self.ours, serial)?;
                Body::Steps(self.steps)
            }
        };
        Ok(Received { serial, body, records: self.records, bytes })
    }
}

/// The steps of an IXFR lead from the copy's serial to the serial the
/// answer announced, each starting where the one before ended.
fn check_chain(steps: &[(Vec<Owned>, Vec<Owned>)], ours: Option<u32>, announced: u32) -> Result<(), String> {
    let mut at = ours;
    for (deleted, added) in steps {
        let from = deleted.first().and_then(Owned::serial);
        let to = added.first().and_then(Owned::serial);
        if from != at {
            return Err(format!("an IXFR step from serial {} where serial {} was expected", shown(from), shown(at)));
        }
        at = to;
    }
    if !steps.is_empty() && at != Some(announced) {
        return Err(format!(
            "the IXFR's steps end at serial {}, not at the serial {announced} it announced",
            shown(at)
        ));
    }
    Ok(())
}

fn shown(serial: Option<u32>) -> String {
    serial.map_or_else(|| "(none)".to_owned(), |s| s.to_string())
}

#[cfg(test)]
mod tests;
