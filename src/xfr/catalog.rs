//! What the DNS side of `signet serve` knows of each zone: the version it
//! may serve (only ever one the gate passed), who its primaries,
//! secondaries and other allowed clients are, and the TSIG keys.
//!
//! The supervisor writes the configuration from the database; zone tasks
//! write the served version after each publication; the server and the
//! transfer tasks read.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::watch;

use super::acl::{AclEntry, Peer};
use super::source::{Source, SourceDefaults};
use super::tsig::TsigKey;
use crate::zone::{Name, NameRef, Zone};

/// A published version, as the gate read it back.
#[derive(Debug)]
pub struct ServedVersion {
    /// The zone.
    pub zone: Arc<Zone>,
    /// Its SOA serial.
    pub serial: u32,
}

/// Who a zone's remotes are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneRemotes {
    /// Its input's primaries: transferred from, NOTIFY accepted from.
    pub primaries: Vec<Peer>,
    /// Its secondaries: notified (those with `notify`), allowed to transfer.
    pub secondaries: Vec<Peer>,
    /// Other clients allowed to transfer.
    pub acl: Vec<AclEntry>,
    /// The zone's own `notify-source` (at most one address per family).
    pub notify_source: Vec<IpAddr>,
    /// The zone's own `transfer-source`.
    pub transfer_source: Vec<IpAddr>,
}

impl ZoneRemotes {
    /// May a client at `ip`, whose request was signed with `key` (None:
    /// unsigned), transfer the zone?
    pub fn allows(&self, ip: IpAddr, key: Option<NameRef<'_>>) -> bool {
        self.secondaries.iter().any(|peer| peer.addr.ip() == ip && peer.accepts(key))
            || self.acl.iter().any(|entry| entry.allows(ip, key))
    }

    /// Is `ip`, with `key`, one of the primaries (whose NOTIFY counts)?
    pub fn primary_at(&self, ip: IpAddr, key: Option<NameRef<'_>>) -> bool {
        self.primaries.iter().any(|peer| peer.addr.ip() == ip && peer.accepts(key))
    }
}

/// One zone of the catalog.
#[derive(Debug)]
struct Entry {
    remotes: ZoneRemotes,
    /// The version served, sent to the zone's notifier.
    served: watch::Sender<Option<Arc<ServedVersion>>>,
    /// Wakes the zone's transfer in (a primary's NOTIFY), with the
    /// serial the NOTIFY announced; NOTIFYs not yet looked at collapse
    /// into the last one.
    inbound: Option<watch::Sender<Option<u32>>>,
}

/// The zones the DNS side serves, by lowercase apex.
#[derive(Debug, Default)]
pub struct Catalog {
    zones: RwLock<HashMap<Name, Entry>>,
    keys: RwLock<HashMap<Name, Arc<TsigKey>>>,
    sources: RwLock<SourceDefaults>,
}

/// A zone as a request sees it.
#[derive(Debug, Clone)]
pub struct ZoneView {
    /// Its remotes.
    pub remotes: ZoneRemotes,
    /// The version served (None: nothing published yet).
    pub version: Option<Arc<ServedVersion>>,
}

impl Catalog {
    /// Adds zone `origin` (or updates its remotes); returns the receiver
    /// of its served versions when the zone is new.
    pub fn configure(
        &self,
        origin: &Name,
        remotes: ZoneRemotes,
    ) -> Option<watch::Receiver<Option<Arc<ServedVersion>>>> {
        let mut zones = self.zones.write().unwrap_or_else(PoisonError::into_inner);
        let key = origin.as_ref().to_lowercase();
        if let Some(entry) = zones.get_mut(&key) {
            entry.remotes = remotes;
            return None;
        }
        let (served, receiver) = watch::channel(None);
        zones.insert(key, Entry { remotes, served, inbound: None });
        Some(receiver)
    }

