//! The commands signet starts (serve's `publish-command`, the policy's
//! `parent.submit-command`, a zone's review hook): each gets a cleaned
//! environment, never
//! signet's own. signet's environment may hold the PKCS#11 PIN
//! (`SIGNET_PKCS11_PIN`, or whatever variable a key URI's
//! `pin-source=env:VAR` names), the HSM's configuration and whatever
//! else the service manager put there; a command needs none of it. So a
//! command gets only the variables on [`PASSED`] (and `LC_*`) that
//! signet has, then the ones its caller sets (`SIGNET_ZONE`, …).
//! [`supervise`] runs one in a process group of its own with a time
//! limit, keeping the end of its standard error. A leaf: every stage may
//! use it (ARCHITECTURE.md §1).

use std::ffi::OsStr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, ChildStderr, ChildStdin};

/// The variables a command gets from signet's environment, when signet
/// has them: where programs are, whose home, the locale (also every
/// `LC_*`), the time zone, the place for temporary files.
pub const PASSED: [&str; 8] = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR"];

/// `PATH` for a command when signet has none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Does the variable `name` pass to a command?
pub fn passes(name: &str) -> bool {
    PASSED.contains(&name) || name.starts_with("LC_")
}

/// A command for `program` with the cleaned environment: the variables
/// of signet's that [`passes`] lets through, `PATH` always; the caller
/// adds its own.
pub fn command(program: impl AsRef<OsStr>) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command.env_clear();
    let mut path = false;
    for (name, value) in std::env::vars_os() {
        if name.to_str().is_some_and(passes) {
            path |= name == "PATH";
            command.env(name, value);
        }
    }
    if !path {
        command.env("PATH", DEFAULT_PATH);
    }
    command
}

/// How much of a supervised command's standard error is kept: its last
/// bytes (a verdict is usually said last).
pub const STDERR_KEPT: usize = 4096;
/// How many lines of it [`last_lines`] gives, and how long each may be.
const STDERR_LINES: usize = 5;
const STDERR_LINE_CHARS: usize = 200;
/// How long standard error may stay open after the command ended or was
/// killed (a process it left behind may hold it).
const STDERR_GRACE: Duration = Duration::from_millis(500);
/// How often a supervised command's caller is asked whether to stop.
const STOP_POLL: Duration = Duration::from_millis(200);

/// How a supervised command ended.
#[derive(Debug)]
pub enum Ended {
    /// It exited, or was killed by a signal not of signet's.
    Exited(ExitStatus),
    /// Its end could not be awaited.
    WaitFailed(std::io::Error),
    /// It ran past its time: its process group was killed.
    TimedOut,
    /// The caller asked to stop (a service stopping): its process group
    /// was killed.
    Stopped,
}

/// A supervised command's end and the last bytes of its standard error.
#[derive(Debug)]
pub struct Finished {
    /// How it ended.
    pub ended: Ended,
    /// The last [`STDERR_KEPT`] bytes of its standard error.
    pub stderr: Vec<u8>,
}

/// Runs `command` (made by [`command`]) in a process group of its own,
/// `input` on its standard input (closed when `None`), standard output
/// discarded, standard error read; waits at most `timeout`, asking `stop`
/// every 200 ms whether to give up. Past the time, or when told to stop,
/// the whole process group is killed (SIGKILL). Dropped before the end,
/// it kills the group too. An error only when the command cannot be
/// started.
pub async fn supervise(
    mut command: tokio::process::Command,
    input: Option<String>,
    timeout: Duration,
    stop: &(dyn Fn() -> bool + Sync),
) -> std::io::Result<Finished> {
    command
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // A group of its own: a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let mut group = GroupKiller::new(&child);
    let feed = feed_stdin(child.stdin.take(), input.unwrap_or_default());
    tokio::pin!(feed);
    let mut fed = false;
    let mut stderr = child.stderr.take();
    let mut kept = Vec::new();
    let mut chunk = [0u8; 1024];
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut poll = tokio::time::interval(STOP_POLL);
    let ended = loop {
        tokio::select! {
            // The end first: a command that ended as the time ran out ended.
            biased;
            status = child.wait() => break status.map_or_else(Ended::WaitFailed, Ended::Exited),
            () = &mut feed, if !fed => fed = true,
            read = read_chunk(&mut stderr, &mut chunk), if stderr.is_some() => keep(&mut kept, &chunk, read, &mut stderr),
            () = &mut deadline => break Ended::TimedOut,
            _ = poll.tick() => if stop() { break Ended::Stopped },
        }
    };
    finish(&mut child, &mut group, &ended).await;
    if let Some(stderr) = stderr {
        let _ = tokio::time::timeout(STDERR_GRACE, drain(stderr, &mut kept)).await;
    }
    Ok(Finished { ended, stderr: kept })
}

