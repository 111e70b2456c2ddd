//! TSIG (RFC 8945) with HMAC-SHA256, on DNS messages as wire bytes.
//!
//! A MAC covers a message as sent, so everything here works on the full
//! message (header included) as bytes: a TSIG record is appended to a
//! message that is otherwise complete, and a received message is checked
//! before it is parsed.
//!
//! - Client: [`sign_request`] signs a query and returns its MAC; a
//!   [`ResponseVerifier`] checks each message of the answer, a single
//!   message or a TCP stream of many (RFC 8945 §5.3.1: the first message
//!   signed over the request's MAC, each later signed one over the prior
//!   MAC and every message since, with up to 99 unsigned ones between).
//! - Server: [`verify_request`] checks a query's TSIG against the known
//!   keys; a [`ResponseSigner`] signs every message of the answer, and
//!   [`refusal_tsig`] adds the TSIG record an error answer carries (RFC
//!   8945 §5.3.2).
//! - Keys: [`TsigKey`], read from BIND or Knot key files whose mode keeps
//!   them private ([`TsigKey::read_file`]). The secret never appears in
//!   `Debug`, `Display` or any error.
//!
//! hickory-proto has TSIG, but its signer cannot sign the later messages
//! of a multi-message answer; this module is written on `ring::hmac`.
//! Only HMAC-SHA256 is supported, and only full-length (32-octet) MACs
//! are accepted.

mod keyfile;
#[cfg(test)]
mod tests;
mod wire;

pub use keyfile::KeyFileError;
pub use wire::Malformed;

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use ring::hmac;
use zeroize::Zeroizing;

use crate::zone::Name;
use wire::{ARCOUNT_AT, HEADER_LEN, TsigRr};

/// The fudge (seconds of clock difference allowed) in the TSIG records
/// signet makes, as RFC 8945 §10 recommends.
pub const FUDGE: u16 = 300;
/// The most unsigned messages in a row a multi-message answer may hold
/// (RFC 8945 §5.3.1).
pub const MAX_UNSIGNED: usize = 99;
/// Length of an HMAC-SHA256 MAC. Shorter (truncated) MACs are refused.
pub const MAC_LEN: usize = 32;
/// The shortest MAC RFC 8945 §5.2.2.1 lets a request carry for
/// HMAC-SHA256 (half its length); shorter is a format error.
const MIN_MAC_LEN: usize = MAC_LEN / 2;
/// The TSIG record's class.
const CLASS_ANY: u16 = 255;
/// The TSIG record type.
const TYPE_TSIG: u16 = 250;
/// `hmac-sha256.` in (canonical) wire form.
const ALGORITHM: &[u8] = b"\x0bhmac-sha256\x00";
/// The longest DNS message (TCP's two-octet length).
const MAX_MESSAGE_LEN: usize = 65535;

/// A TSIG error code (the extended RCODE in a TSIG record's Error field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TsigRcode(pub u16);

impl TsigRcode {
    /// No error.
    pub const NOERROR: TsigRcode = TsigRcode(0);
    /// The MAC does not verify.
    pub const BADSIG: TsigRcode = TsigRcode(16);
    /// The key (or its algorithm) is not known.
    pub const BADKEY: TsigRcode = TsigRcode(17);
    /// The time signed is outside the fudge.
    pub const BADTIME: TsigRcode = TsigRcode(18);
    /// The MAC is truncated below the receiver's minimum.
    pub const BADTRUNC: TsigRcode = TsigRcode(22);
}

impl fmt::Display for TsigRcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TsigRcode::NOERROR => f.write_str("NOERROR"),
            TsigRcode::BADSIG => f.write_str("BADSIG"),
            TsigRcode::BADKEY => f.write_str("BADKEY"),
            TsigRcode::BADTIME => f.write_str("BADTIME"),
            TsigRcode::BADTRUNC => f.write_str("BADTRUNC"),
            TsigRcode(code) => write!(f, "error {code}"),
        }
    }
}

