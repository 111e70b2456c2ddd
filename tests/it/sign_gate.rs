//! The gate stops what it must. The signer and the gate are the real
//! ones, writing real files; only the key is wrapped, to fail the way
//! HSMs have failed: one corrupted signature, and an impostor that
//! signs under the published ZSK's key tag with another private key (the
//! .de outage of May 2026). Each is refused with findings that name the
//! owner, type and key tag; nothing is installed; an earlier output stays
//! byte-identical.

use std::path::Path;
use std::sync::Mutex;

use signet::keys::soft::SoftStore;
use signet::keys::{Algorithm, KeyError, KeyStore, KeyUri, PublishedKey, Role, SigningKey};
use signet::manage::gate::{GateFailure, Predecessor, sign_through_gate};
use signet::policy::Policy;
use signet::sign::{SignSettings, Signer, SigningKeys, sign_zone};
use signet::verify::{Anchor, NoProgress, VerifyOptions};
use signet::zone::{Name, Rtype};

const NOW: i64 = 1_795_000_000;

/// Signs like `inner`, but corrupts the first signature over an NSEC3
/// RRset and remembers its owner.
#[derive(Debug)]
struct CorruptsOneNsec3 {
    inner: Box<dyn SigningKey>,
    corrupted: Mutex<Option<Vec<u8>>>,
}

/// Publishes the DNSKEY of `published` but signs RRsets of the types in
/// `impostor_types` with `impostor`, another private key.
#[derive(Debug)]
struct Impostor {
    published: Box<dyn SigningKey>,
    impostor: Box<dyn SigningKey>,
    impostor_types: Vec<Rtype>,
}

/// Type covered and owner (wire) of RRSIG signing input: 18 octets of
/// fixed fields, the signer (`example.`, 9 octets), then the records.
fn covered(data: &[u8]) -> (Rtype, &[u8]) {
    let owner = &data[18 + 9..];
    let len = signet::zone::NameRef::parse_prefix(owner).map_or(0, |(n, _)| n.wire().len());
    (Rtype(u16::from_be_bytes([data[0], data[1]])), &owner[..len])
}

impl SigningKey for CorruptsOneNsec3 {
    fn uri(&self) -> &KeyUri {
        self.inner.uri()
    }
    fn algorithm(&self) -> Algorithm {
        self.inner.algorithm()
    }
    fn public_key(&self) -> &[u8] {
        self.inner.public_key()
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut signature = self.inner.sign(data)?;
        let (rtype, owner) = covered(data);
        let mut corrupted = self.corrupted.lock().expect("lock");
        if rtype == Rtype::NSEC3 && corrupted.is_none() {
            signature[10] ^= 0x40;
            *corrupted = Some(owner.to_vec());
        }
        Ok(signature)
    }
}

impl SigningKey for Impostor {
    fn uri(&self) -> &KeyUri {
        self.published.uri()
    }
    fn algorithm(&self) -> Algorithm {
        self.published.algorithm()
    }
    fn public_key(&self) -> &[u8] {
        self.published.public_key()
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = if self.impostor_types.contains(&covered(data).0) { &self.impostor } else { &self.published };
        key.sign(data)
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    store: SoftStore,
    ksk: Box<dyn SigningKey>,
    policy: Policy,
    origin: Name,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SoftStore::new(dir.path());
        let ksk = store.generate(Algorithm::EcdsaP256Sha256, 256, "ksk").expect("ksk");
        let policy_text = "[denial]\ntype = \"nsec3\"\nopt-out = true\n";
        let (policy, _) = Policy::from_text(policy_text, Path::new("test.toml")).expect("policy");
        Fixture { dir, store, ksk, policy, origin: Name::from_text("example.", None).expect("origin") }
    }

    fn zsk(&self, label: &str) -> Box<dyn SigningKey> {
        self.store.generate(Algorithm::EcdsaP256Sha256, 256, label).expect("zsk")
    }

