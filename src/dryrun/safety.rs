//! The cache-model safety check. At an instant T a validating resolver
//! may hold, at once, any DS RRset the parent published within the DS TTL
//! plus the parent's propagation delay before T, any DNSKEY RRset the zone
//! published within its TTL plus the zone's propagation delay before T,
//! and any signed RRset within its TTL plus that delay. Every such
//! combination must still validate, for every algorithm in the DS RRset
//! (a resolver that knows only one of them must succeed with that one):
//!
//! 1. a DS of that algorithm matches a DNSKEY of the cached DNSKEY RRset
//!    that signs that RRset, and
//! 2. the cached RRset carries a signature of that algorithm by a key of
//!    the cached DNSKEY RRset.
//!
//! Once the parent has published a DS, an empty DS RRset is unsafe too: the
//! zone would fall back to insecure; unless the zone was going insecure
//! when the parent emptied it (RFC 6781 §4.3). Going insecure is then
//! judged like any other change: while a resolver may hold the old DS,
//! every version it may meet must validate with it (a version without
//! DNSKEYs or signatures does not). The check is independent of the state
//! machine: it reads what each version of the zone and of the parent
//! actually published, with the TTLs actually in them.
//!
//! Candidate sets only grow when something is published, so checking at
//! each publication instant covers every instant in between.

use serde::Serialize;

use super::version::{SignedKind, ZoneVersion};
use crate::time::format_time;
use crate::zone::Name;
use crate::zone::dnssec::Ds;
use crate::zone::dnssec::ds_matches;

/// Propagation delays and the parent's DS TTL.
#[derive(Debug, Clone, Copy)]
pub struct CacheModel {
    /// Time for a zone version to reach every name server of the zone.
    pub zone_propagation: i64,
    /// Time for a DS change to reach every name server of the parent.
    pub parent_propagation: i64,
    /// TTL of the parent's DS RRset.
    pub ds_ttl: i64,
}

/// The first combination of cached records that does not validate.
#[derive(Debug, Clone, Serialize)]
pub struct Unsafe {
    /// The instant (Unix seconds).
    pub at: i64,
    /// When the parent published the DS RRset involved.
    pub ds_published: i64,
    /// Its DS records, as `tag/alg`.
    pub ds: Vec<String>,
    /// The serial of the version whose DNSKEY RRset is involved.
    pub dnskey_serial: u32,
    /// The serial of the version whose signed RRset is involved.
    pub data_serial: u32,
    /// Why the chain fails (in the report, in words).
    #[serde(serialize_with = "in_words")]
    pub reason: UnsafeReason,
}

/// Why a combination of cached records does not validate. Keys are
/// named `tag/alg`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeReason {
    /// A version's signatures expire while name servers may still serve it.
    #[error(
        "signatures of serial {serial} expire at {} while name servers may serve it until {}",
        format_time(*.expiration),
        format_time(*.served_until)
    )]
    Expiring {
        /// The version.
        serial: u32,
        /// Its earliest signature expiration.
        expiration: i64,
        /// The end of its service.
        served_until: i64,
    },
    /// An empty DS RRset once the zone was secure.
    #[error("a resolver may hold an empty DS RRset from the parent: the zone would be insecure")]
    Insecure,
    /// No DS of an algorithm leads to a key signing the DNSKEY RRset.
    #[error(
        "no DS of algorithm {algorithm} matches a DNSKEY that signs the DNSKEY RRset of serial {serial} (it holds {keys})"
    )]
    NoTrustedKey {
        /// The DS algorithm.
        algorithm: u8,
        /// The version of the DNSKEY RRset.
        serial: u32,
        /// The keys it holds.
        keys: String,
    },
    /// Data signed, for an algorithm, only by keys the cached DNSKEY RRset lacks.
    #[error(
        "{example} of serial {data_serial} is signed by {signers}, and the DNSKEY RRset of serial {dnskey_serial} \
         holds no key of algorithm {algorithm} among them (it holds {keys})"
    )]
    UnknownSigners {
        /// An RRset of the kind (`owner TYPE`).
        example: String,
        /// The version of the data.
        data_serial: u32,
        /// The keys that sign it.
        signers: String,
        /// The version of the DNSKEY RRset.
        dnskey_serial: u32,
        /// The algorithm.
        algorithm: u8,
        /// The keys the DNSKEY RRset holds.
        keys: String,
    },
}

