//! NOTIFY out (RFC 1996): after every publication, each secondary that is
//! to be notified is sent a NOTIFY for the new serial, over UDP, from the
//! zone's notify source (`xfr::source`), signed with its TSIG key if it
//! has one, and sent again with a growing wait until it answers: at most
//! [`TRIES`] times (as BIND and NSD), and only [`REFUSAL_TRIES`] times
//! when it answers REFUSED, NOTAUTH or a TSIG error, which a retry a few
//! seconds later does not change. Then one error line, and the outcome
//! recorded for `signet status`; the next publication tries again. A
//! newer version replaces the tries of the one before.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{MessageType, Metadata, OpCode, ResponseCode};
use tokio::sync::watch;

use super::acl::Peer;
use super::catalog::{Catalog, ServedVersion, client_ip};
use super::client::rcode_name;
use super::outgoing::apex_soa;
use super::source::{Source, SourceWhy};
use super::store::{NotifyOutcome, TransferEvent, TransferLog};
use super::tsig::{ResponseVerifier, TsigError, TsigRcode, sign_request};
use super::wire::{
    CLASS_IN, MAX_MESSAGE, MessageWriter, ParsedMessage, Question, Section, WireError, random_id, udp_exchange_from,
    unix_now,
};
use crate::chain::Chain;
use crate::time::wall_clock;
use crate::zone::{Name, Rtype};

/// How long a secondary has to answer one NOTIFY.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// The first wait before a NOTIFY is sent again; it doubles.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// How many times one NOTIFY is sent to a secondary that does not answer
/// (BIND: 5; NSD: 5 retries).
pub const TRIES: u32 = 5;
/// How many times when the secondary refuses it (REFUSED, NOTAUTH, a
/// TSIG error): the second covers a secondary reloading its settings.
pub const REFUSAL_TRIES: u32 = 2;

/// One zone's notifier.
#[derive(Debug)]
pub struct Notifier {
    /// The apex.
    pub origin: Name,
    /// Where acknowledgements are recorded.
    pub log: Arc<dyn TransferLog>,
    /// The zone's secondaries and the TSIG keys.
    pub catalog: Arc<Catalog>,
}

