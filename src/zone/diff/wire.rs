//! A diff as bytes, for the journal: each record in DNS wire form (owner
//! name, type, class, TTL, RDLENGTH, RDATA: what an IXFR answer carries,
//! uncompressed), the removed section then the added one, each in
//! canonical order, behind a small header and ahead of a SHA-256 of
//! everything before it.
//!
//! Layout (integers big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `SGDF` |
//! | 1 | format version (1) |
//! | 8 | length of the whole encoding, digest included |
//! | 2 | class |
//! | 4 + 4 | old serial, new serial |
//! | 4 + 4 | removed count, added count |
//! | n | the apex, wire form |
//! | … | removed records, then added records |
//! | 32 | SHA-256 of all the bytes before |
//!
//! Why the length and the digest: the journal feeds IXFR, which the gate
//! does not see again. A blob cut short says so (`Truncated`), and one
//! changed anywhere is refused (`Digest`) rather than served to a
//! secondary as a wrong difference.

use std::cmp::Ordering;
use std::fmt;

use super::{DiffError, Section, ZoneDiff, cmp_records};
use crate::zone::arena::{RecordRef, ZoneBuilder};
use crate::zone::name::NameRef;
use crate::zone::rtype::Rtype;

const MAGIC: &[u8; 4] = b"SGDF";
const VERSION: u8 = 1;
/// Magic, version, length, class, serials, counts.
const HEADER_LEN: usize = 4 + 1 + 8 + 2 + 4 + 4 + 4 + 4;
const DIGEST_LEN: usize = 32;

/// A diff encoded for the journal, with the figures the journal lists.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedDiff {
    /// The old version's serial.
    pub old_serial: u32,
    /// The new version's serial.
    pub new_serial: u32,
    /// Records removed (the old SOA among them).
    pub removed: u64,
    /// Records added (the new SOA among them).
    pub added: u64,
    /// The encoding.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for EncodedDiff {
    /// Figures, not bytes: an encoding may be hundreds of megabytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedDiff")
            .field("old_serial", &self.old_serial)
            .field("new_serial", &self.new_serial)
            .field("removed", &self.removed)
            .field("added", &self.added)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Why bytes do not decode to a diff.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes do not start as a diff does.
    #[error("not an encoded zone diff (no SGDF header)")]
    NotADiff,
    /// A format this signet does not read (a newer signet's).
    #[error("zone diff format version {found}: this signet reads version {VERSION}")]
    Version {
        /// The version found.
        found: u8,
    },
    /// Fewer bytes than the header says.
    #[error("zone diff truncated: {found} bytes of {expected}")]
    Truncated {
        /// The length the header gives (or the header's own, if it is cut).
        expected: u64,
        /// The bytes there are.
        found: u64,
    },
    /// More bytes than the header says.
    #[error("zone diff of {expected} bytes has {found}: bytes after its end")]
    Overlong {
        /// The length the header gives.
        expected: u64,
        /// The bytes there are.
        found: u64,
    },
    /// The digest does not match: the bytes changed after they were written.
    #[error("zone diff damaged: its SHA-256 does not match its content")]
    Digest,
    /// Well-digested bytes that do not make a diff (a writer's bug).
    #[error("zone diff malformed at byte {offset}: {what}")]
    Malformed {
        /// Where.
        offset: usize,
        /// What is wrong there.
        what: &'static str,
    },
}

impl ZoneDiff<'_> {
    /// The number of bytes [`ZoneDiff::encode`] makes: known before
    /// encoding, so that a diff too large for the journal is never built.
    pub fn encoded_len(&self) -> usize {
        let records = |section: &Section<'_>| -> usize {
            section.canonical().map(|r| r.owner.wire().len() + 10 + r.rdata.len()).sum()
        };
        HEADER_LEN + self.origin.wire().len() + records(&self.removed) + records(&self.added) + DIGEST_LEN
    }

    /// The diff as bytes (see the module's layout).
    pub fn encode(&self) -> Result<EncodedDiff, DiffError> {
        let count = |section: &Section<'_>| {
            u32::try_from(section.len())
                .map_err(|_| DiffError::TooLarge { zone: self.origin.to_string(), count: section.len() })
        };
        let (removed, added) = (count(&self.removed)?, count(&self.added)?);
        let len = self.encoded_len();
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(MAGIC);
        bytes.push(VERSION);
        bytes.extend_from_slice(&(len as u64).to_be_bytes());
        bytes.extend_from_slice(&self.class.to_be_bytes());
        for field in [self.old_serial, self.new_serial, removed, added] {
            bytes.extend_from_slice(&field.to_be_bytes());
        }
        bytes.extend_from_slice(self.origin.wire());
        for record in self.removed.canonical().chain(self.added.canonical()) {
            put_record(&mut bytes, record, self.class);
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        bytes.extend_from_slice(digest.as_ref());
        let (old_serial, new_serial) = (self.old_serial, self.new_serial);
        Ok(EncodedDiff { old_serial, new_serial, removed: removed.into(), added: added.into(), bytes })
    }

    /// Reads an encoding back: length, then digest, then every record, in
    /// the order and form [`ZoneDiff::encode`] writes them.
    pub fn decode(bytes: &[u8]) -> Result<ZoneDiff<'static>, DecodeError> {
        check_frame(bytes)?;
        let mut cursor = Cursor { bytes: &bytes[..bytes.len() - DIGEST_LEN], at: 4 + 1 + 8 };
        let class = cursor.u16()?;
        let (old_serial, new_serial) = (cursor.u32()?, cursor.u32()?);
        let (removed, added) = (cursor.u32()?, cursor.u32()?);
        let origin = cursor.name("a bad apex name")?.to_owned();
        let removed = read_section(&mut cursor, origin.as_ref(), class, removed)?;
        let added = read_section(&mut cursor, origin.as_ref(), class, added)?;
        if cursor.at != cursor.bytes.len() {
            return Err(cursor.malformed("bytes after the last record"));
        }
        Ok(ZoneDiff {
            origin,
            class,
            old_serial,
            new_serial,
            removed: Section::Decoded(removed),
            added: Section::Decoded(added),
        })
    }
}

