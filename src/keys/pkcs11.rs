//! The PKCS#11 key store (cryptoki): keys generated inside a token, the
//! private halves sensitive and never extractable.
//!
//! A store is one token, found by label (slot ids change between runs),
//! logged in as the user with the PIN from the URI's `pin-source` (or
//! `$SIGNET_PKCS11_PIN`). The PIN lives only as long as the login call,
//! in a zeroized buffer, and appears in no message.
//!
//! Each module is loaded and initialised once per process and never
//! finalised: PKCS#11 login state belongs to the application, and
//! `C_Initialize`/`C_Finalize` twice in one process is trouble. A
//! consequence of that shared state: while one store of the process is
//! logged in to a token, another store opened on the same token is
//! logged in too, whatever its PIN (the token answers
//! `CKR_USER_ALREADY_LOGGED_IN` without checking it).
//!
//! Keys hold the token open: a store's session stays open while any of
//! its keys lives, and each concurrent signing thread borrows a session of
//! its own from a pool (a cryptoki `Session` may move between threads but
//! not be shared).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::{AuthPin, Ulong};
use zeroize::Zeroizing;

use super::soft::{random_id, rsa_dnskey};
use super::uri::{PIN_ENV, Pkcs11Uri};
use super::{
    Algorithm, Ckr, Destroyed, KeyError, KeyStore, KeyUri, ModuleProblem, Pkcs11Failure, SignProblem, SigningKey,
    TokenProblem, TokenStale, UriProblem,
};
use crate::chain::Chain;

/// DER OID 1.2.840.10045.3.1.7, prime256v1 (P-256).
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER OID 1.3.132.0.34, secp384r1 (P-384).
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER OID 1.3.101.112, Ed25519 (RFC 8410).
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER PrintableString "edwards25519", the curve name PKCS#11 3.0 also allows.
const NAME_ED25519: &[u8] = b"\x13\x0cedwards25519";
/// The RSA public exponent of new keys, 65537.
const RSA_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

/// A token reached through a PKCS#11 module, logged in as the user.
#[derive(Debug)]
pub struct Pkcs11Store {
    uri: Pkcs11Uri,
    token: Arc<Token>,
}

impl Pkcs11Store {
    /// Loads the module (once per process), finds the token by label and
    /// logs in with the PIN that the URI's `pin-source` names.
    ///
    /// While the process keeps its tokens logged in ([`keep_tokens`]), a
    /// token already logged in is used again, without a new login.
    pub fn open(uri: &Pkcs11Uri) -> Result<Pkcs11Store, KeyError> {
        let module = uri.module();
        if let Some(token) = kept_token(&module, &uri.token) {
            return Ok(Pkcs11Store { uri: uri.clone(), token });
        }
        let context = context(&module)?;
        let opened = find_slot(&context, &uri.token, &module)
            .and_then(|slot| Token::log_in(Arc::clone(&context), slot, uri, module.clone()));
        match opened {
            Ok(token) => {
                let token = Arc::new(token);
                keep_token(&token);
                Ok(Pkcs11Store { uri: uri.clone(), token })
            }
            Err(e) => {
                // The token may be gone (an HSM unplugged, a token
                // directory moved): start the module afresh once nobody
                // uses it, so that a later run finds the token again.
                retire(&context);
                Err(e)
            }
        }
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.token.label
    }
}

/// The tokens a process keeps logged in, by module and label: `None`
/// unless [`keep_tokens`] asked for it (a one-shot command logs in once
/// anyway, and lets go when it ends).
static KEPT: Mutex<Option<KeptMap>> = Mutex::new(None);

/// Kept tokens by (module path, token label).
type KeptMap = HashMap<(String, String), Arc<Token>>;

/// While the guard lives, every token the process logs in to stays
/// logged in: one login per token for the life of a service, instead of
/// one per run. That matters beyond speed: SoftHSM 2 rewrites its
/// `token.object` at each login (truncate, then write), so every login
/// is a window in which a crash loses the token. A kept token found dead
/// (its session closed, the device removed, the token gone, the module
/// restarted after an error) is dropped and the next store opened logs
/// in afresh. Dropping the guard lets go of them all (the sessions close
/// once no key of theirs is in use).
#[derive(Debug)]
#[must_use = "tokens are kept only while the guard lives"]
pub struct KeptTokens(());

/// Keeps the process's tokens logged in while the guard lives (see
/// [`KeptTokens`]).
pub fn keep_tokens() -> KeptTokens {
    lock(&KEPT).get_or_insert_with(HashMap::new);
    KeptTokens(())
}

