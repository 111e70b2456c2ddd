//! `signet serve` as a service, on the wall clock: a real serve process
//! (the debug binary), SoftHSM keys, and zones under compressed-time
//! policies (TTLs and safety margins of seconds, key lifetimes of about a
//! minute), with this test playing the parent (it confirms `ds seen` /
//! `ds gone` as `key list` asks).
//!
//! `serve_rolls_keys_and_takes_up_changes`: three zones (ECDSA P-256
//! KSK+ZSK with NSEC3, an Ed25519 CSK with NSEC, RSASHA256 KSK+ZSK with
//! NSEC3 opt-out) each roll their ZSK (CSK) on their own; every version
//! serve publishes is captured by the `publish-command` and checked by
//! BIND's dnssec-verify and Knot's kzonecheck; input changes are published
//! within 2 s; a broken input keeps the old output and shows in `signet
//! status`; an operator rollover is taken up; a second serve on the
//! database is refused; kill -9 and a restart lose nothing.
//!
//! `serve_stops_mid_run_and_restarts`: a zone of thousands of names whose
//! run lasts seconds; SIGTERM in the middle of a run ends serve with exit
//! 0, the old output untouched and valid and the database consistent; a
//! restart publishes the change; kill -9 in the middle of a run, and the
//! next serve publishes it.
//!
//! The two tests take turns (a lock): both measure times, and the machine
//! of the CI has two cores.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::Store;
use common::serve::{Serve, wait_for, write_by_rename};

/// The two tests take turns: each measures latencies.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The longest an input change may take to be published.
const CHANGE_LATENCY: Duration = Duration::from_secs(2);

fn unix_now() -> i64 {
    signet::time::wall_clock()
}

/// A compressed-time policy: TTLs of 5 s, safety margins of 2 s,
/// signatures valid for 2 h (the shortest `policy check` allows).
fn policy_text(name: &str, keys: &str, denial: &str, serial: &str) -> String {
    format!(
        "name = \"{name}\"\n\
         [keys]\n{keys}\ndnskey-ttl = \"3s\"\npublish-safety = \"2s\"\nretire-safety = \"2s\"\nstore = \"pkcs11:token=signet\"\n\
         [signatures]\nvalidity = \"2h\"\ndnskey-validity = \"2h\"\nrefresh = \"1h\"\njitter = \"1m\"\ninception-offset = \"5m\"\n\
         [denial]\n{denial}\n\
         [zone]\npropagation-delay = \"1s\"\nmax-ttl = \"5s\"\nserial = \"{serial}\"\n\
         [parent]\nds-ttl = \"3s\"\npropagation-delay = \"1s\"\nregistration-delay = \"2s\"\ncds = true\n"
    )
}

/// A small zone with a marker TXT record that the test changes.
fn small_zone(origin: &str, marker: &str, delegations: bool) -> String {
    let mut text = format!(
        "$ORIGIN {origin}\n$TTL 5\n\
         @ IN SOA ns1 hostmaster 1 5 5 60 5\n@ NS ns1\n@ NS ns2\nns1 A 192.0.2.1\nns2 AAAA 2001:db8::2\n\
         www A 192.0.2.80\nmail A 192.0.2.25\n@ MX 10 mail\nmarker TXT \"{marker}\"\n*.wild TXT \"wildcard\"\n"
    );
    if delegations {
        text.push_str(
            "sub1 NS ns1.sub1\nns1.sub1 A 192.0.2.53\nsub2 NS ns.example.net.\nsub3 NS ns.example.net.\n\
             sub3 DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
        );
    }
    text
}

/// A zone of `names` names (A and TXT each, some delegations), big enough
/// that a run of the debug build takes seconds.
fn big_zone(origin: &str, marker: &str, names: usize) -> String {
    let version: usize = marker.bytes().map(usize::from).sum();
    let mut text = format!(
        "$ORIGIN {origin}\n$TTL 5\n@ IN SOA ns1 hostmaster 1 5 5 60 5\n@ NS ns1\nns1 A 192.0.2.1\nmarker TXT \"{marker}\"\n"
    );
    for i in 0..names {
        if i % 10 == 0 {
            text.push_str(&format!("d{i} NS ns.example.net.\n"));
        } else {
            // Every host's address and TXT depend on the version: each new
            // version is signed anew in the main, and its run lasts.
            text.push_str(&format!(
                "h{i} A 198.51.{}.{}\nh{i} TXT \"host {i} {marker}\"\n",
                (i / 250 + version) % 256,
                i % 250 + 1
            ));
        }
    }
    text
}

