//! The answer of a transfer in, message by message, into what it brought:
//! the whole zone (AXFR, or an IXFR answered in full) or the IXFR's steps
//! (RFC 1995, RFC 5936 §2.2). No I/O: the messages come from
//! `xfr::incoming`, which has checked each one's ID, TSIG and RCODE, and
//! the result goes to `xfr::apply`, which makes the new copy of it.
//!
//! The collector refuses what is not a transfer of the zone: an answer
//! that does not start with the zone's SOA, SOA records of another owner,
//! a second SOA among an AXFR's records, records after the closing SOA,
//! IXFR steps that do not lead from the copy's serial to the serial
//! announced, records of another class; and an answer that passes
//! `transfer-max-records` or `transfer-max-bytes`.

use super::wire::{CLASS_IN, ParsedMessage, WireError, WireRecord};
use crate::zone::{Name, Rtype};

/// What a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// The whole zone.
    Axfr,
    /// The differences from the copy, whose SOA has this serial (None: an
    /// SOA that does not read).
    Ixfr(Option<u32>),
}

/// The bounds of one answer (`transfer-max-records`, `transfer-max-bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerLimits {
    /// Records in the answer.
    pub max_records: u64,
    /// Bytes of DNS messages in the answer.
    pub max_bytes: u64,
}

/// Why an answer is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectError {
    /// A message does not read.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A record of another class than IN.
    #[error("a record of class {class}")]
    Class {
        /// Its class.
        class: u16,
    },
    /// Records after the closing SOA.
    #[error("records after the transfer's closing SOA")]
    AfterClosingSoa,
    /// An SOA whose owner is not the apex.
    #[error("an SOA record for {owner}, not for the zone {origin}")]
    ForeignSoa {
        /// Its owner.
        owner: Name,
        /// The zone.
        origin: Name,
    },
    /// The first record is not the SOA.
    #[error("the answer starts with {owner} {rtype}, not the SOA")]
    NoOpeningSoa {
        /// The first record's owner.
        owner: Name,
        /// Its type.
        rtype: Rtype,
    },
    /// A second SOA, of another serial, among the zone's records: two
    /// SOAs would reach the copy.
    #[error(
        "a second SOA (serial {}) among the zone's records, before the closing SOA of serial {}",
        or_question(*.serial),
        or_question(*.closing)
    )]
    SecondSoa {
        /// Its serial.
        serial: Option<u32>,
        /// The serial of the opening (and closing) SOA.
        closing: Option<u32>,
    },
    /// IXFR records outside a step.
    #[error("an IXFR step without its SOA")]
    StepWithoutSoa,
    /// No record at all.
    #[error("an empty answer")]
    Empty,
    /// The opening SOA's RDATA does not read.
    #[error("a malformed SOA")]
    MalformedSoa,
    /// An IXFR step that does not start where the one before ended.
    #[error("an IXFR step from serial {} where serial {} was expected", shown(*.from), shown(*.expected))]
    StepGap {
        /// Where it starts.
        from: Option<u32>,
        /// Where the copy or the step before is.
        expected: Option<u32>,
    },
    /// IXFR steps that end short of the serial announced.
    #[error("the IXFR's steps end at serial {}, not at the serial {announced} it announced", shown(*.end))]
    ShortChain {
        /// Where the steps end.
        end: Option<u32>,
        /// The opening SOA's serial.
        announced: u32,
    },
    /// More records than `transfer-max-records`.
    #[error("the transfer passed transfer-max-records ({max} records): refused")]
    TooManyRecords {
        /// The setting.
        max: u64,
    },
    /// More bytes than `transfer-max-bytes`.
    #[error("the transfer passed transfer-max-bytes ({max} bytes): refused")]
    TooManyBytes {
        /// The setting.
        max: u64,
    },
}

impl CollectError {
    /// Did the answer pass one of the limits (rather than being wrong)?
    pub fn is_limit(&self) -> bool {
        matches!(self, CollectError::TooManyRecords { .. } | CollectError::TooManyBytes { .. })
    }
}

fn shown(serial: Option<u32>) -> String {
    serial.map_or_else(|| "(none)".to_owned(), |s| s.to_string())
}

fn or_question(serial: Option<u32>) -> String {
    serial.map_or_else(|| "?".to_owned(), |s| s.to_string())
}

/// A record of a transfer, owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransferRecord {
    /// Owner, case as sent.
    pub owner: Name,
    /// Type.
    pub rtype: Rtype,
    /// TTL.
    pub ttl: u32,
    /// RDATA, names uncompressed.
    pub rdata: Vec<u8>,
}

