//! The difference between two versions of a zone: the records the older
//! one has and the newer lacks (removed), and the other way round
//! (added). It is what IXFR (RFC 1995) carries, as a difference sequence
//! of old SOA, removed records, new SOA, added records, and what `signet
//! zone diff` shows.
//!
//! **One merge, no maps.** Both zones hold their records in one strict
//! total order: owner in canonical order, then type, then RDATA, then TTL
//! (`ZoneBuilder::finish` sorts so and drops exact copies, so no two
//! records of a zone are equal in all four). Walking the two sequences
//! side by side therefore finds every difference in one linear pass, with
//! no hash map of a zone of millions of records. The zones are cut at
//! owner names into pieces merged on all cores. A diff keeps the
//! positions of its records in the two zones, not copies: diffing a fully
//! re-signed zone costs 8 bytes per changed record until it is encoded.
//!
//! **What "the same record" is.** Owners compare as the zone orders them:
//! canonically, that is without regard to ASCII case (DNS names are
//! case-insensitive, and the zone reader keeps the case it read, so
//! `A.example.` in one version and `a.example.` in the next, with type,
//! RDATA and TTL equal, are one record and no change). Type, class, RDATA
//! (byte for byte) and TTL must be identical. A TTL change is therefore a
//! removal and an addition, as IXFR carries it. The SOA appears as the old
//! SOA removed and the new SOA added.
//!
//! Encoding to bytes for the journal is in [`wire`], text for people in
//! [`text`].

mod text;
mod wire;

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;

use rayon::iter::{IntoParallelIterator as _, ParallelIterator as _};

pub use text::TextStyle;
pub use wire::{DecodeError, EncodedDiff};

use super::arena::{RecordRef, Zone};
use super::name::{Name, NameRef};
use super::rtype::Rtype;

/// Why two zones could not be diffed, or a diff not encoded.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A version has no SOA at its apex: it has no serial, and IXFR has
    /// nothing to name it by.
    #[error("the {version} version of zone {zone} has no SOA at its apex (or an unreadable one)")]
    NoSoa {
        /// `old` or `new`.
        version: &'static str,
        /// The zone.
        zone: String,
    },
    /// The two zones have different apexes.
    #[error("zones {old} and {new} are not versions of one zone")]
    Origin {
        /// The old zone's apex.
        old: String,
        /// The new zone's apex.
        new: String,
    },
    /// The two zones have different classes.
    #[error("zone {zone}: class {old} and class {new} are not versions of one zone")]
    Class {
        /// The zone.
        zone: String,
        /// The old zone's class.
        old: u16,
        /// The new zone's class.
        new: u16,
    },
    /// A record the difference removes is not in the version it is
    /// applied to.
    #[error("zone {zone}: the difference removes {owner} {rtype}, which version {serial} does not have")]
    NotInOld {
        /// The zone.
        zone: String,
        /// The record's owner.
        owner: String,
        /// Its type.
        rtype: Rtype,
        /// The serial of the version it was applied to.
        serial: u32,
    },
    /// The difference starts at another serial than the version it is
    /// applied to.
    #[error("zone {zone}: a difference from serial {from} cannot be applied to version {serial}")]
    NotFrom {
        /// The zone.
        zone: String,
        /// Where the difference starts.
        from: u32,
        /// The version's serial.
        serial: u32,
    },
    /// More records in a section than the encoding counts (2^32 - 1).
    #[error("zone {zone}: {count} records in one section of a diff: more than its encoding can count")]
    TooLarge {
        /// The zone.
        zone: String,
        /// The records.
        count: usize,
    },
}

/// The difference between an old and a new version of one zone.
pub struct ZoneDiff<'a> {
    origin: Name,
    class: u16,
    old_serial: u32,
    new_serial: u32,
    removed: Section<'a>,
    added: Section<'a>,
}

/// One side of a diff, in canonical order.
enum Section<'a> {
    /// Records of a zone the diff was made from, by position.
    Picked {
        /// The zone.
        zone: &'a Zone,
        /// Positions of its records, ascending.
        at: Vec<usize>,
    },
    /// Records read back from an encoded diff.
    Decoded(Zone),
}

/// How many pieces a merge is cut into per core: some slack, so that a
/// piece of dense change does not leave the other cores idle.
const PIECES_PER_CORE: usize = 4;

/// Zones smaller than this are merged in one piece: cutting costs more
/// than it saves.
const PARALLEL_FROM: usize = 1 << 16;