impl Drop for KeptTokens {
    fn drop(&mut self) {
        let kept = lock(&KEPT).take();
        drop(kept);
    }
}

/// The token kept logged in for `label` in `module`, if it is alive.
fn kept_token(module: &str, label: &str) -> Option<Arc<Token>> {
    let mut kept = lock(&KEPT);
    let tokens = kept.as_mut()?;
    let key = (module.to_owned(), label.to_owned());
    let token = tokens.get(&key)?;
    match token.alive() {
        Ok(()) => {
            tracing::debug!(token = %label, "PKCS#11 token still logged in: no new login");
            Some(Arc::clone(token))
        }
        Err(why) => {
            tracing::warn!(token = %label, "PKCS#11 token kept logged in failed ({}): its module starts afresh and the token is logged in to again", Chain(&why));
            let token = tokens.remove(&key)?;
            drop(kept);
            // As an open that fails: the module starts afresh once its
            // users let go, so that a token that went away and came back
            // is found again.
            retire(&token.context);
            None
        }
    }
}

/// Keeps a token just logged in, if the process keeps its tokens.
fn keep_token(token: &Arc<Token>) {
    if let Some(tokens) = lock(&KEPT).as_mut() {
        tokens.insert((token.module.clone(), token.label.clone()), Arc::clone(token));
    }
}

/// Serialises key-pair generation in the process (see `generate`).
static GENERATING: Mutex<()> = Mutex::new(());

impl KeyStore for Pkcs11Store {
    fn generate(&self, algorithm: Algorithm, bits: u32, label: &str) -> Result<Box<dyn SigningKey>, KeyError> {
        self.token.watch(self.generate_in(algorithm, bits, label))
    }

    fn open(&self, uri: &KeyUri) -> Result<Box<dyn SigningKey>, KeyError> {
        self.token.watch(self.open_in(uri))
    }

    fn destroy(&self, uri: &KeyUri) -> Result<Destroyed, KeyError> {
        self.token.watch(self.destroy_in(uri))
    }
}

impl Pkcs11Store {
    fn generate_in(&self, algorithm: Algorithm, bits: u32, label: &str) -> Result<Box<dyn SigningKey>, KeyError> {
        let bits = super::check_bits(algorithm, Some(bits))?;
        let id = random_id()?.to_vec();
        let (mechanism, public, private) = templates(algorithm, bits, &id, label);
        let operation = format!("generate {} key pair", algorithm.mnemonic());
        // One key generation at a time in this process: SoftHSM's file
        // object store has been seen to fail (CKR_GENERAL_ERROR) when key
        // pairs are created while other sessions work on the same token.
        // Keys are made rarely; signing is not serialised.
        let generating = lock(&GENERATING);
        let (public, private) = self
            .token
            .with_main(|s| s.generate_key_pair(&mechanism, &public, &private))
            .map_err(|e| self.token.error(&operation, e))?;
        drop(generating);
        let uri = KeyUri::Pkcs11(self.uri.with_key(&id, label));
        Pkcs11Key::load(&self.token, uri, private, public).inspect_err(|_| {
            // A pair that cannot be used is not left behind; failing to
            // remove it changes nothing about the error to report.
            let _ = self.token.with_main(|s| s.destroy_object(private).and_then(|()| s.destroy_object(public)));
        })
    }

    fn open_in(&self, uri: &KeyUri) -> Result<Box<dyn SigningKey>, KeyError> {
        let (id, _) = self.named(uri)?;
        let private = self.token.find_key(id, ObjectClass::PRIVATE_KEY, "private key")?;
        let public = self.token.find_key(id, ObjectClass::PUBLIC_KEY, "public key")?;
        Pkcs11Key::load(&self.token, uri.clone(), private, public)
    }

    /// Destroys the private and the public key object with the URI's
    /// CKA_ID (and CKA_LABEL, if it names one), private first. Nothing is
    /// destroyed unless each class has at most one such object; an object
    /// with the id but another label is refused, not reported gone.
    fn destroy_in(&self, uri: &KeyUri) -> Result<Destroyed, KeyError> {
        let (id, label) = self.named(uri)?;
        let mut halves = Vec::new();
        for (class, what) in [(ObjectClass::PRIVATE_KEY, "private key"), (ObjectClass::PUBLIC_KEY, "public key")] {
            halves.extend(self.token.find_named(id, label, class, what)?);
        }
        if halves.is_empty() {
            if let Some(label) = label {
                self.token.refuse_other_labels(id, label)?;
            }
            return Ok(Destroyed::AlreadyGone);
        }
        for handle in halves {
            self.token.destroy_object(handle, id)?;
        }
        Ok(Destroyed::Now)
    }
}

