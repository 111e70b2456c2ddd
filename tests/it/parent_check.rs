//! The check of the parent by query, through the real binary against two
//! real knotd serving the parent zone `test.` on loopback: a submitted DS
//! is recorded `ds seen` (by the machine, with every agent's answer in
//! the audit) only once both agents serve it; a withdrawn one `ds gone`
//! only once neither does; an agent that answers with a TSIG that does
//! not verify counts as unknown, never as "no DS"; `key list` and status
//! say what the check waits for. And under `signet serve`, in real time:
//! the DS submitted by RFC 2136 UPDATE with TSIG to a knotd that takes
//! updates, and seen there by the check, with no operator. Every server
//! has an address of its own; the updating knotd takes updates from
//! signet's `transfer-source` only.
//!
//! The check trusts only the parent's side of the zone cut: an NSD serving
//! only the child zone, made a parent agent, answers the DS query at its
//! apex from the child zone (NODATA with the child's SOA); that is not "no
//! DS", and `ds check` names it as the child's; once NSD is no longer an
//! agent, knotd's NODATA (with the SOA of `test.`) records `ds gone`.

use crate::common;

use std::process::Command;

use common::dns_servers::{
    Server, Tsig, free_addr, knotd_primary, knotd_primary_at, knotd_update_primary_at, nsd_primary_at, random_base,
};
use common::serve::{Serve, wait_for};
use common::{Store, expect_success, have_tool, run};

const CHILD: &str = "child.test.";
const HOUR: i64 = 3600;

/// The child zone's input; its name server's address is NSD's in the cut
/// test.
const CHILD_ZONE: &str = "$TTL 300\nchild.test. IN SOA ns.child.test. h.child.test. 1 3600 600 86400 300\n\
                          child.test. NS ns.child.test.\nns.child.test. A 127.0.0.2\nwww.child.test. A 192.0.2.1\n";

fn parent_zone(serial: u32, ds: &[String]) -> String {
    let mut text = format!(
        "$TTL 60\ntest. 60 IN SOA ns.test. h.test. {serial} 60 60 600 60\ntest. NS ns.test.\nns.test. A 127.0.0.1\n\
         child.test. NS ns.child.test.\nns.child.test. A 127.0.0.2\n"
    );
    for line in ds {
        text.push_str(line);
        text.push('\n');
    }
    text
}

struct Env {
    dir: tempfile::TempDir,
    store: Store,
    now: i64,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::soft(&dir.path().join("keys"));
        Env { store, now: signet::time::wall_clock(), dir }
    }

    fn signet(&self, args: &[&str]) -> std::process::Output {
        let mut command: Command = self.store.signet();
        command.arg("--db").arg(self.dir.path().join("signet.db")).arg("--now").arg(self.now.to_string());
        run(command.args(args))
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.signet(args);
        expect_success(&format!("signet {}", args.join(" ")), &output);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A fresh database with the child zone from `input` under
    /// management with the policy `policy` (TOML).
    fn manage(&self, input: &str, policy: &str) {
        let base = self.dir.path();
        let (input_file, policy_file, output) =
            (base.join("child.zone"), base.join("p.toml"), base.join("child.signed"));
        std::fs::write(&input_file, input).expect("write the input");
        std::fs::write(&policy_file, policy).expect("write the policy");
        self.ok(&["init"]);
        self.ok(&["policy", "import", policy_file.to_str().expect("path"), "--name", "p"]);
        let (input, output) = (input_file.to_str().expect("path"), output.to_str().expect("path"));
        self.ok(&["zone", "add", CHILD, "--policy", "p", "--input", input, "--output", output]);
    }

    /// A JSON command at the wall clock's time (the service's).
    fn json_now(&self, args: &[&str]) -> serde_json::Value {
        let mut command: Command = self.store.signet();
        command.arg("--db").arg(self.dir.path().join("signet.db")).args(args).args(["--format", "json"]);
        let output = run(&mut command);
        expect_success(&format!("signet {}", args.join(" ")), &output);
        serde_json::from_slice(&output.stdout).expect("json")
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("json")
    }

    /// Signs (a managed run) an hour later each time.
    fn sign_later(&mut self) {
        self.now += HOUR + 600;
        self.ok(&["sign", CHILD]);
    }

    /// The zone's keys as `key list` shows them.
    fn keys(&self) -> Vec<serde_json::Value> {
        self.json(&["key", "list", CHILD])[0]["keys"].as_array().expect("keys").clone()
    }

    fn ksk_tags(&self) -> Vec<u16> {
        let keys = self.keys();
        keys.iter()
            .filter(|k| k["role"] == "ksk" && k["goal"] == "omnipresent")
            .map(|k| k["keytag"].as_u64().expect("tag") as u16)
            .collect()
    }

    /// Signs the first keys in and on until the KSK's DS is wanted;
    /// its tag.
    fn first_ksk_wanted(&mut self) -> u16 {
        self.ok(&["sign", CHILD]);
        for _ in 0..4 {
            self.sign_later();
        }
        let tags = self.ksk_tags();
        assert_eq!(tags.len(), 1, "one KSK: {:?}", self.keys());
        tags[0]
    }

    fn ds_lines(&self, tag: u16) -> Vec<String> {
        let text = self.ok(&["ds", "show", CHILD, "--keytag", &tag.to_string()]);
        text.lines().take(1).map(str::to_owned).collect()
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        self.json(&["zone", "status", CHILD])["audit"].as_array().expect("audit").clone()
    }
}

