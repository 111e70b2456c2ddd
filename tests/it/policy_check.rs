//! `signet policy check`: the example policies in policies/ pass; policies
//! that cannot work are refused naming the file, the field and the reason;
//! unwise ones pass with a warning citing the RFC.

use crate::common;

use std::path::Path;
use std::process::Output;

fn check(path: &Path) -> Output {
    common::run(common::signet().args(["policy", "check"]).arg(path))
}

#[test]
fn example_policies_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).expect("policies/").flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let output = check(&path);
            common::expect_success(&format!("policy check {}", path.display()), &output);
            count += 1;
        }
    }
    assert_eq!(count, 4, "four example policies");
}

#[test]
fn policies_that_cannot_work_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("[signatures]\nvalidity = \"7d\"\nrefresh = \"8d\"\n", "signatures.refresh"),
        ("[signatures]\nrefresh = \"12h\"\n[zone]\nmax-ttl = \"1d\"\n", "cached signatures expire"),
        ("[keys]\nalgorithm = \"RSASHA256\"\nbits = 1024\n", "keys.bits"),
        ("[keys]\nalgorithm = 16\n", "unsupported algorithm \"16\""),
        ("[keys]\nzsk-lifetime = \"1d\"\n", "keys.zsk-lifetime: 1d is shorter than the rollover it needs"),
        ("[keys]\nksk-lifetime = \"2d\"\n", "keys.ksk-lifetime"),
        ("[denial]\ntype = \"nsec\"\nopt-out = true\n", "denial.opt-out"),
        ("[denial]\niterations = 500\n", "RFC 9276"),
        ("[keys]\ndnskey-ttl = \"2d\"\n", "keys.dnskey-ttl"),
        (
            "[keys]\npurge-after = \"101y\"\n",
            "keys.purge-after: 36890d 6h is longer than 36525d; to keep removed keys for ever, write 0",
        ),
        ("[keys]\npurge-after = -1\n", ":2: a duration cannot be negative"),
        ("[zone]\nmax-ttl = \"soon\"\n", ":2: bad duration \"soon\""),
        ("[keys]\ncolour = \"blue\"\n", ":2: unknown field `colour`"),
        ("[journal]\nmax-versions = 100001\n", "journal.max-versions: 100001 is more than 100000"),
        ("[journal]\nmax-size = \"2TiB\"\n", "journal.max-size"),
        ("[journal]\nmax-size = \"256MB\"\n", ":2: bad size \"256MB\""),
        ("[parent]\ncheck-interval-min = 0\n", "parent.check-interval-min: 0 would ask"),
        (
            "[parent]\ncheck-interval-min = \"2h\"\ncheck-interval = \"1h\"\n",
            "parent.check-interval: 1h is shorter than parent.check-interval-min (2h)",
        ),
        ("[parent]\nsubmit-command = \"  \"\n", "parent.submit-command: empty"),
        ("[keys\n", ":1:"),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text).expect("write");
        let output = check(&path);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert!(
            stderr.contains(&format!("bad{i}.toml")) && stderr.contains(needle),
            "{text}: expected {needle:?} in {stderr}"
        );
    }
}

#[test]
fn nsec3_iterations_warn_citing_rfc9276() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("iterations.toml");
    std::fs::write(&path, "[denial]\ntype = \"nsec3\"\niterations = 10\n").expect("write");
    let output = check(&path);
    common::expect_success("policy check", &output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("denial.iterations") && stderr.contains("RFC 9276"),
        "{stderr}"
    );
}

#[test]
fn purge_after_defaults_to_90_days_and_0_is_never() {
    use signet::policy::Policy;
    let read = |text: &str| Policy::from_text(text, Path::new("p.toml")).expect("a valid policy").0.keys.purge_after;
    assert_eq!(read(""), 90 * 86400, "BIND's purge-keys default");
    assert_eq!(read("[keys]\npurge-after = \"0\"\n"), 0);
    assert_eq!(read("[keys]\npurge-after = 0\n"), 0);
    assert_eq!(read("[keys]\npurge-after = \"30d\"\n"), 30 * 86400);
    assert_eq!(read("[keys]\npurge-after = \"100y\"\n"), signet::policy::MAX_PURGE_AFTER, "100 years, the longest");
}

