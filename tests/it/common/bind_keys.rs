//! Test support: BIND key files as ring signing keys, and RRSIG creation,
//! so that negative tests can build broken zones whose signatures are
//! nonetheless valid where the case needs it (a re-signed wrong bitmap, an
//! expired RRSIG with right crypto, an impostor key).
//!
//! ECDSA P-256/P-384 and Ed25519 only: ring does not sign with the 1024-bit
//! RSA keys the tests use, and no case needs it.

use std::path::Path;
use std::process::Command;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair};
use signet::zone::dnssec::{Dnskey, key_tag};
use signet::zone::reader::read_records_file;
use signet::zone::{Name, Rtype};

/// A private key that signs, with its DNSKEY.
#[derive(Debug, Clone)]
pub struct BindKey {
    /// DNSKEY RDATA.
    pub dnskey_rdata: Vec<u8>,
    /// Key tag.
    pub tag: u16,
    /// Algorithm number.
    pub algorithm: u8,
    /// KSK (SEP bit set).
    pub is_ksk: bool,
    private: Vec<u8>,
}

impl BindKey {
    /// Loads `Kname.+alg+tag.key` and its `.private` (path without suffix).
    pub fn load(base: &Path, origin: &Name) -> BindKey {
        let with_suffix = |suffix: &str| std::path::PathBuf::from(format!("{}.{suffix}", base.display()));
        let key_file = with_suffix("key");
        let records = read_records_file(&key_file, origin).unwrap_or_else(|e| panic!("{e}"));
        let record = records.into_iter().find(|r| r.rtype == Rtype::DNSKEY).expect("a DNSKEY in the .key file");
        let dnskey = Dnskey::parse(&record.rdata).expect("DNSKEY parses");
        let private_text = std::fs::read_to_string(with_suffix("private")).expect("read .private");
        let field = |name: &str| {
            private_text
                .lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
                .map(|v| data_encoding::BASE64.decode(v.trim().as_bytes()).expect("base64 in .private"))
        };
        let mut private = field("PrivateKey")
            .unwrap_or_else(|| panic!("{}: only ECDSA and Ed25519 keys are supported", base.display()));
        // BIND writes the ECDSA scalar without its leading zero octets (one
        // key in 256); ring wants it at the curve's full length.
        let full = match dnskey.algorithm {
            13 => 32,
            14 => 48,
            _ => private.len(),
        };
        if private.len() < full {
            private.splice(0..0, std::iter::repeat_n(0, full - private.len()));
        }
        BindKey {
            tag: key_tag(&record.rdata),
            algorithm: dnskey.algorithm,
            is_ksk: dnskey.is_sep(),
            dnskey_rdata: record.rdata.clone(),
            private,
        }
    }

    /// Signs `data` in the DNSSEC signature format of the key's algorithm.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        let public = &self.dnskey_rdata[4..];
        let rng = SystemRandom::new();
        let ecdsa = |alg| {
            let mut point = vec![0x04];
            point.extend_from_slice(public);
            let pair = EcdsaKeyPair::from_private_key_and_public_key(alg, &self.private, &point, &rng)
                .expect("ECDSA key pair");
            pair.sign(&rng, data).expect("sign").as_ref().to_vec()
        };
        match self.algorithm {
            13 => ecdsa(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            14 => ecdsa(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
            15 => Ed25519KeyPair::from_seed_and_public_key(&self.private, public)
                .expect("Ed25519 key pair")
                .sign(data)
                .as_ref()
                .to_vec(),
            other => panic!("test signing with algorithm {other} is not supported"),
        }
    }
}

/// The KSK and the ZSK of `algorithm` in a key directory.
pub fn load_bind_keys(dir: &Path, origin: &Name, algorithm: u8) -> (BindKey, BindKey) {
    let mut keys: Vec<BindKey> = std::fs::read_dir(dir)
        .expect("keys dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "key"))
        .filter(|p| p.to_string_lossy().contains(&format!("+{algorithm:03}+")))
        .map(|p| BindKey::load(&p.with_extension(""), origin))
        .collect();
    keys.sort_by_key(|k| !k.is_ksk);
    assert!(keys.len() == 2 && keys[0].is_ksk && !keys[1].is_ksk, "expected one KSK and one ZSK in {}", dir.display());
    let zsk = keys.pop().expect("zsk");
    let ksk = keys.pop().expect("ksk");
    (ksk, zsk)
}

/// Makes a new zone-signing key with BIND's dnssec-keygen in `dir`.
pub fn generate_bind_key(dir: &Path, algorithm: &str, origin: &Name) -> BindKey {
    std::fs::create_dir_all(dir).expect("mkdir");
    let output = Command::new("dnssec-keygen")
        .args(["-q", "-K"])
        .arg(dir)
        .args(["-a", algorithm, &origin.to_string()])
        .output()
        .expect("run dnssec-keygen");
    assert!(output.status.success(), "dnssec-keygen: {}", String::from_utf8_lossy(&output.stderr));
    let base = String::from_utf8_lossy(&output.stdout).trim().to_string();
    BindKey::load(&dir.join(base), origin)
}

/// What an RRSIG says besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct SigFields {
    /// Inception (Unix seconds).
    pub inception: u32,
    /// Expiration (Unix seconds).
    pub expiration: u32,
    /// Key tag to write instead of the key's own (an impostor's claim).
    pub tag_override: Option<u16>,
}

/// A complete RRSIG RDATA over an RRset, per RFC 4034 §3.1.8.1. The
/// RDATA must already be in canonical form.
pub fn sign_rrset(
    key: &BindKey,
    owner: &Name,
    rtype: Rtype,
    ttl: u32,
    canonical_rdatas: &[Vec<u8>],
    signer: &Name,
    fields: SigFields,
) -> Vec<u8> {
    let mut rdata = Vec::new();
    rdata.extend_from_slice(&rtype.0.to_be_bytes());
    rdata.push(key.algorithm);
    rdata.push(owner.as_ref().rrsig_labels() as u8);
    rdata.extend_from_slice(&ttl.to_be_bytes());
    rdata.extend_from_slice(&fields.expiration.to_be_bytes());
    rdata.extend_from_slice(&fields.inception.to_be_bytes());
    rdata.extend_from_slice(&fields.tag_override.unwrap_or(key.tag).to_be_bytes());
    rdata.extend_from_slice(&signer.wire().to_ascii_lowercase());
    let mut data = rdata.clone();
    let mut sorted = canonical_rdatas.to_vec();
    sorted.sort();
    sorted.dedup();
    for rr in &sorted {
        data.extend_from_slice(&owner.wire().to_ascii_lowercase());
        data.extend_from_slice(&rtype.0.to_be_bytes());
        data.extend_from_slice(&1u16.to_be_bytes());
        data.extend_from_slice(&ttl.to_be_bytes());
        data.extend_from_slice(&(rr.len() as u16).to_be_bytes());
        data.extend_from_slice(rr);
    }
    rdata.extend_from_slice(&key.sign(&data));
    rdata
}
