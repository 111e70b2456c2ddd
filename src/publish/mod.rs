//! The last step of the gate: moving a verified zone into place.
//!
//! A zone is written into a [`Candidate`], a temporary file beside the
//! target; [`Candidate::seal`] flushes and fsyncs it; the verifier reads
//! the sealed file back ([`crate::verify::verify_file`]) and, only if it
//! finds no error, hands out a [`VerifiedZone`]; [`install`] takes that
//! proof and renames the file over the target (then fsyncs the directory),
//! keeping the version it replaced as a hard link beside it until the
//! caller settles the publication ([`Installed`]: kept once recorded, put
//! back if the record failed). On any failure the temporary file is
//! removed and the previous output stays as it was.
//!
//! [`install`] is the only way into place and it consumes a
//! [`VerifiedZone`], which only the verifier makes: every byte published
//! is a byte the verifier read, and skipping the gate does not compile.
//! This module knows nothing of how the zone was made.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::verify::VerifiedZone;

/// Why a zone could not be put in place.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A file operation failed.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The proof is for another file than the candidate: a caller bug,
    /// refused rather than installing bytes nobody verified.
    #[error("the verified file {} is not the candidate {}", verified.display(), candidate.display())]
    NotThisCandidate {
        /// What the verifier read.
        verified: PathBuf,
        /// What would have been installed.
        candidate: PathBuf,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |source| PublishError::Io { path: path.to_owned(), source }
}

/// A temporary file in the target's directory, removed unless installed.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
    installed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.installed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A zone being written beside its target.
#[derive(Debug)]
pub struct Candidate {
    temp: TempFile,
    target: PathBuf,
    writer: BufWriter<File>,
}

impl Candidate {
    /// Opens a new temporary file beside `target` (removing those that
    /// killed runs left behind). A `target` that is a symlink is written
    /// through: the file it points to is replaced, the link stays. The new
    /// file gets the mode and group of the file it replaces (0644 for a
    /// new one), so that the name servers reading it still can.
    pub fn create(target: &Path) -> Result<Candidate, PublishError> {
        let target = through_symlinks(target)?;
        remove_stale_candidates(&target);
        let temp = TempFile { path: temp_path(&target), installed: false };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp.path)
            .map_err(io_error(&temp.path))?;
        keep_mode_and_group(&file, &target).map_err(io_error(&temp.path))?;
        Ok(Candidate { temp, target, writer: BufWriter::with_capacity(1 << 20, file) })
    }

    /// Where the zone is written.
    pub fn writer(&mut self) -> &mut dyn Write {
        &mut self.writer
    }

    /// Flushes and fsyncs the file: what the verifier reads next is what
    /// [`install`] would rename.
    pub fn seal(self) -> Result<SealedCandidate, PublishError> {
        let Candidate { temp, target, writer } = self;
        let file =
            writer.into_inner().map_err(|e| PublishError::Io { path: temp.path.clone(), source: e.into_error() })?;
        file.sync_all().map_err(io_error(&temp.path))?;
        Ok(SealedCandidate { temp, target })
    }
}

/// A written, durable candidate, waiting for the verifier's verdict.
#[derive(Debug)]
pub struct SealedCandidate {
    temp: TempFile,
    target: PathBuf,
}

impl SealedCandidate {
    /// The file to verify.
    pub fn path(&self) -> &Path {
        &self.temp.path
    }
}

/// Moves the verified candidate over its target atomically and makes the
/// rename durable. `verified` must be the verifier's proof for exactly
/// this candidate's file.
///
/// The version replaced is kept, as a hard link beside the target, until
/// the caller settles the publication ([`Installed`]): a managed run
/// records it in the database and then keeps it, or, when the record
/// fails, puts the version before back.
pub fn install(candidate: SealedCandidate, verified: VerifiedZone) -> Result<Installed, PublishError> {
    let SealedCandidate { mut temp, target } = candidate;
    if verified.path() != temp.path {
        return Err(PublishError::NotThisCandidate {
            verified: verified.path().to_owned(),
            candidate: temp.path.clone(),
        });
    }
    let before = keep_before(&target);
    let mut installed = Installed { target, before, settled: false };
    fs::rename(&temp.path, &installed.target).map_err(io_error(&installed.target))?;
    temp.installed = true;
    let dir = target_dir(&installed.target);
    if let Err(e) = File::open(&dir).and_then(|d| d.sync_all()) {
        // Not in place for sure: the version before goes back.
        let _ = installed.put_back();
        return Err(PublishError::Io { path: dir, source: e });
    }
    tracing::debug!(target = %installed.target.display(), "candidate installed at the output");
    Ok(installed)
}

/// The version an installation replaced.
#[derive(Debug)]
enum Before {
    /// There was no file at the target.
    Nothing,
    /// Kept as a hard link at this path.
    Kept(PathBuf),
    /// There was one, but it could not be kept (no hard links here).
    Lost(String),
}

