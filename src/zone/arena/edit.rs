//! A zone edited without being built again: the records a change drops
//! left out, the records it adds put in at their canonical places.
//!
//! Building a zone of millions of records again (push every record, sort,
//! group) costs the best part of a second; a change of a few records
//! should cost what copying the index costs. The arena's base is shared
//! with the zone edited (so every kept record's offsets stay valid and
//! two versions hold their common bytes once), its small tail copied, the
//! added records' bytes appended to the tail, and the index spliced: one
//! binary search per added record. The bytes of dropped records stay
//! behind as dead bytes until they are a quarter of the arena, or the
//! tail an eighth of the live bytes; then the zone gets an arena of its
//! own (one pass, no sort).

use std::cmp::Ordering;
use std::sync::Arc;

use rayon::prelude::*;

use super::{Arena, Bytes as _, Rec, RecordRef, Zone, ZoneBuilder, cmp_in_node, cmp_owners};

impl Zone {
    /// This zone without the records `drop` names (by position and
    /// record) and with the records of `added` (any order; exact copies
    /// of a kept record are left out, as the builder leaves them out).
    /// `added` must be a builder for this zone's origin and class.
    pub fn edited(&self, drop: impl Fn(usize, RecordRef<'_>) -> bool + Sync, added: ZoneBuilder) -> Zone {
        let dropped: Vec<usize> = self
            .recs
            .par_iter()
            .enumerate()
            .filter(|&(at, rec)| drop(at, self.record(rec)))
            .map(|(at, _)| at)
            .collect();
        self.edited_at(dropped, added)
    }

    /// [`Zone::edited`] for a caller that knows the positions it drops
    /// (any order; repeats and positions past the end count once or not
    /// at all): no record of the zone is looked at to find them.
    pub fn edited_at(&self, mut dropped: Vec<usize>, added: ZoneBuilder) -> Zone {
        dropped.retain(|&at| at < self.recs.len());
        dropped.sort_unstable();
        dropped.dedup();
        let added = added.finish();
        let dead = self.dead + dropped.iter().map(|&at| usize::from(self.recs[at].rdata_len)).sum::<usize>();
        // The base is shared; the tail copied, with the added bytes after it.
        let offset = self.data.len();
        let mut tail = Vec::with_capacity(self.data.tail.len() + added.data.len());
        tail.extend_from_slice(&self.data.tail);
        tail.extend_from_slice(&added.data.base);
        let data = Arena { base: Arc::clone(&self.data.base), tail };
        let new: Vec<Rec> =
            added.recs.iter().map(|rec| Rec { owner: rec.owner + offset, rdata: rec.rdata + offset, ..*rec }).collect();
        let recs = splice(&data, &self.recs, &dropped, &new);
        let zone = Zone { origin: self.origin.clone(), class: self.class, data, recs, dead };
        // Dead bytes, or a tail that every edit copies, past a bound: one
        // arena of the live bytes again.
        let (live, tail) = (zone.data.len() - zone.dead, zone.data.tail.len());
        if zone.dead > zone.data.len() / 4 || tail > live / 8 { zone.compacted() } else { zone }
    }

    /// The same records in a fresh arena of their own, without dead
    /// bytes: one pass in order, each node's owner stored once.
    fn compacted(&self) -> Zone {
        let mut data = Vec::with_capacity(self.data.len() - self.dead);
        let mut recs = Vec::with_capacity(self.recs.len());
        let mut last_owner: Option<(usize, usize)> = None;
        for rec in &self.recs {
            let owner = match last_owner {
                Some((old, new)) if old == rec.owner => new,
                _ => {
                    let new = data.len();
                    data.extend_from_slice(self.data.at(rec.owner, usize::from(rec.owner_len)));
                    last_owner = Some((rec.owner, new));
                    new
                }
            };
            let rdata = data.len();
            data.extend_from_slice(self.data.at(rec.rdata, usize::from(rec.rdata_len)));
            recs.push(Rec { owner, rdata, ..*rec });
        }
        Zone { origin: self.origin.clone(), class: self.class, data: Arena::new(data), recs, dead: 0 }
    }
}

/// The index `old` (in canonical order) without the positions `dropped`
/// (in order) and with `new` (in canonical order, its own copies already
/// dropped) put in place; a new record equal to a kept one in every field
/// is left out. One pass over `old`: the kept records are copied once, in
/// runs between the places where something goes or comes.
fn splice(data: &Arena, old: &[Rec], dropped: &[usize], new: &[Rec]) -> Vec<Rec> {
    let order = |a: &Rec, b: &Rec| cmp_owners(data, a, b).then_with(|| cmp_in_node(data, a, b));
    let mut recs = Vec::with_capacity(old.len() - dropped.len() + new.len());
    let mut kept = Kept { old, dropped, from: 0 };
    for rec in new {
        let at = kept.from + old[kept.from..].partition_point(|o| order(o, rec) == Ordering::Less);
        let equal_kept =
            old.get(at).is_some_and(|o| order(o, rec) == Ordering::Equal) && dropped.binary_search(&at).is_err();
        if !equal_kept {
            kept.copy_until(at, &mut recs);
            recs.push(*rec);
        }
    }
    kept.copy_until(old.len(), &mut recs);
    recs
}

/// The old index, copied in order with the dropped positions left out.
struct Kept<'a> {
    old: &'a [Rec],
    /// The dropped positions not yet passed.
    dropped: &'a [usize],
    /// The first position not yet copied.
    from: usize,
}

