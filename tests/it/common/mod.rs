//! Shared helpers for the integration tests: run the peer signers and the
//! independent validators, with their output shown when they fail.

pub mod bind_keys;
pub mod dns_servers;
pub mod knot_parent;
pub mod postgres;
pub mod query_loop;
pub mod serve;
pub mod soft_keys;

use std::path::Path;
use std::process::{Command, Output};

/// Is a peer tool installed? In CI (CI=true) a missing tool is a failure;
/// elsewhere the caller may skip with a note.
/// A TLD-like input of `count` delegations under `origin` (from
/// bench/genzone.py) and a policy with soft keys in `dir/keys` (ECDSA,
/// NSEC), for tests that need a run long enough to be caught under way:
/// (input, policy). None without python3.
pub fn big_tld(dir: &Path, origin: &str, count: usize) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    if !have_tool("python3") {
        return None;
    }
    let zone = dir.join("tld.zone");
    let generator = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/genzone.py");
    let out = run(Command::new("python3")
        .arg(generator)
        .args(["--count", &count.to_string(), "--origin", origin, "-o"])
        .arg(&zone));
    expect_success("genzone.py", &out);
    let keys = dir.join("keys");
    std::fs::create_dir(&keys).expect("mkdir");
    let policy = dir.join("policy.toml");
    let text = format!(
        "[keys]\nalgorithm = \"ECDSAP256SHA256\"\nstore = \"file:{}\"\n[denial]\ntype = \"nsec\"\n[zone]\nmax-ttl = \"2d\"\n[signatures]\nrefresh = \"6d\"\n",
        keys.display()
    );
    std::fs::write(&policy, text).expect("policy");
    Some((zone, policy))
}

/// A policy of soft (or HSM) keys in `store` that roll nothing during a
/// test (ECDSA P-256 KSK and ZSK, unlimited lifetimes), NSEC, 10-day
/// signatures, the given `zone.serial` scheme: the transfer tests' zones.
pub fn steady_policy(store: &Store, serial: &str) -> String {
    format!(
        "[keys]\nalgorithm = \"ECDSAP256SHA256\"\nksk-lifetime = \"0\"\nzsk-lifetime = \"0\"\ndnskey-ttl = \"1h\"\n\
         publish-safety = \"10m\"\nretire-safety = \"10m\"\nstore = \"{}\"\n\
         [signatures]\nvalidity = \"10d\"\ndnskey-validity = \"10d\"\nrefresh = \"3d\"\njitter = \"1d\"\n\
         [denial]\ntype = \"nsec\"\n\
         [zone]\npropagation-delay = \"5m\"\nmax-ttl = \"1d\"\nserial = \"{serial}\"\n\
         [parent]\nds-ttl = \"1h\"\npropagation-delay = \"5m\"\nregistration-delay = \"1h\"\n",
        store.uri()
    )
}

/// A policy of hours for the parent tests: no rollovers of their own, the
/// DS TTL and the parent's delays of an hour, the parent checked after a
/// minute and then every ten; keys in `store` (a URI).
pub fn parent_policy(store: &str) -> String {
    format!(
        "[keys]\nalgorithm = \"ECDSAP256SHA256\"\nksk-lifetime = \"0\"\nzsk-lifetime = \"0\"\ndnskey-ttl = \"1h\"\n\
         publish-safety = \"1h\"\nretire-safety = \"1h\"\nstore = \"{store}\"\n\
         [signatures]\nvalidity = \"14d\"\ndnskey-validity = \"14d\"\nrefresh = \"5d\"\njitter = \"1h\"\n\
         [zone]\npropagation-delay = \"5m\"\nmax-ttl = \"1h\"\n\
         [parent]\nds-ttl = \"1h\"\npropagation-delay = \"5m\"\nregistration-delay = \"1h\"\n\
         check-interval-min = \"1m\"\ncheck-interval = \"10m\"\n"
    )
}

