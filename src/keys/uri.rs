//! Key URIs: `pkcs11:token=…;id=…` after RFC 7512, and `file:PATH`.
//!
//! A PKCS#11 URI names the token by label (slot ids change between runs)
//! and the key by CKA_ID; `object` is the CKA_LABEL, informative. Query
//! attributes: `module-path` (default `$SIGNET_PKCS11_MODULE`, else
//! SoftHSM's Debian path) and `pin-source` (`file:PATH` or `env:VAR`;
//! default the environment variable `SIGNET_PKCS11_PIN`). A PIN is never
//! part of a URI: `pin-value` is refused wherever it is (path or query),
//! however it is spelt (RFC 7512 compares attribute names after
//! percent-decoding; signet also ignores case), so that URIs can be logged
//! and stored; the refusal shows nothing of the URI from the PIN on.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use super::{KeyError, UriProblem};

/// Where SoftHSM 2's module lives on Debian.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The environment variable naming the default PKCS#11 module.
pub const MODULE_ENV: &str = "SIGNET_PKCS11_MODULE";
/// The environment variable holding the default PIN.
pub const PIN_ENV: &str = "SIGNET_PKCS11_PIN";

/// A key (or a store, without a key id) named by URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyUri {
    /// A key in a PKCS#11 token.
    Pkcs11(Pkcs11Uri),
    /// A PKCS#8 key file, or (for a store) a directory of them.
    File(PathBuf),
}

/// The parts of a `pkcs11:` URI that signet uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// Token label.
    pub token: String,
    /// CKA_ID of the key pair; none for a store.
    pub id: Option<Vec<u8>>,
    /// CKA_LABEL of the key pair.
    pub object: Option<String>,
    /// Path of the PKCS#11 module, if given.
    pub module_path: Option<String>,
    /// Where the PIN is: `file:PATH` or `env:VAR`.
    pub pin_source: Option<String>,
}

impl Pkcs11Uri {
    /// The module to load: the URI's, the environment's, or SoftHSM's.
    pub fn module(&self) -> String {
        self.module_path
            .clone()
            .or_else(|| std::env::var(MODULE_ENV).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| SOFTHSM_MODULE.to_owned())
    }

    /// The key id in hex, for messages.
    pub fn id_hex(&self) -> String {
        self.id.as_deref().map(|id| data_encoding::HEXLOWER.encode(id)).unwrap_or_else(|| "(none)".to_owned())
    }

    /// The same token and settings, naming the key with `id` and `label`.
    pub fn with_key(&self, id: &[u8], label: &str) -> Pkcs11Uri {
        Pkcs11Uri { id: Some(id.to_vec()), object: Some(label.to_owned()), ..self.clone() }
    }

    /// Reads what follows `pkcs11:` (already known to hold no PIN).
    /// Attribute names are compared after percent-decoding, in any case.
    fn parse(rest: &str) -> Result<Pkcs11Uri, UriProblem> {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Pkcs11Uri { token: String::new(), id: None, object: None, module_path: None, pin_source: None };
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attribute(attr)?;
            let label = |what| utf8(value.clone()).ok_or(UriProblem::LabelNotUtf8(what));
            match name.as_str() {
                "token" => uri.token = label("token")?,
                "id" => uri.id = Some(value),
                "object" => uri.object = Some(label("object")?),
                // Other RFC 7512 attributes (manufacturer, serial, type…) are
                // accepted and ignored: the token label and id decide.
                _ => {}
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attribute(attr)?;
            let text = || utf8(value.clone()).ok_or_else(|| UriProblem::ValueNotUtf8(name.clone()));
            match name.as_str() {
                "module-path" => uri.module_path = Some(text()?),
                "pin-source" => uri.pin_source = Some(text()?),
                _ => {}
            }
        }
        if uri.token.is_empty() {
            return Err(UriProblem::NoToken);
        }
        if uri.id.as_ref().is_some_and(Vec::is_empty) {
            return Err(UriProblem::EmptyId);
        }
        Ok(uri)
    }
}

impl KeyUri {
    /// Reads a URI; `file:` paths may be relative.
    pub fn parse(text: &str) -> Result<KeyUri, KeyError> {
        refuse_pin(text)?;
        let bad = |reason| KeyError::BadUri { uri: text.to_owned(), reason };
        if let Some(path) = text.strip_prefix("file:") {
            if path.is_empty() {
                return Err(bad(UriProblem::NoPath));
            }
            return Ok(KeyUri::File(PathBuf::from(path)));
        }
        let Some(rest) = text.strip_prefix("pkcs11:") else {
            return Err(bad(UriProblem::UnknownScheme));
        };
        Pkcs11Uri::parse(rest).map(KeyUri::Pkcs11).map_err(bad)
    }

