//! Who may write: one signer per zone, one `signet serve` per database.
//!
//! The service's authority is an advisory lock (`flock`) on a file beside
//! the database ([`service_lock_path`]): the kernel lets go of it when the
//! process ends, however it ends, before its parent reaps it, so "a
//! service runs" is "someone holds the lock", on any Unix, without reading
//! `/proc` (Linux-only, and a zombie looks alive there) and without a pid
//! that may have been reused. std's `File::try_lock` is that `flock(2)`;
//! the `service` row only says who holds it (pid, since when) for `signet
//! status` and the refusal. A PostgreSQL state may be shared by several
//! services: there a zone's lock is its lease (`leases`), and a service
//! takes no lock of the database.
//!
//! A zone's signing lock is still the pid in its row, judged alive by
//! `/proc/PID/stat` (state and start time): `tests/overwrite.rs` records
//! such a row for a live process that is not signet and expects it to be
//! respected and named, which a lock file would not do.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use super::{Database, DbError, Fence, Result, ZoneRow};
use crate::procstat::ProcStat;

/// How often, and how far apart, taking the service lock is tried before
/// giving up: `signet status` holds it for an instant when it checks
/// whether a service runs ([`Database::service`]), which must not keep a
/// service from starting.
const SERVICE_LOCK_TRIES: u32 = 5;
const SERVICE_LOCK_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// A service sharing a PostgreSQL state counts as running while its
/// heartbeat (every third of its lease) is this recent.
const LIVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a run from the command line holds a PostgreSQL zone's lease
/// (it does not renew it): longer than any run takes, and the time a
/// killed run keeps the zone from the service before its lease expires.
pub const RUN_LEASE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// This process as a signer: the host's name and the pid, unique among
/// the processes of one database.
pub fn signer_name(pid: u32) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    format!("{}/{pid}", if host.is_empty() { "localhost" } else { host })
}

