//! The in-memory zone: every record in one byte arena, records sorted in
//! RFC 4034 canonical order and grouped into nodes and RRsets.
//!
//! A record costs 32 bytes of index plus its RDATA; consecutive records
//! of one owner share the owner's bytes. That keeps a zone of millions
//! of delegations to a few hundred megabytes.

use std::cmp::Ordering;
use std::sync::Arc;

use rayon::iter::{IntoParallelIterator as _, ParallelIterator as _};
use rayon::slice::ParallelSliceMut;

use super::name::{Name, NameRef};
use super::rtype::Rtype;

mod edit;

/// One record's place in the arena.
#[derive(Debug, Clone, Copy)]
struct Rec {
    owner: usize,
    rdata: usize,
    rdata_len: u16,
    owner_len: u8,
    rtype: Rtype,
    ttl: u32,
}

/// Collects records as a reader produces them; `finish` sorts them.
#[derive(Debug)]
pub struct ZoneBuilder {
    origin: Name,
    class: u16,
    data: Vec<u8>,
    recs: Vec<Rec>,
    last_owner: Option<(usize, u8)>,
}

/// A zone held in canonical order.
#[derive(Debug)]
pub struct Zone {
    origin: Name,
    class: u16,
    data: Arena,
    recs: Vec<Rec>,
    /// Bytes of `data` that records dropped by [`Zone::edited`] left
    /// behind (RDATA only; an owner may still be shared).
    dead: usize,
}

/// A zone's bytes (owner names and RDATA), addressed by offset: a base
/// shared, by `Arc`, with the versions the zone was edited from or into,
/// and a tail of the bytes edits added since the base was made
/// ([`Zone::edited`]). Offsets below the base's length are in the base.
/// Two versions of a zone of millions of records then hold its bytes
/// once, and an edit copies only the tail.
#[derive(Debug)]
struct Arena {
    base: Arc<Vec<u8>>,
    tail: Vec<u8>,
}

impl Arena {
    fn new(base: Vec<u8>) -> Arena {
        Arena { base: Arc::new(base), tail: Vec::new() }
    }

    fn len(&self) -> usize {
        self.base.len() + self.tail.len()
    }
}

/// Bytes addressed by offset: a builder's vector, or a zone's arena.
trait Bytes {
    fn at(&self, offset: usize, len: usize) -> &[u8];
}

impl Bytes for [u8] {
    fn at(&self, offset: usize, len: usize) -> &[u8] {
        &self[offset..offset + len]
    }
}

impl Bytes for Arena {
    #[inline]
    fn at(&self, offset: usize, len: usize) -> &[u8] {
        match offset.checked_sub(self.base.len()) {
            None => &self.base[offset..offset + len],
            Some(in_tail) => &self.tail[in_tail..in_tail + len],
        }
    }
}

/// A record borrowed from a zone.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// Owner name as written in the input (case preserved).
    pub owner: NameRef<'a>,
    /// Record type.
    pub rtype: Rtype,
    /// Time to live.
    pub ttl: u32,
    /// RDATA in uncompressed wire form.
    pub rdata: &'a [u8],
}

/// All records of one owner name.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    zone: &'a Zone,
    recs: &'a [Rec],
}

/// Consecutive nodes of a zone, in canonical order: one piece of a pass
/// over the nodes on several cores.
#[derive(Debug, Clone, Copy)]
pub struct NodeRun<'a> {
    zone: &'a Zone,
    recs: &'a [Rec],
}

/// All records of one owner name and type.
#[derive(Debug, Clone, Copy)]
pub struct Rrset<'a> {
    zone: &'a Zone,
    recs: &'a [Rec],
}

impl ZoneBuilder {
    /// An empty zone for `origin` in class `class`.
    pub fn new(origin: Name, class: u16) -> ZoneBuilder {
        ZoneBuilder { origin, class, data: Vec::new(), recs: Vec::new(), last_owner: None }
    }