    /// This URI with a relative `file:` path taken as relative to `base`
    /// (the database's directory, for the keys of managed zones: the same
    /// files from any working directory, a service's `/` included).
    pub fn resolved_against(&self, base: &std::path::Path) -> KeyUri {
        match self {
            KeyUri::File(path) if path.is_relative() => KeyUri::File(base.join(path)),
            other => other.clone(),
        }
    }

    /// For messages: `token "signet", key id 0a1b…` or the file path.
    pub fn describe(&self) -> String {
        match self {
            KeyUri::Pkcs11(p) => format!("token {:?}, key id {}", p.token, p.id_hex()),
            KeyUri::File(path) => format!("key file {}", path.display()),
        }
    }
}

impl fmt::Display for KeyUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyUri::File(path) => write!(f, "file:{}", path.display()),
            KeyUri::Pkcs11(p) => {
                write!(f, "pkcs11:token={}", percent_encode(p.token.as_bytes(), false))?;
                if let Some(id) = &p.id {
                    write!(f, ";id={}", percent_encode(id, true))?;
                }
                if let Some(object) = &p.object {
                    write!(f, ";object={}", percent_encode(object.as_bytes(), false))?;
                }
                let mut query = Vec::new();
                if let Some(module) = &p.module_path {
                    query.push(format!("module-path={}", percent_encode(module.as_bytes(), false)));
                }
                if let Some(pin) = &p.pin_source {
                    query.push(format!("pin-source={}", percent_encode(pin.as_bytes(), false)));
                }
                if !query.is_empty() {
                    write!(f, "?{}", query.join("&"))?;
                }
                Ok(())
            }
        }
    }
}

/// The attribute that would carry a PIN (RFC 7512 §2.3).
const PIN_ATTRIBUTE: &str = "pin-value";

/// How many rounds of percent-decoding a piece is looked through for a
/// PIN (`%252D` is `%2D` after one, `-` after two).
const DECODE_ROUNDS: usize = 3;

/// Where a `pin-value` attribute starts in `text` (one URI, or several
/// separated by white space as `--key` takes them), in any spelling: in
/// the path or the query, any case, its name percent-encoded (even
/// twice), or hidden in a percent-encoded value (`token=a%3Bpin-value%3D…`).
/// `None` if there is none.
pub fn pin_at(text: &str) -> Option<usize> {
    pieces(text)
        .find(|&(_, piece)| {
            let mut variant = Cow::Borrowed(piece);
            for _ in 0..=DECODE_ROUNDS {
                if pieces(&variant).any(|(_, p)| names_pin(p)) {
                    return true;
                }
                variant = Cow::Owned(String::from_utf8_lossy(&percent_decode_lossy(&variant)).into_owned());
            }
            false
        })
        .map(|(start, _)| start)
}

/// Refuses a text (a URI, or anything holding one) with a PIN in it; the
/// error shows the text only up to the PIN.
pub fn refuse_pin(text: &str) -> Result<(), KeyError> {
    match pin_at(text) {
        Some(_) => Err(KeyError::BadUri { uri: redact(text).into_owned(), reason: UriProblem::HoldsPin }),
        None => Ok(()),
    }
}

/// `text` as it may be shown in a message: unchanged without a PIN, else
/// cut where the `pin-value` attribute starts (its value and everything
/// after it dropped).
pub fn redact(text: &str) -> Cow<'_, str> {
    match pin_at(text) {
        Some(at) => Cow::Owned(format!("{}{PIN_ATTRIBUTE}=… (cut: a PIN is never shown)", &text[..at])),
        None => Cow::Borrowed(text),
    }
}

/// The attribute-sized pieces of `text` with their offsets: split at every
/// separator a URI (or a list of them) has, `:` `;` `?` `&` and white space.
fn pieces(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = 0;
    text.char_indices()
        .filter(|&(_, c)| matches!(c, ':' | ';' | '?' | '&') || c.is_whitespace())
        .map(|(i, c)| (i, i + c.len_utf8()))
        .chain(std::iter::once((text.len(), text.len())))
        .map(move |(end, next)| {
            let piece = (start, &text[start..end]);
            start = next;
            piece
        })
}

/// Is the piece a `pin-value` attribute (name before any `=`, any case)?
fn names_pin(piece: &str) -> bool {
    let name = piece.split_once('=').map_or(piece, |(name, _)| name);
    name.trim().eq_ignore_ascii_case(PIN_ATTRIBUTE)
}

