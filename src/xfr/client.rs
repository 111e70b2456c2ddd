//! One request and its answer, as a client: UDP first, TCP when the
//! answer is truncated (RFC 7766; one truncated over TCP too is an
//! error), the answer checked to be the one to the request (ID, QR)
//! and, when the request was TSIG-signed, its TSIG verified. The RCODE
//! is the caller's to judge. Used for the SOA query of a transfer in,
//! the DS checks at the parent and the updates of the parent's DS.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Header, MessageType, Metadata, OpCode};
use tokio::net::{TcpSocket, TcpStream};

use super::tsig::{RequestMac, ResponseVerifier, TsigError, TsigKey, sign_request};
use super::wire::{
    MAX_MESSAGE, MessageWriter, ParsedMessage, Question, random_id, read_framed, udp_exchange_from, unix_now,
    write_framed,
};

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The network.
    #[error("{server}: {source}")]
    Io {
        /// The server asked.
        server: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("{server}: no answer within {} s", timeout.as_secs())]
    Timeout {
        /// The server asked.
        server: SocketAddr,
        /// How long it had.
        timeout: Duration,
    },
    /// The answer does not read, or is not to the request.
    #[error("{server}: {what}")]
    Answer {
        /// The server asked.
        server: SocketAddr,
        /// What is wrong with it.
        what: String,
    },
    /// The request could not be signed, or the answer's TSIG does not
    /// verify (`what` says TSIG).
    #[error("{server}: {what}")]
    Tsig {
        /// The server asked.
        server: SocketAddr,
        /// What.
        what: String,
    },
}

/// A request, written and (with a key) signed.
#[derive(Debug)]
pub struct Request {
    /// The message as sent.
    pub bytes: Vec<u8>,
    id: u16,
    /// The key and the request's MAC, when signed.
    signed: Option<(Arc<TsigKey>, RequestMac)>,
    /// A key was given but the request could not be signed.
    unsigned_by: Option<String>,
}

impl Request {
    /// The header of a new request: a fresh random ID, `opcode`, nothing
    /// else set (the caller sets RD, AD, …).
    pub fn metadata(opcode: OpCode) -> Metadata {
        Metadata::new(random_id(), MessageType::Query, opcode)
    }

    /// A request with `metadata` and `question`; `fill` writes its
    /// records; `key` signs it.
    pub fn new(
        metadata: Metadata,
        question: &Question,
        fill: impl FnOnce(&mut MessageWriter),
        key: Option<&Arc<TsigKey>>,
    ) -> Request {
        let id = metadata.id;
        let mut writer = MessageWriter::new(metadata, Some(question), MAX_MESSAGE);
        fill(&mut writer);
        let mut bytes = writer.finish();
        let (mut signed, mut unsigned_by) = (None, None);
        if let Some(key) = key {
            match sign_request(&mut bytes, key, unix_now()) {
                Ok(mac) => signed = Some((Arc::clone(key), mac)),
                Err(e) => unsigned_by = Some(format!("cannot sign the request with TSIG key {}: {e}", key.name())),
            }
        }
        Request { bytes, id, signed, unsigned_by }
    }

    /// The message ID.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The verifier of the answer's TSIG (`None` for an unsigned
    /// request); an error when a key was given and could not sign.
    pub fn verifier(&self, server: SocketAddr) -> Result<Option<ResponseVerifier>, ClientError> {
        if let Some(what) = &self.unsigned_by {
            return Err(ClientError::Tsig { server, what: what.clone() });
        }
        Ok(self.signed.as_ref().map(|(key, mac)| ResponseVerifier::new(Arc::clone(key), mac)))
    }
}

/// Sends `request` to `server` over UDP, then over TCP if the answer is
/// truncated; returns the answer once it is known to be the answer to
/// the request and, for a signed request, its TSIG verifies. An answer
/// truncated over TCP too is an error: it is never taken as complete.
/// The source is the kernel's choice.
pub async fn exchange(server: SocketAddr, request: &Request, timeout: Duration) -> Result<Vec<u8>, ClientError> {
    exchange_from(server, None, request, timeout).await
}

