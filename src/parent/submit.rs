//! DS submission: the DS RRset a zone wants at its parent, handed over
//! in one of two ways.
//!
//! - An operator's command ([`run_submit_command`], policy
//!   `parent.submit-command`, after OpenDNSSEC's
//!   DelegationSignerSubmitCommand): `/bin/sh -c COMMAND` with the zone in
//!   `SIGNET_ZONE` (in a cleaned environment: [`crate::child`]) and the wanted DS and DNSKEY records as zone-file text
//!   on standard input ([`submission_text`]). Exit 0 means submitted.
//! - An RFC 2136 dynamic update of the parent zone ([`push_update`], as
//!   Knot's ds-push): one UPDATE that deletes the DS RRset at the child's
//!   name and adds every wanted DS, TSIG-signed when a key is given.
//!
//! Neither way knows whether the parent then serves the DS: that is the
//! DS check's to find out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::OpCode;

use crate::child::{Ended, last_lines, supervise};
use crate::keys::PublishedKey;
use crate::xfr::client::{AnswerProblem, ClientError, Request, exchange_from, rcode_name};
use crate::xfr::tsig::TsigKey;
use crate::xfr::wire::{CLASS_IN, MessageWriter, ParsedMessage, Question, Section};
use crate::zone::writer::write_record;
use crate::zone::{Name, RecordRef, Rtype};

/// How long the parent's server has to answer an UPDATE (per exchange:
/// UDP, then TCP if the answer is truncated).
pub const UPDATE_TIMEOUT: Duration = Duration::from_secs(10);
/// The class ANY: in an update section, "delete an RRset" (RFC 2136
/// §2.5.2).
const CLASS_ANY: u16 = 255;

/// The DS RRset a zone wants at its parent, with the DNSKEY records of
/// the keys those DS point to (some registries want the keys, not the
/// DS). An empty `ds` withdraws every DS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedDs {
    /// The child zone (the owner of the DS at the parent).
    pub zone: Name,
    /// DS RDATA, one per DS.
    pub ds: Vec<Vec<u8>>,
    /// DNSKEY RDATA of the keys the DS point to.
    pub dnskeys: Vec<Vec<u8>>,
    /// The TTL the DS records are written with.
    pub ds_ttl: u32,
    /// The TTL the DNSKEY records are written with.
    pub dnskey_ttl: u32,
}

impl WantedDs {
    /// The DS set of `keys` at `zone` with one `digest_type` (2 SHA-256,
    /// 4 SHA-384), and their DNSKEY records; `None` for another digest
    /// type.
    pub fn from_keys(
        zone: &Name,
        keys: &[PublishedKey],
        digest_type: u8,
        ds_ttl: u32,
        dnskey_ttl: u32,
    ) -> Option<WantedDs> {
        let ds = keys.iter().map(|key| key.ds_rdata(zone.as_ref(), digest_type)).collect::<Option<Vec<_>>>()?;
        let dnskeys = keys.iter().map(|key| key.rdata.clone()).collect();
        Some(WantedDs { zone: zone.clone(), ds, dnskeys, ds_ttl, dnskey_ttl })
    }
}

