//! A PostgreSQL server of the test's own, from the Debian package's
//! binaries: a fresh cluster in a temporary directory, listening on one
//! loopback address and a free port (no Unix socket anyone else uses),
//! password authentication (SCRAM) for its one user, stopped by pid
//! (its process group) when the test is done, however it ends.
//!
//! PostgreSQL refuses to run as root: under root (CI), initdb and the
//! server run as the package's `postgres` user, through `setpriv`, which
//! execs (the pid held is the server's own).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::dns_servers::free_addr;
use super::serve::wait_for;
use super::{expect_success, run};

/// The cluster's one user.
pub const USER: &str = "signet";

/// How long the server may take to accept connections, and to stop.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running PostgreSQL server.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    addr: SocketAddr,
    password: String,
    child: Option<Child>,
}

impl Postgres {
    /// Makes a cluster and starts its server on a free port of `ip`
    /// (127.0.0.0/8). Panics, with the server's log, if it does not come up.
    pub fn start(ip: std::net::IpAddr) -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new().prefix("signet-pg").tempdir().expect("tempdir");
        let password = random_password();
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n")).expect("pwfile");
        let server = Postgres { dir, bin, addr: free_addr(ip), password, child: None };
        server.give_to_server_user();
        let data = server.data_dir();
        let output = run(server
            .as_server_user(&server.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=scram-sha-256", "-E", "UTF8", "--no-sync", "--pwfile"])
            .arg(&pwfile));
        expect_success("initdb", &output);
        std::fs::remove_file(&pwfile).expect("rm pwfile");
        let mut server = server;
        server.launch();
        server
    }

    /// Starts the server and waits until it accepts connections.
    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log");
        let mut command = self.as_server_user(&self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(self.data_dir())
            .args(["-c", &format!("listen_addresses={}", self.addr.ip())])
            .args(["-c", &format!("port={}", self.addr.port())])
            .args(["-c", &format!("unix_socket_directories={}", self.dir.path().display())])
            .stdout(Stdio::null())
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        self.child = Some(command.spawn().expect("start postgres"));
        if let Err(waited) = wait_for(START_TIMEOUT, || self.accepts().then_some(())) {
            panic!("PostgreSQL does not accept connections {waited:?} after its start: {}", self.log());
        }
        eprintln!("PostgreSQL started at {} (pid {})", self.addr, self.pid());
    }

    /// The user's password: for PGPASSWORD, never for a URL.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A new, empty database on this server; its URL (no password).
    pub fn database(&self, name: &str) -> String {
        let output = run(self.psql("postgres").args(["-c", &format!("CREATE DATABASE \"{name}\"")]));
        expect_success("CREATE DATABASE", &output);
        self.url(name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}@{}:{}/{name}", self.addr.ip(), self.addr.port())
    }

    /// psql on database `name`, quiet, stopping at the first error.
    pub fn psql(&self, name: &str) -> Command {
        let mut command = Command::new(self.bin.join("psql"));
        command
            .args(["-h", &self.addr.ip().to_string(), "-p", &self.addr.port().to_string(), "-U", USER])
            .args(["-d", name, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .env("PGPASSWORD", &self.password)
            .env_remove("PGPASSFILE");
        command
    }

    /// Runs `sql` on database `name`; its output, trimmed.
    pub fn query(&self, name: &str, sql: &str) -> String {
        let output = run(self.psql(name).args(["-c", sql]));
        expect_success(&format!("psql -c {sql}"), &output);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops it (SIGTERM to its process group, SIGKILL after a while).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id();
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{pid}")]).output();
        let ended = wait_for(STOP_TIMEOUT, || child.try_wait().ok().flatten()).is_ok();
        if !ended {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).output();
            let _ = child.wait();
        }
    }

    /// Starts it again (after [`Postgres::stop`]) on the same cluster,
    /// address and port.
    pub fn restart(&mut self) {
        self.launch();
    }

    /// Whether it accepts connections (pg_isready).
    fn accepts(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["-h", &self.addr.ip().to_string(), "-p", &self.addr.port().to_string(), "-t", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `program`, run as the server's user when this process is root.
    fn as_server_user(&self, program: &Path) -> Command {
        if !is_root() {
            return Command::new(program);
        }
        let mut command = Command::new("setpriv");
        command.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
        command
    }

    /// Under root, hands the directory to the server's user.
    fn give_to_server_user(&self) {
        if is_root() {
            let output = run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(self.dir.path()));
            expect_success("chown", &output);
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The newest PostgreSQL server binaries the packages installed.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).expect("PostgreSQL server binaries (package postgresql): run bash .ci/setup")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// 24 random characters of [a-z0-9].
fn random_password() -> String {
    let mut bytes = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("random");
    bytes.iter().map(|b| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[usize::from(*b) % 36])).collect()
}

/// signet on a PostgreSQL server of the test's own: the server, a
/// database `signet` on it, a key store and a directory for the zones'
/// files (where an SQLite file would appear, were one made).
pub struct SignetOnPostgres {
    pub dir: tempfile::TempDir,
    pub pg: Postgres,
    pub url: String,
    pub store: super::Store,
}

impl SignetOnPostgres {
    /// The server at `base(1)`, soft keys.
    pub fn new(base: &dyn Fn(u8) -> std::net::IpAddr) -> SignetOnPostgres {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = super::Store::soft(&dir.path().join("keys"));
        SignetOnPostgres::with_store(base, dir, store)
    }

    /// The server at `base(1)`, keys in `store`, files in `dir`.
    pub fn with_store(
        base: &dyn Fn(u8) -> std::net::IpAddr,
        dir: tempfile::TempDir,
        store: super::Store,
    ) -> SignetOnPostgres {
        let pg = Postgres::start(base(1));
        let url = pg.database("signet");
        SignetOnPostgres { dir, pg, url, store }
    }

    /// `signet --db URL ARGS…` with the password in PGPASSWORD, run from
    /// the test's directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.store.on_db(Path::new(&self.url), args);
        command.env("PGPASSWORD", self.pg.password()).env_remove("PGPASSFILE").current_dir(self.dir.path());
        command
    }

    /// [`SignetOnPostgres::command`] run; the password must show nowhere
    /// in its output.
    pub fn signet(&self, args: &[&str]) -> std::process::Output {
        let output = run(&mut self.command(args));
        self.assert_no_password(&output);
        output
    }

    /// [`SignetOnPostgres::signet`], which must succeed.
    pub fn ok(&self, args: &[&str]) -> std::process::Output {
        let output = self.signet(args);
        expect_success(&format!("signet {}", args.join(" ")), &output);
        output
    }

    /// `signet --format json ARGS…`, which must succeed: its output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        serde_json::from_slice(&self.ok(&all).stdout).expect("JSON")
    }

    pub fn assert_no_password(&self, output: &std::process::Output) {
        for stream in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(!text.contains(self.pg.password()), "the password shows:\n{text}");
        }
    }

    /// A file of the test's directory.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().expect("path").to_owned()
    }
}
