//! The check of the parent by query: every parent agent is asked for the
//! zone's DS RRset, and a pending DS change is judged done only when they
//! all agree, and the validating resolver too if there is one.
//!
//! The threat: an answer that claims a DS early (forged, or from a
//! server that is not the parent's or is ahead of the others) makes the
//! machine count the DS's TTL from too early a moment and remove the old
//! KSK while resolvers still hold only the old DS; one that claims a DS
//! gone early does the same for the old DNSKEY. The defence: only
//! authoritative answers (AA) count; only answers from the parent's side
//! of the zone cut count (a server of the child zone alone answers the
//! DS query at its apex with its own NODATA: see [`ds_set`]); every
//! agent must agree, so one stale or forged server delays the move
//! instead of making it; an answer that fails, times out, is truncated
//! or is not authoritative counts as "not known", never as "no DS"; each
//! agent may have its own TSIG key; a validating resolver's answer, when
//! configured, must carry AD and agree too.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{OpCode, ResponseCode};

use crate::chain::Chain;
use crate::rollover::Observation;
use crate::xfr::client::{Request, exchange_from, rcode_name};
use crate::xfr::tsig::TsigKey;
use crate::xfr::wire::{CLASS_IN, ParsedMessage, Question};
use crate::zone::dnssec::{Ds, ds_matches};
use crate::zone::{Name, NameRef, Rtype};

/// How long a server has to answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A server asked for the zone's DS RRset.
#[derive(Debug, Clone)]
pub struct Server {
    /// Its address.
    pub addr: SocketAddr,
    /// The key its queries and answers are signed with.
    pub key: Option<Arc<TsigKey>>,
    /// The address the queries leave from (None: the kernel's choice).
    pub source: Option<std::net::IpAddr>,
}

/// What one server said about the zone's DS RRset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DsAnswer {
    /// A usable answer: these DS RDATA (empty: the parent has no DS).
    Ds(Vec<Vec<u8>>),
    /// No usable answer, and why: the DS set is not known from it.
    Unknown(String),
}

/// One server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAnswer {
    /// The server.
    pub addr: SocketAddr,
    /// What it said.
    pub answer: DsAnswer,
}

impl fmt::Display for ServerAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.answer {
            DsAnswer::Ds(set) if set.is_empty() => write!(f, "{}: no DS", self.addr),
            DsAnswer::Ds(set) => {
                let tags: Vec<String> = set.iter().filter_map(|rdata| Ds::parse(rdata)).map(describe_ds).collect();
                write!(f, "{}: DS {}", self.addr, tags.join(", "))
            }
            DsAnswer::Unknown(why) => write!(f, "{}: unknown ({why})", self.addr),
        }
    }
}

fn describe_ds(ds: Ds<'_>) -> String {
    format!("{}/{}/{}", ds.key_tag, ds.algorithm, ds.digest_type)
}

/// How a server is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asking {
    /// An authoritative server of the parent: RD clear, AA required.
    Agent,
    /// A validating resolver: RD and AD set, DO set, AD required.
    Validator,
}

/// The zone cut the DS RRset sits at: the child zone, and its parent
/// zone when known (configured with `parent-update --parent-zone`, or
/// found by discovery); else any zone above the child counts as the
/// parent (the parent need not be the child's name less its first
/// label: `a.b.example.` may be delegated from `example.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The child zone, whose DS RRset is asked for.
    pub child: Name,
    /// The parent zone, when known.
    pub parent: Option<Name>,
}

impl Cut {
    /// Is `zone` the parent's side of the cut: the known parent zone, or
    /// (none known) a zone strictly above the child?
    fn is_parent_side(&self, zone: NameRef<'_>) -> bool {
        match &self.parent {
            Some(parent) => zone.eq_ignore_case(parent.as_ref()),
            None => self.child.as_ref().is_below(zone),
        }
    }

    /// What the parent's side is, in words.
    fn parent_text(&self) -> String {
        match &self.parent {
            Some(parent) => format!("the parent zone {parent}"),
            None => format!("a zone above {}", self.child),
        }
    }
}