impl Pkcs11Store {
    /// The key id and label a key URI names in this store.
    fn named<'u>(&self, uri: &'u KeyUri) -> Result<(&'u [u8], Option<&'u str>), KeyError> {
        let bad = |reason| KeyError::BadUri { uri: uri.to_string(), reason };
        let KeyUri::Pkcs11(p) = uri else {
            return Err(bad(UriProblem::NotPkcs11));
        };
        if p.token != self.token.label {
            return Err(bad(UriProblem::OtherToken { key: p.token.clone(), store: self.token.label.clone() }));
        }
        let Some(id) = p.id.as_deref() else {
            return Err(bad(UriProblem::NoId));
        };
        Ok((id, p.object.as_deref()))
    }
}

/// The mechanism and the public and private templates of a new key pair.
fn templates(
    algorithm: Algorithm,
    bits: u32,
    id: &[u8],
    label: &str,
) -> (Mechanism<'static>, Vec<Attribute>, Vec<Attribute>) {
    let (mechanism, shape) = match algorithm {
        Algorithm::RsaSha256 => (
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::ModulusBits(Ulong::from(u64::from(bits))),
                Attribute::PublicExponent(RSA_EXPONENT.to_vec()),
            ],
        ),
        Algorithm::EcdsaP256Sha256 => (Mechanism::EccKeyPairGen, vec![Attribute::EcParams(OID_P256.to_vec())]),
        Algorithm::EcdsaP384Sha384 => (Mechanism::EccKeyPairGen, vec![Attribute::EcParams(OID_P384.to_vec())]),
        Algorithm::Ed25519 => (Mechanism::EccEdwardsKeyPairGen, vec![Attribute::EcParams(OID_ED25519.to_vec())]),
    };
    let named = || [Attribute::Id(id.to_vec()), Attribute::Label(label.as_bytes().to_vec())];
    let mut public = vec![Attribute::Token(true), Attribute::Private(false), Attribute::Verify(true)];
    public.extend(named());
    public.extend(shape);
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
    ];
    private.extend(named());
    (mechanism, public, private)
}

/// A loaded PKCS#11 module and its context, shared by every store that
/// uses it. After an error opening a token it is retired: finalised when
/// its last user lets go, and only then initialised anew. C_Finalize is
/// global to the library, so a new context must not start while an old
/// one still has sessions.
struct Module {
    path: String,
    context: Pkcs11,
    retired: AtomicBool,
}

impl std::ops::Deref for Module {
    type Target = Pkcs11;
    fn deref(&self) -> &Pkcs11 {
        &self.context
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        if *self.retired.get_mut() {
            let _ = self.context.clone().finalize();
            lock(&RETIRING).remove(&self.path);
        }
    }
}

/// The modules in use, by path.
static MODULES: OnceLock<Mutex<HashMap<String, Arc<Module>>>> = OnceLock::new();
/// Modules retired and not yet finalised.
static RETIRING: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// The process's context for `module`: loaded and initialised on first
/// use (or first use after it was retired), then shared.
fn context(module: &str) -> Result<Arc<Module>, KeyError> {
    let mut modules = lock(MODULES.get_or_init(Default::default));
    if let Some(context) = modules.get(module) {
        return Ok(Arc::clone(context));
    }
    let failed = |problem, source| KeyError::Module { path: module.to_owned(), problem, source };
    if lock(&RETIRING).contains(module) {
        return Err(failed(ModuleProblem::Restarting, None));
    }
    let context = Pkcs11::new(module).map_err(|e| failed(ModuleProblem::Load, Some(Pkcs11Failure(e))))?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(failed(ModuleProblem::Initialize, Some(Pkcs11Failure(e)))),
    }
    let context = Arc::new(Module { path: module.to_owned(), context, retired: AtomicBool::new(false) });
    modules.insert(module.to_owned(), Arc::clone(&context));
    Ok(context)
}