impl Database {
    /// Takes the zone's signing lock for this process, or says who holds
    /// it. In an SQLite file, the pid in the zone's row: a lock whose
    /// process is gone (killed), or whose pid now belongs to another
    /// process (another start time), is taken over. In PostgreSQL, whose
    /// signers may be on other machines (where a pid says nothing), the
    /// zone's lease, for [`RUN_LEASE`]: the fence returned is what the
    /// run's writes carry.
    pub async fn lock_zone(&self, zone: &ZoneRow, pid: u32, now: i64) -> Result<Option<Fence>> {
        if self.is_postgres() {
            let holder = format!("signet sign {}", signer_name(pid));
            return Ok(Some(self.take_lease(zone.id, &holder, RUN_LEASE.as_millis() as i64, now).await?));
        }
        // IMMEDIATE: two processes must not both read "unlocked" and both
        // take the lock; the second waits for the first's write.
        let mut tx = self.write().await?;
        let held: Option<(Option<i64>, Option<i64>, Option<i64>)> =
            sqlx::query_as("SELECT lock_pid, lock_since, lock_started FROM zones WHERE id = $1")
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
        sqlx::query("UPDATE zones SET lock_pid = $1, lock_since = $2, lock_started = $3 WHERE id = $4")
            .bind(i64::from(pid))
            .bind(now)
            .bind(process_start(i64::from(pid)))
            .bind(zone.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(None)
    }

    /// Releases the zone's signing lock if this process holds it: the
    /// lease `fence` (PostgreSQL), or the pid in the row.
    pub async fn unlock_zone(&self, zone_id: i64, pid: u32, fence: Option<&Fence>) -> Result<()> {
        if let Some(fence) = fence {
            return self.release_lease(fence).await;
        }
        sqlx::query(
            "UPDATE zones SET lock_pid = NULL, lock_since = NULL, lock_started = NULL WHERE id = $1 AND lock_pid = $2",
        )
        .bind(zone_id)
        .bind(i64::from(pid))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Makes this process the database's one service, or says which
    /// process is: the lock on the service lock file is held as long as
    /// the returned [`ServiceLock`] lives. A `service` row left by a
    /// process that no longer holds the lock is replaced. A PostgreSQL
    /// state may be shared by several services (each zone signed by the
    /// holder of its lease): nothing is locked, and the services say they
    /// live in the `signers` table.
    pub async fn hold_service(&self, pid: u32, now: i64) -> Result<ServiceLock> {
        let Some(path) = self.location.file() else {
            return Ok(ServiceLock { file: None, pid });
        };
        let lock_path = service_lock_path(path);
        let file = open_lock_file(&lock_path, true)?;
        if !try_lock_a_few_times(&file, &lock_path).await? {
            return Err(self.service_running(&file).await);
        }
        let lock = ServiceLock { file: Some(file), pid };
        lock.write_pid();
        let mut tx = self.write().await?;
        let held: Option<(i64,)> =
            sqlx::query_as("SELECT pid FROM service WHERE id = 1").fetch_optional(&mut *tx).await?;
        if let Some((other,)) = held
            && other != i64::from(pid)
        {
            tracing::warn!(pid = other, "stale service record taken over: pid {other} no longer holds the lock");
        }
        // `started` (a /proc start time) is no longer needed: the lock
        // names the holder. The column stays, empty.
        sqlx::query(
            "INSERT INTO service (id, pid, started, since) VALUES (1, $1, NULL, $2)
             ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, started = NULL, since = excluded.since",
        )
        .bind(i64::from(pid))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(lock)
    }

    /// The refusal when another process holds the service lock: who, as
    /// the `service` row says (or, before that process wrote it, the pid
    /// it wrote in the lock file).
    async fn service_running(&self, file: &File) -> DbError {
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
        let since = since.map_or_else(|| "just now".to_owned(), crate::time::format_time);
        DbError::ServiceRunning { db: self.location.clone(), pid, since }
    }

    /// Lets go of the service lock: the row, then the lock.
    pub async fn release_service(&self, lock: ServiceLock) -> Result<()> {
        let deleted = sqlx::query("DELETE FROM service WHERE id = 1 AND pid = $1")
            .bind(i64::from(lock.pid))
            .execute(&self.pool)
            .await;
        drop(lock);
        deleted?;
        Ok(())
    }

    /// The running service, if any: its pid and since when it serves. A
    /// service runs while someone holds the service lock; the row says
    /// who. With a shared state (PostgreSQL), the oldest live service.
    pub async fn service(&self) -> Result<Option<(i64, i64)>> {
        let held = match self.location.file() {
            Some(path) => service_lock_held(&service_lock_path(path))?,
            None => {
                let live = self.live_signers(LIVE_WITHIN.as_millis() as i64).await?;
                return Ok(live.into_iter().next().map(|(_, pid, started)| (pid, started)));
            }
        };
        if !held {
            return Ok(None);
        }
        Ok(sqlx::query_as("SELECT pid, since FROM service WHERE id = 1").fetch_optional(&self.pool).await?)
    }
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
/// [`Database::hold_service`]): the lock file, `flock`ed (none for a
/// shared PostgreSQL state).
#[derive(Debug)]
pub struct ServiceLock {
    file: Option<File>,
    pid: u32,
}

impl ServiceLock {
    /// Leaves this process's pid in the file, for a refusal that comes
    /// before the row is written. Only a hint: failing to write it is no
    /// reason not to serve.
    fn write_pid(&self) {
        use std::io::{Seek as _, Write as _};
        let Some(mut file) = self.file.as_ref() else { return };
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(std::io::SeekFrom::Start(0)))
            .and_then(|_| file.write_all(format!("{}\n", self.pid).as_bytes()));
        if let Err(e) = written {
            tracing::debug!("cannot write the pid into the service lock file: {e}");
        }
    }
}

/// Takes the exclusive lock on `file`, trying again a few times while it
/// is held (see [`SERVICE_LOCK_TRIES`]); false if it stays held.
async fn try_lock_a_few_times(file: &File, path: &Path) -> Result<bool> {
    for attempt in 1..=SERVICE_LOCK_TRIES {
        match file.try_lock() {
            Ok(()) => return Ok(true),
            Err(TryLockError::WouldBlock) if attempt < SERVICE_LOCK_TRIES => {
                tokio::time::sleep(SERVICE_LOCK_PAUSE).await;
            }
            Err(TryLockError::WouldBlock) => return Ok(false),
            Err(TryLockError::Error(source)) => {
                return Err(DbError::LockFile { path: path.to_owned(), action: "lock", source });
            }
        }
    }
    Ok(false)
}

/// Whether a process holds the lock on `path`: a shared lock taken and
/// let go at once tells (held exclusively: it cannot be had). No file:
/// no service ever ran.
fn service_lock_held(path: &Path) -> Result<bool> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(DbError::LockFile { path: path.to_owned(), action: "open", source }),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(source)) => Err(DbError::LockFile { path: path.to_owned(), action: "lock", source }),
    }
}

/// Opens (or, if `create`, makes with mode 0600) a lock file, without
/// truncating it.
fn open_lock_file(path: &Path, create: bool) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| DbError::LockFile { path: path.to_owned(), action: "open", source })
}

/// The pid written in a lock file, if it reads as one.
fn read_lock_pid(file: &File) -> Option<i64> {
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
    let Some(process) = ProcStat::read(&pid.to_string()) else {
        return Holder::Gone("the process is gone".to_owned());
    };
    // A zombie (killed, not yet reaped by its parent) or a dying process
    // runs no code any more: dead is dead, whatever its parent does.
    if process.has_exited() {
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

/// A process's start time (clock ticks since boot): with the pid, it
/// names one process for good.
fn process_start(pid: i64) -> Option<i64> {
    ProcStat::read(&pid.to_string()).map(|p| p.started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_its_own_start_is_read() {
        let pid = i64::from(std::process::id());
        let stat = ProcStat::read(&pid.to_string()).expect("our own /proc/PID/stat");
        assert!(!stat.has_exited(), "{stat:?}");
        assert!(matches!(lock_holder(pid, Some(stat.started)), Holder::Alive(_)));
        assert!(matches!(lock_holder(pid, Some(stat.started + 1)), Holder::Gone(_)));
    }
}
