//! The review hook (issue 28) through `signet serve --listen`: one zone,
//! a hook script written by the test whose verdict a file chooses, and
//! the served serial read over DNS. Each test publishes a first version
//! (approved), changes the input and shows what became of the second:
//!
//! - `review_approves`: exit 0, the new serial is served;
//! - `review_rejects`: exit 1, the old serial stays served, the output and
//!   the journal unchanged, status names the hook's reason; the service
//!   does not ask again; an operator's approval overrules it;
//! - `review_times_out`: the hook sleeps past its 1 s: killed with its
//!   process group, nothing published;
//! - `review_crashes`: the hook dies of SIGSEGV: nothing published;
//! - `review_waits_for_the_operator`: exit 75: pending in status; an
//!   approve of another serial is refused; `signet zone approve` publishes
//!   that serial; another change and `signet zone reject` keeps it off.
//!
//! `review_decisions_by_hand`: through `signet sign` (exit codes 0, 3,
//! 75): a decision the newest review does not allow is refused naming
//! the one that would apply; an operator overrules the hook's rejection,
//! and decides a review that waits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use crate::common::serve::{Serve, wait_for, write_by_rename};
use crate::common::{self, Store, dns_servers, run};

const ZONE: &str = "example.";
/// How long a state may take to come (runs of a small zone take well
/// under a second).
const WITHIN: Duration = Duration::from_secs(20);

/// The hook: writes its environment beside it, adds the serial offered
/// to `calls` (one line per call), checks the candidate is
/// a zone file, then does what the file `mode` says.
const HOOK: &str = r#"#!/bin/sh
dir=$(dirname "$0")
env > "$dir/env.$SIGNET_SERIAL"
echo "$SIGNET_SERIAL" >> "$dir/calls"
grep -q SOA "$SIGNET_CANDIDATE" || { echo "no zone in $SIGNET_CANDIDATE" >&2; exit 2; }
case "$(cat "$dir/mode")" in
  approve) echo "looks fine" >&2; exit 0 ;;
  reject) echo "checking" >&2; echo "too many deletions" >&2; exit 1 ;;
  sleep) echo $$ > "$dir/sleeper.pid"; sleep 30; exit 0 ;;
  crash) kill -SEGV $$ ;;
  wait) echo "needs a human" >&2; exit 75 ;;
esac
exit 9
"#;

/// A database with one zone whose hook is the script above, and a serve.
struct Env {
    dir: tempfile::TempDir,
    store: Store,
    db: PathBuf,
    input: PathBuf,
    output: PathBuf,
    listen: SocketAddr,
    serve: Option<Serve>,
}

fn zone_text(serial: u32, hosts: u32) -> String {
    let mut text = format!(
        "$TTL 3600\n@ IN SOA ns.example. hostmaster.example. {serial} 7200 3600 1209600 300\n@ IN NS ns.example.\n\
         ns IN A 192.0.2.1\n"
    );
    for n in 0..hosts {
        text.push_str(&format!("host{n} IN A 192.0.2.{}\n", n + 10));
    }
    text
}