/// Retires a module (see [`Module`]): no new store uses it.
fn retire(module: &Arc<Module>) {
    let mut modules = lock(MODULES.get_or_init(Default::default));
    if modules.get(&module.path).is_some_and(|current| Arc::ptr_eq(current, module)) {
        lock(&RETIRING).insert(module.path.clone());
        module.retired.store(true, Ordering::SeqCst);
        modules.remove(&module.path);
        // Its kept tokens would hold it from being finalised and started
        // afresh: they go too (and log in again on the new context).
        if let Some(tokens) = lock(&KEPT).as_mut() {
            tokens.retain(|_, token| !Arc::ptr_eq(&token.context, module));
        }
        tracing::warn!(module = %module.path, "PKCS#11 module retired after an error: it starts afresh when its last run ends");
    }
}

/// The one slot whose token carries `label`.
fn find_slot(context: &Pkcs11, label: &str, module: &str) -> Result<Slot, KeyError> {
    let failed = |operation: &str, e: CkError| pkcs11_error(label, operation, e);
    let mut found = Vec::new();
    for slot in context.get_slots_with_token().map_err(|e| failed("list slots", e))? {
        let info = context.get_token_info(slot).map_err(|e| failed("read token info", e))?;
        if info.label().trim() == label {
            found.push(slot);
        }
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(KeyError::NoToken { token: label.to_owned(), module: module.to_owned() }),
        _ => Err(KeyError::Token {
            token: label.to_owned(),
            operation: "find token".to_owned(),
            problem: TokenProblem::LabelNotUnique(found.len()),
        }),
    }
}

/// Reads the PIN from `file:PATH` or `env:VAR` (default `env:SIGNET_PKCS11_PIN`),
/// without a trailing newline.
fn read_pin(uri: &Pkcs11Uri) -> Result<AuthPin, KeyError> {
    let source = uri.pin_source.clone().unwrap_or_else(|| format!("env:{PIN_ENV}"));
    let text = if let Some(path) = source.strip_prefix("file:") {
        let cannot = |source| KeyError::PinFile { path: path.to_owned(), source };
        let bytes = Zeroizing::new(super::read_small_file(std::path::Path::new(path), 4096).map_err(cannot)?);
        let text = std::str::from_utf8(&bytes).map_err(|_| cannot(super::SmallFileError::NotUtf8))?;
        Zeroizing::new(text.to_owned())
    } else if let Some(var) = source.strip_prefix("env:") {
        std::env::var(var)
            .map(Zeroizing::new)
            .map_err(|_| KeyError::NoPin(format!("the environment variable {var} is not set (or not UTF-8)")))?
    } else {
        return Err(KeyError::BadUri { uri: KeyUri::Pkcs11(uri.clone()).to_string(), reason: UriProblem::PinSource });
    };
    let pin = text.trim_end_matches(['\r', '\n']);
    if pin.is_empty() {
        return Err(KeyError::NoPin(format!("{source} is empty")));
    }
    Ok(AuthPin::from(pin))
}

