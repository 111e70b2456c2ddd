//! Key URIs: `pkcs11:token=…;id=…` after RFC 7512, and `file:PATH`.
//!
//! A PKCS#11 URI names the token by label (slot ids change between runs)
//! and the key by CKA_ID; `object` is the CKA_LABEL, informative. Query
//! attributes: `module-path` (default `$SIGNET_PKCS11_MODULE`, else
//! SoftHSM's Debian path) and `pin-source` (`file:PATH` or `env:VAR`;
//! default the environment variable `SIGNET_PKCS11_PIN`). A PIN is never
//! part of a URI: `pin-value` is refused, so that URIs can be logged and
//! stored.

use std::fmt;
use std::path::PathBuf;

use super::KeyError;

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
}

impl KeyUri {
    /// Reads a URI; `file:` paths may be relative.
    pub fn parse(text: &str) -> Result<KeyUri, KeyError> {
        let bad = |reason: &str| KeyError::BadUri { uri: text.to_owned(), reason: reason.to_owned() };
        if let Some(path) = text.strip_prefix("file:") {
            if path.is_empty() {
                return Err(bad("file: needs a path"));
            }
            return Ok(KeyUri::File(PathBuf::from(path)));
        }
        let Some(rest) = text.strip_prefix("pkcs11:") else {
            return Err(bad("expected pkcs11:… or file:…"));
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Pkcs11Uri { token: String::new(), id: None, object: None, module_path: None, pin_source: None };
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (key, value) = attr.split_once('=').ok_or_else(|| bad(&format!("attribute {attr:?} has no '='")))?;
            let value = percent_decode(value).ok_or_else(|| bad(&format!("bad percent-encoding in {key}")))?;
            match key {
                "token" => uri.token = utf8(value).ok_or_else(|| bad("token label is not UTF-8"))?,
                "id" => uri.id = Some(value),
                "object" => uri.object = Some(utf8(value).ok_or_else(|| bad("object label is not UTF-8"))?),
                // Other RFC 7512 attributes (manufacturer, serial, type…) are
                // accepted and ignored: the token label and id decide.
                _ => {}
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (key, value) = attr.split_once('=').ok_or_else(|| bad(&format!("attribute {attr:?} has no '='")))?;
            let value =
                percent_decode(value).and_then(utf8).ok_or_else(|| bad(&format!("bad percent-encoding in {key}")))?;
            match key {
                "module-path" => uri.module_path = Some(value),
                "pin-source" => uri.pin_source = Some(value),
                "pin-value" => return Err(bad("a PIN does not belong in a URI: use pin-source=file:… or env:…")),
                _ => {}
            }
        }
        if uri.token.is_empty() {
            return Err(bad("a token=LABEL attribute is required (slot ids change between runs)"));
        }
        if uri.id.as_ref().is_some_and(Vec::is_empty) {
            return Err(bad("id is empty"));
        }
        Ok(KeyUri::Pkcs11(uri))
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
}
