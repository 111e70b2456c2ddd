//! Keys: one [`KeyStore`] interface with two backends, and the DNSSEC
//! arithmetic on public keys (DNSKEY RDATA, key tag, DS).
//!
//! - [`pkcs11`]: keys generated inside a PKCS#11 token (SoftHSM in tests,
//!   any HSM in production), private halves sensitive and never
//!   extractable;
//! - [`soft`]: PKCS#8 files (mode 0600) signed with ring, for dry-runs and
//!   development.
//!
//! Private keys never leave a store as bytes: a store hands out a
//! [`SigningKey`], a handle that signs. Keys are named by a [`KeyUri`]
//! (`pkcs11:token=…;id=…` after RFC 7512, or `file:…`), so a policy, a
//! command line and the database all say the same thing. Before a key
//! signs a zone it is [`proof::prove`]n: a probe signed in the store must
//! verify against the DNSKEY that will be published.

pub mod dnskey;
mod error;
pub mod pkcs11;
pub mod proof;
pub mod soft;
pub mod uri;

pub use dnskey::PublishedKey;
pub use error::{
    Ckr, FileProblem, KeyError, ModuleProblem, Pkcs11Failure, ProofProblem, SignProblem, SmallFileError, TokenProblem,
    TokenStale, UriProblem,
};
pub use uri::KeyUri;

pub use crate::zone::dnssec::{Algorithm, Role, UnknownRole, UnsupportedAlgorithm};

/// Checks a key size for an algorithm: RSA takes 2048 to 4096 bits
/// (default 2048); the curves have one size each, which `bits` may
/// repeat. Returns the size to make.
pub fn check_bits(algorithm: Algorithm, bits: Option<u32>) -> Result<u32, KeyError> {
    let fixed = match algorithm {
        Algorithm::RsaSha256 => {
            let bits = bits.unwrap_or(2048);
            if !(2048..=4096).contains(&bits) || !bits.is_multiple_of(8) {
                return Err(KeyError::UnsupportedSize { algorithm, bits });
            }
            return Ok(bits);
        }
        Algorithm::EcdsaP256Sha256 | Algorithm::Ed25519 => 256,
        Algorithm::EcdsaP384Sha384 => 384,
    };
    match bits {
        Some(bits) if bits != fixed => Err(KeyError::UnsupportedSize { algorithm, bits }),
        _ => Ok(fixed),
    }
}

/// A private key inside a store: it signs, and tells its public half.
/// Shared by all signing threads.
pub trait SigningKey: Send + Sync + std::fmt::Debug {
    /// The key's URI, as a policy or command line names it.
    fn uri(&self) -> &KeyUri;
    /// Its algorithm.
    fn algorithm(&self) -> Algorithm;
    /// The public key in the DNSKEY public-key field format of its
    /// algorithm (RFC 3110, RFC 6605, RFC 8080).
    fn public_key(&self) -> &[u8];
    /// Signs `data`, returning the signature in the DNSSEC RRSIG format
    /// (RSA PKCS#1 v1.5; ECDSA r||s; Ed25519 raw).
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError>;
}

/// A place where keys are made and kept.
pub trait KeyStore: std::fmt::Debug {
    /// Makes a key pair inside the store. `label` names it there.
    fn generate(&self, algorithm: Algorithm, bits: u32, label: &str) -> Result<Box<dyn SigningKey>, KeyError>;
    /// Opens the key that `uri` names.
    fn open(&self, uri: &KeyUri) -> Result<Box<dyn SigningKey>, KeyError>;
    /// Destroys the key that `uri` names, and nothing else: both halves
    /// in a token, the file in a soft store. A key that is not there is
    /// [`Destroyed::AlreadyGone`], not an error, so that a destruction
    /// interrupted or repeated can simply be done again.
    fn destroy(&self, uri: &KeyUri) -> Result<Destroyed, KeyError>;
}

/// What [`KeyStore::destroy`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destroyed {
    /// The key was in the store (whole, or what was left of it) and is gone now.
    Now,
    /// The store held nothing the URI names: destroyed before, or never made.
    AlreadyGone,
}

/// Reads a small file (a PIN, a key) that must be a regular file of at
/// most `limit` octets: `/dev/zero` or a FIFO named by mistake is refused
/// instead of read without end.
pub(crate) fn read_small_file(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, SmallFileError> {
    use std::io::Read as _;
    // Checked before opening too: opening a FIFO would wait for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(SmallFileError::NotRegular);
    }
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(SmallFileError::NotRegular);
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(SmallFileError::TooLong(limit));
    }
    Ok(bytes)
}

/// Opens the store that a URI names (`pkcs11:…` or `file:…`).
pub fn open_store(uri: &KeyUri) -> Result<Box<dyn KeyStore>, KeyError> {
    match uri {
        KeyUri::Pkcs11(p) => Ok(Box::new(pkcs11::Pkcs11Store::open(p)?)),
        KeyUri::File(path) => Ok(Box::new(soft::SoftStore::new(path))),
    }
}

/// Opens the key a URI names, in its store.
pub fn open_key(uri: &KeyUri) -> Result<Box<dyn SigningKey>, KeyError> {
    open_store(uri)?.open(uri)
}

/// Makes a key in the store a URI names, checking the algorithm and size
/// once here, in front of the backends.
pub fn generate_key(
    store: &KeyUri,
    algorithm: Algorithm,
    bits: Option<u32>,
    label: &str,
) -> Result<Box<dyn SigningKey>, KeyError> {
    let bits = check_bits(algorithm, bits)?;
    open_store(store)?.generate(algorithm, bits, label)
}

/// Destroys the key a URI names, in its store (a retired key, once the
/// policy's `keys.purge-after` has passed since its removal).
pub fn destroy_key(uri: &KeyUri) -> Result<Destroyed, KeyError> {
    open_store(uri)?.destroy(uri)
}