/// Why a message could not be signed, or a signed answer was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsigError {
    /// The message, or its TSIG record, cannot be read.
    #[error("TSIG: malformed message: {0}")]
    Malformed(#[from] Malformed),
    /// The answer's first message carries no TSIG record.
    #[error("TSIG: the answer is not signed")]
    Unsigned,
    /// More than [`MAX_UNSIGNED`] unsigned messages in a row.
    #[error("TSIG: more than {MAX_UNSIGNED} unsigned messages in a row")]
    TooManyUnsigned,
    /// The answer ended with an unsigned message.
    #[error("TSIG: the answer's last message is not signed")]
    LastUnsigned,
    /// Signed with another key or algorithm than the request's.
    #[error("TSIG BADKEY: signed with key {name} algorithm {algorithm}, expected key {expected} hmac-sha256")]
    WrongKey {
        /// The key name in the message.
        name: Name,
        /// The algorithm name in the message.
        algorithm: Name,
        /// The key the request was signed with.
        expected: Name,
    },
    /// A MAC that is not 32 octets: truncated MACs are refused.
    #[error("TSIG: MAC of {len} octets refused (hmac-sha256 MACs have {MAC_LEN}; truncated MACs are not accepted)")]
    MacLength {
        /// The MAC's length.
        len: usize,
    },
    /// The MAC does not verify.
    #[error("TSIG BADSIG: the MAC does not verify with key {key}")]
    BadSig {
        /// The key used.
        key: Name,
    },
    /// The time signed is further from now than the fudge.
    #[error("TSIG BADTIME: signed at {signed}, now is {now} (fudge {fudge} s)")]
    BadTime {
        /// Time signed (Unix seconds).
        signed: u64,
        /// Our time.
        now: u64,
        /// The fudge in the record.
        fudge: u16,
    },
    /// The server answered with a TSIG error (BADSIG, BADKEY, BADTIME...).
    #[error("TSIG {error} from the server{}", server_time_note(.server_time))]
    Server {
        /// The error in the server's TSIG record.
        error: TsigRcode,
        /// The server's time, sent with BADTIME.
        server_time: Option<u64>,
    },
    /// Signing would make the message longer than 65535 octets (or its
    /// ARCOUNT overflow).
    #[error("TSIG: the signed message would be longer than {MAX_MESSAGE_LEN} octets")]
    TooLong,
    /// [`ResponseVerifier`] was used again after it refused a message.
    #[error("TSIG: the answer was refused earlier")]
    Abandoned,
}

fn server_time_note(server_time: &Option<u64>) -> String {
    server_time.map(|time| format!(" (server time {time})")).unwrap_or_default()
}

/// A TSIG key: its name and HMAC-SHA256 secret.
///
/// Key names compare case-insensitively and enter the MAC lowercased.
/// `Debug` shows the name and algorithm, never the secret; the secret is
/// zeroized when the key is dropped.
#[derive(Clone)]
pub struct TsigKey {
    name: Name,
    /// The name lowercased: the form the MAC covers (RFC 8945 §4.3.3).
    canonical: Name,
    secret: Zeroizing<Vec<u8>>,
}

impl TsigKey {
    /// A key from its name and secret.
    pub fn new(name: Name, secret: impl Into<Zeroizing<Vec<u8>>>) -> TsigKey {
        let canonical = name.as_ref().to_lowercase();
        TsigKey { name, canonical, secret: secret.into() }
    }

