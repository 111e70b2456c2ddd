use std::path::Path;

use super::*;
use crate::zone::read_zone_str;

const APEX: &str = "\
example. 3600 IN SOA ns.example. admin.example. SERIAL 7200 3600 1209600 300
example. 3600 IN NS ns.example.
ns.example. 3600 IN A 192.0.2.53
";

/// A zone of the apex records (with `serial`) and `body`.
fn zone(serial: u32, body: &str) -> Zone {
    let text = format!("{}{body}", APEX.replace("SERIAL", &serial.to_string()));
    let origin = Name::from_text("example.", None).expect("origin");
    read_zone_str(&text, &origin, Path::new("test.zone")).expect("test zone reads")
}

/// The diff as `-`/`+` lines without the comment.
fn lines(diff: &ZoneDiff<'_>) -> Vec<String> {
    let mut out = Vec::new();
    diff.write_text(TextStyle::Prefixed, &mut out).expect("write");
    String::from_utf8(out).expect("utf-8").lines().skip(1).map(|l| l.replace('\t', " ")).collect()
}

fn soa(sign: char, serial: u32) -> String {
    format!("{sign} example. 3600 IN SOA ns.example. admin.example. {serial} 7200 3600 1209600 300")
}

#[test]
fn identical_zones_differ_in_nothing() {
    let body = "a.example. 300 IN A 192.0.2.1\nb.example. 300 IN TXT \"b\"\n";
    let (old, new) = (zone(1, body), zone(1, body));
    let diff = ZoneDiff::between(&old, &new).expect("diff");
    assert!(diff.is_empty());
    assert_eq!((diff.removed_len(), diff.added_len()), (0, 0));
    assert_eq!((diff.old_serial(), diff.new_serial()), (1, 1));
}

#[test]
fn one_changed_record_and_the_soa() {
    let old = zone(1, "a.example. 300 IN A 192.0.2.1\nb.example. 300 IN A 192.0.2.2\n");
    let new = zone(2, "a.example. 300 IN A 192.0.2.1\nb.example. 300 IN A 192.0.2.3\n");
    let diff = ZoneDiff::between(&old, &new).expect("diff");
    assert_eq!((diff.old_serial(), diff.new_serial()), (1, 2));
    assert_eq!(
        lines(&diff),
        [
            soa('-', 1),
            "- b.example. 300 IN A 192.0.2.2".to_owned(),
            soa('+', 2),
            "+ b.example. 300 IN A 192.0.2.3".to_owned(),
        ]
    );
}

#[test]
fn a_ttl_change_is_a_removal_and_an_addition() {
    let old = zone(1, "a.example. 300 IN A 192.0.2.1\n");
    let new = zone(2, "a.example. 600 IN A 192.0.2.1\n");
    let diff = ZoneDiff::between(&old, &new).expect("diff");
    assert_eq!(lines(&diff)[1], "- a.example. 300 IN A 192.0.2.1");
    assert_eq!(lines(&diff)[3], "+ a.example. 600 IN A 192.0.2.1");
    assert_eq!((diff.removed_len(), diff.added_len()), (2, 2));
}

#[test]
fn records_added_at_either_end_of_the_order() {
    // The apex sorts first: a record there comes before everything; `z`
    // after everything (the apex's own records are first in canonical order).
    let body = "m.example. 300 IN A 192.0.2.1\n";
    let old = zone(1, body);
    let new = zone(2, &format!("example. 300 IN A 192.0.2.9\n{body}zz.example. 300 IN A 192.0.2.8\n"));
    let diff = ZoneDiff::between(&old, &new).expect("diff");
    assert_eq!(
        lines(&diff),
        [
            soa('-', 1),
            soa('+', 2),
            "+ example. 300 IN A 192.0.2.9".to_owned(),
            "+ zz.example. 300 IN A 192.0.2.8".to_owned(),
        ]
    );
    let back = ZoneDiff::between(&new, &old).expect("diff");
    assert_eq!((back.removed_len(), back.added_len()), (3, 1));
}

