//! The network side of a transfer in: the primary's SOA serial asked
//! (UDP, then TCP), and the transfer itself over TCP, each message
//! checked (ID and QR, TSIG, RCODE) before its records go to the
//! collector (`xfr::collect`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{MessageType, OpCode, ResponseCode};
use tokio::net::TcpStream;

use super::{ANSWER_TIMEOUT, TransferError, TransferLimits};
use crate::xfr::client::{ClientError, Request, connect_from, exchange_from};
use crate::xfr::collect::{AnswerLimits, Asked, Collector, Received};
use crate::xfr::outgoing::apex_soa;
use crate::xfr::tsig::TsigKey;
use crate::xfr::wire::{
    CLASS_IN, MessageWriter, ParsedMessage, Question, Section, read_framed, soa_serial, unix_now, write_framed,
};
use crate::zone::{Name, Rtype, Zone};

/// Is the message the answer to the query: its ID, QR?
fn check_answer_to(primary: SocketAddr, parsed: &ParsedMessage<'_>, id: u16) -> Result<(), TransferError> {
    let header = &parsed.header;
    if header.id != id || header.message_type != MessageType::Response {
        return Err(TransferError::NotTheAnswer { primary });
    }
    Ok(())
}

/// The answer's RCODE: checked after its TSIG, so that a primary's TSIG
/// error (NOTAUTH with BADSIG, BADKEY, BADTIME) is reported as such.
fn check_rcode(primary: SocketAddr, parsed: &ParsedMessage<'_>) -> Result<(), TransferError> {
    match parsed.header.response_code {
        ResponseCode::NoError => Ok(()),
        rcode => Err(TransferError::Rcode { primary, rcode }),
    }
}

/// The primary's SOA serial: UDP, then TCP if the answer is truncated.
pub(super) async fn query_serial(
    primary: SocketAddr,
    source: Option<IpAddr>,
    key: Option<&Arc<TsigKey>>,
    origin: &Name,
) -> Result<u32, TransferError> {
    let question = Question { name: origin.clone(), qtype: Rtype::SOA, qclass: CLASS_IN };
    let request = Request::new(Request::metadata(OpCode::Query), &question, |_| {}, key);
    let answer = exchange_from(primary, source, &request, ANSWER_TIMEOUT).await?;
    let malformed = |source| TransferError::Malformed { primary, source };
    let parsed = ParsedMessage::parse(&answer).map_err(malformed)?;
    check_rcode(primary, &parsed)?;
    for record in parsed.answers() {
        let record = record.map_err(malformed)?;
        if record.rtype == Rtype::SOA && record.owner.as_ref().eq_ignore_case(origin.as_ref()) {
            return soa_serial(&record.rdata).ok_or(TransferError::MalformedSoa { primary });
        }
    }
    Err(TransferError::NoSoa { primary })
}

impl From<ClientError> for TransferError {
    fn from(error: ClientError) -> TransferError {
        match error {
            ClientError::Io { server, source } => TransferError::Io { primary: server, source },
            ClientError::Timeout { server, .. } => TransferError::Timeout { primary: server },
            ClientError::Answer { server, problem } => TransferError::Query { primary: server, problem },
        }
    }
}

async fn connect(primary: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, TransferError> {
    match tokio::time::timeout(ANSWER_TIMEOUT, connect_from(primary, source)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(TransferError::Io { primary, source }),
        Err(_) => Err(TransferError::Timeout { primary }),
    }
}

async fn next_message(primary: SocketAddr, stream: &mut TcpStream) -> Result<Vec<u8>, TransferError> {
    match tokio::time::timeout(ANSWER_TIMEOUT, read_framed(stream)).await {
        Ok(Ok(Some(message))) => Ok(message),
        Ok(Ok(None)) => Err(TransferError::Closed { primary }),
        Ok(Err(source)) => Err(TransferError::Io { primary, source }),
        Err(_) => Err(TransferError::Timeout { primary }),
    }
}

/// Transfers the zone from `primary`: IXFR from the copy's serial, or
/// AXFR without a copy. Every message is checked (ID, RCODE, TSIG).
pub(super) async fn fetch(
    primary: SocketAddr,
    source: Option<IpAddr>,
    key: Option<&Arc<TsigKey>>,
    origin: &Name,
    copy: Option<&Zone>,
    limits: &TransferLimits,
) -> Result<Received, TransferError> {
    let soa = copy.and_then(apex_soa);
    let qtype = if soa.is_some() { Rtype::IXFR } else { Rtype::AXFR };
    let question = Question { name: origin.clone(), qtype, qclass: CLASS_IN };
    let fill = |writer: &mut MessageWriter| {
        if let Some(soa) = soa {
            writer.push(Section::Authority, soa, CLASS_IN);
        }
    };
    let request = Request::new(Request::metadata(OpCode::Query), &question, fill, key);
    let id = request.id();
    let mut verifier = request.verifier(primary)?;
    let mut stream = connect(primary, source).await?;
    write_framed(&mut stream, &request.bytes).await.map_err(|source| TransferError::Io { primary, source })?;
    let asked = match soa {
        Some(soa) => Asked::Ixfr(soa_serial(soa.rdata)),
        None => Asked::Axfr,
    };
    let answer_limits = AnswerLimits { max_records: limits.max_records, max_bytes: limits.max_bytes };
    let mut collector = Collector::new(origin.clone(), asked, answer_limits);
    let collect = |source| TransferError::Collect { primary, source };
    let tsig = |source| TransferError::Tsig { primary, source };
    while !collector.done() {
        let message = next_message(primary, &mut stream).await?;
        collector.count_bytes(message.len()).map_err(collect)?;
        let parsed = ParsedMessage::parse(&message).map_err(|source| TransferError::Malformed { primary, source })?;
        check_answer_to(primary, &parsed, id)?;
        if let Some(verifier) = verifier.as_mut() {
            verifier.verify(&message, unix_now()).map_err(tsig)?;
        }
        check_rcode(primary, &parsed)?;
        collector.take_answers(&parsed).map_err(collect)?;
    }
    if let Some(verifier) = verifier {
        verifier.finish().map_err(tsig)?;
    }
    collector.finish().map_err(collect)
}
