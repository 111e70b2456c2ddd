//! The zone content rules through the real binary: for every rule a small
//! zone that breaks it. `signet sign` (one-shot and managed) refuses it
//! with exit 2 before any key is opened or made, naming file, owner, type
//! and rule, and writes nothing; `signet verify` reports the rule's code
//! on a signed version of it (signed with signet's library, which signs
//! whatever it is given) and nothing else. Where BIND's named-checkzone
//! and Knot's kzonecheck are installed, each case also checks what they
//! do with the same input, as the table in docs/user-guide.md (content rules) says.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::Store;
use signet::keys::{KeyUri, PublishedKey, Role, SigningKey, open_key};
use signet::policy::Policy;
use signet::sign::{SignSettings, Signer, SigningKeys, sign_zone};
use signet::zone::{Name, read_zone_file};

const ORIGIN: &str = "example.";
const HEAD: &str = "$ORIGIN example.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n";

/// What a peer does with a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Refuses,
    Accepts,
}
use Peer::{Accepts, Refuses};

/// A zone breaking one rule, and what is said about it.
struct Case {
    code: &'static str,
    zone: String,
    owner: &'static str,
    rtype: &'static str,
    named_checkzone: Peer,
    kzonecheck: Peer,
}

fn case(code: &'static str, body: &str, at: (&'static str, &'static str), peers: (Peer, Peer)) -> Case {
    Case {
        code,
        zone: format!("{HEAD}{body}"),
        owner: at.0,
        rtype: at.1,
        named_checkzone: peers.0,
        kzonecheck: peers.1,
    }
}

fn ds(digest_hex: &str) -> String {
    format!("DS 12345 13 2 {digest_hex}")
}

fn cases() -> Vec<Case> {
    let good_ds = ds(&"00".repeat(32));
    let mut cases = vec![
        case("cname-and-other-data", "www CNAME x.net.\nwww A 192.0.2.4\n", ("www.example.", "A"), (Refuses, Refuses)),
        case("multiple-cnames", "www CNAME x.net.\nwww CNAME y.net.\n", ("www.example.", "CNAME"), (Refuses, Refuses)),
        case("cname-at-apex", "@ CNAME x.net.\n", ("example.", "CNAME"), (Refuses, Refuses)),
        case("multiple-dnames", "d DNAME x.net.\nd DNAME y.net.\n", ("d.example.", "DNAME"), (Refuses, Refuses)),
        case("data-below-dname", "d DNAME x.net.\na.d A 192.0.2.5\n", ("a.d.example.", "A"), (Accepts, Refuses)),
        case("ds-at-apex", &format!("@ {good_ds}\n"), ("example.", "DS"), (Refuses, Accepts)),
        case(
            "ds-without-delegation",
            &format!("x A 192.0.2.9\nx {good_ds}\n"),
            ("x.example.", "DS"),
            (Accepts, Accepts),
        ),
        case(
            "ns-or-ds-below-delegation",
            "sub NS ns.other.net.\na.sub NS ns.other.net.\n",
            ("a.sub.example.", "NS"),
            (Accepts, Accepts),
        ),
        case(
            "ns-or-ds-below-delegation",
            &format!("sub NS ns.other.net.\na.sub {good_ds}\n"),
            ("a.sub.example.", "DS"),
            (Accepts, Accepts),
        ),
        case("missing-glue", "sub NS ns.sub\n", ("sub.example.", "NS"), (Accepts, Refuses)),
        case("missing-glue", "@ NS ns2\n", ("example.", "NS"), (Refuses, Refuses)),
        case(
            "ds-digest-length",
            &format!("sub NS ns.other.net.\nsub {}\n", ds("0000")),
            ("sub.example.", "DS"),
            (Refuses, Refuses),
        ),
        case("rdata-length", "x TYPE108 \\# 5 0102030405\n", ("x.example.", "EUI48"), (Refuses, Accepts)),
        case("type-not-in-zone", "x TYPE0 \\# 0\n", ("x.example.", "TYPE0"), (Refuses, Accepts)),
        case("type-not-in-zone", "x MD ns.other.net.\n", ("x.example.", "MD"), (Refuses, Refuses)),
        case("type-not-in-zone", "x NULL \\# 3 010203\n", ("x.example.", "NULL"), (Accepts, Refuses)),
        case("wildcard-delegation", "* NS ns.other.net.\n", ("*.example.", "NS"), (Refuses, Accepts)),
    ];
    cases.push(Case {
        zone: "$ORIGIN example.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\nns1 A 192.0.2.1\n".to_owned(),
        ..case("apex-without-ns", "", ("example.", "NS"), (Refuses, Refuses))
    });
    cases
}