impl<'a> ZoneDiff<'a> {
    /// What changed from `old` to `new` (two versions of one zone): one
    /// merge of the two record sequences, in pieces on all cores.
    pub fn between(old: &'a Zone, new: &'a Zone) -> Result<ZoneDiff<'a>, DiffError> {
        let pieces =
            if old.len().max(new.len()) < PARALLEL_FROM { 1 } else { rayon::current_num_threads() * PIECES_PER_CORE };
        ZoneDiff::between_in_pieces(old, new, pieces)
    }

    /// [`ZoneDiff::between`] cut into at most `pieces` independent merges.
    fn between_in_pieces(old: &'a Zone, new: &'a Zone, pieces: usize) -> Result<ZoneDiff<'a>, DiffError> {
        let (old_serial, new_serial) = check_versions(old, new)?;
        let cuts = cut(old, new, pieces);
        let merged: Vec<(Vec<usize>, Vec<usize>)> =
            cuts.into_par_iter().map(|(olds, news)| merge(old, new, olds, news)).collect();
        let (removed, added): (Vec<Vec<usize>>, Vec<Vec<usize>>) = merged.into_iter().unzip();
        Ok(ZoneDiff {
            origin: new.origin().to_owned(),
            class: new.class(),
            old_serial,
            new_serial,
            removed: Section::Picked { zone: old, at: removed.concat() },
            added: Section::Picked { zone: new, at: added.concat() },
        })
    }

    /// The zone's apex.
    pub fn origin(&self) -> NameRef<'_> {
        self.origin.as_ref()
    }

    /// The zone's class.
    pub fn class(&self) -> u16 {
        self.class
    }

    /// The old version's SOA serial.
    pub fn old_serial(&self) -> u32 {
        self.old_serial
    }

    /// The new version's SOA serial.
    pub fn new_serial(&self) -> u32 {
        self.new_serial
    }

    /// How many records the new version no longer has (the old SOA among them).
    pub fn removed_len(&self) -> usize {
        self.removed.len()
    }

    /// How many records the new version has that the old had not (the new
    /// SOA among them).
    pub fn added_len(&self) -> usize {
        self.added.len()
    }

    /// No record changed at all (the two versions hold the same records,
    /// SOA included).
    pub fn is_empty(&self) -> bool {
        self.removed.len() == 0 && self.added.len() == 0
    }

    /// The records removed, in IXFR order: the old SOA first, then the
    /// rest in canonical order.
    pub fn removed(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        self.removed.soa_first()
    }

    /// The records added, in IXFR order: the new SOA first, then the rest
    /// in canonical order.
    pub fn added(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        self.added.soa_first()
    }

    /// The new version, made from `old` (the version this difference
    /// starts at): its removed records taken out, its added ones put in.
    /// Every removed record must be in `old`, exactly.
    pub fn apply_to(&self, old: &Zone) -> Result<Zone, DiffError> {
        let zone = || old.origin().to_string();
        let serial = old.soa_serial().ok_or_else(|| DiffError::NoSoa { version: "old", zone: zone() })?;
        if serial != self.old_serial {
            return Err(DiffError::NotFrom { zone: zone(), from: self.old_serial, serial });
        }
        let mut gone = Vec::with_capacity(self.removed.len());
        for record in self.removed() {
            let at = position_of(old, record).ok_or_else(|| DiffError::NotInOld {
                zone: zone(),
                owner: record.owner.to_string(),
                rtype: record.rtype,
                serial,
            })?;
            gone.push(at);
        }
        let mut added = super::arena::ZoneBuilder::new(old.origin().to_owned(), old.class());
        for record in self.added() {
            added.push(record.owner, record.rtype, record.ttl, record.rdata);
        }
        Ok(old.edited_at(gone, added))
    }
}

/// Where `record` (owner in any case, type, TTL, RDATA) is in `zone`.
fn position_of(zone: &Zone, record: RecordRef<'_>) -> Option<usize> {
    let start = zone.position_of(record.owner);
    zone.records_in(start..zone.len())
        .take_while(|r| r.owner.eq_ignore_case(record.owner))
        .position(|r| r.rtype == record.rtype && r.ttl == record.ttl && r.rdata == record.rdata)
        .map(|offset| start + offset)
}