/// After the end: a command reaped leaves its group alone (its id may be
/// reused); one that overran is killed with its group and reaped.
async fn finish(child: &mut Child, group: &mut GroupKiller, ended: &Ended) {
    match ended {
        Ended::Exited(_) | Ended::WaitFailed(_) => group.disarm(),
        Ended::TimedOut | Ended::Stopped => {
            group.kill();
            let _ = tokio::time::timeout(STDERR_GRACE, child.wait()).await;
        }
    }
}

/// Writes `text` to the command's standard input and closes it. A
/// command that does not read it (and exits) is not an error here: its
/// exit status decides.
async fn feed_stdin(stdin: Option<ChildStdin>, text: String) {
    if let Some(mut stdin) = stdin {
        let _ = stdin.write_all(text.as_bytes()).await;
        let _ = stdin.shutdown().await;
    }
}

async fn read_chunk(stderr: &mut Option<ChildStderr>, chunk: &mut [u8]) -> std::io::Result<usize> {
    match stderr {
        Some(stderr) => stderr.read(chunk).await,
        None => Ok(0),
    }
}

/// Keeps the last [`STDERR_KEPT`] bytes read; at the end of the stream,
/// or on an error, stops reading.
fn keep(kept: &mut Vec<u8>, chunk: &[u8], read: std::io::Result<usize>, stderr: &mut Option<ChildStderr>) {
    match read {
        Ok(n) if n > 0 => keep_last(kept, &chunk[..n]),
        _ => *stderr = None,
    }
}

fn keep_last(kept: &mut Vec<u8>, bytes: &[u8]) {
    kept.extend_from_slice(bytes);
    let excess = kept.len().saturating_sub(STDERR_KEPT);
    kept.drain(..excess);
}

/// Reads standard error to its end, keeping its last bytes.
async fn drain(mut stderr: ChildStderr, kept: &mut Vec<u8>) {
    let mut chunk = [0u8; 1024];
    while let Ok(n @ 1..) = stderr.read(&mut chunk).await {
        keep_last(kept, &chunk[..n]);
    }
}

/// The last non-empty lines of a command's standard error, each cut
/// short, control characters replaced, joined with ` | `.
pub fn last_lines(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    let start = lines.len().saturating_sub(STDERR_LINES);
    let cut: Vec<String> = lines[start..]
        .iter()
        .map(|line| {
            let mut cut: String =
                line.chars().take(STDERR_LINE_CHARS).map(|c| if c.is_control() { '?' } else { c }).collect();
            if line.chars().count() > STDERR_LINE_CHARS {
                cut.push('…');
            }
            cut
        })
        .collect();
    cut.join(" | ")
}

/// Kills a command's process group (SIGKILL) when told to, or when
/// dropped armed: a command abandoned by its caller leaves nothing
/// running.
#[derive(Debug)]
struct GroupKiller(Option<rustix::process::Pid>);

impl GroupKiller {
    fn new(child: &Child) -> GroupKiller {
        let pid = child.id().and_then(|id| i32::try_from(id).ok()).and_then(rustix::process::Pid::from_raw);
        GroupKiller(pid)
    }

    /// The leader has been reaped: the group is no longer ours to kill.
    fn disarm(&mut self) {
        self.0 = None;
    }

    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // Fails only when the group is already gone.
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_of_standard_error_are_kept_and_cut() {
        let mut kept = Vec::new();
        keep_last(&mut kept, &vec![b'x'; STDERR_KEPT]);
        keep_last(&mut kept, b"\nfirst\n\nsecond\tline\n");
        assert_eq!(kept.len(), STDERR_KEPT);
        assert!(last_lines(&kept).ends_with("first | second?line"), "{}", last_lines(&kept));
        assert_eq!(last_lines(b"1\n2\n3\n4\n5\n6\n"), "2 | 3 | 4 | 5 | 6");
    }

    #[test]
    fn only_the_listed_variables_pass() {
        for name in ["PATH", "HOME", "LANG", "LC_ALL", "LC_TIME", "TZ", "TMPDIR"] {
            assert!(passes(name), "{name}");
        }
        for name in ["SIGNET_PKCS11_PIN", "SIGNET_PKCS11_MODULE", "SOFTHSM2_CONF", "SIGNET_DB", "LD_PRELOAD", "path"] {
            assert!(!passes(name), "{name}");
        }
    }

    #[test]
    fn the_environment_is_cleared_then_filled_from_the_list() {
        let command = command("true");
        let std = command.as_std();
        assert!(std.get_envs().all(|(name, _)| name.to_str().is_some_and(passes)));
        let path = std.get_envs().find(|(name, _)| *name == "PATH").and_then(|(_, v)| v);
        assert!(path.is_some(), "PATH is always set");
    }
}
