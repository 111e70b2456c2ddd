//! A zone edited without being built again: the records a change drops
//! left out, the records it adds put in at their canonical places.
//!
//! Building a zone of millions of records again (push every record, sort,
//! group) costs the best part of a second; a change of a few records
//! should cost what copying the arena costs. The arena's bytes are copied
//! as they are (so every kept record's offsets stay valid), the added
//! records' bytes appended, and the index spliced: one binary search per
//! added record. The bytes of dropped records stay behind as dead bytes
//! until they are a quarter of the arena; then the zone is built anew.

use std::cmp::Ordering;

use rayon::prelude::*;

use super::{Rec, RecordRef, Zone, ZoneBuilder, cmp_in_node, cmp_owners};

impl Zone {
    /// This zone without the records `drop` names (by position and
    /// record) and with the records of `added` (any order; exact copies
    /// of a kept record are left out, as the builder leaves them out).
    /// `added` must be a builder for this zone's origin and class.
    pub fn edited(&self, drop: impl Fn(usize, RecordRef<'_>) -> bool + Sync, added: ZoneBuilder) -> Zone {
        let added = added.finish();
        let dropped: Vec<bool> = self.recs.par_iter().enumerate().map(|(at, rec)| drop(at, self.record(rec))).collect();
        let kept: Vec<Rec> = self.recs.iter().zip(&dropped).filter(|&(_, &gone)| !gone).map(|(rec, _)| *rec).collect();
        let dead_now: usize =
            self.recs.iter().zip(&dropped).filter(|&(_, &gone)| gone).map(|(rec, _)| usize::from(rec.rdata_len)).sum();
        let dead = self.dead + dead_now;
        let base = self.data.len();
        let data = copied_on_all_cores(&self.data, &added.data);
        let new: Vec<Rec> =
            added.recs.iter().map(|rec| Rec { owner: rec.owner + base, rdata: rec.rdata + base, ..*rec }).collect();
        let recs = splice(&data, kept, &new);
        let zone = Zone { origin: self.origin.clone(), class: self.class, data, recs, dead };
        if zone.dead > zone.data.len() / 4 { zone.rebuilt() } else { zone }
    }

    /// The same records in a fresh arena, without dead bytes.
    fn rebuilt(&self) -> Zone {
        let mut builder = ZoneBuilder::new(self.origin.clone(), self.class);
        for record in self.records() {
            builder.push(record.owner, record.rtype, record.ttl, record.rdata);
        }
        builder.finish()
    }
}

/// `first` then `second` in a new vector, the copy (and the page faults
/// of a fresh allocation of a few hundred megabytes) on all cores.
fn copied_on_all_cores(first: &[u8], second: &[u8]) -> Vec<u8> {
    const CHUNK: usize = 4 << 20;
    let mut data = vec![0; first.len() + second.len()];
    let (head, tail) = data.split_at_mut(first.len());
    head.par_chunks_mut(CHUNK).zip(first.par_chunks(CHUNK)).for_each(|(to, from)| to.copy_from_slice(from));
    tail.copy_from_slice(second);
    data
}

/// `kept` (in canonical order) with `new` (in canonical order, its own
/// copies already dropped) put in place; a new record equal to a kept
/// one in every field is left out.
fn splice(data: &[u8], kept: Vec<Rec>, new: &[Rec]) -> Vec<Rec> {
    if new.is_empty() {
        return kept;
    }
    let order = |a: &Rec, b: &Rec| cmp_owners(data, a, b).then_with(|| cmp_in_node(data, a, b));
    let mut recs = Vec::with_capacity(kept.len() + new.len());
    let mut from = 0;
    for rec in new {
        let at = from + kept[from..].partition_point(|old| order(old, rec) == Ordering::Less);
        recs.extend_from_slice(&kept[from..at]);
        from = at;
        if kept.get(at).is_some_and(|old| order(old, rec) == Ordering::Equal) {
            continue;
        }
        recs.push(*rec);
    }
    recs.extend_from_slice(&kept[from..]);
    recs
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