/// [`exchange`] from the address `source` (None: the kernel's choice).
pub async fn exchange_from(
    server: SocketAddr,
    source: Option<IpAddr>,
    request: &Request,
    timeout: Duration,
) -> Result<Vec<u8>, ClientError> {
    request.verifier(server)?;
    let io = |source| ClientError::Io { server, source };
    let answer = match udp_exchange_from(server, source, &request.bytes, request.id, timeout).await {
        Ok((answer, _)) => answer,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(ClientError::Timeout { server, timeout }),
        Err(e) => return Err(io(e)),
    };
    let truncated = ParsedMessage::parse(&answer).map_err(|e| answer_error(server, e))?.header.truncation;
    if !truncated {
        check(server, request, &answer)?;
        return Ok(answer);
    }
    // A truncated answer is never taken as complete: TCP, and an answer
    // truncated there too cannot be completed (RFC 7766 §5).
    let answer = tcp_exchange_from(server, source, request, timeout).await?;
    check(server, request, &answer)?;
    if ParsedMessage::parse(&answer).map_err(|e| answer_error(server, e))?.header.truncation {
        return Err(answer_error(server, "a truncated answer (TC set) over TCP"));
    }
    Ok(answer)
}

/// Sends `request` over TCP and reads one answer.
pub async fn tcp_exchange(server: SocketAddr, request: &Request, timeout: Duration) -> Result<Vec<u8>, ClientError> {
    tcp_exchange_from(server, None, request, timeout).await
}

/// [`tcp_exchange`] from the address `source` (None: the kernel's choice).
pub async fn tcp_exchange_from(
    server: SocketAddr,
    source: Option<IpAddr>,
    request: &Request,
    timeout: Duration,
) -> Result<Vec<u8>, ClientError> {
    let io = |source| ClientError::Io { server, source };
    let exchange = async {
        let mut stream = connect_from(server, source).await.map_err(io)?;
        write_framed(&mut stream, &request.bytes).await.map_err(io)?;
        match read_framed(&mut stream).await.map_err(io)? {
            Some(answer) => Ok(answer),
            None => Err(answer_error(server, "the connection closed before the answer")),
        }
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| ClientError::Timeout { server, timeout })?
}

/// A TCP connection to `server` from the address `source` (None, or an
/// address of the other family: the kernel's choice), bound before it
/// connects; an error names the source.
pub async fn connect_from(server: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = source.filter(|ip| ip.is_ipv4() == server.is_ipv4()) else {
        return TcpStream::connect(server).await;
    };
    let from = |e: std::io::Error| std::io::Error::new(e.kind(), format!("from source address {ip}: {e}"));
    let socket = if server.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }?;
    socket.bind(SocketAddr::new(ip, 0)).map_err(from)?;
    socket.connect(server).await.map_err(from)
}

/// Is `answer` the answer to `request` (ID, QR), with a TSIG that
/// verifies if the request was signed?
fn check(server: SocketAddr, request: &Request, answer: &[u8]) -> Result<(), ClientError> {
    let parsed = ParsedMessage::parse(answer).map_err(|e| answer_error(server, e))?;
    let header = &parsed.header;
    if header.id != request.id || header.message_type != MessageType::Response {
        return Err(answer_error(server, "an answer that is not to the request sent (ID or QR)"));
    }
    if let Some(mut verifier) = request.verifier(server)? {
        verifier
            .verify(answer, unix_now())
            .map_err(|e| ClientError::Tsig { server, what: tsig_failure(&e, header) })?;
    }
    Ok(())
}

/// A TSIG failure in words; for an unsigned answer, what its RCODE says
/// (a server answers a zone it does not have with an unsigned NOTAUTH).
fn tsig_failure(error: &TsigError, header: &Header) -> String {
    match error {
        TsigError::Unsigned => format!("{error} (it says {})", rcode_name(u16::from(header.response_code))),
        _ => error.to_string(),
    }
}

/// The mnemonic of an RCODE (RFC 1035, RFC 2136), `RCODE n` for another.
pub fn rcode_name(code: u16) -> String {
    const NAMES: [&str; 11] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
        "NOTZONE",
    ];
    NAMES.get(usize::from(code)).map_or_else(|| format!("RCODE {code}"), |name| (*name).to_owned())
}

fn answer_error(server: SocketAddr, what: impl ToString) -> ClientError {
    ClientError::Answer { server, what: what.to_string() }
}