/// Asks `server` for the DS RRset at `cut`.
pub async fn ask(server: &Server, cut: &Cut, asking: Asking) -> ServerAnswer {
    let answer = match query(server, cut, asking).await {
        Ok(set) => DsAnswer::Ds(set),
        Err(why) => DsAnswer::Unknown(why),
    };
    ServerAnswer { addr: server.addr, answer }
}

async fn query(server: &Server, cut: &Cut, asking: Asking) -> Result<Vec<Vec<u8>>, String> {
    let zone = &cut.child;
    let question = Question { name: zone.clone(), qtype: Rtype::DS, qclass: CLASS_IN };
    let mut metadata = Request::metadata(OpCode::Query);
    let validator = asking == Asking::Validator;
    metadata.recursion_desired = validator;
    metadata.authentic_data = validator;
    let fill = |w: &mut crate::xfr::wire::MessageWriter| {
        w.push_edns(1232, validator);
    };
    let request = Request::new(metadata, &question, fill, server.key.as_ref());
    let answer =
        exchange_from(server.addr, server.source, &request, ANSWER_TIMEOUT).await.map_err(|e| Chain(&e).to_string())?;
    ds_set(&answer, cut, asking)
}

/// The DS set in an answer, if the answer is one that counts: the
/// answer to the question asked, complete (TC clear: a truncated answer
/// may lack records, and one over TCP cannot be completed), AA set for an
/// agent (AD for a validator), NOERROR or NXDOMAIN, and from the
/// parent's side of the cut. A server of the child zone that does not
/// serve the parent answers the DS query at its apex from the child zone
/// (RFC 4035 §3.1.4.1 asks the parent's servers for it; a server of the
/// child alone has only the child's apex): AA set, NODATA, the child's SOA.
/// So:
/// - an SOA in the authority section must be the parent's (see
///   [`Cut`]): an SOA of the child (or of any zone not above it) makes
///   the answer the child's, whatever it says;
/// - NS records of the child (or below) in the authority section name
///   the child as the zone answering: the child's;
/// - an answer without the child's DS (NODATA, NXDOMAIN) counts as "no
///   DS" only with the parent's SOA in the authority section, as a
///   negative answer carries its zone's SOA (RFC 2308 §3);
/// - a DS RRset owned by the child from such an answer is the parent's.
///
/// Anything else is unknown, never "no DS".
fn ds_set(answer: &[u8], cut: &Cut, asking: Asking) -> Result<Vec<Vec<u8>>, String> {
    let zone = &cut.child;
    let parsed = ParsedMessage::parse(answer).map_err(|e| e.to_string())?;
    let header = &parsed.header;
    let asked = parsed
        .question
        .as_ref()
        .is_some_and(|q| q.qtype == Rtype::DS && q.qclass == CLASS_IN && q.name.as_ref().eq_ignore_case(zone.as_ref()));
    if !asked {
        return Err("an answer to another question".to_owned());
    }
    if header.truncation {
        return Err("truncated (TC set): not the whole answer".to_owned());
    }
    match asking {
        Asking::Agent if !header.authoritative => {
            return Err("not authoritative (AA clear): not a server of the parent zone".to_owned());
        }
        Asking::Validator if !header.authentic_data => {
            return Err(format!("not validated (AD clear, {})", rcode_name(header.response_code.into())));
        }
        _ => {}
    }
    match header.response_code {
        // NXDOMAIN from the parent: the name is not delegated at all, so
        // it has no DS either.
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        rcode => return Err(format!("answered {}", rcode_name(rcode.into()))),
    }
    let mut set = Vec::new();
    let mut parent_soa = false;
    for record in parsed.records() {
        let (section, record) = record.map_err(|e| e.to_string())?;
        let owner = record.owner.as_ref();
        match section {
            0 if record.rtype == Rtype::DS && record.class == CLASS_IN && owner.eq_ignore_case(zone.as_ref()) => {
                set.push(record.rdata.into_owned());
            }
            1 if record.rtype == Rtype::SOA => {
                if !cut.is_parent_side(owner) {
                    return Err(format!(
                        "the child's side of the cut: the SOA of {} in the authority section, not of {}",
                        record.owner,
                        cut.parent_text()
                    ));
                }
                parent_soa = true;
            }
            1 if record.rtype == Rtype::NS && owner.is_at_or_below(zone.as_ref()) => {
                return Err(format!(
                    "the child's side of the cut: the NS of {} in the authority section (a server of the child zone)",
                    record.owner
                ));
            }
            _ => {}
        }
    }
    if set.is_empty() && !parent_soa {
        return Err(format!(
            "no DS, but without the SOA of {} in the authority section: not a negative answer of the parent",
            cut.parent_text()
        ));
    }
    Ok(set)
}