/// DNS names compare without regard to case, and the reader keeps the
/// case it read: a record whose owner only changed case is the same.
#[test]
fn owner_case_alone_is_no_change() {
    let old = zone(1, "A.example. 300 IN A 192.0.2.1\nb.example. 300 IN A 192.0.2.2\n");
    let new = zone(2, "a.example. 300 IN A 192.0.2.1\nB.EXAMPLE. 300 IN A 192.0.2.2\n");
    let diff = ZoneDiff::between(&old, &new).expect("diff");
    assert_eq!(lines(&diff), [soa('-', 1), soa('+', 2)]);
    // RDATA is compared byte for byte: a name inside it in another case is
    // another record (it is another byte string on the wire).
    let old = zone(1, "c.example. 300 IN CNAME Target.example.\n");
    let new = zone(2, "c.example. 300 IN CNAME target.example.\n");
    assert_eq!(ZoneDiff::between(&old, &new).expect("diff").added_len(), 2);
}

#[test]
fn other_zones_and_zones_without_soa_are_refused() {
    let other = read_zone_str(
        "other. 3600 IN SOA ns.other. a.other. 1 2 3 4 5\n",
        &Name::from_text("other.", None).expect("name"),
        Path::new("other.zone"),
    )
    .expect("reads");
    let example = zone(1, "");
    assert!(matches!(ZoneDiff::between(&other, &example), Err(DiffError::Origin { .. })));
    // The reader refuses a zone without SOA; the builder does not.
    let mut no_soa = crate::zone::ZoneBuilder::new(Name::from_text("example.", None).expect("name"), 1);
    no_soa.push(Name::from_text("a.example.", None).expect("name").as_ref(), Rtype::A, 300, &[192, 0, 2, 1]);
    let no_soa = no_soa.finish();
    assert!(matches!(ZoneDiff::between(&no_soa, &example), Err(DiffError::NoSoa { version: "old", .. })));
}

/// A zone of `n` names, each with two records; `change` says which
/// names get another address in this version.
fn big_zone(serial: u32, n: u32, change: impl Fn(u32) -> bool) -> Zone {
    let mut body = String::new();
    for i in 0..n {
        let last = if change(i) { 99 } else { i % 250 };
        body.push_str(&format!("n{i}.example. 300 IN A 192.0.2.{last}\nn{i}.example. 300 IN TXT \"{i}\"\n"));
        if i % 7 == 0 {
            body.push_str(&format!("x.n{i}.example. 300 IN AAAA 2001:db8::{i:x}\n"));
        }
    }
    zone(serial, &body)
}

#[test]
fn pieces_merge_like_one_pass() {
    let old = big_zone(1, 3000, |i| i % 13 == 0);
    let new = big_zone(2, 3100, |i| i % 17 == 0 || i < 5);
    let whole = ZoneDiff::between_in_pieces(&old, &new, 1).expect("diff");
    for pieces in [2, 3, 8, 64, 10_000] {
        let cut = ZoneDiff::between_in_pieces(&old, &new, pieces).expect("diff");
        assert_eq!(lines(&cut), lines(&whole), "{pieces} pieces");
    }
    assert!(whole.removed_len() > 100 && whole.added_len() > 100);
}

#[test]
fn encoding_reads_back() {
    let old = big_zone(1, 500, |i| i % 13 == 0);
    let new = big_zone(2, 520, |i| i % 17 == 0);
    let diff = ZoneDiff::between(&old, &new).expect("diff");
    let encoded = diff.encode().expect("encode");
    assert_eq!(encoded.bytes.len(), diff.encoded_len());
    assert_eq!((encoded.old_serial, encoded.new_serial), (1, 2));
    assert_eq!((encoded.removed, encoded.added), (diff.removed_len() as u64, diff.added_len() as u64));
    let decoded = ZoneDiff::decode(&encoded.bytes).expect("decode");
    assert_eq!(lines(&decoded), lines(&diff));
    assert_eq!(decoded.origin().to_string(), "example.");
    assert_eq!(decoded.encode().expect("again").bytes, encoded.bytes, "decode then encode is the identity");
}

