//! Domain names in uncompressed wire form, with the RFC 4034 §6.1
//! canonical order kept apart from `Ord` (the byte order of wire names is
//! not the DNS order).
//!
//! A name is stored exactly as it was read (case preserved, for output);
//! every comparison that DNSSEC defines is case-insensitive and is done
//! here on the fly, so no lowercased copy is ever kept.

use std::cmp::Ordering;
use std::fmt;

/// Longest name in wire form (RFC 1035 §3.1).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Why text could not be read as a domain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty where a name is required.
    #[error("empty name")]
    Empty,
    /// A label longer than 63 octets.
    #[error("label longer than 63 octets")]
    LabelTooLong,
    /// A name longer than 255 octets in wire form.
    #[error("name longer than 255 octets")]
    NameTooLong,
    /// Two dots in a row, or a dot at the start of a multi-label name.
    #[error("empty label")]
    EmptyLabel,
    /// A backslash escape that is not `\X` or `\DDD` with DDD <= 255.
    #[error("bad escape sequence")]
    BadEscape,
    /// A relative name where no origin is known.
    #[error("relative name with no origin")]
    NoOrigin,
}

/// An owned domain name in uncompressed wire form, case preserved.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name(Box<[u8]>);

/// A borrowed domain name in uncompressed wire form.
///
/// Only this module builds one from bytes, after checking them, so every
/// `NameRef` is well formed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameRef<'a>(&'a [u8]);

impl Name {
    /// The root name `.`.
    pub fn root() -> Name {
        Name(Box::new([0]))
    }

    /// Reads a name from master-file text. Relative names are completed
    /// with `origin`; `@` is the origin itself.
    pub fn from_text(text: &str, origin: Option<NameRef<'_>>) -> Result<Name, NameError> {
        let mut wire = Vec::with_capacity(text.len() + 2);
        parse_text(text.as_bytes(), origin, &mut wire)?;
        Ok(Name(wire.into_boxed_slice()))
    }

    /// Takes wire bytes that must hold exactly one uncompressed name.
    pub fn from_wire(wire: &[u8]) -> Option<Name> {
        match NameRef::parse_prefix(wire) {
            Some((name, [])) => Some(name.to_owned()),
            _ => None,
        }
    }

    /// Reads a name at `message[pos..]`, following compression pointers
    /// (RFC 1035 §4.1.4); returns it uncompressed and the position after
    /// it in the message. `None` for a name that is malformed, too long,
    /// or whose pointers do not each point strictly backwards (which
    /// rules out loops).
    pub fn read_compressed(message: &[u8], pos: usize) -> Option<(Name, usize)> {
        let mut wire = Vec::with_capacity(32);
        let (mut at, mut after, mut limit) = (pos, None, pos);
        loop {
            let len = *message.get(at)?;
            match len & 0xC0 {
                0xC0 => {
                    let target = (usize::from(len & 0x3F) << 8) | usize::from(*message.get(at + 1)?);
                    if target >= limit {
                        return None;
                    }
                    after.get_or_insert(at + 2);
                    (at, limit) = (target, target);
                }
                0x00 => {
                    let label = message.get(at..at + 1 + usize::from(len))?;
                    wire.extend_from_slice(label);
                    if wire.len() > MAX_NAME_LEN {
                        return None;
                    }
                    at += label.len();
                    if len == 0 {
                        return Some((Name(wire.into_boxed_slice()), after.unwrap_or(at)));
                    }
                }
                _ => return None,
            }
        }
    }

    /// This name as a borrowed view.
    pub fn as_ref(&self) -> NameRef<'_> {
        NameRef(&self.0)
    }

    /// The wire bytes.
    pub fn wire(&self) -> &[u8] {
        &self.0
    }
}

