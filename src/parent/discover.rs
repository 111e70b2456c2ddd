//! The parent's name servers, found through a resolver: the zone that
//! holds the child's delegation (the first name above the child that has
//! an NS RRset), its NS names, and their addresses. The DS check then
//! asks those addresses directly, as parent agents.
//!
//! What the resolver says is taken as it says it (RD set; nothing here
//! validates): a forged NS answer leads the check to servers that could
//! claim a DS early. The check's guards (every agent must agree, and
//! optionally a validating resolver's AD answer) are the defence.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::OpCode;

use crate::xfr::client::{ClientError, Request, exchange_from, rcode_name};
use crate::xfr::wire::{CLASS_IN, ParsedMessage, Question, UDP_EDNS, WireRecord};
use crate::zone::{Name, NameRef, Rtype};

/// The port the parent's name servers are asked on.
pub const DNS_PORT: u16 = 53;
/// The most NS names followed (a parent with more is cut short, in the
/// order the resolver gave them).
const MAX_NS: usize = 20;

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The parent zone: the nearest name above the child with an NS
    /// RRset.
    pub parent_zone: Name,
    /// Its name servers, in the order of the NS answer.
    pub servers: Vec<ParentServer>,
}

impl Discovered {
    /// Every address of every name server, each once, in order.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        let mut all: Vec<SocketAddr> = Vec::new();
        for addr in self.servers.iter().flat_map(|s| &s.addrs) {
            if !all.contains(addr) {
                all.push(*addr);
            }
        }
        all
    }
}

/// One of the parent's name servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentServer {
    /// Its name (the NS target).
    pub name: Name,
    /// Its addresses, port 53: IPv4 first, then IPv6. Empty when the
    /// resolver knows none.
    pub addrs: Vec<SocketAddr>,
}

/// Why discovery failed; each names the resolver, and the question when
/// one answer was at fault.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// The root has no parent.
    #[error("the root zone has no parent")]
    Root,
    /// No answer, or an answer that is not to the question.
    #[error("resolver {resolver}")]
    Exchange {
        /// The resolver asked.
        resolver: SocketAddr,
        /// What went wrong.
        source: ClientError,
    },
    /// An answer that does not read.
    #[error("resolver {resolver}: the answer to {qname} {qtype}: {what}")]
    Malformed {
        /// The resolver asked.
        resolver: SocketAddr,
        /// The name asked for.
        qname: Name,
        /// The type asked for.
        qtype: Rtype,
        /// What is wrong.
        what: String,
    },
    /// An error RCODE (SERVFAIL, REFUSED, …).
    #[error("resolver {resolver} answered {rcode} to {qname} {qtype}")]
    Rcode {
        /// The resolver asked.
        resolver: SocketAddr,
        /// The name asked for.
        qname: Name,
        /// The type asked for.
        qtype: Rtype,
        /// The RCODE's mnemonic.
        rcode: String,
    },
    /// A referral instead of an answer: the server does not resolve.
    #[error("resolver {resolver} answered {qname} NS with a referral: it is not a recursive resolver")]
    Referral {
        /// The server asked.
        resolver: SocketAddr,
        /// The name asked for.
        qname: Name,
    },
    /// No name above the zone, up to the root, has an NS RRset.
    #[error("resolver {resolver}: no NS RRset above {zone}, up to the root")]
    NoParent {
        /// The resolver asked.
        resolver: SocketAddr,
        /// The child zone.
        zone: Name,
    },
    /// The parent's NS names have no address the resolver knows.
    #[error("resolver {resolver}: no address for any name server of {parent_zone} ({names})")]
    NoAddresses {
        /// The resolver asked.
        resolver: SocketAddr,
        /// The parent zone found.
        parent_zone: Name,
        /// Its NS names, comma-separated.
        names: String,
    },
    /// The whole discovery took longer than it was given.
    #[error("resolver {resolver}: discovery of the parent of {zone} took longer than {} s", timeout.as_secs_f64())]
    Timeout {
        /// The resolver asked.
        resolver: SocketAddr,
        /// The child zone.
        zone: Name,
        /// The time it had.
        timeout: Duration,
    },
}

/// Finds the parent of `zone` through `resolver`: asks (RD set) for the
/// NS RRset of the name above `zone`, a label further up at each NXDOMAIN
/// or NODATA, up to the root; then the A and AAAA of each NS name, from
/// the glue of the NS answer where it has some, else from the resolver.
/// The whole discovery has `timeout` (each query too).
pub async fn parent_servers(resolver: SocketAddr, zone: &Name, timeout: Duration) -> Result<Discovered, DiscoverError> {
    parent_servers_from(resolver, None, zone, timeout).await
}

