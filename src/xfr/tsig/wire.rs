//! Just enough of the DNS wire format to find and read a message's TSIG
//! record: the header counts, names skipped or read (compressed or not),
//! and record boundaries. Every read is bounds-checked: malformed input is
//! an error, never a panic.

use crate::zone::Name;
use crate::zone::name::MAX_NAME_LEN;

/// Length of the DNS message header.
pub(super) const HEADER_LEN: usize = 12;
/// Offset of ARCOUNT in the header.
pub(super) const ARCOUNT_AT: usize = 10;

/// Why a message (or its TSIG record) could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// The message ends inside its header, a name or a record.
    #[error("message truncated")]
    Truncated,
    /// A name that runs past the message, has a label type other than a
    /// plain label or a compression pointer, is longer than 255 octets,
    /// or has a compression pointer that does not point backwards (which
    /// could loop).
    #[error("bad domain name")]
    BadName,
    /// A TSIG record that is not the last record of the additional
    /// section, or more than one TSIG record.
    #[error("TSIG record is not the last record of the additional section")]
    TsigNotLast,
    /// Bytes after the TSIG record.
    #[error("bytes after the TSIG record")]
    TrailingBytes,
    /// The TSIG record's class is not ANY or its TTL is not 0.
    #[error("TSIG record's class is not ANY or its TTL is not 0")]
    TsigClass,
    /// The TSIG RDATA's fields do not fill its RDLENGTH exactly.
    #[error("TSIG RDATA length does not match its fields")]
    TsigRdata,
    /// A request's MAC is longer than HMAC-SHA256's or shorter than
    /// RFC 8945 §5.2.2.1 allows (16 octets).
    #[error("TSIG MAC size {0} is out of bounds for hmac-sha256")]
    MacSize(usize),
}

/// A TSIG record as read from a message.
#[derive(Debug, Clone)]
pub(super) struct TsigRr<'a> {
    /// Offset of the record's first byte (its owner name).
    pub start: usize,
    /// The header as it was signed: the original ID in place of the ID,
    /// ARCOUNT without the TSIG record.
    pub signed_header: [u8; HEADER_LEN],
    /// What lies between the header and the TSIG record.
    pub body: &'a [u8],
    /// The owner name: the key's name.
    pub key_name: Name,
    /// The algorithm name.
    pub algorithm: Name,
    /// Time Signed, 48 bits.
    pub time_signed: u64,
    /// Fudge, in seconds.
    pub fudge: u16,
    /// The MAC, of MAC Size octets.
    pub mac: &'a [u8],
    /// The TSIG error (extended RCODE).
    pub error: u16,
    /// Other Data.
    pub other: &'a [u8],
}

/// A bounds-checked reader over a whole message.
struct Cursor<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&mut self, len: usize) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(len).ok_or(Malformed::Truncated)?;
        let bytes = self.msg.get(self.pos..end).ok_or(Malformed::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn u16(&mut self) -> Result<u16, Malformed> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u48(&mut self) -> Result<u64, Malformed> {
        let b = self.bytes(6)?;
        Ok(b.iter().fold(0u64, |acc, &byte| acc << 8 | u64::from(byte)))
    }

    /// Moves past a name without following compression pointers: a name
    /// ends at the root label or after its first pointer.
    fn skip_name(&mut self) -> Result<(), Malformed> {
        let start = self.pos;
        loop {
            let len = self.bytes(1)?[0];
            match len & 0xc0 {
                0x00 if len == 0 => return Ok(()),
                0x00 => {
                    self.bytes(usize::from(len))?;
                }
                0xc0 => {
                    self.bytes(1)?;
                    return Ok(());
                }
                _ => return Err(Malformed::BadName),
            }
            if self.pos - start > MAX_NAME_LEN {
                return Err(Malformed::BadName);
            }
        }
    }

    /// Reads a name, following compression pointers (each must point
    /// strictly backwards, so every loop ends).
    fn name(&mut self) -> Result<Name, Malformed> {
        let (name, after) = Name::read_compressed(self.msg, self.pos).ok_or(Malformed::BadName)?;
        self.pos = after;
        Ok(name)
    }
}