impl fmt::Debug for ZoneDiff<'_> {
    /// Counts, not records: a diff may hold millions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZoneDiff")
            .field("origin", &self.origin)
            .field("old_serial", &self.old_serial)
            .field("new_serial", &self.new_serial)
            .field("removed", &self.removed.len())
            .field("added", &self.added.len())
            .finish()
    }
}

impl Section<'_> {
    fn len(&self) -> usize {
        match self {
            Section::Picked { at, .. } => at.len(),
            Section::Decoded(zone) => zone.len(),
        }
    }

    /// The records in canonical order.
    fn canonical(&self) -> Box<dyn Iterator<Item = RecordRef<'_>> + Send + '_> {
        match self {
            Section::Picked { zone, at } => Box::new(at.iter().filter_map(|&i| zone.record_at(i))),
            Section::Decoded(zone) => Box::new(zone.records()),
        }
    }

    /// The SOA first, then the rest in canonical order.
    fn soa_first(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        let soa = self.canonical().filter(|r| r.rtype == Rtype::SOA);
        soa.chain(self.canonical().filter(|r| r.rtype != Rtype::SOA))
    }
}

/// The two zones are versions of one zone with serials: `(old, new)`.
fn check_versions(old: &Zone, new: &Zone) -> Result<(u32, u32), DiffError> {
    let zone = new.origin().to_string();
    if !old.origin().eq_ignore_case(new.origin()) {
        return Err(DiffError::Origin { old: old.origin().to_string(), new: zone });
    }
    if old.class() != new.class() {
        return Err(DiffError::Class { zone, old: old.class(), new: new.class() });
    }
    let old_serial = old.soa_serial().ok_or_else(|| DiffError::NoSoa { version: "old", zone: zone.clone() })?;
    let new_serial = new.soa_serial().ok_or(DiffError::NoSoa { version: "new", zone })?;
    Ok((old_serial, new_serial))
}

/// Cuts both zones at the same owner names into at most `pieces` pairs
/// of ranges: every record of an old range sorts before every record of
/// the next old range and of the next new range, and the other way round,
/// so the pairs merge independently. Cuts fall where a node of the old
/// zone starts.
fn cut(old: &Zone, new: &Zone, pieces: usize) -> Vec<(Range<usize>, Range<usize>)> {
    let pieces = pieces.max(1);
    let mut bounds = vec![(0, 0)];
    for piece in 1..pieces {
        let Some(record) = old.record_at(old.len() * piece / pieces) else { break };
        let at = (old.position_of(record.owner), new.position_of(record.owner));
        if bounds.last().is_some_and(|last| last.0 < at.0) {
            bounds.push(at);
        }
    }
    bounds.push((old.len(), new.len()));
    bounds.windows(2).map(|w| (w[0].0..w[1].0, w[0].1..w[1].1)).collect()
}

/// Merges one pair of ranges: the positions of the old records missing
/// from the new range (removed), and of the new records missing from the
/// old range (added).
fn merge(old: &Zone, new: &Zone, olds: Range<usize>, news: Range<usize>) -> (Vec<usize>, Vec<usize>) {
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    let mut a = olds.clone().zip(old.records_in(olds)).peekable();
    let mut b = news.clone().zip(new.records_in(news)).peekable();
    while let (Some(&(i, x)), Some(&(j, y))) = (a.peek(), b.peek()) {
        match cmp_records(&x, &y) {
            Ordering::Less => {
                removed.push(i);
                a.next();
            }
            Ordering::Greater => {
                added.push(j);
                b.next();
            }
            Ordering::Equal => {
                a.next();
                b.next();
            }
        }
    }
    removed.extend(a.map(|(i, _)| i));
    added.extend(b.map(|(j, _)| j));
    (removed, added)
}

/// The order of records in a zone: owner (canonical), type, RDATA, TTL.
/// Equal means the same record.
fn cmp_records(a: &RecordRef<'_>, b: &RecordRef<'_>) -> Ordering {
    cmp_owners(a.owner, b.owner).then(a.rtype.cmp(&b.rtype)).then_with(|| a.rdata.cmp(b.rdata)).then(a.ttl.cmp(&b.ttl))
}

/// Canonical order of owners; most neighbours in a merge are the very
/// same bytes, which is cheaper to see than to order.
fn cmp_owners(a: NameRef<'_>, b: NameRef<'_>) -> Ordering {
    if a.wire() == b.wire() { Ordering::Equal } else { a.canonical_cmp(b) }
}

#[cfg(test)]
mod tests;