    /// Reads the one key in a key file: a BIND key clause (`key "NAME" {
    /// algorithm hmac-sha256; secret "BASE64"; };`, as `tsig-keygen -a
    /// hmac-sha256 NAME` writes) or Knot's key section (as `keymgr -t NAME
    /// hmac-sha256` writes). The file must not be readable or writable by
    /// group or other.
    pub fn read_file(path: impl AsRef<Path>) -> Result<TsigKey, KeyFileError> {
        let path = path.as_ref();
        let mut keys = keyfile::read_keys(path)?;
        if keys.len() > 1 {
            let names = keys.iter().map(|key| key.name.as_ref().map_or("-".into(), Name::to_string)).collect();
            return Err(KeyFileError::SeveralKeys { path: path.to_owned(), names });
        }
        let key = keys.pop().ok_or_else(|| KeyFileError::NoKey { path: path.to_owned() })?;
        let name = key.name.ok_or_else(|| KeyFileError::Nameless { path: path.to_owned() })?;
        Ok(TsigKey::new(name, key.secret))
    }

    /// Reads the key named `name` from a key file: a file as
    /// [`read_file`](Self::read_file) takes (which may hold several keys),
    /// or one line of base64 that is the secret alone.
    pub fn read_file_named(path: impl AsRef<Path>, name: &Name) -> Result<TsigKey, KeyFileError> {
        let path = path.as_ref();
        let keys = keyfile::read_keys(path)?;
        let found: Vec<String> = keys.iter().filter_map(|key| key.name.as_ref().map(Name::to_string)).collect();
        for key in keys {
            match &key.name {
                None => return Ok(TsigKey::new(name.clone(), key.secret)),
                Some(named) if named.as_ref().eq_ignore_case(name.as_ref()) => {
                    return Ok(TsigKey::new(named.clone(), key.secret));
                }
                Some(_) => {}
            }
        }
        Err(KeyFileError::NameMismatch { path: path.to_owned(), expected: name.clone(), found })
    }

    /// The key's name, as written.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The algorithm: always `hmac-sha256`.
    pub fn algorithm(&self) -> &'static str {
        "hmac-sha256"
    }

    /// How many octets signing adds to a message: the TSIG record (an
    /// error answer's BADTIME record has 6 more).
    pub fn rr_len(&self) -> usize {
        self.name.wire().len() + 10 + ALGORITHM.len() + 16 + MAC_LEN
    }

    fn is_named(&self, name: &Name) -> bool {
        self.name.as_ref().eq_ignore_case(name.as_ref())
    }

    fn context(&self) -> hmac::Context {
        hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, &self.secret))
    }
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// The TSIG fields besides the key: what the MAC covers after the
/// messages.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Variables {
    time_signed: u64,
    fudge: u16,
    error: u16,
    other: Vec<u8>,
}

impl Variables {
    /// The fields of a record signed now, without error.
    fn signing(now: u64) -> Variables {
        Variables { time_signed: now & 0xffff_ffff_ffff, fudge: FUDGE, error: 0, other: Vec::new() }
    }

    fn received(rr: &TsigRr<'_>) -> Variables {
        Variables { time_signed: rr.time_signed, fudge: rr.fudge, error: rr.error, other: rr.other.to_vec() }
    }

    /// The full TSIG variables (RFC 8945 §4.3.3), with the key's name
    /// lowercased.
    fn digest(&self, context: &mut hmac::Context, key: &TsigKey) {
        context.update(key.canonical.wire());
        context.update(&CLASS_ANY.to_be_bytes());
        context.update(&0u32.to_be_bytes()); // TTL
        context.update(ALGORITHM);
        self.digest_timers(context);
        context.update(&self.error.to_be_bytes());
        context.update(&len16(self.other.len()));
        context.update(&self.other);
    }

    /// The timers alone (RFC 8945 §5.3.1): time signed and fudge.
    fn digest_timers(&self, context: &mut hmac::Context) {
        context.update(&u48(self.time_signed));
        context.update(&self.fudge.to_be_bytes());
    }

