//! Text helpers that RDATA parsing and writing share (rdata.rs and
//! svcb.rs both import them; neither imports the other's internals for them).

use super::name::unescape;
use super::rtype::Rtype;

/// Why RDATA could not be read or is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdataError {
    /// A field is missing at the end of the RDATA text.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field's text is not of its kind.
    #[error("bad {what} {text:?}")]
    Bad {
        /// What kind of field was expected.
        what: &'static str,
        /// The text found.
        text: String,
    },
    /// Text left over after the last field.
    #[error("unexpected {0:?} after the RDATA")]
    Trailing(String),
    /// Wire RDATA that does not parse as its type.
    #[error("malformed {0} RDATA")]
    MalformedWire(Rtype),
    /// RDATA longer than 65535 octets.
    #[error("RDATA longer than 65535 octets")]
    TooLong,
    /// RFC 3597 `\#` form whose length does not match its hex.
    #[error("generic RDATA says {stated} octets but has {actual}")]
    GenericLength {
        /// Length stated.
        stated: usize,
        /// Octets given.
        actual: usize,
    },
}

/// Appends text with `\X` and `\DDD` escapes decoded; `None` on a bad
/// escape.
pub(super) fn unescape_into(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\\' {
            let (byte, used) = unescape(&text[i + 1..]).ok()?;
            out.push(byte);
            i += 1 + used;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    Some(())
}

/// A quoted character string with `"` and `\` escaped and non-printable
/// bytes as `\DDD`.
pub(super) fn write_quoted(bytes: &[u8], out: &mut String) {
    out.push('"');
    for &byte in bytes {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(byte as char);
            }
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\{byte:03}")),
        }
    }
    out.push('"');
}
