//! Signatures kept from the version last published: an RRSIG is copied
//! into the new version instead of being made again when the RRset it
//! covers is byte for byte what it was, the key that made it is one the
//! key states say should sign the RRset now (same tag, algorithm and
//! public key), and it stays valid for longer than the refresh margin
//! plus the pre-refresh. Everything else is signed anew: changed RRsets,
//! RRsets whose signing keys changed in a rollover, signatures due for
//! refresh, and all of them after a change of algorithm, NSEC3
//! parameters or denial type (the records differ, or the key does).
//!
//! The signer trusts nothing here beyond the bytes it copies: the gate
//! verifies a kept signature like any other, and a refused candidate that
//! kept signatures is signed again in full (`manage::run`).

use std::collections::HashMap;

use super::Signer;
use super::rrsig::{RrsetToSign, Window, canonical_records};
use crate::zone::dnssec::{Rrsig, key_tag};
use crate::zone::serial::resolve_serial_time;
use crate::zone::{NameRef, Node, Rtype, Zone};

/// The version last published, as a source of signatures.
#[derive(Debug)]
pub(crate) struct Previous<'a> {
    zone: &'a Zone,
    /// Its apex DNSKEYs by key tag: (algorithm, public key). A tag two
    /// keys share is left out, so that no signature is taken for the
    /// wrong key.
    keys: HashMap<u16, (u8, &'a [u8])>,
    now: i64,
    renew_within: i64,
}

impl<'a> Previous<'a> {
    /// Signatures of `zone` may be kept at `now` while they have more than
    /// `renew_within` (refresh plus pre-refresh) of validity left.
    pub(crate) fn new(zone: &'a Zone, now: i64, renew_within: i64) -> Previous<'a> {
        let mut keys = HashMap::new();
        let mut shared = Vec::new();
        let dnskeys = zone.node(zone.origin()).and_then(|apex| apex.rrset(Rtype::DNSKEY));
        for rdata in dnskeys.iter().flat_map(|set| set.rdatas()) {
            let (Some(&algorithm), Some(public)) = (rdata.get(3), rdata.get(4..)) else { continue };
            let tag = key_tag(rdata);
            if keys.insert(tag, (algorithm, public)).is_some() {
                shared.push(tag);
            }
        }
        for tag in shared {
            keys.remove(&tag);
        }
        Previous { zone, keys, now, renew_within }
    }

    /// The previous version itself.
    pub(crate) fn zone(&self) -> &'a Zone {
        self.zone
    }

    /// A walk through the previous version from `first` on, for a caller
    /// that looks names up in canonical order.
    pub(crate) fn cursor(&self, first: NameRef<'_>) -> Cursor<'a> {
        Cursor { nodes: Box::new(self.zone.nodes_from(first)), next: None }
    }

    /// The RRSIG RDATAs that covered this RRset in `old`, if the RRset
    /// there was exactly the same: byte for byte in the same order (both
    /// come from zones in canonical order: the common case, no copy), or
    /// else the same in canonical form (names differing in case).
    pub(crate) fn signatures_over(&self, old: &Node<'a>, rrset: &RrsetToSign<'_>, class: u16) -> Vec<&'a [u8]> {
        let Some(old_set) = old.rrset(rrset.rtype) else { return Vec::new() };
        if !old_set.ttls_agree() || old_set.ttl() != rrset.ttl {
            return Vec::new();
        }
        let identical = old_set.len() == rrset.rdatas.len() && old_set.rdatas().eq(rrset.rdatas.iter().copied());
        if !identical {
            let old_rrset = RrsetToSign {
                owner: old_set.owner(),
                rtype: old_set.rtype(),
                ttl: old_set.ttl(),
                rdatas: old_set.rdatas().collect(),
            };
            if canonical_records(&old_rrset, class) != canonical_records(rrset, class) {
                return Vec::new();
            }
        }
        let Some(rrsigs) = old.rrset(Rtype::RRSIG) else { return Vec::new() };
        rrsigs.rdatas().filter(|rdata| rdata.get(..2) == Some(&rrset.rtype.0.to_be_bytes()[..])).collect()
    }

    /// The signature among `candidates` that `signer` made over `rrset`
    /// and that may be kept under `window` (the window a new one would
    /// get): same labels, original TTL, signer name, tag, algorithm and
    /// public key, valid now, with more than the renewal margin left, and
    /// expiring no later than a new one would (a shortened validity
    /// re-signs).
    pub(crate) fn keep(
        &self,
        candidates: &[&'a [u8]],
        rrset: &RrsetToSign<'_>,
        signer: &Signer<'_>,
        window: &Window,
    ) -> Option<&'a [u8]> {
        let apex = self.zone.origin();
        let algorithm = signer.key.algorithm().number();
        let same_key = self.keys.get(&signer.tag) == Some(&(algorithm, signer.key.public_key()));
        if !same_key {
            return None;
        }
        candidates.iter().copied().find(|rdata| {
            let Some(rrsig) = Rrsig::parse(rdata) else { return false };
            let inception = resolve_serial_time(rrsig.inception, self.now);
            let expiration = resolve_serial_time(rrsig.expiration, self.now);
            rrsig.key_tag == signer.tag
                && rrsig.algorithm == algorithm
                && usize::from(rrsig.labels) == rrset.owner.rrsig_labels()
                && rrsig.original_ttl == rrset.ttl
                && rrsig.signer.eq_ignore_case(apex)
                && inception <= self.now
                && expiration - self.now > self.renew_within
                && expiration <= window.expiration
        })
    }
}

/// The previous version's nodes, visited in canonical order: each lookup
/// moves forward from the last, so a task of consecutive names costs one
/// binary search and a merge instead of a search per name.
pub(crate) struct Cursor<'a> {
    nodes: Box<dyn Iterator<Item = Node<'a>> + 'a>,
    next: Option<Node<'a>>,
}

impl std::fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor").field("next", &self.next.as_ref().map(Node::name)).finish()
    }
}

impl<'a> Cursor<'a> {
    /// The node at `name`, if the previous version has one; `name` must
    /// not come before the name of the last call.
    pub(crate) fn find(&mut self, name: NameRef<'_>) -> Option<Node<'a>> {
        loop {
            let node = match self.next.take() {
                Some(node) => node,
                None => self.nodes.next()?,
            };
            match node.name().canonical_cmp(name) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => {
                    self.next = Some(node);
                    return Some(node);
                }
                std::cmp::Ordering::Greater => {
                    self.next = Some(node);
                    return None;
                }
            }
        }
    }
}
