//! Secrets stay secret: a PIN written into a key URI, in any spelling, on
//! the command line or in a policy, is refused without being printed
//! (whatever the log level) or stored; the database is private (0600)
//! whatever mode the file had; the commands signet starts (serve's
//! `publish-command`, the policy's `submit-command`) get a cleaned
//! environment, without `SIGNET_PKCS11_PIN` or anything else not on the
//! documented list.

use crate::common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

const PIN: &str = "S3cretPin4711";

/// Every way a PIN can be written into a URI: path or query, any case,
/// the attribute name percent-encoded, after another error.
fn spellings() -> Vec<String> {
    [
        "pkcs11:token=signet;id=%01?pin-value={pin}",
        "pkcs11:token=signet;id=%01;pin-value={pin}",
        "pkcs11:token=signet;pin-value={pin}",
        "pkcs11:pin-value={pin};token=signet",
        "pkcs11:token=signet;id=%01?PIN-VALUE={pin}",
        "pkcs11:token=signet;id=%01?Pin-Value={pin}&pin-source=env:X",
        "pkcs11:token=signet;id=%01?pin%2Dvalue={pin}",
        "pkcs11:token=signet;id=%01;PIN%2dVALUE={pin}",
        "pkcs11:token=signet;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value={pin}",
        "pkcs11:token=signet;id=%zz?pin-value={pin}",
        "pkcs11:token=signet%3Bpin-value%3D{pin}",
    ]
    .iter()
    .map(|s| s.replace("{pin}", PIN))
    .collect()
}

/// signet at the most verbose, in `dir`, with its database there.
fn signet(dir: &Path, args: &[&str]) -> Output {
    common::run(
        common::signet()
            .current_dir(dir)
            .env("SIGNET_LOG", "trace")
            .env("SIGNET_PKCS11_PIN", "1234")
            .args(["-v", "-v", "-v", "--db"])
            .arg(dir.join("signet.db"))
            .args(args),
    )
}

/// The command was refused (exit 2) and printed nothing of the PIN.
fn assert_refused_quietly(what: &str, output: &Output) {
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!stdout.contains(PIN) && !stderr.contains(PIN), "{what} printed the PIN:\n{stdout}\n{stderr}");
    assert_eq!(output.status.code(), Some(2), "{what} must be refused:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
}

fn database_files(dir: &Path) -> Vec<PathBuf> {
    ["signet.db", "signet.db-wal", "signet.db-shm"].iter().map(|f| dir.join(f)).filter(|f| f.exists()).collect()
}

#[test]
fn a_pin_in_a_uri_is_refused_unprinted_and_unstored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    common::expect_success("signet init", &signet(dir, &["init"]));
    let zone = common::realistic_zone();
    let zone = zone.to_str().expect("utf-8");
    let policy = common::write_policy(dir, "plain", "13", "nsec", "");
    let policy = policy.to_str().expect("utf-8");
    for (i, uri) in spellings().iter().enumerate() {
        let sign = ["sign", zone, "--origin", "example.", "--policy", policy, "-o", "out.zone", "--key"];
        for key in [format!("{uri}:ksk"), uri.clone(), format!("file:k.pk8 {uri}:zsk"), format!("{uri}:nonsense")] {
            assert_refused_quietly(&format!("sign --key {i}"), &signet(dir, &[&sign[..], &[&key]].concat()));
        }
        let generate = ["key", "generate", "--algorithm", "13", "--role", "ksk", "--origin", "example.", "--store"];
        assert_refused_quietly(&format!("key generate {i}"), &signet(dir, &[&generate[..], &[uri]].concat()));
        let file = dir.join(format!("pin{i}.toml"));
        std::fs::write(&file, format!("[keys]\nalgorithm = 13\nstore = \"{uri}\"\n")).expect("write policy");
        let file = file.to_str().expect("utf-8");
        let window = ["--origin", "example.", "--from", "2027-01-01T00:00:00Z", "--until", "2027-01-02T00:00:00Z"];
        let dry_run = [&["dry-run", "--policy", file][..], &window].concat();
        for command in [&["policy", "check", file][..], &["policy", "import", file], &dry_run] {
            let output = signet(dir, command);
            assert_refused_quietly(&format!("{command:?} ({i})"), &output);
            assert!(String::from_utf8_lossy(&output.stderr).contains("keys.store"), "{command:?} names the field");
        }
        let dry_run = [&["dry-run", "--policy", policy][..], &window, &["--key-store", uri]].concat();
        assert_refused_quietly(&format!("dry-run --key-store {i}"), &signet(dir, &dry_run));
    }
    common::expect_success("zone list", &signet(dir, &["zone", "list"]));
    for file in database_files(dir) {
        let bytes = std::fs::read(&file).expect("read the database");
        assert!(!bytes.windows(PIN.len()).any(|w| w == PIN.as_bytes()), "{} holds the PIN", file.display());
    }
}