fn setup() -> Option<(Env, Server, Server, Tsig)> {
    if !have_tool("knotd") {
        eprintln!("skipped: knotd is not installed");
        return None;
    }
    let env = Env::new();
    env.manage(CHILD_ZONE, &common::parent_policy(&env.store.uri()));
    let base = env.dir.path();
    let tsig = Tsig::generate("agent-key");
    let secret = base.join("agent.key");
    tsig.write_secret_file(&secret);
    env.ok(&["tsig", "add", "agent-key", "--secret-file", secret.to_str().expect("path")]);
    let at = random_base();
    let one = knotd_primary_at(free_addr(at(1)), &base.join("agent1"), "test.", &parent_zone(1, &[]), &[], None);
    let two = knotd_primary_at(free_addr(at(2)), &base.join("agent2"), "test.", &parent_zone(1, &[]), &[], Some(&tsig));
    env.ok(&["zone", "parent-agent", "add", CHILD, &one.addr().to_string()]);
    env.ok(&["zone", "parent-agent", "add", CHILD, &two.addr().to_string(), "--tsig", "agent-key"]);
    Some((env, one, two, tsig))
}

fn by_machine(audit: &[serde_json::Value], kind: &str) -> Vec<String> {
    audit
        .iter()
        .filter(|e| e["event"] == kind && e["actor"] == "machine")
        .map(|e| format!("{} {}", e["actor"].as_str().unwrap_or("-"), e["message"].as_str().unwrap_or("-")))
        .collect()
}

#[test]
fn ds_seen_only_when_every_agent_serves_it_and_gone_only_when_none_does() {
    let Some((mut env, one, two, _tsig)) = setup() else { return };
    let ksk = env.first_ksk_wanted();
    let list = env.ok(&["key", "list", CHILD]);
    assert!(list.contains("the parent check will ask every agent whether the DS is seen"), "{list}");

    // Neither agent has it: the check waits, and says so.
    let round = env.ok(&["ds", "check", CHILD]);
    assert!(round.contains("0 of 2 agents serve the DS"), "{round}");
    let status = env.json(&["status", CHILD]);
    let waiting = &status[0]["parent"]["waiting"][0];
    assert_eq!(
        (waiting["keytag"].as_u64(), waiting["want"].as_str()),
        (Some(u64::from(ksk)), Some("seen")),
        "{status}"
    );
    let ds = env.ds_lines(ksk);

    // One agent has it: still waiting.
    one.reload(&parent_zone(2, &ds));
    let round = env.ok(&["ds", "check", CHILD]);
    assert!(round.contains("1 of 2 agents serve the DS"), "{round}");
    assert!(by_machine(&env.audit(), "ds-seen").is_empty());

    // Both: recorded by the machine, with every answer.
    two.reload(&parent_zone(2, &ds));
    let round = env.ok(&["ds", "check", CHILD]);
    assert!(round.contains("parent check: every agent serves the DS"), "{round}");
    let seen = by_machine(&env.audit(), "ds-seen");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].starts_with("machine parent check:"), "{seen:?}");
    assert!(seen[0].contains(&one.addr().to_string()) && seen[0].contains(&two.addr().to_string()), "{seen:?}");
    env.sign_later();
    let again = env.ok(&["ds", "check", CHILD]);
    assert!(again.contains("no DS change is pending"), "{again}");

    // Roll the KSK to the DS swap: the new DS seen, the old one gone.
    env.ok(&["key", "rollover", CHILD, "--ksk"]);
    for _ in 0..4 {
        env.sign_later();
    }
    let tags = env.ksk_tags();
    let new = *tags.iter().find(|t| **t != ksk).expect("a new KSK");
    let both: Vec<String> = ds.iter().cloned().chain(env.ds_lines(new)).collect();
    one.reload(&parent_zone(3, &both));
    two.reload(&parent_zone(3, &both));
    assert!(env.ok(&["ds", "check", CHILD]).contains("every agent serves the DS"));
    for _ in 0..3 {
        env.sign_later();
    }
    let list = env.ok(&["key", "list", CHILD]);
    assert!(list.contains("whether the DS is gone") || list.contains("waits for the DS to be gone"), "{list}");

    // Gone from one agent only: waiting; then from both: ds gone.
    let new_only = env.ds_lines(new);
    one.reload(&parent_zone(4, &new_only));
    let round = env.ok(&["ds", "check", CHILD]);
    assert!(round.contains("1 of 2 agents no longer serve the DS"), "{round}");
    two.reload(&parent_zone(4, &new_only));
    let round = env.ok(&["ds", "check", CHILD]);
    assert!(round.contains("every agent no longer serves the DS"), "{round}");
    let gone = by_machine(&env.audit(), "ds-gone");
    assert!(gone.iter().all(|g| g.starts_with("machine parent check:")) && gone.len() == 1, "{gone:?}");
}

