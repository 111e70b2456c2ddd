//! DNS messages as bytes, where records are many: the answers of zone
//! transfers, written and read straight from and into the zone's own
//! records (uncompressed wire RDATA), and the TCP framing.
//!
//! hickory-proto reads and writes the header and the question here
//! ([`Header`], [`Query`]); records are not converted to its typed
//! `RData` and back: a transfer carries millions of them, the zone holds
//! them as wire bytes already, and a type hickory does not know (or knows
//! differently) must pass through unchanged.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, Metadata, Query};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable as _, BinDecoder, BinEncodable as _, BinEncoder};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::UdpSocket;

use crate::zone::rdata::rdata_from_message;
use crate::zone::{Name, NameRef, RecordRef, Rtype};

/// The largest DNS message (TCP's two-octet length).
pub const MAX_MESSAGE: usize = 65535;
/// The size a UDP answer keeps to when the query offers no more (RFC 1035),
/// and the payload signet offers in EDNS (the DNS flag day 2020 value).
pub const UDP_PLAIN: usize = 512;
/// The EDNS payload size signet advertises and honours at most.
pub const UDP_EDNS: u16 = 1232;
/// The class IN.
pub const CLASS_IN: u16 = 1;

/// Why bytes are not a DNS message signet can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Cut short or malformed at this offset.
    #[error("malformed DNS message at byte {offset}: {what}")]
    Malformed {
        /// Where.
        offset: usize,
        /// What.
        what: &'static str,
    },
}

fn malformed(offset: usize, what: &'static str) -> WireError {
    WireError::Malformed { offset, what }
}

/// A question: name, type and class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name asked for, case as sent.
    pub name: Name,
    /// The type asked for.
    pub qtype: Rtype,
    /// The class asked for.
    pub qclass: u16,
}

impl Question {
    /// The question in hickory-proto's form.
    pub fn to_query(&self) -> Result<Query, WireError> {
        let mut decoder = BinDecoder::new(self.name.wire());
        let name = hickory_proto::rr::Name::read(&mut decoder).map_err(|_| malformed(0, "question name"))?;
        let mut query = Query::query(name, RecordType::from(self.qtype.0));
        query.set_query_class(DNSClass::from(self.qclass));
        Ok(query)
    }
}

/// One record read from a message, RDATA uncompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRecord<'m> {
    /// Owner name.
    pub owner: Name,
    /// Type.
    pub rtype: Rtype,
    /// Class.
    pub class: u16,
    /// TTL.
    pub ttl: u32,
    /// RDATA, names expanded where the type allows compression.
    pub rdata: Cow<'m, [u8]>,
}

/// A message read: its header (with the section counts), its question,
/// and a cursor at the first answer record.
#[derive(Debug)]
pub struct ParsedMessage<'m> {
    /// The header.
    pub header: Header,
    /// The first question (transfers and NOTIFY carry exactly one).
    pub question: Option<Question>,
    message: &'m [u8],
    records_at: usize,
}

impl<'m> ParsedMessage<'m> {
    /// Reads the header and the questions of `message`.
    pub fn parse(message: &'m [u8]) -> Result<ParsedMessage<'m>, WireError> {
        let mut decoder = BinDecoder::new(message);
        let header = Header::read(&mut decoder).map_err(|_| malformed(0, "header"))?;
        let mut question = None;
        let mut pos = decoder.index();
        for _ in 0..header.counts.queries {
            let (name, next) = Name::read_compressed(message, pos).ok_or_else(|| malformed(pos, "question name"))?;
            let fixed = message.get(next..next + 4).ok_or_else(|| malformed(next, "question type and class"))?;
            question.get_or_insert(Question {
                name,
                qtype: Rtype(u16::from_be_bytes([fixed[0], fixed[1]])),
                qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
            });
            pos = next + 4;
        }
        Ok(ParsedMessage { header, question, message, records_at: pos })
    }

    /// The records of the answer, authority and additional sections, in
    /// order, each with the section it is in (0, 1, 2).
    pub fn records(&self) -> Records<'m> {
        let counts = &self.header.counts;
        Records {
            message: self.message,
            pos: self.records_at,
            left: [counts.answers, counts.authorities, counts.additionals],
            section: 0,
        }
    }

