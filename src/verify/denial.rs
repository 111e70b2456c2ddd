//! Check 5 of the verifier: authenticated denial of existence. With NSEC,
//! one record per authoritative name, chained in canonical order and
//! closing at the apex; with NSEC3, one record per authoritative name and
//! empty non-terminal (opt-out spans aside), a sorted and closed hash
//! chain with the NSEC3PARAM's parameters. Type bitmaps must list exactly
//! the types present.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use super::findings::{Code, Finding};
use super::prefix_index::PrefixIndex;
use crate::zone::dnssec::{Nsec, Nsec3, Nsec3Param, Nsec3Params, TypeBitmap, nsec3_hash, nsec3_owner_hash};
use crate::zone::tree::{Role, ZoneNode, ZoneTree};
use crate::zone::{NameRef, Rtype, Zone};

/// Runs the denial checks that fit the zone's denial method.
pub(crate) fn check(zone: &Zone, tree: &ZoneTree<'_>, findings: &mut Vec<Finding>) {
    let apex = zone.origin();
    let has_nsec = tree.nodes.iter().any(|zn| zn.node.has(Rtype::NSEC));
    let has_nsec3 = tree.nodes.iter().any(|zn| zn.role == Role::Nsec3);
    let param = tree.nodes.first().and_then(|zn| zn.node.rrset(Rtype::NSEC3PARAM));
    if has_nsec && (has_nsec3 || param.is_some()) {
        findings.push(Finding::error(
            Code::MixedDenial,
            apex,
            Rtype::NSEC,
            "the zone holds both NSEC and NSEC3 records",
        ));
    }
    if param.is_some() || has_nsec3 {
        check_nsec3(apex, tree, findings);
    } else if has_nsec {
        check_nsec(apex, tree, findings);
    } else {
        findings.push(Finding::error(
            Code::NoDenial,
            apex,
            Rtype::NSEC,
            "no NSEC or NSEC3 records: resolvers cannot validate any denial of existence",
        ));
    }
}

/// The types a denial record must list for a node (none for an empty
/// non-terminal): those present, less what is not authoritative at a
/// delegation.
fn expected_types<'n>(zn: Option<&'n ZoneNode<'_>>) -> impl Iterator<Item = Rtype> + 'n {
    zn.into_iter().flat_map(|zn| zn.node.types().filter(|&t| zn.role.listed_type(t) && t != Rtype::NSEC3))
}

/// Compares a bitmap with the types expected at `zn`; `None` when they
/// agree, otherwise what is missing and what is extra.
fn bitmap_difference(bitmap: TypeBitmap<'_>, zn: Option<&ZoneNode<'_>>) -> Option<String> {
    // Both in type order as a rule: a million names compared without
    // allocating; the sets are compared only when the lists differ.
    if bitmap.types().eq(expected_types(zn)) {
        return None;
    }
    let expected: Vec<Rtype> = expected_types(zn).collect();
    let listed: Vec<Rtype> = bitmap.types().collect();
    let missing: Vec<String> = expected.iter().filter(|t| !listed.contains(t)).map(Rtype::to_string).collect();
    let extra: Vec<String> = listed.iter().filter(|t| !expected.contains(t)).map(Rtype::to_string).collect();
    if missing.is_empty() && extra.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", missing.join(" ")));
    }
    if !extra.is_empty() {
        parts.push(format!("lists absent {}", extra.join(" ")));
    }
    Some(parts.join("; "))
}

