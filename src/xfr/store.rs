//! What the transfers need from the rest of signet, as two interfaces
//! keyed by the zone's name: a source of the differences between
//! published versions (what IXFR out answers from) and a log of what the
//! transfers did (transfers in and out, NOTIFY outcomes: what `signet
//! status` and the metrics show). `xfr/` speaks DNS and knows nothing of
//! where these live; `serve::xfr_store` implements them on the database.
//!
//! The methods return boxed futures so that the listener, the transfer
//! in and the notifier can hold one `Arc<dyn …>` each without being
//! generic over the store.

use std::future::Future;
use std::pin::Pin;

use crate::zone::Name;

/// A future a store returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The store could not do what was asked; its error is the source.
#[derive(Debug, thiserror::Error)]
#[error("{doing} for zone {zone}")]
pub struct StoreError {
    /// What was asked, e.g. "reading the journal".
    pub doing: &'static str,
    /// The zone.
    pub zone: Name,
    /// Why it failed.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// One published version's difference from the version before it, in
/// `zone::diff`'s encoding (decoded, and its hash checked, by IXFR out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedStep {
    /// The serial of the version it leads to.
    pub serial_to: u32,
    /// The encoded difference.
    pub bytes: Vec<u8>,
}

/// The differences between the versions of a zone that were published.
pub trait DiffSource: Send + Sync + std::fmt::Debug {
    /// The differences that lead from `serial` to the newest version,
    /// oldest first: empty if `serial` is the newest; None if they do not
    /// reach back to `serial` (the whole zone is served instead).
    fn differences_since<'a>(&'a self, zone: &'a Name, serial: u32) -> StoreFuture<'a, Option<Vec<EncodedStep>>>;
}

/// Where the transfers of a zone report what they did.
pub trait TransferLog: Send + Sync + std::fmt::Debug {
    /// Records `event` of zone `zone`.
    fn record<'a>(&'a self, zone: &'a Name, event: TransferEvent<'a>) -> StoreFuture<'a, ()>;
}

/// What a transfer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEvent<'a> {
    /// A primary answered the SOA query with its serial.
    PrimarySerial {
        /// Its serial.
        serial: u32,
        /// When (Unix seconds).
        at: i64,
    },
    /// A transfer in completed (the failure before it is over).
    TransferIn(TransferIn),
    /// A check or transfer in failed, or the primary's serial went
    /// backwards; nothing changed.
    TransferInFailed {
        /// When.
        at: i64,
        /// The error, with its causes.
        message: &'a str,
    },
    /// A client was served a transfer.
    TransferOut(TransferOut<'a>),
    /// A NOTIFY was acknowledged or given up on.
    Notify(NotifyOutcome<'a>),
}

/// A completed transfer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferIn {
    /// When it completed.
    pub at: i64,
    /// The serial transferred.
    pub serial: u32,
    /// `axfr` or `ixfr`.
    pub kind: &'static str,
    /// Records carried.
    pub records: u64,
    /// Bytes carried.
    pub bytes: u64,
}

/// A transfer served to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferOut<'a> {
    /// The client's IP address.
    pub address: &'a str,
    /// When.
    pub at: i64,
    /// The serial served.
    pub serial: u32,
    /// For IXFR, the client's serial.
    pub from: Option<u32>,
    /// `axfr`, `ixfr`, `up-to-date`.
    pub kind: &'static str,
}

/// The outcome of a NOTIFY to one secondary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyOutcome<'a> {
    /// The secondary's IP address.
    pub address: &'a str,
    /// The serial announced.
    pub serial: u32,
    /// When.
    pub at: i64,
    /// It was acknowledged.
    pub acked: bool,
    /// What the secondary answered (RCODE, `RCODE/TSIG error`).
    pub answer: Option<String>,
    /// Why it was given up on.
    pub error: Option<String>,
    /// How many times it was sent.
    pub tries: u32,
    /// The local address it left from.
    pub source: Option<String>,
}
