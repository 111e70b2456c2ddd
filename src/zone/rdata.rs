//! RDATA formats: presentation text to wire, wire to text, wire checks,
//! and the RFC 4034 §6.2 canonical form.
//!
//! Each type is described once, as a list of fields (`Field`); reading,
//! writing, checking and canonicalising all walk that one description, so
//! they cannot disagree about a type's layout. Types without a
//! description are read and written in the RFC 3597 `\# len hex` form.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use data_encoding::{BASE32HEX_NOPAD, BASE64, HEXUPPER_PERMISSIVE};

use crate::time::{civil_from_days, days_from_civil};

use super::dnssec::{TypeBitmap, encode_type_bitmap};
use super::lexer::{Token, echo};
use super::name::{NameRef, parse_text};
use super::rtype::Rtype;
pub use super::text::RdataError;
use super::text::{unescape_into, write_quoted};

/// One field of a type's RDATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    U8,
    U16,
    U32,
    /// A TTL-like u32 that may have units (SOA timers).
    Period,
    /// RRSIG timestamp: YYYYMMDDHHmmSS or seconds.
    Time,
    /// A type mnemonic as u16 (RRSIG type covered).
    Type,
    Name,
    Ipv4,
    Ipv6,
    /// One length-prefixed character string.
    Str,
    /// Character strings to the end.
    Strs,
    /// Base64 to the end (may be split by spaces).
    Base64,
    /// Hex to the end (may be split by spaces).
    Hex,
    /// Length-prefixed hex, `-` for empty (NSEC3 salt).
    Salt,
    /// Length-prefixed base32hex (NSEC3 next hashed owner).
    Hash,
    /// NSEC type bitmap to the end.
    Bitmap,
    /// Length-prefixed tag without quotes (CAA tag).
    Tag,
    /// Raw bytes to the end, written as one quoted string (CAA value, URI
    /// target).
    Text,
    /// SVCB parameters to the end.
    SvcParams,
}

use Field::*;

/// The fields of a type, if we know its presentation format.
fn fields(rtype: Rtype) -> Option<&'static [Field]> {
    Some(match rtype {
        Rtype::A => &[Ipv4],
        Rtype::NS
        | Rtype::MD
        | Rtype::MF
        | Rtype::CNAME
        | Rtype::MB
        | Rtype::MG
        | Rtype::MR
        | Rtype::PTR
        | Rtype::DNAME => &[Name],
        Rtype::SOA => &[Name, Name, U32, Period, Period, Period, Period],
        Rtype::HINFO => &[Str, Str],
        Rtype::MINFO | Rtype::RP => &[Name, Name],
        Rtype::MX | Rtype::AFSDB | Rtype::RT | Rtype::KX => &[U16, Name],
        Rtype::TXT | Rtype::SPF => &[Strs],
        Rtype::AAAA => &[Ipv6],
        Rtype::SRV => &[U16, U16, U16, Name],
        Rtype::NAPTR => &[U16, U16, Str, Str, Str, Name],
        Rtype::DS | Rtype::CDS | Rtype::DLV => &[U16, U8, U8, Hex],
        Rtype::SSHFP => &[U8, U8, Hex],
        Rtype::RRSIG => &[Type, U8, U8, U32, Time, Time, U16, Name, Base64],
        Rtype::NSEC => &[Name, Bitmap],
        Rtype::DNSKEY | Rtype::CDNSKEY => &[U16, U8, U8, Base64],
        Rtype::DHCID | Rtype::OPENPGPKEY => &[Base64],
        Rtype::NSEC3 => &[U8, U8, U16, Salt, Hash, Bitmap],
        Rtype::NSEC3PARAM => &[U8, U8, U16, Salt],
        Rtype::TLSA | Rtype::SMIMEA => &[U8, U8, U8, Hex],
        Rtype::CSYNC => &[U32, U16, Bitmap],
        Rtype::ZONEMD => &[U32, U8, U8, Hex],
        Rtype::SVCB | Rtype::HTTPS => &[U16, Name, SvcParams],
        Rtype::URI => &[U16, U16, Text],
        Rtype::CAA => &[U8, Tag, Text],
        _ => return None,
    })
}

