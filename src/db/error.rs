//! Why the database could not do what was asked: one error type for all
//! of `db/`, each variant naming the file, zone, key or value concerned.

use std::path::PathBuf;

use super::DbLocation;
use super::Verdict;
use crate::policy::PolicyError;

/// Why the database could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// There is no database file, and none was to be made.
    #[error("database {}: no such database: run `signet init` first", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The database file could not be created, examined or read.
    #[error("database {}: cannot {action} it", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What was being done: "create", "examine", "open", "read".
        action: &'static str,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened (or PostgreSQL reached).
    #[error("database {db}")]
    Open {
        /// The database.
        db: DbLocation,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database or one of its side files could not be made private.
    #[error("database {}: cannot make {} private", path.display(), file.display())]
    MakePrivate {
        /// The database.
        path: PathBuf,
        /// The file whose mode could not be changed.
        file: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A lock file beside the database (the service's, a zone's) could
    /// not be opened or locked.
    #[error("{}: cannot {action} the lock file", path.display())]
    LockFile {
        /// The lock file.
        path: PathBuf,
        /// "open", "lock".
        action: &'static str,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file (or PostgreSQL database) is not signet's database:
    /// another program's, not SQLite at all, or empty where a database was
    /// expected.
    #[error(
        "{db}: not a signet database ({reason}); point --db (or $SIGNET_DB) at signet's database, or run `signet init` on a new one"
    )]
    NotSignet {
        /// The database.
        db: DbLocation,
        /// What it is instead.
        reason: NotSignet,
    },
    /// The schema holds a migration this binary does not have.
    #[error(
        "database {db}: schema version {found} is unknown to this signet, whose newest is {known}: a newer signet made or upgraded it (use that one), or the database is not signet's"
    )]
    UnknownSchema {
        /// The database.
        db: DbLocation,
        /// The newest migration version applied that the binary lacks.
        found: i64,
        /// The newest migration version the binary has.
        known: i64,
    },
    /// The database cannot be written.
    #[error(
        "database {}: read-only; signet writes to it on every command, and SQLite makes its -wal and -shm files beside it: make the file and its directory writable by the user running signet (or run signet as the file's owner)",
        path.display()
    )]
    ReadOnly {
        /// The file.
        path: PathBuf,
        /// Who cannot write it.
        #[source]
        why: ReadOnly,
    },
    /// A query failed. (This message and the next two quote their
    /// source: the service logs and records them with `to_string()`,
    /// which shows no chain.)
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
    /// This process's lease of the zone is gone (expired, or taken by
    /// another signer): what it was about to write is not written.
    #[error(
        "the zone's lease is no longer {holder}'s (fencing {fencing}){}: nothing written",
        now_held_by.as_ref().map(|(h, f)| format!("; {h} holds it (fencing {f})")).unwrap_or_default()
    )]
    LeaseLost {
        /// Who held it.
        holder: String,
        /// The fencing number of that holding.
        fencing: i64,
        /// Who holds it now, if anyone.
        now_held_by: Option<(String, i64)>,
    },
    /// Another signer holds the zone's lease: it signs the zone.
    #[error("{holder} holds the zone's lease (fencing {fencing}, {}s more): it signs the zone", (expires_in_ms + 999) / 1000)]
    LeaseHeld {
        /// Who.
        holder: String,
        /// The fencing number of its holding.
        fencing: i64,
        /// Until its lease expires, unless renewed.
        expires_in_ms: i64,
    },
    /// Another `signet serve` serves this database.
    #[error("signet serve (pid {pid}) already serves database {db} since {since}")]
    ServiceRunning {
        /// The database.
        db: DbLocation,
        /// The other process (0 if it has not written its pid yet).
        pid: i64,
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
    /// An operator's decision the zone's newest review does not allow.
    #[error("zone {zone}: serial {serial} cannot be {verdict} now: {}", not_decidable(zone, *serial, .newest))]
    NotDecidable {
        /// The zone.
        zone: String,
        /// The serial given.
        serial: u32,
        /// The decision asked for.
        verdict: Verdict,
        /// The newest review's serial and verdict, if the zone has one.
        newest: Option<(u32, Verdict)>,
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

/// What a file given as the database is, when it is not signet's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSignet {
    /// A directory, a device, a socket…
    #[error("not a regular file")]
    NotRegularFile,
    /// Nothing in it (and it was not to be made).
    #[error("the file is empty")]
    Empty,
    /// It does not start as every SQLite file does.
    #[error("not an SQLite database")]
    NotSqlite,
    /// SQLite (or PostgreSQL), but without a single table (and it was
    /// not to be made).
    #[error("it holds no tables")]
    NoTables,
    /// Another program's database: the first of its tables, ", …" after
    /// them if there are more.
    #[error("it holds another program's tables: {0}")]
    ForeignTables(String),
}

/// Why the database cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum ReadOnly {
    /// The file's permissions (or a read-only file system) keep this user
    /// from writing it.
    #[error("this user cannot write it")]
    User(#[source] std::io::Error),
    /// SQLite found it read-only, or could not make its side files (its
    /// own words, "unable to open database file", would mislead: the
    /// file opens, it is the writing that fails).
    #[error("SQLite cannot write it, or cannot make its -wal and -shm files in its directory")]
    Sqlite,
}

/// What every function of `db/` returns.
pub(super) type Result<T> = std::result::Result<T, DbError>;

/// Why a decision does not apply, and which one would.
fn not_decidable(zone: &str, serial: u32, newest: &Option<(u32, Verdict)>) -> String {
    match *newest {
        None => "the zone has no review".to_owned(),
        Some((newest, verdict)) if newest == serial => format!("its review is {verdict}"),
        Some((newest, Verdict::Pending)) => {
            format!("the review that waits is of serial {newest} (signet zone approve|reject {zone} {newest})")
        }
        Some((newest, verdict)) => format!("the newest review is of serial {newest} ({verdict})"),
    }
}
