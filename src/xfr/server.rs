//! The DNS listener of `signet serve --listen`: what a hidden primary
//! answers, and nothing more.
//!
//! - QUERY for a zone's SOA (UDP, TCP), AXFR (TCP), IXFR (TCP; over UDP
//!   the SOA alone, which sends the client to TCP, RFC 1995 §2), from a
//!   client the zone's access list allows: answered from the version
//!   served.
//! - NOTIFY for a zone, from one of its primaries: acknowledged, and the
//!   zone's transfer in woken.
//! - Any other query, or one the access list does not allow: REFUSED;
//!   another opcode: NOTIMP; a message that does not read, more than one
//!   question (RFC 9619), or an IXFR without the zone's SOA: FORMERR; an
//!   EDNS version above 0: BADVERS (RFC 6891 §6.1.3).
//! - EDNS: the DO bit is copied into the answer (RFC 3225 §3); an answer
//!   that must leave out a record (an RRSIG) to fit is truncated: TC
//!   (RFC 4035 §3.1.1).
//! - TCP (README, "TCP connections", says why): at most
//!   [`MAX_CONNECTIONS`] at once, of which [`RESERVED`] only for the
//!   addresses of the zones' remotes; [`PER_STRANGER`] per other address;
//!   a connection is closed after any answer that is not NOERROR, and
//!   after [`TCP_IDLE`] without a request.
//!
//! TSIG is checked before anything else: a bad signature is answered
//! NOTAUTH with the TSIG error (RFC 8945 §5.2), whatever was asked; a
//! signed request gets signed answers, every message of a transfer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::RData;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

use super::catalog::{Catalog, ServedVersion, ZoneView, client_ip};
use super::outgoing::{AnswerStream, IxfrPlan, apex_soa, axfr_records, class_of, ixfr_records, plan_ixfr};
use super::store::{DiffSource, TransferEvent, TransferLog, TransferOut};
use super::tsig::{RequestRefusal, ResponseSigner, SignedRequest, refusal_tsig, verify_request};
use super::wire::{CLASS_IN, MessageWriter, ParsedMessage, Question, Section, UDP_EDNS, UDP_PLAIN};
use super::wire::{read_framed, unix_now};
use crate::chain::Chain;
use crate::time::wall_clock;
use crate::zone::{NameRef, RecordRef, Rtype};

/// How long a TCP connection may sit idle between messages.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// How long a client may take to read one message of an answer.
const TCP_WRITE: Duration = Duration::from_secs(30);
/// TCP connections served at once; more are closed when accepted.
const MAX_CONNECTIONS: usize = 64;
/// Of those, the connections only the addresses of the zones' remotes
/// (primaries, secondaries, access-list networks) may take.
const RESERVED: usize = 16;
/// TCP connections at once from one address that is no zone's remote.
const PER_STRANGER: usize = 4;
/// TCP connections at once from one address of a zone's remote.
const PER_PEER: usize = 16;
/// The extended RCODE BADVERS (RFC 6891 §9): 16, of which the OPT record
/// carries the upper eight bits.
const BADVERS_HIGH: u32 = 16 >> 4;

/// What the listener needs.
#[derive(Debug)]
pub struct ServerContext {
    /// The differences between published versions, for IXFR.
    pub journal: Arc<dyn DiffSource>,
    /// Where transfers out are recorded.
    pub log: Arc<dyn TransferLog>,
    /// The zones served.
    pub catalog: Arc<Catalog>,
}

/// Writes one framed message, giving up on a client that does not read.
async fn send_framed(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    match tokio::time::timeout(TCP_WRITE, super::wire::write_framed(stream, message)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading")),
    }
}

/// The sockets of one `--listen` address.
#[derive(Debug)]
pub struct Listener {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl Listener {
    /// Binds UDP and TCP on `addr`.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Listener> {
        let udp = UdpSocket::bind(addr).await?;
        // Port 0 asks for any port: TCP takes the one UDP got.
        let tcp = TcpListener::bind(udp.local_addr()?).await?;
        Ok(Listener { udp, tcp })
    }