/// Types whose embedded names are lowercased in canonical form (RFC 4034
/// §6.2 as corrected by RFC 6840 §5.1: not NSEC).
fn lowercases_names(rtype: Rtype) -> bool {
    matches!(
        rtype,
        Rtype::NS
            | Rtype::MD
            | Rtype::MF
            | Rtype::CNAME
            | Rtype::SOA
            | Rtype::MB
            | Rtype::MG
            | Rtype::MR
            | Rtype::PTR
            | Rtype::MINFO
            | Rtype::MX
            | Rtype::RP
            | Rtype::AFSDB
            | Rtype::RT
            | Rtype::SIG
            | Rtype::PX
            | Rtype::NXT
            | Rtype::NAPTR
            | Rtype::KX
            | Rtype::SRV
            | Rtype::DNAME
            | Rtype::A6
            | Rtype::RRSIG
    )
}

// ---------------------------------------------------------------- text in

/// Reads RDATA tokens of `rtype` into wire form, appending to `out`.
pub fn parse_rdata(
    rtype: Rtype,
    tokens: &[Token<'_>],
    origin: NameRef<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let start = out.len();
    if tokens.first().is_some_and(|t| !t.quoted && t.text == b"\\#") {
        parse_generic(&tokens[1..], out)?;
        if out.len() - start > 65535 {
            return Err(RdataError::TooLong);
        }
        return check_rdata(rtype, &out[start..]);
    }
    let Some(fields) = fields(rtype) else {
        return Err(RdataError::Bad {
            what: "RDATA (this type is only read in the RFC 3597 \\# form)",
            text: joined(tokens),
        });
    };
    let mut rest = tokens;
    for field in fields {
        rest = parse_field(*field, rest, origin, out)?;
    }
    if let Some(extra) = rest.first() {
        return Err(RdataError::Trailing(echo(extra.text)));
    }
    if out.len() - start > 65535 {
        return Err(RdataError::TooLong);
    }
    Ok(())
}

/// Convenience for tests and tools: RDATA text to wire.
pub fn parse_rdata_text(rtype: Rtype, text: &str, origin: NameRef<'_>) -> Result<Vec<u8>, RdataError> {
    let mut lexer = super::lexer::Lexer::new(text.as_bytes());
    let mut entry = super::lexer::Entry::default();
    let mut out = Vec::new();
    match lexer.next_entry(&mut entry) {
        Ok(true) => parse_rdata(rtype, &entry.tokens, origin, &mut out)?,
        Ok(false) => parse_rdata(rtype, &[], origin, &mut out)?,
        Err((_, e)) => return Err(RdataError::Bad { what: "RDATA text", text: e.to_string() }),
    }
    Ok(out)
}

fn joined(tokens: &[Token<'_>]) -> String {
    echo(tokens.iter().map(|t| String::from_utf8_lossy(t.text)).collect::<Vec<_>>().join(" ").as_bytes())
}

fn bad(what: &'static str, token: &Token<'_>) -> RdataError {
    RdataError::Bad { what, text: echo(token.text) }
}

fn parse_generic(tokens: &[Token<'_>], out: &mut Vec<u8>) -> Result<(), RdataError> {
    let (len_token, hex) = tokens.split_first().ok_or(RdataError::Missing("generic RDATA length"))?;
    let stated: usize = std::str::from_utf8(len_token.text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad("generic RDATA length", len_token))?;
    let before = out.len();
    decode_joined(hex, &HEXUPPER_PERMISSIVE, "hex", out)?;
    let actual = out.len() - before;
    if actual != stated {
        return Err(RdataError::GenericLength { stated, actual });
    }
    Ok(())
}

fn parse_field<'t, 'a>(
    field: Field,
    tokens: &'t [Token<'a>],
    origin: NameRef<'_>,
    out: &mut Vec<u8>,
) -> Result<&'t [Token<'a>], RdataError> {
    if matches!(field, Strs | Base64 | Hex | Bitmap | SvcParams) {
        parse_rest(field, tokens, out)?;
        return Ok(&[]);
    }
    let (token, rest) = tokens.split_first().ok_or(RdataError::Missing(field_name(field)))?;
    match field {
        U8 => out.push(number(token, "8-bit number")?),
        U16 => out.extend_from_slice(&number::<u16>(token, "16-bit number")?.to_be_bytes()),
        U32 => out.extend_from_slice(&number::<u32>(token, "32-bit number")?.to_be_bytes()),
        Period => out.extend_from_slice(&parse_ttl(token.text).ok_or_else(|| bad("time value", token))?.to_be_bytes()),
        Time => out.extend_from_slice(
            &parse_rrsig_time(token.text).ok_or_else(|| bad("RRSIG time (YYYYMMDDHHmmSS)", token))?.to_be_bytes(),
        ),
        Type => {
            let rtype = std::str::from_utf8(token.text)
                .ok()
                .and_then(Rtype::from_text)
                .ok_or_else(|| bad("record type", token))?;
            out.extend_from_slice(&rtype.0.to_be_bytes());
        }
        Name => parse_text(token.text, Some(origin), out)
            .map_err(|e| RdataError::Bad { what: "domain name", text: format!("{} ({e})", echo(token.text)) })?,
        Ipv4 => out.extend_from_slice(&parse_str::<Ipv4Addr>(token, "IPv4 address")?.octets()),
        Ipv6 => out.extend_from_slice(&parse_str::<Ipv6Addr>(token, "IPv6 address")?.octets()),
        Str | Tag => char_string(token, out)?,
        Salt => parse_salt(token, out)?,
        Hash => {
            let hash =
                BASE32HEX_NOPAD.decode(&token.text.to_ascii_uppercase()).map_err(|_| bad("base32hex hash", token))?;
            out.push(u8::try_from(hash.len()).map_err(|_| bad("base32hex hash", token))?);
            out.extend_from_slice(&hash);
        }
        Text => {
            unescape_into(token.text, out).ok_or_else(|| bad("string", token))?;
            return Ok(rest);
        }
        Strs | Base64 | Hex | Bitmap | SvcParams => unreachable!("handled above"),
    }
    Ok(rest)
}

fn parse_rest(field: Field, tokens: &[Token<'_>], out: &mut Vec<u8>) -> Result<(), RdataError> {
    // Keys, signatures and digests are never empty; type lists may be.
    if tokens.is_empty() && matches!(field, Strs | Base64 | Hex) {
        return Err(RdataError::Missing(field_name(field)));
    }
    match field {
        Strs => tokens.iter().try_for_each(|t| char_string(t, out)),
        Base64 => decode_joined(tokens, &BASE64, "base64", out),
        Hex => decode_joined(tokens, &HEXUPPER_PERMISSIVE, "hex", out),
        Bitmap => {
            let mut types = Vec::with_capacity(tokens.len());
            for token in tokens {
                let rtype = std::str::from_utf8(token.text)
                    .ok()
                    .and_then(Rtype::from_text)
                    .ok_or_else(|| bad("record type", token))?;
                types.push(rtype);
            }
            encode_type_bitmap(types, out);
            Ok(())
        }
        SvcParams => super::svcb::parse_params(tokens, out),
        _ => unreachable!("only rest-of-line fields come here"),
    }
}

fn field_name(field: Field) -> &'static str {
    match field {
        U8 | U16 | U32 => "number",
        Period => "time value",
        Time => "RRSIG time",
        Type => "record type",
        Name => "domain name",
        Ipv4 => "IPv4 address",
        Ipv6 => "IPv6 address",
        Str | Strs | Text => "character string",
        Tag => "tag",
        Base64 => "base64 data",
        Hex => "hex data",
        Salt => "salt (hex or -)",
        Hash => "next hashed owner name",
        Bitmap => "type list",
        SvcParams => "service parameters",
    }
}

fn number<T: std::str::FromStr>(token: &Token<'_>, what: &'static str) -> Result<T, RdataError> {
    parse_str(token, what)
}

fn parse_str<T: std::str::FromStr>(token: &Token<'_>, what: &'static str) -> Result<T, RdataError> {
    std::str::from_utf8(token.text).ok().and_then(|t| t.parse().ok()).ok_or_else(|| bad(what, token))
}

fn decode_joined(
    tokens: &[Token<'_>],
    encoding: &data_encoding::Encoding,
    what: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), RdataError> {
    let mut text = Vec::with_capacity(tokens.iter().map(|t| t.text.len()).sum());
    for token in tokens {
        text.extend_from_slice(token.text);
    }
    let decoded = encoding.decode(&text).map_err(|_| RdataError::Bad { what, text: echo(&text) })?;
    out.extend_from_slice(&decoded);
    Ok(())
}

fn parse_salt(token: &Token<'_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    if token.text == b"-" {
        out.push(0);
        return Ok(());
    }
    let salt = HEXUPPER_PERMISSIVE.decode(token.text).map_err(|_| bad("salt (hex or -)", token))?;
    out.push(u8::try_from(salt.len()).map_err(|_| bad("salt (at most 255 octets)", token))?);
    out.extend_from_slice(&salt);
    Ok(())
}

/// One `<character-string>`: length octet, then the unescaped bytes.
fn char_string(token: &Token<'_>, out: &mut Vec<u8>) -> Result<(), RdataError> {
    let at = out.len();
    out.push(0);
    unescape_into(token.text, out).ok_or_else(|| bad("character string", token))?;
    let len = out.len() - at - 1;
    out[at] = u8::try_from(len)
        .map_err(|_| RdataError::Bad { what: "character string (longer than 255 octets)", text: echo(token.text) })?;
    Ok(())
}

/// A TTL: seconds, or units as BIND reads them (`1w2d3h4m5s`).
pub fn parse_ttl(text: &[u8]) -> Option<u32> {
    if text.is_empty() {
        return None;
    }
    if text.iter().all(u8::is_ascii_digit) {
        return std::str::from_utf8(text).ok()?.parse().ok();
    }
    let mut total: u64 = 0;
    let mut value: Option<u64> = None;
    for &byte in text {
        if byte.is_ascii_digit() {
            value = Some(value.unwrap_or(0).checked_mul(10)? + u64::from(byte - b'0'));
            continue;
        }
        let unit = match byte.to_ascii_lowercase() {
            b'w' => 604_800,
            b'd' => 86_400,
            b'h' => 3_600,
            b'm' => 60,
            b's' => 1,
            _ => return None,
        };
        total = total.checked_add(value.take()?.checked_mul(unit)?)?;
    }
    if value.is_some() {
        return None; // digits after the last unit: "1h30"
    }
    u32::try_from(total).ok()
}

/// RRSIG time: `YYYYMMDDHHmmSS` (UTC) or plain seconds (RFC 4034 §3.2).
fn parse_rrsig_time(text: &[u8]) -> Option<u32> {
    if text.len() != 14 || !text.iter().all(u8::is_ascii_digit) {
        return std::str::from_utf8(text).ok()?.parse().ok();
    }
    let num =
        |range: std::ops::Range<usize>| -> i64 { text[range].iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0')) };
    let (year, month, day) = (num(0..4), num(4..6), num(6..8));
    let (hour, minute, second) = (num(8..10), num(10..12), num(12..14));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    // RFC 4034 §3.1.5: the value is taken modulo 2^32.
    Some(seconds.rem_euclid(1 << 32) as u32)
}

/// `YYYYMMDDHHmmSS` of Unix seconds.
pub fn format_rrsig_time(seconds: u32) -> String {
    let seconds = i64::from(seconds);
    let (days, rest) = (seconds.div_euclid(86400), seconds.rem_euclid(86400));
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}{month:02}{day:02}{:02}{:02}{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

// ------------------------------------------------------------ wire checks

/// A cursor over wire RDATA, following a type's fields.
struct Walk<'a> {
    rdata: &'a [u8],
    pos: usize,
}

impl<'a> Walk<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.rdata.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(bytes)
    }

    fn rest(&mut self) -> &'a [u8] {
        let bytes = &self.rdata[self.pos..];
        self.pos = self.rdata.len();
        bytes
    }

    /// The bytes of one field (for a name: its wire form).
    fn field(&mut self, field: Field) -> Option<&'a [u8]> {
        match field {
            U8 => self.take(1),
            U16 | Type => self.take(2),
            U32 | Period | Time | Ipv4 => self.take(4),
            Ipv6 => self.take(16),
            Name => {
                let (name, _) = NameRef::parse_prefix(&self.rdata[self.pos..])?;
                self.take(name.wire().len())
            }
            Str | Tag | Salt | Hash => {
                let len = *self.rdata.get(self.pos)? as usize;
                self.take(1 + len)
            }
            Strs => {
                let start = self.pos;
                while self.pos < self.rdata.len() {
                    let len = self.rdata[self.pos] as usize;
                    self.take(1 + len)?;
                }
                (self.pos > start).then(|| &self.rdata[start..])
            }
            Bitmap => {
                let rest = self.rest();
                TypeBitmap::parse(rest).map(|_| rest)
            }
            SvcParams => {
                let rest = self.rest();
                super::svcb::check_params(rest).then_some(rest)
            }
            Base64 | Hex | Text => Some(self.rest()),
        }
    }
}

