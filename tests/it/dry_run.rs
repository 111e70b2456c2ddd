//! `signet dry-run`: the example policies rehearsed over two simulated
//! years are safe, every rollover they call for happens and completes, the
//! trace and the SVG are written and the SVG renders in headless Chromium;
//! an algorithm change mid-run is safe; an injected fault is caught at the
//! instant it bites, with exit 1; bad arguments exit 2.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const FROM: &str = "2027-01-01T00:00:00Z";
const TWO_YEARS_ON: &str = "2029-01-01T00:00:00Z";
const DAY: i64 = 86_400;

fn policy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies").join(format!("{name}.toml"))
}

fn dry_run(policy: &Path, until: &str, extra: &[&str]) -> (Output, Value) {
    let output = common::run(
        common::signet()
            .args(["dry-run", "--format", "json", "--origin", "example.", "--from", FROM, "--until", until])
            .arg("--policy")
            .arg(policy)
            .args(extra),
    );
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("dry-run printed no JSON ({e}); stderr:\n{}", String::from_utf8_lossy(&output.stderr))
    });
    (output, json)
}

fn events<'a>(report: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    report["events"].as_array().expect("events").iter().filter(move |e| e["kind"] == kind)
}

fn keys(report: &Value) -> &Vec<Value> {
    report["keys"].as_array().expect("keys")
}

/// At least `expected` keys of `role` were made as successors, and each
/// predecessor whose successor came more than `settle` seconds before the
/// end was removed.
fn check_rollovers(report: &Value, role: &str, expected: usize, until: i64, settle: i64) {
    let keys = keys(report);
    let successors: Vec<&Value> = keys.iter().filter(|k| k["role"] == role && k["predecessor"].is_i64()).collect();
    assert!(successors.len() >= expected, "{role}: {} rollovers, expected at least {expected}", successors.len());
    for new in successors.iter().filter(|k| k["created"].as_i64().expect("created") < until - settle) {
        let old = keys.iter().find(|k| k["id"] == new["predecessor"]).expect("predecessor in the summary");
        assert!(old["removed"].is_i64(), "{role} rollover from key {} never completed: {old}", old["id"]);
    }
}

fn time_of(text: &str) -> i64 {
    signet::time::parse_time(text).expect("time")
}

/// Renders the SVG in headless Chromium; returns the PNG's size.
fn render(svg: &Path, dir: &Path) -> u64 {
    let png = dir.join("timeline.png");
    let profile = tempfile::tempdir().expect("profile dir");
    let output = common::run(
        // A hung browser must not hang the suite.
        Command::new("timeout")
            .args(["120", "chromium"])
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .arg("--disable-dev-shm-usage")
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--window-size=1400,1200", "--hide-scrollbars"])
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!("file://{}", svg.display())),
    );
    common::expect_success("chromium --screenshot", &output);
    let bytes = std::fs::read(&png).expect("chromium wrote no PNG");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    bytes.len() as u64
}