    /// Is `now` within the fudge of the time signed?
    fn check_time(&self, now: u64) -> Result<(), TsigError> {
        // The fudge enforced is the message's, but never more than
        // signet's own (a peer cannot widen the window by asking).
        let fudge = self.fudge.min(FUDGE);
        if now.abs_diff(self.time_signed) > u64::from(fudge) {
            return Err(TsigError::BadTime { signed: self.time_signed, now, fudge });
        }
        Ok(())
    }
}

fn u48(value: u64) -> [u8; 6] {
    let b = value.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// A length as two octets (lengths here are under 64 KiB: of fields read
/// with a two-octet length, of MACs, or checked against the message limit).
fn len16(len: usize) -> [u8; 2] {
    u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes()
}

/// A prior MAC as the MAC of the next message covers it: its length, then
/// the MAC.
fn digest_mac(context: &mut hmac::Context, mac: &[u8]) {
    context.update(&len16(mac.len()));
    context.update(mac);
}

/// A received message as it was signed: the original ID in the header,
/// ARCOUNT and content without the TSIG record.
fn digest_received(context: &mut hmac::Context, rr: &TsigRr<'_>) {
    context.update(&rr.signed_header);
    context.update(rr.body);
}

/// Compares MACs in time independent of where they differ, so that a
/// forger cannot learn a MAC byte by byte from how long a refusal takes.
/// `constant_time_eq` rather than code of our own: keeping a comparison
/// constant-time under an optimising compiler is its whole concern.
fn mac_matches(expected: &[u8], received: &[u8]) -> bool {
    constant_time_eq::constant_time_eq(expected, received)
}

/// Appends a TSIG record with these fields and increments ARCOUNT; the
/// original ID is the header's ID.
fn append_tsig(
    message: &mut Vec<u8>,
    key_name: &[u8],
    algorithm: &[u8],
    variables: &Variables,
    mac: &[u8],
) -> Result<(), TsigError> {
    let id = wire::header_id(message)?;
    let arcount = wire::arcount(message)?.checked_add(1).ok_or(TsigError::TooLong)?;
    let rdata_len = algorithm.len() + 16 + mac.len() + variables.other.len();
    if message.len() + key_name.len() + 10 + rdata_len > MAX_MESSAGE_LEN {
        return Err(TsigError::TooLong);
    }
    message.extend_from_slice(key_name);
    message.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&len16(rdata_len));
    message.extend_from_slice(algorithm);
    message.extend_from_slice(&u48(variables.time_signed));
    message.extend_from_slice(&variables.fudge.to_be_bytes());
    message.extend_from_slice(&len16(mac.len()));
    message.extend_from_slice(mac);
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&variables.error.to_be_bytes());
    message.extend_from_slice(&len16(variables.other.len()));
    message.extend_from_slice(&variables.other);
    if let Some(count) = message.get_mut(ARCOUNT_AT..HEADER_LEN) {
        count.copy_from_slice(&arcount.to_be_bytes());
    }
    Ok(())
}

/// Signs an answer message: the MAC covers the prior MAC (the request's
/// for the first message), the message, and the full variables (first
/// message) or the timers (later messages).
fn sign_answer(
    key: &TsigKey,
    prior_mac: &[u8],
    message: &mut Vec<u8>,
    variables: &Variables,
    first: bool,
) -> Result<hmac::Tag, TsigError> {
    wire::arcount(message)?;
    let mut context = key.context();
    digest_mac(&mut context, prior_mac);
    context.update(message);
    if first {
        variables.digest(&mut context, key);
    } else {
        variables.digest_timers(&mut context);
    }
    let mac = context.sign();
    append_tsig(message, key.name.wire(), ALGORITHM, variables, mac.as_ref())?;
    Ok(mac)
}

/// The MAC of a signed request, which the answer's first MAC covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMac(Vec<u8>);