    /// Signs the realistic zone with the fixture's KSK and `zsk` through the
    /// gate into `out`.
    fn publish(&self, zsk: &dyn SigningKey, out: &Path) -> Result<(), GateFailure> {
        let unsigned = signet::read_zone_file(&realistic_zone(), &self.origin).expect("zone");
        let ksk = PublishedKey::new(self.ksk.as_ref(), Role::Ksk);
        let zsk_published = PublishedKey::new(zsk, Role::Zsk);
        let keys = SigningKeys {
            published: vec![ksk.clone(), zsk_published.clone()],
            key_signers: vec![Signer { key: self.ksk.as_ref(), tag: ksk.tag }],
            zone_signers: vec![Signer { key: zsk, tag: zsk_published.tag }],
            cds: vec![ksk.clone()],
            ..SigningKeys::default()
        };
        let settings = SignSettings::from_policy(&self.policy, NOW, Vec::new());
        let anchor = ksk.ds_rdata(self.origin.as_ref(), 2).expect("ds");
        let options = VerifyOptions {
            now: NOW,
            min_validity: 0,
            trust_anchor: Some(vec![Anchor::Ds(anchor)]),
            ..VerifyOptions::default()
        };
        sign_through_gate(out, &self.origin, &options, Predecessor::default(), &NoProgress, None, |w| {
            sign_zone(unsigned, &keys, &settings, w)
        })
        .map(|_| ())
    }
}

fn realistic_zone() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/realistic.zone")
}

/// Publishes a good zone first, then `bad` must be refused; returns the
/// findings, after checking the earlier output and the directory.
fn refused(fixture: &Fixture, bad: &dyn SigningKey) -> Vec<signet::verify::Finding> {
    let out = fixture.dir.path().join("signed.zone");
    let good = fixture.zsk("good");
    fixture.publish(good.as_ref(), &out).expect("the good zone is published");
    let before = std::fs::read(&out).expect("read");
    let report = match fixture.publish(bad, &out) {
        Err(GateFailure::Refused(report)) => report,
        other => panic!("expected the gate to refuse, got {other:?}"),
    };
    assert!(std::fs::read(&out).expect("read") == before, "the earlier output changed");
    let names: Vec<String> = std::fs::read_dir(fixture.dir.path())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".signet-")), "temporary file left: {names:?}");
    assert!(!report.valid);
    report.findings.clone()
}

#[test]
fn one_corrupted_nsec3_signature_is_refused() {
    let fixture = Fixture::new();
    let zsk = CorruptsOneNsec3 { inner: fixture.zsk("zsk"), corrupted: Mutex::new(None) };
    let tag = PublishedKey::new(&zsk, Role::Zsk).tag;
    let findings = refused(&fixture, &zsk);
    let owner = zsk.corrupted.lock().expect("lock").clone().expect("an NSEC3 signature was corrupted");
    let owner = Name::from_wire(&owner).expect("owner").to_string();
    let errors: Vec<_> = findings.iter().filter(|f| f.severity == signet::verify::Severity::Error).collect();
    assert_eq!(errors.len(), 1, "exactly the corrupted RRSIG: {errors:#?}");
    let f = errors[0];
    assert_eq!((f.owner.as_str(), f.rtype.as_str(), f.keytag), (owner.as_str(), "NSEC3", Some(tag)), "{f:#?}");
    assert_eq!(f.code, signet::verify::Code::BogusSignature);
}

#[test]
fn impostor_signatures_under_the_zsk_tag_are_refused() {
    let fixture = Fixture::new();
    let impostor = Impostor {
        published: fixture.zsk("zsk"),
        impostor: fixture.zsk("impostor"),
        impostor_types: vec![Rtype::NSEC3, Rtype::MX],
    };
    let tag = PublishedKey::new(&impostor, Role::Zsk).tag;
    let findings = refused(&fixture, &impostor);
    let bogus: Vec<_> = findings.iter().filter(|f| f.code == signet::verify::Code::BogusSignature).collect();
    assert!(bogus.iter().any(|f| f.rtype == "NSEC3") && bogus.iter().any(|f| f.rtype == "MX"), "{findings:#?}");
    for f in &bogus {
        assert_eq!(f.keytag, Some(tag), "{f:#?}");
        assert!(f.rtype == "NSEC3" || f.rtype == "MX", "only the impostor's RRsets: {f:#?}");
        assert!(f.message.contains("does not verify with the published DNSKEY"), "{f:#?}");
    }
}
