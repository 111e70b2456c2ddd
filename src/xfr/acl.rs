//! Remote addresses as an operator writes them (`ADDR[:PORT]`,
//! `[V6]:PORT`, `ADDR/LEN`) and the access decisions made on them.

use std::net::{IpAddr, SocketAddr};

use crate::zone::{Name, NameRef};

/// The DNS port, when none is given.
pub const DNS_PORT: u16 = 53;

/// An address that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not {expected}")]
pub struct AddressError {
    /// What was given.
    pub text: String,
    /// What was expected.
    pub expected: &'static str,
}

/// Reads `ADDR`, `ADDR:PORT`, `V6`, or `[V6]:PORT` (port 53 by default).
pub fn parse_socket(text: &str) -> Result<SocketAddr, AddressError> {
    let error = || AddressError { text: text.to_owned(), expected: "an address (ADDR, ADDR:PORT or [V6]:PORT)" };
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .map_err(|_| error())
}

/// Reads `ADDR` or `ADDR/LEN` into a network: address and prefix length.
pub fn parse_prefix(text: &str) -> Result<(IpAddr, u8), AddressError> {
    let error = || AddressError { text: text.to_owned(), expected: "an address or prefix (ADDR or ADDR/LEN)" };
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| error())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(len) => len.parse::<u8>().ok().filter(|&l| l <= max).ok_or_else(error)?,
        None => max,
    };
    Ok((ip, len))
}

/// Is `ip` in the network `net/len`?
pub(crate) fn contains((net, len): (IpAddr, u8), ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// A primary or a secondary: where it is, and the TSIG key its messages
/// carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its address and port.
    pub addr: SocketAddr,
    /// The key (lowercase), if it signs with one.
    pub key: Option<Name>,
    /// A secondary sent NOTIFY.
    pub notify: bool,
}

impl Peer {
    /// Does a request signed with `key` (None: unsigned) come from this
    /// peer as configured? A peer with a key requires it.
    pub fn accepts(&self, key: Option<NameRef<'_>>) -> bool {
        match (&self.key, key) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => mine.as_ref().eq_ignore_case(theirs),
            (Some(_), None) => false,
        }
    }
}

/// One more client allowed to transfer: a network, a key, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    /// The network (None: any address).
    pub net: Option<(IpAddr, u8)>,
    /// The key required (None: none).
    pub key: Option<Name>,
}

impl AclEntry {
    /// Does the entry allow a client at `ip` signing with `key`?
    pub fn allows(&self, ip: IpAddr, key: Option<NameRef<'_>>) -> bool {
        let address_ok = self.net.is_none_or(|net| contains(net, ip));
        let key_ok = match (&self.key, key) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => mine.as_ref().eq_ignore_case(theirs),
            (Some(_), None) => false,
        };
        address_ok && key_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_with_and_without_ports() {
        assert_eq!(parse_socket("127.0.0.1").expect("v4"), "127.0.0.1:53".parse().expect("addr"));
        assert_eq!(parse_socket("127.0.0.1:5300").expect("v4 port"), "127.0.0.1:5300".parse().expect("addr"));
        assert_eq!(parse_socket("::1").expect("v6"), "[::1]:53".parse().expect("addr"));
        assert_eq!(parse_socket("[::1]:5300").expect("v6 port"), "[::1]:5300".parse().expect("addr"));
        assert!(parse_socket("localhost").is_err());
        assert!(parse_socket("127.0.0.1:99999").is_err());
    }

    #[test]
    fn networks_contain_what_they_should() {
        let net = parse_prefix("192.0.2.0/24").expect("prefix");
        assert!(contains(net, "192.0.2.200".parse().expect("ip")));
        assert!(!contains(net, "192.0.3.1".parse().expect("ip")));
        assert!(contains(net, "::ffff:192.0.2.9".parse().expect("mapped")));
        let host = parse_prefix("2001:db8::1").expect("host");
        assert!(contains(host, "2001:db8::1".parse().expect("ip")));
        assert!(!contains(host, "2001:db8::2".parse().expect("ip")));
        assert!(contains(parse_prefix("0.0.0.0/0").expect("any"), "203.0.113.1".parse().expect("ip")));
        assert!(parse_prefix("10.0.0.0/33").is_err());
    }

    #[test]
    fn a_keyed_entry_requires_its_key() {
        let key = Name::from_text("xfr.", None).expect("name");
        let other = Name::from_text("other.", None).expect("name");
        let entry = AclEntry { net: Some(parse_prefix("127.0.0.0/8").expect("net")), key: Some(key.clone()) };
        let ip: IpAddr = "127.0.0.2".parse().expect("ip");
        assert!(entry.allows(ip, Some(Name::from_text("XFR.", None).expect("name").as_ref())));
        assert!(!entry.allows(ip, None));
        assert!(!entry.allows(ip, Some(other.as_ref())));
        assert!(!entry.allows("10.0.0.1".parse().expect("ip"), Some(key.as_ref())));
    }
}