#[test]
fn example_policies_over_two_years_are_safe_and_drawn() {
    // (policy, role, rollovers expected in two years)
    let cases = [
        ("tld-rsasha256", &[("zsk", 19), ("ksk", 1)][..]),
        ("tld-ecdsa", &[("zsk", 7)][..]),
        ("small-csk-ed25519", &[("csk", 1)][..]),
    ];
    let until = time_of(TWO_YEARS_ON);
    for (name, rollovers) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let (trace, svg) = (dir.path().join("trace"), dir.path().join("timeline.svg"));
        let extra = ["--trace", trace.to_str().expect("utf-8"), "--svg", svg.to_str().expect("utf-8")];
        let (output, report) = dry_run(&policy(name), TWO_YEARS_ON, &extra);
        common::expect_success(&format!("dry-run {name}"), &output);
        assert_eq!(report["verdict"]["verdict"], "safe", "{name}: {}", report["verdict"]);
        assert!(
            report["combinations"].as_u64().expect("combinations") > report["versions"].as_u64().expect("versions")
        );
        for &(role, expected) in rollovers {
            check_rollovers(&report, role, expected, until, 10 * DAY);
        }
        // The DS went to the parent, through CDS, and was seen.
        assert!(events(&report, "parent").count() >= 1, "{name}: the parent never published a DS");

        let index: Value =
            serde_json::from_slice(&std::fs::read(trace.join("index.json")).expect("index.json")).expect("index JSON");
        let entries = index.as_array().expect("index is a list");
        assert_eq!(
            entries.len() as u64,
            report["versions"].as_u64().expect("versions"),
            "{name}: one entry per version"
        );
        for entry in [&entries[0], &entries[entries.len() / 2], &entries[entries.len() - 1]] {
            let zone = std::fs::read_to_string(trace.join(entry["zone"].as_str().expect("zone"))).expect("zone file");
            for needle in ["\tSOA\t", "\tDNSKEY\t", "\tRRSIG\tDNSKEY ", "\tRRSIG\tSOA ", "www.example.\t"] {
                assert!(zone.contains(needle), "{name}: {} lacks {needle:?}", entry["zone"]);
            }
            assert!(trace.join(entry["ds"].as_str().expect("ds")).exists());
        }
        let with_ds = entries.iter().rev().find(|e| e["time"].as_str().is_some_and(|t| t > "2027-02")).expect("entry");
        let ds = std::fs::read_to_string(trace.join(with_ds["ds"].as_str().expect("ds"))).expect("ds file");
        assert!(ds.contains("\tDS\t"), "{name}: the parent's DS RRset is traced: {ds}");

        let drawing = std::fs::read_to_string(&svg).expect("svg");
        assert_eq!(drawing.matches(r#"<g class="lane""#).count(), keys(&report).len(), "{name}: one lane per key");
        for state in ["rumoured", "omnipresent", "unretentive"] {
            assert!(drawing.contains(&format!(": {state} from ")), "{name}: no {state} bar");
        }
        let png = render(&svg, dir.path());
        assert!(png > 20_000, "{name}: the rendered timeline is only {png} bytes");
    }
}

#[test]
fn an_algorithm_change_mid_run_is_safe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ecdsa = dir.path().join("to-ecdsa.toml");
    let text = std::fs::read_to_string(policy("tld-rsasha256")).expect("policy");
    std::fs::write(
        &ecdsa,
        text.replace("algorithm = \"RSASHA256\"", "algorithm = \"ECDSAP256SHA256\"").replace("bits = 2048\n", ""),
    )
    .expect("write policy");
    let change = format!("2027-06-01T00:00:00Z={}", ecdsa.display());
    // The operator's own zone this time, not the built-in example.
    let zone = common::realistic_zone();
    let args = ["--change-policy", &change, "--zone", zone.to_str().expect("utf-8")];
    let (output, report) = dry_run(&policy("tld-rsasha256"), "2028-01-01T00:00:00Z", &args);
    common::expect_success("dry-run with an algorithm change", &output);
    assert_eq!(report["verdict"]["verdict"], "safe", "{}", report["verdict"]);
    assert_eq!(events(&report, "policy-change").count(), 1);
    // The change started the algorithm rollover, and says so.
    let started = report["policy_changes"][0]["started"].as_array().expect("started");
    assert!(!started.is_empty(), "{}", report["policy_changes"]);
    for key in started {
        let cause = key["cause"].as_str().expect("cause");
        assert!(cause.starts_with("algorithm rollover RSASHA256 (8) → ECDSAP256SHA256 (13)"), "{cause}");
    }
    let keys = keys(&report);
    for k in keys.iter().filter(|k| k["algorithm"] == 8) {
        assert!(k["removed"].is_i64(), "RSA key left behind: {k}");
    }
    let ecdsa_ksk = keys.iter().find(|k| k["algorithm"] == 13 && k["role"] == "ksk").expect("an ECDSA KSK");
    assert!(ecdsa_ksk["ds_seen"].is_i64(), "its DS reached the parent");
    let rsa_ksk = keys.iter().find(|k| k["algorithm"] == 8 && k["role"] == "ksk").expect("the RSA KSK");
    assert!(
        rsa_ksk["ds_gone"].as_i64() > ecdsa_ksk["ds_seen"].as_i64(),
        "the old DS goes only after the new one is seen"
    );
    assert!(rsa_ksk["withdrawn"].as_i64() > rsa_ksk["ds_gone"].as_i64(), "the old DNSKEY goes only after its DS");
}

