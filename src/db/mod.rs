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

mod events;
mod journal;
mod memo;
mod open;
mod parent;
mod rows;
#[cfg(test)]
pub(crate) mod scratch;
mod transfers;

/// A zone with its policy's name, then `$tail` (a literal, so that the
/// query stays a static string).
macro_rules! zone_select {
    ($tail:literal) => {
        concat!(
            "SELECT z.id, z.name, z.policy_id, p.name AS policy_name, z.input_path, z.output_path, z.nsec3_salt, ",
            "z.last_serial, z.last_run_at, z.next_run_at, z.created_at, z.next_run_why, z.input_digest, z.input_serial, ",
            "z.sig_expires_at, z.reload_at, z.retry_at, z.full_verified_at, z.full_verify_asked_at, z.output_stamp ",
            "FROM zones z JOIN policies p ON p.id = z.policy_id ",
            $tail
        )
    };
}

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, Sqlite, Transaction};

pub use events::{Actor, Event, EventKind};
pub use journal::{JournalEntry, JournalSummary, JournalVersion};
pub use memo::{GateMemoCommit, GateMemoInfo};
pub use parent::{DsCheck, DsSubmission};
pub use rows::{PolicyRow, RunRow, StoredKey, ZoneRow, ZoneWatch};
pub use transfers::{
    NotifyResult, Remote, RemoteRole, TransferInDone, TransferInState, TransferOutDone, TransferOutState, TsigKeyRow,
};

use crate::policy::{Policy, PolicyError};
use crate::rollover::{Key, Observation};
use crate::zone::Name;

/// Why the database could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database file could not be created or opened.
    #[error("database {}: {reason}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is not signet's database: another program's, not SQLite
    /// at all, or empty where a database was expected.
    #[error(
        "{}: not a signet database ({reason}); point --db (or $SIGNET_DB) at signet's database, or run `signet init` on a new file",
        path.display()
    )]
    NotSignet {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// The schema holds a migration this binary does not have.
    #[error(
        "database {}: schema version {found} is unknown to this signet, whose newest is {known}: a newer signet made or upgraded it (use that one), or the file is not signet's",
        path.display()
    )]
    UnknownSchema {
        /// The file.
        path: PathBuf,
        /// The newest migration version applied that the binary lacks.
        found: i64,
        /// The newest migration version the binary has.
        known: i64,
    },
    /// The database cannot be written.
    #[error(
        "database {}: read-only ({reason}); signet writes to it on every command, and SQLite makes its -wal and -shm files beside it: make the file and its directory writable by the user running signet (or run signet as the file's owner)",
        path.display()
    )]
    ReadOnly {
        /// The file.
        path: PathBuf,
        /// Why it cannot be written.
        reason: String,
    },
    /// A query failed.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// No such policy, zone or key.
    #[error("no {what} {name:?} in the database")]
    NotFound {
        /// "policy", "zone", "key".
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// Still used by something else.
    #[error("{what} {name:?} is used by {by}")]
    InUse {
        /// "TSIG key".
        what: &'static str,
        /// Its name.
        name: String,
        /// Who uses it.
        by: String,
    },
    /// Already there.
    #[error("{what} {name:?} is already in the database")]
    Exists {
        /// "zone".
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// Another signet process is signing the zone.
    #[error("zone {zone} is busy: {program} (pid {pid}) has been signing it since {since}")]
    Busy {
        /// The zone.
        zone: String,
        /// The other process.
        pid: i64,
        /// Its program name, as the kernel has it.
        program: String,
        /// Since when (UTC).
        since: String,
    },
    /// Another `signet serve` serves this database.
    #[error("signet serve ({program}, pid {pid}) already serves database {} since {since}", path.display())]
    ServiceRunning {
        /// The database.
        path: PathBuf,
        /// The other process.
        pid: i64,
        /// Its program name.
        program: String,
        /// Since when (UTC).
        since: String,
    },
    /// Another zone already publishes to that output path.
    #[error("zone {zone} already publishes to {output}: two zones cannot share one output file")]
    OutputTaken {
        /// The zone that has it.
        zone: String,
        /// The path.
        output: String,
    },
    /// A stored policy that no longer reads or checks (imported by another
    /// version of signet?).
    #[error("stored policy {name}: {source}")]
    Policy {
        /// The policy's name.
        name: String,
        /// Why it does not read.
        source: PolicyError,
    },
    /// A stored value that the code cannot read (a newer signet's data?).
    #[error("database holds an unreadable {what}: {value:?}")]
    Corrupt {
        /// The column.
        what: &'static str,
        /// The value.
        value: String,
    },
}

type Result<T> = std::result::Result<T, DbError>;

/// How a signing run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunResult {
    /// The zone went through the gate and is in place.
    Published,
    /// The gate refused the zone: nothing published.
    Refused,
    /// The run failed before the gate's verdict: nothing published.
    #[default]
    Failed,
}

