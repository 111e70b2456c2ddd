//! The change path: a new signed version made by editing the version
//! served, the way Knot applies a change to the zone it holds, instead of
//! signing the whole zone again.
//!
//! **Regions.** The canonical order keeps every subtree together, so the
//! zone falls into independent regions: the apex node, and the subtree
//! of each name one label below the apex. What the full signer makes for
//! a region (roles, glue, empty non-terminals, signatures, NSEC bitmaps)
//! depends on that region's records alone. A change touches a few
//! regions; those (and the apex, whose SOA serial always moves) are
//! taken out of the served version and made again from the new input by
//! the full signer's own code (`prepare`, `ZoneTree`, `Run::node_out`),
//! keeping the signatures of RRsets that did not change.
//!
//! **The chain.** The NSEC or NSEC3 records of the regions are made again
//! too; around them the chain is edited: an entry the regions no longer
//! have is removed, a new one put in, and an untouched entry whose next
//! name (or hash) now points elsewhere rewritten and signed again.
//!
//! **When not.** The served version must have been signed with the same
//! keys and settings (the caller checks a [`SignSettings::fingerprint`])
//! and have no signature due for refresh; a change larger than a small
//! share of the zone, a region of more than [`MAX_REGION_RECORDS`], or
//! anything that does not add up (a hash collision, an NSEC3 the served
//! version should have and lacks) returns `None`: the caller signs in
//! full. Whatever this makes goes through the same gate as a full
//! signing, which walks every record.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::atomic::AtomicBool;

use rayon::prelude::*;

use std::ops::Bound;

use super::denial::{self, Nsec3Record, Nsec3Settings, hashed_owner, nsec3_subjects};
use super::prepare;
use super::reuse::Previous;
use super::{Denial, Run, SignError, SignSettings, SignStats, SigningKeys, check_signers};
use crate::zone::diff::ZoneDiff;
use crate::zone::dnssec::{Nsec, Nsec3, nsec3_owner_hash};
use crate::zone::tree::{Role, ZoneTree};
use crate::zone::{Name, NameRef, RecordRef, Rtype, Zone, ZoneBuilder};

/// A change larger than this share of the zone's records (1/N) is signed
/// in full: past it, editing costs about what signing again does.
const MAX_CHANGED_SHARE: usize = 20;
/// A region (one subtree below the apex) larger than this is signed in
/// full rather than edited.
const MAX_REGION_RECORDS: usize = 100_000;

/// The version served and the unsigned input it was signed from.
#[derive(Debug, Clone, Copy)]
pub struct Basis<'a> {
    /// The signed version served (verified).
    pub signed: &'a Zone,
    /// The unsigned input it was signed from.
    pub unsigned: &'a Zone,
}