fn check_nsec(apex: NameRef<'_>, tree: &ZoneTree<'_>, findings: &mut Vec<Finding>) {
    let names: Vec<&ZoneNode<'_>> = tree.nodes.iter().filter(|zn| zn.role.is_authoritative_name()).collect();
    for zn in tree.nodes.iter().filter(|zn| !zn.role.is_authoritative_name() && zn.node.has(Rtype::NSEC)) {
        findings.push(Finding::error(
            Code::OrphanDenial,
            zn.node.name(),
            Rtype::NSEC,
            "NSEC at a name that is not authoritative (glue or occluded)",
        ));
    }
    // On both cores; findings in zone order.
    let checked = names.par_iter().enumerate().flat_map_iter(|(i, zn)| {
        let next = names.get(i + 1).map_or(apex, |n| n.node.name());
        let mut found = Vec::new();
        check_one_nsec(zn, next, &mut found);
        found
    });
    findings.par_extend(checked);
}

fn check_one_nsec(zn: &ZoneNode<'_>, next: NameRef<'_>, findings: &mut Vec<Finding>) {
    let owner = zn.node.name();
    let Some(set) = zn.node.rrset(Rtype::NSEC) else {
        findings.push(Finding::error(
            Code::MissingNsec,
            owner,
            Rtype::NSEC,
            format!("no NSEC record; the chain must go from here to {next}"),
        ));
        return;
    };
    if set.len() > 1 {
        findings.push(Finding::error(
            Code::DuplicateDenial,
            owner,
            Rtype::NSEC,
            format!("{} NSEC records at one name", set.len()),
        ));
    }
    let Some(nsec) = set.rdatas().next().and_then(Nsec::parse) else {
        findings.push(Finding::error(Code::MalformedRecord, owner, Rtype::NSEC, "malformed NSEC record"));
        return;
    };
    if !nsec.next.eq_ignore_case(next) {
        findings.push(Finding::error(
            Code::BrokenNsecChain,
            owner,
            Rtype::NSEC,
            format!("NSEC points to {}, but the next name in the zone is {next}", nsec.next),
        ));
    }
    if let Some(diff) = bitmap_difference(nsec.types, Some(zn)) {
        findings.push(Finding::error(
            Code::WrongBitmap,
            owner,
            Rtype::NSEC,
            format!("NSEC type bitmap does not match the types at the name: {diff}"),
        ));
    }
}

/// A name that needs an NSEC3.
struct Subject<'t, 'a> {
    hash: [u8; 20],
    name: NameRef<'a>,
    node: Option<&'t ZoneNode<'a>>,
    /// May go without its NSEC3 inside an opt-out span.
    opt_out_allowed: bool,
}

/// An NSEC3 record found in the zone.
struct Link<'a> {
    /// Its owner's first label, decoded: kept in place (not behind a
    /// pointer), as a million lookups compare it.
    hash: [u8; 20],
    owner: NameRef<'a>,
    nsec3: Nsec3<'a>,
}

/// The NSEC3 records sorted by hash, with an index by the hashes'
/// leading bits.
struct Chain<'a> {
    links: Vec<Link<'a>>,
    index: PrefixIndex,
}