/// The header's ID, or an error if the message is shorter than a header.
pub(super) fn header_id(msg: &[u8]) -> Result<u16, Malformed> {
    let id = msg.get(..2).ok_or(Malformed::Truncated)?;
    Ok(u16::from_be_bytes([id[0], id[1]]))
}

/// The header's ARCOUNT.
pub(super) fn arcount(msg: &[u8]) -> Result<u16, Malformed> {
    let count = msg.get(ARCOUNT_AT..HEADER_LEN).ok_or(Malformed::Truncated)?;
    Ok(u16::from_be_bytes([count[0], count[1]]))
}

/// Finds the message's TSIG record: `None` if it has none; an error if the
/// message cannot be read, if a TSIG record is anywhere but last in the
/// additional section, or if bytes follow it.
pub(super) fn find_tsig(msg: &[u8]) -> Result<Option<TsigRr<'_>>, Malformed> {
    let mut cursor = Cursor { msg, pos: 0 };
    let header = cursor.bytes(HEADER_LEN)?;
    let count = |i: usize| usize::from(u16::from_be_bytes([header[i], header[i + 1]]));
    let (questions, records, additional) = (count(4), count(6) + count(8) + count(10), count(10));
    for _ in 0..questions {
        cursor.skip_name()?;
        cursor.bytes(4)?;
    }
    for index in 0..records {
        let start = cursor.pos;
        cursor.skip_name()?;
        let rtype = cursor.u16()?;
        cursor.bytes(6)?;
        let rdlength = cursor.u16()?;
        cursor.bytes(usize::from(rdlength))?;
        if rtype != super::TYPE_TSIG {
            continue;
        }
        if index + 1 != records || additional == 0 {
            return Err(Malformed::TsigNotLast);
        }
        if cursor.pos != msg.len() {
            return Err(Malformed::TrailingBytes);
        }
        let header = <[u8; HEADER_LEN]>::try_from(header).map_err(|_| Malformed::Truncated)?;
        return read_tsig(msg, header, start).map(Some);
    }
    Ok(None)
}

/// Reads the TSIG record that starts at `start` and ends the message.
fn read_tsig(msg: &[u8], header: [u8; HEADER_LEN], start: usize) -> Result<TsigRr<'_>, Malformed> {
    let mut cursor = Cursor { msg, pos: start };
    let key_name = cursor.name()?;
    cursor.bytes(2)?; // TYPE, known to be TSIG
    let (class, ttl) = (cursor.u16()?, cursor.u32()?);
    if class != super::CLASS_ANY || ttl != 0 {
        return Err(Malformed::TsigClass);
    }
    let rdlength = usize::from(cursor.u16()?);
    if cursor.pos + rdlength != msg.len() {
        return Err(Malformed::TsigRdata);
    }
    let algorithm = cursor.name()?;
    let time_signed = cursor.u48()?;
    let fudge = cursor.u16()?;
    let mac_len = usize::from(cursor.u16()?);
    let mac = cursor.bytes(mac_len)?;
    let (original_id, error) = (cursor.u16()?, cursor.u16()?);
    let other_len = usize::from(cursor.u16()?);
    let other = cursor.bytes(other_len)?;
    if cursor.pos != msg.len() {
        return Err(Malformed::TsigRdata);
    }
    let mut signed_header = header;
    signed_header[..2].copy_from_slice(&original_id.to_be_bytes());
    let arcount = u16::from_be_bytes([header[ARCOUNT_AT], header[ARCOUNT_AT + 1]]).saturating_sub(1);
    signed_header[ARCOUNT_AT..].copy_from_slice(&arcount.to_be_bytes());
    let body = msg.get(HEADER_LEN..start).ok_or(Malformed::Truncated)?;
    Ok(TsigRr { start, signed_header, body, key_name, algorithm, time_signed, fudge, mac, error, other })
}
