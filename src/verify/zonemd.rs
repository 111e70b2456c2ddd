//! Check 7, ZONEMD (RFC 8976 §4): each apex ZONEMD record's serial is the
//! SOA's, and the digest of a record whose scheme and hash are supported
//! (SIMPLE; SHA-384, SHA-512) is computed over the zone and compared.
//! Its signature is checked like any RRset's (`signatures`), and its
//! place in the apex bitmap by `denial`.
//!
//! A record of an unsupported scheme or hash cannot verify the zone and
//! is no failure by itself (§4); with no supported record at all, the
//! digest could not be verified (a warning). Two records of one scheme
//! and hash are an error (§2: they cannot both be right, and a verifier
//! cannot tell which is meant). A ZONEMD below the apex is zone data,
//! digested like any record: a warning, since it verifies nothing.
//!
//! The digest is [`crate::zone::zonemd::digests`], the code the signer
//! fills its ZONEMD with: RFC 8976's arithmetic has no choices to get
//! wrong in two ways, and RFC 8976 Appendix A's examples test it.

use rayon::prelude::*;

use super::findings::{Code, Finding};
use crate::zone::zonemd::{MIN_DIGEST_LEN, Zonemd, digests, hash_name};
use crate::zone::{Rtype, Zone};

/// Hex digits of a digest shown in a message.
const SHOWN_HEX: usize = 16;

/// Runs check 7 over `zone`.
pub(crate) fn check(zone: &Zone, findings: &mut Vec<Finding>) {
    below_apex(zone, findings);
    let apex = zone.origin();
    let Some(node) = zone.node(apex) else { return };
    let Some(set) = node.rrset(Rtype::ZONEMD) else { return };
    let soa_serial = zone.soa_serial();
    let mut records = Vec::new();
    for rdata in set.rdatas() {
        match Zonemd::parse(rdata) {
            Some(record) if record.digest.len() >= MIN_DIGEST_LEN => records.push(record),
            _ => findings.push(Finding::error(
                Code::MalformedRecord,
                apex,
                Rtype::ZONEMD,
                format!("zone {apex}: ZONEMD RDATA is shorter than its fields and a {MIN_DIGEST_LEN}-octet digest (RFC 8976 §2.2.4)"),
            )),
        }
    }
    let mut to_verify = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let what = describe(apex, record);
        let repeated = records.iter().filter(|r| (r.scheme, r.hash) == (record.scheme, record.hash)).count() > 1;
        if repeated {
            // Reported once per pair, at its first record.
            if !records[..i].iter().any(|r| (r.scheme, r.hash) == (record.scheme, record.hash)) {
                findings.push(Finding::error(
                    Code::ZonemdDuplicate,
                    apex,
                    Rtype::ZONEMD,
                    format!("{what}: more than one ZONEMD of this scheme and hash; RFC 8976 §2 allows one, so none of them verifies the zone"),
                ));
            }
        } else if !record.is_supported() {
            findings.push(Finding::warning(
                Code::ZonemdUnsupported,
                apex,
                Rtype::ZONEMD,
                format!("{what}: scheme or hash algorithm not supported (SIMPLE with SHA-384 or SHA-512 is); this record cannot verify the zone (RFC 8976 §4)"),
            ));
        } else if soa_serial != Some(record.serial) {
            let soa = soa_serial.map_or_else(|| "none".to_owned(), |s| s.to_string());
            findings.push(Finding::error(
                Code::ZonemdSerialMismatch,
                apex,
                Rtype::ZONEMD,
                format!(
                    "{what}: its serial is not the SOA serial ({soa}): the digest is of another version (RFC 8976 §4)"
                ),
            ));
        } else {
            to_verify.push(*record);
        }
    }
    if !records.iter().any(Zonemd::is_supported) {
        findings.push(Finding::warning(
            Code::ZonemdUnverified,
            apex,
            Rtype::ZONEMD,
            format!("zone {apex}: the zone's digest could not be verified: no ZONEMD with a supported scheme and hash (RFC 8976 §4)"),
        ));
    }
    compare(zone, &to_verify, findings);
}