impl<'a> Chain<'a> {
    fn new(links: Vec<Link<'a>>) -> Chain<'a> {
        let index = PrefixIndex::build(links.len(), |i| links[i].hash.as_slice());
        Chain { links, index }
    }

    /// Where the NSEC3 for `hash` is, or where it would go.
    fn position(&self, hash: &[u8]) -> Result<usize, usize> {
        self.index.position(&self.links, hash, |link| link.hash.as_slice())
    }
}

fn check_nsec3(apex: NameRef<'_>, tree: &ZoneTree<'_>, findings: &mut Vec<Finding>) {
    let links = collect_links(apex, tree, findings);
    let Some(params) = zone_params(apex, tree, &links, findings) else { return };
    for link in &links {
        if link.nsec3.params != params {
            let message = format!(
                "NSEC3 hash parameters ({}) differ from the rest of the chain ({})",
                params_text(&link.nsec3.params),
                params_text(&params)
            );
            findings.push(Finding::error(Code::Nsec3ParamMismatch, link.owner, Rtype::NSEC3, message));
        }
    }
    check_chain(&links, findings);
    let chain = Chain::new(links);
    let used: Vec<AtomicBool> = chain.links.iter().map(|_| AtomicBool::new(false)).collect();
    // Every subject hashed and looked up in the chain on both cores
    // (hashing a million names is the costly part); findings come in zone
    // order.
    let check = |subject: Subject<'_, '_>| match chain.position(&subject.hash) {
        Ok(at) => {
            used[at].store(true, Ordering::Relaxed);
            bitmap_finding(&chain.links[at], &subject)
        }
        Err(at) => missing_finding(&chain.links, at, &subject),
    };
    let hash = |name: NameRef<'_>| nsec3_hash(name, &params).unwrap_or([0; 20]);
    let names = tree.nodes.par_iter().filter(|zn| zn.role.is_authoritative_name()).filter_map(|zn| {
        check(Subject {
            hash: hash(zn.node.name()),
            name: zn.node.name(),
            node: Some(zn),
            opt_out_allowed: zn.role == (Role::Delegation { secure: false }),
        })
    });
    let ents = tree.empty_non_terminals.par_iter().filter_map(|ent| {
        check(Subject { hash: hash(ent.name), name: ent.name, node: None, opt_out_allowed: ent.only_insecure_below })
    });
    findings.par_extend(names.chain(ents));
    for (link, _) in chain.links.iter().zip(&used).filter(|(_, used)| !used.load(Ordering::Relaxed)) {
        findings.push(Finding::error(
            Code::OrphanDenial,
            link.owner,
            Rtype::NSEC3,
            "NSEC3 whose hash matches no authoritative name or empty non-terminal",
        ));
    }
}

fn collect_links<'a>(apex: NameRef<'_>, tree: &ZoneTree<'a>, findings: &mut Vec<Finding>) -> Vec<Link<'a>> {
    let mut links = Vec::new();
    for zn in tree.nodes.iter().filter(|zn| zn.role == Role::Nsec3) {
        let owner = zn.node.name();
        let hash = nsec3_owner_hash(owner);
        let Some(hash) =
            hash.filter(|_| owner.parent() == Some(apex) || owner.parent().is_some_and(|p| p.eq_ignore_case(apex)))
        else {
            findings.push(Finding::error(
                Code::OrphanDenial,
                owner,
                Rtype::NSEC3,
                "NSEC3 owner is not a base32hex SHA-1 hash (32 characters) directly below the apex",
            ));
            continue;
        };
        let Some(set) = zn.node.rrset(Rtype::NSEC3) else { continue };
        if set.len() > 1 {
            findings.push(Finding::error(
                Code::DuplicateDenial,
                owner,
                Rtype::NSEC3,
                format!("{} NSEC3 records at one hashed name", set.len()),
            ));
        }
        match set.rdatas().next().and_then(Nsec3::parse) {
            Some(nsec3) => links.push(Link { hash, owner, nsec3 }),
            None => findings.push(Finding::error(Code::MalformedRecord, owner, Rtype::NSEC3, "malformed NSEC3 record")),
        }
    }
    links.sort_by_key(|link| link.hash);
    links
}

/// The parameters the chain uses: its first NSEC3's (resolvers hash
/// with what the NSEC3 records say), which the NSEC3PARAM must match.
fn zone_params<'a>(
    apex: NameRef<'_>,
    tree: &ZoneTree<'a>,
    links: &[Link<'a>],
    findings: &mut Vec<Finding>,
) -> Option<Nsec3Params<'a>> {
    let param = tree.nodes.first().and_then(|zn| zn.node.rrset(Rtype::NSEC3PARAM));
    let parsed: Vec<Nsec3Param<'a>> = param.iter().flat_map(|set| set.rdatas()).filter_map(Nsec3Param::parse).collect();
    let chain = links.first().map(|l| l.nsec3.params);
    let error = |message: String| Finding::error(Code::Nsec3ParamMismatch, apex, Rtype::NSEC3PARAM, message);
    match (chain, parsed.first()) {
        (_, None) if param.is_some() => findings.push(error("malformed NSEC3PARAM record".into())),
        (_, None) => findings.push(error("NSEC3 records but no NSEC3PARAM at the apex".into())),
        (Some(chain), Some(_)) if !parsed.iter().any(|p| p.params == chain) => {
            let stated: Vec<String> = parsed.iter().map(|p| params_text(&p.params)).collect();
            findings.push(error(format!(
                "NSEC3PARAM ({}) does not match the NSEC3 chain ({})",
                stated.join("; "),
                params_text(&chain)
            )));
        }
        (None, Some(_)) => findings.push(error("NSEC3PARAM but no NSEC3 records".into())),
        _ => {}
    }
    if let Some(p) = parsed.iter().find(|p| p.flags != 0) {
        findings.push(Finding::warning(
            Code::Nsec3ParamMismatch,
            apex,
            Rtype::NSEC3PARAM,
            format!("NSEC3PARAM flags are {}, must be 0 (RFC 5155 §4.1.2)", p.flags),
        ));
    }
    if let Some(chain) = chain.filter(|c| c.hash_algorithm != 1) {
        findings.push(error(format!(
            "NSEC3 hash algorithm {} is unknown; only SHA-1 (1) is defined",
            chain.hash_algorithm
        )));
        return None;
    }
    chain
}

