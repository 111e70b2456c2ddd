//! The database behind `xfr::store`'s interfaces: the journal is the
//! source of IXFR out's differences, and the transfer tables record what
//! the transfers did. `xfr/` names zones; the database keys them by row
//! id, looked up here by name for each call (one indexed read: a
//! transfer, a check or a NOTIFY outcome is rare next to it).

use crate::db::{Database, DbError};
use crate::xfr::store::{DiffSource, EncodedStep, StoreError, StoreFuture, TransferEvent, TransferLog};
use crate::zone::Name;

/// The database as the transfers' store.
#[derive(Debug, Clone)]
pub(super) struct DbXfrStore {
    db: Database,
}

impl DbXfrStore {
    /// A store on `db`.
    pub(super) fn new(db: Database) -> DbXfrStore {
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
            TransferEvent::TransferIn(done) => self.db.record_transfer_in(zone_id, &done).await,
            TransferEvent::TransferInFailed { at, message } => {
                self.db.record_transfer_error(zone_id, at, message).await
            }
            TransferEvent::TransferOut(done) => self.db.record_transfer_out(zone_id, &done).await,
            TransferEvent::Notify(outcome) => self.db.record_notify_result(zone_id, &outcome).await,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::scratch::database;
    use crate::db::{JournalEntry, RunCommit, RunRecord, RunResult};
    use crate::policy::JournalPolicy;
    use crate::xfr::store::TransferIn;
    use crate::zone::diff::EncodedDiff;

    /// Commits a publication of `serial` whose difference starts at `from`.
    async fn publish(db: &Database, zone: i64, serial: u32, from: Option<u32>) {
        let run = RunRecord { at: 60, serial: Some(serial), result: RunResult::Published, ..RunRecord::default() };
        let bounds = JournalPolicy { max_versions: 10, max_size: 1 << 20 };
        let diff = from.map(|from| JournalEntry {
            diff: EncodedDiff { old_serial: from, new_serial: serial, removed: 1, added: 1, bytes: vec![serial as u8] },
            bounds,
        });
        db.commit_run(zone, &RunCommit { diff, ..RunCommit::publication(run) }).await.expect("commit");
    }

    #[tokio::test]
    async fn the_journal_is_found_by_the_zone_name() {
        let (db, name, zone, _dir) = database().await;
        for (serial, from) in [(1, None), (2, Some(1)), (3, Some(2))] {
            publish(&db, zone, serial, from).await;
        }
        let store = DbXfrStore::new(db);
        let upper = Name::from_text("EXAMPLE.", None).expect("name");
        let steps = store.differences_since(&upper, 1).await.expect("read").expect("reaches back");
        let serials: Vec<(u32, Vec<u8>)> = steps.into_iter().map(|s| (s.serial_to, s.bytes)).collect();
        assert_eq!(serials, [(2, vec![2]), (3, vec![3])]);
        assert_eq!(store.differences_since(&name, 3).await.expect("read"), Some(Vec::new()), "up to date");
        assert_eq!(store.differences_since(&name, 7).await.expect("read"), None, "not reached");
        let unknown = Name::from_text("other.", None).expect("name");
        let error = store.differences_since(&unknown, 1).await.expect_err("no such zone");
        assert_eq!((error.doing, error.zone.to_string().as_str()), ("reading the journal", "other."));
    }

    #[tokio::test]
    async fn transfer_events_are_recorded_for_the_zone() {
        let (db, name, zone, _dir) = database().await;
        let store = DbXfrStore::new(db.clone());
        store.record(&name, TransferEvent::PrimarySerial { serial: 5, at: 100 }).await.expect("serial");
        store.record(&name, TransferEvent::TransferInFailed { at: 110, message: "refused" }).await.expect("failure");
        let failed = db.transfer_in(zone).await.expect("read").expect("a row");
        assert_eq!((failed.primary_serial, failed.error.as_deref()), (Some(5), Some("refused")));
        let done = TransferIn { at: 120, serial: 6, kind: "ixfr", records: 9, bytes: 900 };
        store.record(&name, TransferEvent::TransferIn(done)).await.expect("transfer");
        let state = db.transfer_in(zone).await.expect("read").expect("a row");
        assert_eq!((state.transfer_serial, state.transfer_kind.as_deref(), state.error), (Some(6), Some("ixfr"), None));
    }
}