/// A database that exists with mode 0644 (copied under umask 022, say)
/// ends up 0600, with its WAL and shared-memory files.
#[test]
fn a_world_readable_database_is_made_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    common::expect_success("signet init", &signet(dir, &["init"]));
    // SQLite removes its side files when the last connection closes; an
    // empty WAL and shared-memory file is what a crash can leave.
    for file in ["signet.db", "signet.db-wal", "signet.db-shm"].map(|f| dir.join(f)) {
        if !file.exists() {
            std::fs::write(&file, b"").expect("write");
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod 0644");
    }
    let output = signet(dir, &["zone", "list"]);
    common::expect_success("zone list", &output);
    assert!(String::from_utf8_lossy(&output.stderr).contains("made 0600"), "the operator is told");
    for file in database_files(dir) {
        let mode = std::fs::metadata(&file).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", file.display());
    }
    // An empty file made 0644 beforehand and given to init ends up 0600 too.
    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").expect("write");
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o644)).expect("chmod 0644");
    common::expect_success("init", &common::run(common::signet().arg("--db").arg(&empty).arg("init")));
    assert_eq!(std::fs::metadata(&empty).expect("stat").permissions().mode() & 0o777, 0o600);
}

/// The environment a command wrote with `env` (one `NAME=value` a line;
/// a line without a name, the rest of a value, is skipped).
fn environment_in(file: &Path) -> std::collections::BTreeMap<String, String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    text.lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(name, _)| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// A shell command that writes its environment to `file`, by rename.
fn dump_environment(file: &Path) -> String {
    let file = file.display();
    format!("env > '{file}.part' && mv '{file}.part' '{file}'")
}

