//! The PKCS#11 key store against a real SoftHSM 2 token: no mocks.
//!
//! SoftHSM finds its tokens through `SOFTHSM2_CONF`, read when the module
//! is initialised, and a test cannot set an environment variable (Rust
//! 2024 makes `set_var` unsafe, and signet forbids unsafe code). So the
//! one ordinary test here, [`softhsm`], makes the tokens in a temporary
//! directory with `hsm/make-token.sh`, then runs this same test binary
//! again with `SOFTHSM2_CONF` and the PIN in its environment, running the
//! ignored `token_*` tests there. Run alone, those tests say so and pass.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use signet::keys::uri::{Pkcs11Uri, SOFTHSM_MODULE};
use signet::keys::{
    Algorithm, Destroyed, KeyError, KeyUri, PublishedKey, Role, SigningKey, destroy_key, generate_key, open_key,
    open_store, proof,
};
use signet::verify::crypto::PublicKey;

/// The token the keys are made in.
const TOKEN: &str = "signet-test";
/// A token that only the fault test logs in to (a wrong PIN is not even
/// checked while the process is logged in to the token).
const FAULTS: &str = "signet-faults";
/// The user PIN of both tokens.
const PIN: &str = "4711-test-pin";
/// Set in the child run's environment.
const INSIDE: &str = "SIGNET_TEST_INSIDE_SOFTHSM";
/// The inner tests, run by [`softhsm`] in the child.
const INNER_TESTS: usize = 9;

#[test]
fn softhsm() {
    if !common::have_tool("softhsm2-util") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = make_tokens(dir.path());
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--ignored", "--test-threads", "1", "keys_pkcs11::token_"])
        .env("SOFTHSM2_CONF", &conf)
        .env("SIGNET_PKCS11_PIN", PIN)
        .env(INSIDE, "1")
        .env_remove("SIGNET_PKCS11_MODULE")
        .output()
        .expect("run the token tests");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "token tests failed (output above)");
    let summary = format!("test result: ok. {INNER_TESTS} passed");
    assert!(stdout.contains(&summary), "expected {summary:?}: did a token test go missing?");
}

/// Makes both tokens in `dir` with hsm/make-token.sh (twice, to show it is
/// idempotent); returns the SoftHSM configuration file.
fn make_tokens(dir: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hsm/make-token.sh");
    let conf = dir.join("softhsm2.conf");
    for label in [TOKEN, FAULTS, TOKEN] {
        let output =
            common::run(Command::new(&script).arg(dir).env("SIGNET_TOKEN_LABEL", label).env("SIGNET_PKCS11_PIN", PIN));
        common::expect_success("hsm/make-token.sh", &output);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(stdout.trim(), format!("export SOFTHSM2_CONF={}", conf.display()));
        let all = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
        assert!(!all.contains(PIN), "make-token.sh printed the PIN");
    }
    let listing = common::run(Command::new("softhsm2-util").arg("--show-slots").env("SOFTHSM2_CONF", &conf));
    let labels = String::from_utf8_lossy(&listing.stdout).matches(TOKEN).count();
    assert_eq!(labels, 1, "one token labelled {TOKEN}, however often the script runs");
    conf
}

/// Are we in the child run that SoftHSM is set up for?
fn inside() -> bool {
    let inside = std::env::var_os(INSIDE).is_some();
    if !inside {
        eprintln!("note: this test runs inside the `softhsm` test, which sets up a token for it");
    }
    inside
}

fn store(token: &str) -> Pkcs11Uri {
    match KeyUri::parse(&format!("pkcs11:token={token}")) {
        Ok(KeyUri::Pkcs11(uri)) => uri,
        other => panic!("store URI: {other:?}"),
    }
}

fn key_id(key: &dyn SigningKey) -> Vec<u8> {
    match key.uri() {
        KeyUri::Pkcs11(uri) => uri.id.clone().expect("a generated key has an id"),
        other => panic!("not a PKCS#11 key: {other}"),
    }
}

fn generate(algorithm: Algorithm, label: &str) -> Box<dyn SigningKey> {
    generate_key(&KeyUri::Pkcs11(store(TOKEN)), algorithm, None, label)
        .unwrap_or_else(|e| panic!("generate {algorithm}: {e}"))
}

