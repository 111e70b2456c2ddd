//! ZONEMD (RFC 8976): the message digest of a whole zone, scheme SIMPLE,
//! hash SHA-384 or SHA-512. The signer fills its apex ZONEMD with it and
//! the verifier computes it again; both use this one function, as both
//! use [`crate::zone::dnssec`] (the gate is a second opinion on the
//! signatures, not on RFC 8976's arithmetic, which has no choices in it).
//!
//! **What is digested** (RFC 8976 §3.3 and §3.4): every record of the
//! zone in canonical order (RFC 4034 §6.1; types ascending within a
//! name) and canonical form (§6.2: owner lowercased, the embedded names
//! of the types that call for it lowercased, the record's own TTL), the
//! records of an RRset in canonical RDATA order, an exact duplicate
//! once; glue and occluded data included; the apex ZONEMD RRset and the
//! apex RRSIGs that cover ZONEMD left out. A ZONEMD below the apex is
//! zone data like any other.
//!
//! **How.** The digest is one hash stream, so one core hashes; the zone
//! is cut into runs of whole nodes, and while one thread hashes a batch
//! of runs already encoded, the rayon pool encodes the next batch
//! (`rayon::join`): on two cores the encoding, which costs about what
//! hashing does, is off the hashing thread's path.

use ring::digest;

use super::arena::{NodeRun, Zone};
use super::dnssec::Rrsig;
use super::name::NameRef;
use super::rdata::canonical_rdata;
use super::rtype::Rtype;

/// Scheme SIMPLE (RFC 8976 §5.3).
pub const SCHEME_SIMPLE: u8 = 1;
/// Hash algorithm SHA-384 (RFC 8976 §5.3).
pub const HASH_SHA384: u8 = 1;
/// Hash algorithm SHA-512 (RFC 8976 §5.3).
pub const HASH_SHA512: u8 = 2;
/// The shortest digest a ZONEMD may carry (RFC 8976 §2.2.4).
pub const MIN_DIGEST_LEN: usize = 12;

/// Records per run of nodes encoded as one piece.
const RECORDS_PER_RUN: usize = 16 * 1024;
/// Runs encoded per batch (while the batch before is hashed).
const RUNS_PER_BATCH: usize = 16;

/// A ZONEMD record's fields (RFC 8976 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zonemd<'a> {
    /// The SOA serial of the zone the digest is of.
    pub serial: u32,
    /// Scheme (1: SIMPLE).
    pub scheme: u8,
    /// Hash algorithm (1: SHA-384, 2: SHA-512).
    pub hash: u8,
    /// The digest.
    pub digest: &'a [u8],
}

impl<'a> Zonemd<'a> {
    /// Reads ZONEMD RDATA; `None` if shorter than its fixed fields.
    pub fn parse(rdata: &'a [u8]) -> Option<Zonemd<'a>> {
        let serial = u32::from_be_bytes(rdata.get(..4)?.try_into().ok()?);
        Some(Zonemd { serial, scheme: *rdata.get(4)?, hash: *rdata.get(5)?, digest: &rdata[6..] })
    }

    /// Its RDATA in wire form.
    pub fn to_rdata(&self) -> Vec<u8> {
        let mut rdata = Vec::with_capacity(6 + self.digest.len());
        rdata.extend_from_slice(&self.serial.to_be_bytes());
        rdata.extend_from_slice(&[self.scheme, self.hash]);
        rdata.extend_from_slice(self.digest);
        rdata
    }

    /// Can this record be verified here: scheme SIMPLE and a known hash?
    pub fn is_supported(&self) -> bool {
        self.scheme == SCHEME_SIMPLE && algorithm(self.hash).is_some()
    }
}

/// The hash algorithm's name, for messages.
pub fn hash_name(hash: u8) -> Option<&'static str> {
    match hash {
        HASH_SHA384 => Some("SHA-384"),
        HASH_SHA512 => Some("SHA-512"),
        _ => None,
    }
}

