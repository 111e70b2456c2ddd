//! SVCB/HTTPS service parameters (RFC 9460 §2.1, §7): `key=value` text to
//! the sorted wire list and back.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::lexer::{Token, echo};
use super::text::{RdataError, unescape_into, write_quoted};

const KEY_NAMES: [&str; 8] = ["mandatory", "alpn", "no-default-alpn", "port", "ipv4hint", "ech", "ipv6hint", "dohpath"];

fn key_number(name: &[u8]) -> Option<u16> {
    let name = std::str::from_utf8(name).ok()?;
    if let Some(i) = KEY_NAMES.iter().position(|k| k.eq_ignore_ascii_case(name)) {
        return Some(i as u16);
    }
    let digits = name.strip_prefix("key")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn key_name(key: u16) -> String {
    KEY_NAMES.get(key as usize).map_or_else(|| format!("key{key}"), |k| (*k).to_string())
}

fn bad(what: &'static str, text: &[u8]) -> RdataError {
    RdataError::Bad { what, text: echo(text) }
}

/// Reads `key[=value]` tokens (a value may be quoted, as its own token
/// after `key=`) into the wire list, sorted by key.
pub(super) fn parse_params(tokens: &[Token<'_>], out: &mut Vec<u8>) -> Result<(), RdataError> {
    let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let text = tokens[i].text;
        let (key_text, mut value) = match text.iter().position(|&b| b == b'=') {
            Some(eq) => (&text[..eq], Some(&text[eq + 1..])),
            None => (text, None),
        };
        // `alpn="h2,h3"`: the lexer splits the quoted value off.
        if value == Some(&b""[..]) && tokens.get(i + 1).is_some_and(|t| t.quoted) {
            i += 1;
            value = Some(tokens[i].text);
        }
        let key = key_number(key_text).ok_or_else(|| bad("service parameter key", key_text))?;
        if params.iter().any(|(k, _)| *k == key) {
            return Err(bad("service parameter (given twice)", key_text));
        }
        let mut raw = Vec::new();
        if let Some(value) = value {
            unescape_into(value, &mut raw).ok_or_else(|| bad("service parameter value", value))?;
        }
        params.push((key, encode_value(key, &raw)?));
        i += 1;
    }
    params.sort_by_key(|(k, _)| *k);
    for (key, value) in params {
        out.extend_from_slice(&key.to_be_bytes());
        out.extend_from_slice(&u16::try_from(value.len()).map_err(|_| RdataError::TooLong)?.to_be_bytes());
        out.extend_from_slice(&value);
    }
    Ok(())
}

fn encode_value(key: u16, raw: &[u8]) -> Result<Vec<u8>, RdataError> {
    let mut value = Vec::new();
    let text = std::str::from_utf8(raw).map_err(|_| bad("service parameter value", raw))?;
    match key {
        0 => {
            for name in text.split(',') {
                let k = key_number(name.as_bytes()).ok_or_else(|| bad("mandatory key", name.as_bytes()))?;
                value.extend_from_slice(&k.to_be_bytes());
            }
        }
        1 => {
            for id in split_list(raw) {
                // An empty id has no wire form (RFC 9460 §7.1.1).
                if id.is_empty() {
                    return Err(bad("alpn list (an id is empty)", raw));
                }
                value.push(u8::try_from(id.len()).map_err(|_| bad("alpn id", &id))?);
                value.extend_from_slice(&id);
            }
        }
        2 if raw.is_empty() => {}
        2 => return Err(bad("no-default-alpn (takes no value)", raw)),
        3 => value.extend_from_slice(&text.parse::<u16>().map_err(|_| bad("port", raw))?.to_be_bytes()),
        4 => {
            for addr in text.split(',') {
                value.extend_from_slice(
                    &addr.parse::<Ipv4Addr>().map_err(|_| bad("IPv4 hint", addr.as_bytes()))?.octets(),
                );
            }
        }
        5 => value = data_encoding::BASE64.decode(raw).map_err(|_| bad("ech (base64)", raw))?,
        6 => {
            for addr in text.split(',') {
                value.extend_from_slice(
                    &addr.parse::<Ipv6Addr>().map_err(|_| bad("IPv6 hint", addr.as_bytes()))?.octets(),
                );
            }
        }
        _ => value.extend_from_slice(raw),
    }
    Ok(value)
}

/// Splits an alpn list on commas not escaped as `\,`.
fn split_list(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut items = vec![Vec::new()];
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\\' if i + 1 < raw.len() => {
                if let Some(item) = items.last_mut() {
                    item.push(raw[i + 1])
                }
                i += 2;
                continue;
            }
            b',' => items.push(Vec::new()),
            byte => {
                if let Some(item) = items.last_mut() {
                    item.push(byte);
                }
            }
        }
        i += 1;
    }
    items
}

/// Is the wire list well formed: keys strictly ascending, lengths inside?
pub(super) fn check_params(mut rest: &[u8]) -> bool {
    let mut last: Option<u16> = None;
    while !rest.is_empty() {
        let Some(head) = rest.get(..4) else { return false };
        let key = u16::from_be_bytes([head[0], head[1]]);
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        if last.is_some_and(|l| key <= l) || rest.len() < 4 + len {
            return false;
        }
        let value = &rest[4..4 + len];
        let fixed_ok = match key {
            3 => len == 2,
            4 => len > 0 && len.is_multiple_of(4),
            6 => len > 0 && len.is_multiple_of(16),
            0 => len > 0 && len.is_multiple_of(2),
            1 => alpn_ok(value),
            2 => len == 0,
            _ => true,
        };
        if !fixed_ok {
            return false;
        }
        last = Some(key);
        rest = &rest[4 + len..];
    }
    true
}