/// A logged-in token, shared by its store and the keys opened in it.
struct Token {
    label: String,
    module: String,
    slot: Slot,
    /// The session that logged in. While it is open the application stays
    /// logged in; generation and lookups use it.
    main: Mutex<Session>,
    /// Idle sessions for signing, one per thread that has signed at once.
    idle: Mutex<Vec<Session>>,
    /// An operation on this token failed: it is not kept for later runs
    /// (see [`Token::watch`]).
    dead: AtomicBool,
    /// Last: fields drop in order, and the sessions must close before a
    /// retired module is finalised.
    context: Arc<Module>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.label)
            .field("module", &self.module)
            .field("slot", &self.slot.id())
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Opens a read-write session on `slot` and logs in as the user.
    fn log_in(context: Arc<Module>, slot: Slot, uri: &Pkcs11Uri, module: String) -> Result<Token, KeyError> {
        let label = uri.token.clone();
        let session = context.open_rw_session(slot).map_err(|e| pkcs11_error(&label, "open session", e))?;
        let pin = read_pin(uri)?;
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(rv, _)) => return Err(KeyError::Login { token: label, reason: Ckr(rv) }),
            Err(e) => return Err(pkcs11_error(&label, "log in", e)),
        }
        drop(pin);
        tracing::debug!(token = %label, "PKCS#11 login");
        Ok(Token {
            label,
            module,
            context,
            slot,
            main: Mutex::new(session),
            idle: Mutex::new(Vec::new()),
            dead: AtomicBool::new(false),
        })
    }

    /// Whether the token may serve another run: no session found dead,
    /// its module not restarted, and the main session still there and
    /// logged in as the user. Why not, if not.
    fn alive(&self) -> Result<(), TokenStale> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(TokenStale::Failed);
        }
        if self.context.retired.load(Ordering::SeqCst) {
            return Err(TokenStale::ModuleRestarting);
        }
        let info = self.with_main(|s| s.get_session_info()).map_err(|e| TokenStale::NoSessionInfo(Pkcs11Failure(e)))?;
        match info.session_state() {
            SessionState::RwUser => Ok(()),
            other => Err(TokenStale::LoggedOut(other)),
        }
    }

    /// Marks the token dead if `result` is a failure: a token kept for
    /// later runs is then logged in to afresh (its module restarted), as
    /// if it had been opened at every run. A token that lost its objects
    /// (SoftHSM's token directory moved away and back) answers with
    /// errors about keys, not about its sessions.
    fn watch<T>(&self, result: Result<T, KeyError>) -> Result<T, KeyError> {
        if result.is_err() {
            self.dead.store(true, Ordering::SeqCst);
        }
        result
    }

    /// Runs `f` on the main session.
    fn with_main<T>(&self, f: impl FnOnce(&Session) -> cryptoki::error::Result<T>) -> cryptoki::error::Result<T> {
        f(&lock(&self.main))
    }

    /// Runs `f` on an idle session (opening one if none is idle), then
    /// returns the session to the pool unless it died.
    fn with_idle<T>(&self, f: impl FnOnce(&Session) -> cryptoki::error::Result<T>) -> cryptoki::error::Result<T> {
        let popped = lock(&self.idle).pop();
        let session = match popped {
            Some(session) => session,
            // Login state is the application's: a new session is logged in.
            None => self.context.open_ro_session(self.slot)?,
        };
        let result = f(&session);
        if !matches!(&result, Err(e) if session_is_dead(e)) {
            lock(&self.idle).push(session);
        }
        result
    }

    /// The one object of `class` with CKA_ID `id`.
    fn find_key(&self, id: &[u8], class: ObjectClass, what: &'static str) -> Result<ObjectHandle, KeyError> {
        let template = [Attribute::Class(class), Attribute::Id(id.to_vec())];
        let found = self.with_main(|s| s.find_objects(&template)).map_err(|e| self.error("find keys", e))?;
        match found.as_slice() {
            [handle] => Ok(*handle),
            [] => Err(KeyError::NoKey {
                store: format!("token {:?}", self.label),
                id: data_encoding::HEXLOWER.encode(id),
                what,
            }),
            _ => Err(self.refusal(
                &format!("find {what}"),
                TokenProblem::IdNotUnique { count: found.len(), id: data_encoding::HEXLOWER.encode(id) },
            )),
        }
    }

    /// The token objects of `class` with CKA_ID `id` (and CKA_LABEL
    /// `label`, if given): none or one; more is an error.
    fn find_named(
        &self,
        id: &[u8],
        label: Option<&str>,
        class: ObjectClass,
        what: &str,
    ) -> Result<Option<ObjectHandle>, KeyError> {
        let mut template = vec![Attribute::Class(class), Attribute::Token(true), Attribute::Id(id.to_vec())];
        template.extend(label.map(|l| Attribute::Label(l.as_bytes().to_vec())));
        let found = self.with_main(|s| s.find_objects(&template)).map_err(|e| self.error("find keys", e))?;
        match found.as_slice() {
            [] => Ok(None),
            [handle] => Ok(Some(*handle)),
            _ => Err(self.refusal(
                &format!("destroy {what}"),
                TokenProblem::IdNotUniqueNothingDestroyed {
                    count: found.len(),
                    id: data_encoding::HEXLOWER.encode(id),
                },
            )),
        }
    }

    /// Refuses to call a key gone that is there under another label.
    fn refuse_other_labels(&self, id: &[u8], label: &str) -> Result<(), KeyError> {
        let mut found = 0;
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            let template = [Attribute::Class(class), Attribute::Token(true), Attribute::Id(id.to_vec())];
            found += self.with_main(|s| s.find_objects(&template)).map_err(|e| self.error("find keys", e))?.len();
        }
        if found == 0 {
            return Ok(());
        }
        Err(self.refusal(
            "destroy key",
            TokenProblem::OtherLabel { count: found, id: data_encoding::HEXLOWER.encode(id), label: label.to_owned() },
        ))
    }

    /// Destroys one object; one that another session destroyed meanwhile
    /// is gone all the same.
    fn destroy_object(&self, object: ObjectHandle, id: &[u8]) -> Result<(), KeyError> {
        match self.with_main(|s| s.destroy_object(object)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::ObjectHandleInvalid, _)) => Ok(()),
            Err(e) => Err(self.error(&format!("destroy key id {}", data_encoding::HEXLOWER.encode(id)), e)),
        }
    }

    /// One attribute of `object`, taken apart by `pick`.
    fn attribute<T>(
        &self,
        object: ObjectHandle,
        kind: AttributeType,
        pick: impl Fn(Attribute) -> Option<T>,
    ) -> Result<T, KeyError> {
        let operation = format!("read {kind}");
        let attributes =
            self.with_main(|s| s.get_attributes(object, &[kind])).map_err(|e| self.error(&operation, e))?;
        attributes.into_iter().find_map(pick).ok_or_else(|| self.refusal(&operation, TokenProblem::NoAttribute))
    }

    /// The value of a byte-string attribute of `object`.
    fn bytes(&self, object: ObjectHandle, kind: AttributeType) -> Result<Vec<u8>, KeyError> {
        self.attribute(object, kind, |a| match a {
            Attribute::Modulus(v) | Attribute::PublicExponent(v) | Attribute::EcParams(v) | Attribute::EcPoint(v) => {
                Some(v)
            }
            _ => None,
        })
    }

    /// The value of a boolean attribute of `object`.
    fn flag(&self, object: ObjectHandle, kind: AttributeType) -> Result<bool, KeyError> {
        self.attribute(object, kind, |a| match a {
            Attribute::Sensitive(b) | Attribute::Extractable(b) => Some(b),
            _ => None,
        })
    }

    /// CKA_KEY_TYPE of `object`.
    fn key_type(&self, object: ObjectHandle) -> Result<KeyType, KeyError> {
        self.attribute(object, AttributeType::KeyType, |a| if let Attribute::KeyType(t) = a { Some(t) } else { None })
    }

    /// A PKCS#11 call of `operation` that failed.
    fn error(&self, operation: &str, e: CkError) -> KeyError {
        pkcs11_error(&self.label, operation, e)
    }

    /// An answer to `operation` that signet cannot use.
    fn refusal(&self, operation: &str, problem: TokenProblem) -> KeyError {
        KeyError::Token { token: self.label.clone(), operation: operation.to_owned(), problem }
    }
}

