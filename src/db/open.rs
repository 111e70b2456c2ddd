//! Opening the database safely: the file (or PostgreSQL schema) is
//! signet's (or empty, for `signet init`), of a schema version this
//! binary knows, and for a file writable and private, before anything is
//! written to it. SQLite would otherwise turn any file it can open,
//! another program's database included, into WAL mode and a signet
//! schema; the migrations would add signet's tables to another program's
//! PostgreSQL schema.

use std::path::{Path, PathBuf};

use sqlx::Connection as _;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use sqlx::AnyPool;

use super::error::{NotSignet, ReadOnly};
use super::{DbError, DbLocation, Result};

/// The SQLite migrations, embedded at build time.
pub(super) static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The PostgreSQL migrations, embedded at build time.
pub(super) static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The first 16 octets of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// How many foreign table names a refusal lists.
const NAMES_SHOWN: usize = 5;

/// Makes sure the file at `path` may be opened as signet's database: it
/// exists (or is made, mode 0600, if `create`), is a regular file this user
/// can write, is private, and holds signet's schema at a version this
/// binary knows (or nothing at all, if `create`).
pub(super) async fn check(path: &Path, create: bool) -> Result<()> {
    if !path.exists() {
        if !create {
            return Err(DbError::Missing { path: path.to_owned() });
        }
        create_private(path).map_err(|source| file_error(path, "create", source))?;
    }
    check_file(path)?;
    // Contents first: a file that is not signet's is left as it was, mode and all.
    check_contents(path, create).await?;
    make_all_private(path)
}

/// The database and its side files made private (see [`make_private`]).
pub(super) fn make_all_private(path: &Path) -> Result<()> {
    for file in with_side_files(path) {
        make_private(&file).map_err(|source| DbError::MakePrivate { path: path.to_owned(), file, source })?;
    }
    Ok(())
}

/// A regular file, writable by this user.
fn check_file(path: &Path) -> Result<()> {
    let metadata = std::fs::metadata(path).map_err(|source| file_error(path, "examine", source))?;
    if !metadata.is_file() {
        return Err(not_signet(path, NotSignet::NotRegularFile));
    }
    match std::fs::OpenOptions::new().read(true).write(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem) => {
            Err(DbError::ReadOnly { path: path.to_owned(), why: ReadOnly::User(e) })
        }
        Err(source) => Err(file_error(path, "open", source)),
    }
}

/// Empty (only for `create`), or SQLite with signet's migrations, each of
/// a version this binary knows. Read through a read-only connection, so
/// that a file that is not signet's is left exactly as it was.
async fn check_contents(path: &Path, create: bool) -> Result<()> {
    let head = read_head(path)?;
    if head.is_empty() {
        return if create { Ok(()) } else { Err(not_signet(path, NotSignet::Empty)) };
    }
    if head != SQLITE_MAGIC {
        return Err(not_signet(path, NotSignet::NotSqlite));
    }
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut connection = SqliteConnection::connect_with(&options).await.map_err(|e| open_failure(path, e))?;
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(&mut connection)
        .await
        .map_err(|e| open_failure(path, e))?;
    if !check_tables(&DbLocation::from(path), &tables, create)? {
        return Ok(());
    }
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut connection)
        .await
        .map_err(|e| open_failure(path, e))?;
    connection.close().await.map_err(|e| open_failure(path, e))?;
    check_versions(&DbLocation::from(path), &SQLITE_MIGRATOR, &applied)
}

/// Makes sure a PostgreSQL database may be used as signet's: its schema
/// (the connection's current one) holds signet's tables at a version
/// this binary knows, or nothing at all if `create`. The migrations run
/// after this, in the same schema.
pub(super) async fn check_postgres(pool: &AnyPool, db: &DbLocation, create: bool) -> Result<()> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
         WHERE table_schema = current_schema() ORDER BY table_name",
    )
    .fetch_all(pool)
    .await
    .map_err(|source| DbError::Open { db: db.clone(), source })?;
    let applied = match check_tables(db, &tables, create)? {
        false => return Ok(()),
        true => sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(|source| DbError::Open { db: db.clone(), source })?,
    };
    check_versions(db, &POSTGRES_MIGRATOR, &applied)
}

