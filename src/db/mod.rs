//! Persistence (sqlx): policies, zones, keys with the states of the
//! rollover machine, operator observations, signing runs and the audit
//! trail. The only module that speaks SQL.
//!
//! The state lives in an SQLite file (the default) or in PostgreSQL
//! (`--db postgres://…`, for state that several machines share): one set
//! of queries for both, through sqlx's `Any` driver, written in the SQL
//! both accept (`$N` parameters, `ON CONFLICT … DO UPDATE`, `RETURNING`),
//! and one set of migrations per dialect (`migrations/sqlite`,
//! `migrations/postgres`), embedded at build time; the schema changes
//! only through them. An SQLite database runs in WAL mode with foreign
//! keys on and full sync, its file created mode 0600. Everything a
//! signing run changes is written in one transaction, after the zone has
//! been published: a run killed at any point leaves the database as it
//! was before the run (or after it), never half-way.
//!
//! One file per group of tables: `policies`, `zones`, `keys` (and the
//! observations about them), `runs`, `events` (the audit trail),
//! `journal`, `memo`, `transfers`, `parent`, `reviews` (the review hook
//! and its verdicts), `locks` (the service's and
//! the zones' signing locks); `location` reads `--db`, `open` checks a
//! database before it is used, `rows` converts rows to the model's types,
//! `error` says what failed.

mod error;
mod events;
mod journal;
mod keys;
mod leases;
mod location;
mod locks;
mod memo;
mod offline;
mod open;
mod parent;
mod policies;
mod reviews;
mod rows;
mod runs;
#[cfg(test)]
pub(crate) mod scratch;
mod transfers;
mod zones;

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, ConnectOptions as _, Executor as _, Transaction};

use error::Result;
pub use error::{DbError, NotSignet, ReadOnly};
use events::insert_event;
pub use events::{Actor, Event, EventKind};
pub use journal::{JournalEntry, JournalSummary, JournalVersion};
pub use leases::{Fence, LeaseInfo};
pub use location::{DbLocation, LocationError};
pub use locks::{RUN_LEASE, ServiceLock, service_lock_path, signer_name};
pub use memo::{GateMemoCommit, GateMemoInfo, MemoBlob};
pub use offline::{OfflineCommit, OfflinePeriod, OfflineSide};
pub use parent::{DsCheck, DsSubmission};
pub use reviews::{Decider, NewReview, Review, ReviewHook, Verdict};
pub use rows::{PolicyRow, RunRow, StoredKey, ZoneRow, ZoneWatch};
pub use runs::{PublishedZone, RunCommit, RunRecord, RunResult};
pub use transfers::{Remote, RemoteRole, TransferInState, TransferOutState, TsigKeyRow};
pub use zones::{NewZone, ZoneSnapshot, zone_key};

/// Every SQLite connection's settings: wait up to 30 s for another
/// process's write lock; WAL; full sync; foreign keys enforced.
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA busy_timeout = 30000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
];

/// The PostgreSQL advisory lock every write transaction takes first (see
/// [`Database::write`]): "signet" and 1.
const WRITE_LOCK: i64 = 0x7369_676e_6574_0001;

/// The database.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    location: DbLocation,
}

impl Database {
    /// Opens the database at `location`, creating it (an SQLite file, mode
    /// 0600; a PostgreSQL database's tables) if `create`, and brings its
    /// schema up to date.
    pub async fn open(location: &DbLocation, create: bool) -> Result<Database> {
        sqlx::any::install_default_drivers();
        match location {
            DbLocation::File(path) => open_sqlite(location, path, create).await,
            DbLocation::Postgres(url) => open_postgres(location, url, create).await,
        }
    }

    /// Where the database is.
    pub fn location(&self) -> &DbLocation {
        &self.location
    }

    /// Whether the state lives in PostgreSQL (where several services may
    /// share it, each zone signed by the holder of its lease).
    pub fn is_postgres(&self) -> bool {
        matches!(self.location, DbLocation::Postgres(_))
    }

    /// A write transaction, taking the write lock at once: a transaction
    /// that reads first and writes later could otherwise act on what
    /// another process changed in between. SQLite: BEGIN IMMEDIATE, which
    /// waits for the other writer (up to the busy timeout). PostgreSQL:
    /// one advisory lock for every writer, held to the transaction's end,
    /// so that writers follow each other as they do on SQLite.
    async fn write(&self) -> Result<Transaction<'static, Any>> {
        if !self.is_postgres() {
            return Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?);
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK).execute(&mut *tx).await?;
        Ok(tx)
    }
}

/// Opens the SQLite file at `path` (see [`open::check`]): WAL, full sync,
/// foreign keys, a 30 s busy timeout, two connections.
async fn open_sqlite(location: &DbLocation, path: &std::path::Path, create: bool) -> Result<Database> {
    open::check(path, create).await?;
    let url = SqliteConnectOptions::new().filename(path).to_url_lossy();
    let connect = AnyConnectOptions::from_url(&url).map_err(|e| open::open_failure(path, e))?;
    let pool = AnyPoolOptions::new()
        .max_connections(2)
        .after_connect(|connection, _| {
            Box::pin(async move {
                for pragma in SQLITE_PRAGMAS {
                    connection.execute(pragma).await?;
                }
                Ok(())
            })
        })
        .after_release(|connection, _| Box::pin(fit_for_reuse(connection)))
        .connect_with(connect)
        .await
        .map_err(|e| open::open_failure(path, e))?;
    open::SQLITE_MIGRATOR.run(&pool).await?;
    open::make_all_private(path)?;
    Ok(Database { pool, location: location.clone() })
}

/// Opens the PostgreSQL database at `url` (see [`open::check_postgres`]).
async fn open_postgres(location: &DbLocation, url: &url::Url, create: bool) -> Result<Database> {
    let failure = |source| DbError::Open { db: location.clone(), source };
    let connect = AnyConnectOptions::from_url(url).map_err(failure)?;
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        // A server that is gone stalls a caller this long, not the default 30 s.
        .acquire_timeout(Duration::from_secs(10))
        .after_release(|connection, _| Box::pin(fit_for_reuse(connection)))
        .connect_with(connect)
        .await
        .map_err(failure)?;
    open::check_postgres(&pool, location, create).await?;
    open::POSTGRES_MIGRATOR.run(&pool).await?;
    Ok(Database { pool, location: location.clone() })
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
async fn fit_for_reuse(connection: &mut sqlx::AnyConnection) -> std::result::Result<bool, sqlx::Error> {
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