/// The new signed version for `unsigned`, made by editing `basis.signed`
/// with what changed since `basis.unsigned`; `None` when the change does
/// not suit the change path (then sign in full). The caller has checked
/// that `basis.signed` was made with these keys and settings and that
/// none of its signatures is due for refresh.
pub fn sign_changes(
    basis: Basis<'_>,
    unsigned: &Zone,
    keys: &SigningKeys<'_>,
    settings: &SignSettings,
    stop: Option<&AtomicBool>,
) -> Result<Option<(Zone, SignStats)>, SignError> {
    let _span = tracing::info_span!("sign changes", zone = %unsigned.origin()).entered();
    check_signers(keys)?;
    if keys.unsigned {
        // No chain to edit: an unsigned zone is put out in full (no
        // signing to save).
        return Ok(None);
    }
    let Some(regions) = changed_regions(basis, unsigned) else { return Ok(None) };
    tracing::debug!(regions = regions.len(), "regions of the change found");
    let served = basis.signed;
    let old_ranges: Option<Vec<Range<usize>>> = regions.iter().map(|root| region_range(served, root)).collect();
    let Some(old_ranges) = old_ranges else { return Ok(None) };
    let Some(new_part) = region_records(unsigned, &regions) else { return Ok(None) };
    let new = prepare::prepare(&new_part, keys, settings)?;
    if denial_ttl(served) != Some(new.denial_ttl) {
        // The SOA's TTL or MINIMUM moved: every NSEC or NSEC3 changes.
        return Ok(None);
    }
    let old_part = copy_ranges(served, &old_ranges);
    let (old_tree, new_tree) = (ZoneTree::build(&old_part), ZoneTree::build(&new.zone));
    let Some(edit) = ChainEdit::new(served, &old_tree, &new_tree, &settings.denial)? else { return Ok(None) };
    let Some(plan) = edit.plan(served) else { return Ok(None) };
    tracing::debug!(records = plan.records.len(), "the chain's edit planned");
    let previous = Previous::new(served, settings.now, settings.renew_within);
    let run = Run { zone: &new.zone, keys, settings, denial_ttl: new.denial_ttl, previous: Some(&previous), stop };
    run.check_stop()?;
    let mut stats = SignStats { serial: new.serial, dropped: new.dropped as u64, ..SignStats::default() };
    let added = sign_regions(&run, served, &new_tree, &plan, &mut stats)?;
    let ranges = old_ranges.into_iter().chain(plan.dropped_ranges.iter().cloned());
    let dropped: Vec<usize> = ranges.flatten().chain(plan.dropped_records.iter().copied()).collect();
    tracing::debug!("the regions signed");
    let zone = served.edited_at(dropped, added);
    tracing::debug!("the served version edited");
    // Any change moves the digest of the whole zone: the apex ZONEMD is
    // made again over the edited version.
    let zone = super::zonemd::fill(zone, keys, settings, Some(served), &mut stats)?;
    count_records(&zone, &mut stats);
    tracing::debug!(regions = regions.len(), rrsigs = stats.rrsigs, records = stats.records, "changes signed");
    Ok(Some((zone, stats)))
}

/// Signs the regions' nodes (with their NSECs) and the chain's new and
/// rewritten entries.
fn sign_regions(
    run: &Run<'_>,
    served: &Zone,
    regions: &ZoneTree<'_>,
    plan: &ChainPlan,
    stats: &mut SignStats,
) -> Result<ZoneBuilder, SignError> {
    let mut out = ZoneBuilder::new(served.origin().to_owned(), served.class());
    for zn in &regions.nodes {
        let old = served.node(zn.node.name());
        run.node_out(zn, old.as_ref(), &mut out, stats)?;
        if let Some(next) = plan.nsec_next.get(&Canonical(zn.node.name().to_owned())) {
            let rdata = denial::nsec_rdata(zn, next.as_ref());
            run.denial_out(zn.node.name(), Rtype::NSEC, &rdata, old.as_ref(), &mut out, stats)?;
        }
    }
    for record in &plan.records {
        let old = served.node(record.owner.as_ref());
        run.denial_out(record.owner.as_ref(), plan.rtype, &record.rdata, old.as_ref(), &mut out, stats)?;
    }
    Ok(out)
}

/// The TTL of the served version's denial records, as its apex NSEC3PARAM
/// or NSEC has it.
fn denial_ttl(served: &Zone) -> Option<u32> {
    let apex = served.node(served.origin())?;
    apex.rrset(Rtype::NSEC3PARAM).or_else(|| apex.rrset(Rtype::NSEC)).map(|set| set.ttl())
}

/// A name ordered canonically (RFC 4034 §6.1), for ordered sets.
#[derive(Debug, Clone)]
struct Canonical(Name);

impl Ord for Canonical {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.as_ref().canonical_cmp(other.0.as_ref())
    }
}

