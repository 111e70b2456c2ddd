//! The gate: a signed zone is written to a temporary file beside the
//! target, read back from that file, and verified in full; only a
//! [`VerifiedZone`] is moved into place (fsync, rename, fsync of the
//! directory). On any failure nothing is installed, the temporary file is
//! removed, and the previous output stays as it was.
//!
//! Every byte published is a byte the verifier read.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::verify::{GateError, Progress, Report, VerifiedZone, VerifyOptions, verify_file};
use crate::zone::Name;

/// Why a zone was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The zone could not be produced (signing failed).
    #[error(transparent)]
    Produce(#[from] crate::sign::SignError),
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The written zone could not be read back: a writer bug, reported
    /// with the temporary file's line.
    #[error("the written zone does not read back: {0}")]
    ReadBack(crate::zone::ReadError),
    /// The verifier found errors: nothing was published.
    #[error("the gate refused the zone: {}", .0.summary_line())]
    Refused(Box<Report>),
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

/// Produces a zone with `write`, verifies what was written, and installs
/// it at `target`. Returns what `write` returned and the verifier's report.
pub fn publish<T>(
    target: &Path,
    origin: &Name,
    options: &VerifyOptions,
    progress: &dyn Progress,
    write: impl FnOnce(&mut dyn Write) -> Result<T, PublishError>,
) -> Result<(T, Report), PublishError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| PublishError::Io { path, source }
    };
    let dir = target_dir(target);
    remove_stale_temps(target);
    let mut temp = TempFile { path: temp_path(target), installed: false };
    let file = OpenOptions::new().write(true).create_new(true).mode(0o644).open(&temp.path).map_err(io(&temp.path))?;
    let produced = {
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, &file);
        let produced = write(&mut writer)?;
        writer.flush().map_err(io(&temp.path))?;
        produced
    };
    file.sync_all().map_err(io(&temp.path))?;
    drop(file);
    let verified = match verify_file(&temp.path, origin, options, progress) {
        Ok(verified) => verified,
        Err(GateError::Read(e)) => return Err(PublishError::ReadBack(e)),
        Err(GateError::Refused(report)) => return Err(PublishError::Refused(report)),
    };
    install(&verified, target, &dir).map_err(io(target))?;
    temp.installed = true;
    tracing::info!(target = %target.display(), "zone published");
    Ok((produced, verified.report().clone()))
}

/// Moves the verified file into place atomically and makes the rename
/// durable.
fn install(verified: &VerifiedZone, target: &Path, dir: &Path) -> std::io::Result<()> {
    fs::rename(verified.path(), target)?;
    File::open(dir)?.sync_all()
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

/// Removes temporary files that a killed run left for this target (those
/// whose process is gone), so they do not pile up.
fn remove_stale_temps(target: &Path) {
    let prefix = temp_prefix(target);
    let Ok(entries) = fs::read_dir(target_dir(target)) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")) else { continue };
        // Ours (a reused pid) or of a process that is gone.
        let stale = pid
            .parse::<u32>()
            .is_ok_and(|pid| pid == std::process::id() || !Path::new(&format!("/proc/{pid}")).exists());
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}
