//! Why a key store or a key could not do what was asked: [`KeyError`],
//! with the typed reasons of its variants. A failure of ours says which
//! in an enum; a failure of cryptoki, ring or the file system stays that
//! library's error, as the [`source`](std::error::Error::source).

use std::fmt;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::KeyType;
use cryptoki::session::SessionState;

use crate::verify::crypto::CryptoError;
use crate::zone::dnssec::{Algorithm, UnknownRole, UnsupportedAlgorithm};

/// Why a key store or a key could not do what was asked. Messages name
/// the store, token and key id; they never contain a PIN.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// An algorithm signet does not sign with.
    #[error(transparent)]
    UnsupportedAlgorithm(#[from] UnsupportedAlgorithm),
    /// A key size the algorithm does not take.
    #[error("{algorithm} keys cannot have {bits} bits (RSA: 2048 to 4096; the curves have one size)")]
    UnsupportedSize {
        /// The algorithm.
        algorithm: Algorithm,
        /// The size asked for.
        bits: u32,
    },
    /// A role other than ksk, zsk, csk.
    #[error(transparent)]
    BadRole(#[from] UnknownRole),
    /// A key URI that cannot be read, or that names no key of this store.
    #[error("bad key URI {uri:?}: {reason}")]
    BadUri {
        /// The URI as given (cut before a PIN).
        uri: String,
        /// What is wrong with it.
        reason: UriProblem,
    },
    /// The PIN could not be found (the message names where it was looked for).
    #[error("no PIN: {0}")]
    NoPin(String),
    /// The PIN file named by `pin-source=file:…` cannot be read.
    #[error("no PIN: cannot read the PIN file {path}")]
    PinFile {
        /// The file.
        path: String,
        /// Why.
        source: SmallFileError,
    },
    /// The PKCS#11 module could not be loaded or initialised.
    #[error("PKCS#11 module {path}: {problem}")]
    Module {
        /// The module path.
        path: String,
        /// What failed.
        problem: ModuleProblem,
        /// cryptoki's error, where it gave one.
        source: Option<Pkcs11Failure>,
    },
    /// No token with the label.
    #[error("no PKCS#11 token labelled {token:?} in module {module}")]
    NoToken {
        /// The token label.
        token: String,
        /// The module path.
        module: String,
    },
    /// The token refused the PIN.
    #[error("token {token:?}: login refused")]
    Login {
        /// The token label.
        token: String,
        /// The PKCS#11 return value, e.g. CKR_PIN_INCORRECT.
        #[source]
        reason: Ckr,
    },
    /// No key with that id (or a public or private half missing).
    #[error("{store}: no {what} for key id {id}")]
    NoKey {
        /// The store (token label or file).
        store: String,
        /// The key id (hex) or file.
        id: String,
        /// "private key", "public key".
        what: &'static str,
    },
    /// A PKCS#11 call failed.
    #[error("token {token:?}: {operation}")]
    Pkcs11 {
        /// The token label.
        token: String,
        /// What was being done.
        operation: String,
        /// The PKCS#11 error.
        source: Pkcs11Failure,
    },
    /// The token answered, but with something signet cannot use.
    #[error("token {token:?}: {operation}: {problem}")]
    Token {
        /// The token label.
        token: String,
        /// What was being done.
        operation: String,
        /// What is wrong.
        problem: TokenProblem,
    },
    /// A key file that cannot be read, written or understood.
    #[error("key file {path}: {problem}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        problem: FileProblem,
        /// The error of the file system, ring or the key's own opening,
        /// where one is the cause.
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The store's signature over the probe did not verify against the
    /// DNSKEY: the private key is not the published key's.
    #[error("key proof failed for {uri} (key tag {key_tag}, {algorithm}): {reason}")]
    ProofFailed {
        /// The key's URI (token and id, or file).
        uri: String,
        /// The key tag of the DNSKEY it must match.
        key_tag: u16,
        /// Its algorithm.
        algorithm: Algorithm,
        /// What went wrong.
        reason: ProofProblem,
        /// The verifier's error, where it gave one.
        source: Option<CryptoError>,
    },
    /// The signing operation itself failed.
    #[error("{uri}: signing failed: {reason}")]
    Sign {
        /// The key.
        uri: String,
        /// Why.
        reason: SignProblem,
        /// The token's error, where it gave one.
        source: Option<Pkcs11Failure>,
    },
    /// The system's random number generator failed.
    #[error("no randomness for a key id")]
    NoRandomness,
}

/// What is wrong with a key URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriProblem {
    /// A `pin-value` attribute, in any spelling.
    #[error(
        "a PIN does not belong in a key URI (pin-value is refused, so that URIs can be logged and stored): \
         use pin-source=file:PATH or env:VAR, or set SIGNET_PKCS11_PIN"
    )]
    HoldsPin,
    /// `file:` and nothing after it.
    #[error("file: needs a path")]
    NoPath,
    /// Neither `pkcs11:` nor `file:`.
    #[error("expected pkcs11:… or file:…")]
    UnknownScheme,
    /// A `pkcs11:` URI without `token=`.
    #[error("a token=LABEL attribute is required (slot ids change between runs)")]
    NoToken,
    /// `id=` with nothing after it.
    #[error("id is empty")]
    EmptyId,
    /// A label that is not UTF-8 after percent-decoding.
    #[error("{0} label is not UTF-8")]
    LabelNotUtf8(&'static str),
    /// A query attribute's value that is not UTF-8.
    #[error("{0} is not UTF-8")]
    ValueNotUtf8(String),
    /// An attribute without `=`.
    #[error("attribute {0:?} has no '='")]
    NoEquals(String),
    /// An attribute name with a bad `%` escape.
    #[error("bad percent-encoding in the attribute name {0:?}")]
    NameEncoding(String),
    /// An attribute value with a bad `%` escape.
    #[error("bad percent-encoding in {0}")]
    ValueEncoding(String),
    /// A `pin-source` that is neither `file:` nor `env:`.
    #[error("pin-source must be file:PATH or env:VAR")]
    PinSource,
    /// A `file:` URI given to a token.
    #[error("not a pkcs11: URI")]
    NotPkcs11,
    /// A `pkcs11:` URI given to a file store.
    #[error("not a file: URI")]
    NotFile,
    /// A key of another token.
    #[error("the key is in token {key:?}; this store is token {store:?}")]
    OtherToken {
        /// The URI's token.
        key: String,
        /// The store's.
        store: String,
    },
    /// A store where a key was wanted.
    #[error("no id=: which key?")]
    NoId,
}