/// [`parent_servers`], asking from the address `source` (None: the
/// kernel's choice).
pub async fn parent_servers_from(
    resolver: SocketAddr,
    source: Option<IpAddr>,
    zone: &Name,
    timeout: Duration,
) -> Result<Discovered, DiscoverError> {
    let asker = Asker { resolver, source, timeout };
    let discovery = async {
        let (parent_zone, ns) = asker.parent_zone(zone).await?;
        let servers = asker.addresses(&ns).await?;
        if servers.iter().all(|s| s.addrs.is_empty()) {
            let names = servers.iter().map(|s| s.name.to_string()).collect::<Vec<_>>().join(", ");
            return Err(DiscoverError::NoAddresses { resolver, parent_zone, names });
        }
        Ok(Discovered { parent_zone, servers })
    };
    tokio::time::timeout(timeout, discovery).await.map_err(|_| DiscoverError::Timeout {
        resolver,
        zone: zone.clone(),
        timeout,
    })?
}

/// An NS answer: the NS names, and the address records of the
/// additional section (glue).
#[derive(Debug, Default)]
struct NsAnswer {
    names: Vec<Name>,
    glue: Vec<(Name, Rtype, IpAddr)>,
}

/// What one answer said about the question.
#[derive(Debug)]
enum Said {
    /// Records of the type asked for (and, for NS, the glue).
    Records(NsAnswer),
    /// NXDOMAIN or NODATA.
    Nothing,
    /// NS records in the authority section only, not authoritative.
    Referral,
}

#[derive(Debug, Clone, Copy)]
struct Asker {
    resolver: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
}

impl Asker {
    /// Walks up from the name above `zone` to the first with NS records.
    async fn parent_zone(&self, zone: &Name) -> Result<(Name, NsAnswer), DiscoverError> {
        let mut candidate = zone.as_ref().parent().ok_or(DiscoverError::Root)?;
        loop {
            match self.ask(candidate, Rtype::NS).await? {
                Said::Records(ns) if !ns.names.is_empty() => return Ok((candidate.to_owned(), ns)),
                Said::Referral => {
                    return Err(DiscoverError::Referral { resolver: self.resolver, qname: candidate.to_owned() });
                }
                Said::Records(_) | Said::Nothing => {}
            }
            candidate = candidate
                .parent()
                .ok_or_else(|| DiscoverError::NoParent { resolver: self.resolver, zone: zone.clone() })?;
        }
    }