    /// An empty zone with room for about `text_len` bytes of master-file
    /// text: fewer reallocations while a large piece is read.
    pub fn with_capacity_for_text(origin: Name, class: u16, text_len: usize) -> ZoneBuilder {
        let mut builder = ZoneBuilder::new(origin, class);
        builder.data.reserve(text_len / 2);
        builder.recs.reserve(text_len / 64);
        builder
    }

    /// An empty zone of `zone`'s origin and class with room for a zone a
    /// quarter larger than it (a signed version of it): no reallocation
    /// of a large arena while it fills.
    pub fn with_room_of(zone: &Zone) -> ZoneBuilder {
        let mut builder = ZoneBuilder::new(zone.origin.clone(), zone.class);
        builder.data.reserve(zone.data.len() + zone.data.len() / 4);
        builder.recs.reserve(zone.recs.len() + zone.recs.len() / 4);
        builder
    }

    /// The origin the zone is built for.
    pub fn origin(&self) -> NameRef<'_> {
        self.origin.as_ref()
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    /// True before the first record.
    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// Adds one record. RDATA longer than 65535 octets cannot exist in
    /// wire form; the reader rejects it before calling this.
    pub fn push(&mut self, owner: NameRef<'_>, rtype: Rtype, ttl: u32, rdata: &[u8]) {
        let owner_wire = owner.wire();
        let owner_at = match self.last_owner {
            Some((at, len)) if &self.data[at..at + len as usize] == owner_wire => at,
            _ => {
                let at = self.data.len();
                self.data.extend_from_slice(owner_wire);
                self.last_owner = Some((at, owner_wire.len() as u8));
                at
            }
        };
        let rdata_at = self.data.len();
        self.data.extend_from_slice(rdata);
        self.recs.push(Rec {
            owner: owner_at,
            rdata: rdata_at,
            rdata_len: rdata.len() as u16,
            owner_len: owner_wire.len() as u8,
            rtype,
            ttl,
        });
    }

    /// Appends the records of `other` (a builder for the same zone), in
    /// their order, after this one's.
    pub fn append(&mut self, other: ZoneBuilder) {
        let base = self.data.len();
        self.data.extend_from_slice(&other.data);
        self.recs.extend(other.recs.into_iter().map(|rec| Rec {
            owner: rec.owner + base,
            rdata: rec.rdata + base,
            ..rec
        }));
        self.last_owner = None;
    }

    /// Sorts into canonical order and drops exact duplicates (same owner,
    /// type, TTL and RDATA; RFC 2181 §5). Records that differ only in TTL
    /// are kept so that the verifier can report the mismatch.
    pub fn finish(self) -> Zone {
        let ZoneBuilder { origin, class, mut data, recs, .. } = self;
        let bytes = data.as_slice();
        let mut recs = sort_by_owner(bytes, recs);
        // Within each node (records whose owners are canonically equal),
        // order by type and RDATA: small sorts, in place, on all cores.
        recs.par_chunk_by_mut(|a, b| same_owner(bytes, a, b))
            .for_each(|node| node.sort_by(|a, b| cmp_in_node(bytes, a, b)));
        // TTL is the last key of cmp_in_node: only exact copies are equal.
        recs.dedup_by(|b, a| same_owner(bytes, a, b) && cmp_in_node(bytes, a, b) == Ordering::Equal);
        data.shrink_to_fit();
        recs.shrink_to_fit();
        Zone { origin, class, data: Arena::new(data), recs, dead: 0 }
    }
}

/// Type, then RDATA, then TTL: exact duplicates end up side by side,
/// whatever lies between them in the file, for `dedup_by` to drop.
fn cmp_in_node<D: Bytes + ?Sized>(data: &D, a: &Rec, b: &Rec) -> Ordering {
    a.rtype.cmp(&b.rtype).then_with(|| rdata_of(data, a).cmp(rdata_of(data, b))).then(a.ttl.cmp(&b.ttl))
}

