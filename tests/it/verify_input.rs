//! `signet verify` on input it cannot use: exit 2, a message that names
//! the file and the line, and never a panic.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

fn signet_verify(zone: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_signet"))
        .arg("verify")
        .arg(zone)
        .args(["--origin", "example."])
        .args(extra)
        .output()
        .expect("run signet")
}

/// Asserts exit 2, no panic, and that stderr mentions every `needle`.
fn assert_input_error(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "expected exit 2; stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "signet panicked:\n{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}:\n{stderr}");
    }
}

const GOOD_HEAD: &str = "$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 3600\n@ NS ns1\nns1 A 192.0.2.1\n";

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

#[test]
fn missing_zone_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = signet_verify(&dir.path().join("nope.zone"), &[]);
    assert_input_error(&output, &["nope.zone"]);
}

#[test]
fn syntax_error_names_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = write(dir.path(), "bad.zone", &format!("{GOOD_HEAD}www A 192.0.2.300\n"));
    assert_input_error(&signet_verify(&zone, &[]), &["bad.zone:5"]);
    let zone = write(dir.path(), "type.zone", &format!("{GOOD_HEAD}\n\nwww BOGUSTYPE x\n"));
    assert_input_error(&signet_verify(&zone, &[]), &["type.zone:7", "BOGUSTYPE"]);
    let zone = write(dir.path(), "paren.zone", &format!("{GOOD_HEAD}txt TXT ( \"open\"\n"));
    assert_input_error(&signet_verify(&zone, &[]), &["paren.zone"]);
}

#[test]
fn zone_without_soa() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = write(dir.path(), "nosoa.zone", "$TTL 3600\n@ NS ns1\nns1 A 192.0.2.1\n");
    assert_input_error(&signet_verify(&zone, &[]), &["nosoa.zone", "SOA"]);
}

#[test]
fn records_outside_the_origin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = write(dir.path(), "outside.zone", &format!("{GOOD_HEAD}www.example.org. A 192.0.2.9\n"));
    assert_input_error(&signet_verify(&zone, &[]), &["outside.zone:5", "www.example.org."]);
}

#[test]
fn unreadable_trust_anchor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = write(dir.path(), "ok.zone", GOOD_HEAD);
    let missing = dir.path().join("missing.ds");
    let output = signet_verify(&zone, &["--trust-anchor", missing.to_str().expect("utf-8 path")]);
    assert_input_error(&output, &["missing.ds"]);
    let garbage = write(dir.path(), "garbage.ds", "example. 3600 IN DS 12345 13 2\n");
    let output = signet_verify(&zone, &["--trust-anchor", garbage.to_str().expect("utf-8 path")]);
    assert_input_error(&output, &["garbage.ds:1"]);
    let wrong_type = write(dir.path(), "a.ds", "example. 3600 IN A 192.0.2.1\n");
    let output = signet_verify(&zone, &["--trust-anchor", wrong_type.to_str().expect("utf-8 path")]);
    assert_input_error(&output, &["a.ds:1", "DS or DNSKEY"]);
}

#[test]
fn bad_arguments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = write(dir.path(), "ok.zone", GOOD_HEAD);
    assert_input_error(&signet_verify(&zone, &["--now", "tomorrow"]), &["tomorrow"]);
    assert_input_error(&signet_verify(&zone, &["--min-validity", "soon"]), &["soon"]);
}

/// Random bytes and truncations of a real zone must give exit 1 or 2 with
/// a message, never a crash.
#[test]
fn garbage_never_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seed: u64 = 0x5eed;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let base = format!(
        "{GOOD_HEAD}www A 192.0.2.2\n@ DNSKEY 257 3 13 AAAA\n@ RRSIG SOA 13 1 3600 20300101000000 20200101000000 1 example. AAAA\n"
    );
    for i in 0..40 {
        let mut bytes = base.clone().into_bytes();
        let cut = (next() as usize) % bytes.len();
        bytes.truncate(cut.max(1));
        for _ in 0..(next() % 4) {
            let at = (next() as usize) % bytes.len();
            bytes[at] = (next() % 256) as u8;
        }
        let zone = dir.path().join(format!("g{i}.zone"));
        std::fs::write(&zone, &bytes).expect("write");
        let output = signet_verify(&zone, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(matches!(output.status.code(), Some(1 | 2)), "case {i}: exit {:?}\n{stderr}", output.status);
        assert!(!stderr.contains("panicked"), "case {i} panicked:\n{stderr}");
    }
}