    /// The answer section's records.
    pub fn answers(&self) -> impl Iterator<Item = Result<WireRecord<'m>, WireError>> + 'm {
        self.records().take_while(|r| r.as_ref().map_or(true, |(section, _)| *section == 0)).map(|r| r.map(|(_, r)| r))
    }
}

/// A cursor over a message's records.
#[derive(Debug)]
pub struct Records<'m> {
    message: &'m [u8],
    pos: usize,
    left: [u16; 3],
    section: usize,
}

impl<'m> Iterator for Records<'m> {
    type Item = Result<(usize, WireRecord<'m>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.section < 3 && self.left[self.section] == 0 {
            self.section += 1;
        }
        if self.section == 3 {
            return None;
        }
        self.left[self.section] -= 1;
        let record = read_record(self.message, &mut self.pos);
        if record.is_err() {
            self.section = 3;
        }
        Some(record.map(|r| (self.section, r)))
    }
}

fn read_record<'m>(message: &'m [u8], pos: &mut usize) -> Result<WireRecord<'m>, WireError> {
    let at = *pos;
    let (owner, next) = Name::read_compressed(message, at).ok_or_else(|| malformed(at, "owner name"))?;
    let fixed = message.get(next..next + 10).ok_or_else(|| malformed(next, "record header"))?;
    let u16_at = |i: usize| u16::from_be_bytes([fixed[i], fixed[i + 1]]);
    let rtype = Rtype(u16_at(0));
    let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let (start, end) = (next + 10, next + 10 + usize::from(u16_at(8)));
    if end > message.len() {
        return Err(malformed(start, "RDATA runs past the message"));
    }
    let rdata = rdata_from_message(rtype, message, start, end).ok_or_else(|| malformed(start, "RDATA"))?;
    *pos = end;
    Ok(WireRecord { owner, rtype, class: u16_at(2), ttl, rdata })
}

/// The sections a response writes records into, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// The answer section.
    Answer,
    /// The authority section.
    Authority,
    /// The additional section.
    Additional,
}

/// A message being written: the header, the question, then records.
/// Owner names are compressed the two ways that pay in a transfer: an
/// owner equal to the record before's points to it, and any other owner
/// at or below the zone's apex points to the apex's name (the question's,
/// or the first owner that spells it out). RDATA goes as the zone holds
/// it. Only the first 16 KiB of a message can be pointed to (a pointer
/// has 14 bits).
#[derive(Debug)]
pub struct MessageWriter {
    buf: Vec<u8>,
    metadata: Metadata,
    counts: [u16; 3],
    section: Section,
    /// A question was written.
    question: bool,
    /// The apex's name, and where this message spells it out, once it
    /// does.
    apex: Option<(Vec<u8>, Option<u16>)>,
    /// The owner of the record before, and where it starts.
    last_owner: Option<(Vec<u8>, u16)>,
    /// The most bytes the message may have, and the size it is filled
    /// to: a record that would pass `fill` goes in the next message,
    /// unless it is the first record here.
    limit: usize,
    fill: usize,
}

/// The first byte a compression pointer cannot reach.
const POINTER_REACH: usize = 0x4000;

impl MessageWriter {
    /// A message with `metadata` and `question`, at most `limit` bytes.
    pub fn new(metadata: Metadata, question: Option<&Question>, limit: usize) -> MessageWriter {
        let mut writer = MessageWriter::continuing(metadata, None, limit);
        if let Some(q) = question {
            writer.buf.extend_from_slice(q.name.wire());
            writer.buf.extend_from_slice(&q.qtype.0.to_be_bytes());
            writer.buf.extend_from_slice(&q.qclass.to_be_bytes());
            writer.apex = Some((q.name.wire().to_vec(), Some(12)));
            writer.question = true;
        }
        writer
    }

    /// A message without a question (a later message of a transfer),
    /// whose owners at or below `apex` are compressed against it.
    pub fn continuing(metadata: Metadata, apex: Option<NameRef<'_>>, limit: usize) -> MessageWriter {
        let mut buf = Vec::with_capacity(limit.min(MAX_MESSAGE));
        buf.resize(12, 0);
        let apex = apex.map(|name| (name.wire().to_vec(), None));
        MessageWriter {
            buf,
            metadata,
            counts: [0; 3],
            section: Section::Answer,
            question: false,
            apex,
            last_owner: None,
            limit,
            fill: limit,
        }
    }

