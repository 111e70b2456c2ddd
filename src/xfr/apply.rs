//! What a transfer brought (`xfr::collect`), made into the new copy of
//! the zone: the whole zone built, or the IXFR's steps applied to the
//! copy as one net change. Every record is checked (in the zone, RDATA
//! well formed for its type) and every deletion must match a record of
//! the copy; otherwise nothing is made. No I/O.

use std::collections::{HashMap, HashSet};

use super::collect::{Body, Received, Step, TransferRecord};
use super::wire::CLASS_IN;
use crate::zone::rdata::{RdataError, canonical_rdata, check_rdata};
use crate::zone::{Name, Rtype, Zone, ZoneBuilder};

/// Why the new copy cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Differences came, and there is no copy.
    #[error("an incremental answer without a copy to apply it to")]
    NoCopy,
    /// A record deleted twice without being added in between.
    #[error("the IXFR deletes {owner} {rtype} twice")]
    DeletedTwice {
        /// Its owner.
        owner: Name,
        /// Its type.
        rtype: Rtype,
    },
    /// A deletion of a record the copy does not have.
    #[error("the IXFR deletes {owner} {rtype}, which the copy does not have")]
    NotInCopy {
        /// Its owner.
        owner: Name,
        /// Its type.
        rtype: Rtype,
    },
    /// A record whose owner is not at or below the apex.
    #[error("record {owner} {rtype} is outside the zone")]
    OutsideZone {
        /// Its owner.
        owner: Name,
        /// Its type.
        rtype: Rtype,
    },
    /// A record whose RDATA is not well formed for its type.
    #[error("record {owner} {rtype}")]
    Rdata {
        /// Its owner.
        owner: Name,
        /// Its type.
        rtype: Rtype,
        /// What is wrong.
        #[source]
        source: RdataError,
    },
}

/// The new copy of zone `origin`: checked, then built.
pub fn into_zone(received: Received, origin: &Name, copy: Option<&Zone>) -> Result<Zone, ApplyError> {
    match received.body {
        Body::Whole(records) => build(origin, records.iter()),
        Body::Steps(steps) => {
            let copy = copy.ok_or(ApplyError::NoCopy)?;
            let (deleted, added) = net_change(steps)?;
            apply(origin, copy, &deleted, &added)
        }
    }
}

/// The steps of an IXFR as one change to the copy: what it deletes from
/// the copy and what it adds. A record added by one step and deleted by a
/// later one is neither; a record deleted twice without being added in
/// between is an error.
pub fn net_change(steps: Vec<Step>) -> Result<(Vec<TransferRecord>, Vec<TransferRecord>), ApplyError> {
    let mut deleted: Vec<TransferRecord> = Vec::new();
    let mut gone: HashSet<(Name, Rtype, Vec<u8>)> = HashSet::new();
    let mut added: HashMap<(Name, Rtype, Vec<u8>), TransferRecord> = HashMap::new();
    for (step_deleted, step_added) in steps {
        for record in step_deleted {
            let identity = record.identity();
            if added.remove(&identity).is_none() {
                if !gone.insert(identity) {
                    return Err(ApplyError::DeletedTwice { owner: record.owner, rtype: record.rtype });
                }
                deleted.push(record);
            }
        }
        added.extend(step_added.into_iter().map(|record| (record.identity(), record)));
    }
    Ok((deleted, added.into_values().collect()))
}

/// A zone of `records`, each checked: in the zone, RDATA well formed.
pub fn build<'a>(origin: &Name, records: impl Iterator<Item = &'a TransferRecord>) -> Result<Zone, ApplyError> {
    let mut builder = ZoneBuilder::new(origin.clone(), CLASS_IN);
    for record in records {
        check(origin, record)?;
        builder.push(record.owner.as_ref(), record.rtype, record.ttl, &record.rdata);
    }
    Ok(builder.finish())
}

fn check(origin: &Name, record: &TransferRecord) -> Result<(), ApplyError> {
    let (owner, rtype) = (&record.owner, record.rtype);
    if !owner.as_ref().is_at_or_below(origin.as_ref()) {
        return Err(ApplyError::OutsideZone { owner: owner.clone(), rtype });
    }
    check_rdata(rtype, &record.rdata).map_err(|source| ApplyError::Rdata { owner: owner.clone(), rtype, source })
}

/// `zone` with `deleted` taken out and `added` put in; every deletion
/// must match a record of the zone. Deletions are found by a binary
/// search for their owner, and the zone is edited, not built again
/// ([`Zone::edited_at`]): the cost is a copy of the index.
pub fn apply(
    origin: &Name,
    zone: &Zone,
    deleted: &[TransferRecord],
    added: &[TransferRecord],
) -> Result<Zone, ApplyError> {
    let mut skip = Vec::with_capacity(deleted.len());
    for record in deleted {
        let at = position_of(zone, record)
            .ok_or_else(|| ApplyError::NotInCopy { owner: record.owner.clone(), rtype: record.rtype })?;
        skip.push(at);
    }
    let mut builder = ZoneBuilder::new(origin.clone(), CLASS_IN);
    for record in added {
        check(origin, record)?;
        builder.push(record.owner.as_ref(), record.rtype, record.ttl, &record.rdata);
    }
    Ok(zone.edited_at(skip, builder))
}

/// Where `record` is in `zone` (same owner in any case, type, canonical
/// RDATA), if it is.
fn position_of(zone: &Zone, record: &TransferRecord) -> Option<usize> {
    let owner = record.owner.as_ref();
    let start = zone.position_of(owner);
    let wanted = canonical_rdata(record.rtype, &record.rdata);
    zone.records_in(start..zone.len())
        .take_while(|r| r.owner.eq_ignore_case(owner))
        .position(|r| r.rtype == record.rtype && canonical_rdata(r.rtype, r.rdata) == wanted)
        .map(|offset| start + offset)
}