/// Thousands of random mutations of a real signed zone, read and verified
/// in-process: every one must end in a zone or an error, never a panic.
#[test]
fn mutated_signed_zones_never_panic() {
    if !common::have_tool("dnssec-signzone") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let unsigned = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/realistic.zone");
    common::sign_with_peer("bind", "13", "nsec3", &unsigned, "example.", &dir.path().join("s"));
    let text = std::fs::read_to_string(dir.path().join("s/signed.zone")).expect("signed zone");
    let lines: Vec<&str> = text.lines().collect();
    let origin = signet::Name::from_text("example.", None).expect("origin");
    let options = signet::VerifyOptions { now: signet::time::wall_clock(), ..Default::default() };
    let mut seed: u64 = 0x00c0_ffee;
    let mut next = move |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % bound as u64) as usize
    };
    let (mut read, mut refused) = (0, 0);
    for _ in 0..1500 {
        let mut mutated: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        for _ in 0..1 + next(3) {
            let at = next(mutated.len());
            match next(4) {
                0 => {
                    mutated.remove(at);
                }
                1 => mutated.insert(at, mutated[next(mutated.len())].clone()),
                _ => {
                    let mut bytes = mutated[at].clone().into_bytes();
                    if !bytes.is_empty() {
                        let i = next(bytes.len());
                        bytes[i] = b" \t\\\"();.0aZ*-+/=@$\x00\xff"[next(19)];
                    }
                    mutated[at] = String::from_utf8_lossy(&bytes).into_owned();
                }
            }
        }
        let joined = mutated.join("\n");
        match signet::zone::read_zone_str(&joined, &origin, Path::new("mutated.zone")) {
            Ok(zone) => {
                read += 1;
                let _ = signet::verify_zone(&zone, &options);
            }
            Err(_) => refused += 1,
        }
    }
    assert!(read > 100 && refused > 100, "the mutations exercise both paths: {read} read, {refused} refused");
}

/// `signet verify ZONE --origin example.`, killed (failing the test) if it
/// reads on past a deadline or a memory ceiling.
fn signet_verify_bounded(zone: &Path) -> Output {
    common::run_bounded(
        Command::new(env!("CARGO_BIN_EXE_signet")).arg("verify").arg(zone).args(["--origin", "example."]),
    )
}

/// A device has no end: `verify /dev/zero` and `$INCLUDE /dev/zero` are
/// refused at once, naming the file (they grew to 6 GB in 10 s).
#[test]
fn devices_are_refused_at_once() {
    let output = signet_verify_bounded(Path::new("/dev/zero"));
    assert_input_error(&output, &["/dev/zero", "not a regular file"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let zone = write(dir.path(), "inc.zone", &format!("{GOOD_HEAD}$INCLUDE /dev/zero\n"));
    assert_input_error(&signet_verify_bounded(&zone), &["inc.zone:5", "/dev/zero", "not a regular file"]);
}

/// A 100 KB token is refused with a message that shows only its start
/// (it was echoed whole).
#[test]
fn a_long_token_is_echoed_short() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = "a".repeat(100_000);
    for (name, text) in [
        ("owner.zone", format!("{GOOD_HEAD}{long} A 192.0.2.1\n")),
        ("rdata.zone", format!("{GOOD_HEAD}www A {long}\n")),
        ("txt.zone", format!("{GOOD_HEAD}www TXT {long}\n")),
        ("type.zone", format!("{GOOD_HEAD}www {long} x\n")),
    ] {
        let zone = write(dir.path(), name, &text);
        let output = signet_verify_bounded(&zone);
        assert_input_error(&output, &[&format!("{name}:5"), &format!("{}…", &long[..40])]);
        assert!(output.stderr.len() < 400, "{name}: {} bytes of message", output.stderr.len());
    }
}

/// An entry (a record with its parenthesised lines) longer than 1 MiB is
/// refused at its line, on the serial path (small files) and on the
/// parallel one (from 8 MiB), quickly and with a short message.
#[test]
fn an_endless_entry_is_refused_on_both_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let strings = "\"x\" ".repeat(300_000);
    let serial = write(dir.path(), "paren.zone", &format!("{GOOD_HEAD}www TXT ( {strings}\n)\n"));
    let big_head = "example. 3600 SOA ns1.example. h.example. 1 2 3 4 5\nexample. 3600 NS ns1.example.\n";
    let parallel = write(dir.path(), "big.zone", &format!("{big_head}{}\n", "a".repeat(9 << 20)));
    for (zone, at) in [(serial, "paren.zone:5"), (parallel, "big.zone:3")] {
        let output = signet_verify_bounded(&zone);
        assert_input_error(&output, &[at, "longer than 1 MiB"]);
        assert!(output.stderr.len() < 400, "{at}: {} bytes of message", output.stderr.len());
    }
}
