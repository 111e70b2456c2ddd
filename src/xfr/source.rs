//! Where signet's own messages leave from: NOTIFY (`notify-source`), and
//! SOA queries, transfers in, the parent's checks and UPDATEs
//! (`transfer-source`), as BIND names them.
//!
//! A secondary takes NOTIFY only from the addresses it knows as its
//! primaries (RFC 1996 §3.10), and a primary's or a parent's access list
//! goes by address too: a socket bound to the wildcard leaves from
//! whatever address the kernel picks for the route (on one host, the
//! destination's own address or 127.0.0.1), which is seldom the address
//! the remote knows signet by. So the source is chosen, in this order:
//! the zone's own setting (`signet zone notify-source|transfer-source`),
//! serve's (`notify-source`, `transfer-source` under `[serve]`), the
//! address serve listens on in the destination's family (a loopback
//! listen address only for a loopback destination, and the other way
//! round: a loopback address cannot reach another host), and only then
//! the kernel's choice. Each setting holds at most one address per
//! family; the port is always random.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// How a message's source address was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceWhy {
    /// The zone's own setting.
    Zone,
    /// serve's setting.
    Serve,
    /// The address serve listens on.
    Listen,
    /// None of those: the kernel picks one for the route.
    Kernel,
}

/// The source chosen for a message to one remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The address to bind (None: the wildcard, the kernel's choice).
    pub ip: Option<IpAddr>,
    /// Why this one.
    pub why: SourceWhy,
    /// The setting that would change it: `notify-source` or
    /// `transfer-source`.
    pub knob: &'static str,
}

impl Source {
    /// The kernel's choice (a command outside `signet serve` with no
    /// setting for the zone).
    pub fn kernel(knob: &'static str) -> Source {
        Source { ip: None, why: SourceWhy::Kernel, knob }
    }

    /// The local address to bind for a message to `peer`: the source, or
    /// the wildcard of the peer's family; port 0 (random).
    pub fn bind_addr(&self, peer: SocketAddr) -> SocketAddr {
        let wildcard =
            || if peer.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
        SocketAddr::new(self.ip.filter(|ip| ip.is_ipv4() == peer.is_ipv4()).unwrap_or_else(wildcard), 0)
    }

    /// The source in words, with `used` (the address the message left
    /// from, when known) for the kernel's choice.
    pub fn describe(&self, used: Option<IpAddr>) -> String {
        let ip = self.ip.or(used).map_or_else(|| "an address".to_owned(), |ip| ip.to_string());
        match self.why {
            SourceWhy::Zone => format!("{ip} (the zone's {})", self.knob),
            SourceWhy::Serve => format!("{ip} ({} of signet serve)", self.knob),
            SourceWhy::Listen => format!("{ip} (the address signet serve listens on; {} unset)", self.knob),
            SourceWhy::Kernel => format!("{ip} (the kernel's choice: no {} set, no listen address to use)", self.knob),
        }
    }
}

/// The settings a source follows from, for one kind of message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceChoice {
    /// `notify-source` or `transfer-source`.
    pub knob: &'static str,
    /// The zone's own setting.
    pub zone: Vec<IpAddr>,
    /// serve's setting.
    pub serve: Vec<IpAddr>,
    /// The addresses serve listens on.
    pub listen: Vec<IpAddr>,
}

impl SourceChoice {
    /// The source for a message to `peer`.
    pub fn for_peer(&self, peer: SocketAddr) -> Source {
        let family = |ip: &IpAddr| ip.is_ipv4() == peer.is_ipv4();
        let knob = self.knob;
        if let Some(ip) = self.zone.iter().copied().find(family) {
            return Source { ip: Some(ip), why: SourceWhy::Zone, knob };
        }
        if let Some(ip) = self.serve.iter().copied().find(family) {
            return Source { ip: Some(ip), why: SourceWhy::Serve, knob };
        }
        let loopback = peer.ip().to_canonical().is_loopback();
        let listen = self
            .listen
            .iter()
            .copied()
            .find(|ip| family(ip) && !ip.is_unspecified() && ip.to_canonical().is_loopback() == loopback);
        match listen {
            Some(ip) => Source { ip: Some(ip), why: SourceWhy::Listen, knob },
            None => Source::kernel(knob),
        }
    }
}

/// What serve says of sources, for every zone: its settings and the
/// addresses it listens on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceDefaults {
    /// `notify-source` under `[serve]`.
    pub notify: Vec<IpAddr>,
    /// `transfer-source` under `[serve]`.
    pub transfer: Vec<IpAddr>,
    /// The listen addresses.
    pub listen: Vec<IpAddr>,
}