/// Is `rdata` well formed for `rtype`? Types we do not know are always.
pub fn check_rdata(rtype: Rtype, rdata: &[u8]) -> Result<(), RdataError> {
    let Some(fields) = fields(rtype) else { return Ok(()) };
    let mut walk = Walk { rdata, pos: 0 };
    let complete = fields.iter().all(|&f| walk.field(f).is_some()) && walk.pos == rdata.len();
    let tag_ok = rtype != Rtype::CAA || rdata.get(1).is_some_and(|&len| len > 0);
    if complete && tag_ok { Ok(()) } else { Err(RdataError::MalformedWire(rtype)) }
}

/// RFC 4034 §6.2 canonical RDATA: embedded names lowercased for the types
/// that call for it. Borrowed when nothing changes (or the RDATA is
/// malformed, which the caller reports elsewhere).
pub fn canonical_rdata(rtype: Rtype, rdata: &[u8]) -> Cow<'_, [u8]> {
    if !lowercases_names(rtype) || !rdata.iter().any(u8::is_ascii_uppercase) {
        return Cow::Borrowed(rdata);
    }
    let Some(fields) = fields(rtype) else { return Cow::Borrowed(rdata) };
    let mut out = rdata.to_vec();
    let mut walk = Walk { rdata, pos: 0 };
    for &field in fields {
        let start = walk.pos;
        let Some(bytes) = walk.field(field) else { return Cow::Borrowed(rdata) };
        if field == Name {
            out[start..start + bytes.len()].make_ascii_lowercase();
        }
    }
    Cow::Owned(out)
}

