//! Check 4 of the verifier: the DNSKEY RRset is signed by a key the trust
//! anchor (the parent's DS, or configured DNSKEYs) names, for every
//! algorithm of the anchor; and CDS/CDNSKEY match keys that are published.

use std::collections::BTreeSet;

use super::Context;
use super::findings::{Code, Finding};
use super::keys::ZoneKey;
use super::signatures::verify_rrsig;
use crate::zone::dnssec::{Dnskey, Ds, Rrsig, ds_matches};
use crate::zone::{NameRef, Rtype};

/// A trust-anchor record: DS or DNSKEY RDATA for the apex.
#[derive(Debug, Clone)]
pub enum Anchor {
    /// DS RDATA.
    Ds(Vec<u8>),
    /// DNSKEY RDATA.
    Dnskey(Vec<u8>),
}

impl Anchor {
    fn algorithm(&self) -> Option<u8> {
        match self {
            Anchor::Ds(rdata) => Ds::parse(rdata).map(|ds| ds.algorithm),
            Anchor::Dnskey(rdata) => Dnskey::parse(rdata).map(|k| k.algorithm),
        }
    }

    fn describe(&self) -> String {
        match self {
            Anchor::Ds(rdata) => Ds::parse(rdata).map_or("malformed DS".into(), |ds| {
                format!("DS keytag={}, alg={}, digest type {}", ds.key_tag, ds.algorithm, ds.digest_type)
            }),
            Anchor::Dnskey(rdata) => Dnskey::parse(rdata).map_or("malformed DNSKEY".into(), |k| {
                format!("DNSKEY keytag={}, alg={}", crate::zone::dnssec::key_tag(rdata), k.algorithm)
            }),
        }
    }

    /// Does this anchor name the key? `None` when it cannot tell (digest
    /// type unknown).
    fn matches(&self, apex: NameRef<'_>, key: &ZoneKey) -> Option<bool> {
        match self {
            Anchor::Dnskey(rdata) => Some(rdata == &key.rdata),
            Anchor::Ds(rdata) => ds_matches(apex, rdata, &key.rdata),
        }
    }
}

/// Why a trust-anchor file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The file does not read as a master file.
    #[error(transparent)]
    Read(#[from] crate::zone::ReadError),
    /// A record that is not a DS or DNSKEY of the apex.
    #[error("{file}:{line}: {reason}")]
    Record {
        /// The file.
        file: String,
        /// Its line.
        line: usize,
        /// What is wrong.
        reason: AnchorProblem,
    },
    /// No DS or DNSKEY in the file.
    #[error("{0}: no DS or DNSKEY records in the trust anchor file")]
    Empty(String),
}

/// What is wrong with a record of a trust-anchor file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorProblem {
    /// A record of another name.
    #[error("trust anchor owner {owner} is not the zone apex {apex}")]
    NotApex {
        /// The record's owner.
        owner: crate::zone::Name,
        /// The zone apex.
        apex: crate::zone::Name,
    },
    /// A record of another type.
    #[error("trust anchor must be DS or DNSKEY records, found {0}")]
    NotDsOrDnskey(Rtype),
}

/// Reads DS and DNSKEY records for the apex from a master file.
pub fn read_anchor_file(path: &std::path::Path, origin: &crate::zone::Name) -> Result<Vec<Anchor>, AnchorError> {
    let file = path.display().to_string();
    let mut anchors = Vec::new();
    for record in crate::zone::reader::read_records_file(path, origin)? {
        let bad = |reason| AnchorError::Record { file: file.clone(), line: record.line, reason };
        if !record.owner.as_ref().eq_ignore_case(origin.as_ref()) {
            return Err(bad(AnchorProblem::NotApex { owner: record.owner.clone(), apex: origin.clone() }));
        }
        match record.rtype {
            Rtype::DS => anchors.push(Anchor::Ds(record.rdata)),
            Rtype::DNSKEY => anchors.push(Anchor::Dnskey(record.rdata)),
            other => return Err(bad(AnchorProblem::NotDsOrDnskey(other))),
        }
    }
    if anchors.is_empty() {
        return Err(AnchorError::Empty(file));
    }
    Ok(anchors)
}

/// Checks the trust chain and CDS/CDNSKEY.
pub fn check(ctx: &Context<'_>, anchors: Option<&[Anchor]>, findings: &mut Vec<Finding>) {
    let signers = dnskey_signers(ctx);
    match anchors {
        Some(anchors) => check_anchors(ctx, anchors, &signers, findings),
        None => check_sep_signers(ctx, &signers, findings),
    }
    check_cds(ctx, findings);
}