impl RequestMac {
    /// The MAC's octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Signs a request: appends the TSIG record (class ANY, TTL 0,
/// hmac-sha256, time signed `now`, fudge [`FUDGE`], original ID the
/// header's ID) and increments ARCOUNT. `message` is the complete request
/// in wire form; `now` is Unix seconds.
pub fn sign_request(message: &mut Vec<u8>, key: &TsigKey, now: u64) -> Result<RequestMac, TsigError> {
    wire::arcount(message)?;
    let variables = Variables::signing(now);
    let mut context = key.context();
    context.update(message);
    variables.digest(&mut context, key);
    let mac = context.sign();
    append_tsig(message, key.name.wire(), ALGORITHM, &variables, mac.as_ref())?;
    Ok(RequestMac(mac.as_ref().to_vec()))
}

/// Checks the messages of a signed request's answer, in order: one
/// message, or all the messages of a TCP answer (AXFR, IXFR).
///
/// The first message must be signed; later ones may go unsigned, up to
/// [`MAX_UNSIGNED`] in a row, as long as the last one is signed: call
/// [`finish`](Self::finish) after the last message. After a refusal the
/// answer must be abandoned: every later call fails.
#[derive(Debug)]
pub struct ResponseVerifier {
    key: Arc<TsigKey>,
    /// The MAC under way: the prior MAC and the unsigned messages since;
    /// `None` once a message was refused.
    running: Option<hmac::Context>,
    signed: usize,
    unsigned_since: usize,
}

impl ResponseVerifier {
    /// A verifier for the answer to a request signed with `key`.
    pub fn new(key: Arc<TsigKey>, request: &RequestMac) -> ResponseVerifier {
        let mut running = key.context();
        digest_mac(&mut running, request.as_bytes());
        ResponseVerifier { key, running: Some(running), signed: 0, unsigned_since: 0 }
    }

    /// Checks the next message of the answer (`now` in Unix seconds): its
    /// TSIG record, if any, must be the last record, of our key and
    /// algorithm, with a full-length MAC that verifies, signed within the
    /// fudge of `now`. A TSIG error from the server (BADSIG, BADKEY,
    /// BADTIME...) is [`TsigError::Server`].
    pub fn verify(&mut self, message: &[u8], now: u64) -> Result<(), TsigError> {
        let running = self.running.take().ok_or(TsigError::Abandoned)?;
        let next = match wire::find_tsig(message)? {
            None => self.unsigned(running, message)?,
            Some(rr) => self.signed(running, &rr, now)?,
        };
        self.running = Some(next);
        Ok(())
    }

    /// Checks that the answer ended with a signed message.
    pub fn finish(self) -> Result<(), TsigError> {
        match self.running {
            None => Err(TsigError::Abandoned),
            Some(_) if self.signed == 0 => Err(TsigError::Unsigned),
            Some(_) if self.unsigned_since > 0 => Err(TsigError::LastUnsigned),
            Some(_) => Ok(()),
        }
    }

    fn unsigned(&mut self, mut running: hmac::Context, message: &[u8]) -> Result<hmac::Context, TsigError> {
        if self.signed == 0 {
            return Err(TsigError::Unsigned);
        }
        self.unsigned_since += 1;
        if self.unsigned_since > MAX_UNSIGNED {
            return Err(TsigError::TooManyUnsigned);
        }
        running.update(message);
        Ok(running)
    }