/// Percent-decoding that keeps a bad escape as it is.
fn percent_decode_lossy(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// One `name=value` attribute: the name percent-decoded and lowercased,
/// the value percent-decoded.
fn attribute(attr: &str) -> Result<(String, Vec<u8>), UriProblem> {
    let (name, value) = attr.split_once('=').ok_or_else(|| UriProblem::NoEquals(attr.to_owned()))?;
    let name = percent_decode(name)
        .and_then(utf8)
        .ok_or_else(|| UriProblem::NameEncoding(name.to_owned()))?
        .to_ascii_lowercase();
    let value = percent_decode(value).ok_or_else(|| UriProblem::ValueEncoding(name.clone()))?;
    Ok((name, value))
}

fn utf8(bytes: Vec<u8>) -> Option<String> {
    String::from_utf8(bytes).ok()
}

fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// RFC 7512 percent-encoding; `all` encodes every octet (as ids are written).
fn percent_encode(bytes: &[u8], all: bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        let plain = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/');
        if plain && !all {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs11_round_trip() {
        let text = "pkcs11:token=signet%20test;id=%01%ab;object=zsk-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:MYPIN";
        let uri = KeyUri::parse(text).expect("valid URI");
        let KeyUri::Pkcs11(p) = &uri else { panic!("pkcs11 expected") };
        assert_eq!(p.token, "signet test");
        assert_eq!(p.id.as_deref(), Some(&[0x01, 0xab][..]));
        assert_eq!(p.object.as_deref(), Some("zsk-1"));
        assert_eq!(p.pin_source.as_deref(), Some("env:MYPIN"));
        assert_eq!(KeyUri::parse(&uri.to_string()).expect("reparses"), uri);
    }

    #[test]
    fn refuses_what_it_must() {
        assert!(KeyUri::parse("pkcs11:id=%01").is_err(), "no token");
        assert!(KeyUri::parse("pkcs11:token=t?pin-value=1234").is_err(), "PIN in URI");
        assert!(KeyUri::parse("pkcs11:token=t;id=%zz").is_err(), "bad escape");
        assert!(KeyUri::parse("http://x").is_err());
        assert_eq!(KeyUri::parse("file:keys/a.pk8").expect("file"), KeyUri::File("keys/a.pk8".into()));
    }

    /// Every spelling of a PIN is refused, and the refusal shows nothing
    /// of the URI from the PIN on.
    #[test]
    fn refuses_a_pin_in_any_spelling_without_echoing_it() {
        for text in [
            "pkcs11:token=signet;id=%01?pin-value=SECRET",
            "pkcs11:token=signet;pin-value=SECRET",
            "pkcs11:pin-value=SECRET;token=signet",
            "pkcs11:token=signet?PIN-VALUE=SECRET",
            "pkcs11:token=signet?Pin-Value=SECRET&pin-source=env:X",
            "pkcs11:token=signet?pin%2Dvalue=SECRET",
            "pkcs11:token=signet;pin%2dVALUE=SECRET",
            "pkcs11:token=signet;%70%69%6e-value=SECRET",
            "pkcs11:token=signet?pin%252Dvalue=SECRET",
            "pkcs11:token=signet%3Bpin-value%3DSECRET",
            "pkcs11:token=signet?module-path=/x&pin-value=SECRET",
            "pkcs11:token=signet;id=%zz?pin-value=SECRET",
            "pkcs11:token=signet? pin-value =SECRET",
            "file:k.pk8?pin-value=SECRET",
        ] {
            let error = KeyUri::parse(text).expect_err(text).to_string();
            assert!(!error.contains("SECRET"), "{text}: {error}");
            assert!(error.contains("PIN"), "{text}: {error}");
            assert!(!redact(text).contains("SECRET"), "{text}");
        }
        let text = "pkcs11:token=signet;id=%01?pin-value=SECRET";
        assert_eq!(redact(text), "pkcs11:token=signet;id=%01?pin-value=… (cut: a PIN is never shown)");
        assert_eq!(redact("pkcs11:token=signet;object=pin-values"), "pkcs11:token=signet;object=pin-values");
        assert!(KeyUri::parse("pkcs11:token=signet;object=pin-value").is_ok(), "a label is not an attribute");
    }

    #[test]
    fn attribute_names_in_any_case_and_encoding() {
        let uri = KeyUri::parse("pkcs11:TOKEN=signet;%69d=%01?Module-Path=/m.so").expect("valid");
        let KeyUri::Pkcs11(p) = uri else { panic!("pkcs11 expected") };
        assert_eq!(
            (p.token.as_str(), p.id.as_deref(), p.module_path.as_deref()),
            ("signet", Some(&[1][..]), Some("/m.so"))
        );
    }
}
