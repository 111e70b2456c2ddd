//! The answers of transfers out: AXFR (RFC 5936) from the version served,
//! IXFR (RFC 1995) from the journal's differences, falling back to the
//! whole zone when the client's serial is one the journal no longer
//! reaches.
//!
//! Every record comes from a version the gate passed: the served
//! version, or differences recorded in the transaction of a publication
//! the gate passed, each checked against its SHA-256 when decoded, and
//! chained serial by serial up to exactly the version served.

use hickory_proto::op::Metadata;

use super::catalog::ServedVersion;
use super::store::{DiffSource, StoreError};
use super::wire::{CLASS_IN, MAX_MESSAGE, MessageWriter, Question, Section};
use crate::zone::diff::ZoneDiff;
use crate::zone::serial::serial_gt;
use crate::zone::{Name, RecordRef, Rtype, Zone};

/// A record that fits no DNS message, even one of its own: the transfer
/// is abandoned rather than sent without it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "record {owner} {rtype} ({rdlength} bytes of RDATA) does not fit a DNS message of {limit} bytes: transfer abandoned"
)]
pub struct RecordTooLarge {
    /// Its owner.
    pub owner: String,
    /// Its type.
    pub rtype: Rtype,
    /// Its RDATA's length.
    pub rdlength: usize,
    /// The room a message has (65535 less the TSIG record).
    pub limit: usize,
}

/// What an IXFR query gets.
#[derive(Debug)]
pub enum IxfrPlan {
    /// The client has the version served, or a newer serial: the SOA.
    UpToDate,
    /// The differences from the client's serial, oldest first.
    Differences(Vec<ZoneDiff<'static>>),
    /// The whole zone (the client's serial is unknown or too old).
    Whole,
}

impl IxfrPlan {
    /// Its name in logs and status.
    pub fn kind(&self) -> &'static str {
        match self {
            IxfrPlan::UpToDate => "up-to-date",
            IxfrPlan::Differences(_) => "ixfr",
            IxfrPlan::Whole => "axfr",
        }
    }
}

/// Plans the answer to an IXFR of `zone` from `client` serial for
/// `version`, with the differences `journal` has.
pub async fn plan_ixfr(
    journal: &dyn DiffSource,
    zone: &Name,
    version: &ServedVersion,
    client: u32,
) -> Result<IxfrPlan, StoreError> {
    if client == version.serial || serial_gt(client, version.serial) {
        return Ok(IxfrPlan::UpToDate);
    }
    let Some(entries) = journal.differences_since(zone, client).await? else { return Ok(IxfrPlan::Whole) };
    let mut diffs = Vec::with_capacity(entries.len());
    let mut serial = client;
    for entry in entries {
        let diff = match ZoneDiff::decode(&entry.bytes) {
            Ok(diff) => diff,
            Err(e) => {
                tracing::warn!(serial = entry.serial_to, "journal entry unusable, answering with the whole zone: {e}");
                return Ok(IxfrPlan::Whole);
            }
        };
        if diff.old_serial() != serial {
            return Ok(IxfrPlan::Whole);
        }
        serial = diff.new_serial();
        diffs.push(diff);
        if serial == version.serial {
            return Ok(IxfrPlan::Differences(diffs));
        }
    }
    // The journal does not lead to the version served (a publication the
    // service has not taken up yet, or a journal started again).
    Ok(IxfrPlan::Whole)
}

/// Writes a transfer's answer as DNS messages filled to about 16 KiB (so
/// that every owner in a message can be pointed to, [`MessageWriter`]),
/// less the room the TSIG record takes, handing each to `send`. A record
/// too large to share a message goes in one of its own, of up to 64 KiB;
/// one too large even for that is an error: never a silent gap in the
/// zone.
#[derive(Debug)]
pub struct AnswerStream {
    metadata: Metadata,
    current: MessageWriter,
    /// The question's name, to which later messages' owners point too.
    apex: Name,
    limit: usize,
    /// Records written, over all messages.
    pub records: u64,
}

/// The size a transfer's messages are filled to: what a compression
/// pointer reaches, as Knot's messages are.
const FILL: usize = 16 * 1024;

impl AnswerStream {
    /// An answer to `question` with `metadata` (AA set by the caller),
    /// each message leaving `tsig_room` bytes for its TSIG record (0 for
    /// an unsigned answer).
    pub fn new(metadata: Metadata, question: &Question, tsig_room: usize) -> AnswerStream {
        let limit = MAX_MESSAGE.saturating_sub(tsig_room);
        let current = MessageWriter::new(metadata, Some(question), limit).filled_to(FILL);
        AnswerStream { metadata, current, apex: question.name.clone(), limit, records: 0 }
    }

    /// Adds a record; returns a full message to send when one is done.
    pub fn push(&mut self, record: RecordRef<'_>, class: u16) -> Result<Option<Vec<u8>>, RecordTooLarge> {
        if self.current.push(Section::Answer, record, class) {
            self.records += 1;
            return Ok(None);
        }
        // The question goes in the first message only (RFC 5936 §2.2).
        let mut next = MessageWriter::continuing(self.metadata, Some(self.apex.as_ref()), self.limit).filled_to(FILL);
        if !next.push(Section::Answer, record, class) {
            return Err(RecordTooLarge {
                owner: record.owner.to_string(),
                rtype: record.rtype,
                rdlength: record.rdata.len(),
                limit: self.limit,
            });
        }
        self.records += 1;
        let full = std::mem::replace(&mut self.current, next);
        Ok(Some(full.finish()))
    }

    /// The last message.
    pub fn finish(self) -> Vec<u8> {
        self.current.finish()
    }
}

/// The apex SOA of `zone`.
pub fn apex_soa(zone: &Zone) -> Option<RecordRef<'_>> {
    zone.node(zone.origin()).and_then(|node| node.rrset(Rtype::SOA)).and_then(|rrset| rrset.records().next())
}

/// Every record of an AXFR: the SOA, every other record, the SOA again.
pub fn axfr_records(zone: &Zone) -> impl Iterator<Item = RecordRef<'_>> + '_ {
    let soa = apex_soa(zone);
    let body = zone.records().filter(move |r| !(r.rtype == Rtype::SOA && r.owner.eq_ignore_case(zone.origin())));
    soa.into_iter().chain(body).chain(soa)
}

/// Every record of an incremental IXFR: the SOA served, then per
/// difference the old SOA, what it removed, the new SOA, what it added;
/// the SOA served again.
pub fn ixfr_records<'a>(zone: &'a Zone, diffs: &'a [ZoneDiff<'static>]) -> impl Iterator<Item = RecordRef<'a>> + 'a {
    let soa = apex_soa(zone);
    // `removed()` and `added()` give the SOA first.
    let steps = diffs.iter().flat_map(|diff| diff.removed().chain(diff.added()));
    soa.into_iter().chain(steps).chain(soa)
}

/// The class of the records served.
pub fn class_of(zone: &Zone) -> u16 {
    match zone.class() {
        0 => CLASS_IN,
        class => class,
    }
}