    /// The same message, filled to `fill` bytes rather than its limit.
    pub fn filled_to(mut self, fill: usize) -> MessageWriter {
        self.fill = fill.min(self.limit);
        self
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// No record written yet.
    pub fn is_empty(&self) -> bool {
        self.counts == [0; 3]
    }

    /// Records written in the answer section.
    pub fn answers(&self) -> u16 {
        self.counts[0]
    }

    /// Appends a record to `section` (sections in order): false, and
    /// nothing written, when it would pass the size limit.
    pub fn push(&mut self, section: Section, record: RecordRef<'_>, class: u16) -> bool {
        debug_assert!(section >= self.section, "sections are written in order");
        let mark = self.buf.len();
        let learned = self.write_owner(record.owner);
        self.buf.extend_from_slice(&record.rtype.0.to_be_bytes());
        self.buf.extend_from_slice(&class.to_be_bytes());
        self.buf.extend_from_slice(&record.ttl.to_be_bytes());
        let Ok(rdlen) = u16::try_from(record.rdata.len()) else {
            self.buf.truncate(mark);
            return false;
        };
        self.buf.extend_from_slice(&rdlen.to_be_bytes());
        self.buf.extend_from_slice(record.rdata);
        let index = section as usize;
        let over = self.buf.len() > self.limit || (self.buf.len() > self.fill && !self.is_empty());
        if over || self.counts[index] == u16::MAX {
            // Nothing of the record stays, nor anything pointing into it.
            self.buf.truncate(mark);
            return false;
        }
        self.remember(record.owner, learned);
        self.section = section;
        self.counts[index] += 1;
        true
    }

    /// Appends an OPT record offering `payload` bytes over UDP (RFC 6891),
    /// with the DO bit (RFC 3225) if `dnssec_ok`.
    pub fn push_edns(&mut self, payload: u16, dnssec_ok: bool) -> bool {
        let root = Name::root();
        let flags = if dnssec_ok { 0x8000 } else { 0 };
        let opt = RecordRef { owner: root.as_ref(), rtype: Rtype::OPT, ttl: flags, rdata: &[] };
        self.push(Section::Additional, opt, payload)
    }

    /// Writes the owner: a pointer to the record before's owner if it is
    /// the same (byte for byte), else its labels above the apex and a
    /// pointer to the apex's name, else all of it. What it wrote for
    /// later owners to point to is kept only once the record is in
    /// ([`MessageWriter::remember`]).
    fn write_owner(&mut self, owner: NameRef<'_>) -> Option<Spelled> {
        let wire = owner.wire();
        if let Some((last, at)) = &self.last_owner
            && last.as_slice() == wire
        {
            self.buf.extend_from_slice(&pointer(*at));
            return None;
        }
        let start = self.buf.len();
        let apex = self.apex.as_ref().and_then(|(apex, spelled)| Some((suffix_at(wire, apex)?, *spelled)));
        let apex_at = match apex {
            Some((at, Some(apex_at))) => {
                self.buf.extend_from_slice(&wire[..at]);
                self.buf.extend_from_slice(&pointer(apex_at));
                None
            }
            Some((at, None)) => {
                self.buf.extend_from_slice(wire);
                reachable(start + at)
            }
            None => {
                self.buf.extend_from_slice(wire);
                None
            }
        };
        Some(Spelled { owner_at: reachable(start), apex_at })
    }

    /// Keeps what an owner written into the message lets later owners
    /// point to.
    fn remember(&mut self, owner: NameRef<'_>, spelled: Option<Spelled>) {
        let Some(Spelled { owner_at, apex_at }) = spelled else { return };
        self.last_owner = owner_at.map(|at| (owner.wire().to_vec(), at));
        if let (Some((_, spelled)), Some(at)) = (&mut self.apex, apex_at) {
            *spelled = Some(at);
        }
    }

    /// The message's bytes, header counts filled in.
    pub fn finish(mut self) -> Vec<u8> {
        let queries = u16::from(self.question);
        let [answers, authorities, additionals] = self.counts;
        let header =
            Header { metadata: self.metadata, counts: HeaderCounts { queries, answers, authorities, additionals } };
        let mut head = Vec::with_capacity(12);
        let mut encoder = BinEncoder::new(&mut head);
        // Writing twelve bytes to a vector cannot fail.
        if header.emit(&mut encoder).is_ok() && head.len() == 12 {
            self.buf[..12].copy_from_slice(&head);
        }
        self.buf
    }
}

/// Reads one DNS message framed by its two-octet length (RFC 1035
/// §4.2.2); `None` at a clean end of the stream.
pub async fn read_framed(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut message = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).await?;
    Ok(Some(message))
}