/// Generates a key, reopens it by URI, proves it, signs and verifies, and
/// checks in the token that its private half cannot leave.
fn round_trip(algorithm: Algorithm) {
    let label = format!("zsk-{}", algorithm.mnemonic().to_ascii_lowercase());
    let made = generate(algorithm, &label);
    let id = key_id(made.as_ref());
    let uri = KeyUri::Pkcs11(store(TOKEN).with_key(&id, &label));
    let reparsed = KeyUri::parse(&uri.to_string()).expect("the key URI reparses");
    assert_eq!(reparsed, uri);
    let key = open_key(&reparsed).unwrap_or_else(|e| panic!("reopen {reparsed}: {e}"));
    assert_eq!(key.algorithm(), algorithm);
    assert_eq!(key.public_key(), made.public_key(), "reopened key has another public key");

    let published = PublishedKey::new(key.as_ref(), Role::Zsk);
    proof::prove(key.as_ref(), &published).unwrap_or_else(|e| panic!("{algorithm}: {e}"));
    let data = b"www.example. 3600 IN A 192.0.2.1, more or less";
    let signature = key.sign(data).expect("sign");
    PublicKey::from_dnskey(algorithm.number(), published.public_key())
        .expect("DNSKEY")
        .verify(data, &signature)
        .unwrap_or_else(|e| panic!("{algorithm} signature does not verify: {e}"));
    assert_private_stays_in(TOKEN, &id);
}

/// A logged-in session on `token` through cryptoki directly, not signet.
fn session(token: &str) -> Session {
    let context = Pkcs11::new(SOFTHSM_MODULE).expect("load SoftHSM");
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = context
        .get_slots_with_token()
        .expect("slots")
        .into_iter()
        .find(|s| context.get_token_info(*s).is_ok_and(|i| i.label().trim() == token))
        .expect("the token");
    let session = context.open_rw_session(slot).expect("session");
    match session.login(UserType::User, Some(&AuthPin::from(PIN))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login: {e}"),
    }
    session
}