/// Issue 28: a zone goes insecure (RFC 6781 §4.3) and comes back. The
/// parent follows the CDS DELETE; the keys leave only once the old DS
/// has left every cache, the cache model finds every version safe, and
/// back under the signed policy new keys come and their DS is seen.
/// `--change-policy` arguments that take tld-ecdsa insecure on 2027-03-01
/// and back on 2027-05-01 (the insecure policy written in `dir`).
fn insecure_and_back(dir: &Path) -> Vec<String> {
    let signed_text = std::fs::read_to_string(policy("tld-ecdsa")).expect("policy");
    let insecure = dir.join("insecure.toml");
    std::fs::write(&insecure, format!("insecure = true\n{signed_text}")).expect("write policy");
    let out = format!("2027-03-01T00:00:00Z={}", insecure.display());
    let back = format!("2027-05-01T00:00:00Z={}", policy("tld-ecdsa").display());
    ["--change-policy".to_owned(), out, "--change-policy".to_owned(), back].into()
}

#[test]
fn going_insecure_and_back_is_rehearsed_safe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let changes = insecure_and_back(dir.path());
    let args: Vec<&str> = changes.iter().map(String::as_str).collect();
    let (output, report) = dry_run(&policy("tld-ecdsa"), "2027-07-01T00:00:00Z", &args);
    common::expect_success("dry-run going insecure and back", &output);
    assert_eq!(report["verdict"]["verdict"], "safe", "{}", report["verdict"]);
    let going = &report["policy_changes"][0];
    assert!(going["policy"].as_str().is_some_and(|p| p.contains("going insecure")), "{going}");
    assert!(going["started"].as_array().is_some_and(Vec::is_empty), "no key made going insecure: {going}");
    assert!(going["kept"].as_array().is_some_and(Vec::is_empty), "no key kept going insecure: {going}");
    let out_at = signet::time::parse_time("2027-03-01T00:00:00Z").expect("time");
    let back_at = signet::time::parse_time("2027-05-01T00:00:00Z").expect("time");
    let keys = keys(&report);
    let first_ksk = keys.iter().find(|k| k["role"] == "ksk").expect("the first KSK");
    let ds_gone = first_ksk["ds_gone"].as_i64().expect("the parent removed the DS");
    assert!(ds_gone > out_at, "{first_ksk}");
    let ds_ttl = 86400;
    for key in keys.iter().filter(|k| k["created"].as_i64() < Some(out_at)) {
        let withdrawn = key["withdrawn"].as_i64().unwrap_or_else(|| panic!("key left in the zone: {key}"));
        assert!(withdrawn >= ds_gone + ds_ttl, "a DNSKEY left while the DS could be cached: {key}");
        assert!(withdrawn < back_at && key["removed"].is_i64(), "{key}");
    }
    let new_ksk = keys.iter().find(|k| k["role"] == "ksk" && k["created"].as_i64() >= Some(back_at));
    let new_ksk = new_ksk.unwrap_or_else(|| panic!("no KSK made after going back: {keys:?}"));
    assert!(new_ksk["ds_seen"].is_i64(), "signed again, its DS at the parent: {new_ksk}");
}

#[test]
fn an_early_zsk_withdrawal_is_caught_when_it_bites() {
    let ecdsa = policy("tld-ecdsa");
    let until = "2027-06-01T00:00:00Z";
    let (_, safe) = dry_run(&ecdsa, until, &[]);
    assert_eq!(safe["verdict"]["verdict"], "safe");
    // In the safe run the first retiring ZSK's DNSKEY goes once the new
    // ZSK's signatures are in every cache.
    let zsks: Vec<&Value> = keys(&safe).iter().filter(|k| k["role"] == "zsk").collect();
    let withdrawn = zsks[0]["withdrawn"].as_i64().expect("the first ZSK was withdrawn");

    let (output, faulty) = dry_run(&ecdsa, until, &["--fault", "early-zsk-withdrawal"]);
    assert_eq!(output.status.code(), Some(1), "an unsafe run exits 1");
    let verdict = &faulty["verdict"];
    assert_eq!(verdict["verdict"], "unsafe", "{verdict}");
    // One max-ttl (1 day) early: then resolvers still hold data signed
    // only by the old ZSK, and may fetch a DNSKEY RRset without it.
    assert_eq!(verdict["at"].as_i64(), Some(withdrawn - DAY), "{verdict}");
    let reason = verdict["reason"].as_str().expect("reason");
    let first_zsk = keys(&faulty).iter().find(|k| k["role"] == "zsk").expect("a ZSK");
    let old_tag = first_zsk["tag"].as_u64().expect("tag");
    assert!(reason.contains(&format!("is signed by key {old_tag}/13")), "names the old ZSK: {reason}");
    assert!(reason.contains("holds no key of algorithm 13 among them"), "{reason}");
    assert_ne!(verdict["dnskey_serial"], verdict["data_serial"], "two versions are involved");

    let text = common::run(
        common::signet()
            .args([
                "dry-run",
                "--origin",
                "example.",
                "--from",
                FROM,
                "--until",
                until,
                "--fault",
                "early-zsk-withdrawal",
            ])
            .arg("--policy")
            .arg(&ecdsa),
    );
    let stdout = String::from_utf8_lossy(&text.stdout);
    let at = stdout.lines().last().unwrap_or_default();
    assert!(at.starts_with("UNSAFE at "), "{stdout}");
}