fn params_text(params: &Nsec3Params<'_>) -> String {
    let salt = if params.salt.is_empty() { "-".to_string() } else { data_encoding::HEXUPPER.encode(params.salt) };
    format!("hash {}, iterations {}, salt {salt}", params.hash_algorithm, params.iterations)
}

fn check_chain(links: &[Link<'_>], findings: &mut Vec<Finding>) {
    for (i, link) in links.iter().enumerate() {
        let next = &links[(i + 1) % links.len()];
        if link.nsec3.next_hashed != next.hash {
            let stated = data_encoding::BASE32HEX_NOPAD.encode(link.nsec3.next_hashed).to_ascii_lowercase();
            let message = format!("NSEC3 points to {stated}, but the next hash in the chain is {}", next.owner);
            findings.push(Finding::error(Code::BrokenNsec3Chain, link.owner, Rtype::NSEC3, message));
        }
        if i > 0 && links[i - 1].hash == link.hash {
            findings.push(Finding::error(
                Code::DuplicateDenial,
                link.owner,
                Rtype::NSEC3,
                "two NSEC3 records for one hash",
            ));
        }
    }
}

/// A subject's NSEC3 must list exactly the types at its name.
fn bitmap_finding(link: &Link<'_>, subject: &Subject<'_, '_>) -> Option<Finding> {
    let diff = bitmap_difference(link.nsec3.types, subject.node)?;
    let message = format!("NSEC3 type bitmap does not match the types at {}: {diff}", subject.name);
    Some(Finding::error(Code::WrongBitmap, link.owner, Rtype::NSEC3, message))
}

/// A subject without its own NSEC3: fine only for an insecure delegation
/// (or an ENT above nothing else) inside an opt-out span.
fn missing_finding(links: &[Link<'_>], insert_at: usize, subject: &Subject<'_, '_>) -> Option<Finding> {
    let covering = if links.is_empty() { None } else { Some(&links[(insert_at + links.len() - 1) % links.len()]) };
    if subject.opt_out_allowed && covering.is_some_and(|link| link.nsec3.opt_out()) {
        return None;
    }
    let hash = data_encoding::BASE32HEX_NOPAD.encode(&subject.hash).to_ascii_lowercase();
    let message = match covering {
        Some(link) if subject.opt_out_allowed => format!(
            "no NSEC3 for this insecure delegation (hash {hash}), and the covering NSEC3 {} has no opt-out flag",
            link.owner
        ),
        _ => format!("no NSEC3 for this name (hash {hash})"),
    };
    Some(Finding::error(Code::MissingNsec3, subject.name, Rtype::NSEC3, message))
}