/// Why a submission failed. Messages name the zone, the command or the
/// server, and what went wrong; never a secret (a TSIG key is named,
/// its secret is not; a command's standard input is not repeated).
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The command could not be started.
    #[error("zone {zone}: submit-command {command:?} could not be started")]
    CommandStart {
        /// The child zone.
        zone: Name,
        /// The command as configured.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The command ended with a non-zero status or by a signal.
    #[error("zone {zone}: submit-command {command:?} failed ({status}){}", stderr_note(.stderr))]
    CommandFailed {
        /// The child zone.
        zone: Name,
        /// The command as configured.
        command: String,
        /// How it ended: `exit status: 3`, `signal: 9 (SIGKILL)`.
        status: String,
        /// The first lines of its standard error.
        stderr: String,
    },
    /// The command ran past its time and was killed with its process
    /// group.
    #[error(
        "zone {zone}: submit-command {command:?} still running after {} s: killed with its process group{}",
        timeout.as_secs_f64(),
        stderr_note(.stderr)
    )]
    CommandTimeout {
        /// The child zone.
        zone: Name,
        /// The command as configured.
        command: String,
        /// The time it had.
        timeout: Duration,
        /// The first lines of its standard error.
        stderr: String,
    },
    /// The zone is not below the parent zone the update is for.
    #[error("zone {zone}: no UPDATE of its DS sent to {server}: it is not below the parent zone {parent_zone}")]
    NotBelow {
        /// The child zone.
        zone: Name,
        /// The parent zone given.
        parent_zone: Name,
        /// The server that would have been asked.
        server: SocketAddr,
    },
    /// The UPDATE would not fit in a DNS message.
    #[error("zone {zone}: the UPDATE of its {count} DS records does not fit in a DNS message")]
    TooLarge {
        /// The child zone.
        zone: Name,
        /// How many DS records.
        count: usize,
    },
    /// No answer, or an answer that is not to the UPDATE.
    #[error("zone {zone}: UPDATE of its DS in parent zone {parent_zone}")]
    Exchange {
        /// The child zone.
        zone: Name,
        /// The parent zone.
        parent_zone: Name,
        /// The server asked.
        server: SocketAddr,
        /// What went wrong (names the server).
        source: Box<ClientError>,
    },
    /// The request could not be signed, the server refused its TSIG
    /// (BADSIG, BADKEY, BADTIME), or the answer's TSIG does not verify or
    /// is missing (then `what` names the unsigned answer's RCODE: a
    /// server that does not have the parent zone answers an unsigned
    /// NOTAUTH).
    #[error("zone {zone}: UPDATE of its DS in parent zone {parent_zone} at {server} with key {key}: {problem}")]
    Tsig {
        /// The child zone.
        zone: Name,
        /// The parent zone.
        parent_zone: Name,
        /// The server asked.
        server: SocketAddr,
        /// The key's name.
        key: String,
        /// What failed (boxed: the error stays small).
        problem: Box<AnswerProblem>,
    },
    /// The server answered with an error RCODE.
    #[error("zone {zone}: UPDATE of its DS in parent zone {parent_zone} at {server} answered {rcode}{}", rcode_hint(.rcode))]
    Rcode {
        /// The child zone.
        zone: Name,
        /// The parent zone.
        parent_zone: Name,
        /// The server asked.
        server: SocketAddr,
        /// The RCODE's mnemonic (REFUSED, NOTAUTH, NOTZONE, …).
        rcode: String,
    },
    /// The answer reads, but is not an answer to an UPDATE.
    #[error("zone {zone}: UPDATE of its DS in parent zone {parent_zone} at {server}: {what}")]
    BadAnswer {
        /// The child zone.
        zone: Name,
        /// The parent zone.
        parent_zone: Name,
        /// The server asked.
        server: SocketAddr,
        /// What is wrong.
        what: String,
    },
}

fn stderr_note(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!("; stderr: {stderr}") }
}

/// What an UPDATE's error RCODE usually means, for the operator.
fn rcode_hint(rcode: &str) -> &'static str {
    match rcode {
        "REFUSED" => " (the server does not allow this update: its ACL, or the key)",
        "NOTAUTH" => " (the server is not authoritative for the parent zone, or the key is not accepted)",
        "NOTZONE" => " (the name is not in the parent zone)",
        _ => "",
    }
}

// ------------------------------------------------------------ the text

/// The zone-file text of a submission: the DS lines (`zone. TTL IN DS
/// tag alg digest-type HEX`), then the DNSKEY lines (`zone. TTL IN
/// DNSKEY flags 3 alg BASE64`), one record a line, tab-separated, as
/// [`write_record`] writes every master file signet makes.
pub fn submission_text(wanted: &WantedDs) -> String {
    let ds = wanted.ds.iter().map(|rdata| (Rtype::DS, wanted.ds_ttl, rdata));
    let dnskeys = wanted.dnskeys.iter().map(|rdata| (Rtype::DNSKEY, wanted.dnskey_ttl, rdata));
    let mut text = String::new();
    for (rtype, ttl, rdata) in ds.chain(dnskeys) {
        write_record(RecordRef { owner: wanted.zone.as_ref(), rtype, ttl, rdata }, CLASS_IN, &mut text);
        text.push('\n');
    }
    text
}

// --------------------------------------------------------- the command

/// Runs `command` with `/bin/sh -c` through [`crate::child::supervise`]:
/// a process group of its own, the cleaned environment with the zone
/// (absolute, lowercase) in `SIGNET_ZONE`, [`submission_text`] on
/// standard input, standard output discarded, the last lines of standard
/// error in the error. Exit 0 is success. After `timeout` the whole
/// process group is killed; so it is if this future is dropped first.
pub async fn run_submit_command(command: &str, wanted: &WantedDs, timeout: Duration) -> Result<(), SubmitError> {
    let (zone, command_text) = (wanted.zone.clone(), command.to_owned());
    let mut shell = crate::child::command("/bin/sh");
    shell.arg("-c").arg(command).env("SIGNET_ZONE", zone.to_string().to_ascii_lowercase());
    let finished = supervise(shell, Some(submission_text(wanted)), timeout, &|| false)
        .await
        .map_err(|source| SubmitError::CommandStart { zone: zone.clone(), command: command_text.clone(), source })?;
    let stderr = last_lines(&finished.stderr);
    let failed = |status: String| SubmitError::CommandFailed {
        zone: zone.clone(),
        command: command_text.clone(),
        status,
        stderr: stderr.clone(),
    };
    match finished.ended {
        Ended::Exited(status) if status.success() => Ok(()),
        Ended::Exited(status) => Err(failed(status.to_string())),
        Ended::WaitFailed(e) => Err(failed(format!("its end could not be awaited: {e}"))),
        // Never asked to stop: only the time limit ends it early.
        Ended::TimedOut | Ended::Stopped => {
            Err(SubmitError::CommandTimeout { zone, command: command_text, timeout, stderr })
        }
    }
}

