//! The check of the parent trusts only the parent's side of the zone cut
//! (issue 22, item 3), through the real binary: a knotd serving the
//! parent zone `test.` (on 127.0.0.1) and an NSD serving only the child
//! zone `child.test.` (on 127.0.0.2) are both parent agents. NSD answers
//! the DS query at its apex from the child zone, authoritatively: NODATA
//! with the child's SOA. That answer is not "no DS": while knotd has
//! withdrawn the old KSK's DS and NSD can say nothing about it, `signet
//! ds check` waits and names NSD's answer as the child's; once NSD is no
//! longer an agent, knotd's NODATA (with the SOA of `test.`) records
//! `ds gone`.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;

use common::dns_servers::{free_addr, knotd_primary, nsd_primary_at};
use common::{Store, expect_success, have_tool, run};

const CHILD: &str = "child.test.";
const HOUR: i64 = 3600;

const CHILD_ZONE: &str = "$TTL 300\nchild.test. IN SOA ns.child.test. h.child.test. 1 3600 600 86400 300\n\
                          child.test. NS ns.child.test.\nns.child.test. A 127.0.0.2\nwww.child.test. A 192.0.2.1\n";

fn policy(store: &str) -> String {
    format!(
        "[keys]\nalgorithm = \"ECDSAP256SHA256\"\nksk-lifetime = \"0\"\nzsk-lifetime = \"0\"\ndnskey-ttl = \"1h\"\n\
         publish-safety = \"1h\"\nretire-safety = \"1h\"\nstore = \"{store}\"\n\
         [signatures]\nvalidity = \"14d\"\ndnskey-validity = \"14d\"\nrefresh = \"5d\"\njitter = \"1h\"\n\
         [zone]\npropagation-delay = \"5m\"\nmax-ttl = \"1h\"\n\
         [parent]\nds-ttl = \"1h\"\npropagation-delay = \"5m\"\nregistration-delay = \"1h\"\n\
         check-interval-min = \"1m\"\ncheck-interval = \"10m\"\n"
    )
}

/// The parent zone `test.` with its delegation of the child and `ds`.
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

/// signet on a database of its own, at a clock of its own.
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

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("json")
    }

    /// A managed run an hour and ten minutes later.
    fn sign_later(&mut self) {
        self.now += HOUR + 600;
        self.ok(&["sign", CHILD]);
    }

    /// The tags of the KSKs whose goal is to be published.
    fn ksk_tags(&self) -> Vec<u16> {
        let keys = self.json(&["key", "list", CHILD])[0]["keys"].as_array().expect("keys").clone();
        keys.iter()
            .filter(|k| k["role"] == "ksk" && k["goal"] == "omnipresent")
            .map(|k| u16::try_from(k["keytag"].as_u64().expect("tag")).expect("a key tag"))
            .collect()
    }

    /// The key's DS record (the policy's digest), one line.
    fn ds_lines(&self, tag: u16) -> Vec<String> {
        let text = self.ok(&["ds", "show", CHILD, "--keytag", &tag.to_string()]);
        text.lines().take(1).map(str::to_owned).collect()
    }

    /// The audit rows of `kind` by the machine.
    fn by_machine(&self, kind: &str) -> Vec<String> {
        let status = self.json(&["zone", "status", CHILD]);
        let audit = status["audit"].as_array().cloned().unwrap_or_default();
        audit
            .iter()
            .filter(|e| e["event"] == kind && e["actor"] == "machine")
            .map(|e| e["message"].as_str().unwrap_or("-").to_owned())
            .collect()
    }
}

/// The zone under management, signed until its first KSK's DS is wanted.
fn child_under_management(env: &mut Env, base: &Path) {
    let input = base.join("child.zone");
    std::fs::write(&input, CHILD_ZONE).expect("write the input");
    let policy_file = base.join("p.toml");
    std::fs::write(&policy_file, policy(&env.store.uri())).expect("write the policy");
    env.ok(&["init"]);
    env.ok(&["policy", "import", policy_file.to_str().expect("path"), "--name", "p"]);
    let (input, output) = (input.to_str().expect("path"), base.join("child.signed"));
    env.ok(&["zone", "add", CHILD, "--policy", "p", "--input", input, "--output", output.to_str().expect("path")]);
    env.ok(&["sign", CHILD]);
    for _ in 0..4 {
        env.sign_later();
    }
}

#[test]
fn a_server_of_the_child_alone_does_not_make_ds_gone() {
    if !have_tool("knotd") || !have_tool("nsd") {
        eprintln!("skipped: knotd or nsd is not installed");
        return;
    }
    let mut env = Env::new();
    let base = env.dir.path().to_owned();
    child_under_management(&mut env, &base);
    let tags = env.ksk_tags();
    assert_eq!(tags.len(), 1, "one KSK: {tags:?}");
    let old = tags[0];
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
    let nsd_addr = free_addr(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
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
        env.by_machine("ds-gone").is_empty(),
        "no ds gone from the child's answer: {:?}",
        env.by_machine("ds-gone")
    );

    // Without NSD, knotd's NODATA (the SOA of test.) is the parent's "no DS".
    env.ok(&["zone", "parent-agent", "remove", CHILD, &nsd.addr().to_string()]);
    let round = env.ok(&["ds", "check", CHILD]);
    assert!(round.contains("every agent no longer serves the DS"), "{round}");
    let gone = env.by_machine("ds-gone");
    assert!(gone.len() == 1 && gone[0].contains(&format!("DS of key tag {old}")), "{gone:?}");
}