fn alpn_ok(mut value: &[u8]) -> bool {
    while let Some((&len, tail)) = value.split_first() {
        if len == 0 || tail.len() < len as usize {
            return false;
        }
        value = &tail[len as usize..];
    }
    true
}

/// The alpn ids (length-prefixed, checked by `alpn_ok`) as one
/// comma-separated list of octets, commas and backslashes in an id
/// escaped (RFC 9460 §A.1); octets stay octets, whatever their value.
fn alpn_list(mut rest: &[u8]) -> Vec<u8> {
    let mut list = Vec::with_capacity(rest.len() * 2);
    while let Some((&len, tail)) = rest.split_first() {
        let (id, after) = tail.split_at(usize::from(len).min(tail.len()));
        if !list.is_empty() {
            list.push(b',');
        }
        for &b in id {
            if b == b',' || b == b'\\' {
                list.push(b'\\');
            }
            list.push(b);
        }
        rest = after;
    }
    list
}

/// Writes the wire list as ` key=value` pairs (checked by `check_params`).
pub(super) fn write_params(mut rest: &[u8], out: &mut String) {
    while rest.len() >= 4 {
        let key = u16::from_be_bytes([rest[0], rest[1]]);
        let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let value = &rest[4..4 + len];
        out.push(' ');
        out.push_str(&key_name(key));
        if key != 2 {
            out.push('=');
            write_value(key, value, out);
        }
        rest = &rest[4 + len..];
    }
}

fn write_value(key: u16, value: &[u8], out: &mut String) {
    match key {
        0 => {
            let keys: Vec<String> = value.chunks(2).map(|c| key_name(u16::from_be_bytes([c[0], c[1]]))).collect();
            out.push_str(&keys.join(","));
        }
        1 => write_quoted(&alpn_list(value), out),
        3 => out.push_str(&u16::from_be_bytes([value[0], value[1]]).to_string()),
        4 => {
            let addrs: Vec<String> =
                value.chunks(4).map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]).to_string()).collect();
            out.push_str(&addrs.join(","));
        }
        5 => out.push_str(&data_encoding::BASE64.encode(value)),
        6 => {
            let addrs: Vec<String> = value
                .chunks(16)
                .map(|c| {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(c);
                    Ipv6Addr::from(octets).to_string()
                })
                .collect();
            out.push_str(&addrs.join(","));
        }
        _ => write_quoted(value, out),
    }
}

#[cfg(test)]
mod tests {
    use crate::zone::name::Name;
    use crate::zone::rdata::{parse_rdata_text, write_rdata};
    use crate::zone::rtype::Rtype;

    #[test]
    fn https_round_trip() {
        let origin = Name::from_text("example.", None).expect("valid");
        let text = "1 . alpn=\"h2,h3\" port=8443 ipv4hint=192.0.2.1,192.0.2.2 ipv6hint=2001:db8::1 mandatory=alpn,port";
        let wire = parse_rdata_text(Rtype::HTTPS, text, origin.as_ref()).expect("valid HTTPS");
        let mut written = String::new();
        write_rdata(Rtype::HTTPS, &wire, &mut written);
        assert_eq!(
            written,
            "1 . mandatory=alpn,port alpn=\"h2,h3\" port=8443 ipv4hint=192.0.2.1,192.0.2.2 ipv6hint=2001:db8::1"
        );
        assert_eq!(parse_rdata_text(Rtype::HTTPS, &written, origin.as_ref()).expect("reads back"), wire);
        let alias = parse_rdata_text(Rtype::SVCB, "0 svc.example.", origin.as_ref()).expect("alias form");
        let mut written = String::new();
        write_rdata(Rtype::SVCB, &alias, &mut written);
        assert_eq!(written, "0 svc.example.");
        assert!(parse_rdata_text(Rtype::HTTPS, "1 . port=99999", origin.as_ref()).is_err());
    }

    /// Found by fuzzing: alpn octets above 127 were written as the UTF-8
    /// of the Latin-1 character, and read back as two octets each.
    #[test]
    fn alpn_octets_round_trip() {
        let origin = Name::from_text("example.", None).expect("valid");
        let text = r#"1 . alpn="h2,\239\191\189x,a\\,b""#;
        let wire = parse_rdata_text(Rtype::HTTPS, text, origin.as_ref()).expect("valid HTTPS");
        let ids = [&b"h2"[..], &[0xef, 0xbf, 0xbd, b'x'], b"a,b"];
        // Priority 1, target ".", key 1 (alpn), then the value's length.
        let mut expected = vec![0, 1, 0, 0, 1, 0, 0];
        for id in ids {
            expected.push(id.len() as u8);
            expected.extend_from_slice(id);
        }
        expected[6] = (expected.len() - 7) as u8;
        assert_eq!(wire, expected);
        let mut written = String::new();
        write_rdata(Rtype::HTTPS, &wire, &mut written);
        assert_eq!(parse_rdata_text(Rtype::HTTPS, &written, origin.as_ref()).expect("reads back"), wire, "{written}");
    }

    /// Found by fuzzing: `alpn="h2,,h3"` was read into an id of length 0,
    /// which the wire check refuses, so the record written did not read back.
    #[test]
    fn empty_alpn_ids_are_refused() {
        let origin = Name::from_text("example.", None).expect("valid");
        for text in [r#"1 . alpn="h2,,h3""#, r#"1 . alpn="h2,""#, r#"1 . alpn="""#, "1 . alpn=,h2"] {
            assert!(parse_rdata_text(Rtype::HTTPS, text, origin.as_ref()).is_err(), "{text}");
        }
    }
}
