//! One request and its answer, as a client: UDP first, TCP when the
//! answer is truncated (RFC 7766; one truncated over TCP too is an
//! error), the answer checked to be the one to the request (ID, QR)
//! and, when the request was TSIG-signed, its TSIG verified. The RCODE
//! is the caller's to judge. Used for the SOA query of a transfer in,
//! the DS checks at the parent and the updates of the parent's DS.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{MessageType, Metadata, OpCode};
use tokio::net::{TcpSocket, TcpStream};

use super::tsig::{RequestMac, ResponseVerifier, TsigError, TsigKey, sign_request};
use super::wire::{
    MAX_MESSAGE, MessageWriter, ParsedMessage, Question, WireError, random_id, read_framed, udp_exchange_from,
    unix_now, write_framed,
};
use crate::zone::Name;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The network.
    #[error("{server}")]
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
    /// The answer does not read, is not to the request, or its TSIG
    /// does not verify; or the request could not be signed.
    #[error("{server}: {problem}")]
    Answer {
        /// The server asked.
        server: SocketAddr,
        /// What is wrong.
        problem: AnswerProblem,
    },
}

/// What is wrong with an answer (or with signing its request). A value
/// shown in its error's message, not a cause: each says what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerProblem {
    /// The answer is not a DNS message signet can read.
    #[error("the answer does not read: {0}")]
    Malformed(WireError),
    /// Another ID, or not a response.
    #[error("an answer that is not to the request sent (ID or QR)")]
    NotOurs,
    /// TCP closed before a whole answer.
    #[error("the connection closed before the answer")]
    ClosedEarly,
    /// TC set over TCP: the answer cannot be completed.
    #[error("a truncated answer (TC set) over TCP")]
    TruncatedOverTcp,
    /// The answer's TSIG does not verify (or it is unsigned).
    #[error("{0}")]
    Tsig(TsigFailure),
    /// The request could not be signed with the key given.
    #[error("cannot sign the request with TSIG key {key}: {error}")]
    Unsignable {
        /// The key.
        key: Name,
        /// Why not.
        error: TsigError,
    },
}

impl AnswerProblem {
    /// A TSIG problem (the answer's or the request's)?
    pub fn is_tsig(&self) -> bool {
        matches!(self, AnswerProblem::Tsig(_) | AnswerProblem::Unsignable { .. })
    }
}

/// An answer whose TSIG does not verify: the verifier's error, kept typed
/// (BADSIG, BADTIME, BADKEY stay distinguishable), and the answer's
/// RCODE, which says why a server answered unsigned (a zone it does not
/// have: NOTAUTH).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigFailure {
    /// What the verifier found.
    pub error: TsigError,
    /// The answer's RCODE.
    pub rcode: u16,
}

impl std::fmt::Display for TsigFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.error {
            TsigError::Unsigned => write!(f, "{} (it says {})", self.error, rcode_name(self.rcode)),
            _ => write!(f, "{}", self.error),
        }
    }
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
    unsigned_by: Option<AnswerProblem>,
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
                Err(error) => unsigned_by = Some(AnswerProblem::Unsignable { key: key.name().clone(), error }),
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
        if let Some(problem) = &self.unsigned_by {
            return Err(ClientError::Answer { server, problem: problem.clone() });
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
    let truncated = parse(server, &answer)?.header.truncation;
    if !truncated {
        check(server, request, &answer)?;
        return Ok(answer);
    }
    // A truncated answer is never taken as complete: TCP, and an answer
    // truncated there too cannot be completed (RFC 7766 §5).
    let answer = tcp_exchange_from(server, source, request, timeout).await?;
    check(server, request, &answer)?;
    if parse(server, &answer)?.header.truncation {
        return Err(answer_error(server, AnswerProblem::TruncatedOverTcp));
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
            None => Err(answer_error(server, AnswerProblem::ClosedEarly)),
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
    let parsed = parse(server, answer)?;
    let header = &parsed.header;
    if header.id != request.id || header.message_type != MessageType::Response {
        return Err(answer_error(server, AnswerProblem::NotOurs));
    }
    if let Some(mut verifier) = request.verifier(server)? {
        verifier.verify(answer, unix_now()).map_err(|error| {
            answer_error(server, AnswerProblem::Tsig(TsigFailure { error, rcode: u16::from(header.response_code) }))
        })?;
    }
    Ok(())
}

fn parse(server: SocketAddr, answer: &[u8]) -> Result<ParsedMessage<'_>, ClientError> {
    ParsedMessage::parse(answer).map_err(|e| answer_error(server, AnswerProblem::Malformed(e)))
}

/// The mnemonic of an RCODE (RFC 1035, RFC 2136), `RCODE n` for another.
pub fn rcode_name(code: u16) -> String {
    const NAMES: [&str; 11] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
        "NOTZONE",
    ];
    NAMES.get(usize::from(code)).map_or_else(|| format!("RCODE {code}"), |name| (*name).to_owned())
}

fn answer_error(server: SocketAddr, problem: AnswerProblem) -> ClientError {
    ClientError::Answer { server, problem }
}