/// The SOA serial of a master file as signet writes it.
fn soa_serial(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let at = tokens.iter().take(4).position(|t| *t == "SOA")?;
        if at == 0 || tokens[at - 1] == "RRSIG" {
            return None;
        }
        tokens.get(at + 3)?.parse().ok()
    })
}

/// A managed zone of the test.
#[derive(Debug, Clone)]
struct Zone {
    name: &'static str,
    input: PathBuf,
    output: PathBuf,
    /// The key role that rolls by lifetime: zsk or csk.
    role: &'static str,
    csk: bool,
}

impl Zone {
    fn output_text(&self) -> Option<String> {
        std::fs::read_to_string(&self.output).ok()
    }

    fn output_serial(&self) -> Option<u32> {
        soa_serial(&self.output_text()?)
    }
}

/// A database, a SoftHSM token, the serve configuration, and where the
/// publish command puts every version.
struct Env {
    dir: tempfile::TempDir,
    store: Store,
    db: PathBuf,
    config: PathBuf,
    versions: PathBuf,
}

impl Env {
    /// `None` (the test is skipped) without the tools it needs.
    fn new(stop_timeout: &str) -> Option<Env> {
        if !["softhsm2-util", "dnssec-verify", "kzonecheck"].iter().all(|t| common::have_tool(t)) {
            eprintln!("note: serve test skipped: it needs softhsm2-util, dnssec-verify and kzonecheck");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::softhsm(&dir.path().join("hsm"));
        let versions = dir.path().join("versions");
        std::fs::create_dir(&versions).expect("mkdir");
        let config = dir.path().join("serve.toml");
        let copy = format!(
            "d='{}'; cp \"$SIGNET_OUTPUT\" \"$d/.part.$SIGNET_ZONE\" && mv \"$d/.part.$SIGNET_ZONE\" \"$d/$SIGNET_ZONE$SIGNET_SERIAL\"",
            versions.display()
        );
        let text = format!(
            "[serve]\nretry-min = \"1s\"\nretry-max = \"4s\"\nstop-timeout = \"{stop_timeout}\"\nmax-parallel-runs = 2\n\
             publish-command = [\"sh\", \"-c\", {}]\n",
            toml_string(&copy)
        );
        std::fs::write(&config, text).expect("write config");
        let env = Env { db: dir.path().join("signet.db"), dir, store, config, versions };
        env.ok(&["init"]);
        Some(env)
    }

    fn command(&self, args: &[&str]) -> Command {
        self.store.on_db(&self.db, args)
    }

    fn signet(&self, args: &[&str]) -> Output {
        common::run(&mut self.command(args))
    }

    fn ok(&self, args: &[&str]) -> Output {
        self.store.ok_on(&self.db, args)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        let output = self.ok(&args);
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("signet {} printed no JSON ({e}): {}", args.join(" "), String::from_utf8_lossy(&output.stdout))
        })
    }

    /// `signet status ZONE --format json`: the zone's object.
    fn status(&self, zone: &str) -> serde_json::Value {
        let all = self.json(&["status", zone]);
        let status = all.as_array().and_then(|a| a.first()).cloned();
        status.unwrap_or_else(|| panic!("signet status {zone} printed no zone: {all}"))
    }

    /// The keys of `key list ZONE --format json`.
    fn keys(&self, zone: &str) -> Vec<serde_json::Value> {
        self.json(&["key", "list", zone])[0]["keys"].as_array().cloned().unwrap_or_default()
    }

    /// The zone's audit trail (the newest entries `zone status` shows).
    fn audit(&self, zone: &str) -> Vec<serde_json::Value> {
        self.json(&["zone", "status", zone])["audit"].as_array().cloned().unwrap_or_default()
    }

    /// Imports a policy and adds a zone under it.
    fn add_zone(&self, zone: Zone, policy: &str, input: &str) -> Zone {
        let policy_file = self.dir.path().join(format!("{}toml", zone.name));
        std::fs::write(&policy_file, policy).expect("write policy");
        let checked = self.ok(&["policy", "check", policy_file.to_str().expect("path")]);
        eprintln!("{}", String::from_utf8_lossy(&checked.stdout).trim());
        self.ok(&["policy", "import", policy_file.to_str().expect("path"), "--name", zone.name]);
        write_by_rename(&zone.input, input);
        let (input, output) = (zone.input.to_str().expect("path"), zone.output.to_str().expect("path"));
        self.ok(&["zone", "add", zone.name, "--policy", zone.name, "--input", input, "--output", output]);
        zone
    }

    fn zone(&self, name: &'static str, role: &'static str) -> Zone {
        Zone {
            name,
            input: self.dir.path().join(format!("{name}zone")),
            output: self.dir.path().join("out").join(format!("{name}signed")),
            role,
            csk: role == "csk",
        }
    }

    /// Starts `signet serve` on the database.
    fn serve(&self, label: &str) -> Serve {
        let command = self.command(&["serve", "--config", self.config.to_str().expect("path")]);
        Serve::start(command, label, Some(self.dir.path().join(format!("serve-{label}.log"))))
    }

    /// The versions the publish command captured for a zone: serial → file.
    fn captured(&self, zone: &Zone) -> BTreeMap<u32, PathBuf> {
        std::fs::read_dir(&self.versions)
            .expect("ls versions")
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let serial = name.strip_prefix(zone.name)?.parse().ok()?;
                Some((serial, entry.path()))
            })
            .collect()
    }
}