impl<'a> NameRef<'a> {
    /// Reads one uncompressed name at the start of `wire`; returns it and
    /// the bytes that follow. `None` if the bytes are not a valid name.
    pub fn parse_prefix(wire: &'a [u8]) -> Option<(NameRef<'a>, &'a [u8])> {
        let mut pos = 0;
        loop {
            let len = *wire.get(pos)? as usize;
            if len > MAX_LABEL_LEN {
                return None;
            }
            pos += 1 + len;
            if pos > MAX_NAME_LEN || pos > wire.len() {
                return None;
            }
            if len == 0 {
                return Some((NameRef(&wire[..pos]), &wire[pos..]));
            }
        }
    }

    /// Wraps bytes that were copied from a `NameRef` earlier (the zone
    /// arena): they were checked when the name was first built.
    pub(super) fn from_stored(wire: &'a [u8]) -> NameRef<'a> {
        NameRef(wire)
    }

    /// The wire bytes.
    pub fn wire(self) -> &'a [u8] {
        self.0
    }

    /// An owned copy.
    pub fn to_owned(self) -> Name {
        Name(self.0.into())
    }

    /// An owned copy with ASCII letters lowercased (RFC 4034 §6.2).
    pub fn to_lowercase(self) -> Name {
        Name(self.0.to_ascii_lowercase().into_boxed_slice())
    }

    /// Is this the root name?
    pub fn is_root(self) -> bool {
        self.0.len() == 1
    }

    /// The labels from left to right, root excluded.
    pub fn labels(self) -> Labels<'a> {
        Labels { rest: self.0 }
    }

    /// Number of labels, root excluded.
    pub fn label_count(self) -> usize {
        self.labels().count()
    }

    /// The RRSIG labels-field value for this owner (RFC 4034 §3.1.3): the
    /// label count not counting the root or a leading `*`.
    pub fn rrsig_labels(self) -> usize {
        self.label_count() - usize::from(self.is_wildcard())
    }

    /// Does the name start with the `*` label?
    pub fn is_wildcard(self) -> bool {
        self.0.len() >= 2 && self.0[0] == 1 && self.0[1] == b'*'
    }

    /// The name with its leftmost label removed; `None` for the root.
    pub fn parent(self) -> Option<NameRef<'a>> {
        let len = self.0[0] as usize;
        if len == 0 { None } else { Some(NameRef(&self.0[1 + len..])) }
    }

    /// The rightmost `n` labels as a name (`n` must not exceed the label
    /// count).
    pub fn suffix(self, n: usize) -> NameRef<'a> {
        let mut name = self;
        for _ in n..self.label_count() {
            name = name.parent().unwrap_or(name);
        }
        name
    }

    /// Case-insensitive equality.
    pub fn eq_ignore_case(self, other: NameRef<'_>) -> bool {
        self.0.eq_ignore_ascii_case(other.0)
    }

    /// Is `self` equal to `ancestor` or below it?
    pub fn is_at_or_below(self, ancestor: NameRef<'_>) -> bool {
        let (s, a) = (self.0.len(), ancestor.0.len());
        if a > s {
            return false;
        }
        // The suffix must start on a label boundary of `self`.
        let mut name = self;
        while name.0.len() > a {
            match name.parent() {
                Some(p) => name = p,
                None => return false,
            }
        }
        name.eq_ignore_case(ancestor)
    }

    /// Is `self` strictly below `ancestor`?
    pub fn is_below(self, ancestor: NameRef<'_>) -> bool {
        self.0.len() > ancestor.0.len() && self.is_at_or_below(ancestor)
    }

    /// RFC 4034 §6.1 canonical order: labels compared from the right as
    /// lowercased octet strings; a name with fewer labels sorts first when
    /// all its labels are equal.
    pub fn canonical_cmp(self, other: NameRef<'_>) -> Ordering {
        // The same bytes are the same name: the common case when two
        // versions of a zone are walked side by side.
        if self.0 == other.0 {
            return Ordering::Equal;
        }
        let mut a_starts = [0u8; 128];
        let mut b_starts = [0u8; 128];
        let a_count = label_starts(self.0, &mut a_starts);
        let b_count = label_starts(other.0, &mut b_starts);
        for i in 1..=a_count.min(b_count) {
            let a = label_at(self.0, a_starts[a_count - i]);
            let b = label_at(other.0, b_starts[b_count - i]);
            let order = cmp_lowercase(a, b);
            if order != Ordering::Equal {
                return order;
            }
        }
        a_count.cmp(&b_count)
    }

    /// Appends a sort key whose byte order is the canonical order:
    /// labels from the right, lowercased, each closed by a zero octet
    /// (octets 0 and 1 inside a label are escaped as 1,1 and 1,2 so that
    /// the terminator sorts before any content).
    pub fn write_canonical_key(self, out: &mut Vec<u8>) {
        let mut starts = [0u8; 128];
        let count = label_starts(self.0, &mut starts);
        for &start in starts[..count].iter().rev() {
            for &byte in label_at(self.0, start) {
                match byte {
                    0 | 1 => out.extend_from_slice(&[1, byte + 1]),
                    _ => out.push(byte.to_ascii_lowercase()),
                }
            }
            out.push(0);
        }
    }

    /// Appends the name's text form, with RFC 1035 escapes, to `out`.
    pub fn write_text(self, out: &mut String) {
        if self.is_root() {
            out.push('.');
            return;
        }
        for label in self.labels() {
            write_label(label, out);
            out.push('.');
        }
    }
}

