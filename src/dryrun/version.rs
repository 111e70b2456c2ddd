//! What one published version of the zone holds, as far as a resolver's
//! cache cares: the DNSKEY RRset and who signs it, who signs the rest of
//! the zone, the TTLs, and the CDS the parent reads. Read from the signed
//! file that was published, not from the state machine's idea of it, so
//! that the safety check judges what resolvers would actually see.

use std::collections::BTreeMap;

use crate::zone::dnssec::soa_fields;
use crate::zone::dnssec::{Dnskey, Rrsig, key_tag};
use crate::zone::serial::resolve_serial_time;
use crate::zone::{Rtype, Zone};

/// A signature over an RRset, by the DNSKEY it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Index of the signing key in [`ZoneVersion::dnskeys`].
    pub key: usize,
    /// Its expiration (Unix seconds).
    pub expiration: i64,
}

/// The signed RRsets that share one set of signers, with the largest TTL
/// among them (the longest any of them can stay in a cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedKind {
    /// Indices of the signing keys in [`ZoneVersion::dnskeys`], ascending.
    pub signers: Vec<usize>,
    /// The largest TTL of these RRsets.
    pub ttl: u32,
    /// The RRset with that TTL, as `owner TYPE`, for messages.
    pub example: String,
    /// The earliest expiration of their signatures.
    pub expiration: i64,
}

/// One published version of the zone.
#[derive(Debug, Clone)]
pub struct ZoneVersion {
    /// Its SOA serial.
    pub serial: u32,
    /// When it was published (simulated time).
    pub published: i64,
    /// The DNSKEY RRset's TTL.
    pub dnskey_ttl: u32,
    /// The DNSKEY RDATA, in the zone's order.
    pub dnskeys: Vec<Vec<u8>>,
    /// The signatures over the DNSKEY RRset by keys in it.
    pub key_signatures: Vec<Signature>,
    /// The rest of the zone's signed RRsets, grouped by their signers.
    pub data: Vec<SignedKind>,
    /// The CDS RDATA (empty when the zone asks the parent for nothing).
    pub cds: Vec<Vec<u8>>,
}

impl ZoneVersion {
    /// Reads a version from a signed zone published at `published`.
    pub fn from_zone(zone: &Zone, published: i64) -> ZoneVersion {
        let apex = zone.node(zone.origin());
        let rdatas = |rtype: Rtype| -> Vec<Vec<u8>> {
            apex.as_ref()
                .and_then(|n| n.rrset(rtype))
                .map(|s| s.rdatas().map(<[u8]>::to_vec).collect())
                .unwrap_or_default()
        };
        let soa = rdatas(Rtype::SOA);
        let serial = soa.first().and_then(|r| soa_fields(r)).map_or(0, |(serial, _)| serial);
        let dnskey_ttl = apex.as_ref().and_then(|n| n.rrset(Rtype::DNSKEY)).map_or(0, |s| s.ttl());
        let dnskeys = rdatas(Rtype::DNSKEY);
        let signer_of = |rrsig: &Rrsig<'_>| {
            dnskeys.iter().position(|k| {
                Dnskey::parse(k).is_some_and(|d| d.algorithm == rrsig.algorithm) && key_tag(k) == rrsig.key_tag
            })
        };
        let mut key_signatures = Vec::new();
        let mut kinds: BTreeMap<Vec<usize>, SignedKind> = BTreeMap::new();
        for node in zone.nodes() {
            let Some(rrsigs) = node.rrset(Rtype::RRSIG) else { continue };
            let parsed: Vec<Rrsig<'_>> = rrsigs.rdatas().filter_map(Rrsig::parse).collect();
            for rrset in node.rrsets().filter(|s| s.rtype() != Rtype::RRSIG) {
                let signatures: Vec<Signature> = parsed
                    .iter()
                    .filter(|r| r.type_covered == rrset.rtype())
                    .filter_map(|r| {
                        let key = signer_of(r)?;
                        Some(Signature { key, expiration: resolve_serial_time(r.expiration, published) })
                    })
                    .collect();
                if signatures.is_empty() {
                    continue;
                }
                if matches!(rrset.rtype(), Rtype::DNSKEY | Rtype::CDS | Rtype::CDNSKEY) {
                    if rrset.rtype() == Rtype::DNSKEY {
                        key_signatures = signatures;
                    }
                    continue;
                }
                let mut signers: Vec<usize> = signatures.iter().map(|s| s.key).collect();
                signers.sort_unstable();
                signers.dedup();
                let expiration = signatures.iter().map(|s| s.expiration).min().unwrap_or(i64::MAX);
                let example = format!("{} {}", rrset.owner(), rrset.rtype());
                let kind = kinds.entry(signers.clone()).or_insert_with(|| SignedKind {
                    signers,
                    ttl: 0,
                    example: example.clone(),
                    expiration,
                });
                if rrset.ttl() > kind.ttl {
                    kind.ttl = rrset.ttl();
                    kind.example = example;
                }
                kind.expiration = kind.expiration.min(expiration);
            }
        }
        if dnskeys.is_empty()
            && let Some(soa) = apex.as_ref().and_then(|n| n.rrset(Rtype::SOA))
        {
            // An unsigned version (a zone gone insecure): its data is
            // signed by no key, which validates only without a DS.
            let example = format!("{} SOA", zone.origin());
            kinds.insert(Vec::new(), SignedKind { signers: Vec::new(), ttl: soa.ttl(), example, expiration: i64::MAX });
        }
        ZoneVersion {
            serial,
            published,
            dnskey_ttl,
            dnskeys,
            key_signatures,
            data: kinds.into_values().collect(),
            cds: rdatas(Rtype::CDS),
        }
    }

    /// `tag/alg` of the key at `index`.
    pub fn key_name(&self, index: usize) -> String {
        let rdata = &self.dnskeys[index];
        format!("{}/{}", key_tag(rdata), Dnskey::parse(rdata).map_or(0, |d| d.algorithm))
    }

    /// The algorithm of the key at `index`.
    pub fn algorithm(&self, index: usize) -> u8 {
        Dnskey::parse(&self.dnskeys[index]).map_or(0, |d| d.algorithm)
    }
}
