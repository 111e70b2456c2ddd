//! The soft key store: PKCS#8 files (DER or PEM; RSA also PKCS#1) signed
//! with ring. For dry-runs, development and tests; production keys belong
//! in an HSM.
//!
//! Key files are created mode 0600 and never overwritten; a key file that
//! others may read is refused. ring cannot generate RSA keys, so RSA key
//! pairs are made with the `rsa` crate (generation only: ring signs).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom as _, SystemRandom};
use ring::rsa::PublicKeyComponents;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};

use super::{Algorithm, Destroyed, FileProblem, KeyError, KeyStore, KeyUri, SignProblem, SigningKey, UriProblem};

/// A directory of key files (for `generate`), or one key file (for `open`).
#[derive(Debug)]
pub struct SoftStore {
    path: PathBuf,
}

impl SoftStore {
    /// The store at `path`.
    pub fn new(path: &Path) -> SoftStore {
        SoftStore { path: path.to_owned() }
    }
}

impl KeyStore for SoftStore {
    fn generate(&self, algorithm: Algorithm, bits: u32, label: &str) -> Result<Box<dyn SigningKey>, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = match algorithm {
            Algorithm::RsaSha256 => rsa_pkcs8(bits).ok_or(()),
            Algorithm::EcdsaP256Sha256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map(|d| d.as_ref().to_vec())
                    .map_err(|_| ())
            }
            Algorithm::EcdsaP384Sha384 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
                    .map(|d| d.as_ref().to_vec())
                    .map_err(|_| ())
            }
            Algorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng).map(|d| d.as_ref().to_vec()).map_err(|_| ()),
        }
        .map_err(|_| file_error(&self.path, FileProblem::GenerationFailed))?;
        create_store_dir(&self.path)?;
        let file = free_file(&self.path, &sanitize(label));
        write_new_private(&file, &pkcs8)?;
        SoftKey::from_pkcs8(KeyUri::File(file), &pkcs8).map(|k| Box::new(k) as Box<dyn SigningKey>)
    }

    fn open(&self, uri: &KeyUri) -> Result<Box<dyn SigningKey>, KeyError> {
        let KeyUri::File(path) = uri else {
            return Err(KeyError::BadUri { uri: uri.to_string(), reason: UriProblem::NotFile });
        };
        let metadata = fs::metadata(path).map_err(|e| file_failure(path, FileProblem::Unreadable, e))?;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(file_error(path, FileProblem::OpenMode(metadata.permissions().mode() & 0o777)));
        }
        // 64 KiB: a PKCS#8 RSA-4096 key in PEM is about 3.3 KiB.
        let bytes =
            super::read_small_file(path, 64 * 1024).map_err(|e| file_failure(path, FileProblem::Unreadable, e))?;
        let der = pem_or_der(&bytes).ok_or_else(|| file_error(path, FileProblem::NotPkcs8))?;
        SoftKey::from_pkcs8(uri.clone(), &der).map(|k| Box::new(k) as Box<dyn SigningKey>)
    }

    /// Removes the key file. Only a regular file that opens as a key is
    /// removed: a directory (a store, not a key), a symbolic link (its
    /// target would stay) or a file that is no key is refused.
    fn destroy(&self, uri: &KeyUri) -> Result<Destroyed, KeyError> {
        let KeyUri::File(path) = uri else {
            return Err(KeyError::BadUri { uri: uri.to_string(), reason: UriProblem::NotFile });
        };
        let metadata = match fs::symlink_metadata(path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Destroyed::AlreadyGone),
            Err(e) => return Err(file_failure(path, FileProblem::Unreadable, e)),
        };
        if !metadata.file_type().is_file() {
            let problem = if metadata.is_dir() {
                FileProblem::DirectoryNotDestroyed
            } else {
                FileProblem::NotRegularNotDestroyed
            };
            return Err(file_error(path, problem));
        }
        self.open(uri).map_err(|e| file_failure(path, FileProblem::NotAKeyNotDestroyed, e))?;
        match fs::remove_file(path) {
            Ok(()) => sync_parent(path).map(|()| Destroyed::Now),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Destroyed::AlreadyGone),
            Err(e) => Err(file_failure(path, FileProblem::NotRemoved, e)),
        }
    }
}

/// Makes a removal in `path`'s directory durable.
fn sync_parent(path: &Path) -> Result<(), KeyError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::File::open(parent).and_then(|dir| dir.sync_all()).map_err(|e| file_failure(parent, FileProblem::NotSynced, e))
}