/// Puts records in canonical order of their owners, keeping each owner's
/// records together. The builder stores one owner copy per run of
/// records, so the work is per run, not per record. Input already in
/// order costs one pass (on all cores). Knot writes its names in order
/// and then the NSEC3 chain, as signet's signer does: a few sorted
/// stretches, merged in linear time. BIND's order is not canonical at
/// all: each run gets a byte-comparable sort key, and the runs are sorted
/// on all cores.
fn sort_by_owner(data: &[u8], recs: Vec<Rec>) -> Vec<Rec> {
    let breaks: Vec<usize> = (1..recs.len())
        .into_par_iter()
        .filter(|&i| {
            recs[i].owner != recs[i - 1].owner && cmp_owners(data, &recs[i - 1], &recs[i]) == Ordering::Greater
        })
        .collect();
    if breaks.is_empty() {
        return recs;
    }
    if breaks.len() < 16 {
        let bounds: Vec<usize> = std::iter::once(0).chain(breaks).chain(std::iter::once(recs.len())).collect();
        let stretches = bounds.windows(2).map(|w| recs[w[0]..w[1]].to_vec());
        return stretches.reduce(|left, right| merge_stretches(data, &left, &right)).unwrap_or_default();
    }
    let runs: Vec<&[Rec]> = recs.chunk_by(|a, b| a.owner == b.owner).collect();
    let mut keys = Vec::new();
    let mut order: Vec<(usize, usize, usize)> = Vec::with_capacity(runs.len());
    for (i, run) in runs.iter().enumerate() {
        let start = keys.len();
        owner_of(data, &run[0]).write_canonical_key(&mut keys);
        order.push((start, keys.len(), i));
    }
    // Runs of one name keep their order in the file (the index decides a
    // tie), so that which duplicate survives, and with which owner case,
    // does not depend on how the file was cut into runs or pieces.
    order.par_sort_unstable_by(|a, b| keys[a.0..a.1].cmp(&keys[b.0..b.1]).then(a.2.cmp(&b.2)));
    order.iter().flat_map(|&(_, _, i)| runs[i].iter().copied()).collect()
}

/// Merges two stretches of records that are each in canonical owner
/// order, a run of one owner at a time (the left one first on a tie).
fn merge_stretches(data: &[u8], left: &[Rec], right: &[Rec]) -> Vec<Rec> {
    let mut merged = Vec::with_capacity(left.len() + right.len());
    let (mut l, mut r) = (0, 0);
    while l < left.len() && r < right.len() {
        let (from, at) =
            if cmp_owners(data, &left[l], &right[r]) == Ordering::Greater { (right, &mut r) } else { (left, &mut l) };
        let start = *at;
        let owner = from[start].owner;
        while from.get(*at).is_some_and(|rec| rec.owner == owner) {
            *at += 1;
        }
        merged.extend_from_slice(&from[start..*at]);
    }
    merged.extend_from_slice(&left[l..]);
    merged.extend_from_slice(&right[r..]);
    merged
}

fn owner_of<'a, D: Bytes + ?Sized>(data: &'a D, rec: &Rec) -> NameRef<'a> {
    NameRef::from_stored(data.at(rec.owner, rec.owner_len as usize))
}

fn rdata_of<'a, D: Bytes + ?Sized>(data: &'a D, rec: &Rec) -> &'a [u8] {
    data.at(rec.rdata, rec.rdata_len as usize)
}

/// Do two records have one owner? Canonically equal names are equal
/// wire bytes up to ASCII case: cheaper to test than to order.
fn same_owner<D: Bytes + ?Sized>(data: &D, a: &Rec, b: &Rec) -> bool {
    a.owner == b.owner || owner_of(data, a).eq_ignore_case(owner_of(data, b))
}