/// Whether `tables` are signet's (true: read the migrations applied), or
/// none, where `create` allows that (false); otherwise why not.
fn check_tables(db: &DbLocation, tables: &[String], create: bool) -> Result<bool> {
    if tables.is_empty() {
        return if create {
            Ok(false)
        } else {
            Err(DbError::NotSignet { db: db.clone(), reason: NotSignet::NoTables })
        };
    }
    if !tables.iter().any(|t| t == "_sqlx_migrations") {
        let shown: Vec<&str> = tables.iter().take(NAMES_SHOWN).map(String::as_str).collect();
        let more = if tables.len() > NAMES_SHOWN { ", …" } else { "" };
        let reason = NotSignet::ForeignTables(format!("{}{more}", shown.join(", ")));
        return Err(DbError::NotSignet { db: db.clone(), reason });
    }
    Ok(true)
}

/// Every migration applied is one this binary has.
fn check_versions(db: &DbLocation, migrator: &Migrator, applied: &[i64]) -> Result<()> {
    let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    match applied.iter().filter(|v| !known.contains(v)).max() {
        Some(&found) => {
            Err(DbError::UnknownSchema { db: db.clone(), found, known: known.iter().copied().max().unwrap_or(0) })
        }
        None => Ok(()),
    }
}

/// The first 16 octets of the file (fewer if it is shorter).
fn read_head(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|source| file_error(path, "open", source))?;
    let mut head = Vec::with_capacity(SQLITE_MAGIC.len());
    file.take(SQLITE_MAGIC.len() as u64).read_to_end(&mut head).map_err(|source| file_error(path, "read", source))?;
    Ok(head)
}

fn not_signet(path: &Path, reason: NotSignet) -> DbError {
    DbError::NotSignet { db: DbLocation::from(path), reason }
}

fn file_error(path: &Path, action: &'static str, source: std::io::Error) -> DbError {
    DbError::File { path: path.to_owned(), action, source }
}

/// What an SQLite error while opening means: a database that cannot be
/// written (SQLITE_READONLY, or SQLITE_CANTOPEN: the WAL and shared-memory
/// files cannot be made beside it), a file that is not a database
/// (SQLITE_NOTADB), or else SQLite's own words.
pub(super) fn open_failure(path: &Path, error: sqlx::Error) -> DbError {
    let code = match &error {
        sqlx::Error::Database(e) => e.code().and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff),
        _ => None,
    };
    match code {
        Some(8 | 14) => DbError::ReadOnly { path: path.to_owned(), why: ReadOnly::Sqlite },
        Some(26) => not_signet(path, NotSignet::NotSqlite),
        _ => DbError::Open { db: DbLocation::from(path), source: error },
    }
}

/// Creates the database file with mode 0600 from the start.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map(|_| ())
}

/// The database and its WAL and shared-memory files, as far as they exist.
fn with_side_files(path: &Path) -> Vec<PathBuf> {
    let side = |suffix: &str| PathBuf::from(format!("{}{suffix}", path.display()));
    [path.to_owned(), side("-wal"), side("-shm")].into_iter().filter(|f| f.exists()).collect()
}

/// Takes every permission but the owner's read and write away from a
/// database file: one that exists with mode 0644 becomes 0600 (one the
/// owner made read-only stays so, and is reported as read-only on open).
///
/// Made private rather than refused: the database holds no secret (PINs
/// are never stored) but key URIs, policies and the audit trail, which are
/// nobody else's business, and the usual way it becomes 0644 is its owner
/// copying or restoring it under umask 022; refusing would only have the
/// operator type the chmod that signet can do. It is said, once, as a
/// warning, since the file was readable by others until now. Only the
/// owner can change the mode: for anyone else this fails, and the
/// database is not opened.
fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    let private = mode & 0o600;
    if private != mode {
        tracing::warn!(file = %path.display(), "mode {mode:04o} let others at the database; made {private:04o}");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(private))?;
    }
    Ok(())
}