// ------------------------------------------------------- from a message

/// Types whose RDATA names a DNS message may compress: RFC 1035's, and
/// those RFC 3597 §4 asks receivers to expand as well: the types whose
/// names canonical form lowercases, but for the later KX, DNAME, A6 and
/// RRSIG. Other types' names are never compressed, so their RDATA is
/// taken as it is.
fn compressible(rtype: Rtype) -> bool {
    lowercases_names(rtype) && !matches!(rtype, Rtype::KX | Rtype::DNAME | Rtype::A6 | Rtype::RRSIG)
}

/// The RDATA at `message[start..end]` in uncompressed wire form: embedded
/// names the type allows to be compressed are expanded. `None` when the
/// RDATA does not fit its type's layout or a name does not read.
pub fn rdata_from_message(rtype: Rtype, message: &[u8], start: usize, end: usize) -> Option<Cow<'_, [u8]>> {
    let rdata = message.get(start..end)?;
    let fields = match fields(rtype) {
        Some(fields) if compressible(rtype) => fields,
        _ => return Some(Cow::Borrowed(rdata)),
    };
    let mut out = Vec::with_capacity(rdata.len() + 64);
    let mut walk = Walk { rdata: &message[..end], pos: start };
    for &field in fields {
        if field == Name {
            let (name, next) = super::name::Name::read_compressed(&message[..end], walk.pos)?;
            out.extend_from_slice(name.wire());
            walk.pos = next;
        } else {
            out.extend_from_slice(walk.field(field)?);
        }
    }
    (walk.pos == end).then_some(Cow::Owned(out))
}