/// A key pair in a token.
#[derive(Debug)]
pub struct Pkcs11Key {
    token: Arc<Token>,
    uri: KeyUri,
    algorithm: Algorithm,
    public_key: Vec<u8>,
    private: ObjectHandle,
    /// The signature length: the modulus length for RSA.
    signature_len: usize,
}

impl Pkcs11Key {
    /// Reads the public half, checks the private half, and makes the key.
    fn load(
        token: &Arc<Token>,
        uri: KeyUri,
        private: ObjectHandle,
        public: ObjectHandle,
    ) -> Result<Box<dyn SigningKey>, KeyError> {
        let key_type = token.key_type(public)?;
        let private_type = token.key_type(private)?;
        if private_type != key_type {
            return Err(token.refusal(
                "open key",
                TokenProblem::HalvesDiffer { key: uri.describe(), private: private_type, public: key_type },
            ));
        }
        check_private(token, private, &uri)?;
        let (algorithm, public_key) = public_key(token, public, key_type)?;
        let signature_len = match algorithm {
            Algorithm::RsaSha256 => rsa_modulus_len(&public_key),
            Algorithm::EcdsaP256Sha256 | Algorithm::Ed25519 => 64,
            Algorithm::EcdsaP384Sha384 => 96,
        };
        Ok(Box::new(Pkcs11Key { token: Arc::clone(token), uri, algorithm, public_key, private, signature_len }))
    }
}

/// Refuses a private key that could leave the token.
fn check_private(token: &Token, private: ObjectHandle, uri: &KeyUri) -> Result<(), KeyError> {
    let sensitive = token.flag(private, AttributeType::Sensitive)?;
    let extractable = token.flag(private, AttributeType::Extractable)?;
    if sensitive && !extractable {
        return Ok(());
    }
    Err(token.refusal("open key", TokenProblem::Exportable { key: uri.describe(), extractable }))
}