    fn signed(&mut self, mut running: hmac::Context, rr: &TsigRr<'_>, now: u64) -> Result<hmac::Context, TsigError> {
        let variables = Variables::received(rr);
        if rr.error != 0 {
            let server_time = (rr.error == TsigRcode::BADTIME.0).then(|| server_time(rr.other)).flatten();
            return Err(TsigError::Server { error: TsigRcode(rr.error), server_time });
        }
        if !self.key.is_named(&rr.key_name) || !rr.algorithm.wire().eq_ignore_ascii_case(ALGORITHM) {
            let (name, algorithm) = (rr.key_name.clone(), rr.algorithm.clone());
            return Err(TsigError::WrongKey { name, algorithm, expected: self.key.name.clone() });
        }
        if rr.mac.len() != MAC_LEN {
            return Err(TsigError::MacLength { len: rr.mac.len() });
        }
        digest_received(&mut running, rr);
        if self.signed == 0 {
            variables.digest(&mut running, &self.key);
        } else {
            variables.digest_timers(&mut running);
        }
        if !mac_matches(running.sign().as_ref(), rr.mac) {
            return Err(TsigError::BadSig { key: self.key.name.clone() });
        }
        variables.check_time(now)?;
        self.signed += 1;
        self.unsigned_since = 0;
        let mut next = self.key.context();
        digest_mac(&mut next, rr.mac);
        Ok(next)
    }
}

/// The server's time in a BADTIME record's other data (6 octets).
fn server_time(other: &[u8]) -> Option<u64> {
    let time: [u8; 6] = other.try_into().ok()?;
    Some(time.iter().fold(0u64, |acc, &byte| acc << 8 | u64::from(byte)))
}

/// The message without its TSIG record (ARCOUNT one less; the header's ID
/// is kept), for parsers that do not expect one; the message itself if it
/// has none.
pub fn without_tsig(message: &[u8]) -> Result<Cow<'_, [u8]>, Malformed> {
    let Some(rr) = wire::find_tsig(message)? else { return Ok(Cow::Borrowed(message)) };
    let mut stripped = message.get(..rr.start).ok_or(Malformed::Truncated)?.to_vec();
    if let Some(count) = stripped.get_mut(ARCOUNT_AT..HEADER_LEN) {
        count.copy_from_slice(&rr.signed_header[ARCOUNT_AT..]);
    }
    Ok(Cow::Owned(stripped))
}

// ---- Server side ----

/// A request whose TSIG verified: the key, and the MAC the answer's first
/// MAC covers.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    key: Arc<TsigKey>,
    mac: Vec<u8>,
}

impl SignedRequest {
    /// The key the request was signed with.
    pub fn key(&self) -> &Arc<TsigKey> {
        &self.key
    }

    /// The key's name.
    pub fn key_name(&self) -> &Name {
        &self.key.name
    }
}

/// Why a request's TSIG was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalKind {
    /// The TSIG record cannot be read, is misplaced, or has a MAC size out
    /// of bounds: answered FORMERR, without TSIG.
    FormErr(Malformed),
    /// Unknown key or algorithm: NOTAUTH with an unsigned BADKEY.
    BadKey,
    /// The MAC does not verify: NOTAUTH with an unsigned BADSIG.
    BadSig,
    /// Signed outside the fudge: NOTAUTH with a signed BADTIME.
    BadTime {
        /// Time signed in the request.
        signed: u64,
        /// The server's time.
        now: u64,
        /// The request's fudge.
        fudge: u16,
    },
    /// A truncated MAC (which verified): NOTAUTH with a signed BADTRUNC.
    BadTrunc {
        /// The MAC's length.
        mac_len: usize,
    },
}

/// A request refused for its TSIG, with what the error answer needs:
/// [`rcode`](Self::rcode) for the header and [`refusal_tsig`] for the
/// TSIG record. `Display` is the line to log (it starts with `TSIG` and
/// names the error).
#[derive(Debug, Clone)]
pub struct RequestRefusal {
    kind: RefusalKind,
    /// The request's TSIG fields the answer echoes; `None` for FORMERR.
    echo: Option<Echo>,
}

/// What an error answer's TSIG record takes from the request.
#[derive(Debug, Clone)]
struct Echo {
    key_name: Name,
    algorithm: Name,
    time_signed: u64,
    /// For BADTIME and BADTRUNC, which are signed: the key and the
    /// request's MAC.
    signer: Option<SignedRequest>,
}

impl RequestRefusal {
    fn formerr(reason: Malformed) -> RequestRefusal {
        RequestRefusal { kind: RefusalKind::FormErr(reason), echo: None }
    }