/// Iterator over the labels of a name, left to right, root excluded.
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let len = *self.rest.first()? as usize;
        if len == 0 {
            return None;
        }
        let label = &self.rest[1..1 + len];
        self.rest = &self.rest[1 + len..];
        Some(label)
    }
}

/// Records where each label starts; returns the label count. A wire name
/// has at most 127 labels, so the array never overflows.
fn label_starts(wire: &[u8], starts: &mut [u8; 128]) -> usize {
    let mut count = 0;
    let mut pos = 0;
    while wire[pos] != 0 {
        starts[count] = pos as u8;
        count += 1;
        pos += 1 + wire[pos] as usize;
    }
    count
}

fn label_at(wire: &[u8], start: u8) -> &[u8] {
    let start = start as usize;
    &wire[start + 1..start + 1 + wire[start] as usize]
}

/// Octet-string comparison of two labels after ASCII lowercasing.
pub fn cmp_lowercase(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase());
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

fn write_label(label: &[u8], out: &mut String) {
    for &byte in label {
        match byte {
            b'.' | b'\\' | b'(' | b')' | b';' | b'"' | b'@' | b'$' => {
                out.push('\\');
                out.push(byte as char);
            }
            0x21..=0x7e => out.push(byte as char),
            _ => {
                out.push('\\');
                out.push_str(&format!("{byte:03}"));
            }
        }
    }
}

/// Reads master-file name text into wire form, appending to `wire` (the
/// zone reader's allocation-free path).
pub fn parse_text(text: &[u8], origin: Option<NameRef<'_>>, wire: &mut Vec<u8>) -> Result<(), NameError> {
    match text {
        [] => return Err(NameError::Empty),
        b"@" => {
            let origin = origin.ok_or(NameError::NoOrigin)?;
            wire.extend_from_slice(origin.0);
            return Ok(());
        }
        b"." => {
            wire.push(0);
            return Ok(());
        }
        _ => {}
    }
    let start = wire.len();
    let mut label_start = wire.len();
    wire.push(0);
    let mut i = 0;
    let mut absolute = false;
    while i < text.len() {
        let byte = match text[i] {
            b'.' => {
                close_label(wire, label_start)?;
                if i + 1 == text.len() {
                    absolute = true;
                } else {
                    label_start = wire.len();
                    wire.push(0);
                }
                i += 1;
                continue;
            }
            b'\\' => {
                let (byte, used) = unescape(&text[i + 1..])?;
                i += used;
                byte
            }
            other => other,
        };
        wire.push(byte);
        i += 1;
    }
    if !absolute {
        close_label(wire, label_start)?;
        let origin = origin.ok_or(NameError::NoOrigin)?;
        wire.extend_from_slice(origin.0);
    } else {
        wire.push(0);
    }
    if wire.len() - start > MAX_NAME_LEN {
        return Err(NameError::NameTooLong);
    }
    Ok(())
}

