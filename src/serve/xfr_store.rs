//! The database behind `xfr::store`'s interfaces: the journal is the
//! source of IXFR out's differences, and the transfer tables record what
//! the transfers did. `xfr/` names zones; the database keys them by row
//! id, looked up here by name for each call (one indexed read: a
//! transfer, a check or a NOTIFY outcome is rare next to it).

use crate::db::{Database, DbError, NotifyResult, TransferInDone, TransferOutDone};
use crate::xfr::store::{
    DiffSource, EncodedStep, StoreError, StoreFuture, TransferEvent, TransferLog,
};
use crate::zone::Name;

/// The database as the transfers' store.
#[derive(Debug, Clone)]
pub struct DbXfrStore {
    db: Database,
}

impl DbXfrStore {
    /// A store on `db`.
    pub fn new(db: Database) -> DbXfrStore {
        DbXfrStore { db }
    }

    /// The zone's row id.
    async fn zone_id(&self, zone: &Name) -> Result<i64, DbError> {
        Ok(self.db.zone(zone).await?.id)
    }

    async fn steps_since(&self, zone: &Name, serial: u32) -> Result<Option<Vec<EncodedStep>>, DbError> {
        let zone_id = self.zone_id(zone).await?;
        let Some(entries) = self.db.journal_since(zone_id, serial).await? else { return Ok(None) };
        let steps = entries
            .into_iter()
            // The journal's serials are u32 stored as i64: one that is not
            // cannot match a chain of u32 serials, and is left to fail it.
            .map(|(version, bytes)| EncodedStep { serial_to: u32::try_from(version.serial_to).unwrap_or(0), bytes });
        Ok(Some(steps.collect()))
    }

    async fn record_event(&self, zone: &Name, event: TransferEvent<'_>) -> Result<(), DbError> {
        let zone_id = self.zone_id(zone).await?;
        match event {
            TransferEvent::PrimarySerial { serial, at } => self.db.record_primary_serial(zone_id, serial, at).await,
            TransferEvent::TransferIn(done) => {
                let done =
                    TransferInDone { at: done.at, serial: done.serial, kind: done.kind, records: done.records, bytes: done.bytes };
                self.db.record_transfer_in(zone_id, &done).await
            }
            TransferEvent::TransferInFailed { at, message } => self.db.record_transfer_error(zone_id, at, message).await,
            TransferEvent::TransferOut(done) => {
                let done = TransferOutDone {
                    address: done.address,
                    at: done.at,
                    serial: done.serial,
                    from: done.from,
                    kind: done.kind,
                };
                self.db.record_transfer_out(zone_id, &done).await
            }
            TransferEvent::Notify(outcome) => {
                let result = NotifyResult {
                    address: outcome.address,
                    serial: outcome.serial,
                    at: outcome.at,
                    acked: outcome.acked,
                    answer: outcome.answer,
                    error: outcome.error,
                    tries: outcome.tries,
                    source: outcome.source,
                };
                self.db.record_notify_result(zone_id, &result).await
            }
        }
    }
}

fn store_error(doing: &'static str, zone: &Name, source: DbError) -> StoreError {
    StoreError { doing, zone: zone.clone(), source: Box::new(source) }
}

impl DiffSource for DbXfrStore {
    fn differences_since<'a>(&'a self, zone: &'a Name, serial: u32) -> StoreFuture<'a, Option<Vec<EncodedStep>>> {
        Box::pin(async move {
            self.steps_since(zone, serial).await.map_err(|e| store_error("reading the journal", zone, e))
        })
    }
}

impl TransferLog for DbXfrStore {
    fn record<'a>(&'a self, zone: &'a Name, event: TransferEvent<'a>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.record_event(zone, event).await.map_err(|e| store_error("recording a transfer event", zone, e))
        })
    }
}