/// The algorithm and DNSKEY public key of a public-key object.
fn public_key(token: &Token, public: ObjectHandle, key_type: KeyType) -> Result<(Algorithm, Vec<u8>), KeyError> {
    let malformed = |what| token.refusal("read public key", TokenProblem::Malformed(what));
    if key_type == KeyType::RSA {
        let modulus = token.bytes(public, AttributeType::Modulus)?;
        let exponent = token.bytes(public, AttributeType::PublicExponent)?;
        let dnskey = rsa_dnskey(&exponent, &modulus);
        let bits = rsa_modulus_len(&dnskey) * 8;
        super::check_bits(Algorithm::RsaSha256, Some(u32::try_from(bits).unwrap_or(u32::MAX)))?;
        return Ok((Algorithm::RsaSha256, dnskey));
    }
    let params = token.bytes(public, AttributeType::EcParams)?;
    let algorithm = curve(key_type, &params)?;
    let point = token.bytes(public, AttributeType::EcPoint)?;
    let dnskey = match algorithm {
        Algorithm::Ed25519 => edwards_point(&point).ok_or_else(|| malformed("Ed25519 CKA_EC_POINT"))?,
        Algorithm::EcdsaP256Sha256 => ec_point(&point, 32).ok_or_else(|| malformed("P-256 CKA_EC_POINT"))?,
        Algorithm::EcdsaP384Sha384 => ec_point(&point, 48).ok_or_else(|| malformed("P-384 CKA_EC_POINT"))?,
        Algorithm::RsaSha256 => return Err(malformed("key type")),
    };
    Ok((algorithm, dnskey))
}

/// The algorithm of an EC or Edwards key with these CKA_EC_PARAMS.
fn curve(key_type: KeyType, params: &[u8]) -> Result<Algorithm, KeyError> {
    let found = if key_type == KeyType::EC {
        match params {
            OID_P256 => Some(Algorithm::EcdsaP256Sha256),
            OID_P384 => Some(Algorithm::EcdsaP384Sha384),
            _ => None,
        }
    } else if key_type == KeyType::EC_EDWARDS && (params == OID_ED25519 || params == NAME_ED25519) {
        Some(Algorithm::Ed25519)
    } else {
        None
    };
    found.ok_or_else(|| {
        KeyError::UnsupportedAlgorithm(super::UnsupportedAlgorithm(format!(
            "PKCS#11 key type {key_type} with CKA_EC_PARAMS {}",
            data_encoding::HEXLOWER.encode(params)
        )))
    })
}

/// The length in octets of the modulus in RSA DNSKEY public-key data.
fn rsa_modulus_len(dnskey: &[u8]) -> usize {
    match dnskey {
        [0, hi, lo, rest @ ..] => rest.len().saturating_sub(usize::from(u16::from_be_bytes([*hi, *lo]))),
        [len, rest @ ..] => rest.len().saturating_sub(usize::from(*len)),
        [] => 0,
    }
}

/// X || Y from CKA_EC_POINT: a DER OCTET STRING holding the uncompressed
/// point 04 || X || Y (PKCS#11), or that point raw (some modules).
fn ec_point(value: &[u8], field: usize) -> Option<Vec<u8>> {
    let point = if value.len() == 1 + 2 * field { value } else { der_octet_string(value)? };
    match point {
        [0x04, xy @ ..] if xy.len() == 2 * field => Some(xy.to_vec()),
        _ => None,
    }
}

/// The 32-octet Ed25519 public key from CKA_EC_POINT: a DER OCTET STRING
/// (SoftHSM, PKCS#11 3.0), or the raw key.
fn edwards_point(value: &[u8]) -> Option<Vec<u8>> {
    let key = if value.len() == 32 { value } else { der_octet_string(value)? };
    (key.len() == 32).then(|| key.to_vec())
}

/// The contents of a DER OCTET STRING that fills `der` exactly.
fn der_octet_string(der: &[u8]) -> Option<&[u8]> {
    let (len, body) = match der {
        [0x04, len @ 0..=0x7f, body @ ..] => (usize::from(*len), body),
        [0x04, 0x81, len @ 0x80..=0xff, body @ ..] => (usize::from(*len), body),
        [0x04, 0x82, hi, lo, body @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), body),
        _ => return None,
    };
    (body.len() == len).then_some(body)
}