/// Appends one record in wire form.
fn put_record(bytes: &mut Vec<u8>, record: RecordRef<'_>, class: u16) {
    bytes.extend_from_slice(record.owner.wire());
    bytes.extend_from_slice(&record.rtype.0.to_be_bytes());
    bytes.extend_from_slice(&class.to_be_bytes());
    bytes.extend_from_slice(&record.ttl.to_be_bytes());
    // The arena holds no RDATA over 65535 octets (the reader refuses it).
    bytes.extend_from_slice(&(record.rdata.len() as u16).to_be_bytes());
    bytes.extend_from_slice(record.rdata);
}

/// Magic, version, length and digest: the bytes are a whole diff as written.
fn check_frame(bytes: &[u8]) -> Result<(), DecodeError> {
    if bytes.len() < 5 || &bytes[..4] != MAGIC {
        return Err(if bytes.len() < 5 && MAGIC.starts_with(bytes) {
            DecodeError::Truncated { expected: HEADER_LEN as u64, found: bytes.len() as u64 }
        } else {
            DecodeError::NotADiff
        });
    }
    if bytes[4] != VERSION {
        return Err(DecodeError::Version { found: bytes[4] });
    }
    let found = bytes.len() as u64;
    let Some(length) = bytes.get(5..13) else {
        return Err(DecodeError::Truncated { expected: HEADER_LEN as u64, found });
    };
    let expected = u64::from_be_bytes(length.try_into().map_err(|_| DecodeError::NotADiff)?);
    match found.cmp(&expected) {
        Ordering::Less => return Err(DecodeError::Truncated { expected, found }),
        Ordering::Greater => return Err(DecodeError::Overlong { expected, found }),
        Ordering::Equal => {}
    }
    if bytes.len() < HEADER_LEN + DIGEST_LEN {
        return Err(DecodeError::Malformed { offset: 5, what: "a length shorter than a header and digest" });
    }
    let (content, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
    if ring::digest::digest(&ring::digest::SHA256, content).as_ref() != digest {
        return Err(DecodeError::Digest);
    }
    Ok(())
}

/// Reads `count` records of one section into a zone of their own,
/// checking that each belongs to the zone and follows the one before.
fn read_section(
    cursor: &mut Cursor<'_>,
    origin: NameRef<'_>,
    class: u16,
    count: u32,
) -> Result<crate::zone::Zone, DecodeError> {
    let mut builder = ZoneBuilder::new(origin.to_owned(), class);
    let mut last: Option<RecordRef<'_>> = None;
    for _ in 0..count {
        let start = cursor.at;
        let record = cursor.record(class)?;
        if !record.owner.is_at_or_below(origin) {
            return Err(DecodeError::Malformed { offset: start, what: "an owner outside the zone" });
        }
        if last.is_some_and(|last| cmp_records(&last, &record) != Ordering::Less) {
            return Err(DecodeError::Malformed { offset: start, what: "records out of canonical order" });
        }
        builder.push(record.owner, record.rtype, record.ttl, record.rdata);
        last = Some(record);
    }
    Ok(builder.finish())
}

/// Reads fields from the front of the bytes, naming the offset of what
/// does not read.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn malformed(&self, what: &'static str) -> DecodeError {
        DecodeError::Malformed { offset: self.at, what }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let bytes = self.bytes.get(self.at..self.at + n).ok_or_else(|| self.malformed(what))?;
        self.at += n;
        Ok(bytes)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2, "a record cut short")?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4, "a record cut short")?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn name(&mut self, what: &'static str) -> Result<NameRef<'a>, DecodeError> {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        let (name, after) = NameRef::parse_prefix(rest).ok_or_else(|| self.malformed(what))?;
        self.at = self.bytes.len() - after.len();
        Ok(name)
    }

    fn record(&mut self, class: u16) -> Result<RecordRef<'a>, DecodeError> {
        let owner = self.name("a bad owner name")?;
        let rtype = Rtype(self.u16()?);
        if self.u16()? != class {
            return Err(self.malformed("a record of another class"));
        }
        let ttl = self.u32()?;
        let len = self.u16()?;
        let rdata = self.take(len.into(), "RDATA cut short")?;
        Ok(RecordRef { owner, rtype, ttl, rdata })
    }
}
