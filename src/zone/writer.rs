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

/// Writes the whole zone, SOA first, then every record in canonical order.
pub fn write_zone(zone: &Zone, out: &mut impl Write) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 20, out);
    let mut line = String::with_capacity(512);
    let soa = zone.records().filter(|r| r.rtype == super::Rtype::SOA);
    let rest = zone.records().filter(|r| r.rtype != super::Rtype::SOA);
    for record in soa.chain(rest) {
        line.clear();
        write_record(record, zone.class(), &mut line);
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()
}