/// Keys in a soft store, a policy, a directory for the cases.
struct Setup {
    dir: tempfile::TempDir,
    ksk: String,
    zsk: String,
    policy: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::soft(&dir.path().join("keys"));
        let ksk = store.generate("13", "ksk", "ksk");
        let zsk = store.generate("13", "zsk", "zsk");
        let policy = common::write_policy(dir.path(), "policy", "13", "nsec", "");
        Setup { dir, ksk, zsk, policy }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write zone");
        path
    }

    /// `signet sign` one-shot with `keys` into `out`.
    fn sign(&self, zone: &Path, keys: [&str; 2], out: &Path) -> Output {
        common::run(
            common::signet()
                .arg("sign")
                .arg(zone)
                .args(["--origin", ORIGIN, "--key", &format!("{}:ksk", keys[0])])
                .args(["--key", &format!("{}:zsk", keys[1])])
                .arg("--policy")
                .arg(&self.policy)
                .arg("-o")
                .arg(out),
        )
    }

    /// Signs `zone` with signet's library (no content check there) into `out`.
    fn sign_with_library(&self, zone: &Path, out: &Path) {
        let origin = Name::from_text(ORIGIN, None).expect("origin");
        let unsigned = read_zone_file(zone, &origin).expect("the case reads");
        let (policy, _) = Policy::from_file(&self.policy).expect("policy");
        let open = |uri: &str| open_key(&KeyUri::parse(uri).expect("uri")).expect("key opens");
        let (ksk, zsk): (Box<dyn SigningKey>, Box<dyn SigningKey>) = (open(&self.ksk), open(&self.zsk));
        let (ksk_published, zsk_published) =
            (PublishedKey::new(ksk.as_ref(), Role::Ksk), PublishedKey::new(zsk.as_ref(), Role::Zsk));
        let plan = SigningKeys {
            key_signers: vec![Signer { key: ksk.as_ref(), tag: ksk_published.tag }],
            zone_signers: vec![Signer { key: zsk.as_ref(), tag: zsk_published.tag }],
            published: vec![ksk_published, zsk_published],
            cds: Vec::new(),
            ..SigningKeys::default()
        };
        let settings = SignSettings::from_policy(&policy, signet::time::wall_clock(), Vec::new());
        let mut file = std::fs::File::create(out).expect("create signed file");
        sign_zone(unsigned, &plan, &settings, &mut file).expect("the library signs it");
    }
}

fn text(value: &serde_json::Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Exit 2, stderr naming every needle, nothing at `out`, no temporary file.
fn assert_refused(what: &str, output: &Output, needles: &[&str], out: &Path) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "{what}: stderr:\n{err}");
    for needle in needles {
        assert!(err.contains(needle), "{what}: stderr does not name {needle:?}:\n{err}");
    }
    assert!(!out.exists(), "{what}: {} was written", out.display());
    let dir = out.parent().expect("dir");
    let leftovers = std::fs::read_dir(dir)
        .expect("list")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".signet-"));
    assert_eq!(leftovers.count(), 0, "{what}: temporary files left");
}

/// What named-checkzone and kzonecheck do with `zone` (None: not installed).
fn peers(zone: &Path) -> (Option<Peer>, Option<Peer>) {
    let verdict = |output: Output| if output.status.success() { Accepts } else { Refuses };
    let bind = common::have_tool("named-checkzone").then(|| {
        verdict(common::run(
            std::process::Command::new("named-checkzone").args(["-k", "fail", "-n", "fail", ORIGIN]).arg(zone),
        ))
    });
    let knot = common::have_tool("kzonecheck")
        .then(|| verdict(common::run(std::process::Command::new("kzonecheck").args(["-o", ORIGIN]).arg(zone))));
    (bind, knot)
}