impl SourceDefaults {
    /// The choice for NOTIFY, with the zone's own `notify-source`.
    pub fn notify(&self, zone: &[IpAddr]) -> SourceChoice {
        SourceChoice {
            knob: NOTIFY_SOURCE,
            zone: zone.to_vec(),
            serve: self.notify.clone(),
            listen: self.listen.clone(),
        }
    }

    /// The choice for queries, transfers in and UPDATEs, with the zone's
    /// own `transfer-source`.
    pub fn transfer(&self, zone: &[IpAddr]) -> SourceChoice {
        SourceChoice {
            knob: TRANSFER_SOURCE,
            zone: zone.to_vec(),
            serve: self.transfer.clone(),
            listen: self.listen.clone(),
        }
    }
}

/// The setting for NOTIFY's source.
pub const NOTIFY_SOURCE: &str = "notify-source";
/// The setting for the source of everything else signet sends.
pub const TRANSFER_SOURCE: &str = "transfer-source";

/// A source setting that does not read: an IP address, at most one per
/// family, no port.
pub fn parse_sources(texts: &[String]) -> Result<Vec<IpAddr>, SourceError> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for text in texts {
        let ip: IpAddr = text.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| {
            if text.parse::<SocketAddr>().is_ok() {
                SourceError::WithPort(text.clone())
            } else {
                SourceError::NotAnAddress(text.clone())
            }
        })?;
        if ip.is_unspecified() {
            return Err(SourceError::Wildcard(text.clone()));
        }
        if ips.iter().any(|other| other.is_ipv4() == ip.is_ipv4()) {
            return Err(SourceError::TwoOfAFamily(text.clone()));
        }
        ips.push(ip);
    }
    Ok(ips)
}

/// A source address setting that does not read (the text as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// `ADDR:PORT`: the port of a source is random for every message.
    #[error("{0:?}: a source is an address without a port (the port is random for every message)")]
    WithPort(String),
    /// Not an address at all.
    #[error("{0:?} is not an IP address")]
    NotAnAddress(String),
    /// `0.0.0.0` or `::`.
    #[error("{0:?}: the wildcard is the kernel's choice; leave the setting out instead")]
    Wildcard(String),
    /// A second address of the same family.
    #[error("{0:?}: one source address per family (IPv4, IPv6)")]
    TwoOfAFamily(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn peer(text: &str) -> SocketAddr {
        text.parse().expect("addr")
    }

    #[test]
    fn the_zone_then_serve_then_listen_then_the_kernel() {
        let mut choice = SourceChoice { knob: "notify-source", ..SourceChoice::default() };
        assert_eq!(choice.for_peer(peer("127.0.0.3:53")).why, SourceWhy::Kernel);
        choice.listen = vec![ip("0.0.0.0"), ip("127.0.0.2"), ip("192.0.2.1"), ip("::1")];
        assert_eq!(choice.for_peer(peer("127.0.0.3:53")).ip, Some(ip("127.0.0.2")));
        assert_eq!(choice.for_peer(peer("198.51.100.7:53")).ip, Some(ip("192.0.2.1")));
        assert_eq!(choice.for_peer(peer("[::1]:53")).ip, Some(ip("::1")));
        assert_eq!(choice.for_peer(peer("[2001:db8::1]:53")).why, SourceWhy::Kernel, "no global v6 listen address");
        choice.serve = vec![ip("127.0.0.9")];
        assert_eq!(choice.for_peer(peer("127.0.0.3:53")).why, SourceWhy::Serve);
        choice.zone = vec![ip("127.0.0.8")];
        let source = choice.for_peer(peer("127.0.0.3:53"));
        assert_eq!((source.ip, source.why), (Some(ip("127.0.0.8")), SourceWhy::Zone));
        assert!(source.describe(None).contains("the zone's notify-source"), "{}", source.describe(None));
        assert_eq!(source.bind_addr(peer("127.0.0.3:53")), peer("127.0.0.8:0"));
        assert_eq!(Source::kernel("x").bind_addr(peer("[::1]:53")), peer("[::]:0"));
    }

    #[test]
    fn settings_read_one_address_per_family() {
        let read = |texts: &[&str]| parse_sources(&texts.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>());
        assert_eq!(read(&["192.0.2.1", "2001:db8::1"]), Ok(vec![ip("192.0.2.1"), ip("2001:db8::1")]));
        assert_eq!(read(&["192.0.2.1:53"]), Err(SourceError::WithPort("192.0.2.1:53".into())));
        assert_eq!(read(&["192.0.2.1", "192.0.2.2"]), Err(SourceError::TwoOfAFamily("192.0.2.2".into())));
        assert_eq!(read(&["0.0.0.0"]), Err(SourceError::Wildcard("0.0.0.0".into())));
        let error = read(&["ns1"]).expect_err("a name");
        assert!(error.to_string().contains("not an IP address"), "{error}");
    }
}