// --------------------------------------------------------------- text out

/// Appends the presentation form of `rdata`; the RFC 3597 form for types
/// we do not know or RDATA that is not well formed, so output always
/// reads back to the same bytes.
pub fn write_rdata(rtype: Rtype, rdata: &[u8], out: &mut String) {
    match fields(rtype) {
        Some(fields) if check_rdata(rtype, rdata).is_ok() => {
            let mut walk = Walk { rdata, pos: 0 };
            for (i, &field) in fields.iter().enumerate() {
                let Some(bytes) = walk.field(field) else { break };
                // Parameters bring their own leading spaces; an empty bitmap none.
                if i > 0 && field != SvcParams && !(field == Bitmap && bytes.is_empty()) {
                    out.push(' ');
                }
                write_field(field, bytes, out);
            }
        }
        _ => write_generic(rdata, out),
    }
}

fn write_generic(rdata: &[u8], out: &mut String) {
    out.push_str(&format!("\\# {}", rdata.len()));
    if !rdata.is_empty() {
        out.push(' ');
        out.push_str(&data_encoding::HEXUPPER.encode(rdata));
    }
}

fn write_field(field: Field, bytes: &[u8], out: &mut String) {
    use std::fmt::Write;
    let _ = match field {
        U8 => write!(out, "{}", bytes[0]),
        U16 => write!(out, "{}", u16::from_be_bytes([bytes[0], bytes[1]])),
        U32 | Period => write!(out, "{}", u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
        Time => write!(out, "{}", format_rrsig_time(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))),
        Type => write!(out, "{}", Rtype(u16::from_be_bytes([bytes[0], bytes[1]]))),
        Name => {
            if let Some((n, _)) = NameRef::parse_prefix(bytes) {
                n.write_text(out)
            }
            Ok(())
        }
        Ipv4 => write!(out, "{}", Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        Ipv6 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            write!(out, "{}", Ipv6Addr::from(octets))
        }
        Str => {
            write_quoted(&bytes[1..], out);
            Ok(())
        }
        Tag => {
            write_escaped(&bytes[1..], out);
            Ok(())
        }
        Strs => {
            let mut rest = bytes;
            let mut first = true;
            while let Some((&len, tail)) = rest.split_first() {
                if !first {
                    out.push(' ');
                }
                first = false;
                write_quoted(&tail[..len as usize], out);
                rest = &tail[len as usize..];
            }
            Ok(())
        }
        Text => {
            write_quoted(bytes, out);
            Ok(())
        }
        Base64 => {
            out.push_str(&BASE64.encode(bytes));
            Ok(())
        }
        Hex => {
            out.push_str(&data_encoding::HEXUPPER.encode(bytes));
            Ok(())
        }
        Salt => {
            if bytes.len() == 1 {
                out.push('-');
            } else {
                out.push_str(&data_encoding::HEXUPPER.encode(&bytes[1..]));
            }
            Ok(())
        }
        Hash => {
            out.push_str(&BASE32HEX_NOPAD.encode(&bytes[1..]).to_ascii_lowercase());
            Ok(())
        }
        Bitmap => {
            let types: Vec<String> =
                TypeBitmap::parse(bytes).map(|b| b.types().map(|t| t.to_string()).collect()).unwrap_or_default();
            out.push_str(&types.join(" "));
            Ok(())
        }
        SvcParams => {
            super::svcb::write_params(bytes, out);
            Ok(())
        }
    };
}