/// A ring key pair.
enum Pair {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A key from a PKCS#8 file.
pub struct SoftKey {
    uri: KeyUri,
    algorithm: Algorithm,
    public_key: Vec<u8>,
    pair: Pair,
    rng: SystemRandom,
}

impl std::fmt::Debug for SoftKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("SoftKey").field("uri", &self.uri).field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

impl SoftKey {
    /// Reads a PKCS#8 key of any supported algorithm.
    pub fn from_pkcs8(uri: KeyUri, der: &[u8]) -> Result<SoftKey, KeyError> {
        let rng = SystemRandom::new();
        let (algorithm, pair) = if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            (Algorithm::Ed25519, Pair::Ed25519(pair))
        } else if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
            (Algorithm::EcdsaP256Sha256, Pair::Ecdsa(pair))
        } else if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der, &rng) {
            (Algorithm::EcdsaP384Sha384, Pair::Ecdsa(pair))
        } else {
            // PKCS#8, or the PKCS#1 RSAPrivateKey that `openssl genpkey -outform DER` writes.
            let pair = RsaKeyPair::from_pkcs8(der)
                .or_else(|_| RsaKeyPair::from_der(der))
                .map_err(|e| file_error(&uri_path(&uri), FileProblem::NotAKey(e.to_string())))?;
            (Algorithm::RsaSha256, Pair::Rsa(pair))
        };
        let public_key = match &pair {
            Pair::Rsa(pair) => {
                let components = PublicKeyComponents::<Vec<u8>>::from(pair.public());
                let bits = pair.public().modulus_len() * 8;
                super::check_bits(Algorithm::RsaSha256, Some(bits as u32))?;
                rsa_dnskey(&components.e, &components.n)
            }
            // ring gives the uncompressed point 04 || X || Y; DNSKEY holds X || Y.
            Pair::Ecdsa(pair) => pair.public_key().as_ref()[1..].to_vec(),
            Pair::Ed25519(pair) => pair.public_key().as_ref().to_vec(),
        };
        Ok(SoftKey { uri, algorithm, public_key, pair, rng })
    }
}

impl SigningKey for SoftKey {
    fn uri(&self) -> &KeyUri {
        &self.uri
    }

    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = || KeyError::Sign { uri: self.uri.describe(), reason: SignProblem::RingRefused, source: None };
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &self.rng, data, &mut signature).map_err(|_| failed())?;
                Ok(signature)
            }
            Pair::Ecdsa(pair) => pair.sign(&self.rng, data).map(|s| s.as_ref().to_vec()).map_err(|_| failed()),
            Pair::Ed25519(pair) => Ok(pair.sign(data).as_ref().to_vec()),
        }
    }
}

/// A new RSA key pair of `bits` bits (exponent 65537) as PKCS#8 DER.
fn rsa_pkcs8(bits: u32) -> Option<Vec<u8>> {
    use rsa::pkcs8::EncodePrivateKey as _;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits as usize).ok()?;
    key.to_pkcs8_der().ok().map(|der| der.as_bytes().to_vec())
}