/// The length of the digest of hash algorithm `hash`.
pub fn digest_len(hash: u8) -> Option<usize> {
    algorithm(hash).map(|a| a.output_len())
}

fn algorithm(hash: u8) -> Option<&'static digest::Algorithm> {
    match hash {
        HASH_SHA384 => Some(&digest::SHA384),
        HASH_SHA512 => Some(&digest::SHA512),
        _ => None,
    }
}

/// The SIMPLE-scheme digests of `zone`, one per hash algorithm of
/// `hashes` (in that order; an unknown algorithm is left out), from one
/// pass over the zone.
pub fn digests(zone: &Zone, hashes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut contexts: Vec<(u8, digest::Context)> =
        hashes.iter().filter_map(|&h| algorithm(h).map(|a| (h, digest::Context::new(a)))).collect();
    if contexts.is_empty() {
        return Vec::new();
    }
    let apex = zone.origin();
    let class = zone.class();
    let runs = zone.node_runs(zone.len() / RECORDS_PER_RUN + 1);
    let mut encoded: Vec<Vec<u8>> = Vec::new();
    for batch in runs.chunks(RUNS_PER_BATCH) {
        // This thread hashes the batch before while the pool encodes this one.
        let ((), next) = rayon::join(
            || hash_all(&mut contexts, &encoded),
            || {
                use rayon::prelude::*;
                batch.par_iter().map(|run| encode_run(*run, apex, class)).collect::<Vec<_>>()
            },
        );
        encoded = next;
    }
    hash_all(&mut contexts, &encoded);
    contexts.into_iter().map(|(h, context)| (h, context.finish().as_ref().to_vec())).collect()
}

fn hash_all(contexts: &mut [(u8, digest::Context)], pieces: &[Vec<u8>]) {
    for piece in pieces {
        for (_, context) in contexts.iter_mut() {
            context.update(piece);
        }
    }
}

/// One RR's canonical form: type, TTL and RDATA (the owner and class are
/// the node's).
type Canonical<'a> = (std::borrow::Cow<'a, [u8]>, u32);

/// The canonical wire form of a run's records, as RFC 8976 §3.4 digests
/// them.
fn encode_run(run: NodeRun<'_>, apex: NameRef<'_>, class: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORDS_PER_RUN * 128);
    let mut owner = Vec::with_capacity(256);
    let mut rrset: Vec<Canonical<'_>> = Vec::new();
    for node in run.nodes() {
        owner.clear();
        // Label lengths are below 64, under 'A': lowercasing the whole
        // wire name lowercases its letters only.
        owner.extend_from_slice(node.name().wire());
        owner.make_ascii_lowercase();
        let at_apex = node.name().eq_ignore_case(apex);
        for set in node.rrsets() {
            let rtype = set.rtype();
            if at_apex && rtype == Rtype::ZONEMD {
                continue;
            }
            rrset.clear();
            rrset.extend(
                set.records()
                    .filter(|r| !(at_apex && rtype == Rtype::RRSIG && covers_zonemd(r.rdata)))
                    .map(|r| (canonical_rdata(rtype, r.rdata), r.ttl)),
            );
            // The zone holds an RRset ordered by its RDATA as written; the
            // canonical form may order it otherwise (names lowercased).
            if rrset.iter().any(|(rdata, _)| matches!(rdata, std::borrow::Cow::Owned(_))) {
                rrset.sort();
                rrset.dedup();
            }
            for (rdata, ttl) in &rrset {
                out.extend_from_slice(&owner);
                out.extend_from_slice(&rtype.0.to_be_bytes());
                out.extend_from_slice(&class.to_be_bytes());
                out.extend_from_slice(&ttl.to_be_bytes());
                out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                out.extend_from_slice(rdata);
            }
        }
    }
    out
}