/// `signet serve`, its keys in SoftHSM with `SIGNET_PKCS11_PIN` in its
/// environment (as the systemd unit in docs/operations.md has it), publishes a zone and
/// submits its DS: the publish-command and the submit-command each see
/// the documented variables and nothing else: no PIN, no SoftHSM
/// configuration, no variable off the list.
#[test]
fn the_pin_stays_with_signet_child_commands_get_a_cleaned_environment() {
    if !common::have_tool("softhsm2-util") {
        eprintln!("skipped: softhsm2-util is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    let store = common::Store::softhsm(&base.join("hsm"));
    let (publish_env, submit_env) = (base.join("publish.env"), base.join("submit.env"));
    let policy = format!(
        "[keys]\nalgorithm = \"ECDSAP256SHA256\"\ncsk = true\nksk-lifetime = \"0\"\ndnskey-ttl = \"1s\"\n\
         publish-safety = \"1s\"\nretire-safety = \"1s\"\nstore = \"{}\"\n\
         [signatures]\nvalidity = \"14d\"\ndnskey-validity = \"14d\"\nrefresh = \"5d\"\njitter = \"1h\"\n\
         [zone]\npropagation-delay = \"1s\"\nmax-ttl = \"1s\"\n\
         [parent]\nds-ttl = \"1s\"\npropagation-delay = \"1s\"\nregistration-delay = \"1s\"\n\
         check-interval-min = \"1s\"\ncheck-interval = \"2s\"\nsubmit-command = {:?}\n",
        store.uri(),
        dump_environment(&submit_env)
    );
    std::fs::write(base.join("p.toml"), policy).expect("write the policy");
    let input = base.join("example.zone");
    std::fs::write(&input, "$TTL 1\nexample. IN SOA ns.example. h.example. 1 60 60 600 1\nexample. NS ns.example.\nns.example. A 192.0.2.1\n")
        .expect("write the input");
    let config = base.join("serve.toml");
    let publish = format!("[\"sh\", \"-c\", {:?}]", dump_environment(&publish_env));
    std::fs::write(&config, format!("[serve]\nretry-min = \"1s\"\nretry-max = \"4s\"\npublish-command = {publish}\n"))
        .expect("write the config");
    let signet = || {
        let mut command = store.signet();
        command.env_remove("SIGNET_NOW").arg("--db").arg(base.join("signet.db"));
        command
    };
    let ok = |args: &[&str]| common::expect_success(&args.join(" "), &common::run(signet().args(args)));
    ok(&["init"]);
    ok(&["policy", "import", base.join("p.toml").to_str().expect("path"), "--name", "p"]);
    let output = base.join("example.signed");
    let (input, output) = (input.to_str().expect("path"), output.to_str().expect("path"));
    ok(&["zone", "add", "example.", "--policy", "p", "--input", input, "--output", output]);

    // serve's environment: the PIN (from Store::signet), SoftHSM's
    // configuration, a variable off the list, and some on it.
    let mut command = signet();
    command
        .env("SIGNET_PKCS11_PIN", common::TEST_PIN)
        .env("UNLISTED_SECRET", "do-not-pass")
        .env("SIGNET_LOG", "info")
        .env("TZ", "UTC")
        .env("LANG", "C.UTF-8")
        .env("LC_TIME", "C")
        .args(["serve", "--config", config.to_str().expect("path")]);
    let serve = common::serve::Serve::start(command, "secrets", Some(base.join("serve.log")));
    let waited = common::serve::wait_for(std::time::Duration::from_secs(60), || {
        (publish_env.exists() && submit_env.exists()).then_some(())
    });
    if let Err(waited) = waited {
        panic!("no publish-command and submit-command after {waited:?}:\n{}", serve.tail());
    }
    serve.stop();

    let passed = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR"];
    // What the shell (dash, bash) adds of its own.
    let shell = ["PWD", "OLDPWD", "SHLVL", "_"];
    for (file, own) in
        [(&publish_env, &["SIGNET_ZONE", "SIGNET_SERIAL", "SIGNET_OUTPUT"][..]), (&submit_env, &["SIGNET_ZONE"])]
    {
        let environment = environment_in(file);
        let what = format!("{}: {environment:#?}", file.display());
        assert!(!environment.contains_key("SIGNET_PKCS11_PIN"), "the PIN reached a command: {what}");
        assert!(!environment.values().any(|v| v == common::TEST_PIN), "the PIN's value reached a command: {what}");
        for name in ["SOFTHSM2_CONF", "UNLISTED_SECRET", "SIGNET_LOG"] {
            assert!(!environment.contains_key(name), "{name} reached a command: {what}");
        }
        let strays: Vec<&String> = environment
            .keys()
            .filter(|name| {
                let name = name.as_str();
                !passed.contains(&name) && !own.contains(&name) && !shell.contains(&name) && !name.starts_with("LC_")
            })
            .collect();
        assert!(strays.is_empty(), "variables off the list: {strays:?} in {what}");
        for name in own.iter().chain(&["PATH", "TZ", "LANG", "LC_TIME"]) {
            assert!(environment.contains_key(*name), "{name} is missing: {what}");
        }
        assert_eq!(environment["SIGNET_ZONE"], "example.", "{what}");
        assert_eq!((environment["TZ"].as_str(), environment["LC_TIME"].as_str()), ("UTC", "C"), "{what}");
    }
}