impl Notifier {
    /// Notifies the zone's secondaries of every version `served` carries,
    /// until the channel closes (the zone left) or `shutdown`.
    pub async fn run(
        self,
        mut served: watch::Receiver<Option<Arc<ServedVersion>>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let this = Arc::new(self);
        let mut round: Option<tokio::task::JoinSet<()>> = None;
        loop {
            tokio::select! {
                changed = served.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
            let Some(version) = served.borrow_and_update().clone() else { continue };
            // A newer version replaces the NOTIFYs still being retried.
            drop(round.take());
            let targets: Vec<Peer> = this
                .catalog
                .zone(this.origin.as_ref())
                .map(|zone| zone.remotes.secondaries.into_iter().filter(|p| p.notify).collect())
                .unwrap_or_default();
            let mut set = tokio::task::JoinSet::new();
            for peer in targets {
                set.spawn(Arc::clone(&this).notify_until_acknowledged(peer, Arc::clone(&version)));
            }
            round = Some(set);
        }
    }

    async fn notify_until_acknowledged(self: Arc<Self>, peer: Peer, version: Arc<ServedVersion>) {
        let mut wait = FIRST_RETRY;
        let mut attempt = 0;
        let failure = loop {
            attempt += 1;
            let source = self.catalog.notify_source(self.origin.as_ref(), peer.addr);
            match self.notify_once(&peer, &version, source).await {
                Ok(local) => {
                    let result = NotifyOutcome {
                        address: &client_ip(peer.addr),
                        serial: version.serial,
                        at: wall_clock(),
                        acked: true,
                        answer: Some("NOERROR".to_owned()),
                        error: None,
                        tries: attempt,
                        source: Some(local.ip().to_canonical().to_string()),
                    };
                    self.record(result).await;
                    tracing::info!(zone = %self.origin, secondary = %peer.addr, serial = version.serial, attempt, source = %local.ip(), "NOTIFY acknowledged");
                    return;
                }
                Err(failure) => {
                    let limit = if failure.refused { REFUSAL_TRIES } else { TRIES };
                    if attempt >= limit {
                        break failure;
                    }
                    tracing::info!(zone = %self.origin, secondary = %peer.addr, serial = version.serial, attempt,
                        "NOTIFY not acknowledged ({}); sending again in {wait:?}", Chain(&failure.cause));
                }
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        };
        let message = failure.message(&peer, version.serial, attempt);
        let result = NotifyOutcome {
            address: &client_ip(peer.addr),
            serial: version.serial,
            at: wall_clock(),
            acked: false,
            answer: failure.answer.clone(),
            error: Some(message.clone()),
            tries: attempt,
            source: failure.local.map(|l| l.ip().to_canonical().to_string()),
        };
        // Recorded before it is logged: whoever reads the log line finds
        // the outcome in the state too.
        self.record(result).await;
        tracing::error!(zone = %self.origin, secondary = %peer.addr, serial = version.serial, tries = attempt,
            "{message}; the next publication tries again");
    }

    async fn record(&self, outcome: NotifyOutcome<'_>) {
        if let Err(e) = self.log.record(&self.origin, TransferEvent::Notify(outcome)).await {
            tracing::error!(zone = %self.origin, "cannot record the NOTIFY's outcome: {}", Chain(&e));
        }
    }

    /// Sends one NOTIFY from `source` and waits for its answer; the local
    /// address it left from when acknowledged.
    async fn notify_once(&self, peer: &Peer, version: &ServedVersion, source: Source) -> Result<SocketAddr, Failure> {
        let failed = |cause| Failure { cause, answer: None, refused: false, local: None, source };
        let key = match &peer.key {
            Some(name) => Some(
                self.catalog
                    .key(name.as_ref())
                    .ok_or_else(|| failed(NotAcknowledged::KeyNotLoaded { key: name.clone() }))?,
            ),
            None => None,
        };
        let id = random_id();
        let mut metadata = Metadata::new(id, MessageType::Query, OpCode::Notify);
        metadata.authoritative = true;
        let question = Question { name: self.origin.clone(), qtype: Rtype::SOA, qclass: CLASS_IN };
        let mut writer = MessageWriter::new(metadata, Some(&question), MAX_MESSAGE);
        if let Some(soa) = apex_soa(&version.zone) {
            writer.push(Section::Answer, soa, CLASS_IN);
        }
        let mut request = writer.finish();
        let now = unix_now();
        let mut verifier = match &key {
            Some(key) => {
                let mac = sign_request(&mut request, key, now).map_err(|e| failed(NotAcknowledged::Sign(e)))?;
                Some(ResponseVerifier::new(Arc::clone(key), &mac))
            }
            None => None,
        };
        let (answer, local) = udp_exchange_from(peer.addr, source.ip, &request, id, ANSWER_TIMEOUT)
            .await
            .map_err(|e| failed(NotAcknowledged::Exchange(e)))?;
        let parsed = ParsedMessage::parse(&answer)
            .map_err(|e| Failure { local: Some(local), ..failed(NotAcknowledged::Malformed(e)) })?;
        let rcode = parsed.header.response_code;
        let refused = matches!(rcode, ResponseCode::Refused | ResponseCode::NotAuth);
        // The mnemonic (REFUSED), as the RFCs and the other servers' logs
        // name it, not hickory's prose ("Query Refused").
        let rcode_text = rcode_name(u16::from(rcode));
        if let Some(verifier) = verifier.as_mut()
            && let Err(e) = verifier.verify(&answer, now)
        {
            let answer = match &e {
                TsigError::Server { error, .. } => format!("{rcode_text}/{error}"),
                _ => rcode_text,
            };
            let server_error = matches!(e, TsigError::Server { .. });
            return Err(Failure {
                cause: NotAcknowledged::Tsig { answer: answer.clone(), source: e },
                answer: Some(answer),
                refused: refused || server_error,
                local: Some(local),
                source,
            });
        }
        match rcode {
            ResponseCode::NoError => Ok(local),
            _ => Err(Failure {
                cause: NotAcknowledged::Rcode { answer: rcode_text.clone() },
                answer: Some(rcode_text),
                refused,
                local: Some(local),
                source,
            }),
        }
    }
}

/// Why one NOTIFY was not acknowledged.
#[derive(Debug, thiserror::Error)]
enum NotAcknowledged {
    /// The secondary's TSIG key is not loaded.
    #[error("TSIG key {key} is not loaded")]
    KeyNotLoaded {
        /// Its name.
        key: Name,
    },
    /// The NOTIFY could not be signed.
    #[error("cannot sign")]
    Sign(#[source] TsigError),
    /// No answer (the network, or no answer in time).
    #[error(transparent)]
    Exchange(std::io::Error),
    /// An answer that does not read.
    #[error(transparent)]
    Malformed(WireError),
    /// An answer whose TSIG is refused, or that carries the secondary's
    /// TSIG error.
    #[error("answered {answer}")]
    Tsig {
        /// The RCODE, and the TSIG error after a slash.
        answer: String,
        /// What is wrong with its TSIG.
        #[source]
        source: TsigError,
    },
    /// An answer with an error RCODE.
    #[error("answered {answer}")]
    Rcode {
        /// The RCODE.
        answer: String,
    },
}

impl NotAcknowledged {
    /// Did the secondary refuse the TSIG signature or time (BADSIG,
    /// BADTIME in its TSIG record), rather than the NOTIFY's source?
    fn is_tsig_refusal(&self) -> bool {
        let refused = |error: &TsigRcode| matches!(*error, TsigRcode::BADSIG | TsigRcode::BADTIME);
        matches!(self, NotAcknowledged::Tsig { source: TsigError::Server { error, .. }, .. } if refused(error))
    }
}

/// One NOTIFY not acknowledged, and what the secondary answered.
#[derive(Debug)]
struct Failure {
    /// Why.
    cause: NotAcknowledged,
    /// The secondary's answer: its RCODE, and the TSIG error after a
    /// slash (`NOTAUTH/BADKEY`); None without an answer.
    answer: Option<String>,
    /// A refusal (REFUSED, NOTAUTH, a TSIG error): tried again only
    /// [`REFUSAL_TRIES`] times.
    refused: bool,
    /// The local address it left from.
    local: Option<SocketAddr>,
    /// How that source was chosen.
    source: Source,
}

impl Failure {
    /// The error line after the last try: what the secondary answered,
    /// and, for a refusal the source address may explain, the source.
    fn message(&self, peer: &Peer, serial: u32, tries: u32) -> String {
        let mut text = format!(
            "NOTIFY for serial {serial} to secondary {} failed after {tries} tries: {}",
            peer.addr,
            Chain(&self.cause)
        );
        if !self.refused {
            return text;
        }
        let used = self.source.describe(self.local.map(|l| l.ip()));
        if self.cause.is_tsig_refusal() {
            text.push_str(&format!(
                "; the secondary does not accept the TSIG key's signature or time (sent from {used})"
            ));
            return text;
        }
        match self.source.why {
            SourceWhy::Kernel | SourceWhy::Listen => text.push_str(&format!(
                "; the likely cause is the source address: the NOTIFY left from {used}, and a secondary takes NOTIFY \
                 only from the addresses it has for its primaries (RFC 1996 §3.10): set {} to the address it knows signet by",
                self.source.knob
            )),
            SourceWhy::Zone | SourceWhy::Serve => text.push_str(&format!(
                "; the NOTIFY left from {used}: check that the secondary has that address (and the key) for its primary"
            )),
        }
        text
    }
}
