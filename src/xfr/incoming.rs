//! The transfer in of a zone whose input is a hidden primary: AXFR at
//! first, IXFR (RFC 1995) after, on the primary's NOTIFY and on the SOA's
//! refresh and retry timers.
//!
//! A transfer either completes or changes nothing: every message is
//! checked (`fetch`: ID, TSIG when a key is configured, RCODE), its
//! records collected and checked (`collect`: a transfer of the zone,
//! within its limits), the new copy built in memory (`apply`: every owner
//! in the zone, every RDATA well formed for its type, the IXFR's
//! deletions present in the copy), and only then handed to the zone as its
//! new input ([`NewCopy`]), in memory: the service signs and serves it
//! first and writes the copy file after ([`write_copy`]), off the path to
//! the secondaries. The copy file lets a restart sign without a transfer
//! (it is handed over at the start as [`NewCopy::Loaded`]). A primary
//! whose serial goes backwards is reported and not taken.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use tokio::sync::watch;

use self::fetch::{fetch, query_serial};
use super::acl::Peer;
use super::apply::{ApplyError, into_zone};
use super::catalog::Catalog;
use super::client::rcode_name;
use super::collect::{CollectError, Received};
use super::outgoing::apex_soa;
use super::store::{TransferEvent, TransferIn, TransferLog};
use super::tsig::{TsigError, TsigKey};
use super::wire::WireError;
use crate::chain::Chain;
use crate::time::{format_duration, wall_clock};
use crate::zone::serial::serial_gt;
use crate::zone::{Name, Zone, read_zone_file};

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
    #[error("primary {primary}")]
    Io {
        /// The primary.
        primary: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("primary {primary}: no answer within {}", format_duration(ANSWER_TIMEOUT.as_secs() as i64))]
    Timeout {
        /// The primary.
        primary: SocketAddr,
    },
    /// The SOA query's answer was not the one to the query, did not read,
    /// or its TSIG did not verify (or the query could not be signed).
    #[error("primary {primary}: {problem}")]
    Query {
        /// The primary.
        primary: SocketAddr,
        /// What the client found.
        problem: crate::xfr::client::AnswerProblem,
    },
    /// A message of the answer does not read.
    #[error("primary {primary}")]
    Malformed {
        /// The primary.
        primary: SocketAddr,
        /// Where it breaks.
        #[source]
        source: WireError,
    },
    /// A message that is not an answer to the query sent.
    #[error("primary {primary}: an answer that is not to the query sent (ID or QR)")]
    NotTheAnswer {
        /// The primary.
        primary: SocketAddr,
    },
    /// The connection closed before the closing SOA.
    #[error("primary {primary}: the connection closed before the transfer was complete")]
    Closed {
        /// The primary.
        primary: SocketAddr,
    },
    /// The answer to the SOA query has no SOA of the zone.
    #[error("primary {primary}: no SOA for the zone in the answer")]
    NoSoa {
        /// The primary.
        primary: SocketAddr,
    },
    /// The SOA of the answer to the SOA query does not read.
    #[error("primary {primary}: a malformed SOA")]
    MalformedSoa {
        /// The primary.
        primary: SocketAddr,
    },
    /// The transfer brought an older serial than the SOA query gave.
    #[error("primary {primary}: transferred serial {serial}, older than the {expected} the SOA query gave")]
    OlderThanQueried {
        /// The primary.
        primary: SocketAddr,
        /// The serial transferred.
        serial: u32,
        /// The serial the SOA query gave.
        expected: u32,
    },
    /// The answer is not a transfer signet takes, or passed a limit.
    #[error("primary {primary}")]
    Collect {
        /// The primary.
        primary: SocketAddr,
        /// What is wrong with it.
        #[source]
        source: CollectError,
    },
    /// The records do not make a zone, or the differences do not apply
    /// to the copy.
    #[error("primary {primary}")]
    Apply {
        /// The primary.
        primary: SocketAddr,
        /// Why.
        #[source]
        source: ApplyError,
    },
    /// The primary answered with an error RCODE.
    #[error("primary {primary}: answered {}", rcode_name(u16::from(*rcode)))]
    Rcode {
        /// The primary.
        primary: SocketAddr,
        /// Its RCODE.
        rcode: ResponseCode,
    },
    /// The transfer took longer than `transfer-timeout`.
    #[error("primary {primary}: the transfer passed transfer-timeout ({}): refused", format_duration(timeout.as_secs() as i64))]
    TooLong {
        /// The primary.
        primary: SocketAddr,
        /// The setting.
        timeout: Duration,
    },
    /// The answer's TSIG does not verify.
    #[error("primary {primary}")]
    Tsig {
        /// The primary.
        primary: SocketAddr,
        /// Why (BADSIG, BADTIME, unsigned, …).
        #[source]
        source: TsigError,
    },
    /// The primary's TSIG key is not loaded.
    #[error("primary {primary}: TSIG key {key} is not loaded")]
    KeyNotLoaded {
        /// The primary.
        primary: SocketAddr,
        /// The key's name.
        key: Name,
    },
    /// The zone has no primary to ask.
    #[error("no primary configured")]
    NoPrimary,
    /// The copy cannot be written.
    #[error("cannot write the copy {}", path.display())]
    Copy {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// One zone's transfer in.
#[derive(Debug)]
pub struct Inbound {
    /// The apex.
    pub origin: Name,
    /// The file that keeps the last complete copy: the zone's input.
    pub copy: PathBuf,
    /// The primaries, tried in order.
    pub primaries: Vec<Peer>,
    /// Where checks and transfers are recorded.
    pub log: Arc<dyn TransferLog>,
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
    /// one announcing the copy's own serial wakes nothing); hands the
    /// copy read from its file at the start, and every new copy, to
    /// `changed`.
    pub async fn run(
        self,
        mut wakes: watch::Receiver<Option<u32>>,
        mut shutdown: watch::Receiver<bool>,
        changed: impl Fn(NewCopy),
    ) {
        let mut copy = self.load_copy().await.map(Arc::new);
        if let Some(loaded) = &copy {
            changed(NewCopy::Loaded(Arc::clone(loaded)));
        }
        let mut last_success = tokio::time::Instant::now();
        let mut failures = 0u32;
        loop {
            let timers = Timers::of(copy.as_deref());
            // A NOTIFY that came before this check is answered by it.
            wakes.borrow_and_update();
            let wait = match self.check(copy.clone()).await {
                Ok(Checked::New(zone)) => {
                    let zone = Arc::new(zone);
                    copy = Some(Arc::clone(&zone));
                    last_success = tokio::time::Instant::now();
                    failures = 0;
                    changed(NewCopy::Transferred(zone));
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
                    let message = Chain(&e).to_string();
                    tracing::error!(zone = %self.origin, retry_in = %format_duration(wait.as_secs() as i64),
                        "transfer failed, nothing changed: {message}");
                    self.record_error(&message).await;
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
        self.record(TransferEvent::TransferInFailed { at: wall_clock(), message }, "the transfer failure").await;
    }

    /// Records `event`; a failure to is logged, and changes nothing else.
    async fn record(&self, event: TransferEvent<'_>, what: &str) {
        if let Err(e) = self.log.record(&self.origin, event).await {
            tracing::error!(zone = %self.origin, "cannot record {what}: {}", Chain(&e));
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
            self.record(TransferEvent::PrimarySerial { serial: theirs, at: wall_clock() }, "the primary's serial")
                .await;
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
            None => Err(TransferError::KeyNotLoaded { primary: primary.addr, key: name.clone() }),
        }
    }

    /// Transfers from `primary` (IXFR from the copy's serial if there is
    /// a copy) and builds the new copy.
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
                tracing::warn!(zone = %self.origin, primary = %peer, "IXFR answered {}: asking for AXFR", rcode_name(u16::from(rcode)));
                self.fetch_within(peer, source, key, None).await?
            }
            received => received?,
        };
        let serial = received.serial;
        tracing::debug!(zone = %self.origin, seconds = started.elapsed().as_secs_f64(), "transfer in received");
        if serial_gt(expected, serial) {
            return Err(TransferError::OlderThanQueried { primary: peer, serial, expected });
        }
        let (kind, records, bytes) = (received.kind(), received.records, received.bytes);
        // Building the copy is CPU work: off the service's async workers.
        let origin = self.origin.clone();
        let built = tokio::task::spawn_blocking(move || {
            into_zone(received, &origin, copy.as_deref())
                .map_err(|source| TransferError::Apply { primary: peer, source })
        });
        let zone = built.await.unwrap_or_else(|e| {
            Err(TransferError::Copy { path: self.copy.clone(), source: std::io::Error::other(e) })
        })?;
        tracing::debug!(zone = %self.origin, seconds = started.elapsed().as_secs_f64(), "transfer in applied to the copy");
        let done = TransferIn { at: wall_clock(), serial, kind, records, bytes };
        self.record(TransferEvent::TransferIn(done), "the transfer").await;
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
            Err(_) => Err(TransferError::TooLong { primary: peer, timeout: limits.timeout }),
        }
    }
}

/// The wait before the next try after `failures` failures in a row:
/// [`FIRST_RETRY`], doubled for each, at most `retry` (the SOA's).
fn retry_after(failures: u32, retry: Duration) -> Duration {
    FIRST_RETRY.saturating_mul(1 << failures.min(20)).min(retry)
}

/// A copy of the zone handed to the service as its input.
#[derive(Debug, Clone)]
pub enum NewCopy {
    /// The copy kept on disk, read at the start: signed only if it is not
    /// older than the input last published (the copy is written after the
    /// publication, so a kill in between leaves an older one).
    Loaded(Arc<Zone>),
    /// A transfer's new copy, not yet on disk.
    Transferred(Arc<Zone>),
}

/// Writes the copy next to its file, fsyncs it and renames it into place.
pub fn write_copy(path: &std::path::Path, zone: &Zone) -> Result<(), TransferError> {
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

mod fetch;
#[cfg(test)]
mod tests;
