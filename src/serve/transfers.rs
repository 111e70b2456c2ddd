//! The service's side of zone transfers: the remotes and TSIG keys read
//! from the database into the catalog at every database poll, a notifier
//! task per zone, and a transfer-in task per zone whose input is a
//! primary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Shared;
use super::metrics::TransferGauges;
use super::xfr_store::DbXfrStore;
use super::zone_task::Wake;
use crate::chain::Chain;
use crate::db::{Remote, RemoteRole};
use crate::manage::status::versions_behind;
use crate::publish::Stamp;
use crate::xfr::acl::{AclEntry, Peer, parse_prefix, parse_socket};
use crate::xfr::catalog::ZoneRemotes;
use crate::xfr::incoming::{Inbound, TransferLimits};
use crate::xfr::notify::Notifier;
use crate::xfr::tsig::TsigKey;
use crate::zone::Name;

/// The TSIG keys as last read: a key file is read again only when its
/// path or stamp changes.
#[derive(Debug, Default)]
pub(super) struct KeyFiles {
    read: HashMap<String, (String, Option<Stamp>)>,
}

impl KeyFiles {
    /// Reads the keys the database names into the catalog.
    pub(super) async fn refresh(&mut self, shared: &Shared) {
        let rows = match shared.db.tsig_keys().await {
            Ok(rows) => rows,
            Err(e) => return tracing::error!("cannot read the TSIG keys from the database: {}", Chain(&e)),
        };
        let unchanged = rows.len() == self.read.len()
            && rows.iter().all(|row| {
                self.read.get(&row.name).is_some_and(|(path, stamp)| {
                    *path == row.secret_path && *stamp == Stamp::of(Path::new(&row.secret_path))
                })
            });
        if unchanged {
            return;
        }
        let mut keys = HashMap::new();
        self.read.clear();
        for row in rows {
            let path = PathBuf::from(&row.secret_path);
            self.read.insert(row.name.clone(), (row.secret_path.clone(), Stamp::of(&path)));
            let Ok(name) = Name::from_text(&row.name, None) else { continue };
            match TsigKey::read_file_named(&path, &name) {
                Ok(key) => {
                    keys.insert(name.as_ref().to_lowercase(), Arc::new(key));
                }
                Err(e) => tracing::error!(key = %row.name, "TSIG key not loaded: {}", Chain(&e)),
            }
        }
        tracing::info!(keys = keys.len(), "TSIG keys loaded");
        shared.catalog.set_keys(keys);
    }
}

/// A zone's remotes in the catalog's form; entries that do not read are
/// reported and left out.
pub(super) fn zone_remotes(zone: &str, rows: &[Remote]) -> ZoneRemotes {
    let mut remotes = ZoneRemotes::default();
    for row in rows {
        let key =
            row.tsig_key.as_deref().and_then(|k| Name::from_text(k, None).ok()).map(|k| k.as_ref().to_lowercase());
        let peer = || parse_socket(row.address.as_deref().unwrap_or_default());
        let added = match row.role {
            RemoteRole::Primary => peer().map(|addr| remotes.primaries.push(Peer { addr, key, notify: false })),
            RemoteRole::Secondary => {
                peer().map(|addr| remotes.secondaries.push(Peer { addr, key, notify: row.notify }))
            }
            RemoteRole::Acl => {
                row.address.as_deref().map(parse_prefix).transpose().map(|net| remotes.acl.push(AclEntry { net, key }))
            }
            RemoteRole::NotifySource | RemoteRole::TransferSource => {
                let text = row.address.clone().unwrap_or_default();
                crate::xfr::source::parse_sources(std::slice::from_ref(&text))
                    .map(|ips| match row.role {
                        RemoteRole::NotifySource => remotes.notify_source.extend(ips),
                        _ => remotes.transfer_source.extend(ips),
                    })
                    .map_err(|_| crate::xfr::acl::AddressError { text, expected: "an IP address" })
            }
            // The parent's remotes are the parent check's (serve::parent).
            _ => Ok(()),
        };
        if let Err(e) = added {
            tracing::error!(zone, "{} entry left out: {e}", row.role.as_str());
        }
    }
    remotes
}

/// A zone's running transfer in.
#[derive(Debug)]
pub(super) struct InboundTask {
    primaries: Vec<Peer>,
    copy: String,
    limits: TransferLimits,
    handle: JoinHandle<()>,
}