#[test]
fn an_agent_whose_tsig_fails_is_unknown_not_a_no() {
    let Some((mut env, one, two, tsig)) = setup() else { return };
    let ksk = env.first_ksk_wanted();
    let ds = env.ds_lines(ksk);
    one.reload(&parent_zone(2, &ds));
    two.reload(&parent_zone(2, &ds));
    // The key file now holds another secret: agent two's answers do not verify.
    tsig.with_other_secret().write_secret_file(&env.dir.path().join("agent.key"));
    let round = env.ok(&["ds", "check", CHILD]);
    assert!(round.contains("1 of 2 agents serve the DS") && round.contains("1 did not answer usably"), "{round}");
    assert!(round.contains("TSIG"), "{round}");
    assert!(by_machine(&env.audit(), "ds-seen").is_empty());
    tsig.write_secret_file(&env.dir.path().join("agent.key"));
    assert!(env.ok(&["ds", "check", CHILD]).contains("every agent serves the DS"));
}

/// The policy in seconds, for the service in real time.
fn fast_policy(store: &str) -> String {
    format!(
        "[keys]\nalgorithm = \"ECDSAP256SHA256\"\ncsk = true\nksk-lifetime = \"0\"\ndnskey-ttl = \"1s\"\n\
         publish-safety = \"1s\"\nretire-safety = \"1s\"\nstore = \"{store}\"\n\
         [signatures]\nvalidity = \"14d\"\ndnskey-validity = \"14d\"\nrefresh = \"5d\"\njitter = \"1h\"\n\
         [zone]\npropagation-delay = \"1s\"\nmax-ttl = \"1s\"\n\
         [parent]\nds-ttl = \"1s\"\npropagation-delay = \"1s\"\nregistration-delay = \"1s\"\n\
         check-interval-min = \"1s\"\ncheck-interval = \"2s\"\n"
    )
}

#[test]
fn serve_submits_the_ds_by_update_and_sees_it_by_query() {
    if !have_tool("knotd") {
        return;
    }
    let env = Env::new();
    let input = "$TTL 1\nchild.test. IN SOA ns.child.test. h.child.test. 1 60 60 600 1\nchild.test. NS ns.child.test.\n\
                 ns.child.test. A 127.0.0.1\n";
    env.manage(input, &fast_policy(&env.store.uri()));
    let base = env.dir.path();
    let tsig = Tsig::generate("update-key");
    let secret = base.join("update.key");
    tsig.write_secret_file(&secret);
    let at = random_base();
    let signet_at = at(2);
    let parent = knotd_update_primary_at(
        free_addr(at(1)),
        &base.join("parent"),
        "test.",
        &parent_zone(1, &[]),
        signet_at,
        &tsig,
    );
    env.ok(&["tsig", "add", "update-key", "--secret-file", secret.to_str().expect("path")]);
    let at = parent.addr().to_string();
    env.ok(&["zone", "parent-update", "add", CHILD, &at, "--tsig", "update-key"]);
    env.ok(&["zone", "parent-agent", "add", CHILD, &at, "--tsig", "update-key"]);
    let config = base.join("serve.toml");
    let config_text = format!(
        "[serve]\nretry-min = \"1s\"\nretry-max = \"4s\"\nstop-timeout = \"5s\"\ntransfer-source = \"{signet_at}\"\n"
    );
    std::fs::write(&config, config_text).expect("config");
    let mut command = env.store.signet();
    command.arg("--db").arg(base.join("signet.db")).args(["serve", "--config", config.to_str().expect("path")]);
    let serve = Serve::start(command, "parent-check", Some(base.join("serve.log")));
    // The CSK's DNSKEY goes omnipresent after a few seconds; its DS is
    // then pushed to knotd, seen there by the check, and taken in.
    let seen = wait_for(std::time::Duration::from_secs(60), || {
        let audit = env.json_now(&["zone", "status", CHILD]);
        let audit = audit["audit"].as_array().cloned().unwrap_or_default();
        let seen = by_machine(&audit, "ds-seen");
        (!seen.is_empty()).then_some((seen, by_machine(&audit, "ds-requested")))
    });
    let (seen, requested) = seen.unwrap_or_else(|waited| panic!("no ds seen after {waited:?}:\n{}", serve.tail()));
    assert!(seen[0].starts_with("machine parent check: every agent serves the DS"), "{seen:?}");
    assert!(requested.iter().any(|r| r.contains("DS set submitted to the parent by update at")), "{requested:?}");
    let tag = env.json_now(&["key", "list", CHILD])[0]["keys"][0]["keytag"].as_u64().expect("tag");
    let served = common::dns_servers::dig(parent.addr(), &["+short", "child.test.", "DS"]);
    assert!(served.starts_with(&format!("{tag} 13 2 ")), "knotd serves: {served}");
    serve.stop();
}