/// The zone keys that made a valid RRSIG over the apex DNSKEY RRset.
fn dnskey_signers<'k>(ctx: &'k Context<'_>) -> Vec<&'k ZoneKey> {
    let Some(node) = ctx.zone.node(ctx.apex) else { return Vec::new() };
    let (Some(dnskeys), Some(rrsigs)) = (node.rrset(Rtype::DNSKEY), node.rrset(Rtype::RRSIG)) else {
        return Vec::new();
    };
    let mut buf = Vec::new();
    rrsigs
        .records()
        .filter_map(|record| Some((record, Rrsig::parse(record.rdata)?)))
        .filter(|(_, rrsig)| rrsig.type_covered == Rtype::DNSKEY)
        .filter_map(|(record, rrsig)| verify_rrsig(ctx, &dnskeys, record, &rrsig, &mut buf).key)
        .collect()
}

fn check_anchors(ctx: &Context<'_>, anchors: &[Anchor], signers: &[&ZoneKey], findings: &mut Vec<Finding>) {
    let algorithms: BTreeSet<u8> = anchors.iter().filter_map(Anchor::algorithm).collect();
    for alg in algorithms {
        let of_alg: Vec<&Anchor> = anchors.iter().filter(|a| a.algorithm() == Some(alg)).collect();
        let anchored: Vec<&ZoneKey> =
            ctx.keys.iter().filter(|key| of_alg.iter().any(|a| a.matches(ctx.apex, key) == Some(true))).collect();
        for anchor in &of_alg {
            if !ctx.keys.iter().any(|key| anchor.matches(ctx.apex, key) == Some(true)) {
                let f = Finding::warning(
                    Code::AnchorWithoutKey,
                    ctx.apex,
                    Rtype::DNSKEY,
                    format!("trust anchor {} matches no key in the DNSKEY RRset", anchor.describe()),
                );
                findings.push(f);
            }
        }
        if ctx.keys.unsupported.contains(&alg) {
            continue;
        }
        let message = if anchored.is_empty() {
            format!("no DNSKEY matches the trust anchor for algorithm {alg}: resolvers that follow the DS find no key")
        } else if !anchored.iter().any(|key| signers.iter().any(|s| std::ptr::eq(*s, *key))) {
            let tags: Vec<String> = anchored.iter().map(|k| k.tag.to_string()).collect();
            format!("DNSKEY RRset is not signed by the trust-anchor key (keytag={}, alg={alg})", tags.join("/"))
        } else {
            continue;
        };
        let mut f = Finding::error(Code::Untrusted, ctx.apex, Rtype::DNSKEY, message);
        if let Some(key) = anchored.first() {
            f = f.with_keytag(key.tag);
        }
        findings.push(f);
    }
}

/// Without an anchor, each algorithm's DNSKEY RRset signature must come
/// from a key with the SEP bit (the key a parent DS would name).
fn check_sep_signers(ctx: &Context<'_>, signers: &[&ZoneKey], findings: &mut Vec<Finding>) {
    for &alg in ctx.keys.algorithms.difference(&ctx.keys.unsupported) {
        let signed_by_sep = signers.iter().any(|k| k.algorithm == alg && k.flags & crate::zone::dnssec::FLAG_SEP != 0);
        if !signed_by_sep {
            findings.push(Finding::error(
                Code::Untrusted,
                ctx.apex,
                Rtype::DNSKEY,
                format!("DNSKEY RRset is not signed by any key with the SEP bit for algorithm {alg}"),
            ));
        }
    }
}

/// RFC 7344/8078: every CDS and CDNSKEY names a published DNSKEY, or the
/// RRset is the single "delete" record.
fn check_cds(ctx: &Context<'_>, findings: &mut Vec<Finding>) {
    let Some(node) = ctx.zone.node(ctx.apex) else { return };
    if let Some(cds) = node.rrset(Rtype::CDS) {
        for rdata in cds.rdatas() {
            let is_delete = Ds::parse(rdata).is_some_and(|ds| ds.is_delete());
            let published = ctx.keys.iter().any(|key| ds_matches(ctx.apex, rdata, &key.rdata) == Some(true));
            if !(published || is_delete && cds.len() == 1) {
                let tag = Ds::parse(rdata).map_or(0, |ds| ds.key_tag);
                findings.push(
                    Finding::error(
                        Code::CdsMismatch,
                        ctx.apex,
                        Rtype::CDS,
                        format!("CDS names no key in the DNSKEY RRset (keytag={tag})"),
                    )
                    .with_keytag(tag),
                );
            }
        }
    }
    if let Some(cdnskey) = node.rrset(Rtype::CDNSKEY) {
        for rdata in cdnskey.rdatas() {
            let is_delete = Dnskey::parse(rdata).is_some_and(|k| k.is_delete());
            let published = ctx.keys.iter().any(|key| key.rdata == rdata);
            if !(published || is_delete && cdnskey.len() == 1) {
                let tag = crate::zone::dnssec::key_tag(rdata);
                findings.push(
                    Finding::error(
                        Code::CdsMismatch,
                        ctx.apex,
                        Rtype::CDNSKEY,
                        format!("CDNSKEY is not in the DNSKEY RRset (keytag={tag})"),
                    )
                    .with_keytag(tag),
                );
            }
        }
    }
}