/// The SOA serial of a signed zone file (0 if there is none yet).
pub fn published_serial(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find(|l| l.split_whitespace().nth(3) == Some("SOA"))
        .and_then(|l| l.split_whitespace().nth(6))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn have_tool(tool: &str) -> bool {
    let found =
        Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} is missing in CI: .ci/setup must install it");
    }
    if !found {
        eprintln!("note: {tool} not installed; run `bash .ci/setup`");
    }
    found
}

/// Runs a command and returns its output, panicking if it cannot start.
pub fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Runs a command that must end quickly: one that is still running after
/// 5 s, or whose peak memory passes 256 MiB, is killed and the test fails
/// (a reader that reads without end must not hurt the machine).
pub fn run_bounded(command: &mut Command) -> Output {
    use std::time::{Duration, Instant};
    const DEADLINE: Duration = Duration::from_secs(5);
    const PEAK_KIB: u64 = 256 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        let peak = peak_kib(child.id());
        if started.elapsed() > DEADLINE || peak > PEAK_KIB {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} still running after {:?}, peak {peak} KiB", started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |path: &Path| std::fs::read(path).expect("output");
    Output { status, stdout: read(&out), stderr: read(&err) }
}

/// A process's peak resident memory (VmHWM), 0 if it cannot be read.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).unwrap_or(0)
}

/// Panics with the command's output unless it succeeded.
pub fn expect_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Signs `unsigned` with a peer signer through tests/peers/sign.sh into
/// `out` (signed.zone, ds.txt, keys/).
pub fn sign_with_peer(tool: &str, algs: &str, denial: &str, unsigned: &Path, origin: &str, out: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/sign.sh");
    let output = run(Command::new("bash").arg(script).args([tool, algs, denial]).arg(unsigned).arg(origin).arg(out));
    expect_success(&format!("sign.sh {tool} {algs} {denial}"), &output);
}

/// BIND's dnssec-verify on a signed zone.
pub fn bind_verify(zone: &Path, origin: &str) -> Output {
    run(Command::new("dnssec-verify").args(["-q", "-o", origin]).arg(zone))
}

/// Knot's kzonecheck with full DNSSEC checks.
pub fn knot_check(zone: &Path, origin: &str) -> Output {
    run(Command::new("kzonecheck").args(["-o", origin, "-d", "on"]).arg(zone))
}

/// ldns-verify-zone on a signed zone (it checks every signature and the
/// NSEC/NSEC3 chain).
pub fn ldns_verify(zone: &Path) -> Output {
    run(Command::new("ldns-verify-zone").arg(zone))
}

/// The time a check judges signatures at. A test that fixed the time it
/// signed at must check at that time too: a check by the wall clock of a
/// zone signed at a fixed date passes until that date's signatures expire,
/// then fails on every run (it did, on 2026-12-02). There is no default:
/// every caller says which clock its zone was signed by.
#[derive(Debug, Clone, Copy)]
pub enum At {
    /// The fixed time the test signed at, passed as `--now`.
    Fixed(i64),
    /// The wall clock, for zones signed at the wall clock's time (by a
    /// peer, or by signet without `--now`).
    WallClock,
}

/// `signet verify ... --format json` at `at`: exit code and the parsed
/// report.
pub fn signet_verify_json(
    signet: &str,
    zone: &Path,
    origin: &str,
    anchor: Option<&Path>,
    at: At,
) -> (Option<i32>, serde_json::Value) {
    let mut command = Command::new(signet);
    command.args(["verify", "--format", "json", "--origin", origin]).arg(zone);
    if let Some(anchor) = anchor {
        command.arg("--trust-anchor").arg(anchor);
    }
    if let At::Fixed(now) = at {
        command.args(["--now", &now.to_string()]);
    }
    let output = run(&mut command);
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("signet verify printed no JSON report ({e}); stderr:\n{}", String::from_utf8_lossy(&output.stderr))
    });
    (output.status.code(), report)
}

/// The signet binary.
pub fn signet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_signet"))
}

/// The realistic unsigned zone of the tests.
pub fn realistic_zone() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/realistic.zone")
}