impl TransferRecord {
    fn from_wire(record: WireRecord<'_>) -> TransferRecord {
        TransferRecord { owner: record.owner, rtype: record.rtype, ttl: record.ttl, rdata: record.rdata.into_owned() }
    }

    fn is_soa(&self) -> bool {
        self.rtype == Rtype::SOA
    }

    /// The serial, for an SOA.
    pub fn serial(&self) -> Option<u32> {
        super::wire::soa_serial(&self.rdata)
    }

    /// What identifies the record in a deletion: owner (any case), type,
    /// canonical RDATA.
    pub fn identity(&self) -> (Name, Rtype, Vec<u8>) {
        (
            self.owner.as_ref().to_lowercase(),
            self.rtype,
            crate::zone::rdata::canonical_rdata(self.rtype, &self.rdata).into_owned(),
        )
    }
}

/// One IXFR step: its deletions (the old SOA first) and its additions
/// (the new SOA first).
pub type Step = (Vec<TransferRecord>, Vec<TransferRecord>);

/// What a transfer brought.
#[derive(Debug)]
pub struct Received {
    /// The serial of the answer's opening SOA.
    pub serial: u32,
    /// The zone or its differences.
    pub body: Body,
    /// Records in the answer.
    pub records: u64,
    /// Bytes of its messages.
    pub bytes: u64,
}

/// The zone, or its differences.
#[derive(Debug)]
pub enum Body {
    /// The whole zone (AXFR, or an IXFR answered in full).
    Whole(Vec<TransferRecord>),
    /// The steps of an IXFR, oldest first (none: up to date).
    Steps(Vec<Step>),
}

impl Received {
    /// `axfr` or `ixfr`, for logs and status.
    pub fn kind(&self) -> &'static str {
        match self.body {
            Body::Whole(_) => "axfr",
            Body::Steps(_) => "ixfr",
        }
    }
}

/// Where a transfer's answer is, after its first SOA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// An AXFR, or an IXFR answered with the whole zone.
    Whole,
    /// An IXFR step's deletions (after its old SOA).
    Deleting,
    /// An IXFR step's additions (after its new SOA).
    Adding,
}

/// Sorts a transfer's records into the whole zone or IXFR steps, and
/// tells when the answer is complete.
#[derive(Debug)]
pub struct Collector {
    origin: Name,
    asked: Asked,
    limits: AnswerLimits,
    first: Option<TransferRecord>,
    phase: Option<Phase>,
    whole: Vec<TransferRecord>,
    /// (deleted, added) per step, each starting with its SOA.
    steps: Vec<Step>,
    complete: bool,
    records: u64,
    bytes: u64,
}

impl Collector {
    /// A collector of the answer to `asked` for zone `origin`.
    pub fn new(origin: Name, asked: Asked, limits: AnswerLimits) -> Collector {
        Collector {
            origin,
            asked,
            limits,
            first: None,
            phase: None,
            whole: Vec::new(),
            steps: Vec::new(),
            complete: false,
            records: 0,
            bytes: 0,
        }
    }

    /// Has the closing SOA come?
    pub fn done(&self) -> bool {
        self.complete
    }

    /// Takes one message of the answer, as received.
    pub fn feed(&mut self, message: &[u8]) -> Result<(), CollectError> {
        self.count_bytes(message.len())?;
        self.take_answers(&ParsedMessage::parse(message)?)
    }

    /// Counts a message's bytes against `transfer-max-bytes` (before it
    /// is read: a message too many is not read at all).
    pub fn count_bytes(&mut self, len: usize) -> Result<(), CollectError> {
        self.bytes += len as u64;
        if self.bytes > self.limits.max_bytes {
            return Err(CollectError::TooManyBytes { max: self.limits.max_bytes });
        }
        Ok(())
    }

    /// Takes the answer section of a message whose bytes were counted.
    pub fn take_answers(&mut self, message: &ParsedMessage<'_>) -> Result<(), CollectError> {
        for record in message.answers() {
            let record = record?;
            if record.class != CLASS_IN {
                return Err(CollectError::Class { class: record.class });
            }
            self.take(TransferRecord::from_wire(record))?;
            if self.records > self.limits.max_records {
                return Err(CollectError::TooManyRecords { max: self.limits.max_records });
            }
        }
        Ok(())
    }