/// Writes one DNS message with its two-octet length.
pub async fn write_framed(stream: &mut (impl AsyncWrite + Unpin), message: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| std::io::Error::other("DNS message over 65535 bytes"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// Sends `request` to `peer` over UDP and waits at most `timeout` for the
/// response with `id` (stray datagrams are skipped). A timeout is an
/// error of kind `TimedOut`. The source is the kernel's choice.
pub async fn udp_exchange(peer: SocketAddr, request: &[u8], id: u16, timeout: Duration) -> std::io::Result<Vec<u8>> {
    udp_exchange_from(peer, None, request, id, timeout).await.map(|(answer, _)| answer)
}

/// [`udp_exchange`] from `source` (None: the kernel's choice; an address
/// of the other family than `peer` is ignored); also returns the local
/// address the request left from.
pub async fn udp_exchange_from(
    peer: SocketAddr,
    source: Option<IpAddr>,
    request: &[u8],
    id: u16,
    timeout: Duration,
) -> std::io::Result<(Vec<u8>, SocketAddr)> {
    let source = source.filter(|ip| ip.is_ipv4() == peer.is_ipv4());
    let wildcard: IpAddr = if peer.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let from = |e: std::io::Error| match source {
        Some(ip) => std::io::Error::new(e.kind(), format!("from source address {ip}: {e}")),
        None => e,
    };
    let socket = UdpSocket::bind(SocketAddr::new(source.unwrap_or(wildcard), 0)).await.map_err(from)?;
    socket.connect(peer).await.map_err(from)?;
    let local = socket.local_addr()?;
    socket.send(request).await.map_err(from)?;
    let mut buf = vec![0u8; 65535];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let len = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await.map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer within {timeout:?}"))
        })??;
        if buf.get(..2) == Some(&id.to_be_bytes()[..]) && buf.get(2).is_some_and(|flags| flags & 0x80 != 0) {
            return Ok((buf[..len].to_vec(), local));
        }
    }
}

/// A message ID from the system's random source (a guessable ID makes
/// forging an answer easier).
pub fn random_id() -> u16 {
    let mut id = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id);
    u16::from_be_bytes(id)
}

/// Unix seconds now, as TSIG wants them.
pub fn unix_now() -> u64 {
    u64::try_from(crate::time::wall_clock()).unwrap_or(0)
}

/// The SOA serial in an SOA record's RDATA.
pub fn soa_serial(rdata: &[u8]) -> Option<u32> {
    crate::zone::dnssec::soa_fields(rdata).map(|(serial, _)| serial)
}

/// A compression pointer to `at`.
fn pointer(at: u16) -> [u8; 2] {
    (0xC000 | at).to_be_bytes()
}

/// `at`, if a pointer can reach it.
fn reachable(at: usize) -> Option<u16> {
    u16::try_from(at).ok().filter(|&at| usize::from(at) < POINTER_REACH)
}

/// Where an owner written out in full (or up to the apex) starts, and
/// where the apex's name starts if this owner spelled it out first.
#[derive(Debug, Clone, Copy)]
struct Spelled {
    owner_at: Option<u16>,
    apex_at: Option<u16>,
}

/// Where `suffix` begins in `wire` at a label boundary, if it ends it.
fn suffix_at(wire: &[u8], suffix: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at < wire.len() {
        if wire[at..] == *suffix {
            return Some(at);
        }
        at += 1 + usize::from(wire[at]);
    }
    None
}

#[cfg(test)]
mod tests;