impl PartialOrd for Canonical {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Canonical {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Canonical {}

/// The apex and the roots of the regions the change touches, in
/// canonical order (the apex first); `None` for a change too large.
fn changed_regions(basis: Basis<'_>, unsigned: &Zone) -> Option<Vec<Name>> {
    let diff = ZoneDiff::between(basis.unsigned, unsigned).ok()?;
    if (diff.removed_len() + diff.added_len()) * MAX_CHANGED_SHARE > unsigned.len().max(1) {
        return None;
    }
    let apex = unsigned.origin();
    let region_depth = apex.label_count() + 1;
    let roots: BTreeSet<Canonical> = diff
        .removed()
        .chain(diff.added())
        .filter(|record| !record.owner.eq_ignore_case(apex))
        .map(|record| Canonical(record.owner.suffix(region_depth).to_owned()))
        .collect();
    Some(std::iter::once(apex.to_owned()).chain(roots.into_iter().map(|root| root.0)).collect())
}

/// The records of `zone` in the region rooted at `root` (the apex node
/// alone for the apex), as positions; `None` for a region too large.
fn region_range(zone: &Zone, root: &Name) -> Option<Range<usize>> {
    let root = root.as_ref();
    let in_region: &dyn Fn(NameRef<'_>) -> bool = if root.eq_ignore_case(zone.origin()) {
        &|owner| owner.eq_ignore_case(root)
    } else {
        &|owner| owner.is_at_or_below(root)
    };
    let start = zone.position_of(root);
    let len =
        zone.records_in(start..zone.len()).take(MAX_REGION_RECORDS + 1).take_while(|r| in_region(r.owner)).count();
    (len <= MAX_REGION_RECORDS).then_some(start..start + len)
}

/// The unsigned input's records in the regions.
fn region_records(unsigned: &Zone, regions: &[Name]) -> Option<Zone> {
    let ranges: Option<Vec<Range<usize>>> = regions.iter().map(|root| region_range(unsigned, root)).collect();
    Some(copy_ranges(unsigned, &ranges?))
}

/// A zone of the records of `zone` at the positions `ranges`.
fn copy_ranges(zone: &Zone, ranges: &[Range<usize>]) -> Zone {
    let mut part = ZoneBuilder::new(zone.origin().to_owned(), zone.class());
    for range in ranges {
        for record in zone.records_in(range.clone()) {
            part.push(record.owner, record.rtype, record.ttl, record.rdata);
        }
    }
    part.finish()
}

/// The chain around the regions: what leaves it, what comes in, and the
/// untouched entries whose next field changes. Keys are owner names: the
/// NSEC owners, or the NSEC3 hashed owners (whose canonical order is the
/// order of the hashes).
#[derive(Debug)]
struct ChainEdit<'a> {
    /// The NSEC3 settings (None: NSEC).
    nsec3: Option<&'a Nsec3Settings>,
    /// The chain's records in the served version, by position, in
    /// canonical order of their owners.
    old_chain: Vec<usize>,
    /// Keys of the regions' entries in the served version.
    removed: BTreeSet<Canonical>,
    /// The regions' new entries, with their NSEC3 type bitmaps (empty for
    /// NSEC: the node's NSEC is made from the node).
    added: BTreeMap<Canonical, Vec<u8>>,
}

/// What the chain's edit makes and takes out besides the regions.
#[derive(Debug)]
struct ChainPlan {
    /// NSEC or NSEC3.
    rtype: Rtype,
    /// NSEC: the next name of each entry in the regions.
    nsec_next: BTreeMap<Canonical, Name>,
    /// NSEC3: the regions' entries and the rewritten ones; NSEC: the
    /// rewritten entries outside the regions.
    records: Vec<Nsec3Record>,
    /// Served records to leave out beyond the regions, by position: the
    /// NSEC3 nodes of removed and rewritten entries; the NSEC and its
    /// RRSIG at a rewritten NSEC entry.
    dropped_ranges: Vec<Range<usize>>,
    dropped_records: BTreeSet<usize>,
}

impl<'a> ChainEdit<'a> {
    /// The chain's edit for the regions, from the structure of the served
    /// version's records there (`old_tree`) and of the new ones
    /// (`new_tree`).
    fn new(
        served: &Zone,
        old_tree: &ZoneTree<'_>,
        new_tree: &ZoneTree<'_>,
        denial: &'a Denial,
    ) -> Result<Option<ChainEdit<'a>>, SignError> {
        // A name of the zone that is also a hashed owner: not for this path.
        if old_tree.nodes.iter().any(|zn| zn.role == Role::Nsec3) {
            return Ok(None);
        }
        let apex = served.origin();
        let (nsec3, removed, added) = match denial {
            Denial::Nsec => {
                let in_chain = |tree: &ZoneTree<'_>| -> Vec<Canonical> {
                    let names = tree.nodes.iter().filter(|zn| zn.role.is_authoritative_name());
                    names.map(|zn| Canonical(zn.node.name().to_owned())).collect()
                };
                let added = in_chain(new_tree).into_iter().map(|key| (key, Vec::new())).collect();
                (None, in_chain(old_tree).into_iter().collect(), added)
            }
            Denial::Nsec3(settings) => {
                let owner = |hash: &[u8; 20]| Canonical(hashed_owner(hash, apex));
                let removed = nsec3_subjects(old_tree, apex, settings)?.iter().map(|h| owner(&h.hash)).collect();
                let mut added = BTreeMap::new();
                for hashed in nsec3_subjects(new_tree, apex, settings)? {
                    if added.insert(owner(&hashed.hash), hashed.bitmap).is_some() {
                        return Ok(None);
                    }
                }
                (Some(settings), removed, added)
            }
        };
        let mut edit = ChainEdit { nsec3, old_chain: Vec::new(), removed, added };
        let rtype = edit.rtype();
        edit.old_chain = (0..served.len()).into_par_iter().filter(|&at| record_at(served, at).rtype == rtype).collect();
        Ok(Some(edit))
    }

    /// NSEC or NSEC3.
    fn rtype(&self) -> Rtype {
        if self.nsec3.is_some() { Rtype::NSEC3 } else { Rtype::NSEC }
    }

    /// What to make and take out; `None` when the served version does not
    /// hold the chain the regions were found to have, or an entry outside
    /// them shares a key with a new one (a hash collision: the full signer
    /// names it).
    fn plan(&self, served: &Zone) -> Option<ChainPlan> {
        let mut plan = ChainPlan {
            rtype: self.rtype(),
            nsec_next: BTreeMap::new(),
            records: Vec::new(),
            dropped_ranges: Vec::new(),
            dropped_records: BTreeSet::new(),
        };
        for key in &self.removed {
            self.old_index(served, key.0.as_ref())?;
            if self.nsec3.is_some() {
                plan.dropped_ranges.push(node_range(served, key.0.as_ref())?);
            }
        }
        for (key, bitmap) in &self.added {
            if !self.removed.contains(key) && self.old_index(served, key.0.as_ref()).is_some() {
                return None;
            }
            let next = self.next_key(served, key.0.as_ref());
            if self.nsec3.is_some() {
                let rdata = self.rdata(next.as_ref(), bitmap)?;
                plan.records.push(Nsec3Record { owner: key.0.clone(), rdata });
            } else {
                plan.nsec_next.insert(key.clone(), next);
            }
        }
        self.rewrite_neighbours(served, &mut plan)?;
        plan.records.sort_by(|a, b| a.owner.as_ref().canonical_cmp(b.owner.as_ref()));
        Some(plan)
    }

    /// The untouched entries just before a removed or added key whose next
    /// field changes: their new RDATA (the old type bitmap kept), and the
    /// served records they replace.
    fn rewrite_neighbours(&self, served: &Zone, plan: &mut ChainPlan) -> Option<()> {
        let before: BTreeSet<usize> = self
            .removed
            .iter()
            .chain(self.added.keys())
            .filter_map(|key| self.old_before(served, key.0.as_ref()))
            .collect();
        for index in before {
            let old = record_at(served, self.old_chain[index]);
            let bitmap = match self.nsec3 {
                Some(_) => Nsec3::parse(old.rdata)?.types,
                None => Nsec::parse(old.rdata)?.types,
            };
            let rdata = self.rdata(self.next_key(served, old.owner).as_ref(), bitmap.bytes())?;
            if rdata == old.rdata {
                continue;
            }
            let range = node_range(served, old.owner)?;
            if self.nsec3.is_some() {
                plan.dropped_ranges.push(range);
            } else {
                let nsec = Rtype::NSEC.0.to_be_bytes();
                let replaced = |r: RecordRef<'_>| {
                    r.rtype == Rtype::NSEC || (r.rtype == Rtype::RRSIG && r.rdata.get(..2) == Some(&nsec[..]))
                };
                plan.dropped_records.extend(range.filter(|&at| replaced(record_at(served, at))));
            }
            plan.records.push(Nsec3Record { owner: old.owner.to_owned(), rdata });
        }
        Some(())
    }

    /// The RDATA of an entry whose next entry is `next`, with `bitmap`.
    fn rdata(&self, next: NameRef<'_>, bitmap: &[u8]) -> Option<Vec<u8>> {
        Some(match self.nsec3 {
            Some(settings) => settings.rdata(&nsec3_owner_hash(next)?, bitmap),
            None => [&next.wire().to_ascii_lowercase()[..], bitmap].concat(),
        })
    }

    /// The index in `old_chain` of the entry with key `key`.
    fn old_index(&self, served: &Zone, key: NameRef<'_>) -> Option<usize> {
        let at = self.old_chain.partition_point(|&p| record_at(served, p).owner.canonical_cmp(key) == Ordering::Less);
        let found = self.old_chain.get(at).is_some_and(|&p| record_at(served, p).owner.eq_ignore_case(key));
        found.then_some(at)
    }

    fn untouched(&self, served: &Zone, index: usize) -> bool {
        let key = record_at(served, self.old_chain[index]).owner;
        !self.removed.contains(&Canonical(key.to_owned()))
    }

    /// The first untouched entry of the served chain after `key` (no
    /// wrapping), or the first of all when `key` is None.
    fn old_after<'z>(&self, served: &'z Zone, key: Option<NameRef<'_>>) -> Option<NameRef<'z>> {
        let from = key.map_or(0, |key| {
            self.old_chain.partition_point(|&p| record_at(served, p).owner.canonical_cmp(key) != Ordering::Greater)
        });
        let index = (from..self.old_chain.len()).find(|&index| self.untouched(served, index))?;
        Some(record_at(served, self.old_chain[index]).owner)
    }

    /// The last untouched entry of the served chain before `key`, wrapping
    /// to the end.
    fn old_before(&self, served: &Zone, key: NameRef<'_>) -> Option<usize> {
        let below =
            self.old_chain.partition_point(|&p| record_at(served, p).owner.canonical_cmp(key) == Ordering::Less);
        let untouched = |&index: &usize| self.untouched(served, index);
        (0..below).rev().find(untouched).or_else(|| (below..self.old_chain.len()).rev().find(untouched))
    }

    /// The key that follows `key` in the new chain, wrapping to the first
    /// (`key` itself in a chain of one).
    fn next_key(&self, served: &Zone, key: NameRef<'_>) -> Name {
        let from = Canonical(key.to_owned());
        let old = self.old_after(served, Some(key)).map(|name| Canonical(name.to_owned()));
        let new = self.added.range((Bound::Excluded(&from), Bound::Unbounded)).next().map(|(k, _)| k.clone());
        let after = old.into_iter().chain(new).min();
        let first = || {
            let old = self.old_after(served, None).map(|name| Canonical(name.to_owned()));
            old.into_iter().chain(self.added.keys().next().cloned()).min()
        };
        after.or_else(first).map_or_else(|| key.to_owned(), |key| key.0)
    }
}

/// The positions of the records of the node at `name`.
fn node_range(zone: &Zone, name: NameRef<'_>) -> Option<Range<usize>> {
    let start = zone.position_of(name);
    let len = zone.records_in(start..zone.len()).take_while(|r| r.owner.eq_ignore_case(name)).count();
    (len > 0).then_some(start..start + len)
}

/// The record at a position known to be in the zone.
fn record_at(zone: &Zone, at: usize) -> RecordRef<'_> {
    zone.record_at(at).unwrap_or_else(|| unreachable!("position {at} of a zone of {} records", zone.len()))
}

/// Counts what the new version holds, on all cores.
fn count_records(zone: &Zone, stats: &mut SignStats) {
    let (names, rrsigs) = (0..zone.len())
        .into_par_iter()
        .map(|at| {
            let r = record_at(zone, at);
            let new_name = at == 0 || !record_at(zone, at - 1).owner.eq_ignore_case(r.owner);
            (u64::from(new_name), u64::from(r.rtype == Rtype::RRSIG))
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    stats.names = names;
    stats.records = zone.len() as u64;
    stats.rrsigs_kept = rrsigs.saturating_sub(stats.rrsigs);
}