fn close_label(wire: &mut [u8], label_start: usize) -> Result<(), NameError> {
    let len = wire.len() - label_start - 1;
    if len == 0 {
        return Err(NameError::EmptyLabel);
    }
    if len > MAX_LABEL_LEN {
        return Err(NameError::LabelTooLong);
    }
    wire[label_start] = len as u8;
    Ok(())
}

/// Decodes the escape after a backslash: `\DDD` or `\X`. Returns the byte
/// and how many bytes of `after` were used.
pub fn unescape(after: &[u8]) -> Result<(u8, usize), NameError> {
    match after {
        [a, b, c, ..] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            let value = u32::from(a - b'0') * 100 + u32::from(b - b'0') * 10 + u32::from(c - b'0');
            let byte = u8::try_from(value).map_err(|_| NameError::BadEscape)?;
            Ok((byte, 3))
        }
        [a, ..] if a.is_ascii_digit() => Err(NameError::BadEscape),
        [x, ..] => Ok((*x, 1)),
        [] => Err(NameError::BadEscape),
    }
}

impl fmt::Display for NameRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        self.write_text(&mut text);
        f.write_str(&text)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

impl fmt::Debug for NameRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NameRef({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::from_text(text, None).expect("valid test name")
    }

    #[test]
    fn parses_relative_and_escaped_names() {
        let origin = name("example.");
        let n = Name::from_text("a\\.b.C", Some(origin.as_ref())).expect("valid");
        assert_eq!(n.wire(), b"\x03a.b\x01C\x07example\x00");
        assert_eq!(n.to_string(), "a\\.b.C.example.");
        let n = Name::from_text("\\065\\000x.", None).expect("valid");
        assert_eq!(n.wire(), b"\x03A\x00x\x00");
        assert_eq!(n.to_string(), "A\\000x.");
        assert_eq!(Name::from_text("@", Some(origin.as_ref())), Ok(origin.clone()));
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(Name::from_text("a..b.", None), Err(NameError::EmptyLabel));
        assert_eq!(Name::from_text("a", None), Err(NameError::NoOrigin));
        assert_eq!(Name::from_text("\\256.", None), Err(NameError::BadEscape));
        let long = format!("{}.", "a".repeat(64));
        assert_eq!(Name::from_text(&long, None), Err(NameError::LabelTooLong));
        let long = format!("{}.", vec!["a".repeat(60); 5].join("."));
        assert_eq!(Name::from_text(&long, None), Err(NameError::NameTooLong));
    }

    /// The example list of RFC 4034 §6.1, in canonical order.
    #[test]
    fn canonical_order_matches_rfc4034() {
        let ordered = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        for pair in ordered.windows(2) {
            let (a, b) = (name(pair[0]), name(pair[1]));
            assert_eq!(a.as_ref().canonical_cmp(b.as_ref()), Ordering::Less, "{a} < {b}");
            assert_eq!(b.as_ref().canonical_cmp(a.as_ref()), Ordering::Greater);
        }
        let keys: Vec<Vec<u8>> = ordered
            .iter()
            .map(|text| {
                let mut key = Vec::new();
                name(text).as_ref().write_canonical_key(&mut key);
                key
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "sort keys follow the canonical order");
        let (a, b) = (name("Z.a.example."), name("z.A.example."));
        assert_eq!(a.as_ref().canonical_cmp(b.as_ref()), Ordering::Equal);
    }

    #[test]
    fn hierarchy() {
        let (apex, child, other) = (name("example."), name("a.B.example."), name("xexample."));
        assert!(child.as_ref().is_below(apex.as_ref()));
        assert!(!other.as_ref().is_at_or_below(apex.as_ref()));
        assert_eq!(child.as_ref().suffix(2), name("B.example.").as_ref());
        assert_eq!(name("*.b.example.").as_ref().rrsig_labels(), 2);
        assert_eq!(Name::root().as_ref().label_count(), 0);
    }
}