/// Looks at the private key object through cryptoki directly.
fn assert_private_stays_in(token: &str, id: &[u8]) {
    let session = session(token);
    let template = [Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(id.to_vec())];
    let found = session.find_objects(&template).expect("find");
    assert_eq!(found.len(), 1, "one private key with the id");
    let kinds = [
        AttributeType::Sensitive,
        AttributeType::Extractable,
        AttributeType::Token,
        AttributeType::AlwaysSensitive,
        AttributeType::NeverExtractable,
    ];
    let attributes = session.get_attributes(found[0], &kinds).expect("attributes");
    for attribute in &attributes {
        match attribute {
            Attribute::Sensitive(b) | Attribute::Token(b) | Attribute::AlwaysSensitive(b) => assert!(b),
            Attribute::NeverExtractable(b) => assert!(b),
            Attribute::Extractable(b) => assert!(!b, "extractable private key"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(attributes.len(), kinds.len());
    let value = session.get_attributes(found[0], &[AttributeType::Value]);
    assert!(
        !matches!(&value, Ok(v) if v.iter().any(|a| matches!(a, Attribute::Value(_)))),
        "the token handed out CKA_VALUE of a private key"
    );
}

#[test]
#[ignore = "run by the softhsm test"]
fn token_rsasha256() {
    if inside() {
        round_trip(Algorithm::RsaSha256);
    }
}

#[test]
#[ignore = "run by the softhsm test"]
fn token_ecdsap256sha256() {
    if inside() {
        round_trip(Algorithm::EcdsaP256Sha256);
    }
}

#[test]
#[ignore = "run by the softhsm test"]
fn token_ecdsap384sha384() {
    if inside() {
        round_trip(Algorithm::EcdsaP384Sha384);
    }
}

#[test]
#[ignore = "run by the softhsm test"]
fn token_ed25519() {
    if inside() {
        round_trip(Algorithm::Ed25519);
    }
}

#[test]
#[ignore = "run by the softhsm test"]
fn token_impostor_fails_the_proof() {
    if !inside() {
        return;
    }
    let a = generate(Algorithm::EcdsaP256Sha256, "impostor-a");
    let b = generate(Algorithm::EcdsaP256Sha256, "impostor-b");
    let published_b = PublishedKey::new(b.as_ref(), Role::Ksk);
    proof::prove(b.as_ref(), &published_b).expect("b proves b");
    let err = proof::prove(a.as_ref(), &published_b).expect_err("a must not pass for b");
    assert!(matches!(err, KeyError::ProofFailed { key_tag, .. } if key_tag == published_b.tag), "{err:?}");
    let message = err.to_string();
    let id_a = data_encoding::HEXLOWER.encode(&key_id(a.as_ref()));
    for needle in [TOKEN.to_owned(), id_a, published_b.tag.to_string()] {
        assert!(message.contains(&needle), "{message:?} does not name {needle}");
    }
    let ed = generate(Algorithm::Ed25519, "impostor-ed");
    let err = proof::prove(ed.as_ref(), &published_b).expect_err("another algorithm");
    assert!(matches!(err, KeyError::ProofFailed { .. }), "{err:?}");
}

#[test]
#[ignore = "run by the softhsm test"]
fn token_faults_are_errors() {
    if !inside() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = "wrong-pin-93817";
    let wrong_file = dir.path().join("wrong-pin");
    std::fs::write(&wrong_file, format!("{wrong}\n")).expect("write");
    let with_pin = |token: &str, file: &Path| {
        KeyUri::parse(&format!("pkcs11:token={token}?pin-source=file:{}", file.display())).expect("URI")
    };

    // Nobody in this process is logged in to FAULTS: the PIN is checked.
    let err = open_store(&with_pin(FAULTS, &wrong_file)).expect_err("wrong PIN");
    let shown = format!("{err} {err:?}");
    assert!(matches!(&err, KeyError::Login { reason, .. } if reason == "CKR_PIN_INCORRECT"), "{shown}");
    assert!(!shown.contains(wrong), "the error shows the PIN: {shown}");
    assert!(shown.contains(FAULTS), "the error names the token: {shown}");

    let right_file = dir.path().join("pin");
    std::fs::write(&right_file, format!("{PIN}\n")).expect("write");
    let opened = open_store(&with_pin(FAULTS, &right_file)).expect("the right PIN, from a file with a newline");
    assert!(!format!("{opened:?}").contains(PIN), "Debug shows the PIN");
    drop(opened);

    let err = open_store(
        &KeyUri::parse(&format!("pkcs11:token={FAULTS}?pin-source=env:SIGNET_TEST_UNSET_PIN")).expect("URI"),
    )
    .expect_err("no PIN");
    assert!(matches!(&err, KeyError::NoPin(m) if m.contains("SIGNET_TEST_UNSET_PIN")), "{err:?}");

    let err = open_store(&KeyUri::parse("pkcs11:token=no-such-token").expect("URI")).expect_err("no token");
    assert!(matches!(&err, KeyError::NoToken { token, .. } if token == "no-such-token"), "{err:?}");

    let missing = format!("pkcs11:token={TOKEN};id=%de%ad%be%ef%00%11%22%33");
    let err = open_key(&KeyUri::parse(&missing).expect("URI")).expect_err("no key");
    assert!(matches!(&err, KeyError::NoKey { id, what: "private key", .. } if id == "deadbeef00112233"), "{err:?}");

    for module in ["/nonexistent/libnope.so", "/etc/hostname"] {
        let uri = KeyUri::parse(&format!("pkcs11:token={TOKEN}?module-path={module}")).expect("URI");
        let err = open_store(&uri).expect_err("no module");
        assert!(matches!(&err, KeyError::Module { path, .. } if path == module), "{err:?}");
    }
}

#[test]
#[ignore = "run by the softhsm test"]
fn token_parallel_signing() {
    if !inside() {
        return;
    }
    let key = generate(Algorithm::EcdsaP256Sha256, "parallel");
    let public = PublicKey::from_dnskey(key.algorithm().number(), key.public_key()).expect("DNSKEY");
    let (key, public) = (key.as_ref(), &public);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2u32)
            .map(|thread| {
                scope.spawn(move || {
                    for n in 0..1000u32 {
                        let probe = format!("probe {thread} {n}");
                        let signature = key.sign(probe.as_bytes()).expect("sign");
                        public.verify(probe.as_bytes(), &signature).expect("verify");
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("signing thread");
        }
    });
}

/// The private and public key objects in `token` with CKA_ID `id`, and
/// all key objects there, listed through cryptoki.
fn key_objects(token: &str, id: &[u8]) -> (usize, usize, usize) {
    let session = session(token);
    let count = |template: &[Attribute]| session.find_objects(template).expect("find").len();
    let with_id = |class| count(&[Attribute::Class(class), Attribute::Id(id.to_vec())]);
    let all =
        count(&[Attribute::Class(ObjectClass::PRIVATE_KEY)]) + count(&[Attribute::Class(ObjectClass::PUBLIC_KEY)]);
    (with_id(ObjectClass::PRIVATE_KEY), with_id(ObjectClass::PUBLIC_KEY), all)
}

fn signs_and_verifies(key: &dyn SigningKey) {
    let public = PublicKey::from_dnskey(key.algorithm().number(), key.public_key()).expect("DNSKEY");
    let signature = key.sign(b"the survivor").expect("sign");
    public.verify(b"the survivor", &signature).expect("verify");
}

#[test]
#[ignore = "run by the softhsm test"]
fn token_destroy() {
    if !inside() {
        return;
    }
    let doomed = generate(Algorithm::EcdsaP256Sha256, "doomed");
    let kept = generate(Algorithm::EcdsaP256Sha256, "kept");
    let (id, uri) = (key_id(doomed.as_ref()), doomed.uri().clone());
    let (.., before) = key_objects(TOKEN, &id);
    assert_eq!(key_objects(TOKEN, &id), (1, 1, before));
    drop(doomed);

    assert_eq!(destroy_key(&uri).expect("destroy"), Destroyed::Now);
    assert_eq!(key_objects(TOKEN, &id), (0, 0, before - 2), "both halves gone, nothing else");
    let err = open_key(&uri).expect_err("a destroyed key opens");
    assert!(matches!(&err, KeyError::NoKey { what: "private key", .. }), "{err:?}");
    assert_eq!(destroy_key(&uri).expect("destroy again"), Destroyed::AlreadyGone);

    // The other key in the token lives on, open or reopened.
    signs_and_verifies(kept.as_ref());
    signs_and_verifies(open_key(kept.uri()).expect("reopen the other key").as_ref());

    // Only what the URI names exactly: not a whole token, not the id under another label.
    let kept_id = key_id(kept.as_ref());
    let err = destroy_key(&KeyUri::Pkcs11(store(TOKEN))).expect_err("a token is not a key");
    assert!(matches!(&err, KeyError::BadUri { .. }), "{err:?}");
    let relabelled = KeyUri::Pkcs11(store(TOKEN).with_key(&kept_id, "doomed"));
    let err = destroy_key(&relabelled).expect_err("the id under another label");
    assert!(err.to_string().contains("nothing destroyed"), "{err}");
    assert_eq!(key_objects(TOKEN, &kept_id), (1, 1, before - 2));
    signs_and_verifies(kept.as_ref());
}

#[test]
#[ignore = "run by the softhsm test"]
fn token_destroy_finishes_a_half_destroyed_key() {
    if !inside() {
        return;
    }
    let key = generate(Algorithm::Ed25519, "half");
    let id = key_id(key.as_ref());
    let session = session(TOKEN);
    let private =
        session.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(id.clone())]).expect("find");
    session.destroy_object(private[0]).expect("destroy the private half behind signet's back");
    let by_id = KeyUri::Pkcs11(store(TOKEN).with_key(&id, "half"));
    assert_eq!(destroy_key(&by_id).expect("destroy the rest"), Destroyed::Now);
    assert_eq!(key_objects(TOKEN, &id).0 + key_objects(TOKEN, &id).1, 0);
    assert_eq!(destroy_key(&by_id).expect("again"), Destroyed::AlreadyGone);
}