/// Whether an RRSIG (its RDATA) covers ZONEMD.
pub(crate) fn covers_zonemd(rrsig: &[u8]) -> bool {
    Rrsig::parse(rrsig).is_some_and(|sig| sig.type_covered == Rtype::ZONEMD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::{Name, read_zone_str};

    fn zone(text: &str) -> Zone {
        let origin = Name::from_text("example.", None).expect("origin");
        read_zone_str(text, &origin, std::path::Path::new("test")).expect("test zone reads")
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 8976 Appendix A.1, the simple example zone: its SHA-384 digest.
    #[test]
    fn rfc8976_simple_example() {
        let text = "example. 86400 IN SOA ns1 admin 2018031900 1800 900 604800 86400\n\
             example. 86400 IN NS ns1\n\
             example. 86400 IN NS ns2\n\
             ns1 3600 IN A 203.0.113.63\n\
             ns2 3600 IN AAAA 2001:db8::63\n\
             example. 86400 IN ZONEMD 2018031900 1 1 c68090d90a7aed716bc459f9340e3d7c1370d4d24b7e2fc3a1ddc0b9a87153b9a9713b3c9ae5cc27777f98b8e730044c\n";
        let zone = zone(text);
        let found = digests(&zone, &[HASH_SHA384, 9]);
        assert_eq!(found.len(), 1, "the unknown algorithm is left out");
        assert_eq!(
            hex(&found[0].1),
            "c68090d90a7aed716bc459f9340e3d7c1370d4d24b7e2fc3a1ddc0b9a87153b9a9713b3c9ae5cc27777f98b8e730044c"
        );
    }

    /// Owner and RDATA case, duplicates in canonical form, the apex
    /// ZONEMD and its RRSIG: none changes the digest.
    #[test]
    fn canonical_form_and_exclusions() {
        let base = "example. 300 IN SOA ns1 admin 1 1800 900 604800 300\n\
             example. 300 IN NS ns1\n\
             ns1 300 IN A 192.0.2.1\n\
             sub 300 IN NS ns.sub\n\
             ns.sub 300 IN A 192.0.2.2\n";
        let plain = digests(&zone(base), &[HASH_SHA384, HASH_SHA512]);
        assert_eq!(plain.iter().map(|(h, d)| (*h, d.len())).collect::<Vec<_>>(), [(1, 48), (2, 64)]);
        let varied = base.replace("sub 300 IN NS ns.sub", "SUB 300 IN NS NS.sub\nsub 300 IN NS ns.SUB")
            + "example. 300 IN ZONEMD 1 1 1 00112233445566778899aabbccddeeff\n\
               example. 300 IN RRSIG ZONEMD 13 1 300 20300101000000 20200101000000 1 example. AAAA\n";
        assert_eq!(digests(&zone(&varied), &[HASH_SHA384, HASH_SHA512]), plain);
        let changed = base.replace("192.0.2.2", "192.0.2.3");
        assert_ne!(digests(&zone(&changed), &[HASH_SHA384]), plain[..1]);
        // An RRSIG over another type at the apex, or a ZONEMD below it, counts.
        let below = base.to_owned() + "sub.example. 300 IN ZONEMD 1 1 1 00112233445566778899aabbccddeeff\n";
        assert_ne!(digests(&zone(&below), &[HASH_SHA384]), plain[..1]);
    }

    #[test]
    fn rdata_round_trip() {
        let digest = [7u8; 48];
        let record = Zonemd { serial: 2026120601, scheme: 1, hash: 1, digest: &digest };
        let rdata = record.to_rdata();
        assert_eq!(Zonemd::parse(&rdata), Some(record));
        assert!(record.is_supported());
        assert!(!Zonemd { scheme: 2, ..record }.is_supported());
        assert!(!Zonemd { hash: 3, ..record }.is_supported());
        assert_eq!(Zonemd::parse(&rdata[..5]), None);
        assert_eq!(digest_len(HASH_SHA512), Some(64));
    }
}