impl Env {
    fn new(timeout: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::soft(&dir.path().join("keys"));
        let env = Env {
            db: dir.path().join("signet.db"),
            input: dir.path().join("example.zone"),
            output: dir.path().join("example.signed"),
            listen: dns_servers::free_addr(dns_servers::random_base()(3)),
            store,
            dir,
            serve: None,
        };
        env.ok(&["init"]);
        let policy = env.path("p.toml");
        std::fs::write(&policy, common::steady_policy(&env.store, "increment")).expect("write policy");
        env.ok(&["policy", "import", policy.to_str().expect("path"), "--name", "p"]);
        write_by_rename(&env.input, &zone_text(1, 1));
        let (input, output) = (env.input.to_str().expect("path"), env.output.to_str().expect("path"));
        env.ok(&["zone", "add", ZONE, "--policy", "p", "--input", input, "--output", output]);
        env.ok(&["zone", "acl", "add", ZONE, "127.0.0.0/8"]);
        let hook = env.path("hook.sh");
        std::fs::write(&hook, HOOK).expect("write hook");
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        env.set_mode("approve");
        env.ok(&["zone", "review", ZONE, "--timeout", timeout, "--", hook.to_str().expect("path")]);
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn signet(&self, args: &[&str]) -> Output {
        run(&mut self.store.on_db(&self.db, args))
    }

    fn ok(&self, args: &[&str]) -> Output {
        self.store.ok_on(&self.db, args)
    }

    fn set_mode(&self, mode: &str) {
        write_by_rename(&self.path("mode"), mode);
    }

    fn start_serve(&mut self) {
        let config = self.path("serve.toml");
        std::fs::write(
            &config,
            "[serve]\npoll-interval = \"100ms\"\ndb-poll-interval = \"200ms\"\nretry-min = \"1s\"\nretry-max = \"2s\"\n\
             stop-timeout = \"5s\"\n",
        )
        .expect("write the serve config");
        let listen = self.listen.to_string();
        let command =
            self.store.on_db(&self.db, &["serve", "--config", config.to_str().expect("path"), "--listen", &listen]);
        self.serve = Some(Serve::start(command, "review", Some(self.path("serve.log"))));
    }

    fn serve(&self) -> &Serve {
        self.serve.as_ref().expect("serve runs")
    }

    /// `signet status ZONE --format json`: the zone's object.
    fn status(&self) -> serde_json::Value {
        let output = self.ok(&["status", ZONE, "--format", "json"]);
        let all: serde_json::Value = serde_json::from_slice(&output.stdout).expect("status JSON");
        all.as_array().and_then(|a| a.first()).cloned().expect("the zone in status")
    }

    fn served(&self) -> Option<u32> {
        dns_servers::soa_serial(self.listen, ZONE)
    }

    /// Waits until the listener serves `serial`.
    fn wait_served(&self, serial: u32) {
        wait_for(WITHIN, || self.served().filter(|s| *s == serial)).unwrap_or_else(|waited| {
            panic!("serial {serial} not served after {waited:?} (served {:?})\n{}", self.served(), self.context())
        });
    }

    /// Waits until the newest review is of `serial` with `verdict`, and
    /// returns it.
    fn wait_review(&self, serial: u32, verdict: &str) -> serde_json::Value {
        wait_for(WITHIN, || {
            let review = self.status()["last_review"].clone();
            (review["serial"].as_u64() == Some(u64::from(serial)) && review["verdict"] == verdict).then_some(review)
        })
        .unwrap_or_else(|waited| panic!("no {verdict} review of serial {serial} after {waited:?}\n{}", self.context()))
    }

    fn context(&self) -> String {
        let status = self.signet(&["status", ZONE]);
        let tail = self.serve.as_ref().map_or_else(String::new, Serve::tail);
        format!("{}\n{tail}", String::from_utf8_lossy(&status.stdout))
    }

    /// Starts serve, waits for the first version (approved) over DNS and
    /// returns its serial; then sets the hook's `mode` and changes the
    /// input: the second version is offered.
    fn first_then_change(&mut self, mode: &str) -> u32 {
        self.start_serve();
        self.wait_served(2);
        self.wait_review(2, "approved");
        self.set_mode(mode);
        write_by_rename(&self.input, &zone_text(2, 2));
        2
    }

    /// The serials the hook was offered, one per call, in order.
    fn hook_calls(&self) -> Vec<u32> {
        let calls = std::fs::read_to_string(self.path("calls")).unwrap_or_default();
        calls.lines().filter_map(|line| line.trim().parse().ok()).collect()
    }

    /// The output file and the journal still end at `serial`.
    fn nothing_published_after(&self, serial: u32) {
        assert_eq!(common::published_serial(&self.output), u64::from(serial), "the output is unchanged");
        let status = self.status();
        assert_eq!(status["published_serial"].as_u64(), Some(u64::from(serial)), "{status:#}");
        assert_eq!(self.served(), Some(serial), "the old serial is still served");
    }
}

#[test]
fn review_approves() {
    let mut env = Env::new("10s");
    let first = env.first_then_change("approve");
    env.wait_served(first + 1);
    let review = env.wait_review(first + 1, "approved");
    assert_eq!(review["decided_by"], "hook", "{review:#}");
    let hook_env = std::fs::read_to_string(env.path(&format!("env.{}", first + 1))).expect("the hook's environment");
    for line in ["SIGNET_ZONE=example.", &format!("SIGNET_PREVIOUS_SERIAL={first}"), "SIGNET_RECORDS_ADDED="] {
        assert!(hook_env.lines().any(|l| l.starts_with(line)), "{line} in\n{hook_env}");
    }
    assert!(!hook_env.contains("SIGNET_PKCS11_PIN"), "no PIN reaches the hook:\n{hook_env}");
    assert_eq!(common::published_serial(&env.output), u64::from(first + 1));
    env.serve.take().expect("serve").stop();
}

#[test]
fn review_rejects() {
    let mut env = Env::new("10s");
    let first = env.first_then_change("reject");
    let review = env.wait_review(first + 1, "rejected");
    let reason = review["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("exit status 1") && reason.contains("too many deletions"), "{review:#}");
    env.serve().wait_log(&["not published", "rejected by the review hook", "too many deletions"], WITHIN);
    env.nothing_published_after(first);
    let text = env.ok(&["status", ZONE]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("serial {} rejected by the hook", first + 1)), "{text}");
    let journal = env.status()["journal"]["newest_serial"].as_u64();
    assert_ne!(journal, Some(u64::from(first + 1)), "no journal entry for the rejected version");
    // A rejection stands for this content: the service looks again after
    // its backoff, finds the rejection and does not ask the hook again,
    // nor loop on it.
    let rejected = ["not published", "rejected by the review hook"];
    wait_for(WITHIN, || (env.serve().count(&rejected) >= 2).then_some(()))
        .unwrap_or_else(|waited| panic!("no second look at the rejected version after {waited:?}\n{}", env.context()));
    assert_eq!(env.hook_calls(), [first, first + 1], "the hook was offered the rejected content once");
    let runs = env.serve().count(&["run started"]);
    assert!(runs <= 5, "{runs} runs: the service loops on a rejected version\n{}", env.context());
    // The operator overrules the hook: the service takes it up and
    // publishes that content without asking the hook again.
    env.ok(&["zone", "approve", ZONE, &(first + 1).to_string(), "--reason", "the deletions are expected"]);
    env.wait_served(first + 1);
    assert_eq!(env.hook_calls(), [first, first + 1], "the hook was not asked again");
    env.serve.take().expect("serve").stop();
}

#[test]
fn review_times_out() {
    let mut env = Env::new("1s");
    let first = env.first_then_change("sleep");
    let review = env.wait_review(first + 1, "timed-out");
    assert!(review["reason"].as_str().unwrap_or_default().contains("killed"), "{review:#}");
    let pid = std::fs::read_to_string(env.path("sleeper.pid")).expect("the hook's pid");
    let gone = wait_for(Duration::from_secs(5), || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        (stat.is_empty() || stat.contains(") Z ")).then_some(())
    });
    assert!(gone.is_ok(), "the hook {} was killed", pid.trim());
    env.nothing_published_after(first);
    let text = env.ok(&["status", ZONE]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("timed-out"), "status says it timed out");
    env.serve.take().expect("serve").stop();
}

#[test]
fn review_crashes() {
    let mut env = Env::new("10s");
    let first = env.first_then_change("crash");
    let review = env.wait_review(first + 1, "crashed");
    assert!(review["reason"].as_str().unwrap_or_default().contains("signal 11"), "{review:#}");
    env.nothing_published_after(first);
    env.serve.take().expect("serve").stop();
}

#[test]
fn review_waits_for_the_operator() {
    let mut env = Env::new("10s");
    let first = env.first_then_change("wait");
    let pending = first + 1;
    env.wait_review(pending, "pending");
    env.nothing_published_after(first);
    let text = env.ok(&["status", ZONE]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("signet zone approve example. {pending}")), "status says how to decide:\n{text}");
    let wrong = env.signet(&["zone", "approve", ZONE, &(pending + 7).to_string()]);
    assert!(!wrong.status.success(), "an approve of a serial that does not wait is refused");
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains(&format!("the review that waits is of serial {pending}")),
        "{wrong:?}"
    );
    env.ok(&["zone", "approve", ZONE, &pending.to_string(), "--reason", "checked by hand"]);
    env.wait_served(pending);
    let review = env.wait_review(pending, "approved");
    assert_eq!(review["decided_by"], "operator", "{review:#}");
    // Another change, and the operator rejects it: it stays off.
    write_by_rename(&env.input, &zone_text(3, 3));
    let next = pending + 1;
    env.wait_review(next, "pending");
    env.ok(&["zone", "reject", ZONE, &next.to_string(), "--reason", "not today"]);
    env.serve().wait_log(&["not published", "rejected by the operator", "not today"], WITHIN);
    env.nothing_published_after(pending);
    env.serve.take().expect("serve").stop();
}