    /// The addresses of each NS name: glue where the NS answer had some
    /// of a type, the resolver's answer otherwise.
    async fn addresses(&self, ns: &NsAnswer) -> Result<Vec<ParentServer>, DiscoverError> {
        let mut servers = Vec::new();
        for name in ns.names.iter().take(MAX_NS) {
            let mut ips = Vec::new();
            for rtype in [Rtype::A, Rtype::AAAA] {
                let glue: Vec<IpAddr> = ns
                    .glue
                    .iter()
                    .filter(|(owner, t, _)| *t == rtype && owner.as_ref().eq_ignore_case(name.as_ref()))
                    .map(|(_, _, ip)| *ip)
                    .collect();
                if glue.is_empty() {
                    ips.extend(self.ask_addresses(name.as_ref(), rtype).await?);
                } else {
                    ips.extend(glue);
                }
            }
            let mut addrs: Vec<SocketAddr> = Vec::new();
            for ip in ips {
                let addr = SocketAddr::new(ip, DNS_PORT);
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
            servers.push(ParentServer { name: name.clone(), addrs });
        }
        Ok(servers)
    }

    async fn ask_addresses(&self, name: NameRef<'_>, rtype: Rtype) -> Result<Vec<IpAddr>, DiscoverError> {
        match self.ask(name, rtype).await? {
            Said::Records(answer) => Ok(answer.glue.into_iter().map(|(_, _, ip)| ip).collect()),
            Said::Nothing | Said::Referral => Ok(Vec::new()),
        }
    }

    /// One question to the resolver, RD set, EDNS offered; the answer
    /// read: for NS, the NS names (owner the name asked) and the glue;
    /// for A and AAAA, the addresses (owner the name asked or an alias
    /// of it in the answer), carried in `glue`.
    async fn ask(&self, qname: NameRef<'_>, qtype: Rtype) -> Result<Said, DiscoverError> {
        let question = Question { name: qname.to_owned(), qtype, qclass: CLASS_IN };
        let mut metadata = Request::metadata(OpCode::Query);
        metadata.recursion_desired = true;
        let request = Request::new(
            metadata,
            &question,
            |writer| {
                // No DO bit: NS and addresses are wanted, not their signatures.
                writer.push_edns(UDP_EDNS, false);
            },
            None,
        );
        let answer = exchange_from(self.resolver, self.source, &request, self.timeout)
            .await
            .map_err(|source| DiscoverError::Exchange { resolver: self.resolver, source })?;
        read_answer(&answer, &question).map_err(|fault| match fault {
            Fault::Rcode(rcode) => {
                DiscoverError::Rcode { resolver: self.resolver, qname: qname.to_owned(), qtype, rcode }
            }
            Fault::Malformed(what) => {
                DiscoverError::Malformed { resolver: self.resolver, qname: qname.to_owned(), qtype, what }
            }
        })
    }
}

/// Why an answer is not used.
#[derive(Debug)]
enum Fault {
    Rcode(String),
    Malformed(String),
}

/// Reads an answer to `question` (NS, A or AAAA).
fn read_answer(answer: &[u8], question: &Question) -> Result<Said, Fault> {
    let parsed = ParsedMessage::parse(answer).map_err(|e| Fault::Malformed(e.to_string()))?;
    let echoed = parsed.question.as_ref().is_some_and(|q| {
        q.name.as_ref().eq_ignore_case(question.name.as_ref())
            && q.qtype == question.qtype
            && q.qclass == question.qclass
    });
    if !echoed {
        return Err(Fault::Malformed("the answer's question is not the one asked".to_owned()));
    }
    match u16::from(parsed.header.response_code) {
        0 => {}
        3 => return Ok(Said::Nothing),
        code => return Err(Fault::Rcode(rcode_name(code))),
    }
    let mut records = Vec::new();
    for record in parsed.records() {
        records.push(record.map_err(|e| Fault::Malformed(e.to_string()))?);
    }
    Ok(said(records, question, parsed.header.authoritative))
}

/// What the records of a NOERROR answer say. The names an answer is
/// about are the name asked and the targets of CNAME records in the
/// answer section (a resolver follows aliases).
fn said(records: Vec<(usize, WireRecord<'_>)>, question: &Question, authoritative: bool) -> Said {
    let mut names = vec![question.name.clone()];
    for (_, record) in records.iter().filter(|(section, r)| *section == 0 && r.rtype == Rtype::CNAME) {
        if let Some((target, _)) = NameRef::parse_prefix(&record.rdata) {
            names.push(target.to_owned());
        }
    }
    let about = |owner: &Name| names.iter().any(|n| n.as_ref().eq_ignore_case(owner.as_ref()));
    let mut found = NsAnswer::default();
    let mut referral = false;
    for (section, record) in &records {
        match (section, record.rtype) {
            (0, Rtype::NS) if question.qtype == Rtype::NS && about(&record.owner) => {
                if let Some((target, _)) = NameRef::parse_prefix(&record.rdata) {
                    found.names.push(target.to_owned());
                }
            }
            (1, Rtype::NS) => referral = true,
            (0, rtype) if rtype == question.qtype && about(&record.owner) => push_address(&mut found, record),
            // Glue for an NS answer.
            (2, Rtype::A | Rtype::AAAA) if question.qtype == Rtype::NS => push_address(&mut found, record),
            _ => {}
        }
    }
    let answered = !found.names.is_empty() || (question.qtype != Rtype::NS && !found.glue.is_empty());
    match (answered, referral && !authoritative) {
        (true, _) => Said::Records(found),
        (false, true) => Said::Referral,
        (false, false) => Said::Nothing,
    }
}

fn push_address(found: &mut NsAnswer, record: &WireRecord<'_>) {
    let ip = match (record.rtype, &record.rdata[..]) {
        (Rtype::A, bytes) => <[u8; 4]>::try_from(bytes).ok().map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        (Rtype::AAAA, bytes) => <[u8; 16]>::try_from(bytes).ok().map(|o| IpAddr::V6(Ipv6Addr::from(o))),
        _ => None,
    };
    if let Some(ip) = ip {
        found.glue.push((record.owner.clone(), record.rtype, ip));
    }
}

#[cfg(test)]
mod tests;