#[test]
fn journal_bounds_default_to_100_versions_and_256_mib() {
    use signet::policy::{JournalPolicy, Policy};
    let read = |text: &str| Policy::from_text(text, Path::new("p.toml")).expect("a valid policy").0.journal;
    assert_eq!(read(""), JournalPolicy { max_versions: 100, max_size: 256 << 20 });
    let set = read("[journal]\nmax-versions = 0\nmax-size = \"1GiB\"\n");
    assert_eq!(set, JournalPolicy { max_versions: 0, max_size: 1 << 30 });
    assert_eq!(read("[journal]\nmax-size = 4096\n").max_size, 4096);
    assert_eq!(read("[journal]\nmax-size = \"64K\"\n").max_size, 64 << 10);
}

#[test]
fn full_verification_interval_defaults_to_a_day_and_0_is_always() {
    use signet::policy::Policy;
    let read = |text: &str| {
        Policy::from_text(text, Path::new("p.toml")).expect("a valid policy").0.gate.full_verification_interval
    };
    assert_eq!(read(""), 86400);
    assert_eq!(read("[gate]\nfull-verification-interval = 0\n"), 0);
    assert_eq!(read("[gate]\nfull-verification-interval = \"6h\"\n"), 6 * 3600);
    let refused = Policy::from_text("[gate]\nmemo = false\n", Path::new("p.toml")).expect_err("unknown field");
    assert!(refused.to_string().contains("unknown field `memo`"), "{refused}");
}

/// Every duration field has a limit the RRSIG and calendar arithmetic can
/// carry: `validity = "36500d"` used to pass the check, and the gate then
/// found every signature expired in 1990 (the expiration wrapped around
/// the 32-bit serial). Each field past its limit is refused, naming the
/// field and the limit.
#[test]
fn durations_past_their_limit_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lifetimes = ["ksk-lifetime", "zsk-lifetime"].map(|f| ("keys", f, "40000d", "36525d"));
    let others = [
        ("keys", "dnskey-ttl"),
        ("keys", "publish-safety"),
        ("keys", "retire-safety"),
        ("signatures", "validity"),
        ("signatures", "dnskey-validity"),
        ("signatures", "refresh"),
        ("signatures", "jitter"),
        ("signatures", "inception-offset"),
        ("zone", "propagation-delay"),
        ("zone", "max-ttl"),
        ("parent", "ds-ttl"),
        ("parent", "propagation-delay"),
        ("parent", "registration-delay"),
        ("gate", "full-verification-interval"),
    ]
    .map(|(section, field)| (section, field, "36500d", "3660d"));
    for (i, (section, field, value, limit)) in lifetimes.into_iter().chain(others).enumerate() {
        let path = dir.path().join(format!("long{i}.toml"));
        std::fs::write(&path, format!("[{section}]\n{field} = \"{value}\"\n")).expect("write");
        let output = check(&path);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{section}.{field} = {value}: {stderr}");
        let needle = format!("{section}.{field}: {value} exceeds the limit of {limit}");
        assert!(stderr.contains(&needle), "{section}.{field}: expected {needle:?} in {stderr}");
    }
    let path = dir.path().join("huge.toml");
    std::fs::write(&path, "[signatures]\nvalidity = \"18446744073709551615s\"\n").expect("write");
    let output = check(&path);
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
}

/// A policy that is a device or far too long is refused at once (reading
/// /dev/zero had no end).
#[test]
fn endless_policy_files_are_refused() {
    let output = common::run_bounded(common::signet().args(["policy", "check", "/dev/zero"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/dev/zero: not a regular file"), "{stderr}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.toml");
    std::fs::write(&path, format!("# {}\n", "x".repeat(2 << 20))).expect("write");
    let output = common::run_bounded(common::signet().args(["policy", "check"]).arg(&path));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("longer than 1 MiB"), "{stderr}");
}