/// What is wrong with a PKCS#11 module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ModuleProblem {
    /// Retired after an error and not yet finalised.
    #[error("being restarted after an error, once the runs using it end; a later run tries again")]
    Restarting,
    /// The library does not load.
    #[error("cannot be loaded")]
    Load,
    /// C_Initialize failed.
    #[error("C_Initialize failed")]
    Initialize,
}

/// What a token answered that signet cannot use. Key ids in hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    /// Two tokens with one label.
    #[error("{0} tokens carry this label; labels must be unique")]
    LabelNotUnique(usize),
    /// Several objects of a class with one key id.
    #[error("{count} objects have key id {id}")]
    IdNotUnique {
        /// How many.
        count: usize,
        /// The key id.
        id: String,
    },
    /// Several objects of a class with one key id, found destroying it.
    #[error("{count} objects have key id {id}; nothing destroyed, the URI must name one key")]
    IdNotUniqueNothingDestroyed {
        /// How many.
        count: usize,
        /// The key id.
        id: String,
    },
    /// The key id is there under another label.
    #[error("{count} key objects have key id {id} but not the label {label:?}; nothing destroyed")]
    OtherLabel {
        /// How many.
        count: usize,
        /// The key id.
        id: String,
        /// The label the URI names.
        label: String,
    },
    /// An attribute the key must have is missing.
    #[error("the token has no such attribute for the key")]
    NoAttribute,
    /// The halves of the key pair are of different types.
    #[error("{key}: the private key is {private}, the public key {public}")]
    HalvesDiffer {
        /// The key (token and id).
        key: String,
        /// The private half's type.
        private: KeyType,
        /// The public half's.
        public: KeyType,
    },
    /// A private key that could leave the token.
    #[error(
        "{key}: the private key is {}; signet uses only sensitive, non-extractable keys",
        if *.extractable { "extractable" } else { "not sensitive" }
    )]
    Exportable {
        /// The key (token and id).
        key: String,
        /// Extractable (else: not sensitive).
        extractable: bool,
    },
    /// A public-key attribute that does not read.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// What is wrong with a key file or a soft store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileProblem {
    /// The file cannot be read (the source says why).
    #[error("cannot read")]
    Unreadable,
    /// The file cannot be written (the source says why).
    #[error("cannot write")]
    Unwritable,
    /// The store's directory cannot be made.
    #[error("cannot create the key store directory")]
    NoDirectory,
    /// Others may read the private key.
    #[error("mode {0:o} lets others read a private key; chmod 600 it")]
    OpenMode(u32),
    /// Neither DER nor PEM.
    #[error("not PKCS#8 DER or PEM")]
    NotPkcs8,
    /// A private key of no algorithm signet signs with, and ring's
    /// reason: ring's `KeyRejected` is a `std::error::Error` only with
    /// ring's `std` feature, which signet does not turn on; its text is a
    /// fixed name such as `InvalidEncoding`.
    #[error("not an RSA, P-256, P-384 or Ed25519 private key ({0})")]
    NotAKey(String),
    /// ring could not make the key.
    #[error("key generation failed")]
    GenerationFailed,
    /// A directory, named to be destroyed.
    #[error("a directory: only a key file is destroyed")]
    DirectoryNotDestroyed,
    /// A link or device, named to be destroyed.
    #[error("not a regular file: only a key file is destroyed")]
    NotRegularNotDestroyed,
    /// A file that does not open as a key, named to be destroyed.
    #[error("not destroyed: it does not open as a key")]
    NotAKeyNotDestroyed,
    /// The file cannot be removed (the source says why).
    #[error("cannot remove")]
    NotRemoved,
    /// The removal cannot be made durable (the source says why).
    #[error("cannot sync the directory")]
    NotSynced,
}