fn assert_peers(what: &str, zone: &Path, named_checkzone: Peer, kzonecheck: Peer) {
    let (bind, knot) = peers(zone);
    assert!(
        bind.is_none_or(|b| b == named_checkzone),
        "{what}: named-checkzone {bind:?}, the table says {named_checkzone:?}"
    );
    assert!(knot.is_none_or(|k| k == kzonecheck), "{what}: kzonecheck {knot:?}, the table says {kzonecheck:?}");
}

#[test]
fn every_rule_is_refused_by_the_signer_and_reported_by_the_verifier() {
    let setup = Setup::new();
    for (i, case) in cases().iter().enumerate() {
        let what = format!("case {i} ({})", case.code);
        let zone = setup.write(&format!("case{i}.zone"), &case.zone);
        let out = setup.dir.path().join(format!("case{i}.signed"));
        let refused = setup.sign(&zone, [&setup.ksk, &setup.zsk], &out);
        let owner_type = format!("{}/{}", case.owner, case.rtype);
        assert_refused(&what, &refused, &[&format!("case{i}.zone"), &owner_type, case.code], &out);

        let signed = setup.dir.path().join(format!("case{i}.library"));
        setup.sign_with_library(&zone, &signed);
        let (code, report) =
            common::signet_verify_json(env!("CARGO_BIN_EXE_signet"), &signed, ORIGIN, None, common::At::WallClock);
        assert_eq!(code, Some(1), "{what}: signet verify exit code; report {report}");
        let errors: Vec<(String, String, String)> = report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["severity"] == "error")
            .map(|f| (text(&f["code"]), text(&f["owner"]), text(&f["rtype"])))
            .collect();
        let expected = (case.code.to_owned(), case.owner.to_owned(), case.rtype.to_owned());
        assert_eq!(errors, [expected], "{what}: the verifier's errors");

        assert_peers(&what, &zone, case.named_checkzone, case.kzonecheck);
    }
}

/// What the reader refuses never reaches the content rules: both commands
/// exit 2 naming file and line.
#[test]
fn what_the_reader_refuses_names_file_and_line() {
    let setup = Setup::new();
    let cases = [
        ("x SOA ns1 h 1 2 3 4 5\n", "reader6.zone:6", (Refuses, Accepts)),
        ("@ SOA ns1 h 2 2 3 4 5\n", "reader6.zone:6", (Refuses, Accepts)),
        ("x TYPE251 \\# 0\n", "reader6.zone:6", (Refuses, Accepts)),
        ("x TYPE41 \\# 0\n", "reader6.zone:6", (Refuses, Accepts)),
        ("x A \\# 3 010203\n", "reader6.zone:6", (Refuses, Accepts)),
        ("x AAAA \\# 4 01020304\n", "reader6.zone:6", (Refuses, Accepts)),
    ];
    let out = setup.dir.path().join("reader.signed");
    for (body, needle, (bind, knot)) in cases {
        let zone = setup.write("reader6.zone", &format!("{HEAD}{body}"));
        let refused = setup.sign(&zone, [&setup.ksk, &setup.zsk], &out);
        assert_refused(body, &refused, &[needle], &out);
        let verified = common::run(common::signet().args(["verify", "--origin", ORIGIN]).arg(&zone));
        assert_eq!(verified.status.code(), Some(2), "{body}: verify: {}", stderr(&verified));
        assert!(stderr(&verified).contains(needle), "{body}: verify: {}", stderr(&verified));
        assert_peers(body, &zone, bind, knot);
    }
    let zone = setup.write("nosoa.zone", "$ORIGIN example.\n$TTL 300\n@ NS ns1\nns1 A 192.0.2.1\n");
    let refused = setup.sign(&zone, [&setup.ksk, &setup.zsk], &out);
    assert_refused("no SOA", &refused, &["nosoa.zone", "no SOA record at the apex"], &out);
    assert_peers("no SOA", &zone, Refuses, Refuses);
}