impl Kept<'_> {
    /// Copies the kept records before position `to` into `recs`.
    fn copy_until(&mut self, to: usize, recs: &mut Vec<Rec>) {
        while let Some((&gone, rest)) = self.dropped.split_first().filter(|&(&gone, _)| gone < to) {
            recs.extend_from_slice(&self.old[self.from..gone]);
            self.from = gone + 1;
            self.dropped = rest;
        }
        recs.extend_from_slice(&self.old[self.from..to]);
        self.from = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::{Name, Rtype, read_zone_str};

    fn zone(text: &str) -> Zone {
        let origin = Name::from_text("example.", None).expect("origin");
        read_zone_str(text, &origin, std::path::Path::new("test")).expect("zone")
    }

    fn lines(zone: &Zone) -> Vec<String> {
        zone.records()
            .map(|r| {
                let mut line = String::new();
                crate::zone::writer::write_record(r, zone.class(), &mut line);
                line
            })
            .collect()
    }

    const BASE: &str = "example. 3600 IN SOA ns. h. 1 2 3 4 5\nexample. 3600 IN NS ns.example.\n\
        a.example. 3600 IN A 192.0.2.1\nb.example. 3600 IN A 192.0.2.2\nB.example. 3600 IN TXT \"x\"\n\
        c.d.example. 3600 IN A 192.0.2.3\n";

    #[test]
    fn an_edit_is_the_zone_built_with_the_change() {
        let old = zone(BASE);
        let mut added = ZoneBuilder::new(old.origin().to_owned(), old.class());
        let a = Name::from_text("a.example.", None).expect("name");
        let aa = Name::from_text("aa.example.", None).expect("name");
        added.push(aa.as_ref(), Rtype::A, 60, &[192, 0, 2, 9]);
        added.push(a.as_ref(), Rtype::AAAA, 60, &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        // An exact copy of a kept record is not added twice.
        added.push(a.as_ref(), Rtype::A, 3600, &[192, 0, 2, 1]);
        let edited = old.edited(|_, r| r.rtype == Rtype::TXT, added);
        let expected = zone(&format!(
            "{}aa.example. 60 IN A 192.0.2.9\na.example. 60 IN AAAA 2001:db8::1\n",
            BASE.replace("B.example. 3600 IN TXT \"x\"\n", "")
        ));
        assert_eq!(lines(&edited), lines(&expected));
        assert_eq!(edited.node(a.as_ref()).map(|n| n.types().collect::<Vec<_>>()), Some(vec![Rtype::A, Rtype::AAAA]));
    }

    #[test]
    fn a_record_dropped_and_added_again_stays_once() {
        // The change path drops a region and adds it made again: most of
        // what it adds equals what it dropped.
        let old = zone(BASE);
        let mut added = ZoneBuilder::new(old.origin().to_owned(), old.class());
        for r in old.records().filter(|r| r.owner.to_string() != "example.") {
            added.push(r.owner, r.rtype, r.ttl, r.rdata);
        }
        let b = Name::from_text("b.example.", None).expect("name");
        added.push(b.as_ref(), Rtype::AAAA, 60, &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        let edited = old.edited(|_, r| r.owner.to_string() != "example.", added);
        let expected = zone(&format!("{BASE}b.example. 60 IN AAAA 2001:db8::2\n"));
        assert_eq!(lines(&edited), lines(&expected));
        // Dropped at the first and last positions, nothing added.
        let ends = old.edited(|at, _| at == 0 || at == old.len() - 1, ZoneBuilder::new(old.origin().to_owned(), 1));
        assert_eq!(lines(&ends), lines(&old)[1..old.len() - 1]);
    }

    #[test]
    fn versions_share_the_bytes_they_keep() {
        let text: String = (0..200).map(|i| format!("n{i}.example. 3600 IN A 192.0.2.{}\n", i % 250)).collect();
        let old = zone(&format!("{BASE}{text}"));
        let mut added = ZoneBuilder::new(old.origin().to_owned(), old.class());
        let new_name = Name::from_text("new.example.", None).expect("name");
        added.push(new_name.as_ref(), Rtype::A, 60, &[192, 0, 2, 200]);
        let edited = old.edited(|_, r| r.owner.to_string() == "n7.example.", added);
        assert!(Arc::ptr_eq(&old.data.base, &edited.data.base), "the base is shared, not copied");
        assert_eq!(edited.data.tail.len(), new_name.wire().len() + 4, "the tail holds the added bytes only");
        let twice = edited.edited(|_, _| false, ZoneBuilder::new(old.origin().to_owned(), old.class()));
        assert!(Arc::ptr_eq(&old.data.base, &twice.data.base));
        assert_eq!(lines(&twice), lines(&edited));
        assert!(edited.node(new_name.as_ref()).is_some() && edited.len() == old.len());
    }

    #[test]
    fn dead_bytes_are_dropped_once_they_are_a_quarter() {
        let mut zone = zone(BASE);
        for serial in 2..40u8 {
            let mut added = ZoneBuilder::new(zone.origin().to_owned(), zone.class());
            let c = Name::from_text("c.d.example.", None).expect("name");
            added.push(c.as_ref(), Rtype::A, 3600, &[192, 0, 2, serial]);
            zone = zone.edited(|_, r| r.rtype == Rtype::A && r.owner.to_string() == "c.d.example.", added);
            assert!(zone.dead <= zone.data.len() / 4, "{} dead of {}", zone.dead, zone.data.len());
            assert_eq!(zone.len(), 6);
        }
    }
}