    /// Forgets a zone that left management.
    pub fn remove(&self, origin: &Name) {
        self.zones.write().unwrap_or_else(PoisonError::into_inner).remove(&origin.as_ref().to_lowercase());
    }

    /// Serves `version` of zone `origin` from now on, and has its
    /// secondaries notified.
    pub fn publish(&self, origin: &Name, version: ServedVersion) {
        let zones = self.zones.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = zones.get(&origin.as_ref().to_lowercase()) {
            entry.served.send_replace(Some(Arc::new(version)));
        }
    }

    /// The zone whose apex is `name`, if served.
    pub fn zone(&self, name: NameRef<'_>) -> Option<ZoneView> {
        let zones = self.zones.read().unwrap_or_else(PoisonError::into_inner);
        let entry = zones.get(&name.to_lowercase())?;
        let version = entry.served.borrow().clone();
        Some(ZoneView { remotes: entry.remotes.clone(), version })
    }

    /// Is `ip` the address of one of a zone's remotes (a primary, a
    /// secondary, or in an access-list network)? Those have TCP
    /// connections kept for them (`server`). An access-list entry of a
    /// key alone names no address.
    pub fn is_remote(&self, ip: IpAddr) -> bool {
        let zones = self.zones.read().unwrap_or_else(PoisonError::into_inner);
        zones.values().any(|entry| {
            let remotes = &entry.remotes;
            remotes.primaries.iter().chain(&remotes.secondaries).any(|peer| peer.addr.ip().to_canonical() == ip)
                || remotes.acl.iter().any(|acl| acl.net.is_some_and(|net| super::acl::contains(net, ip)))
        })
    }

    /// Registers the channel that wakes zone `origin`'s transfer in.
    pub fn set_inbound(&self, origin: &Name, wake: Option<watch::Sender<Option<u32>>>) {
        let mut zones = self.zones.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = zones.get_mut(&origin.as_ref().to_lowercase()) {
            entry.inbound = wake;
        }
    }

    /// A primary's NOTIFY for zone `name`: wakes its transfer in. False
    /// if the zone has none.
    pub fn wake_inbound(&self, name: NameRef<'_>, serial: Option<u32>) -> bool {
        let zones = self.zones.read().unwrap_or_else(PoisonError::into_inner);
        zones.get(&name.to_lowercase()).and_then(|e| e.inbound.as_ref()).is_some_and(|wake| wake.send(serial).is_ok())
    }

    /// Sets serve's source settings and listen addresses.
    pub fn set_source_defaults(&self, defaults: SourceDefaults) {
        *self.sources.write().unwrap_or_else(PoisonError::into_inner) = defaults;
    }

    /// serve's source settings and listen addresses.
    pub fn source_defaults(&self) -> SourceDefaults {
        self.sources.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Where a NOTIFY of zone `origin` to `peer` leaves from.
    pub fn notify_source(&self, origin: NameRef<'_>, peer: SocketAddr) -> Source {
        let zone = self.zone(origin).map(|z| z.remotes.notify_source).unwrap_or_default();
        self.source_defaults().notify(&zone).for_peer(peer)
    }

    /// Where a query, transfer in or UPDATE of zone `origin` to `peer`
    /// leaves from.
    pub fn transfer_source(&self, origin: NameRef<'_>, peer: SocketAddr) -> Source {
        let zone = self.zone(origin).map(|z| z.remotes.transfer_source).unwrap_or_default();
        self.source_defaults().transfer(&zone).for_peer(peer)
    }

    /// Replaces the TSIG keys.
    pub fn set_keys(&self, keys: HashMap<Name, Arc<TsigKey>>) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
    }

    /// The TSIG key named `name` (any case).
    pub fn key(&self, name: NameRef<'_>) -> Option<Arc<TsigKey>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).get(&name.to_lowercase()).cloned()
    }
}

/// A peer's address for logs and status: the IP alone for clients (their
/// port changes with every connection).
pub fn client_ip(addr: SocketAddr) -> String {
    addr.ip().to_canonical().to_string()
}