impl RunResult {
    /// `published`, `refused` or `failed`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Published => "published",
            RunResult::Refused => "refused",
            RunResult::Failed => "failed",
        }
    }
}

/// One zone as a managed run needs it, read at once: the zone, its policy
/// (parsed), its keys and the operator's requests not yet taken in.
#[derive(Debug, Clone)]
pub struct ZoneSnapshot {
    /// The zone's row.
    pub zone: ZoneRow,
    /// Its policy, parsed and checked.
    pub policy: Policy,
    /// Its keys not yet removed, oldest first.
    pub keys: Vec<StoredKey>,
    /// Observations not yet taken in, oldest first, with their ids.
    pub pending: Vec<(i64, Observation)>,
}

/// How a zone's name is stored: absolute, lowercase (the one spelling
/// every lookup uses).
pub fn zone_key(name: &Name) -> String {
    name.to_string().to_ascii_lowercase()
}

/// A signing run, as recorded.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    /// The time of the run.
    pub at: i64,
    /// The serial published (or attempted).
    pub serial: Option<u32>,
    /// How it ended.
    pub result: RunResult,
    /// RRSIGs made.
    pub rrsigs: u64,
    /// Records written.
    pub records: u64,
    /// Gate errors.
    pub errors: u64,
    /// Gate warnings.
    pub warnings: u64,
    /// The gate's findings (JSON) when refused.
    pub findings: Option<String>,
    /// A message: the error, or a summary.
    pub message: String,
    /// Wall seconds.
    pub seconds: f64,
    /// The input's SOA serial, if the input was read.
    pub input_serial: Option<u32>,
}

/// What a published run leaves for `signet status` and the service.
#[derive(Debug, Clone, Default)]
pub struct PublishedZone {
    /// SHA-256 of the input file the run read.
    pub input_digest: Vec<u8>,
    /// The earliest RRSIG expiration in the published zone, as the gate
    /// read it.
    pub signatures_expire: Option<i64>,
    /// Why the zone is next due (`next_run_at`).
    pub next_run_why: String,
    /// The output's stamp right after publication
    /// ([`crate::publish::Stamp`]).
    pub output_stamp: Option<String>,
}

/// Everything a published run changes, written in one transaction.
#[derive(Debug)]
pub struct RunCommit<'a> {
    /// The keys after the machine's step.
    pub keys: &'a [Key],
    /// What the step did (transitions, DS requests, keys removed), one
    /// audit event each, in order.
    pub events: &'a [Event],
    /// Keys done with: marked removed.
    pub removed: &'a [i64],
    /// Observations taken in.
    pub consumed: &'a [i64],
    /// When the machine wants to run again.
    pub next_run_at: Option<i64>,
    /// The run itself.
    pub run: RunRecord,
    /// The published zone, as status shows it.
    pub published: PublishedZone,
    /// The published version's difference from the one before, for the
    /// journal; None when the version before is unknown (the first
    /// publication, or a previous output that could not be read), which
    /// starts the zone's journal afresh (`db::journal`).
    pub diff: Option<JournalEntry>,
    /// The gate's memo for the next run, and whether this one was full.
    pub memo: GateMemoCommit<'a>,
}

