//! NOTIFY out (RFC 1996): after every publication, each secondary that is
//! to be notified is sent a NOTIFY for the new serial, over UDP, signed
//! with its TSIG key if it has one, and sent again with a growing wait
//! until it answers, or until a newer version replaces the one announced.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{MessageType, Metadata, OpCode, ResponseCode};
use tokio::sync::watch;

use super::acl::Peer;
use super::catalog::{Catalog, ServedVersion, client_ip};
use super::outgoing::apex_soa;
use super::tsig::{ResponseVerifier, sign_request};
use super::wire::{
    CLASS_IN, MAX_MESSAGE, MessageWriter, ParsedMessage, Question, Section, random_id, udp_exchange, unix_now,
};
use crate::db::Database;
use crate::time::wall_clock;
use crate::zone::{Name, Rtype};

/// How long a secondary has to answer one NOTIFY.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// The first wait before a NOTIFY is sent again; it doubles up to
/// [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two NOTIFYs to one secondary.
const MAX_RETRY: Duration = Duration::from_secs(300);

/// One zone's notifier.
#[derive(Debug)]
pub struct Notifier {
    /// The zone's database id.
    pub zone_id: i64,
    /// The apex.
    pub origin: Name,
    /// Where acknowledgements are recorded.
    pub db: Database,
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
        for attempt in 1u32.. {
            match self.notify_once(&peer, &version).await {
                Ok(()) => {
                    tracing::info!(zone = %self.origin, secondary = %peer.addr, serial = version.serial, attempt, "NOTIFY acknowledged");
                    let address = client_ip(peer.addr);
                    if let Err(e) =
                        self.db.record_notify_ack(self.zone_id, &address, version.serial, wall_clock()).await
                    {
                        tracing::error!(zone = %self.origin, "cannot record the NOTIFY acknowledgement: {e}");
                    }
                    return;
                }
                // The first miss is common (a secondary still starting);
                // the ones after are worth a warning.
                Err(e) if attempt == 1 => {
                    tracing::info!(zone = %self.origin, secondary = %peer.addr, serial = version.serial, "NOTIFY not acknowledged ({e}); sending again in {wait:?}");
                }
                Err(e) => {
                    tracing::warn!(zone = %self.origin, secondary = %peer.addr, serial = version.serial, attempt, "NOTIFY not acknowledged ({e}); sending again in {wait:?}");
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_RETRY);
        }
    }

    /// Sends one NOTIFY and waits for its answer.
    async fn notify_once(&self, peer: &Peer, version: &ServedVersion) -> Result<(), String> {
        let key = match &peer.key {
            Some(name) => {
                Some(self.catalog.key(name.as_ref()).ok_or_else(|| format!("TSIG key {name} is not loaded"))?)
            }
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
                let mac = sign_request(&mut request, key, now).map_err(|e| format!("cannot sign: {e}"))?;
                Some(ResponseVerifier::new(Arc::clone(key), &mac))
            }
            None => None,
        };
        let answer = udp_exchange(peer.addr, &request, id, ANSWER_TIMEOUT).await.map_err(|e| e.to_string())?;
        let parsed = ParsedMessage::parse(&answer).map_err(|e| e.to_string())?;
        if let Some(verifier) = verifier.as_mut() {
            verifier.verify(&answer, now).map_err(|e| e.to_string())?;
        }
        match parsed.header.response_code {
            ResponseCode::NoError => Ok(()),
            rcode => Err(format!("answered {rcode}")),
        }
    }
}