#[test]
fn a_ds_taken_for_gone_too_early_is_caught_going_insecure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = insecure_and_back(dir.path());
    args.extend(["--fault".to_owned(), "early-ds-gone".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (output, report) = dry_run(&policy("tld-ecdsa"), "2027-07-01T00:00:00Z", &args);
    assert_eq!(output.status.code(), Some(1), "an unsafe run exits 1");
    let verdict = &report["verdict"];
    assert_eq!(verdict["verdict"], "unsafe", "{verdict}");
    let ksk = keys(&report).iter().find(|k| k["role"] == "ksk").expect("the KSK");
    let ds_gone = ksk["ds_gone"].as_i64().expect("the parent removed the DS");
    // The machine took the DS for gone from caches at once: the DNSKEYs
    // left after the retire safety (1 h), while the DS (TTL 1 d) could
    // still be cached.
    assert_eq!(verdict["at"].as_i64(), Some(ds_gone + 3600), "{verdict}");
    assert_eq!(ksk["withdrawn"], verdict["at"], "{ksk}");
    let tag = ksk["tag"].as_u64().expect("tag");
    assert_eq!(verdict["ds"], serde_json::json!([format!("{tag}/13")]), "the cached DS is the KSK's: {verdict}");
    let reason = verdict["reason"].as_str().expect("reason");
    assert!(reason.contains("no DS of algorithm 13 matches a DNSKEY") && reason.contains("holds no key"), "{reason}");
}

#[test]
fn bad_arguments_exit_2_naming_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.toml");
    let ecdsa = policy("tld-ecdsa");
    let cases: [(Vec<String>, &str); 4] = [
        (vec!["--policy".into(), missing.display().to_string(), "--until".into(), TWO_YEARS_ON.into()], "nope.toml"),
        (
            vec!["--policy".into(), ecdsa.display().to_string(), "--until".into(), "2026-01-01T00:00:00Z".into()],
            "--until",
        ),
        (
            vec![
                "--policy".into(),
                ecdsa.display().to_string(),
                "--until".into(),
                TWO_YEARS_ON.into(),
                "--change-policy".into(),
                "soon".into(),
            ],
            "TIME=FILE",
        ),
        (
            vec![
                "--policy".into(),
                ecdsa.display().to_string(),
                "--until".into(),
                TWO_YEARS_ON.into(),
                "--ds-delay".into(),
                "a while".into(),
            ],
            "--ds-delay",
        ),
    ];
    for (args, expected) in cases {
        let output =
            common::run(common::signet().args(["dry-run", "--origin", "example.", "--from", FROM]).args(&args));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn with_cds_off_the_operator_submits_the_ds_and_no_cds_is_published() {
    let dir = tempfile::tempdir().expect("tempdir");
    let no_cds = dir.path().join("no-cds.toml");
    let text = std::fs::read_to_string(policy("small-csk-ed25519")).expect("policy");
    std::fs::write(&no_cds, text.replace("cds = true", "cds = false")).expect("write policy");
    let trace = dir.path().join("trace");
    let (output, report) = dry_run(&no_cds, TWO_YEARS_ON, &["--trace", trace.to_str().expect("utf-8")]);
    common::expect_success("dry-run with CDS off", &output);
    assert_eq!(report["verdict"]["verdict"], "safe", "{}", report["verdict"]);
    assert!(events(&report, "ds-requested").all(|e| e["why"].as_str().is_some_and(|w| w.contains("operator"))));
    check_rollovers(&report, "csk", 1, time_of(TWO_YEARS_ON), 10 * DAY);
    let published = events(&report, "parent").filter(|e| e["why"].as_str().is_some_and(|w| w.contains("publishes")));
    assert!(published.count() >= 2, "the first CSK's DS and its successor's");
    for entry in std::fs::read_dir(&trace).expect("trace").flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("trace file");
        assert!(
            !text.contains("\tCDS\t") && !text.contains("\tCDNSKEY\t"),
            "{}: CDS published",
            entry.path().display()
        );
    }
}

#[test]
fn keys_can_live_in_a_softhsm_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = common::Store::softhsm(&dir.path().join("hsm"));
    let output = common::run(
        token
            .signet()
            .args(["-v", "--log-format", "json", "dry-run", "--format", "json", "--origin", "example.", "--from", FROM])
            .args(["--until", "2027-05-01T00:00:00Z", "--key-store", &token.uri()])
            .arg("--policy")
            .arg(policy("tld-ecdsa")),
    );
    common::expect_success("dry-run with SoftHSM keys", &output);
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["verdict"]["verdict"], "safe", "{}", report["verdict"]);
    check_rollovers(&report, "zsk", 1, time_of("2027-05-01T00:00:00Z"), 10 * DAY);
    let log = String::from_utf8_lossy(&output.stderr);
    let made_in_token =
        log.lines().filter(|l| l.contains("key made") && l.contains(r#""uri":"pkcs11:token=signet;id="#)).count();
    assert!(made_in_token >= 3, "the KSK, the ZSK and its successor are made in the token:\n{log}");
}

/// Issue 22 item 2: `--change-policy` rehearses a policy change at a given
/// date and says what it started. The zone signs under 2-day ZSKs and
/// 5-day KSKs; 10 hours in, a policy with 90-day ZSKs and 730-day KSKs and
/// longer TTL, safety margins and registration delay replaces it. Its
/// pre-publication times are longer than what was left of the old
/// lifetimes, so the old machine replaced both 10-hour-old keys at the
/// change (for the KSK, a needless DS change at the parent). The dry-run
/// must show the change started no rollover, with the kept keys'
/// successors due when the new policy says.
#[test]
fn a_policy_change_is_rehearsed_and_starts_no_rollover_the_new_policy_does_not_call_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(policy("tld-ecdsa")).expect("policy");
    let (p1, p2) = (dir.path().join("p1.toml"), dir.path().join("p2.toml"));
    std::fs::write(&p1, text.replace("ksk-lifetime = \"730d\"", "ksk-lifetime = \"5d\"").replace("\"90d\"", "\"2d\""))
        .expect("write p1");
    let longer = text
        .replace("dnskey-ttl = \"1h\"", "dnskey-ttl = \"1d\"")
        .replace("publish-safety = \"1h\"", "publish-safety = \"1d\"")
        .replace("retire-safety = \"1h\"", "retire-safety = \"1d\"")
        .replace("registration-delay = \"1d\"", "registration-delay = \"2d\"");
    assert_ne!(longer, text);
    std::fs::write(&p2, longer).expect("write p2");
    let change_at = time_of(FROM) + 10 * 3600;
    let change = format!("2027-01-01T10:00:00Z={}", p2.display());
    let until = "2027-01-15T00:00:00Z";
    let (output, report) = dry_run(&p1, until, &["--change-policy", &change]);
    common::expect_success("dry-run with a policy change", &output);
    assert_eq!(report["verdict"]["verdict"], "safe", "{}", report["verdict"]);

    let changes = report["policy_changes"].as_array().expect("policy_changes");
    assert_eq!(changes.len(), 1, "{changes:?}");
    let reported = &changes[0];
    assert_eq!(reported["at"].as_i64(), Some(change_at));
    assert_eq!(reported["started"].as_array().map(Vec::len), Some(0), "the change started rollovers: {reported}");
    // No successor was made at all within two weeks.
    let keys = keys(&report);
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k["predecessor"].is_null()), "{keys:?}");

    // The new pre-publication times (ZSK: DNSKEY TTL + propagation +
    // publish safety; KSK: that + registration + DS TTL + parent
    // propagation), longer than what was left of the old lifetimes.
    let (m, h) = (60, 3600);
    let zsk_pre = DAY + 10 * m + DAY;
    let ksk_pre = zsk_pre + 2 * DAY + DAY + h;
    let kept = reported["kept"].as_array().expect("kept");
    assert_eq!(kept.len(), 2, "{reported}");
    for key in keys {
        let active = key["active"].as_i64().expect("active");
        let (old_life, new_life, old_pre, new_pre) = match key["role"].as_str() {
            Some("zsk") => (2 * DAY, 90 * DAY, h + 10 * m + h, zsk_pre),
            Some("ksk") => (5 * DAY, 730 * DAY, (h + 10 * m + h) + DAY + DAY + h, ksk_pre),
            role => panic!("role {role:?}"),
        };
        // What the old machine compared: the old retire time against the
        // new pre-publication time, already past at the change.
        assert!(active + old_life - new_pre <= change_at, "{key}");
        let entry = kept.iter().find(|k| k["key"] == key["id"]).unwrap_or_else(|| panic!("{key} kept: {reported}"));
        assert_eq!(entry["successor_due"].as_i64(), Some(active + new_life - new_pre), "{entry}");
        assert_eq!(entry["successor_due_before"].as_i64(), Some(active + old_life - old_pre), "{entry}");
    }

    // The text report says it in words.
    let text = common::run(
        common::signet()
            .args(["dry-run", "--origin", "example.", "--from", FROM, "--until", until, "--change-policy", &change])
            .arg("--policy")
            .arg(&p1),
    );
    common::expect_success("dry-run (text)", &text);
    let stdout = String::from_utf8_lossy(&text.stdout);
    let line = stdout.lines().find(|l| l.starts_with("policy change at ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.starts_with("policy change at 2027-01-01 10:00Z to "), "{line}");
    assert!(line.ends_with(": started no rollover"), "{line}");
    assert_eq!(stdout.matches(" kept: successor due ").count(), 2, "{stdout}");
}

/// An offline KSK (issue 27) over two years: ceremonies every quarter,
/// the third a month late; every version is safe, the ZSKs roll within
/// the responses, the KSK rolls across them, and the ceremonies are in
/// the events and on the drawing. A ceremony so late that the responses
/// run out stops publication, and the verdict says so.
#[test]
fn an_offline_ksk_is_rehearsed_with_its_ceremonies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let svg = dir.path().join("timeline.svg");
    let extra = ["--ceremony-every", "90d", "--late-ceremony", "3=30d", "--svg", svg.to_str().expect("utf-8")];
    let (output, report) = dry_run(&policy("offline-ksk"), TWO_YEARS_ON, &extra);
    common::expect_success("dry-run offline-ksk", &output);
    assert_eq!(report["verdict"]["verdict"], "safe", "{}", report["verdict"]);
    let until = time_of(TWO_YEARS_ON);
    check_rollovers(&report, "zsk", 7, until, 10 * DAY);
    check_rollovers(&report, "ksk", 1, until, 120 * DAY);
    let ceremonies: Vec<&Value> =
        events(&report, "offline").filter(|e| e["why"].as_str().is_some_and(|w| w.starts_with("ceremony "))).collect();
    assert_eq!(ceremonies.len(), 9, "a ceremony every 90 days, one of them late: {ceremonies:?}");
    let late = time_of(FROM) + 2 * 90 * DAY + 30 * DAY;
    assert!(ceremonies.iter().any(|c| c["time"].as_i64() == Some(late)), "the third ceremony, a month late");
    assert!(events(&report, "parent").count() >= 2, "the parent took the DS changes the responses asked for");
    let drawing = std::fs::read_to_string(&svg).expect("svg");
    assert!(drawing.matches("#2e8b57").count() >= 9, "the ceremonies are drawn");

    let (output, report) = dry_run(
        &policy("offline-ksk"),
        "2027-12-01T00:00:00Z",
        &["--ceremony-every", "90d", "--late-ceremony", "2=70d"],
    );
    assert_eq!(output.status.code(), Some(1), "a rehearsal whose responses run out fails");
    assert_eq!(report["verdict"]["verdict"], "uncovered", "{}", report["verdict"]);
    assert!(report["verdict"]["reason"].as_str().is_some_and(|r| r.contains("no imported response covers")));
}