/// What the check waits for, for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The parent to publish a DS for it.
    Seen,
    /// The parent to publish no DS for it any more.
    Gone,
}

impl Want {
    /// `seen` or `gone`.
    pub fn as_str(self) -> &'static str {
        match self {
            Want::Seen => "seen",
            Want::Gone => "gone",
        }
    }
}

/// A key whose DS change is pending.
#[derive(Debug, Clone)]
pub struct PendingKey {
    /// Its id.
    pub id: i64,
    /// Its key tag.
    pub tag: u16,
    /// Its DNSKEY RDATA.
    pub dnskey: Vec<u8>,
    /// What the check waits for.
    pub want: Want,
}

/// What a round of answers says about one pending key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every agent (and the validator) agrees: record this.
    Observed(Observation),
    /// Not yet, and why.
    Waiting(String),
}

/// Does the answer's DS set hold a DS for the key? `None` when the
/// answer is unknown.
fn serves(zone: &Name, answer: &DsAnswer, dnskey: &[u8]) -> Option<bool> {
    match answer {
        DsAnswer::Ds(set) => Some(set.iter().any(|ds| ds_matches(zone.as_ref(), ds, dnskey) == Some(true))),
        DsAnswer::Unknown(_) => None,
    }
}

/// Judges one pending key from every agent's answer and the validator's:
/// observed only when there is at least one agent and every answer (the
/// validator's included) is known and says what is wanted.
pub fn judge(zone: &Name, key: &PendingKey, agents: &[ServerAnswer], validator: Option<&ServerAnswer>) -> Verdict {
    if agents.is_empty() {
        return Verdict::Waiting("no parent agent to ask".to_owned());
    }
    let wanted = key.want == Want::Seen;
    let says = |a: &ServerAnswer| serves(zone, &a.answer, &key.dnskey);
    let agreeing = agents.iter().filter(|a| says(a) == Some(wanted)).count();
    let unknown = agents.iter().filter(|a| says(a).is_none()).count();
    let what = if wanted { "serve" } else { "no longer serve" };
    if agreeing < agents.len() {
        let mut why = format!("{agreeing} of {} agents {what} the DS of key tag {}", agents.len(), key.tag);
        if unknown > 0 {
            why.push_str(&format!(" ({unknown} did not answer usably)"));
        }
        return Verdict::Waiting(why);
    }
    if let Some(validator) = validator {
        match says(validator) {
            Some(v) if v == wanted => {}
            Some(_) => {
                return Verdict::Waiting(format!(
                    "every agent agrees, but the validating resolver {} does not yet",
                    validator.addr
                ));
            }
            None => return Verdict::Waiting(format!("the validating resolver: {validator}")),
        }
    }
    Verdict::Observed(match key.want {
        Want::Seen => Observation::DsSeen { key: key.id },
        Want::Gone => Observation::DsGone { key: key.id },
    })
}

/// The answers of a round, one line each, for the audit and status.
pub fn answers_text(agents: &[ServerAnswer], validator: Option<&ServerAnswer>) -> String {
    let mut lines: Vec<String> = agents.iter().map(|a| format!("agent {a}")).collect();
    if let Some(v) = validator {
        lines.push(format!("validator {v}"));
    }
    lines.join("; ")
}

#[cfg(test)]
mod tests;