    /// Takes one record.
    pub fn take(&mut self, record: TransferRecord) -> Result<(), CollectError> {
        if self.complete {
            return Err(CollectError::AfterClosingSoa);
        }
        self.records += 1;
        // Every SOA of a transfer is the zone's own: the opening and
        // closing ones, and those that open and close IXFR steps.
        if record.is_soa() && !record.owner.as_ref().eq_ignore_case(self.origin.as_ref()) {
            return Err(CollectError::ForeignSoa { owner: record.owner, origin: self.origin.clone() });
        }
        let Some(first) = &self.first else { return self.open(record) };
        let newest = first.serial();
        let closing = record.is_soa() && record.serial() == newest;
        let phase = match self.phase {
            Some(phase) => phase,
            // An IXFR whose second record is an older SOA is incremental:
            // that SOA opens the first step's deletions.
            None if self.is_ixfr() && record.is_soa() && !closing => {
                self.steps.push((vec![record], Vec::new()));
                self.phase = Some(Phase::Deleting);
                return Ok(());
            }
            None => Phase::Whole,
        };
        match phase {
            Phase::Whole => self.take_whole(record, closing, newest),
            Phase::Deleting => self.take_deletion(record),
            Phase::Adding => self.take_addition(record, closing),
        }
    }

    fn is_ixfr(&self) -> bool {
        matches!(self.asked, Asked::Ixfr(_))
    }

    /// The opening SOA.
    fn open(&mut self, record: TransferRecord) -> Result<(), CollectError> {
        if !record.is_soa() {
            return Err(CollectError::NoOpeningSoa { owner: record.owner, rtype: record.rtype });
        }
        // Up to date: an IXFR answered with our own serial's SOA alone.
        self.complete = self.asked == Asked::Ixfr(record.serial());
        self.first = Some(record);
        Ok(())
    }

    /// A record of the whole zone, or its closing SOA.
    fn take_whole(&mut self, record: TransferRecord, closing: bool, newest: Option<u32>) -> Result<(), CollectError> {
        self.phase = Some(Phase::Whole);
        if closing {
            self.complete = true;
            return Ok(());
        }
        // A zone has one SOA: a second one, of another serial, in the
        // middle of the records is a broken answer (RFC 5936 §2.2).
        if record.is_soa() {
            return Err(CollectError::SecondSoa { serial: record.serial(), closing: newest });
        }
        self.whole.push(record);
        Ok(())
    }

    /// A deletion of the current step, or the new SOA that ends them.
    fn take_deletion(&mut self, record: TransferRecord) -> Result<(), CollectError> {
        let (deleted, added) = self.steps.last_mut().ok_or(CollectError::StepWithoutSoa)?;
        if record.is_soa() {
            added.push(record);
            self.phase = Some(Phase::Adding);
        } else {
            deleted.push(record);
        }
        Ok(())
    }

    /// An addition of the current step, the old SOA of the next step, or
    /// the closing SOA.
    fn take_addition(&mut self, record: TransferRecord, closing: bool) -> Result<(), CollectError> {
        if closing {
            self.complete = true;
            return Ok(());
        }
        let Some((_, added)) = self.steps.last_mut() else { return Err(CollectError::StepWithoutSoa) };
        if record.is_soa() {
            self.steps.push((vec![record], Vec::new()));
            self.phase = Some(Phase::Deleting);
        } else {
            added.push(record);
        }
        Ok(())
    }

    /// What the answer brought, once complete.
    pub fn finish(self) -> Result<Received, CollectError> {
        let first = self.first.ok_or(CollectError::Empty)?;
        let serial = first.serial().ok_or(CollectError::MalformedSoa)?;
        let body = match self.phase {
            Some(Phase::Whole) => {
                let mut whole = self.whole;
                whole.push(first);
                Body::Whole(whole)
            }
            // Incremental, or up to date (one SOA: no step).
            _ => {
                let ours = match self.asked {
                    Asked::Ixfr(ours) => ours,
                    Asked::Axfr => None,
                };
                check_chain(&self.steps, ours, serial)?;
                Body::Steps(self.steps)
            }
        };
        Ok(Received { serial, body, records: self.records, bytes: self.bytes })
    }
}

/// The steps of an IXFR lead from the copy's serial to the serial the
/// answer announced, each starting where the one before ended.
fn check_chain(steps: &[Step], ours: Option<u32>, announced: u32) -> Result<(), CollectError> {
    let mut at = ours;
    for (deleted, added) in steps {
        let from = deleted.first().and_then(TransferRecord::serial);
        if from != at {
            return Err(CollectError::StepGap { from, expected: at });
        }
        at = added.first().and_then(TransferRecord::serial);
    }
    if !steps.is_empty() && at != Some(announced) {
        return Err(CollectError::ShortChain { end: at, announced });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