// ---------------------------------------------------------- the update

/// Sends one RFC 2136 UPDATE of `parent_zone` to `server`: the DS RRset
/// at the child's name deleted, then every wanted DS added, in one
/// message (the server applies it whole or not at all). Signed with
/// `key` if given. Success is a NOERROR answer (with a TSIG that
/// verifies, for a signed update); anything else is an error naming the
/// RCODE or the TSIG failure. Each exchange has [`UPDATE_TIMEOUT`].
pub async fn push_update(
    server: SocketAddr,
    key: Option<&Arc<TsigKey>>,
    parent_zone: &Name,
    wanted: &WantedDs,
) -> Result<(), SubmitError> {
    push_update_from(server, None, key, parent_zone, wanted).await
}

/// [`push_update`] from the address `source` (None: the kernel's choice).
pub async fn push_update_from(
    server: SocketAddr,
    source: Option<std::net::IpAddr>,
    key: Option<&Arc<TsigKey>>,
    parent_zone: &Name,
    wanted: &WantedDs,
) -> Result<(), SubmitError> {
    if !wanted.zone.as_ref().is_below(parent_zone.as_ref()) {
        return Err(SubmitError::NotBelow { zone: wanted.zone.clone(), parent_zone: parent_zone.clone(), server });
    }
    let request = update_request(parent_zone, wanted, key)?;
    let answer = exchange_from(server, source, &request, UPDATE_TIMEOUT).await.map_err(|e| match e {
        ClientError::Answer { problem, .. } if problem.is_tsig() => SubmitError::Tsig {
            zone: wanted.zone.clone(),
            parent_zone: parent_zone.clone(),
            server,
            key: key.map_or_else(|| "(none)".to_owned(), |k| k.name().to_string()),
            problem: Box::new(problem),
        },
        source => SubmitError::Exchange {
            zone: wanted.zone.clone(),
            parent_zone: parent_zone.clone(),
            server,
            source: Box::new(source),
        },
    })?;
    judge_answer(&answer).map_err(|judged| match judged {
        Judged::Rcode(rcode) => {
            SubmitError::Rcode { zone: wanted.zone.clone(), parent_zone: parent_zone.clone(), server, rcode }
        }
        Judged::Bad(what) => {
            SubmitError::BadAnswer { zone: wanted.zone.clone(), parent_zone: parent_zone.clone(), server, what }
        }
    })
}

/// The UPDATE message: zone section `parent_zone SOA IN`, no
/// prerequisites, the update section (written where a query's authority
/// section is) deleting the DS RRset at the child (class ANY, TTL 0, no
/// RDATA, RFC 2136 §2.5.2) and adding each wanted DS (class IN).
fn update_request(parent_zone: &Name, wanted: &WantedDs, key: Option<&Arc<TsigKey>>) -> Result<Request, SubmitError> {
    let zone_section = Question { name: parent_zone.clone(), qtype: Rtype::SOA, qclass: CLASS_IN };
    let owner = wanted.zone.as_ref();
    let mut fits = true;
    let fill = |writer: &mut MessageWriter| {
        let delete = RecordRef { owner, rtype: Rtype::DS, ttl: 0, rdata: &[] };
        fits &= writer.push(Section::Authority, delete, CLASS_ANY);
        for rdata in &wanted.ds {
            let add = RecordRef { owner, rtype: Rtype::DS, ttl: wanted.ds_ttl, rdata };
            fits &= writer.push(Section::Authority, add, CLASS_IN);
        }
    };
    let request = Request::new(Request::metadata(OpCode::Update), &zone_section, fill, key);
    if !fits {
        return Err(SubmitError::TooLarge { zone: wanted.zone.clone(), count: wanted.ds.len() });
    }
    Ok(request)
}

/// Why an answer to an UPDATE is not a success.
#[derive(Debug)]
enum Judged {
    /// An error RCODE, by mnemonic.
    Rcode(String),
    /// Not an answer to an UPDATE.
    Bad(String),
}

/// NOERROR to an UPDATE is success; the client has checked ID, QR and
/// TSIG already.
fn judge_answer(answer: &[u8]) -> Result<(), Judged> {
    let parsed = ParsedMessage::parse(answer).map_err(|e| Judged::Bad(e.to_string()))?;
    let header = &parsed.header;
    if header.op_code != OpCode::Update {
        return Err(Judged::Bad(format!("an answer with opcode {:?}, not UPDATE", header.op_code)));
    }
    match u16::from(header.response_code) {
        0 => Ok(()),
        code => Err(Judged::Rcode(rcode_name(code))),
    }
}

#[cfg(test)]
mod tests;