/// Keeps the file at `target`, if any, as a hard link beside it.
fn keep_before(target: &Path) -> Before {
    if fs::symlink_metadata(target).is_err() {
        return Before::Nothing;
    }
    let link = before_path(target);
    let _ = fs::remove_file(&link);
    match fs::hard_link(target, &link) {
        Ok(()) => Before::Kept(link),
        Err(e) => {
            tracing::warn!(target = %target.display(), "cannot keep the version before beside it ({e}): it cannot be put back if the publication is not recorded");
            Before::Lost(e.to_string())
        }
    }
}

/// A zone just put in place whose publication is not settled yet: the
/// version it replaced is still kept beside it. [`Installed::keep`] once
/// the publication is recorded, [`Installed::undo`] if that failed.
/// Dropped unsettled, it is kept (as if the process had been killed
/// between the rename and the record, which the next run copes with).
#[derive(Debug)]
#[must_use = "a publication is kept or undone"]
pub struct Installed {
    target: PathBuf,
    before: Before,
    settled: bool,
}

impl Installed {
    /// The publication stands: the version before is let go.
    pub fn keep(mut self) {
        self.forget_before();
    }

    /// The publication did not happen after all: the version before goes
    /// back in place (by rename, made durable), or, if there was none,
    /// the new file is removed. An error says the new version is still
    /// at the target.
    pub fn undo(mut self) -> Result<(), PublishError> {
        self.put_back()
    }

    fn put_back(&mut self) -> Result<(), PublishError> {
        self.settled = true;
        match std::mem::replace(&mut self.before, Before::Nothing) {
            Before::Kept(link) => fs::rename(&link, &self.target).map_err(io_error(&self.target))?,
            Before::Nothing => match fs::remove_file(&self.target) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(PublishError::Io { path: self.target.clone(), source: e }),
            },
            Before::Lost(why) => {
                return Err(PublishError::Io {
                    path: self.target.clone(),
                    source: std::io::Error::other(format!("the version before was not kept: {why}")),
                });
            }
        }
        let dir = target_dir(&self.target);
        File::open(&dir).and_then(|d| d.sync_all()).map_err(io_error(&dir))?;
        tracing::debug!(target = %self.target.display(), "publication undone: the version before is back");
        Ok(())
    }

    fn forget_before(&mut self) {
        self.settled = true;
        if let Before::Kept(link) = std::mem::replace(&mut self.before, Before::Nothing) {
            let _ = fs::remove_file(link);
        }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if !self.settled {
            self.forget_before();
        }
    }
}

/// The file a path names after following symlinks (the path itself if
/// it is not one; a dangling link names the file it would point to).
fn through_symlinks(target: &Path) -> Result<PathBuf, PublishError> {
    let mut path = target.to_owned();
    for _ in 0..40 {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&path).map_err(io_error(&path))?;
                path = target_dir(&path).join(link);
            }
            _ => return Ok(path),
        }
    }
    Err(PublishError::Io { path, source: std::io::Error::other("too many levels of symbolic links") })
}

/// Gives the new file the permission bits and group of the file it
/// replaces; a new output is 0644.
fn keep_mode_and_group(file: &File, target: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let Ok(old) = fs::metadata(target) else {
        return file.set_permissions(fs::Permissions::from_mode(0o644));
    };
    if let Err(e) = std::os::unix::fs::fchown(file, None, Some(old.gid())) {
        tracing::warn!(target = %target.display(), gid = old.gid(), "cannot keep the output's group: {e}");
    }
    file.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))
}

fn target_dir(target: &Path) -> PathBuf {
    match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn temp_prefix(target: &Path) -> String {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!(".{name}.signet-")
}

fn temp_path(target: &Path) -> PathBuf {
    target_dir(target).join(format!("{}{}.tmp", temp_prefix(target), std::process::id()))
}

/// Where the version an installation replaces is kept until the
/// publication is settled.
fn before_path(target: &Path) -> PathBuf {
    target_dir(target).join(format!("{}{}.before", temp_prefix(target), std::process::id()))
}

/// Removes temporary files (candidates, versions kept) that a killed run
/// left for this target (those whose process is gone), so they do not
/// pile up. A run calls it first, before anything that can fail: on a
/// full disk, the candidates of runs killed there are what holds the
/// space the next run needs.
pub fn remove_stale_candidates(target: &Path) {
    let prefix = temp_prefix(target);
    let Ok(entries) = fs::read_dir(target_dir(target)) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else { continue };
        let Some(pid) = rest.strip_suffix(".tmp").or_else(|| rest.strip_suffix(".before")) else { continue };
        // Ours (a reused pid) or of a process that is gone.
        let stale = pid
            .parse::<u32>()
            .is_ok_and(|pid| pid == std::process::id() || !Path::new(&format!("/proc/{pid}")).exists());
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// What `stat` says of a file: size, modification time, inode, device.
/// A file replaced or edited has another stamp; one left alone keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    mtime_ns: i128,
    inode: u64,
    device: u64,
}

impl Stamp {
    /// The stamp of `path` now; `None` when it cannot be looked at.
    pub fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            inode: meta.ino(),
            device: meta.dev(),
        })
    }
}

impl std::fmt::Display for Stamp {
    /// `len:mtime_ns:inode:device`, as the database keeps it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}:{}", self.len, self.mtime_ns, self.inode, self.device)
    }
}