impl Drop for Env {
    /// A failing test keeps its directory (database, logs, versions).
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("kept for inspection: {}", self.dir.path().display());
        }
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The parent, played by a thread: it confirms `ds seen` and `ds gone`
/// as soon as `key list` asks for them.
struct Parent {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Parent {
    fn start(env: &Env, zones: &[Zone]) -> Parent {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let base = env.store.signet();
        let envs: Vec<(std::ffi::OsString, std::ffi::OsString)> =
            base.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))).collect();
        let (db, names): (PathBuf, Vec<&'static str>) = (env.db.clone(), zones.iter().map(|z| z.name).collect());
        let thread = std::thread::spawn(move || {
            let signet = |args: &[&str]| {
                let mut command = Command::new(env!("CARGO_BIN_EXE_signet"));
                command.envs(envs.iter().cloned()).env_remove("SIGNET_NOW").arg("--db").arg(&db).args(args);
                command.output().ok()
            };
            let mut done = BTreeSet::new();
            while !flag.load(Ordering::Relaxed) {
                for zone in &names {
                    let Some(list) = signet(&["key", "list", zone, "--format", "json"]) else { continue };
                    let Ok(list) = serde_json::from_slice::<serde_json::Value>(&list.stdout) else { continue };
                    for key in list[0]["keys"].as_array().into_iter().flatten() {
                        let tag = key["keytag"].as_u64().unwrap_or(0).to_string();
                        for todo in key["todo"].as_array().into_iter().flatten().filter_map(|t| t.as_str()) {
                            let verb = if todo.starts_with("submit this DS") {
                                "seen"
                            } else if todo.starts_with("ask the parent to remove") {
                                "gone"
                            } else {
                                continue;
                            };
                            if !done.contains(&(zone.to_string(), tag.clone(), verb)) {
                                let answer = signet(&["ds", verb, zone, "--keytag", &tag]);
                                if answer.is_some_and(|o| o.status.success()) {
                                    eprintln!("parent: ds {verb} {zone} {tag}");
                                    done.insert((zone.to_string(), tag.clone(), verb));
                                }
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        Parent { stop, thread: Some(thread) }
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Changes a zone's input by rename and measures how long the new
/// contents take to be published.
fn publish_latency(zone: &Zone, text: &str, marker: &str, serve: &Serve) -> Duration {
    let before = zone.output_serial();
    write_by_rename(&zone.input, text);
    let renamed = Instant::now();
    let wanted = format!("\"{marker}\"");
    let published = wait_for(Duration::from_secs(30), || {
        let text = zone.output_text()?;
        text.contains(&wanted).then(|| (renamed.elapsed(), soa_serial(&text)))
    });
    let (latency, serial) = published.unwrap_or_else(|waited| {
        panic!("{}: the change to {marker} is not published after {waited:?}\n{}", zone.name, serve.tail())
    });
    assert!(serial > before, "{}: the serial moves on ({before:?} → {serial:?})", zone.name);
    latency
}

/// The key of `role` that is fully in use (DNSKEY and zone signatures
/// omnipresent, goal omnipresent).
fn active_keys(keys: &[serde_json::Value], role: &str) -> Vec<i64> {
    keys.iter()
        .filter(|k| k["role"] == role && k["goal"] == "omnipresent")
        .filter(|k| k["states"]["dnskey"] == "omnipresent" && k["states"]["zrrsig"] == "omnipresent")
        .filter_map(|k| k["id"].as_i64())
        .collect()
}

/// The flags of the apex DNSKEY records of a signed zone file.
fn dnskey_flags(file: &Path, origin: &str) -> Vec<u16> {
    let text = std::fs::read_to_string(file).expect("read version");
    text.lines()
        .filter_map(|line| {
            let tokens: Vec<&str> = line.split_whitespace().collect();
            let at = tokens.iter().take(4).position(|t| *t == "DNSKEY")?;
            (tokens[0].eq_ignore_ascii_case(origin) && tokens[at - 1] != "RRSIG")
                .then(|| tokens.get(at + 1)?.parse().ok())?
        })
        .collect()
}

/// Checks every captured version of a zone with dnssec-verify and
/// kzonecheck; returns their number and the failures.
///
/// One finding of kzonecheck (Knot 3.2) is a peer's limit, not a fault:
/// while a CSK rolls, the DNSKEY RRset holds two keys with the SEP bit
/// and the zone data is signed by one of them (RFC 4035 §2.2 asks one
/// signature per algorithm); kzonecheck then takes both for signing keys
/// and reports "no valid signature for a record" (a different record on
/// each run). Such a version must pass ldns-verify-zone instead, beside
/// dnssec-verify.
fn check_versions(env: &Env, zone: &Zone) -> (usize, usize, Vec<String>) {
    let versions = env.captured(zone);
    let mut failures = Vec::new();
    let mut knot_exempt = 0;
    let describe = |tool: &str, file: &Path, output: &Output| {
        format!(
            "{tool} refuses {} ({}):\n{}{}",
            file.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    for file in versions.values() {
        let mut bind = Command::new("dnssec-verify");
        bind.args(["-q", "-o", zone.name]).args(if zone.csk { &["-z"][..] } else { &[][..] }).arg(file);
        let bind = common::run(&mut bind);
        if !bind.status.success() {
            failures.push(describe("dnssec-verify", file, &bind));
        }
        let knot = common::knot_check(file, zone.name);
        if knot.status.success() {
            continue;
        }
        let flags = dnskey_flags(file, zone.name);
        let rolling_csks = zone.csk && flags.len() > 1 && flags.iter().all(|f| f & 1 == 1);
        let findings = String::from_utf8_lossy(&knot.stdout);
        let only_unverifiable =
            findings.lines().filter(|l| l.starts_with('[')).all(|l| l.contains("no valid signature for a record"));
        if rolling_csks && only_unverifiable && common::have_tool("ldns-verify-zone") {
            let ldns = common::ldns_verify(file);
            if ldns.status.success() {
                knot_exempt += 1;
                continue;
            }
            failures.push(describe("ldns-verify-zone", file, &ldns));
        }
        failures.push(describe("kzonecheck", file, &knot));
    }
    (versions.len(), knot_exempt, failures)
}

#[test]
fn serve_rolls_keys_and_takes_up_changes() {
    let _turn = turn();
    let Some(env) = Env::new("5s") else { return };
    let test_started = Instant::now();
    std::fs::create_dir(env.dir.path().join("out")).expect("mkdir");
    let a = env.add_zone(
        env.zone("a.test.", "zsk"),
        &policy_text(
            "a",
            "algorithm = \"ECDSAP256SHA256\"\nksk-lifetime = \"0\"\nzsk-lifetime = \"40s\"",
            "type = \"nsec3\"",
            "increment",
        ),
        &small_zone("a.test.", "a0", false),
    );
    let b = env.add_zone(
        env.zone("b.test.", "csk"),
        &policy_text("b", "algorithm = \"ED25519\"\ncsk = true\nksk-lifetime = \"50s\"", "type = \"nsec\"", "unixtime"),
        &small_zone("b.test.", "b0", false),
    );
    let c = env.add_zone(
        env.zone("c.test.", "zsk"),
        &policy_text(
            "c",
            "algorithm = \"RSASHA256\"\nbits = 2048\nksk-lifetime = \"0\"\nzsk-lifetime = \"55s\"",
            "type = \"nsec3\"\nopt-out = true",
            "increment",
        ),
        &small_zone("c.test.", "c0", true),
    );
    let zones = [a.clone(), b.clone(), c.clone()];
    let parent = Parent::start(&env, &zones);
    let mut serve = env.serve("first");
    let serve_started = Instant::now();

    // Every zone is published, and its first key of the rolling role noted.
    let mut first_keys = BTreeMap::new();
    for zone in &zones {
        wait_for(Duration::from_secs(30), || zone.output_serial())
            .unwrap_or_else(|w| panic!("{} is not published after {w:?}\n{}", zone.name, serve.tail()));
        let keys = env.keys(zone.name);
        let ids: Vec<i64> = keys.iter().filter(|k| k["role"] == zone.role).filter_map(|k| k["id"].as_i64()).collect();
        assert_eq!(ids.len(), 1, "{}: one {} at first: {keys:#?}", zone.name, zone.role);
        first_keys.insert(zone.name, ids[0]);
    }
    eprintln!("first publications after {:?}", serve_started.elapsed());
    // Serials seen in the outputs: each must have been captured.
    let mut observed: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();

    // 7. A second serve on the same database is refused, naming the pid.
    let mut second = env.command(&["serve", "--config", env.config.to_str().expect("path")]);
    let refused = common::run_bounded(&mut second);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a second serve is refused: {refused:?}");
    assert!(
        stderr.contains(&format!("pid {}", serve.pid)),
        "the refusal names the running serve's pid {}: {stderr}",
        serve.pid
    );
    assert!(serve.running(), "the first serve still runs\n{}", serve.tail());
    let service = &env.status(a.name)["service"];
    assert_eq!(service["pid"].as_u64(), Some(u64::from(serve.pid)), "status names the serve: {service}");

    // 2. Input changes (by rename) are published within 2 s.
    let mut latencies = Vec::new();
    for (round, zone) in zones.iter().enumerate() {
        let marker = format!("{}1", &zone.name[..1]);
        let latency = publish_latency(zone, &small_zone(zone.name, &marker, zone.name == c.name), &marker, &serve);
        eprintln!("{}: input change published in {latency:?} (round {round})", zone.name);
        observed.entry(zone.name).or_default().extend(zone.output_serial());
        latencies.push(latency);
    }
    for (zone, latency) in zones.iter().zip(&latencies) {
        assert!(*latency <= CHANGE_LATENCY, "{}: change published after {latency:?} (more than 2 s)", zone.name);
    }

    // 3. A broken input keeps the old output, byte for byte, and shows in
    // status; the fixed input is published.
    // Wait for a quiet moment: no key event due within 16 s (the broken
    // phase below takes up to 13: a key event in it would publish the
    // held input and end the failure), nothing
    // asked of the parent (its answer would wake a run), no report
    // waiting to be taken in (status shows one as due now), and the
    // output file is the version last published (written after the
    // version is served).
    wait_for(Duration::from_secs(60), || {
        let status = env.status(b.name);
        let at = status["next_wake"]["at"].as_i64();
        // Both read: status reads the zone's row and its runs one after
        // the other, so a commit between them shows a run "published"
        // beside a serial not yet set (and no file yet to match it).
        let written = status["published_serial"].as_u64().is_some_and(|s| Some(s) == b.output_serial().map(u64::from));
        let nothing_asked = status["todo"].as_array().is_some_and(Vec::is_empty);
        (written && nothing_asked && at.is_none_or(|at| at > unix_now() + 16)).then_some(())
    })
    .unwrap_or_else(|w| panic!("b.test. never had 16 s without a key event ({w:?})"));
    let before = std::fs::read(&b.output).expect("read output");
    let broken_at = unix_now();
    write_by_rename(&b.input, &small_zone(b.name, "b2", false).replace("www A 192.0.2.80", "www A 192.0.2.800"));
    let failure = wait_for(Duration::from_secs(10), || {
        let status = env.status(b.name);
        let failures = status["consecutive_failures"].as_u64().unwrap_or(0);
        let at = status["last_failure"]["at"].as_i64().unwrap_or(0);
        (failures > 0 && at >= broken_at).then_some(status)
    })
    .unwrap_or_else(|w| panic!("b.test.: the broken input is not reported after {w:?}\n{}", serve.tail()));
    eprintln!("b.test.: broken input reported: {}", failure["last_failure"]);
    assert!(
        failure["last_failure"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "the failure says why: {failure:#}"
    );
    // Through a retry or two (retry-min 1 s).
    std::thread::sleep(Duration::from_secs(3));
    let status = env.status(b.name);
    assert!(status["consecutive_failures"].as_u64() > Some(0), "still failing: {status:#}");
    assert_eq!(std::fs::read(&b.output).expect("read output"), before, "b.test.: the old output stays byte for byte");
    let latency = publish_latency(&b, &small_zone(b.name, "b3", false), "b3", &serve);
    eprintln!("b.test.: fixed input published in {latency:?}");
    assert!(latency <= CHANGE_LATENCY, "b.test.: the fixed input published after {latency:?}");
    observed.entry(b.name).or_default().extend(b.output_serial());
    let status = wait_for(Duration::from_secs(5), || {
        let status = env.status(b.name);
        (status["consecutive_failures"].as_u64() == Some(0)).then_some(status)
    })
    .unwrap_or_else(|w| panic!("b.test.: consecutive_failures not back to 0 after {w:?}"));
    assert_eq!(status["last_run"]["result"], "published", "{status:#}");

    // 1. Every zone rolls its ZSK (CSK) on its own: a new one active, the
    // first removed or retiring.
    for zone in &zones {
        let first = first_keys[zone.name];
        let rolled = wait_for(Duration::from_secs(120).saturating_sub(serve_started.elapsed()), || {
            let keys = env.keys(zone.name);
            let first_gone = keys.iter().all(|k| k["id"] != first || k["goal"] == "hidden");
            let new = active_keys(&keys, zone.role).into_iter().find(|&id| id != first);
            new.filter(|_| first_gone)
        })
        .unwrap_or_else(|w| {
            panic!("{}: no {} rollover after {w:?}: {:#?}\n{}", zone.name, zone.role, env.keys(zone.name), serve.tail())
        });
        eprintln!("{}: {} {first} rolled to {rolled} after {:?}", zone.name, zone.role, serve_started.elapsed());
        observed.entry(zone.name).or_default().extend(zone.output_serial());
    }

    // 4. An operator rollover through the CLI is taken up at once.
    wait_for(Duration::from_secs(60), || {
        let keys = env.keys(a.name);
        let status = env.status(a.name);
        let quiet = status["next_wake"]["at"].as_i64().is_none_or(|at| at > unix_now() + 8);
        (quiet && keys.iter().filter(|k| k["role"] == "zsk").count() == 1).then_some(())
    })
    .unwrap_or_else(|w| panic!("a.test. never had one ZSK and 8 s without a key event ({w:?})"));
    let before: BTreeSet<i64> = env.keys(a.name).iter().filter_map(|k| k["id"].as_i64()).collect();
    env.ok(&["key", "rollover", a.name, "--zsk"]);
    let asked = Instant::now();
    let new = wait_for(Duration::from_secs(8), || {
        let keys = env.keys(a.name);
        keys.iter().filter(|k| k["role"] == "zsk").filter_map(|k| k["id"].as_i64()).find(|id| !before.contains(id))
    })
    .unwrap_or_else(|w| panic!("a.test.: the operator's rollover is not taken up after {w:?}\n{}", serve.tail()));
    eprintln!("a.test.: operator rollover took up: key {new} after {:?}", asked.elapsed());
    let new_published = wait_for(Duration::from_secs(5), || {
        let keys = env.keys(a.name);
        let key = keys.iter().find(|k| k["id"] == new)?;
        (key["states"]["dnskey"] != "hidden").then_some(())
    });
    assert!(new_published.is_ok(), "a.test.: the new ZSK {new} is published: {:#?}", env.keys(a.name));

    // 6. kill -9 (just after an input change) and a restart: the change is
    // published and the key events go on.
    wait_for(Duration::from_secs(10), || {
        let status = env.status(c.name);
        status["next_wake"]["at"].as_i64().is_none_or(|at| at > unix_now() + 3).then_some(())
    })
    .ok();
    write_by_rename(&c.input, &small_zone(c.name, "c2", true));
    std::thread::sleep(Duration::from_millis(100));
    let killed_pid = serve.pid;
    serve.kill_9();
    let before_restart = c.output_text().is_some_and(|t| t.contains("\"c2\""));
    eprintln!("c.test.: the change was published before kill -9: {before_restart}");
    let killed_at = unix_now();
    let status = env.status(c.name);
    eprintln!("after kill -9: c.test. status {status}");
    let service = &status["service"];
    assert!(
        service.is_null() || service["pid"].as_u64() == Some(u64::from(killed_pid)),
        "status names no other serve: {service}"
    );
    // A version published just before the kill may have missed its
    // publish command: the serials seen so far must all be captured.
    std::thread::sleep(Duration::from_secs(1));
    let mut serve = env.serve("after-kill-9");
    let restarted = Instant::now();
    let published = wait_for(Duration::from_secs(15), || c.output_text()?.contains("\"c2\"").then_some(()));
    published.unwrap_or_else(|w| {
        panic!("c.test.: the change made before kill -9 is not published after the restart ({w:?})\n{}", serve.tail())
    });
    eprintln!("c.test.: the change made before kill -9 published {:?} after the restart", restarted.elapsed());
    observed.entry(c.name).or_default().extend(c.output_serial());
    for zone in &zones {
        let transition = wait_for(Duration::from_secs(60), || {
            env.audit(zone.name)
                .into_iter()
                .find(|e| e["event"] == "transition" && e["at"].as_i64().is_some_and(|at| at > killed_at))
        })
        .unwrap_or_else(|w| {
            panic!(
                "{}: no key transition after the restart ({w:?}): {:#?}\n{}",
                zone.name,
                env.keys(zone.name),
                serve.tail()
            )
        });
        eprintln!("{}: after the restart: {}", zone.name, transition["message"]);
        observed.entry(zone.name).or_default().extend(zone.output_serial());
    }

    // SIGTERM: a clean stop.
    serve.signal("TERM");
    let stopped = serve.wait(Duration::from_secs(10));
    assert!(stopped.is_some_and(|s| s.success()), "serve ends with 0 on SIGTERM: {stopped:?}\n{}", serve.tail());
    drop(parent);

    // 1. Every version published was captured and passes both validators.
    let mut refused = Vec::new();
    for zone in &zones {
        let captured = env.captured(zone);
        let serials: BTreeSet<u32> = captured.keys().copied().collect();
        let missing: Vec<_> = observed.get(zone.name).into_iter().flatten().filter(|s| !serials.contains(s)).collect();
        assert!(
            missing.is_empty(),
            "{}: serials published but not captured: {missing:?} (captured {serials:?})",
            zone.name
        );
        let last = zone.output_serial();
        assert!(last.is_some_and(|s| serials.contains(&s)), "{}: the last version {last:?} is captured", zone.name);
        let (count, exempt, failures) = check_versions(&env, zone);
        eprintln!(
            "{}: {count} versions checked, {} refused by a validator; {exempt} of them (CSK rollover) checked by ldns-verify-zone for kzonecheck",
            zone.name,
            failures.len()
        );
        assert!(count >= 3, "{}: only {count} versions published: {serials:?}", zone.name);
        refused.extend(failures);
    }
    assert!(refused.is_empty(), "published versions refused by dnssec-verify or kzonecheck:\n{}", refused.join("\n"));
    eprintln!("serve_rolls_keys_and_takes_up_changes: {:?}; change latencies {latencies:?}", test_started.elapsed());
}

#[test]
fn serve_stops_mid_run_and_restarts() {
    let _turn = turn();
    let Some(env) = Env::new("1s") else { return };
    let test_started = Instant::now();
    std::fs::create_dir(env.dir.path().join("out")).expect("mkdir");
    const NAMES: usize = 10_000;
    // Every run verifies all its signatures (no gate memo), so that a run
    // lasts long enough to be stopped in the middle.
    let big_policy = policy_text(
        "big",
        "algorithm = \"ECDSAP256SHA256\"\nksk-lifetime = \"0\"\nzsk-lifetime = \"0\"",
        "type = \"nsec\"",
        "increment",
    ) + "[gate]\nfull-verification-interval = 0\n";
    let big = env.add_zone(env.zone("big.test.", "zsk"), &big_policy, &big_zone("big.test.", "v0", NAMES));
    let mut serve = env.serve("first");
    // The first publication and the key states that follow it (seconds
    // apart), until nothing is due and the output file (written after the
    // version is served) has the last version.
    wait_for(Duration::from_secs(90), || {
        let status = env.status(big.name);
        let quiet = status["next_wake"]["at"].as_i64().is_none_or(|at| at > unix_now() + 60);
        // Both read: status reads the zone's row and its runs one after
        // the other, so a commit between them shows a run "published"
        // beside a serial not yet set (and no file yet to match it).
        let written =
            status["published_serial"].as_u64().is_some_and(|s| Some(s) == big.output_serial().map(u64::from));
        (quiet && written && status["last_run"]["result"] == "published").then_some(status)
    })
    .unwrap_or_else(|w| {
        panic!("big.test. does not settle after {w:?}: {:#}\n{}", env.status("big.test."), serve.tail())
    });
    eprintln!("big.test.: settled after {:?}", test_started.elapsed());

    // 5. SIGTERM in the middle of a run.
    let old = std::fs::read(&big.output).expect("read output");
    let lines_before = serve.lines().len();
    write_by_rename(&big.input, &big_zone(big.name, "v1", NAMES));
    let started = wait_for(Duration::from_secs(10), || {
        let lines = serve.lines();
        lines[lines_before.min(lines.len())..].iter().find(|l| is_run_start(l, big.name)).cloned()
    })
    .unwrap_or_else(|w| panic!("no run of big.test. starts after {w:?}\n{}", serve.tail()));
    eprintln!("run started: {started}");
    std::thread::sleep(Duration::from_millis(300));
    serve.signal("TERM");
    let signalled = Instant::now();
    let status = serve.wait(Duration::from_secs(1 + 5));
    let took = signalled.elapsed();
    assert!(status.is_some(), "serve still runs {took:?} after SIGTERM (stop-timeout 1 s)\n{}", serve.tail());
    let signal = status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit after SIGTERM mid-run: {status:?}, killed by signal {signal:?}\n{}",
        serve.tail()
    );
    eprintln!("SIGTERM mid-run: exit 0 after {took:?}");
    assert!(
        std::fs::read(&big.output).expect("read output") == old,
        "the run stopped by SIGTERM must not publish: the old output stays byte for byte\n{}",
        serve.tail()
    );
    let verified = env.signet(&["verify", big.output.to_str().expect("path"), "--origin", big.name]);
    common::expect_success("signet verify of the output after SIGTERM", &verified);
    // The run saw the stop and dropped its candidate: nothing is left.
    let left = leftovers(&big);
    assert!(left.is_empty(), "files left beside the output after SIGTERM: {left:?}");
    assert!(
        serve.lines().iter().any(|l| l.contains("abandoned") && l.contains(big.name)),
        "the run under way says it was abandoned\n{}",
        serve.tail()
    );
    let status = env.status(big.name);
    assert!(
        status["service"].is_null() || status["service"]["pid"].as_u64() != Some(u64::from(serve.pid)),
        "status still names the stopped serve: {status:#}"
    );
    let keys = env.keys(big.name);
    assert!(!keys.is_empty(), "key list works after SIGTERM");

    // A restart takes over and publishes the change.
    let mut serve = env.serve("after-sigterm");
    let restarted = Instant::now();
    let limit = Duration::from_secs(60);
    wait_for(limit, || big.output_text()?.contains("\"v1\"").then_some(())).unwrap_or_else(|w| {
        panic!("big.test.: the change is not published after the restart ({w:?})\n{}", serve.tail())
    });
    eprintln!("big.test.: published {:?} after the restart", restarted.elapsed());
    // The run that published v1 did the work of the one stopped: it must
    // have lasted well past the 300 ms at which SIGTERM came (1.25 s on an
    // idle machine, 2 s on a busy one), or the test proves nothing. The
    // "abandoned" line asserted above is the proof that it was cut.
    let run_seconds = env.status(big.name)["last_run"]["seconds"].as_f64().unwrap_or(0.0);
    eprintln!("big.test.: the run that published v1 took {run_seconds:.2} s");
    assert!(run_seconds >= 0.8, "a run of big.test. takes {run_seconds} s: too short to stop in the middle");
    wait_no_leftovers(&big, limit, "after the restart");
    let took_over = serve.lines().into_iter().find(|l| l.contains("lock taken over"));
    eprintln!("after the restart: {}", took_over.as_deref().unwrap_or("no stale lock to take over"));

    // 6. kill -9 in the middle of a run; the next serve publishes the change.
    let old = std::fs::read(&big.output).expect("read output");
    let lines_before = serve.lines().len();
    write_by_rename(&big.input, &big_zone(big.name, "v2", NAMES));
    wait_for(Duration::from_secs(10), || {
        let lines = serve.lines();
        lines[lines_before.min(lines.len())..].iter().find(|l| is_run_start(l, big.name)).cloned()
    })
    .unwrap_or_else(|w| panic!("no run of big.test. starts after {w:?}\n{}", serve.tail()));
    std::thread::sleep(Duration::from_millis(300));
    serve.kill_9();
    assert!(std::fs::read(&big.output).expect("read output") == old, "kill -9 mid-run: the old output stays");
    let verified = env.signet(&["verify", big.output.to_str().expect("path"), "--origin", big.name]);
    common::expect_success("signet verify of the output after kill -9", &verified);
    let mut serve = env.serve("after-kill-9");
    let restarted = Instant::now();
    wait_for(limit, || big.output_text()?.contains("\"v2\"").then_some(())).unwrap_or_else(|w| {
        panic!("big.test.: the change is not published after kill -9 and a restart ({w:?})\n{}", serve.tail())
    });
    eprintln!("big.test.: published {:?} after kill -9 and a restart", restarted.elapsed());
    wait_no_leftovers(&big, limit, "after kill -9 and a restart");
    let verified = env.signet(&["verify", big.output.to_str().expect("path"), "--origin", big.name]);
    common::expect_success("signet verify of the output after the restart", &verified);
    serve.signal("TERM");
    let stopped = serve.wait(Duration::from_secs(6));
    assert!(stopped.is_some_and(|s| s.success()), "idle serve ends with 0 on SIGTERM: {stopped:?}");
    let versions = env.captured(&big).len();
    assert!(versions >= 3, "big.test.: {versions} versions captured");
    eprintln!("serve_stops_mid_run_and_restarts: {:?}", test_started.elapsed());
}

/// The files beside a zone's output, other than the output.
/// Waits until nothing but the output is left beside it: the version a
/// publication replaced is kept there until the publication is recorded.
fn wait_no_leftovers(zone: &Zone, limit: Duration, when: &str) {
    wait_for(limit, || leftovers(zone).is_empty().then_some(()))
        .unwrap_or_else(|w| panic!("files left beside the output {when} ({w:?}): {:?}", leftovers(zone)));
}

fn leftovers(zone: &Zone) -> Vec<String> {
    let output = zone.output.file_name().expect("file name");
    std::fs::read_dir(zone.output.parent().expect("dir"))
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != output)
        .map(|n| n.to_string_lossy().into_owned())
        .collect()
}

/// Is this log line serve's note that a run of `zone` starts?
fn is_run_start(line: &str, zone: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.contains(zone) && lower.contains("start")
}