/// A key store for the signing tests: soft key files in a directory, or a
/// SoftHSM token made by hsm/make-token.sh in a directory of its own.
#[derive(Debug, Clone)]
pub enum Store {
    /// `file:DIR`.
    Soft(std::path::PathBuf),
    /// A SoftHSM token: the SOFTHSM2_CONF to run with.
    Pkcs11 {
        /// Path of the token's softhsm2.conf.
        conf: std::path::PathBuf,
    },
}

/// The PIN the test tokens are made with.
pub const TEST_PIN: &str = "1234";
/// The label of the test tokens.
pub const TEST_TOKEN: &str = "signet";

impl Store {
    /// A soft store in `dir`.
    pub fn soft(dir: &Path) -> Store {
        std::fs::create_dir_all(dir).expect("mkdir");
        Store::Soft(dir.to_owned())
    }

    /// A fresh SoftHSM token in `dir`, made by hsm/make-token.sh.
    pub fn softhsm(dir: &Path) -> Store {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hsm/make-token.sh");
        let output = run(Command::new("bash").arg(script).arg(dir).env("SIGNET_PKCS11_PIN", TEST_PIN));
        expect_success("hsm/make-token.sh", &output);
        Store::Pkcs11 { conf: dir.join("softhsm2.conf") }
    }

    /// The store's URI for `signet key generate --store`.
    pub fn uri(&self) -> String {
        match self {
            Store::Soft(dir) => format!("file:{}", dir.display()),
            Store::Pkcs11 { .. } => format!("pkcs11:token={TEST_TOKEN}"),
        }
    }

    /// `signet --db DB ARGS…` with this store's environment, on the wall
    /// clock and the database given (not the caller's SIGNET_NOW or
    /// SIGNET_DB).
    pub fn on_db(&self, db: &Path, args: &[&str]) -> Command {
        let mut command = self.signet();
        command.env_remove("SIGNET_NOW").env_remove("SIGNET_DB").arg("--db").arg(db).args(args);
        command
    }

    /// [`Store::on_db`] run, which must succeed.
    pub fn ok_on(&self, db: &Path, args: &[&str]) -> Output {
        let output = run(&mut self.on_db(db, args));
        expect_success(&format!("signet {}", args.join(" ")), &output);
        output
    }

    /// A signet command with this store's environment (SoftHSM config, PIN).
    pub fn signet(&self) -> Command {
        let mut command = signet();
        command.env("SIGNET_PKCS11_PIN", TEST_PIN);
        if let Store::Pkcs11 { conf } = self {
            command.env("SOFTHSM2_CONF", conf);
        }
        command
    }

    /// Makes a key with `signet key generate`; returns its URI. RSA soft
    /// keys come from openssl, so that the PKCS#1 DER it writes is read too.
    pub fn generate(&self, algorithm: &str, role: &str, label: &str) -> String {
        if let (Store::Soft(dir), "8") = (self, algorithm) {
            let file = dir.join(format!("{label}.der"));
            let output = run(Command::new("openssl")
                .args(["genpkey", "-algorithm", "RSA", "-pkeyopt"])
                .args(["rsa_keygen_bits:2048", "-outform", "DER", "-out"])
                .arg(&file));
            expect_success("openssl genpkey", &output);
            std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
            return format!("file:{}", file.display());
        }
        let output = run(self.signet().args(["key", "generate", "--format", "json", "--origin", "example."]).args([
            "--store",
            &self.uri(),
            "--algorithm",
            algorithm,
            "--role",
            role,
            "--label",
            label,
        ]));
        expect_success("signet key generate", &output);
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("key generate prints JSON");
        json["uri"].as_str().expect("a uri").to_owned()
    }
}

/// Writes a policy file with the given `[keys]` algorithm and `[denial]`
/// lines and otherwise the defaults.
pub fn write_policy(dir: &Path, name: &str, algorithm: &str, denial: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let denial = match denial {
        "nsec" => "type = \"nsec\"",
        "nsec3" => "type = \"nsec3\"",
        "nsec3-optout" => "type = \"nsec3\"\nopt-out = true",
        other => panic!("unknown denial {other}"),
    };
    let text = format!("[keys]\nalgorithm = {algorithm}\n{extra}\n[denial]\n{denial}\n");
    std::fs::write(&path, text).expect("write policy");
    path
}
