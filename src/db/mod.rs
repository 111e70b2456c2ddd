//! SQLite persistence (sqlx): policies, zones, keys with the states of
//! the rollover machine, operator observations, signing runs and the
//! audit trail. The only module that speaks SQL.
//!
//! The database runs in WAL mode with foreign keys on and full sync; the
//! file is created mode 0600; the schema changes only through the
//! migrations in `migrations/`, embedded at build time. Everything a
//! signing run changes is written in one transaction, after the zone has
//! been published: a run killed at any point leaves the database as it
//! was before the run (or after it), never half-way.
//!
//! One file per group of tables: `policies`, `zones`, `keys` (and the
//! observations about them), `runs`, `events` (the audit trail),
//! `journal`, `memo`, `transfers`, `parent`, `locks` (the service's and
//! the zones' signing locks); `open` checks a file before it is opened,
//! `rows` converts rows to the model's types, `error` says what failed.

mod error;
mod events;
mod journal;
mod keys;
mod locks;
mod memo;
mod open;
mod parent;
mod policies;
mod rows;
mod runs;
#[cfg(test)]
pub(crate) mod scratch;
mod transfers;
mod zones;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};

use error::Result;
pub use error::{DbError, NotSignet, ReadOnly};
use events::insert_event;
pub use events::{Actor, Event, EventKind};
pub use journal::{JournalEntry, JournalSummary, JournalVersion};
pub use locks::{ServiceLock, service_lock_path};
pub use memo::{GateMemoCommit, GateMemoInfo, MemoBlob};
pub use parent::{DsCheck, DsSubmission};
pub use rows::{PolicyRow, RunRow, StoredKey, ZoneRow, ZoneWatch};
pub use runs::{PublishedZone, RunCommit, RunRecord, RunResult};
pub use transfers::{Remote, RemoteRole, TransferInState, TransferOutState, TsigKeyRow};
pub use zones::{NewZone, ZoneSnapshot, zone_key};

/// The database.
#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
    path: PathBuf,
}

impl Database {
    /// Opens the database at `path`, creating it (mode 0600) if `create`,
    /// and brings its schema up to date.
    pub async fn open(path: &Path, create: bool) -> Result<Database> {
        open::check(path, create).await?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .after_release(|connection, _| Box::pin(fit_for_reuse(connection)))
            .connect_with(options)
            .await
            .map_err(|e| open::open_failure(path, e))?;
        open::MIGRATOR.run(&pool).await?;
        open::make_all_private(path)?;
        Ok(Database { pool, path: path.to_owned() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A write transaction, taking the write lock at once (BEGIN
    /// IMMEDIATE): a transaction that reads first and writes later could
    /// otherwise fail when another process wrote in between; this one
    /// waits for the other (up to the busy timeout) instead.
    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// Whether a connection handed back to the pool may serve again: not if
/// it is still inside a transaction once the rollback of a transaction
/// dropped unfinished has run. That happens when SQLite ended the
/// transaction itself ("database or disk is full", an I/O error): the
/// driver's ROLLBACK then finds none and fails, and the driver would go
/// on counting the connection as in a transaction, so that every later
/// BEGIN on it failed ("attempted to call begin_with at non-zero
/// transaction depth"). Such a connection is closed (SQLite rolls back
/// whatever is left of the transaction) and the pool opens a new one.
async fn fit_for_reuse(connection: &mut sqlx::SqliteConnection) -> std::result::Result<bool, sqlx::Error> {
    use sqlx::Connection as _;
    // A transaction dropped unfinished queued its rollback on the
    // connection: the ping runs after it.
    connection.ping().await?;
    if connection.is_in_transaction() {
        tracing::warn!(
            "a database connection is still in a transaction after its rollback (SQLite ended it after an error): \
             closed, a new one takes its place"
        );
        return Ok(false);
    }
    Ok(true)
}