    fn new(kind: RefusalKind, rr: &TsigRr<'_>, signer: Option<SignedRequest>) -> RequestRefusal {
        let echo = Echo {
            key_name: rr.key_name.clone(),
            algorithm: rr.algorithm.clone(),
            time_signed: rr.time_signed,
            signer,
        };
        RequestRefusal { kind, echo: Some(echo) }
    }

    /// Why the request was refused.
    pub fn kind(&self) -> &RefusalKind {
        &self.kind
    }

    /// The key name the request gave (none if its TSIG could not be read).
    pub fn key_name(&self) -> Option<&Name> {
        self.echo.as_ref().map(|echo| &echo.key_name)
    }

    /// The answer's RCODE: FORMERR or NOTAUTH.
    pub fn rcode(&self) -> ResponseCode {
        match self.kind {
            RefusalKind::FormErr(_) => ResponseCode::FormErr,
            _ => ResponseCode::NotAuth,
        }
    }

    /// The TSIG error the answer carries; `None` for FORMERR.
    pub fn tsig_error(&self) -> Option<TsigRcode> {
        match self.kind {
            RefusalKind::FormErr(_) => None,
            RefusalKind::BadKey => Some(TsigRcode::BADKEY),
            RefusalKind::BadSig => Some(TsigRcode::BADSIG),
            RefusalKind::BadTime { .. } => Some(TsigRcode::BADTIME),
            RefusalKind::BadTrunc { .. } => Some(TsigRcode::BADTRUNC),
        }
    }
}

impl fmt::Display for RequestRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key_name().map(Name::to_string).unwrap_or_default();
        match &self.kind {
            RefusalKind::FormErr(reason) => write!(f, "TSIG FORMERR: {reason}"),
            RefusalKind::BadKey => {
                let algorithm = self.echo.as_ref().map(|echo| echo.algorithm.to_string()).unwrap_or_default();
                write!(f, "TSIG BADKEY: unknown key {key} or algorithm {algorithm}")
            }
            RefusalKind::BadSig => write!(f, "TSIG BADSIG: the MAC of key {key} does not verify"),
            RefusalKind::BadTime { signed, now, fudge } => {
                write!(f, "TSIG BADTIME: key {key} signed at {signed}, server time {now} (fudge {fudge} s)")
            }
            RefusalKind::BadTrunc { mac_len } => {
                write!(f, "TSIG BADTRUNC: key {key} MAC truncated to {mac_len} octets (signet takes {MAC_LEN})")
            }
        }
    }
}

impl std::error::Error for RequestRefusal {}

/// Checks a request's TSIG (`now` in Unix seconds). `Ok(None)`: the
/// request is not signed. `Ok(Some)`: signed with a key `keys` knows, the
/// MAC verified, signed within the fudge. `keys` looks a key up by the
/// name in the request (names compare case-insensitively).
pub fn verify_request<F>(message: &[u8], keys: F, now: u64) -> Result<Option<SignedRequest>, RequestRefusal>
where
    F: Fn(&Name) -> Option<Arc<TsigKey>>,
{
    let rr = match wire::find_tsig(message) {
        Ok(None) => return Ok(None),
        Ok(Some(rr)) => rr,
        Err(reason) => return Err(RequestRefusal::formerr(reason)),
    };
    let key = keys(&rr.key_name)
        .filter(|key| key.is_named(&rr.key_name) && rr.algorithm.wire().eq_ignore_ascii_case(ALGORITHM))
        .ok_or_else(|| RequestRefusal::new(RefusalKind::BadKey, &rr, None))?;
    let request = SignedRequest { key, mac: rr.mac.to_vec() };
    check_request_mac(&request, &rr)?;
    let variables = Variables::received(&rr);
    if variables.check_time(now).is_err() {
        let kind = RefusalKind::BadTime { signed: rr.time_signed, now, fudge: rr.fudge };
        return Err(RequestRefusal::new(kind, &rr, Some(request)));
    }
    Ok(Some(request))
}

