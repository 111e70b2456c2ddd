//! A running `signet serve` for the service tests, its log collected line
//! by line, and the waiting those tests do.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Polls `probe` every 50 ms until it gives a value or `timeout` passes
/// (`Err` with the time waited).
pub fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Result<T, Duration> {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return Ok(value);
        }
        if started.elapsed() >= timeout {
            return Err(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `text` to `path` by rename, as an operator should.
pub fn write_by_rename(path: &Path, text: &str) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, text).expect("write input");
    std::fs::rename(&temporary, path).expect("rename input");
}

/// A running `signet serve`; killed (SIGKILL) when dropped, so that a
/// failing assertion leaves nothing running.
#[derive(Debug)]
pub struct Serve {
    child: Option<Child>,
    /// Its pid.
    pub pid: u32,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    label: String,
}

impl Serve {
    /// Starts `command` (a `signet … serve …`), collecting its standard
    /// error, also into `log_file` if given.
    pub fn start(mut command: Command, label: &str, log_file: Option<PathBuf>) -> Serve {
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start signet serve: {e}"));
        let pid = child.id();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            use std::io::Write;
            let mut file = log_file.and_then(|path| std::fs::File::create(path).ok());
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(file) = file.as_mut() {
                    let _ = writeln!(file, "{line}");
                }
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        eprintln!("serve {label} started: pid {pid}");
        Serve { child: Some(child), pid, log, reader: Some(reader), label: label.to_owned() }
    }

    /// Its log so far.
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many log lines hold every one of `needles`.
    pub fn count(&self, needles: &[&str]) -> usize {
        self.lines().iter().filter(|l| needles.iter().all(|n| l.contains(n))).count()
    }

    /// Waits for a log line with every one of `needles`, and returns it.
    pub fn wait_log(&self, needles: &[&str], within: Duration) -> String {
        wait_for(within, || self.lines().into_iter().find(|l| needles.iter().all(|n| l.contains(n))))
            .unwrap_or_else(|_| panic!("no log line with {needles:?} within {within:?}\n{}", self.tail()))
    }

    /// The last lines of its log, for a failure message.
    pub fn tail(&self) -> String {
        let lines = self.lines();
        let from = lines.len().saturating_sub(40);
        format!("serve {} (pid {}) log, last lines:\n{}", self.label, self.pid, lines[from..].join("\n"))
    }

    /// Sends it a signal (`TERM`, `HUP`, …).
    pub fn signal(&self, signal: &str) {
        let output = super::run(Command::new("kill").arg(format!("-{signal}")).arg(self.pid.to_string()));
        super::expect_success(&format!("kill -{signal} {}", self.pid), &output);
    }

    /// Is it still running?
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().expect("try_wait").is_none())
    }

    /// Waits for it to end, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let status = wait_for(timeout, || child.try_wait().expect("try_wait")).ok()?;
        self.child = None;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        Some(status)
    }

    /// SIGTERM, then it must exit 0 within 20 s.
    pub fn stop(mut self) {
        self.signal("TERM");
        let status = self.wait(Duration::from_secs(20));
        assert!(status.is_some_and(|s| s.success()), "serve after SIGTERM: {status:?}\n{}", self.tail());
    }

    /// SIGKILL.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill_9();
    }
}
