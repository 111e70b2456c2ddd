//! What the fuzz targets do with an input, shared by `fuzz_targets/` and
//! by `tests/it/fuzz_corpus.rs` in the main crate (which includes this file),
//! so that `cargo test` replays the corpus and every regression the same
//! way the fuzzer ran them.
//!
//! The property is that nothing panics, hangs or allocates without bound;
//! the zone reader is also held to itself: a text cut into pieces (as
//! large files are read on all cores) reads as the whole, and a zone
//! written out reads back as the same records.

use std::path::Path;

use signet::zone::reader::read_zone_str_in_pieces;
use signet::zone::writer::write_record;
use signet::zone::{Name, Zone, read_zone_str};
use signet::{Report, VerifyOptions, verify_zone};

/// The origin every input is read under (the seed zones' origin).
pub const ORIGIN: &str = "example.";

/// The time signatures are judged at: an hour after the seed zones in
/// `corpus/verify/` were signed (2026-12-01T02:12:07Z, valid for 30 days),
/// so that their signatures verify and the fuzzer explores from valid zones.
pub const NOW: i64 = 1_796_094_727;

/// The input as zone text, or `None` for inputs the targets skip:
/// `$INCLUDE` would read files of the machine (refusing non-regular
/// files, such as /dev/zero, is the reader's own work, done elsewhere).
pub fn zone_text(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data).into_owned();
    (!text.to_ascii_uppercase().contains("$INCLUDE")).then_some(text)
}

fn origin() -> Name {
    Name::from_text(ORIGIN, None).expect("the fuzz origin is a name")
}

/// Every record as (owner, type, TTL, RDATA), in one order.
fn records(zone: &Zone) -> Vec<(Vec<u8>, u16, u32, Vec<u8>)> {
    let mut records: Vec<_> =
        zone.records().map(|r| (r.owner.wire().to_vec(), r.rtype.0, r.ttl, r.rdata.to_vec())).collect();
    records.sort_unstable();
    records
}

/// Panics, naming the first record one zone has and the other has not,
/// unless both hold the same records.
fn assert_same(left: &Zone, right: &Zone, what: &str) {
    let (a, b) = (records(left), records(right));
    if a == b {
        return;
    }
    panic!(
        "{what}: {} records against {}; first only in the one: {:?}; first only in the other: {:?}",
        a.len(),
        b.len(),
        first_missing(left, &b),
        first_missing(right, &a)
    );
}

/// The first record of `zone` not among `records`, as a line.
fn first_missing(zone: &Zone, records: &[(Vec<u8>, u16, u32, Vec<u8>)]) -> String {
    let mut line = String::new();
    let key = |r: &signet::zone::RecordRef<'_>| (r.owner.wire().to_vec(), r.rtype.0, r.ttl, r.rdata.to_vec());
    if let Some(record) = zone.records().find(|r| records.binary_search(&key(r)).is_err()) {
        write_record(record, zone.class(), &mut line);
    }
    line
}

/// The zone written out one record a line, as the signer writes.
fn written(zone: &Zone) -> String {
    let mut text = String::new();
    for record in zone.records() {
        write_record(record, zone.class(), &mut text);
        text.push('\n');
    }
    text
}

/// The `zone_reader` target: reads the input serially and in pieces,
/// and reads back what it wrote.
pub fn zone_reader(data: &[u8]) {
    let Some(text) = zone_text(data) else { return };
    let (origin, source) = (origin(), Path::new("fuzz-input"));
    let serial = read_zone_str(&text, &origin, source);
    if let Some(pieces) = read_zone_str_in_pieces(&text, &origin, source) {
        let serial = serial.as_ref().expect("the pieces read a text that the serial reader refuses");
        assert_same(&pieces, serial, "the pieces read otherwise than the whole");
    }
    let Ok(zone) = serial else { return };
    let text = written(&zone);
    let again = read_zone_str(&text, &origin, source).unwrap_or_else(|e| {
        let line = text.lines().nth(e.line.saturating_sub(1)).unwrap_or_default();
        panic!("the zone as written does not read back: {e}: {line:?}")
    });
    assert_same(&again, &zone, "the zone as written reads back otherwise");
}

/// The `verify` target: reads the input and verifies it in full.
pub fn verify(data: &[u8]) {
    verify_report(data);
}

/// Reads the input and verifies it in full: the report, if it read.
pub fn verify_report(data: &[u8]) -> Option<Report> {
    let text = zone_text(data)?;
    let zone = read_zone_str(&text, &origin(), Path::new("fuzz-input")).ok()?;
    let options = VerifyOptions { now: NOW, min_validity: 0, trust_anchor: None, ..VerifyOptions::default() };
    let report = verify_zone(&zone, &options);
    assert_eq!(report.valid, report.stats.errors == 0, "a report valid with errors, or invalid without");
    Some(report)
}