fn cmp_owners<D: Bytes + ?Sized>(data: &D, a: &Rec, b: &Rec) -> Ordering {
    if a.owner == b.owner {
        return Ordering::Equal;
    }
    owner_of(data, a).canonical_cmp(owner_of(data, b))
}

impl Zone {
    /// The zone's origin (apex name).
    pub fn origin(&self) -> NameRef<'_> {
        self.origin.as_ref()
    }

    /// The serial of the SOA at the apex, if the zone has one.
    pub fn soa_serial(&self) -> Option<u32> {
        let soa = self.node(self.origin())?.rrset(Rtype::SOA)?;
        soa.rdatas().next().and_then(super::dnssec::soa_fields).map(|(serial, _)| serial)
    }

    /// The zone's class.
    pub fn class(&self) -> u16 {
        self.class
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    /// True for a zone without records.
    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// Every record, in canonical order.
    pub fn records(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        self.recs.iter().map(|rec| self.record(rec))
    }

    /// The nodes (owner names with their records), in canonical order.
    pub fn nodes(&self) -> impl Iterator<Item = Node<'_>> + '_ {
        NodeRun { zone: self, recs: &self.recs }.nodes()
    }

    /// The nodes at or after `name`, in canonical order: one binary search,
    /// then a walk (for a caller that visits names in order).
    pub fn nodes_from(&self, name: NameRef<'_>) -> impl Iterator<Item = Node<'_>> + '_ {
        let first = self.recs.partition_point(|rec| owner_of(&self.data, rec).canonical_cmp(name) == Ordering::Less);
        NodeRun { zone: self, recs: &self.recs[first..] }.nodes()
    }

    /// The nodes cut into at most `pieces` runs of consecutive nodes, in
    /// canonical order; no node is split between two runs.
    pub fn node_runs(&self, pieces: usize) -> Vec<NodeRun<'_>> {
        let len = self.recs.len();
        let pieces = pieces.max(1);
        let mut runs = Vec::with_capacity(pieces);
        let mut start = 0;
        for piece in 1..=pieces {
            let mut end = (len * piece / pieces).max(start);
            while end > start && end < len && same_owner(&self.data, &self.recs[end - 1], &self.recs[end]) {
                end += 1;
            }
            if end > start {
                runs.push(NodeRun { zone: self, recs: &self.recs[start..end] });
                start = end;
            }
        }
        runs
    }

    /// Is there a node at `name` or below it (so that `name` exists, if
    /// only as an empty non-terminal)?
    pub fn has_name_at_or_below(&self, name: NameRef<'_>) -> bool {
        let first = self.recs.partition_point(|rec| owner_of(&self.data, rec).canonical_cmp(name) == Ordering::Less);
        self.recs.get(first).is_some_and(|rec| owner_of(&self.data, rec).is_at_or_below(name))
    }

    /// The node at `name`, found by binary search.
    pub fn node(&self, name: NameRef<'_>) -> Option<Node<'_>> {
        let first = self.recs.partition_point(|rec| owner_of(&self.data, rec).canonical_cmp(name) == Ordering::Less);
        let len = self.recs[first..]
            .iter()
            .take_while(|rec| owner_of(&self.data, rec).canonical_cmp(name) == Ordering::Equal)
            .count();
        (len > 0).then(|| Node { zone: self, recs: &self.recs[first..first + len] })
    }

    /// The record at `index` in canonical order (`records().nth(index)`
    /// in constant time): a pass over two zones (`zone::diff`) keeps
    /// positions instead of copies.
    pub fn record_at(&self, index: usize) -> Option<RecordRef<'_>> {
        self.recs.get(index).map(|rec| self.record(rec))
    }

    /// The records at positions `range` (clipped to the zone), in
    /// canonical order.
    pub fn records_in(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        let end = range.end.min(self.recs.len());
        let start = range.start.min(end);
        self.recs[start..end].iter().map(|rec| self.record(rec))
    }

    /// The position of the first record whose owner is not before `name`
    /// in canonical order (the length of the zone if there is none): where
    /// `name`'s node starts, or would.
    pub fn position_of(&self, name: NameRef<'_>) -> usize {
        self.recs.partition_point(|rec| owner_of(&self.data, rec).canonical_cmp(name) == Ordering::Less)
    }

    fn record<'a>(&'a self, rec: &Rec) -> RecordRef<'a> {
        RecordRef { owner: owner_of(&self.data, rec), rtype: rec.rtype, ttl: rec.ttl, rdata: rdata_of(&self.data, rec) }
    }
}

