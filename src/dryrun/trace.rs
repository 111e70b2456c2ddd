//! `--trace DIR`: per published version, an excerpt of the signed zone
//! (the apex RRsets with their signatures, and the first signed RRset of
//! every other type with its signatures) and the parent's DS RRset at that
//! time; `index.json` lists them in order with the events of that instant.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Event;
use crate::zone::dnssec::Rrsig;
use crate::zone::writer::write_record;
use crate::zone::{Name, Rtype, Zone};

/// One entry of `index.json`.
#[derive(Debug, Serialize)]
struct Entry {
    time: String,
    serial: u32,
    zone: String,
    ds: String,
    events: Vec<Event>,
}

/// The trace directory being written.
#[derive(Debug)]
pub(crate) struct Trace {
    dir: PathBuf,
    entries: Vec<Entry>,
}

impl Trace {
    /// Creates (or reuses) `dir`.
    pub(crate) fn create(dir: &Path) -> io::Result<Trace> {
        fs::create_dir_all(dir)?;
        Ok(Trace { dir: dir.to_owned(), entries: Vec::new() })
    }

    /// Writes one version: its excerpt and the parent's DS RRset.
    pub(crate) fn version(
        &mut self,
        zone: &Zone,
        serial: u32,
        time: i64,
        ds: &[Vec<u8>],
        ds_ttl: i64,
        events: Vec<Event>,
    ) -> io::Result<()> {
        let n = self.entries.len() + 1;
        let zone_file = format!("{n:04}-{serial}.zone");
        let ds_file = format!("{n:04}-ds.txt");
        fs::write(self.dir.join(&zone_file), excerpt(zone))?;
        fs::write(self.dir.join(&ds_file), ds_text(zone.origin().to_owned(), ds, ds_ttl))?;
        let time = crate::time::format_time(time);
        self.entries.push(Entry { time, serial, zone: zone_file, ds: ds_file, events });
        Ok(())
    }

    /// Writes `index.json`.
    pub(crate) fn finish(&self) -> io::Result<()> {
        let json = serde_json::to_string_pretty(&self.entries).map_err(io::Error::other)?;
        fs::write(self.dir.join("index.json"), json + "\n")
    }
}

/// The apex, then for every other type the signed RRset with the largest
/// TTL (the one whose signatures stay longest in caches), each with its
/// RRSIGs.
fn excerpt(zone: &Zone) -> String {
    let mut apex = String::new();
    let mut by_type: BTreeMap<Rtype, (u32, String)> = BTreeMap::new();
    for (n, node) in zone.nodes().enumerate() {
        let Some(rrsigs) = node.rrset(Rtype::RRSIG) else { continue };
        let covering = |rtype: Rtype| {
            rrsigs.records().filter(move |r| Rrsig::parse(r.rdata).is_some_and(|s| s.type_covered == rtype))
        };
        for rrset in node.rrsets().filter(|s| s.rtype() != Rtype::RRSIG) {
            if covering(rrset.rtype()).next().is_none() {
                continue;
            }
            if n > 0 && by_type.get(&rrset.rtype()).is_some_and(|(ttl, _)| *ttl >= rrset.ttl()) {
                continue;
            }
            let mut text = String::new();
            for record in rrset.records().chain(covering(rrset.rtype())) {
                write_record(record, zone.class(), &mut text);
                text.push('\n');
            }
            if n == 0 {
                apex.push_str(&text);
            } else {
                by_type.insert(rrset.rtype(), (rrset.ttl(), text));
            }
        }
    }
    by_type.into_values().fold(apex, |out, (_, text)| out + &text)
}

fn ds_text(origin: Name, ds: &[Vec<u8>], ttl: i64) -> String {
    let mut out = String::new();
    for rdata in ds {
        let record = crate::zone::RecordRef { owner: origin.as_ref(), rtype: Rtype::DS, ttl: ttl as u32, rdata };
        write_record(record, 1, &mut out);
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("; the parent publishes no DS for this zone\n");
    }
    out
}