/// RFC 3110 §2: exponent length (one octet, or zero and two octets), the
/// exponent, the modulus.
pub fn rsa_dnskey(exponent: &[u8], modulus: &[u8]) -> Vec<u8> {
    let strip = |b: &[u8]| b[b.iter().take_while(|&&x| x == 0).count()..].to_vec();
    let (exponent, modulus) = (strip(exponent), strip(modulus));
    let mut out = Vec::with_capacity(3 + exponent.len() + modulus.len());
    if exponent.len() < 256 {
        out.push(exponent.len() as u8);
    } else {
        out.push(0);
        out.extend_from_slice(&(exponent.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(&exponent);
    out.extend_from_slice(&modulus);
    out
}

/// A random key id, as soft and PKCS#11 stores name new keys.
pub fn random_id() -> Result<[u8; 8], KeyError> {
    let mut id = [0u8; 8];
    SystemRandom::new().fill(&mut id).map_err(|_| KeyError::NoRandomness)?;
    Ok(id)
}

fn uri_path(uri: &KeyUri) -> PathBuf {
    match uri {
        KeyUri::File(path) => path.clone(),
        KeyUri::Pkcs11(_) => PathBuf::from(uri.to_string()),
    }
}

/// A key file refused for a reason of ours.
fn file_error(path: &Path, problem: FileProblem) -> KeyError {
    KeyError::File { path: path.display().to_string(), problem, source: None }
}

/// A key file refused for an error of the file system, ring or the key's
/// opening.
fn file_failure(
    path: &Path,
    problem: FileProblem,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> KeyError {
    KeyError::File { path: path.display().to_string(), problem, source: Some(source.into()) }
}

fn sanitize(label: &str) -> String {
    label.chars().map(|c| if c.is_ascii_alphanumeric() || "+-_.".contains(c) { c } else { '_' }).collect()
}

/// The key file for `label`: `LABEL.pk8`, or `LABEL-2.pk8` and so on when
/// a key of that label is already there (a label names, it does not
/// identify: two keys planned for one instant share it).
fn free_file(dir: &Path, label: &str) -> std::path::PathBuf {
    let first = dir.join(format!("{label}.pk8"));
    let others = (2..1000).map(|n| dir.join(format!("{label}-{n}.pk8")));
    // Past a thousand, the first is returned and its writing refused.
    std::iter::once(first.clone()).chain(others).find(|path| !path.exists()).unwrap_or(first)
}

/// Makes the store's directory, mode 0700, when it is missing (a policy's
/// `store = "file:keys"` on a first run): private keys go in it, so no
/// one else may list or enter it. A directory that is there is left as
/// it is.
fn create_store_dir(dir: &Path) -> Result<(), KeyError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| file_failure(dir, FileProblem::NoDirectory, e))
}

/// Writes a new private-key file, mode 0600 from its creation, refusing
/// to replace an existing file.
fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| file_failure(path, FileProblem::Unwritable, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| file_failure(path, FileProblem::Unwritable, e))
}

/// DER as is, or the base64 body of a PEM `PRIVATE KEY` (PKCS#8) or
/// `RSA PRIVATE KEY` (PKCS#1) block.
fn pem_or_der(bytes: &[u8]) -> Option<Vec<u8>> {
    let is_begin = |l: &str| l.starts_with("-----BEGIN") && l.ends_with("PRIVATE KEY-----");
    let Ok(text) = std::str::from_utf8(bytes) else { return Some(bytes.to_vec()) };
    if !text.lines().any(is_begin) {
        return Some(bytes.to_vec());
    }
    let body: String =
        text.lines().skip_while(|l| !is_begin(l)).skip(1).take_while(|l| !l.starts_with("-----END")).collect();
    data_encoding::BASE64.decode(body.trim().as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{destroy_key, generate_key, open_key};

    fn store(dir: &Path) -> KeyUri {
        KeyUri::File(dir.to_owned())
    }

    #[test]
    fn destroy_removes_the_file_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = generate_key(&store(dir.path()), Algorithm::Ed25519, None, "old-zsk").expect("generate");
        let other = generate_key(&store(dir.path()), Algorithm::EcdsaP256Sha256, None, "new-zsk").expect("generate");
        let KeyUri::File(path) = key.uri().clone() else { panic!("a file key") };
        assert!(path.is_file());

        assert_eq!(destroy_key(key.uri()).expect("destroy"), Destroyed::Now);
        assert!(!path.exists(), "the key file is still there");
        assert!(matches!(open_key(key.uri()), Err(KeyError::File { .. })), "the destroyed key still opens");
        assert_eq!(destroy_key(key.uri()).expect("destroy again"), Destroyed::AlreadyGone);

        let reopened = open_key(other.uri()).expect("the other key is untouched");
        assert_eq!(reopened.public_key(), other.public_key());
        reopened.sign(b"still signs").expect("sign");
    }

    #[test]
    fn destroy_refuses_what_is_not_a_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = generate_key(&store(dir.path()), Algorithm::Ed25519, None, "k").expect("generate");
        let KeyUri::File(path) = key.uri().clone() else { panic!("a file key") };

        let err = destroy_key(&store(dir.path())).expect_err("a store directory is not a key");
        assert!(err.to_string().contains("a directory"), "{err}");

        let link = dir.path().join("link.pk8");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        let err = destroy_key(&KeyUri::File(link.clone())).expect_err("a link is not the key");
        assert!(err.to_string().contains("not a regular file"), "{err}");

        let notes = dir.path().join("notes.txt");
        write_new_private(&notes, b"not a key at all").expect("write");
        let err = destroy_key(&KeyUri::File(notes.clone())).expect_err("not a key");
        assert!(err.to_string().contains("does not open as a key"), "{err}");

        for kept in [&path, &link, &notes] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
        let pkcs11 = KeyUri::parse("pkcs11:token=t;id=%01").expect("URI");
        assert!(matches!(SoftStore::new(dir.path()).destroy(&pkcs11), Err(KeyError::BadUri { .. })));
    }
}