/// Checks a request's MAC: its size within bounds, and full-length (a
/// truncated MAC that verifies is BADTRUNC).
fn check_request_mac(request: &SignedRequest, rr: &TsigRr<'_>) -> Result<(), RequestRefusal> {
    let len = rr.mac.len();
    if !(MIN_MAC_LEN..=MAC_LEN).contains(&len) {
        return Err(RequestRefusal::formerr(Malformed::MacSize(len)));
    }
    let mut context = request.key.context();
    digest_received(&mut context, rr);
    Variables::received(rr).digest(&mut context, &request.key);
    let expected = context.sign();
    let prefix = expected.as_ref().get(..len).unwrap_or_default();
    match (mac_matches(prefix, rr.mac), len == MAC_LEN) {
        (true, true) => Ok(()),
        (true, false) => Err(RequestRefusal::new(RefusalKind::BadTrunc { mac_len: len }, rr, Some(request.clone()))),
        (false, _) => Err(RequestRefusal::new(RefusalKind::BadSig, rr, None)),
    }
}

/// Signs every message of the answer to a signed request, in order (RFC
/// 8945 §5.3.1): the first over the request's MAC, the message and the
/// full variables; each later one over the prior MAC, the message and the
/// timers.
#[derive(Debug)]
pub struct ResponseSigner {
    key: Arc<TsigKey>,
    prior_mac: Vec<u8>,
    first: bool,
}

impl ResponseSigner {
    /// A signer for the answer to `request`.
    pub fn new(request: &SignedRequest) -> ResponseSigner {
        ResponseSigner { key: request.key.clone(), prior_mac: request.mac.clone(), first: true }
    }

    /// The bytes the TSIG record adds to each message of the answer: a
    /// message must leave that much room under 65535.
    pub fn room(&self) -> usize {
        // Owner, type, class, TTL, RDLENGTH; algorithm, time signed,
        // fudge, MAC size, MAC, original ID, error, other length.
        self.key.name().wire().len() + 10 + ALGORITHM.len() + 6 + 2 + 2 + MAC_LEN + 2 + 2 + 2
    }

    /// Appends the TSIG record to the next message of the answer (complete
    /// otherwise, its ID set) and increments its ARCOUNT; `now` in Unix
    /// seconds.
    pub fn sign(&mut self, message: &mut Vec<u8>, now: u64) -> Result<(), TsigError> {
        let mac = sign_answer(&self.key, &self.prior_mac, message, &Variables::signing(now), self.first)?;
        self.prior_mac = mac.as_ref().to_vec();
        self.first = false;
        Ok(())
    }
}

/// Appends to an error answer the TSIG record RFC 8945 §5.3.2 asks for,
/// and increments ARCOUNT: for BADKEY and BADSIG an unsigned record (empty
/// MAC); for BADTIME a signed one with the request's time signed and the
/// server's time (`now`) in other data; for BADTRUNC a signed one. For
/// FORMERR nothing is added. The caller sets the header's RCODE to
/// [`RequestRefusal::rcode`].
pub fn refusal_tsig(message: &mut Vec<u8>, refusal: &RequestRefusal, now: u64) -> Result<(), TsigError> {
    let (Some(echo), Some(error)) = (&refusal.echo, refusal.tsig_error()) else { return Ok(()) };
    let mut variables = Variables::signing(now);
    variables.error = error.0;
    if let RefusalKind::BadTime { .. } = refusal.kind {
        variables.other = u48(variables.time_signed).to_vec();
        variables.time_signed = echo.time_signed;
    }
    match &echo.signer {
        Some(request) => sign_answer(&request.key, &request.mac, message, &variables, true).map(drop),
        None => append_tsig(message, echo.key_name.wire(), echo.algorithm.wire(), &variables, &[]),
    }
}
