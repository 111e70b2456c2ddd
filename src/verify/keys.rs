//! The apex DNSKEY RRset as the verifier uses it: zone keys by key tag and
//! algorithm, each parsed once into a public key.

use std::collections::BTreeSet;

use super::crypto::{CryptoError, PublicKey};
use super::findings::{Code, Finding};
use crate::zone::dnssec::{Dnskey, key_tag};
use crate::zone::{Rtype, Zone};

/// One zone key from the apex DNSKEY RRset.
#[derive(Debug)]
pub struct ZoneKey {
    /// Key tag.
    pub tag: u16,
    /// Algorithm number.
    pub algorithm: u8,
    /// DNSKEY flags.
    pub flags: u16,
    /// The DNSKEY RDATA.
    pub rdata: Vec<u8>,
    /// The parsed key, or why it cannot be used.
    pub public_key: Result<PublicKey, CryptoError>,
}

/// The zone keys of the apex DNSKEY RRset.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<ZoneKey>,
    /// Algorithms of the zone keys: every authoritative RRset needs a
    /// valid RRSIG for each (RFC 4035 §2.2).
    pub algorithms: BTreeSet<u8>,
    /// Algorithms the verifier cannot check (reported once, at the apex).
    pub unsupported: BTreeSet<u8>,
}

impl KeySet {
    /// Reads the apex DNSKEY RRset; problems with it become findings.
    pub fn from_apex(zone: &Zone, findings: &mut Vec<Finding>) -> KeySet {
        let apex = zone.origin();
        let mut set = KeySet::default();
        let Some(rrset) = zone.node(apex).and_then(|node| node.rrset(Rtype::DNSKEY)) else {
            findings.push(Finding::error(
                Code::NoZoneKeys,
                apex,
                Rtype::DNSKEY,
                "no DNSKEY RRset at the apex: the zone is not signed",
            ));
            return set;
        };
        for rdata in rrset.rdatas() {
            let Some(dnskey) = Dnskey::parse(rdata) else {
                findings.push(Finding::error(Code::MalformedRecord, apex, Rtype::DNSKEY, "malformed DNSKEY record"));
                continue;
            };
            if !dnskey.is_zone_key() {
                continue;
            }
            let tag = key_tag(rdata);
            let public_key = PublicKey::from_dnskey(dnskey.algorithm, dnskey.public_key);
            match &public_key {
                Err(e) if e.is_unsupported() => {
                    set.unsupported.insert(dnskey.algorithm);
                    findings.push(
                        Finding::error(Code::UnsupportedAlgorithm, apex, Rtype::DNSKEY, format!("zone key cannot be checked: {e} (keytag={tag}, alg={}); its signatures are not verified", dnskey.algorithm))
                            .with_keytag(tag),
                    );
                }
                Err(e) => findings.push(
                    Finding::error(
                        Code::MalformedRecord,
                        apex,
                        Rtype::DNSKEY,
                        format!("unusable public key: {e} (keytag={tag}, alg={})", dnskey.algorithm),
                    )
                    .with_keytag(tag),
                ),
                Ok(_) => {}
            }
            set.algorithms.insert(dnskey.algorithm);
            set.keys.push(ZoneKey {
                tag,
                algorithm: dnskey.algorithm,
                flags: dnskey.flags,
                rdata: rdata.to_vec(),
                public_key,
            });
        }
        if set.keys.is_empty() {
            findings.push(Finding::error(
                Code::NoZoneKeys,
                apex,
                Rtype::DNSKEY,
                "the DNSKEY RRset holds no zone key (flags bit 7, protocol 3)",
            ));
        }
        set
    }

    /// The zone keys with this tag and algorithm (tags may collide).
    pub fn candidates(&self, tag: u16, algorithm: u8) -> impl Iterator<Item = (usize, &ZoneKey)> {
        self.keys.iter().enumerate().filter(move |(_, k)| k.tag == tag && k.algorithm == algorithm)
    }

    /// The key at an index from `candidates`.
    pub fn get(&self, index: usize) -> &ZoneKey {
        &self.keys[index]
    }

    /// All zone keys.
    pub fn iter(&self) -> impl Iterator<Item = &ZoneKey> {
        self.keys.iter()
    }

    /// No zone key at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