#[test]
fn damaged_encodings_are_typed_errors() {
    let diff_zones = (zone(1, "a.example. 300 IN A 192.0.2.1\n"), zone(2, "b.example. 300 IN A 192.0.2.1\n"));
    let diff = ZoneDiff::between(&diff_zones.0, &diff_zones.1).expect("diff");
    let bytes = diff.encode().expect("encode").bytes;
    for len in 0..bytes.len() {
        let error = ZoneDiff::decode(&bytes[..len]).expect_err("a cut blob does not decode");
        assert!(matches!(error, DecodeError::Truncated { .. }), "cut at {len}: {error}");
    }
    for at in 13..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x20;
        let error = ZoneDiff::decode(&damaged).expect_err("a changed blob does not decode");
        assert!(matches!(error, DecodeError::Digest), "byte {at}: {error}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(ZoneDiff::decode(&longer), Err(DecodeError::Overlong { .. })));
    let mut version = bytes.clone();
    version[4] = 9;
    assert!(matches!(ZoneDiff::decode(&version), Err(DecodeError::Version { found: 9 })));
    assert!(matches!(ZoneDiff::decode(b"not a diff at all"), Err(DecodeError::NotADiff)));
}

/// Well-digested bytes that are no diff (a writer's bug, or crafted):
/// refused with the offset, never a panic.
#[test]
fn well_digested_garbage_is_malformed() {
    let (old, new) = (zone(1, "a.example. 300 IN A 192.0.2.1\n"), zone(2, "b.example. 300 IN A 192.0.2.1\n"));
    let diff = ZoneDiff::between(&old, &new).expect("diff");
    let body = diff.encode().expect("encode").bytes[..diff.encoded_len() - 32].to_vec();
    let reseal = |mut body: Vec<u8>| {
        let len = (body.len() + 32) as u64;
        body[5..13].copy_from_slice(&len.to_be_bytes());
        let digest = ring::digest::digest(&ring::digest::SHA256, &body);
        body.extend_from_slice(digest.as_ref());
        body
    };
    let malformed = |bytes: Vec<u8>| match ZoneDiff::decode(&reseal(bytes)) {
        Err(DecodeError::Malformed { what, .. }) => what,
        other => panic!("not refused as malformed: {other:?}"),
    };
    // One record more than there are: the added count is at bytes 27..31.
    let mut counts = body.clone();
    counts[30] += 1;
    assert_eq!(malformed(counts), "a bad owner name");
    // Garbage after the apex name (header 31 bytes, `example.` 9).
    let mut garbage = body[..40].to_vec();
    garbage.extend_from_slice(&[0x3f; 70]);
    assert_eq!(malformed(garbage), "a bad owner name");
    let mut extra = body.clone();
    extra.push(0);
    assert_eq!(malformed(extra), "bytes after the last record");
    // Records out of canonical order: the SOA after a.example.
    let swapped = ZoneDiff { removed: Section::Picked { zone: &old, at: vec![2, 1] }, ..diff };
    let body = swapped.encode().expect("encode").bytes;
    assert!(matches!(
        ZoneDiff::decode(&body),
        Err(DecodeError::Malformed { what: "records out of canonical order", .. })
    ));
}

#[test]
fn sections_style_is_two_master_files() {
    let old = zone(1, "a.example. 300 IN A 192.0.2.1\n");
    let new = zone(2, "b.example. 300 IN A 192.0.2.1\n");
    let diff = ZoneDiff::between(&old, &new).expect("diff");
    let mut out = Vec::new();
    diff.write_text(TextStyle::Sections, &mut out).expect("write");
    let text = String::from_utf8(out).expect("utf-8").replace('\t', " ");
    let expected = "; zone example. serial 1 -> 2: 2 removed, 2 added\n\
                    ; removed from serial 1\n\
                    example. 3600 IN SOA ns.example. admin.example. 1 7200 3600 1209600 300\n\
                    a.example. 300 IN A 192.0.2.1\n\
                    ; added in serial 2\n\
                    example. 3600 IN SOA ns.example. admin.example. 2 7200 3600 1209600 300\n\
                    b.example. 300 IN A 192.0.2.1\n";
    assert_eq!(text, expected);
    let (removed, added) = diff.lines();
    assert_eq!((removed.len(), added.len()), (2, 2));
}

#[test]
fn a_decoded_difference_applied_to_the_old_version_gives_the_new() {
    let old = big_zone(1, 600, |i| i % 13 == 0);
    let new = big_zone(2, 640, |i| i % 17 == 0);
    let encoded = ZoneDiff::between(&old, &new).expect("diff").encode().expect("encode");
    let decoded = ZoneDiff::decode(&encoded.bytes).expect("decode");
    let made = decoded.apply_to(&old).expect("apply");
    let text = |zone: &Zone| {
        zone.records()
            .map(|r| {
                let mut line = String::new();
                crate::zone::writer::write_record(r, zone.class(), &mut line);
                line
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(text(&made), text(&new));
    // Not from this version: refused, naming the serials.
    let other = big_zone(3, 10, |_| false);
    assert!(matches!(decoded.apply_to(&other), Err(DiffError::NotFrom { from: 1, serial: 3, .. })));
}