/// The check comes before the keys: with key files that do not exist, the
/// refusal is still the content rule's.
#[test]
fn the_content_check_comes_before_any_key() {
    let setup = Setup::new();
    let zone = setup.write("cname.zone", &format!("{HEAD}www CNAME x.net.\nwww A 192.0.2.4\n"));
    let out = setup.dir.path().join("cname.signed");
    let missing = format!("file:{}", setup.dir.path().join("nonexistent.pk8").display());
    let refused = setup.sign(&zone, [&missing, &missing], &out);
    assert_refused("missing keys", &refused, &["cname.zone", "www.example./A", "cname-and-other-data"], &out);
    assert!(!stderr(&refused).contains("nonexistent.pk8"), "a key was opened: {}", stderr(&refused));
}

/// A managed zone whose input breaks a rule: exit 2, no key made, the
/// output not written.
#[test]
fn a_managed_run_refuses_before_making_keys() {
    let setup = Setup::new();
    let dir = setup.dir.path();
    let keys = dir.join("managed-keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    let policy = dir.join("managed.toml");
    std::fs::write(
        &policy,
        format!("[keys]\nalgorithm = 13\nstore = \"file:{}\"\n[denial]\ntype = \"nsec\"\n", keys.display()),
    )
    .expect("write policy");
    let zone = setup.write("managed.zone", &format!("{HEAD}* NS ns.other.net.\n"));
    let out = dir.join("managed.signed");
    let db = dir.join("signet.db");
    let signet = |args: &[&str]| common::run(common::signet().arg("--db").arg(&db).args(args));
    for args in [
        vec!["init"],
        vec!["policy", "import", policy.to_str().expect("path"), "--name", "p"],
        vec![
            "zone",
            "add",
            ORIGIN,
            "--policy",
            "p",
            "--input",
            zone.to_str().expect("path"),
            "--output",
            out.to_str().expect("path"),
        ],
    ] {
        common::expect_success(&args.join(" "), &signet(&args));
    }
    let refused = signet(&["sign", ORIGIN]);
    assert_refused("managed", &refused, &["managed.zone", "*.example./NS", "wildcard-delegation"], &out);
    assert_eq!(std::fs::read_dir(&keys).expect("list").count(), 0, "a key was made");
}

/// Zones that BIND and Knot accept, with what is close to a rule, are
/// signed and verified: an apex DNAME, sibling glue, a name server below
/// another delegation, one found through a wildcard, DNSSEC records beside
/// a CNAME (dropped and made anew), an unknown DS digest type.
#[test]
fn legal_neighbours_of_the_rules_are_accepted() {
    let setup = Setup::new();
    let apex_dname =
        "$ORIGIN example.\n$TTL 300\n@ SOA ns.other.net. h 1 2 3 4 5\n@ NS ns.other.net.\n@ DNAME x.net.\n";
    let zones = [
        apex_dname.to_owned(),
        format!("{HEAD}a NS ns.b\nb NS ns.b\nns.b A 192.0.2.8\nc NS ns.d\nd NS ns.other.net.\n"),
        format!("{HEAD}a NS x.w\n*.w A 192.0.2.7\n"),
        format!("{HEAD}www CNAME x.net.\nwww NSEC3PARAM 1 0 0 -\n"),
        format!("{HEAD}sub NS ns.other.net.\nsub DS 12345 13 99 00\n"),
    ];
    for (i, text) in zones.iter().enumerate() {
        let zone = setup.write(&format!("legal{i}.zone"), text);
        let out = setup.dir.path().join(format!("legal{i}.signed"));
        let signed = setup.sign(&zone, [&setup.ksk, &setup.zsk], &out);
        common::expect_success(&format!("signing legal{i}.zone"), &signed);
        let (code, report) =
            common::signet_verify_json(env!("CARGO_BIN_EXE_signet"), &out, ORIGIN, None, common::At::WallClock);
        assert_eq!(code, Some(0), "legal{i}: {report}");
        if i < 3 {
            assert_peers(&format!("legal{i}"), &zone, Accepts, Accepts);
        }
    }
}