impl SigningKey for Pkcs11Key {
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
        let failed = |reason, source| KeyError::Sign { uri: self.uri.describe(), reason, source };
        let digest;
        let (mechanism, input) = match self.algorithm {
            Algorithm::RsaSha256 => (Mechanism::Sha256RsaPkcs, data),
            // SoftHSM 2.6 has no CKM_ECDSA_SHA256/384: hash here, sign the digest.
            Algorithm::EcdsaP256Sha256 => {
                digest = ring::digest::digest(&ring::digest::SHA256, data);
                (Mechanism::Ecdsa, digest.as_ref())
            }
            Algorithm::EcdsaP384Sha384 => {
                digest = ring::digest::digest(&ring::digest::SHA384, data);
                (Mechanism::Ecdsa, digest.as_ref())
            }
            Algorithm::Ed25519 => (Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)), data),
        };
        let signature = self.token.watch(
            self.token
                .with_idle(|s| s.sign(&mechanism, self.private, input))
                .map_err(|e| failed(SignProblem::TokenRefused, Some(Pkcs11Failure(e)))),
        )?;
        if signature.len() != self.signature_len {
            let wrong = SignProblem::WrongLength {
                got: signature.len(),
                algorithm: self.algorithm.mnemonic(),
                want: self.signature_len,
            };
            return Err(failed(wrong, None));
        }
        Ok(signature)
    }
}

/// Does this error mean the session is unusable?
fn session_is_dead(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::DeviceError
                | RvError::UserNotLoggedIn,
            _
        )
    )
}

/// A PKCS#11 call of `operation` on `token` that failed.
fn pkcs11_error(token: &str, operation: &str, e: CkError) -> KeyError {
    KeyError::Pkcs11 { token: token.to_owned(), operation: operation.to_owned(), source: Pkcs11Failure(e) }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_by_name() {
        assert_eq!(Ckr(RvError::PinIncorrect).to_string(), "CKR_PIN_INCORRECT");
        assert_eq!(Ckr(RvError::UserPinNotInitialized).to_string(), "CKR_USER_PIN_NOT_INITIALIZED");
        assert_eq!(Ckr(RvError::CryptokiAlreadyInitialized).to_string(), "CKR_CRYPTOKI_ALREADY_INITIALIZED");
    }

    #[test]
    fn ec_points_der_or_raw() {
        let xy: Vec<u8> = (1..=64).collect();
        let mut raw = vec![0x04];
        raw.extend_from_slice(&xy);
        let mut der = vec![0x04, 65];
        der.extend_from_slice(&raw);
        assert_eq!(ec_point(&der, 32), Some(xy.clone()));
        assert_eq!(ec_point(&raw, 32), Some(xy));
        assert_eq!(ec_point(&der[..der.len() - 1], 32), None, "truncated");
        assert_eq!(ec_point(&der, 48), None, "wrong curve");
    }

    #[test]
    fn edwards_points_der_or_raw() {
        let key = [7u8; 32];
        let mut der = vec![0x04, 32];
        der.extend_from_slice(&key);
        assert_eq!(edwards_point(&der).as_deref(), Some(&key[..]));
        assert_eq!(edwards_point(&key).as_deref(), Some(&key[..]));
        assert_eq!(edwards_point(&der[..20]), None);
    }

    #[test]
    fn long_form_octet_strings() {
        let body = [9u8; 200];
        let mut der = vec![0x04, 0x81, 200];
        der.extend_from_slice(&body);
        assert_eq!(der_octet_string(&der), Some(&body[..]));
        assert_eq!(der_octet_string(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]), None, "not minimal");
    }

    #[test]
    fn modulus_length_of_rsa_dnskey() {
        let modulus = [0xc5u8; 256];
        assert_eq!(rsa_modulus_len(&rsa_dnskey(&RSA_EXPONENT, &modulus)), 256);
    }

    #[test]
    fn pin_sources() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pin");
        std::fs::write(&file, "s3cret-pin\n").expect("write");
        let uri = |source: &str| Pkcs11Uri {
            token: "t".to_owned(),
            id: None,
            object: None,
            module_path: None,
            pin_source: Some(source.to_owned()),
        };
        let pin = read_pin(&uri(&format!("file:{}", file.display()))).expect("pin from file");
        assert!(!format!("{pin:?}").contains("s3cret"), "Debug shows the PIN");
        let missing = read_pin(&uri("env:SIGNET_TEST_NO_SUCH_VARIABLE")).expect_err("unset");
        assert!(matches!(missing, KeyError::NoPin(ref m) if m.contains("SIGNET_TEST_NO_SUCH_VARIABLE")));
        std::fs::write(&file, "\n").expect("write");
        assert!(matches!(read_pin(&uri(&format!("file:{}", file.display()))), Err(KeyError::NoPin(_))));
        assert!(matches!(read_pin(&uri("vault:x")), Err(KeyError::BadUri { .. })));
    }
}
