//! Progress on a terminal for long runs; silent when stderr is not one.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use signet::verify::Progress;

/// Prints `verifying: 42% (420000 of 1000000 names)` to stderr at most
/// every half second, and only when stderr is a terminal.
#[derive(Debug)]
pub(super) struct TerminalProgress {
    last: Option<Mutex<Instant>>,
}

impl TerminalProgress {
    /// A progress line on stderr if it is a terminal.
    pub(super) fn new() -> TerminalProgress {
        let last = std::io::stderr().is_terminal().then(|| Mutex::new(Instant::now()));
        TerminalProgress { last }
    }
}

impl Progress for TerminalProgress {
    fn advance(&self, done: u64, total: u64) {
        let Some(last) = &self.last else { return };
        let Ok(mut last) = last.lock() else { return };
        if last.elapsed() < Duration::from_millis(500) && done < total {
            return;
        }
        *last = Instant::now();
        let percent = done * 100 / total.max(1);
        let end = if done >= total { "\r\x1b[K" } else { "" };
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\rverifying: {percent}% ({done} of {total} names){end}");
        let _ = stderr.flush();
    }
}