#[test]
fn a_server_of_the_child_alone_does_not_make_ds_gone() {
    if !have_tool("knotd") || !have_tool("nsd") {
        eprintln!("skipped: knotd or nsd is not installed");
        return;
    }
    let mut env = Env::new();
    env.manage(CHILD_ZONE, &common::parent_policy(&env.store.uri()));
    let base = env.dir.path().to_owned();
    let old = env.first_ksk_wanted();
    let old_ds = env.ds_lines(old);

    // The parent publishes the first DS; knotd alone is the agent.
    let parent = knotd_primary(&base.join("parent"), "test.", &parent_zone(1, &old_ds), &[], None);
    env.ok(&["zone", "parent-agent", "add", CHILD, &parent.addr().to_string()]);
    assert!(env.ok(&["ds", "check", CHILD]).contains("every agent serves the DS"));
    env.sign_later();

    // A KSK rollover up to the DS swap: the new DS seen at the parent.
    env.ok(&["key", "rollover", CHILD, "--ksk"]);
    for _ in 0..4 {
        env.sign_later();
    }
    let new = *env.ksk_tags().iter().find(|t| **t != old).expect("a new KSK");
    let new_ds = env.ds_lines(new);
    let both: Vec<String> = old_ds.iter().chain(&new_ds).cloned().collect();
    parent.reload(&parent_zone(2, &both));
    assert!(env.ok(&["ds", "check", CHILD]).contains("every agent serves the DS"));
    for _ in 0..3 {
        env.sign_later();
    }
    let list = env.ok(&["key", "list", CHILD]);
    assert!(list.contains("whether the DS is gone") || list.contains("waits for the DS to be gone"), "{list}");

    // NSD, a server of the child zone and of nothing else, becomes an
    // agent too; the parent withdraws the old DS.
    let nsd_addr = free_addr([127, 0, 0, 2].into());
    let nsd = nsd_primary_at(nsd_addr, &base.join("nsd"), CHILD, CHILD_ZONE);
    env.ok(&["zone", "parent-agent", "add", CHILD, &nsd.addr().to_string()]);
    parent.reload(&parent_zone(3, &new_ds));

    // NSD's authoritative NODATA with the child's SOA is not "no DS".
    let round = env.ok(&["ds", "check", CHILD]);
    assert!(
        round.contains("1 of 2 agents no longer serve the DS") && round.contains("1 did not answer usably"),
        "{round}"
    );
    let nsd_said = format!("{}: unknown (the child's side of the cut: the SOA of child.test.", nsd.addr());
    assert!(round.contains(&nsd_said), "NSD's answer must be named the child's:\n{round}\n{}", nsd.describe());
    assert!(
        by_machine(&env.audit(), "ds-gone").is_empty(),
        "no ds gone from the child's answer: {:?}",
        by_machine(&env.audit(), "ds-gone")
    );

    // Without NSD, knotd's NODATA (the SOA of test.) is the parent's "no DS".
    env.ok(&["zone", "parent-agent", "remove", CHILD, &nsd.addr().to_string()]);
    let round = env.ok(&["ds", "check", CHILD]);
    assert!(round.contains("every agent no longer serves the DS"), "{round}");
    let gone = by_machine(&env.audit(), "ds-gone");
    assert!(gone.len() == 1 && gone[0].contains(&format!("DS of key tag {old}")), "{gone:?}");
}