    /// The address bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Answers until `shutdown` turns true: UDP here, TCP in a task of
    /// its own.
    pub async fn run(self, context: Arc<ServerContext>, mut shutdown: watch::Receiver<bool>) {
        tokio::spawn(accept_tcp(self.tcp, Arc::clone(&context), shutdown.clone()));
        let udp = Arc::new(self.udp);
        let mut buf = vec![0u8; 65535];
        loop {
            tokio::select! {
                received = udp.recv_from(&mut buf) => match received {
                    Ok((len, peer)) => {
                        let request = buf[..len].to_vec();
                        let (udp, context) = (Arc::clone(&udp), Arc::clone(&context));
                        tokio::spawn(async move {
                            if let Some(reply) = answer_udp(&context, &request, peer).await {
                                let _ = udp.send_to(&reply, peer).await;
                            }
                        });
                    }
                    Err(e) => tracing::debug!("UDP receive: {e}"),
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The TCP connections open, by kind and address.
#[derive(Debug, Default)]
struct Slots {
    total: usize,
    strangers: usize,
    per_address: std::collections::HashMap<std::net::IpAddr, usize>,
}

/// A connection's place in [`Slots`], given back when dropped.
struct Slot {
    slots: Arc<std::sync::Mutex<Slots>>,
    ip: std::net::IpAddr,
    stranger: bool,
}

impl Slot {
    /// A place for a connection from `ip`, or why there is none.
    fn take(slots: &Arc<std::sync::Mutex<Slots>>, ip: std::net::IpAddr, stranger: bool) -> Result<Slot, &'static str> {
        let mut open = slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let from_ip = open.per_address.get(&ip).copied().unwrap_or(0);
        if open.total >= MAX_CONNECTIONS {
            return Err("all TCP connections are taken");
        }
        if stranger && open.strangers >= MAX_CONNECTIONS - RESERVED {
            return Err("the TCP connections left are reserved for the zones' remotes");
        }
        if from_ip >= if stranger { PER_STRANGER } else { PER_PEER } {
            return Err("too many TCP connections from this address");
        }
        open.total += 1;
        open.strangers += usize::from(stranger);
        *open.per_address.entry(ip).or_default() += 1;
        Ok(Slot { slots: Arc::clone(slots), ip, stranger })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        open.total -= 1;
        open.strangers -= usize::from(self.stranger);
        if let Some(count) = open.per_address.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.per_address.remove(&self.ip);
            }
        }
    }
}

/// Accepts TCP connections: a connection with no place (module comment)
/// is closed at once, so that strangers cannot keep the zones' remotes
/// out.
async fn accept_tcp(tcp: TcpListener, context: Arc<ServerContext>, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(std::sync::Mutex::new(Slots::default()));
    loop {
        let accepted = tokio::select! {
            accepted = tcp.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let ip = peer.ip().to_canonical();
                let stranger = !context.catalog.is_remote(ip);
                let slot = match Slot::take(&slots, ip, stranger) {
                    Ok(slot) => slot,
                    Err(why) => {
                        tracing::debug!(client = %client_ip(peer), "TCP connection closed: {why}");
                        continue;
                    }
                };
                let context = Arc::clone(&context);
                tokio::spawn(async move {
                    serve_connection(context, stream, peer).await;
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!("TCP accept: {e}");
                // Out of file descriptors, say: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A request read and its TSIG checked.
struct Request {
    message: Message,
    question: Option<Question>,
    /// The first SOA of the authority section (an IXFR's): owner, serial.
    authority_soa: Option<(crate::zone::Name, Option<u32>)>,
    peer: SocketAddr,
    signed: Option<SignedRequest>,
}

impl Request {
    fn metadata(&self, rcode: ResponseCode, authoritative: bool) -> Metadata {
        let mut metadata = Metadata::response_from_request(&self.message.metadata);
        metadata.response_code = rcode;
        metadata.authoritative = authoritative;
        metadata
    }

    fn key_name(&self) -> Option<crate::zone::NameRef<'_>> {
        self.signed.as_ref().map(|signed| signed.key_name().as_ref())
    }

    fn dnssec_ok(&self) -> bool {
        self.message.edns.as_ref().is_some_and(|edns| edns.flags().dnssec_ok)
    }

    /// One answer message with `records`, signed if the request was. The
    /// records that do not fit in `limit` (less the OPT and TSIG records)
    /// are left out and the answer truncated (TC).
    fn reply(&self, rcode: ResponseCode, authoritative: bool, records: &[RecordRef<'_>], limit: usize) -> Vec<u8> {
        self.reply_opt(rcode, authoritative, records, limit, 0)
    }

    /// [`Request::reply`], with `extended_rcode` in the OPT record.
    fn reply_opt(
        &self,
        rcode: ResponseCode,
        authoritative: bool,
        records: &[RecordRef<'_>],
        limit: usize,
        extended_rcode: u32,
    ) -> Vec<u8> {
        let mut signer = self.signed.as_ref().map(ResponseSigner::new);
        let opt_room = if self.message.edns.is_some() { OPT_LEN } else { 0 };
        let tsig_room = signer.as_ref().map_or(0, ResponseSigner::room);
        let room = limit.saturating_sub(opt_room + tsig_room).max(HEADER_LEN);
        let mut writer = MessageWriter::new(self.metadata(rcode, authoritative), self.question.as_ref(), room);
        let mut truncated = false;
        for record in records {
            if !writer.push(Section::Answer, *record, CLASS_IN) {
                truncated = true;
                break;
            }
        }
        let mut bytes = writer.finish();
        if truncated && bytes.len() > 2 {
            bytes[2] |= 0x02;
        }
        if self.message.edns.is_some() {
            // The OPT record, after the records were cut to leave it room:
            // the payload signet takes, the extended RCODE, version 0,
            // and DO as the request had it (RFC 3225 §3).
            let ttl = (extended_rcode << 24) | if self.dnssec_ok() { 0x8000 } else { 0 };
            let root = crate::zone::Name::root();
            let opt = RecordRef { owner: root.as_ref(), rtype: Rtype::OPT, ttl, rdata: &[] };
            append_additional(&mut bytes, opt, UDP_EDNS);
        }
        if let Some(signer) = signer.as_mut() {
            sign(signer, &mut bytes);
        }
        bytes
    }

    fn zone_name(&self) -> String {
        self.question.as_ref().map(|q| q.name.to_string()).unwrap_or_default()
    }
}

/// The length of an OPT record without options.
const OPT_LEN: usize = 11;
/// The length of a DNS header.
const HEADER_LEN: usize = 12;

/// Appends `record` (root owner, no compression) to the additional
/// section of a finished message, and counts it in ARCOUNT.
fn append_additional(bytes: &mut Vec<u8>, record: RecordRef<'_>, class: u16) {
    let Some(count) = bytes.get(10..12).map(|c| u16::from_be_bytes([c[0], c[1]])) else { return };
    let Ok(rdlength) = u16::try_from(record.rdata.len()) else { return };
    bytes.extend_from_slice(record.owner.wire());
    bytes.extend_from_slice(&record.rtype.0.to_be_bytes());
    bytes.extend_from_slice(&class.to_be_bytes());
    bytes.extend_from_slice(&record.ttl.to_be_bytes());
    bytes.extend_from_slice(&rdlength.to_be_bytes());
    bytes.extend_from_slice(record.rdata);
    bytes[10..12].copy_from_slice(&count.saturating_add(1).to_be_bytes());
}

/// FORMERR for a request whose header reads and nothing else: its ID
/// and opcode, no question.
fn formerr_from_header(bytes: &[u8]) -> Option<Vec<u8>> {
    let header = bytes.get(..HEADER_LEN)?;
    // A response (QR) is never answered.
    if header[2] & 0x80 != 0 {
        return None;
    }
    let mut answer = vec![0u8; HEADER_LEN];
    answer[..2].copy_from_slice(&header[..2]);
    // QR, the opcode as sent, RD as sent; RCODE 1.
    answer[2] = 0x80 | (header[2] & 0x78) | (header[2] & 0x01);
    answer[3] = 1;
    Some(answer)
}

fn sign(signer: &mut ResponseSigner, bytes: &mut Vec<u8>) {
    if let Err(e) = signer.sign(bytes, unix_now()) {
        tracing::error!("cannot TSIG-sign a response: {e}");
    }
}

/// What reading a request gave.
enum Read {
    Request(Box<Request>),
    Answer(Vec<u8>),
    Drop,
}

/// Reads a request and checks its TSIG: a request to handle, or the
/// answer it already has (FORMERR, NOTAUTH), or nothing (a response, or
/// bytes too short to answer).
fn read_request(context: &ServerContext, bytes: &[u8], peer: SocketAddr) -> Read {
    let Ok(parsed) = ParsedMessage::parse(bytes) else {
        return formerr_from_header(bytes).map_or(Read::Drop, Read::Answer);
    };
    if parsed.header.message_type == MessageType::Response {
        return Read::Drop;
    }
    let question = parsed.question.clone();
    let formerr = || {
        let mut metadata = Metadata::response_from_request(&parsed.header.metadata);
        metadata.response_code = ResponseCode::FormErr;
        Read::Answer(MessageWriter::new(metadata, question.as_ref(), UDP_PLAIN).finish())
    };
    // One question at most (RFC 9619).
    if parsed.header.counts.queries > 1 {
        tracing::debug!(client = %client_ip(peer), "FORMERR: {} questions", parsed.header.counts.queries);
        return formerr();
    }
    let mut authority_soa = None;
    for record in parsed.records() {
        match record {
            Ok((1, record)) if record.rtype == Rtype::SOA => {
                authority_soa = Some((record.owner, super::wire::soa_serial(&record.rdata)));
                break;
            }
            Ok(_) => {}
            Err(_) => return formerr(),
        }
    }
    let message = match Message::from_vec(bytes) {
        Ok(message) => message,
        Err(_) => return formerr(),
    };
    let signed = match verify_request(bytes, |name| context.catalog.key(name.as_ref()), unix_now()) {
        Ok(signed) => signed,
        Err(refusal) => return Read::Answer(refuse_tsig(&message, question.as_ref(), &refusal, peer)),
    };
    Read::Request(Box::new(Request { message, question, authority_soa, peer, signed }))
}

fn refuse_tsig(message: &Message, question: Option<&Question>, refusal: &RequestRefusal, peer: SocketAddr) -> Vec<u8> {
    tracing::warn!(client = %client_ip(peer), zone = %question.map(|q| q.name.to_string()).unwrap_or_default(), "request refused: {refusal}");
    let mut metadata = Metadata::response_from_request(&message.metadata);
    metadata.response_code = refusal.rcode();
    let mut bytes = MessageWriter::new(metadata, question, UDP_PLAIN).finish();
    if let Err(e) = refusal_tsig(&mut bytes, refusal, unix_now()) {
        tracing::error!("cannot add the TSIG error record: {e}");
    }
    bytes
}

/// What a request asks of a zone, once allowed.
enum Asked {
    Soa,
    Axfr,
    Ixfr(u32),
    Notify(Option<u32>),
}

/// Decides a request: what it asks and of which zone, or the answer it
/// gets straight away.
fn decide(context: &ServerContext, request: &Request) -> Result<(Asked, ZoneView), Vec<u8>> {
    if let Some(version) = request.message.edns.as_ref().map(|edns| edns.version()).filter(|&v| v > 0) {
        tracing::debug!(client = %client_ip(request.peer), version, "BADVERS: EDNS version above 0");
        return Err(request.reply_opt(ResponseCode::NoError, false, &[], UDP_PLAIN, BADVERS_HIGH));
    }
    let opcode = request.message.metadata.op_code;
    if !matches!(opcode, OpCode::Query | OpCode::Notify) {
        return Err(request.reply(ResponseCode::NotImp, false, &[], UDP_PLAIN));
    }
    let refused = || request.reply(ResponseCode::Refused, false, &[], UDP_PLAIN);
    let Some(question) = request.question.as_ref().filter(|q| q.qclass == CLASS_IN) else { return Err(refused()) };
    let Some(zone) = context.catalog.zone(question.name.as_ref()) else {
        tracing::debug!(client = %client_ip(request.peer), zone = %question.name, "REFUSED: not a zone served here");
        return Err(refused());
    };
    let ip = request.peer.ip().to_canonical();
    if opcode == OpCode::Notify {
        if !zone.remotes.primary_at(ip, request.key_name()) {
            tracing::warn!(client = %client_ip(request.peer), zone = %question.name, "REFUSED NOTIFY: not from one of the zone's primaries (with its key)");
            return Err(refused());
        }
        return Ok((Asked::Notify(soa_serial_in(&request.message.answers)), zone));
    }
    let asked = match question.qtype {
        Rtype::SOA => Asked::Soa,
        Rtype::AXFR => Asked::Axfr,
        // The client's SOA, of the zone asked for (RFC 1995 §3).
        Rtype::IXFR => match &request.authority_soa {
            Some((owner, Some(serial))) if owner.as_ref().eq_ignore_case(question.name.as_ref()) => {
                Asked::Ixfr(*serial)
            }
            _ => {
                tracing::debug!(client = %client_ip(request.peer), zone = %question.name, "FORMERR: an IXFR without the zone's SOA");
                return Err(request.reply(ResponseCode::FormErr, false, &[], UDP_PLAIN));
            }
        },
        _ => return Err(refused()),
    };
    if !zone.remotes.allows(ip, request.key_name()) {
        let key = request.key_name().map(|k| format!(" with key {k}")).unwrap_or_default();
        tracing::warn!(client = %client_ip(request.peer), zone = %question.name, qtype = %question.qtype,
            "REFUSED: the client{key} is not in the zone's access list");
        return Err(refused());
    }
    Ok((asked, zone))
}

fn soa_serial_in(records: &[hickory_proto::rr::Record]) -> Option<u32> {
    records.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// The version to answer from, or SERVFAIL: nothing published yet.
fn served<'z>(request: &Request, zone: &'z ZoneView) -> Result<&'z Arc<ServedVersion>, Vec<u8>> {
    zone.version.as_ref().ok_or_else(|| {
        tracing::info!(zone = %request.zone_name(), "SERVFAIL: no version published yet");
        request.reply(ResponseCode::ServFail, false, &[], UDP_PLAIN)
    })
}

/// The SOA, with its signatures when the client asked for DNSSEC.
fn soa_answer(request: &Request, version: &ServedVersion, limit: usize) -> Vec<u8> {
    let zone = &version.zone;
    let mut records: Vec<RecordRef<'_>> = apex_soa(zone).into_iter().collect();
    if request.dnssec_ok()
        && let Some(rrsigs) = zone.node(zone.origin()).and_then(|node| node.rrset(Rtype::RRSIG))
    {
        let covers_soa = |r: &RecordRef<'_>| r.rdata.get(..2) == Some(&Rtype::SOA.0.to_be_bytes()[..]);
        records.extend(rrsigs.records().filter(covers_soa));
    }
    request.reply(ResponseCode::NoError, true, &records, limit)
}

fn notify_ack(context: &ServerContext, request: &Request, serial: Option<u32>) -> Vec<u8> {
    let name = request.question.as_ref().map(|q| q.name.as_ref());
    let woken = name.is_some_and(|name| context.catalog.wake_inbound(name, serial));
    tracing::info!(client = %client_ip(request.peer), zone = %request.zone_name(), serial, woken, "NOTIFY from the primary");
    request.reply(ResponseCode::NoError, true, &[], UDP_PLAIN)
}

async fn answer_udp(context: &ServerContext, bytes: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
    let request = match read_request(context, bytes, peer) {
        Read::Request(request) => request,
        Read::Answer(answer) => return Some(answer),
        Read::Drop => return None,
    };
    let limit = request.message.edns.as_ref().map_or(UDP_PLAIN, |e| usize::from(e.max_payload().clamp(512, UDP_EDNS)));
    let (asked, zone) = match decide(context, &request) {
        Ok(decided) => decided,
        Err(answer) => return Some(answer),
    };
    Some(match asked {
        Asked::Notify(serial) => notify_ack(context, &request, serial),
        // AXFR is a TCP affair (RFC 5936 §4.2).
        Asked::Axfr => request.reply(ResponseCode::Refused, false, &[], UDP_PLAIN),
        // The SOA alone: up to date, or "come back over TCP".
        Asked::Soa | Asked::Ixfr(_) => match served(&request, &zone) {
            Ok(version) => soa_answer(&request, version, limit),
            Err(answer) => answer,
        },
    })
}

async fn serve_connection(context: Arc<ServerContext>, mut stream: TcpStream, peer: SocketAddr) {
    loop {
        let bytes = match tokio::time::timeout(TCP_IDLE, read_framed(&mut stream)).await {
            Ok(Ok(Some(bytes))) => bytes,
            _ => return,
        };
        match answer_tcp(&context, &bytes, peer, &mut stream).await {
            Ok(Next::Continue) => {}
            // Refused, or not understood: the client has no more to ask
            // on this connection, and its place goes to another.
            Ok(Next::Close) => return,
            Err(e) => {
                tracing::info!(client = %client_ip(peer), "TCP connection ended: {e}");
                return;
            }
        }
    }
}

/// Whether a TCP connection stays open after an answer.
enum Next {
    Continue,
    Close,
}

/// Sends a one-message answer: the connection stays open after NOERROR
/// only.
async fn send_answer(stream: &mut TcpStream, answer: &[u8]) -> std::io::Result<Next> {
    send_framed(stream, answer).await?;
    let noerror = answer.get(3).is_some_and(|flags| flags & 0x0F == 0) && !is_badvers(answer);
    Ok(if noerror { Next::Continue } else { Next::Close })
}

/// Does the answer carry BADVERS (NOERROR in the header, 1 in the OPT
/// record's extended RCODE)? Only answers signet wrote are looked at:
/// the OPT record, when there is one, is the last or before the TSIG.
fn is_badvers(answer: &[u8]) -> bool {
    ParsedMessage::parse(answer).is_ok_and(|parsed| {
        parsed.records().filter_map(Result::ok).any(|(_, r)| r.rtype == Rtype::OPT && r.ttl >> 24 != 0)
    })
}

async fn answer_tcp(
    context: &ServerContext,
    bytes: &[u8],
    peer: SocketAddr,
    stream: &mut TcpStream,
) -> std::io::Result<Next> {
    let request = match read_request(context, bytes, peer) {
        Read::Request(request) => request,
        Read::Answer(answer) => return send_answer(stream, &answer).await,
        Read::Drop => return Ok(Next::Close),
    };
    let (asked, zone) = match decide(context, &request) {
        Ok(decided) => decided,
        Err(answer) => return send_answer(stream, &answer).await,
    };
    let version = match (&asked, served(&request, &zone)) {
        (Asked::Notify(serial), _) => return send_answer(stream, &notify_ack(context, &request, *serial)).await,
        (_, Ok(version)) => Arc::clone(version),
        (_, Err(answer)) => return send_answer(stream, &answer).await,
    };
    let plan = match asked {
        Asked::Soa => return send_answer(stream, &soa_answer(&request, &version, u16::MAX.into())).await,
        Asked::Axfr => IxfrPlan::Whole,
        Asked::Ixfr(client) => {
            match plan_ixfr(context.journal.as_ref(), &version.zone.origin().to_owned(), &version, client).await {
                Ok(plan) => plan,
                Err(e) => {
                    tracing::error!(zone = %request.zone_name(), "IXFR answered SERVFAIL: {}", Chain(&e));
                    return send_answer(stream, &request.reply(ResponseCode::ServFail, false, &[], 512)).await;
                }
            }
        }
        Asked::Notify(_) => return Ok(Next::Continue),
    };
    transfer(context, &request, &version, plan, stream).await.map(|()| Next::Continue)
}

/// A transfer served, for the log and the database.
struct Served<'a> {
    /// The zone.
    origin: NameRef<'a>,
    serial: u32,
    /// The client's serial (IXFR).
    from: Option<u32>,
    plan: &'a IxfrPlan,
    records: u64,
    bytes: u64,
    started: Instant,
}

/// Streams a transfer's answer, signing every message if the request was
/// signed, and records it.
async fn transfer(
    context: &ServerContext,
    request: &Request,
    version: &ServedVersion,
    plan: IxfrPlan,
    stream: &mut TcpStream,
) -> std::io::Result<()> {
    let mut served = Served {
        origin: version.zone.origin(),
        serial: version.serial,
        from: request
            .question
            .as_ref()
            .filter(|q| q.qtype == Rtype::IXFR)
            .and(request.authority_soa.as_ref())
            .and_then(|(_, serial)| *serial),
        plan: &plan,
        records: 1,
        bytes: 0,
        started: Instant::now(),
    };
    let Some(question) = request.question.as_ref() else { return Ok(()) };
    if let IxfrPlan::UpToDate = plan {
        let answer = soa_answer(request, version, u16::MAX.into());
        served.bytes = answer.len() as u64;
        send_framed(stream, &answer).await?;
        record(context, request, &served).await;
        return Ok(());
    }
    let mut signer = request.signed.as_ref().map(ResponseSigner::new);
    let tsig_room = signer.as_ref().map_or(0, ResponseSigner::room);
    let mut answer = AnswerStream::new(request.metadata(ResponseCode::NoError, true), question, tsig_room);
    let class = class_of(&version.zone);
    let mut bytes = 0u64;
    let mut send = |mut message: Vec<u8>| {
        if let Some(signer) = signer.as_mut() {
            sign(signer, &mut message);
        }
        bytes += message.len() as u64;
        message
    };
    let records: Box<dyn Iterator<Item = RecordRef<'_>> + Send + '_> = match &plan {
        IxfrPlan::Differences(diffs) => Box::new(ixfr_records(&version.zone, diffs)),
        _ => Box::new(axfr_records(&version.zone)),
    };
    for record in records {
        match answer.push(record, class) {
            Ok(Some(full)) => send_framed(stream, &send(full)).await?,
            Ok(None) => {}
            // No closing SOA: the client sees a transfer cut short and
            // keeps what it had, rather than a zone with a record missing.
            Err(e) => {
                tracing::error!(zone = %request.zone_name(), client = %client_ip(request.peer), "{e}");
                return Err(std::io::Error::other(e));
            }
        }
    }
    served.records = answer.records;
    send_framed(stream, &send(answer.finish())).await?;
    served.bytes = bytes;
    record(context, request, &served).await;
    Ok(())
}

async fn record(context: &ServerContext, request: &Request, served: &Served<'_>) {
    let address = client_ip(request.peer);
    let Served { serial, from, records, bytes, .. } = *served;
    let kind = served.plan.kind();
    tracing::info!(zone = %request.zone_name(), client = %address, kind, serial, from, records, bytes,
        seconds = served.started.elapsed().as_secs_f64(), "transfer out");
    let done = TransferOut { address: &address, at: wall_clock(), serial, from, kind };
    let origin = served.origin.to_owned();
    if let Err(e) = context.log.record(&origin, TransferEvent::TransferOut(done)).await {
        tracing::error!(zone = %request.zone_name(), "cannot record the transfer out: {}", Chain(&e));
    }
}