impl<'a> NodeRun<'a> {
    /// The run's nodes, in canonical order.
    pub fn nodes(self) -> impl Iterator<Item = Node<'a>> + 'a {
        let zone = self.zone;
        self.recs.chunk_by(move |a, b| same_owner(&zone.data, a, b)).map(move |recs| Node { zone, recs })
    }
}

impl<'a> Node<'a> {
    /// The owner name (as written for the node's first record).
    pub fn name(&self) -> NameRef<'a> {
        owner_of(&self.zone.data, &self.recs[0])
    }

    /// The node's RRsets, by ascending type.
    pub fn rrsets(&self) -> impl Iterator<Item = Rrset<'a>> + 'a {
        let zone = self.zone;
        self.recs.chunk_by(|a, b| a.rtype == b.rtype).map(move |recs| Rrset { zone, recs })
    }

    /// The RRset of type `rtype`, if the node has one.
    pub fn rrset(&self, rtype: Rtype) -> Option<Rrset<'a>> {
        self.rrsets().find(|set| set.rtype() == rtype)
    }

    /// Does the node hold an RRset of type `rtype`?
    pub fn has(&self, rtype: Rtype) -> bool {
        self.recs.iter().any(|rec| rec.rtype == rtype)
    }

    /// The types present at the node, ascending, without duplicates.
    pub fn types(&self) -> impl Iterator<Item = Rtype> + 'a {
        self.rrsets().map(|set| set.rtype())
    }
}