impl Drop for InboundTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Starts (or restarts, when its primaries or copy changed) the transfer
/// in of a zone; stops it when the zone has no primaries any more.
pub(super) fn keep_inbound(
    shared: &Arc<Shared>,
    current: &mut Option<InboundTask>,
    origin: &Name,
    copy: &str,
    remotes: &ZoneRemotes,
    wakes: &mpsc::UnboundedSender<Wake>,
) {
    let limits = shared.config().transfer_limits;
    let same = current
        .as_ref()
        .is_some_and(|task| task.primaries == remotes.primaries && task.copy == copy && task.limits == limits);
    if same {
        return;
    }
    *current = None;
    shared.catalog.set_inbound(origin, None);
    if remotes.primaries.is_empty() {
        return;
    }
    let (wake_tx, wake_rx) = tokio::sync::watch::channel(None);
    shared.catalog.set_inbound(origin, Some(wake_tx));
    let inbound = Inbound {
        origin: origin.clone(),
        copy: PathBuf::from(copy),
        primaries: remotes.primaries.clone(),
        log: xfr_store(shared),
        catalog: Arc::clone(&shared.catalog),
        limits,
    };
    let wakes = wakes.clone();
    let changed = move |copy| {
        let _ = wakes.send(Wake::Copy(copy));
    };
    let handle = tokio::spawn(inbound.run(wake_rx, shared.shutdown.clone(), changed));
    *current = Some(InboundTask { primaries: remotes.primaries.clone(), copy: copy.to_owned(), limits, handle });
}

/// Configures a zone in the catalog; a zone new to it gets its notifier.
pub(super) fn configure(shared: &Arc<Shared>, origin: &Name, remotes: ZoneRemotes) {
    if let Some(served) = shared.catalog.configure(origin, remotes) {
        let notifier =
            Notifier { origin: origin.clone(), log: xfr_store(shared), catalog: Arc::clone(&shared.catalog) };
        tokio::spawn(notifier.run(served, shared.shutdown.clone()));
    }
}

/// The database as the store of the transfers' events and differences.
pub(super) fn xfr_store(shared: &Shared) -> Arc<DbXfrStore> {
    Arc::new(DbXfrStore::new(shared.db.clone()))
}

/// Reads the zone's transfer state into the metrics.
pub(super) async fn update_metrics(shared: &Shared, zone_id: i64, label: &str) {
    let (Ok(state), Ok(clients), Ok(remotes), Ok(journal)) = (
        shared.db.transfer_in(zone_id).await,
        shared.db.transfers_out(zone_id).await,
        shared.db.remotes(zone_id).await,
        shared.db.journal(zone_id).await,
    ) else {
        return;
    };
    let served = match Name::from_text(label, None) {
        Ok(origin) => shared.db.zone(&origin).await.ok().and_then(|row| row.last_serial),
        Err(_) => None,
    };
    let state = state.unwrap_or_default();
    // Each secondary with what it last did: the serials it was notified of
    // and transferred, and how far behind it is.
    let known = remotes.iter().filter(|r| r.role == RemoteRole::Secondary).filter_map(|r| {
        let address = r.address.clone()?;
        let ip = crate::xfr::catalog::client_ip(parse_socket(&address).ok()?);
        Some((address, clients.iter().find(|c| c.address == ip)))
    });
    let (secondaries, secondary_lag): (Vec<_>, Vec<_>) = known
        .map(|(address, client)| {
            let transferred = client.and_then(|c| c.transfer_serial);
            let behind = versions_behind(&journal, served, transferred);
            let failing = client.is_some_and(|c| c.notify_error.is_some());
            ((address.clone(), client.and_then(|c| c.notified_serial), transferred), (address, behind, failing))
        })
        .unzip();
    let failing = match (state.error_at, state.transfer_at.max(state.checked_at)) {
        (Some(error), Some(success)) => error >= success,
        (Some(_), None) => true,
        _ => false,
    };
    let gauges = TransferGauges {
        primary_serial: state.primary_serial,
        transfer_in_at: state.transfer_at,
        transfer_in_failing: failing,
        secondaries,
        secondary_lag,
    };
    shared.metrics.set_transfers(label, gauges);
}
