//! Remote addresses as an operator writes them (`ADDR[:PORT]`,
//! `[V6]:PORT`, `ADDR/LEN`) and the access decisions made on them.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

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

/// Reads `ADDR` or `ADDR/LEN` into a network (a lone address is a host:
/// /32 or /128). Address ranges are `ipnet`'s: parsing, the prefix
/// length's bounds and containment for both families are done and tested
/// there.
pub fn parse_prefix(text: &str) -> Result<IpNet, AddressError> {
    let error = || AddressError { text: text.to_owned(), expected: "an address or prefix (ADDR or ADDR/LEN)" };
    match text.parse::<IpNet>() {
        Ok(net) => Ok(net),
        Err(_) if !text.contains('/') => text.parse::<IpAddr>().map(IpNet::from).map_err(|_| error()),
        Err(_) => Err(error()),
    }
}

/// Is `ip` in the network `net`? An IPv4 client on an IPv6 socket
/// (`::ffff:a.b.c.d`) counts as the IPv4 address it is.
pub(crate) fn contains(net: IpNet, ip: IpAddr) -> bool {
    net.contains(&ip.to_canonical())
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
    pub net: Option<IpNet>,
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
