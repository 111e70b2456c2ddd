//! Master-file writer: one record per line, absolute names, explicit TTL
//! and class, so that any reader (ours, BIND's, Knot's, ldns's) reads it
//! back the same.

use std::io::{self, Write};

use super::arena::{RecordRef, Zone};
use super::rdata::write_rdata;

/// Appends one record as a line (without the newline):
/// `owner TTL class type rdata`, tab-separated.
pub fn write_record(record: RecordRef<'_>, class: u16, out: &mut String) {
    record.owner.write_text(out);
    out.push('\t');
    out.push_str(&record.ttl.to_string());
    out.push('\t');
    match class {
        1 => out.push_str("IN"),
        3 => out.push_str("CH"),
        4 => out.push_str("HS"),
        other => out.push_str(&format!("CLASS{other}")),
    }
    out.push('\t');
    out.push_str(&record.rtype.to_string());
    out.push('\t');
    write_rdata(record.rtype, record.rdata, out);
}

/// Records formatted per task when a zone is written on all cores.
const RECORDS_PER_TASK: usize = 16 * 1024;

/// Writes the whole zone, SOA first, then every record in canonical order.
/// The text is made on all cores, a batch of tasks at a time (bounding
/// what is held), and written in order.
pub fn write_zone(zone: &Zone, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
    use rayon::prelude::*;
    let mut out = io::BufWriter::with_capacity(1 << 20, out);
    let text = |records: &mut dyn Iterator<Item = RecordRef<'_>>| {
        let mut text = String::with_capacity(RECORDS_PER_TASK * 96);
        for record in records {
            write_record(record, zone.class(), &mut text);
            text.push('\n');
        }
        text
    };
    out.write_all(text(&mut zone.records().filter(|r| r.rtype == super::Rtype::SOA)).as_bytes())?;
    let tasks: Vec<std::ops::Range<usize>> =
        (0..zone.len()).step_by(RECORDS_PER_TASK).map(|at| at..zone.len().min(at + RECORDS_PER_TASK)).collect();
    for batch in tasks.chunks(rayon::current_num_threads() * 4) {
        let texts: Vec<String> = batch
            .par_iter()
            .map(|range| text(&mut zone.records_in(range.clone()).filter(|r| r.rtype != super::Rtype::SOA)))
            .collect();
        for piece in texts {
            out.write_all(piece.as_bytes())?;
        }
    }
    out.flush()
}