impl<'a> Rrset<'a> {
    /// The owner name.
    pub fn owner(&self) -> NameRef<'a> {
        owner_of(&self.zone.data, &self.recs[0])
    }

    /// The type.
    pub fn rtype(&self) -> Rtype {
        self.recs[0].rtype
    }

    /// The TTL of the first record (see `ttls_agree`).
    pub fn ttl(&self) -> u32 {
        self.recs[0].ttl
    }

    /// Do all records carry the same TTL?
    pub fn ttls_agree(&self) -> bool {
        self.recs.iter().all(|rec| rec.ttl == self.recs[0].ttl)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    /// Never true: an RRset has at least one record.
    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// The records.
    pub fn records(&self) -> impl Iterator<Item = RecordRef<'a>> + 'a {
        let zone = self.zone;
        self.recs.iter().map(move |rec| zone.record(rec))
    }

    /// The RDATA of each record.
    pub fn rdatas(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let data = &self.zone.data;
        self.recs.iter().map(move |rec| rdata_of(data, rec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::from_text(text, None).expect("valid test name")
    }

    #[test]
    fn sorts_groups_and_dedups() {
        let mut builder = ZoneBuilder::new(name("example."), 1);
        builder.push(name("b.example.").as_ref(), Rtype::A, 60, &[1, 2, 3, 4]);
        builder.push(name("example.").as_ref(), Rtype::NS, 60, b"\x02ns\x00");
        builder.push(name("B.example.").as_ref(), Rtype::A, 60, &[1, 2, 3, 4]);
        builder.push(name("B.example.").as_ref(), Rtype::A, 30, &[1, 2, 3, 4]);
        builder.push(name("a.b.example.").as_ref(), Rtype::TXT, 60, b"\x01x");
        builder.push(name("b.example.").as_ref(), Rtype::AAAA, 60, &[0; 16]);
        let zone = builder.finish();
        let nodes: Vec<_> = zone.nodes().map(|n| n.name().to_string()).collect();
        // A node is named as its first record is written: in type, RDATA,
        // then TTL order, the B.example. A record with TTL 30.
        assert_eq!(nodes, ["example.", "B.example.", "a.b.example."]);
        let b = zone.node(name("b.EXAMPLE.").as_ref()).expect("node b");
        let a_set = b.rrset(Rtype::A).expect("A rrset");
        assert_eq!(a_set.len(), 2, "exact duplicate dropped, TTL variant kept");
        assert!(!a_set.ttls_agree());
        assert_eq!(b.types().collect::<Vec<_>>(), [Rtype::A, Rtype::AAAA]);
        assert!(zone.node(name("c.example.").as_ref()).is_none());
        assert!(zone.has_name_at_or_below(name("B.example.").as_ref()));
        assert!(!zone.has_name_at_or_below(name("c.example.").as_ref()));
    }

    #[test]
    fn node_runs_cover_every_node_once() {
        let mut builder = ZoneBuilder::new(name("example."), 1);
        for i in 0..50 {
            let owner = name(&format!("n{i}.example."));
            for rtype in [Rtype::A, Rtype::TXT, Rtype::NS] {
                builder.push(owner.as_ref(), rtype, 60, &[i, 0, 0, 1]);
            }
        }
        let zone = builder.finish();
        let all: Vec<String> = zone.nodes().map(|n| n.name().to_string()).collect();
        for pieces in [1, 3, 7, 50, 400] {
            let runs = zone.node_runs(pieces);
            assert!(runs.len() <= pieces);
            let joined: Vec<String> = runs.iter().flat_map(|r| r.nodes()).map(|n| n.name().to_string()).collect();
            assert_eq!(joined, all, "{pieces} pieces");
        }
    }

    /// Found by fuzzing: a duplicate with a TTL variant between its copies
    /// survived, and runs of one name (in another case) were ordered by an
    /// unstable sort, so a file read in pieces read otherwise than whole.
    #[test]
    fn duplicates_go_whatever_the_runs() {
        let records: Vec<(&str, u32, [u8; 4])> = (0..40)
            .flat_map(|i| {
                let owner = ["b.example.", "B.example.", "c.example.", "b.EXAMPLE."][i % 4];
                [(owner, 60, [1, 2, 3, 4]), (owner, 30 + (i % 3) as u32, [1, 2, 3, 4]), ("a.example.", 60, [5; 4])]
            })
            .collect();
        let listed =
            |zone: &Zone| -> Vec<(String, u32)> { zone.records().map(|r| (format!("{}", r.owner), r.ttl)).collect() };
        let mut whole = ZoneBuilder::new(name("example."), 1);
        for &(owner, ttl, rdata) in &records {
            whole.push(name(owner).as_ref(), Rtype::A, ttl, &rdata);
        }
        let whole = whole.finish();
        let b = whole.node(name("b.example.").as_ref()).expect("node b");
        assert_eq!(b.rrset(Rtype::A).expect("A").len(), 4, "one record per TTL: 30, 31, 32, 60");
        // Of the copies of a record, the first in the file stays, owner case and all.
        assert_eq!(listed(&whole)[..2], [("a.example.".to_owned(), 60), ("b.example.".to_owned(), 30)]);
        for cut in [1, 7, 50, 99] {
            let mut pieces = ZoneBuilder::new(name("example."), 1);
            for chunk in records.chunks(cut) {
                let mut piece = ZoneBuilder::new(name("example."), 1);
                for &(owner, ttl, rdata) in chunk {
                    piece.push(name(owner).as_ref(), Rtype::A, ttl, &rdata);
                }
                pieces.append(piece);
            }
            assert_eq!(listed(&pieces.finish()), listed(&whole), "pieces of {cut}");
        }
    }
}
