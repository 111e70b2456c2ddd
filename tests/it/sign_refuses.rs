//! What `signet sign` must refuse, through the real binary: a key replica
//! whose private half is not the published key's, an unreachable HSM, bad
//! input. Each refusal names what is wrong, writes nothing, and leaves an
//! earlier output byte-identical.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Store, TEST_PIN};

const ORIGIN: &str = "example.";

/// A directory with keys in `store`, a policy and an earlier good output.
struct Setup {
    dir: tempfile::TempDir,
    store: Store,
    ksk: String,
    zsk: String,
    policy: PathBuf,
    output: PathBuf,
    before: Vec<u8>,
}

impl Setup {
    fn new(softhsm: bool) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let store = if softhsm { Store::softhsm(&keys) } else { Store::soft(&keys) };
        let ksk = store.generate("13", "ksk", "ksk");
        let zsk = store.generate("13", "zsk", "zsk");
        let policy = common::write_policy(dir.path(), "policy", "13", "nsec3", "");
        let output = dir.path().join("signed.zone");
        let mut setup = Setup { dir, store, ksk, zsk, policy, output, before: Vec::new() };
        let first = setup.sign(&[&format!("{}:ksk", setup.ksk), &format!("{}:zsk", setup.zsk)], |_| {});
        common::expect_success("the first signing", &first);
        setup.before = std::fs::read(&setup.output).expect("first output");
        setup
    }

    /// Runs `signet sign` with `keys`; `tweak` may change the command.
    fn sign(&self, keys: &[&str], tweak: impl FnOnce(&mut Command)) -> Output {
        self.sign_zone(&common::realistic_zone(), &self.policy, keys, tweak)
    }

    fn sign_zone(&self, zone: &Path, policy: &Path, keys: &[&str], tweak: impl FnOnce(&mut Command)) -> Output {
        let mut command = self.store.signet();
        command.arg("sign").arg(zone).args(["--origin", ORIGIN]).arg("--policy").arg(policy);
        for key in keys {
            command.args(["--key", key]);
        }
        command.arg("-o").arg(&self.output);
        tweak(&mut command);
        common::run(&mut command)
    }

    fn good_keys(&self) -> [String; 2] {
        [format!("{}:ksk", self.ksk), format!("{}:zsk", self.zsk)]
    }

    /// Exit `code`, stderr naming every needle, output untouched, no
    /// temporary file left beside it.
    fn assert_refused(&self, output: &Output, code: i32, needles: &[&str]) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(code),
            "stderr:\n{stderr}\nstdout:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        for needle in needles {
            assert!(stderr.contains(needle), "stderr does not name {needle:?}:\n{stderr}");
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains(TEST_PIN), "the PIN appears in: {stderr}");
        let after = std::fs::read(&self.output).expect("earlier output still there");
        assert!(after == self.before, "the earlier output changed");
        let leftovers: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("list dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".signet-"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

/// The .de root cause, caught before signing: a replica of the ZSK whose
/// private key is another key's. Its proof fails; the message names the
/// replica and the published key tag.
#[test]
fn impostor_replica_is_refused_soft() {
    let setup = Setup::new(false);
    let impostor = setup.store.generate("13", "zsk", "impostor");
    let replicas = format!("{} {impostor}:zsk", setup.zsk);
    let output = setup.sign(&[&format!("{}:ksk", setup.ksk), &replicas], |_| {});
    let file = impostor.trim_start_matches("file:");
    setup.assert_refused(&output, 1, &["key proof failed", file, "key tag"]);
}

/// The same with two SoftHSM tokens: the second token holds a different
/// private key under the first token's key id and the ZSK's public key.
#[test]
fn impostor_replica_is_refused_softhsm() {
    if !common::have_tool("softhsm2-util") {
        return;
    }
    let setup = Setup::new(true);
    let id = setup.zsk.split(';').find_map(|a| a.strip_prefix("id=")).expect("key id in URI").to_owned();
    let second = add_token(&setup, "replica");
    // A key in the second token whose id we then claim is the ZSK's.
    let other = generate_in(&setup, &second, "13", "zsk");
    let other_id = other.split(';').find_map(|a| a.strip_prefix("id=")).expect("id").to_owned();
    let impostor = setup.zsk.replace("token=signet", &format!("token={second}")).replace(&id, &other_id);
    let replicas = format!("{} {impostor}:zsk", setup.zsk);
    let output = setup.sign(&[&format!("{}:ksk", setup.ksk), &replicas], |_| {});
    setup.assert_refused(&output, 1, &["key proof failed", &format!("token \"{second}\""), "key tag"]);
}

fn add_token(setup: &Setup, label: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hsm/make-token.sh");
    let out = common::run(
        Command::new("bash")
            .arg(script)
            .arg(setup.dir.path().join("keys"))
            .env("SIGNET_TOKEN_LABEL", label)
            .env("SIGNET_PKCS11_PIN", TEST_PIN),
    );
    common::expect_success("make-token.sh (second token)", &out);
    label.to_owned()
}

fn generate_in(setup: &Setup, token: &str, algorithm: &str, role: &str) -> String {
    let out =
        common::run(setup.store.signet().args(["key", "generate", "--format", "json", "--origin", ORIGIN]).args([
            "--store",
            &format!("pkcs11:token={token}"),
            "--algorithm",
            algorithm,
            "--role",
            role,
        ]));
    common::expect_success("key generate in the second token", &out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    json["uri"].as_str().expect("uri").to_owned()
}

#[test]
fn hsm_faults_are_clear_errors() {
    if !common::have_tool("softhsm2-util") {
        return;
    }
    let setup = Setup::new(true);
    let [ksk, zsk] = setup.good_keys();
    let wrong_pin = setup.sign(&[&ksk, &zsk], |c| {
        c.env("SIGNET_PKCS11_PIN", "98765");
    });
    setup.assert_refused(&wrong_pin, 2, &["login refused", "CKR_PIN_INCORRECT"]);
    assert!(!String::from_utf8_lossy(&wrong_pin.stderr).contains("98765"), "the wrong PIN is echoed");
    let no_pin = setup.sign(&[&ksk, &zsk], |c| {
        c.env_remove("SIGNET_PKCS11_PIN");
    });
    setup.assert_refused(&no_pin, 2, &["no PIN", "SIGNET_PKCS11_PIN"]);
    let missing_token = ksk.replace("token=signet", "token=nosuchtoken");
    let output = setup.sign(&[&missing_token, &zsk], |_| {});
    setup.assert_refused(&output, 2, &["no PKCS#11 token labelled \"nosuchtoken\""]);
    let id = ksk.split(';').find_map(|a| a.strip_prefix("id=")).expect("id").to_owned();
    let missing_key = ksk.replace(&id, "%de%ad%be%ef");
    let output = setup.sign(&[&missing_key, &zsk], |_| {});
    setup.assert_refused(&output, 2, &["no private key for key id deadbeef"]);
    let bad_module = ksk.replacen(":ksk", "?module-path=/nonexistent/libpkcs11.so:ksk", 1);
    let output = setup.sign(&[&bad_module, &zsk], |_| {});
    setup.assert_refused(&output, 2, &["/nonexistent/libpkcs11.so"]);
}

#[test]
fn bad_input_writes_nothing() {
    let setup = Setup::new(false);
    let [ksk, zsk] = setup.good_keys();
    let dir = setup.dir.path();
    let zone = dir.join("broken.zone");
    std::fs::write(
        &zone,
        "$ORIGIN example.\n@ 3600 IN SOA ns hostmaster 1 2 3 4 5\n@ 3600 IN NS ns\nns 3600 IN A 192.0.2.300\n",
    )
    .expect("write");
    let output = setup.sign_zone(&zone, &setup.policy, &[&ksk, &zsk], |_| {});
    setup.assert_refused(&output, 2, &["broken.zone:4"]);

    let policy = dir.join("refresh.toml");
    std::fs::write(&policy, "[signatures]\nvalidity = \"7d\"\nrefresh = \"7d\"\n").expect("write");
    let output = setup.sign_zone(&common::realistic_zone(), &policy, &[&ksk, &zsk], |_| {});
    setup.assert_refused(
        &output,
        2,
        &["refresh.toml", "signatures.refresh", "must be shorter than signatures.validity"],
    );

    let policy = dir.join("alg.toml");
    std::fs::write(&policy, "[keys]\nalgorithm = \"GOST\"\n").expect("write");
    let output = setup.sign_zone(&common::realistic_zone(), &policy, &[&ksk, &zsk], |_| {});
    setup.assert_refused(&output, 2, &["alg.toml:2", "unsupported algorithm \"GOST\""]);

    let output = setup.sign(&[&ksk, &format!("{}:bogus", setup.zsk)], |_| {});
    setup.assert_refused(&output, 2, &["unknown key role \"bogus\""]);

    let output = setup.sign(&[&ksk], |_| {});
    setup.assert_refused(&output, 2, &["no zone-signing key"]);

    let output = setup.sign_zone(&dir.join("missing.zone"), &setup.policy, &[&ksk, &zsk], |_| {});
    setup.assert_refused(&output, 2, &["missing.zone"]);
}