/// Why a key proof failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofProblem {
    /// The store's key is of another algorithm.
    #[error("the store holds a {0} key")]
    OtherAlgorithm(Algorithm),
    /// No nonce for the probe.
    #[error("no randomness for the probe")]
    NoRandomness,
    /// The DNSKEY does not make a public key (the verifier says why).
    #[error("the published DNSKEY is unusable")]
    UnusableDnskey,
    /// The probe does not verify (the verifier says why).
    #[error("a probe signed in the store does not verify against the published DNSKEY")]
    DoesNotVerify,
}

/// Why a key could not sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignProblem {
    /// The token refused (the source says how).
    #[error("the token refused")]
    TokenRefused,
    /// The token's signature has the wrong length.
    #[error("the token returned {got} octets, a {algorithm} signature has {want}")]
    WrongLength {
        /// Octets returned.
        got: usize,
        /// The key's algorithm (its mnemonic).
        algorithm: &'static str,
        /// Octets a signature has.
        want: usize,
    },
    /// ring refused.
    #[error("ring refused to sign")]
    RingRefused,
}

/// Why a small file (a PIN, a key) was not read.
#[derive(Debug, thiserror::Error)]
pub enum SmallFileError {
    /// A directory, device or FIFO.
    #[error("not a regular file")]
    NotRegular,
    /// More than the limit.
    #[error("longer than {0} octets")]
    TooLong(u64),
    /// Not text (a PIN).
    #[error("not UTF-8")]
    NotUtf8,
    /// The file system's error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A cryptoki error, shown the PKCS#11 way: `CKR_… in C_…` (cryptoki's
/// own text is the specification's paragraph, without the name an
/// operator looks up); another cryptoki error by cryptoki's text, which
/// already quotes what caused it (a library that does not load), so it
/// has no source of its own to show.
#[derive(Debug)]
pub struct Pkcs11Failure(pub CkError);

impl fmt::Display for Pkcs11Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            CkError::Pkcs11(rv, function) => write!(f, "{} in C_{function:?}", Ckr(*rv)),
            other => write!(f, "{other}"),
        }
    }
}

impl std::error::Error for Pkcs11Failure {}

/// A PKCS#11 return value, shown by its name, e.g. `CKR_PIN_INCORRECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ckr(pub RvError);

impl fmt::Display for Ckr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            RvError::VendorDefined(code) => write!(f, "vendor-defined CKR 0x{code:08x}"),
            RvError::UnknownErrorCode(code) => write!(f, "CKR 0x{code:08x}"),
            other => {
                f.write_str("CKR")?;
                for c in format!("{other:?}").chars() {
                    if c.is_ascii_uppercase() {
                        f.write_str("_")?;
                    }
                    write!(f, "{}", c.to_ascii_uppercase())?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Ckr {}

/// `reason == "CKR_PIN_INCORRECT"`: a return value compares with its name.
impl PartialEq<str> for Ckr {
    fn eq(&self, name: &str) -> bool {
        *self.to_string() == *name
    }
}

/// Why a token kept logged in may not serve another run.
#[derive(Debug, thiserror::Error)]
pub enum TokenStale {
    /// An operation on it failed.
    #[error("an operation on it failed")]
    Failed,
    /// Its module was retired.
    #[error("its module is restarting after an error")]
    ModuleRestarting,
    /// Its session does not answer.
    #[error("its session does not answer")]
    NoSessionInfo(#[source] Pkcs11Failure),
    /// Its session is no longer the user's.
    #[error("its session is no longer logged in as the user ({0:?})")]
    LoggedOut(SessionState),
}