/// Computes the digests `records` name (one pass for all) and reports
/// each that does not match.
fn compare(zone: &Zone, records: &[Zonemd<'_>], findings: &mut Vec<Finding>) {
    if records.is_empty() {
        return;
    }
    let hashes: Vec<u8> = records.iter().map(|r| r.hash).collect();
    let computed = digests(zone, &hashes);
    let apex = zone.origin();
    for record in records {
        let Some((_, expected)) = computed.iter().find(|(hash, _)| *hash == record.hash) else { continue };
        if expected.as_slice() != record.digest {
            findings.push(Finding::error(
                Code::ZonemdMismatch,
                apex,
                Rtype::ZONEMD,
                format!(
                    "{}: the digest does not match the zone: computed {}…, found {}… (RFC 8976 §4)",
                    describe(apex, record),
                    prefix(expected),
                    prefix(record.digest)
                ),
            ));
        }
    }
}

/// `zone example.: ZONEMD serial 5 scheme 1 hash 1 (SHA-384)`.
fn describe(apex: crate::zone::NameRef<'_>, record: &Zonemd<'_>) -> String {
    let hash = hash_name(record.hash).map_or_else(String::new, |name| format!(" ({name})"));
    format!("zone {apex}: ZONEMD serial {} scheme {} hash {}{hash}", record.serial, record.scheme, record.hash)
}

fn prefix(digest: &[u8]) -> String {
    digest.iter().take(SHOWN_HEX / 2).map(|b| format!("{b:02x}")).collect()
}

/// A ZONEMD below the apex: zone data, digested like any record, but it
/// verifies nothing (RFC 8976 §2).
fn below_apex(zone: &Zone, findings: &mut Vec<Finding>) {
    let apex = zone.origin();
    let runs = zone.node_runs(rayon::current_num_threads() * 4);
    let found: Vec<Finding> = runs
        .par_iter()
        .flat_map_iter(|run| {
            run.nodes().filter(|node| node.has(Rtype::ZONEMD) && !node.name().eq_ignore_case(apex)).map(|node| {
                Finding::warning(
                    Code::ZonemdNotAtApex,
                    node.name(),
                    Rtype::ZONEMD,
                    "a ZONEMD belongs at the zone apex (RFC 8976 §2); this one is zone data like any other and verifies nothing",
                )
            })
        })
        .collect();
    findings.extend(found);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::{Name, read_zone_str};

    /// RFC 8976 Appendix A.1's zone, its ZONEMD lines replaced by `zonemd`.
    fn findings(zonemd: &str) -> Vec<(Code, crate::verify::Severity)> {
        let text = format!(
            "example. 86400 IN SOA ns1 admin 2018031900 1800 900 604800 86400\n\
             example. 86400 IN NS ns1\nexample. 86400 IN NS ns2\n\
             ns1 3600 IN A 203.0.113.63\nns2 3600 IN AAAA 2001:db8::63\n{zonemd}"
        );
        let origin = Name::from_text("example.", None).expect("origin");
        let zone = read_zone_str(&text, &origin, std::path::Path::new("test")).expect("zone reads");
        let mut found = Vec::new();
        check(&zone, &mut found);
        found.into_iter().map(|f| (f.code, f.severity)).collect()
    }

    const GOOD: &str =
        "c68090d90a7aed716bc459f9340e3d7c1370d4d24b7e2fc3a1ddc0b9a87153b9a9713b3c9ae5cc27777f98b8e730044c";

    #[test]
    fn each_case_of_rfc8976_section_4() {
        use crate::verify::Severity::{Error, Warning};
        let line = |serial: &str, scheme: u8, hash: u8, digest: &str| {
            format!("example. 86400 IN ZONEMD {serial} {scheme} {hash} {digest}\n")
        };
        assert_eq!(findings(""), [], "no ZONEMD, nothing to say");
        assert_eq!(findings(&line("2018031900", 1, 1, GOOD)), [], "RFC 8976 A.1 verifies");
        let wrong = GOOD.replace("c68090", "c68091");
        assert_eq!(findings(&line("2018031900", 1, 1, &wrong)), [(Code::ZonemdMismatch, Error)]);
        assert_eq!(findings(&line("2018031901", 1, 1, GOOD)), [(Code::ZonemdSerialMismatch, Error)]);
        // Unsupported scheme or hash: no failure, but nothing verified.
        let unsupported = line("2018031900", 1, 240, GOOD) + &line("2018031900", 240, 1, GOOD);
        assert_eq!(
            findings(&unsupported),
            [(Code::ZonemdUnsupported, Warning), (Code::ZonemdUnsupported, Warning), (Code::ZonemdUnverified, Warning)]
        );
        // A supported record beside an unsupported one: it verifies the zone.
        let mixed = line("2018031900", 1, 1, GOOD) + &line("2018031900", 1, 240, GOOD);
        assert_eq!(findings(&mixed), [(Code::ZonemdUnsupported, Warning)]);
        let twice = line("2018031900", 1, 1, GOOD) + &line("2018031900", 1, 1, &wrong);
        assert_eq!(findings(&twice), [(Code::ZonemdDuplicate, Error)]);
        assert_eq!(
            findings(&line("2018031900", 1, 1, "00112233")),
            [(Code::MalformedRecord, Error), (Code::ZonemdUnverified, Warning)]
        );
        let below = format!("ns1 3600 IN ZONEMD 2018031900 1 1 {GOOD}\n");
        assert_eq!(findings(&below), [(Code::ZonemdNotAtApex, Warning)]);
    }
}