/// A value in a report, as its text.
fn in_words<S: serde::Serializer>(value: &impl std::fmt::Display, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Something published, and until when it was the current version.
#[derive(Debug)]
struct Published<T> {
    item: T,
    since: i64,
    replaced: Option<i64>,
}

impl<T> Published<T> {
    /// Can a cache hold it at `at`, given its TTL plus propagation delay?
    fn may_be_cached(&self, at: i64, hold: i64) -> bool {
        self.since <= at && self.replaced.is_none_or(|end| at < end + hold)
    }
}

/// A DS RRset the parent published.
#[derive(Debug)]
struct DsSet {
    records: Vec<Vec<u8>>,
    /// Empty because the zone went insecure on purpose.
    intended_insecure: bool,
}

/// The history the check runs on, and how many combinations it has tried.
#[derive(Debug)]
pub struct Checker {
    origin: Name,
    model: CacheModel,
    zone: Vec<Published<ZoneVersion>>,
    ds: Vec<Published<DsSet>>,
    /// The zone is going insecure: an empty DS RRset the parent publishes
    /// now is what the zone asked for.
    going_insecure: bool,
    /// Combinations checked so far.
    pub combinations: u64,
    /// Instants checked so far.
    pub instants: u64,
}

impl Checker {
    /// An empty history: no zone yet, no DS at the parent.
    pub fn new(origin: Name, model: CacheModel) -> Checker {
        Checker { origin, model, zone: Vec::new(), ds: Vec::new(), going_insecure: false, combinations: 0, instants: 0 }
    }

    /// From now on the zone is (or is no longer) going insecure: an empty
    /// DS RRset the parent publishes while it is was asked for.
    pub fn set_going_insecure(&mut self, going: bool) {
        self.going_insecure = going;
    }

    /// A new version of the zone is published. Fails when the version it
    /// replaces has signatures that expire while name servers may still
    /// serve it.
    pub fn zone_published(&mut self, version: ZoneVersion) -> Result<(), Box<Unsafe>> {
        let at = version.published;
        if let Some(last) = self.zone.last_mut() {
            last.replaced = Some(at);
            let served_until = at + self.model.zone_propagation;
            let v = &last.item;
            let earliest =
                v.key_signatures.iter().map(|s| s.expiration).chain(v.data.iter().map(|k| k.expiration)).min();
            if let Some(expiration) = earliest.filter(|&e| e < served_until) {
                let reason = UnsafeReason::Expiring { serial: v.serial, expiration, served_until };
                return Err(Box::new(unsafe_at(expiration, v.serial, v.serial, reason)));
            }
        }
        self.zone.push(Published { since: at, replaced: None, item: version });
        Ok(())
    }

    /// The parent publishes a new DS RRset at `at`.
    pub fn ds_published(&mut self, records: &[Vec<u8>], at: i64) {
        if let Some(last) = self.ds.last_mut() {
            last.replaced = Some(at);
        }
        let intended_insecure = records.is_empty() && self.going_insecure;
        self.ds.push(Published {
            since: at,
            replaced: None,
            item: DsSet { records: records.to_vec(), intended_insecure },
        });
    }

    /// Checks every combination a resolver may hold at `at`.
    pub fn check(&mut self, at: i64) -> Result<(), Box<Unsafe>> {
        self.instants += 1;
        let m = self.model;
        let ds_hold = m.ds_ttl + m.parent_propagation;
        let secure_before = self.ds.iter().any(|d| d.since <= at && !d.item.records.is_empty());
        let ds_sets: Vec<&Published<DsSet>> = self.ds.iter().filter(|d| d.may_be_cached(at, ds_hold)).collect();
        let dnskeys: Vec<&Published<ZoneVersion>> = self
            .zone
            .iter()
            .filter(|v| v.may_be_cached(at, i64::from(v.item.dnskey_ttl) + m.zone_propagation))
            .collect();
        for data in &self.zone {
            for kind in &data.item.data {
                if !data.may_be_cached(at, i64::from(kind.ttl) + m.zone_propagation) {
                    continue;
                }
                for ds in &ds_sets {
                    for keys in &dnskeys {
                        self.combinations += 1;
                        let verdict = if ds.item.records.is_empty() {
                            insecure(secure_before && !ds.item.intended_insecure)
                        } else {
                            validates(&self.origin, &ds.item.records, &keys.item, &data.item, kind, at)
                        };
                        if let Err(reason) = verdict {
                            let mut found = unsafe_at(at, keys.item.serial, data.item.serial, reason);
                            found.ds_published = ds.since;
                            found.ds = ds.item.records.iter().map(|d| ds_name(d)).collect();
                            return Err(Box::new(found));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn unsafe_at(at: i64, dnskey_serial: u32, data_serial: u32, reason: UnsafeReason) -> Unsafe {
    Unsafe { at, ds_published: 0, ds: Vec::new(), dnskey_serial, data_serial, reason }
}

/// An empty DS RRset: insecure, which is unsafe once the zone was secure.
fn insecure(secure_before: bool) -> Result<(), UnsafeReason> {
    if secure_before { Err(UnsafeReason::Insecure) } else { Ok(()) }
}

/// Does the chain DS → DNSKEY RRset → signed RRset hold for every
/// algorithm in the DS RRset?
fn validates(
    origin: &Name,
    ds: &[Vec<u8>],
    keys: &ZoneVersion,
    data: &ZoneVersion,
    kind: &SignedKind,
    at: i64,
) -> Result<(), UnsafeReason> {
    let mut algorithms: Vec<u8> = ds.iter().filter_map(|d| Ds::parse(d)).map(|d| d.algorithm).collect();
    algorithms.sort_unstable();
    algorithms.dedup();
    for algorithm in algorithms {
        let trusted = ds.iter().filter(|d| Ds::parse(d).is_some_and(|d| d.algorithm == algorithm)).any(|d| {
            keys.key_signatures
                .iter()
                .any(|s| s.expiration > at && ds_matches(origin.as_ref(), d, &keys.dnskeys[s.key]) == Some(true))
        });
        if !trusted {
            return Err(UnsafeReason::NoTrustedKey {
                algorithm,
                serial: keys.serial,
                keys: key_list(keys, 0..keys.dnskeys.len()),
            });
        }
        let signed =
            kind.signers.iter().any(|&i| data.algorithm(i) == algorithm && keys.dnskeys.contains(&data.dnskeys[i]));
        if !signed {
            return Err(UnsafeReason::UnknownSigners {
                example: kind.example.clone(),
                data_serial: data.serial,
                signers: key_list(data, kind.signers.iter().copied()),
                dnskey_serial: keys.serial,
                algorithm,
                keys: key_list(keys, 0..keys.dnskeys.len()),
            });
        }
    }
    Ok(())
}

fn key_list(version: &ZoneVersion, keys: impl Iterator<Item = usize>) -> String {
    let names: Vec<String> = keys.map(|i| version.key_name(i)).collect();
    if names.is_empty() { "no key".to_owned() } else { format!("key {}", names.join(", ")) }
}

/// `tag/alg` of a DS record.
pub fn ds_name(rdata: &[u8]) -> String {
    Ds::parse(rdata).map_or_else(|| "?".to_owned(), |d| format!("{}/{}", d.key_tag, d.algorithm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dryrun::version::Signature;
    use crate::keys::{Algorithm, PublishedKey, Role};

    const HOUR: i64 = 3600;

    fn origin() -> Name {
        Name::from_text("example.", None).expect("name")
    }

    fn key(byte: u8, role: Role) -> PublishedKey {
        PublishedKey::from_public(Algorithm::EcdsaP256Sha256, &[byte; 64], role)
    }

    /// A version published at `at` holding `keys`, the first signing the
    /// DNSKEY RRset and `zone_signer` signing the rest (TTL 1 day).
    fn version(serial: u32, at: i64, keys: &[&PublishedKey], zone_signer: usize) -> ZoneVersion {
        let far = at + 30 * 24 * HOUR;
        ZoneVersion {
            serial,
            published: at,
            dnskey_ttl: 3600,
            dnskeys: keys.iter().map(|k| k.rdata.clone()).collect(),
            key_signatures: vec![Signature { key: 0, expiration: far }],
            data: vec![SignedKind { signers: vec![zone_signer], ttl: 86400, example: "www A".into(), expiration: far }],
            cds: Vec::new(),
        }
    }

    fn checker() -> Checker {
        Checker::new(origin(), CacheModel { zone_propagation: 600, parent_propagation: HOUR, ds_ttl: 86400 })
    }

    #[test]
    fn a_zsk_withdrawn_while_its_signatures_are_cached_is_caught() {
        let (ksk, old, new) = (key(1, Role::Ksk), key(2, Role::Zsk), key(3, Role::Zsk));
        let ds = ksk.ds_rdata(origin().as_ref(), 2).expect("ds");
        // Serial 2 (at 10 h) pre-publishes the new ZSK; serial 3 (at 20 h)
        // signs with it. Serial 2's data, signed by the old ZSK, may stay
        // cached until 20 h + 1 d + 10 m: a DNSKEY RRset without the old
        // ZSK is unsafe before that.
        let withdraw_at = |at: i64| {
            let mut c = checker();
            c.ds_published(std::slice::from_ref(&ds), 0);
            c.zone_published(version(1, 0, &[&ksk, &old], 1)).expect("serial 1");
            c.zone_published(version(2, 10 * HOUR, &[&ksk, &old, &new], 1)).expect("serial 2");
            c.zone_published(version(3, 20 * HOUR, &[&ksk, &old, &new], 2)).expect("serial 3");
            assert!(c.check(20 * HOUR).is_ok(), "pre-published, then signing with the new ZSK");
            c.zone_published(version(4, at, &[&ksk, &new], 1)).expect("serial 4");
            c.check(at)
        };
        let expired = 20 * HOUR + 86400 + 600;
        let found = withdraw_at(expired - 1).expect_err("old-signed data still cached");
        assert_eq!((found.at, found.dnskey_serial, found.data_serial), (expired - 1, 4, 2));
        assert!(found.reason.to_string().contains("holds no key of algorithm 13"), "{}", found.reason);
        assert!(withdraw_at(expired).is_ok(), "every cached copy of serial 1 has expired");
    }

    #[test]
    fn signing_with_a_zsk_that_caches_may_not_hold_is_caught() {
        let (ksk, old, new) = (key(1, Role::Ksk), key(2, Role::Zsk), key(3, Role::Zsk));
        let ds = ksk.ds_rdata(origin().as_ref(), 2).expect("ds");
        let mut c = checker();
        c.ds_published(&[ds], 0);
        c.zone_published(version(1, 0, &[&ksk, &old], 1)).expect("serial 1");
        // The new ZSK published and used at once: resolvers holding serial
        // 1's DNSKEY RRset (1 h + 10 m) cannot validate serial 2's data.
        c.zone_published(version(2, 20 * HOUR, &[&ksk, &old, &new], 2)).expect("serial 2");
        let found = c.check(20 * HOUR).expect_err("not pre-published");
        assert_eq!((found.dnskey_serial, found.data_serial), (1, 2));
    }

    #[test]
    fn an_empty_ds_rrset_after_a_secure_one_is_caught() {
        let ksk = key(1, Role::Csk);
        let ds = ksk.ds_rdata(origin().as_ref(), 2).expect("ds");
        let mut c = checker();
        c.zone_published(version(1, 0, &[&ksk], 0)).expect("first");
        assert!(c.check(0).is_ok(), "insecure before any DS: not a failure");
        c.ds_published(&[ds], HOUR);
        assert!(c.check(HOUR).is_ok());
        c.ds_published(&[], 2 * HOUR);
        let found = c.check(2 * HOUR).expect_err("went insecure");
        assert!(found.reason.to_string().contains("insecure"), "{}", found.reason);
    }

    /// Going insecure: the empty DS set is wanted, but a version without
    /// keys is unsafe until every cached copy of the old DS set is gone.
    #[test]
    fn going_insecure_is_safe_only_once_the_old_ds_has_left_caches() {
        let ksk = key(1, Role::Csk);
        let ds = ksk.ds_rdata(origin().as_ref(), 2).expect("ds");
        let unsigned_at = |at: i64| {
            let mut c = checker();
            c.ds_published(std::slice::from_ref(&ds), 0);
            c.zone_published(version(1, 0, &[&ksk], 0)).expect("signed");
            c.set_going_insecure(true);
            c.ds_published(&[], 10 * HOUR);
            assert!(c.check(10 * HOUR).is_ok(), "the empty DS set was asked for");
            let unsigned = ZoneVersion::from_zone(&unsigned_zone(), at);
            c.zone_published(unsigned).expect("unsigned");
            c.check(at)
        };
        let gone = 10 * HOUR + 86400 + HOUR;
        let found = unsigned_at(gone - 1).expect_err("the old DS may still be cached");
        assert!(found.reason.to_string().contains("no DS of algorithm"), "{}", found.reason);
        assert!(unsigned_at(gone).is_ok(), "no cache holds the old DS any more");
    }

    fn unsigned_zone() -> crate::zone::Zone {
        let text = "example. 3600 IN SOA ns.example. h.example. 2 60 30 600 300\nexample. 3600 IN NS ns.example.\n";
        crate::zone::read_zone_str(text, &origin(), std::path::Path::new("t")).expect("zone")
    }
}