impl RunCommit<'_> {
    /// The commit of `run` publishing with no key, event, journal or memo
    /// change: the base that tests and benchmarks fill in.
    pub fn publication(run: RunRecord) -> RunCommit<'static> {
        RunCommit {
            keys: &[],
            events: &[],
            removed: &[],
            consumed: &[],
            next_run_at: None,
            run,
            published: PublishedZone::default(),
            diff: None,
            memo: GateMemoCommit::default(),
        }
    }
}

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

    /// Imports a policy (its TOML text), replacing one of the same name.
    pub async fn import_policy(&self, name: &str, source: &str, now: i64) -> Result<i64> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO policies (name, source, imported_at) VALUES (?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET source = excluded.source, imported_at = excluded.imported_at
             RETURNING id",
        )
        .bind(name)
        .bind(source)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        let zones: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, name FROM zones WHERE policy_id = ?").bind(id).fetch_all(&mut *tx).await?;
        let imported =
            Event::note(now, Actor::Operator, EventKind::PolicyChange, None, format!("policy {name} imported"));
        insert_event(&mut tx, None, &imported).await?;
        for (zone_id, zone) in zones {
            let why = format!("policy {name} replaced: zone {zone} follows it from the next run");
            insert_event(&mut tx, Some(zone_id), &Event { why, ..imported.clone() }).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// A policy by name.
    pub async fn policy(&self, name: &str) -> Result<PolicyRow> {
        sqlx::query_as::<_, PolicyRow>("SELECT id, name, source, imported_at FROM policies WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DbError::NotFound { what: "policy", name: name.to_owned() })
    }

    /// A policy by id, parsed: the one place that reads stored policy text.
    pub async fn parsed_policy(&self, id: i64) -> Result<Policy> {
        let row = sqlx::query_as::<_, PolicyRow>("SELECT id, name, source, imported_at FROM policies WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| DbError::NotFound { what: "policy", name: format!("#{id}") })?;
        row.parse()
    }

    /// Everything a managed run needs of zone `name`.
    pub async fn snapshot(&self, name: &Name) -> Result<ZoneSnapshot> {
        let zone = self.zone(name).await?;
        let policy = self.parsed_policy(zone.policy_id).await?;
        let keys = self.keys(zone.id).await?;
        let pending = self.pending_observations(zone.id).await?;
        Ok(ZoneSnapshot { zone, policy, keys, pending })
    }

    /// Adds a zone under a policy.
    pub async fn add_zone(&self, zone: &NewZone<'_>, now: i64) -> Result<i64> {
        let policy = self.policy(zone.policy).await?;
        let mut tx = self.write().await?;
        let name = zone_key(zone.name);
        let exists = sqlx::query("SELECT 1 FROM zones WHERE name = ?").bind(&name).fetch_optional(&mut *tx).await?;
        if exists.is_some() {
            return Err(DbError::Exists { what: "zone", name });
        }
        let taken: Option<(String,)> =
            sqlx::query_as("SELECT name FROM zones WHERE output_path = ? AND removed_at IS NULL")
                .bind(zone.output)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((other,)) = taken {
            return Err(DbError::OutputTaken { zone: other, output: zone.output.to_owned() });
        }
        let id: i64 = sqlx::query(
            "INSERT INTO zones (name, policy_id, input_path, output_path, nsec3_salt, created_at)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&name)
        .bind(policy.id)
        .bind(zone.input)
        .bind(zone.output)
        .bind(zone.salt)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        for remote in zone.remotes {
            transfers::insert_remote(&mut tx, id, remote).await?;
        }
        let message = format!("zone {name} added under policy {}", policy.name);
        insert_event(&mut tx, Some(id), &Event::note(now, Actor::Operator, EventKind::ZoneAdded, None, message))
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Every zone, by name.
    pub async fn zones(&self) -> Result<Vec<ZoneRow>> {
        Ok(sqlx::query_as::<_, ZoneRow>(zone_select!("WHERE z.removed_at IS NULL ORDER BY z.name"))
            .fetch_all(&self.pool)
            .await?)
    }

    /// A zone by name (any case).
    pub async fn zone(&self, name: &Name) -> Result<ZoneRow> {
        let key = zone_key(name);
        sqlx::query_as::<_, ZoneRow>(zone_select!("WHERE z.name = ?"))
            .bind(&key)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(DbError::NotFound { what: "zone", name: key })
    }

    /// The zone's keys that are not yet removed, oldest first.
    pub async fn keys(&self, zone_id: i64) -> Result<Vec<StoredKey>> {
        let rows = sqlx::query_as::<_, rows::KeyRow>(
            "SELECT * FROM keys WHERE zone_id = ? AND removed_at IS NULL ORDER BY id",
        )
        .bind(zone_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(rows::KeyRow::into_stored).collect()
    }

    /// Records a key just made in its key store (all records hidden); returns its id.
    pub async fn insert_key(&self, zone_id: i64, uri: &str, dnskey: &[u8], key: &Key, now: i64) -> Result<i64> {
        let mut tx = self.write().await?;
        let id: i64 = rows::insert_key(&mut tx, zone_id, uri, dnskey, key).await?;
        if let Some(predecessor) = key.predecessor {
            sqlx::query("UPDATE keys SET successor_id = ? WHERE id = ?")
                .bind(id)
                .bind(predecessor)
                .execute(&mut *tx)
                .await?;
        }
        let replacing = key.predecessor.map(|p| format!(" to replace key {p}")).unwrap_or_default();
        let message = format!("{} key tag {} ({}) made{replacing}: {uri}", key.role, key.tag, key.algorithm);
        insert_event(
            &mut tx,
            Some(zone_id),
            &Event::note(now, Actor::Machine, EventKind::KeyCreated, Some(id), message),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Overwrites one key's states with those given, recording why (a
    /// dry-run's injected fault; managed runs write keys only through
    /// [`Database::commit_run`]).
    pub async fn inject_key_states(&self, zone_id: i64, key: &Key, event: &Event) -> Result<()> {
        let mut tx = self.write().await?;
        rows::update_key(&mut tx, key).await?;
        insert_event(&mut tx, Some(zone_id), event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Keys of the zone removed at or before `before` whose material is
    /// still in their stores: `(id, uri)`.
    pub async fn purgeable_keys(&self, zone_id: i64, before: i64) -> Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, uri FROM keys WHERE zone_id = ? AND removed_at IS NOT NULL AND removed_at <= ?
             AND purged_at IS NULL ORDER BY id",
        )
        .bind(zone_id)
        .bind(before)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records that a removed key's material is destroyed.
    pub async fn mark_purged(&self, zone_id: i64, key_id: i64, event: &Event) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE keys SET purged_at = ? WHERE id = ? AND removed_at IS NOT NULL")
            .bind(event.time)
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        insert_event(&mut tx, Some(zone_id), event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records an event that changes nothing else (a parent's DS that
    /// matches no key of the zone, say).
    pub async fn record_event(&self, zone_id: i64, event: &Event) -> Result<()> {
        let mut tx = self.write().await?;
        insert_event(&mut tx, Some(zone_id), event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records what the operator (or a parent check) reports, for the next
    /// run to take in, with its audit event.
    pub async fn observe(&self, zone_id: i64, observation: &Observation, event: &Event) -> Result<()> {
        let (kind, key, role) = rows::observation_columns(observation);
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO observations (zone_id, key_id, kind, role, at) VALUES (?, ?, ?, ?, ?)")
            .bind(zone_id)
            .bind(key)
            .bind(kind)
            .bind(role)
            .bind(event.time)
            .execute(&mut *tx)
            .await?;
        insert_event(&mut tx, Some(zone_id), event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Observations not yet taken in by a run, oldest first, with their ids.
    pub async fn pending_observations(&self, zone_id: i64) -> Result<Vec<(i64, Observation)>> {
        let rows = sqlx::query(
            "SELECT id, kind, key_id, role FROM observations WHERE zone_id = ? AND consumed_at IS NULL ORDER BY id",
        )
        .bind(zone_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::observation_from_row).collect()
    }

    /// Takes the zone's signing lock for this process, or says who holds
    /// it. A lock whose process is gone (killed), or whose pid now belongs
    /// to another process (another start time), is taken over.
    pub async fn lock_zone(&self, zone: &ZoneRow, pid: u32, now: i64) -> Result<()> {
        // IMMEDIATE: two processes must not both read "unlocked" and both
        // take the lock; the second waits for the first's write.
        let mut tx = self.write().await?;
        let held: Option<(Option<i64>, Option<i64>, Option<i64>)> =
            sqlx::query_as("SELECT lock_pid, lock_since, lock_started FROM zones WHERE id = ?")
                .bind(zone.id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((Some(other), since, started)) = held
            && other != i64::from(pid)
        {
            match lock_holder(other, started) {
                Holder::Alive(program) => {
                    let since = crate::time::format_time(since.unwrap_or(0));
                    return Err(DbError::Busy { zone: zone.name.clone(), pid: other, program, since });
                }
                Holder::Gone(why) => {
                    tracing::warn!(zone = %zone.name, pid = other, "stale signing lock taken over: {why}")
                }
            }
        }
        sqlx::query("UPDATE zones SET lock_pid = ?, lock_since = ?, lock_started = ? WHERE id = ?")
            .bind(i64::from(pid))
            .bind(now)
            .bind(process_start(i64::from(pid)))
            .bind(zone.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Releases the zone's signing lock if this process holds it.
    pub async fn unlock_zone(&self, zone_id: i64, pid: u32) -> Result<()> {
        sqlx::query(
            "UPDATE zones SET lock_pid = NULL, lock_since = NULL, lock_started = NULL WHERE id = ? AND lock_pid = ?",
        )
        .bind(zone_id)
        .bind(i64::from(pid))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Writes everything a published run changed, in one transaction: key
    /// states, removed keys, consumed observations, the run, an audit row
    /// per transition, the version's difference in the journal (pruned to
    /// its bounds), the zone's serial and next wake-up, and the gate's
    /// memo of the version (`db::memo`).
    pub async fn commit_run(&self, zone_id: i64, commit: &RunCommit<'_>) -> Result<()> {
        let at = commit.run.at;
        let mut tx = self.write().await?;
        for key in commit.keys {
            rows::update_key(&mut tx, key).await?;
        }
        for event in commit.events {
            insert_event(&mut tx, Some(zone_id), event).await?;
        }
        for &key in commit.removed {
            sqlx::query("UPDATE keys SET removed_at = ? WHERE id = ?").bind(at).bind(key).execute(&mut *tx).await?;
        }
        for &observation in commit.consumed {
            sqlx::query("UPDATE observations SET consumed_at = ? WHERE id = ?")
                .bind(at)
                .bind(observation)
                .execute(&mut *tx)
                .await?;
        }
        let run_id = insert_run(&mut tx, zone_id, &commit.run).await?;
        journal::record(&mut tx, zone_id, run_id, at, commit.diff.as_ref()).await?;
        let published = &commit.published;
        sqlx::query(
            "UPDATE zones SET last_serial = ?, last_run_at = ?, next_run_at = ?, next_run_why = ?, input_digest = ?,
             input_serial = ?, sig_expires_at = ?, output_stamp = ? WHERE id = ?",
        )
        .bind(commit.run.serial.map(i64::from))
        .bind(at)
        .bind(commit.next_run_at)
        .bind(&published.next_run_why)
        .bind(&published.input_digest)
        .bind(commit.run.input_serial.map(i64::from))
        .bind(published.signatures_expire)
        .bind(&published.output_stamp)
        .bind(zone_id)
        .execute(&mut *tx)
        .await?;
        memo::commit(&mut tx, zone_id, at, commit.run.serial, &commit.memo).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a run that published nothing (refused by the gate, or
    /// failed); key states stay as they were.
    pub async fn record_unpublished_run(&self, zone_id: i64, run: &RunRecord) -> Result<()> {
        let mut tx = self.write().await?;
        insert_run(&mut tx, zone_id, run).await?;
        sqlx::query("UPDATE zones SET last_run_at = MAX(COALESCE(last_run_at, 0), ?) WHERE id = ?")
            .bind(run.at)
            .bind(zone_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest events of a zone, oldest first.
    pub async fn events(&self, zone_id: i64, limit: i64) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, event, key_id, record, from_state, to_state, message FROM audit
             WHERE zone_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(zone_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().rev().map(|row| rows::event_from_row(row).map(|(_, e)| e)).collect()
    }

    /// The zone's events after audit row `after` (0: all), oldest first,
    /// each with its row id.
    pub async fn events_after(&self, zone_id: i64, after: i64) -> Result<Vec<(i64, Event)>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, event, key_id, record, from_state, to_state, message FROM audit
             WHERE zone_id = ? AND id > ? ORDER BY id",
        )
        .bind(zone_id)
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::event_from_row).collect()
    }

    /// The last run of the zone that did not publish, if any.
    pub async fn last_failure(&self, zone_id: i64) -> Result<Option<RunRow>> {
        Ok(sqlx::query_as::<_, RunRow>(
            "SELECT at, serial, result, rrsigs, errors, message, seconds, input_serial FROM runs
             WHERE zone_id = ? AND result != 'published' ORDER BY id DESC LIMIT 1",
        )
        .bind(zone_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// When the zone was last published (not merely run).
    pub async fn last_publication(&self, zone_id: i64) -> Result<Option<i64>> {
        Ok(sqlx::query("SELECT max(at) FROM runs WHERE zone_id = ? AND result = 'published'")
            .bind(zone_id)
            .fetch_one(&self.pool)
            .await?
            .get(0))
    }

    /// How many runs of the zone failed or were refused since its last
    /// publication.
    pub async fn consecutive_failures(&self, zone_id: i64) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT count(*) FROM runs WHERE zone_id = ?1 AND id > COALESCE(
                 (SELECT max(id) FROM runs WHERE zone_id = ?1 AND result = 'published'), 0)",
        )
        .bind(zone_id)
        .fetch_one(&self.pool)
        .await?
        .get(0))
    }

    /// Takes a zone out of management, keeping its history: its row is
    /// renamed `NAME#removed-ID`, so that the name can be added again.
    /// Refused while a process signs it. Returns its keys' URIs (their
    /// material stays in the stores).
    pub async fn remove_zone(&self, name: &Name, now: i64) -> Result<Vec<String>> {
        let zone = self.zone(name).await?;
        let pid = std::process::id();
        self.lock_zone(&zone, pid, now).await?;
        let uris: Vec<String> = self.keys(zone.id).await?.into_iter().map(|k| k.uri).collect();
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE zones SET removed_at = ?1, name = name || '#removed-' || id, next_run_at = NULL,
                 lock_pid = NULL, lock_since = NULL, lock_started = NULL WHERE id = ?2",
        )
        .bind(now)
        .bind(zone.id)
        .execute(&mut *tx)
        .await?;
        // Nothing will serve the zone's differences again; they may be large.
        sqlx::query("DELETE FROM journal WHERE zone_id = ?").bind(zone.id).execute(&mut *tx).await?;
        transfers::forget_zone(&mut tx, zone.id).await?;
        let why = format!("zone {} removed from management; {} key(s) left in their stores", zone.name, uris.len());
        insert_event(&mut tx, Some(zone.id), &Event::note(now, Actor::Operator, EventKind::ZoneRemoved, None, why))
            .await?;
        tx.commit().await?;
        Ok(uris)
    }

    /// Asks the service to read the zone's input again (`signet zone
    /// reload`).
    pub async fn request_reload(&self, name: &Name, now: i64) -> Result<()> {
        let zone = self.zone(name).await?;
        sqlx::query("UPDATE zones SET reload_at = ? WHERE id = ?").bind(now).bind(zone.id).execute(&self.pool).await?;
        Ok(())
    }

    /// Records when the service tries a failing zone again (None: the
    /// zone is not failing).
    pub async fn set_retry(&self, zone_id: i64, at: Option<i64>) -> Result<()> {
        sqlx::query("UPDATE zones SET retry_at = ? WHERE id = ?").bind(at).bind(zone_id).execute(&self.pool).await?;
        Ok(())
    }

    /// What the service watches of every zone, read once per poll: a
    /// change in a row is an operator command landing.
    pub async fn zone_watch(&self) -> Result<Vec<ZoneWatch>> {
        Ok(sqlx::query_as::<_, ZoneWatch>(
            "SELECT z.id, z.name, z.input_path, z.policy_id, p.imported_at AS policy_imported_at, z.reload_at,
                    z.next_run_at, z.last_run_at,
                    (SELECT max(o.id) FROM observations o WHERE o.zone_id = z.id AND o.consumed_at IS NULL)
                        AS pending_request
             FROM zones z JOIN policies p ON p.id = z.policy_id WHERE z.removed_at IS NULL ORDER BY z.name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Makes this process the database's one service, or says which
    /// process is. The authority is an advisory lock (`flock`) on the
    /// service lock file beside the database ([`service_lock_path`]),
    /// held as long as the returned [`ServiceLock`] lives: the kernel lets
    /// go of it when the process ends, however it ends, before its parent
    /// reaps it. The `service` row says who holds it (pid, start time,
    /// since when) for `signet status` and the refusal; a row left by a
    /// process that no longer holds the lock is replaced.
    pub async fn hold_service(&self, pid: u32, now: i64) -> Result<ServiceLock> {
        let lock_path = service_lock_path(&self.path);
        let file = open_lock_file(&lock_path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(self.service_running(&file).await),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(DbError::Open {
                    path: lock_path,
                    reason: format!("cannot lock the service lock file: {e}"),
                });
            }
        }
        let lock = ServiceLock { file, pid };
        lock.write_pid();
        let mut tx = self.write().await?;
        let held: Option<(i64, Option<i64>, i64)> =
            sqlx::query_as("SELECT pid, started, since FROM service WHERE id = 1").fetch_optional(&mut *tx).await?;
        if let Some((other, started, _)) = held
            && other != i64::from(pid)
        {
            let why = match lock_holder(other, started) {
                Holder::Alive(program) => format!("pid {other} ({program}) runs but no longer holds the lock"),
                Holder::Gone(why) => why,
            };
            tracing::warn!(pid = other, "stale service record taken over: {why}");
        }
        sqlx::query("INSERT OR REPLACE INTO service (id, pid, started, since) VALUES (1, ?, ?, ?)")
            .bind(i64::from(pid))
            .bind(process_start(i64::from(pid)))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(lock)
    }

    /// The refusal when another process holds the service lock: who, as
    /// the `service` row says (or, before that process wrote it, the pid
    /// it wrote in the lock file).
    async fn service_running(&self, file: &std::fs::File) -> DbError {
        let row: Option<(i64, i64)> = sqlx::query_as("SELECT pid, since FROM service WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten();
        let in_file = read_lock_pid(file);
        let (pid, since) = match (row, in_file) {
            (Some((pid, _)), Some(other)) if pid != other => (other, None),
            (Some((pid, since)), _) => (pid, Some(since)),
            (None, Some(other)) => (other, None),
            (None, None) => (0, None),
        };
        let program = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map_or_else(|_| "?".to_owned(), |c| c.trim().to_owned());
        let since = since.map_or_else(|| "just now".to_owned(), crate::time::format_time);
        DbError::ServiceRunning { path: self.path.clone(), pid, program, since }
    }

    /// Lets go of the service lock: the row, then the file lock.
    pub async fn release_service(&self, lock: ServiceLock) -> Result<()> {
        let deleted = sqlx::query("DELETE FROM service WHERE id = 1 AND pid = ?")
            .bind(i64::from(lock.pid))
            .execute(&self.pool)
            .await;
        drop(lock);
        deleted?;
        Ok(())
    }

    /// The running service, if any: its pid and since when it serves.
    pub async fn service(&self) -> Result<Option<(i64, i64)>> {
        let held: Option<(i64, Option<i64>, i64)> =
            sqlx::query_as("SELECT pid, started, since FROM service WHERE id = 1").fetch_optional(&self.pool).await?;
        Ok(held.and_then(|(pid, started, since)| match lock_holder(pid, started) {
            Holder::Alive(_) => Some((pid, since)),
            Holder::Gone(_) => None,
        }))
    }

    /// The newest runs of a zone, newest first.
    pub async fn runs(&self, zone_id: i64, limit: i64) -> Result<Vec<RunRow>> {
        Ok(sqlx::query_as::<_, RunRow>(
            "SELECT at, serial, result, rrsigs, errors, message, seconds, input_serial FROM runs WHERE zone_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(zone_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// A zone to add.
#[derive(Debug)]
pub struct NewZone<'a> {
    /// The apex.
    pub name: &'a Name,
    /// The policy's name.
    pub policy: &'a str,
    /// The unsigned zone file.
    pub input: &'a str,
    /// The signed zone file.
    pub output: &'a str,
    /// The NSEC3 salt to use.
    pub salt: &'a [u8],
    /// The primaries its input is transferred from, and its secondaries.
    pub remotes: &'a [Remote],
}

async fn insert_event(tx: &mut Transaction<'_, Sqlite>, zone: Option<i64>, event: &Event) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit (zone_id, key_id, at, actor, event, record, from_state, to_state, message)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(zone)
    .bind(event.key)
    .bind(event.time)
    .bind(event.actor.as_str())
    .bind(event.kind.as_str())
    .bind(event.record.map(|r| r.as_str()))
    .bind(event.from.map(|s| s.as_str()))
    .bind(event.to.map(|s| s.as_str()))
    .bind(&event.why)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts a run row and its audit event; returns the run's id.
async fn insert_run(tx: &mut Transaction<'_, Sqlite>, zone_id: i64, run: &RunRecord) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO runs (zone_id, at, serial, result, rrsigs, records, errors, warnings, findings, message, seconds,
         input_serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(zone_id)
    .bind(run.at)
    .bind(run.serial.map(i64::from))
    .bind(run.result.as_str())
    .bind(run.rrsigs as i64)
    .bind(run.records as i64)
    .bind(run.errors as i64)
    .bind(run.warnings as i64)
    .bind(&run.findings)
    .bind(&run.message)
    .bind(run.seconds)
    .bind(run.input_serial.map(i64::from))
    .fetch_one(&mut **tx)
    .await?;
    let message = format!(
        "run {}: serial {}, {}",
        run.result.as_str(),
        run.serial.map_or("-".to_owned(), |s| s.to_string()),
        run.message
    );
    insert_event(tx, Some(zone_id), &Event::note(run.at, Actor::Machine, EventKind::Run, None, message)).await?;
    Ok(id)
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

/// The service lock file of the database at `db`: `DB.serve-lock`
/// beside it. Its contents (the pid of the last holder) are only a hint;
/// the lock is the `flock` on it.
pub fn service_lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".serve-lock");
    PathBuf::from(name)
}

/// The database's service lock, held while this lives (see
/// [`Database::hold_service`]).
#[derive(Debug)]
pub struct ServiceLock {
    file: std::fs::File,
    pid: u32,
}

impl ServiceLock {
    /// Leaves this process's pid in the file, for a refusal that comes
    /// before the row is written. Only a hint: failing to write it is no
    /// reason not to serve.
    fn write_pid(&self) {
        use std::io::{Seek as _, Write as _};
        let mut file = &self.file;
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(std::io::SeekFrom::Start(0)))
            .and_then(|_| file.write_all(format!("{}\n", self.pid).as_bytes()));
        if let Err(e) = written {
            tracing::debug!("cannot write the pid into the service lock file: {e}");
        }
    }
}

/// Opens (or makes, mode 0600) a lock file, without truncating it.
fn open_lock_file(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| DbError::Open { path: path.to_owned(), reason: format!("cannot open the service lock file: {e}") })
}

/// The pid written in a lock file, if it reads as one.
fn read_lock_pid(file: &std::fs::File) -> Option<i64> {
    use std::io::Read as _;
    let mut text = String::new();
    let mut file = file;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// What holds a signing lock recorded for `pid` (started at `started`).
enum Holder {
    /// That process still runs: its program name.
    Alive(String),
    /// It is gone: why the lock is stale.
    Gone(String),
}

fn lock_holder(pid: i64, started: Option<i64>) -> Holder {
    let Some(process) = process_stat(pid) else {
        return Holder::Gone("the process is gone".to_owned());
    };
    // A zombie (killed, not yet reaped by its parent) or a dying process
    // runs no code any more: dead is dead, whatever its parent does.
    if let 'Z' | 'X' | 'x' = process.state {
        return Holder::Gone(format!("pid {pid} has exited (state {}, not yet reaped by its parent)", process.state));
    }
    let now_started = process.started;
    let program =
        std::fs::read_to_string(format!("/proc/{pid}/comm")).map_or_else(|_| "?".to_owned(), |c| c.trim().to_owned());
    match started {
        Some(started) if started != now_started => {
            Holder::Gone(format!("pid {pid} now belongs to another process ({program}, started later)"))
        }
        // A lock from before start times were recorded: trust the name.
        None if program != "signet" => Holder::Gone(format!("pid {pid} now belongs to {program}")),
        _ => Holder::Alive(program),
    }
}

/// A process's start time (clock ticks since boot, field 22 of
/// /proc/PID/stat): with the pid, it names one process for good.
fn process_start(pid: i64) -> Option<i64> {
    process_stat(pid).map(|p| p.started)
}

/// What /proc/PID/stat says of a process that signet's locks care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcessStat {
    /// Field 3: R, S, D, … ; Z a zombie, X (x) dead.
    state: char,
    /// Field 22: the start time, in clock ticks since boot.
    started: i64,
}

fn process_stat(pid: i64) -> Option<ProcessStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(stat: &str) -> Option<ProcessStat> {
    // The command name (field 2) is in parentheses and may hold spaces
    // and parentheses: the fields go on after the last ')'.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let started = fields.nth(18)?.parse().ok()?;
    Some(ProcessStat { state, started })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_an_odd_command_name() {
        let line = "4242 (sig (net) x) Z 1 4242 4242 0 -1 4194560 10 0 0 0 1 2 0 0 20 0 1 0 987654 0 0";
        assert_eq!(parse_stat(line), Some(ProcessStat { state: 'Z', started: 987_654 }));
        assert_eq!(parse_stat("4242 (signet"), None);
    }

    #[test]
    fn this_process_is_alive_and_its_own_start_is_read() {
        let pid = i64::from(std::process::id());
        let stat = process_stat(pid).expect("our own /proc/PID/stat");
        assert!(!matches!(stat.state, 'Z' | 'X' | 'x'), "{stat:?}");
        assert!(matches!(lock_holder(pid, Some(stat.started)), Holder::Alive(_)));
        assert!(matches!(lock_holder(pid, Some(stat.started + 1)), Holder::Gone(_)));
    }
}