/// An unquoted word with everything but letters, digits and `-` escaped.
fn write_escaped(bytes: &[u8], out: &mut String) {
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("\\{byte:03}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::name::Name;

    fn origin() -> Name {
        Name::from_text("example.", None).expect("valid")
    }

    /// text -> wire -> text -> wire gives the same wire and the expected text.
    fn round_trip(rtype: Rtype, text: &str, expected: &str) {
        let origin = origin();
        let wire = parse_rdata_text(rtype, text, origin.as_ref()).unwrap_or_else(|e| panic!("{rtype} {text}: {e}"));
        assert_eq!(check_rdata(rtype, &wire), Ok(()), "{rtype} {text}");
        let mut written = String::new();
        write_rdata(rtype, &wire, &mut written);
        assert_eq!(written, expected, "{rtype}");
        let again = parse_rdata_text(rtype, &written, origin.as_ref()).expect("written text reads back");
        assert_eq!(again, wire, "{rtype} round trip");
    }

    #[test]
    fn every_type_round_trips() {
        round_trip(Rtype::A, "192.0.2.1", "192.0.2.1");
        round_trip(Rtype::AAAA, "2001:DB8::1", "2001:db8::1");
        round_trip(Rtype::NS, "ns1", "ns1.example.");
        round_trip(
            Rtype::SOA,
            "ns hostmaster 2026112201 2h 1h 2w 1d",
            "ns.example. hostmaster.example. 2026112201 7200 3600 1209600 86400",
        );
        round_trip(Rtype::MX, "10 Mail.EXAMPLE.", "10 Mail.EXAMPLE.");
        round_trip(Rtype::TXT, "\"a b\" c \"q\\\"x\\010\"", "\"a b\" \"c\" \"q\\\"x\\010\"");
        round_trip(Rtype::SRV, "0 5 443 Host.Example.", "0 5 443 Host.Example.");
        round_trip(
            Rtype::NAPTR,
            "100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp",
            "100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp.example.",
        );
        round_trip(
            Rtype::DS,
            "60485 5 1 2BB183AF5F22588179A53B0A 98631FAD1A292118",
            "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118",
        );
        round_trip(Rtype::DNSKEY, "256 3 13 AQID BA==", "256 3 13 AQIDBA==");
        round_trip(
            Rtype::RRSIG,
            "A 13 2 3600 20261222090000 1763802000 12345 example. AQID",
            "A 13 2 3600 20261222090000 20251122090000 12345 example. AQID",
        );
        round_trip(Rtype::NSEC, "b.example. A RRSIG NSEC TYPE1234", "b.example. A RRSIG NSEC TYPE1234");
        round_trip(
            Rtype::NSEC3,
            "1 1 0 - 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom A RRSIG",
            "1 1 0 - 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom A RRSIG",
        );
        round_trip(
            Rtype::NSEC3,
            "1 0 10 AABBCCDD 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom",
            "1 0 10 AABBCCDD 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom",
        );
        round_trip(Rtype::NSEC3PARAM, "1 0 0 -", "1 0 0 -");
        round_trip(Rtype::CAA, "0 issue \"letsencrypt.org\"", "0 issue \"letsencrypt.org\"");
        round_trip(Rtype::TLSA, "3 1 1 ABCDEF01", "3 1 1 ABCDEF01");
        round_trip(Rtype::SSHFP, "4 2 ABCDEF01", "4 2 ABCDEF01");
        round_trip(Rtype::ZONEMD, "2026112201 1 1 ABCD", "2026112201 1 1 ABCD");
        round_trip(Rtype::HINFO, "PC Linux", "\"PC\" \"Linux\"");
        round_trip(Rtype::URI, "10 1 \"https://example.com/\"", "10 1 \"https://example.com/\"");
        round_trip(Rtype::CSYNC, "66 3 A NS AAAA", "66 3 A NS AAAA");
        round_trip(Rtype(65280), "\\# 4 0A000001", "\\# 4 0A000001");
        round_trip(Rtype::A, "\\# 4 C0000201", "192.0.2.1");
    }

    #[test]
    fn canonical_form_lowercases_only_listed_types() {
        let origin = origin();
        let mx = parse_rdata_text(Rtype::MX, "10 Mail.EXAMPLE.", origin.as_ref()).expect("valid");
        assert_eq!(&*canonical_rdata(Rtype::MX, &mx), &b"\x00\x0a\x04mail\x07example\x00"[..]);
        let nsec = parse_rdata_text(Rtype::NSEC, "B.example. A", origin.as_ref()).expect("valid");
        assert_eq!(&*canonical_rdata(Rtype::NSEC, &nsec), &nsec[..], "RFC 6840: NSEC is not lowercased");
        let txt = parse_rdata_text(Rtype::TXT, "ABC", origin.as_ref()).expect("valid");
        assert_eq!(&*canonical_rdata(Rtype::TXT, &txt), &txt[..]);
    }

    #[test]
    fn errors_say_what_was_expected() {
        let origin = origin();
        let err = |rtype, text| parse_rdata_text(rtype, text, origin.as_ref()).expect_err("must fail").to_string();
        assert_eq!(err(Rtype::A, "192.0.2.300"), "bad IPv4 address \"192.0.2.300\"");
        assert_eq!(err(Rtype::MX, "10"), "missing domain name");
        assert_eq!(err(Rtype::DS, "1 13 2 XYZ"), "bad hex \"XYZ\"");
        assert_eq!(err(Rtype::A, "192.0.2.1 extra"), "unexpected \"extra\" after the RDATA");
        assert_eq!(err(Rtype::A, "\\# 3 C00002"), "malformed A RDATA");
        assert_eq!(err(Rtype(65280), "\\# 4 0A00"), "generic RDATA says 4 octets but has 2");
        assert!(err(Rtype::TXT, &format!("\"{}\"", "x".repeat(256))).contains("longer than 255"));
    }

    #[test]
    fn ttl_units_and_rrsig_times() {
        assert_eq!(parse_ttl(b"3600"), Some(3600));
        assert_eq!(parse_ttl(b"1h30m"), Some(5400));
        assert_eq!(parse_ttl(b"1W2d"), Some(777_600));
        assert_eq!(parse_ttl(b"1x"), None);
        assert_eq!(parse_ttl(b"1h30"), None);
        assert_eq!(parse_rrsig_time(b"20231114221320"), Some(1_700_000_000));
        assert_eq!(format_rrsig_time(1_700_000_000), "20231114221320");
        assert_eq!(parse_rrsig_time(b"20231399221320"), None);
    }
}