#[test]
fn review_decisions_by_hand() {
    let env = Env::new("10s");
    let refused = |args: &[&str], needles: &[&str]| {
        let output = env.signet(args);
        assert_eq!(output.status.code(), Some(2), "{args:?} is refused: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(needles.iter().all(|n| stderr.contains(n)), "{needles:?} in {stderr}");
    };
    refused(&["zone", "approve", ZONE, "2"], &["serial 2 cannot be approved now", "the zone has no review"]);
    let output = env.signet(&["sign", ZONE]);
    assert_eq!(output.status.code(), Some(0), "the hook approves: {output:?}");
    // The hook says no; the operator overrules it.
    env.set_mode("reject");
    write_by_rename(&env.input, &zone_text(2, 2));
    let output = env.signet(&["sign", ZONE]);
    assert_eq!(output.status.code(), Some(3), "rejected by the hook: exit 3: {output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("signet zone approve example. 3"), "{output:?}");
    assert_eq!(common::published_serial(&env.output), 2, "the output stays");
    refused(&["zone", "reject", ZONE, "3"], &["serial 3 cannot be rejected now", "its review is rejected"]);
    env.ok(&["zone", "approve", ZONE, "3", "--reason", "the deletions are the registrar's"]);
    let output = env.signet(&["sign", ZONE]);
    assert_eq!(output.status.code(), Some(0), "overruled by hand: {output:?}");
    assert_eq!(common::published_serial(&env.output), 3, "the content the hook rejected is published");
    assert_eq!(env.hook_calls(), [2, 3], "the hook was not asked again");
    let audit = env.ok(&["zone", "status", ZONE]);
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.contains("approved by the operator over the hook's verdict (rejected)"), "{audit}");
    // The hook leaves it to an operator.
    env.set_mode("wait");
    write_by_rename(&env.input, &zone_text(3, 3));
    let output = env.signet(&["sign", ZONE]);
    assert_eq!(output.status.code(), Some(75), "waits for the operator: exit 75: {output:?}");
    refused(&["zone", "approve", ZONE, "3"], &["the review that waits is of serial 4"]);
    env.ok(&["zone", "approve", ZONE, "4"]);
    refused(&["zone", "reject", ZONE, "4"], &["its review is approved"]);
    let output = env.signet(&["sign", ZONE]);
    assert_eq!(output.status.code(), Some(0), "approved by hand: {output:?}");
    assert_eq!(common::published_serial(&env.output), 4, "the serial approved is published");
}
