//! Checks 2, 3 and 6 of the verifier: every RRSIG of every node, that
//! every authoritative RRset is signed with every zone algorithm, and that
//! records of one RRset share a TTL. Nodes are independent, so this runs
//! on all cores.
//!
//! With the gate's memo, an RRSIG whose exact verification input (DNSKEY
//! RDATA, RRSIG RDATA, signed data) an earlier gate verified skips only
//! the public-key operation: signer, labels, TTLs, validity against now
//! and coverage are checked here on every RRSIG every time.

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use super::findings::{Code, Finding, Severity};
use super::keys::ZoneKey;
use super::memo::{self, MemoDigest, SignatureMemo};
use super::{Context, Progress};
use crate::time::format_time;
use crate::zone::dnssec::Rrsig;
use crate::zone::rdata::canonical_rdata;
use crate::zone::tree::{Role, ZoneNode};
use crate::zone::{NameRef, RecordRef, Rrset, Rtype};

/// What the signature pass found, with its counts.
#[derive(Debug, Default)]
pub(crate) struct SignatureResults {
    /// Findings, in zone order.
    pub findings: Vec<Finding>,
    /// RRsets looked at.
    pub rrsets: u64,
    /// RRSIG records seen.
    pub rrsigs: u64,
    /// RRSIGs whose signature verified.
    pub rrsigs_verified: u64,
    /// Of those, the ones the memo held.
    pub rrsigs_from_memo: u64,
    /// The earliest expiration among them.
    pub earliest_expiration: Option<i64>,
    /// The memo digests of the valid RRSIGs (when collecting), one list
    /// per chunk: merging moves lists, not digests.
    memo: Vec<Vec<MemoDigest>>,
}

impl SignatureResults {
    fn merge(mut self, other: SignatureResults) -> SignatureResults {
        self.findings.extend(other.findings);
        self.rrsets += other.rrsets;
        self.rrsigs += other.rrsigs;
        self.rrsigs_verified += other.rrsigs_verified;
        self.rrsigs_from_memo += other.rrsigs_from_memo;
        self.memo.extend(other.memo);
        self.earliest_expiration = earliest(self.earliest_expiration, other.earliest_expiration);
        self
    }

    /// The memo of the valid RRSIGs collected (empty unless the context
    /// collected), leaving none behind.
    pub(crate) fn take_memo(&mut self) -> SignatureMemo {
        let chunks = std::mem::take(&mut self.memo);
        let mut digests = Vec::with_capacity(chunks.iter().map(Vec::len).sum());
        for chunk in chunks {
            digests.extend(chunk);
        }
        SignatureMemo::from_digests(digests)
    }
}

/// Checks every node, in parallel, telling `progress` as chunks finish.
pub(crate) fn check_all(ctx: &Context<'_>, nodes: &[ZoneNode<'_>], progress: &dyn Progress) -> SignatureResults {
    let done = AtomicU64::new(0);
    let total = nodes.len() as u64;
    nodes
        .par_chunks(512)
        .map_init(Vec::new, |buf, chunk| {
            let mut results = SignatureResults::default();
            if progress.stop_requested() {
                return results;
            }
            let mut digests = Vec::new();
            for node in chunk {
                check_node(ctx, node, buf, &mut results, &mut digests);
            }
            if !digests.is_empty() {
                results.memo.push(digests);
            }
            let done = done.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
            progress.advance(done, total);
            results
        })
        .reduce(SignatureResults::default, SignatureResults::merge)
}

/// Per-RRset bookkeeping: which algorithms have a valid RRSIG, and which
/// have any RRSIG at all.
struct Coverage {
    rtype: Rtype,
    valid: Vec<u8>,
    present: Vec<u8>,
}

fn check_node(
    ctx: &Context<'_>,
    zn: &ZoneNode<'_>,
    buf: &mut Vec<u8>,
    out: &mut SignatureResults,
    digests: &mut Vec<MemoDigest>,
) {
    let node = zn.node;
    let mut coverage: Vec<Coverage> = Vec::new();
    for rrset in node.rrsets() {
        out.rrsets += 1;
        // RRSIGs of one owner cover different RRsets and rightly carry
        // their TTLs; every other RRset must agree (RFC 2181 §5.2).
        if rrset.rtype() != Rtype::RRSIG && !rrset.ttls_agree() {
            let ttls: Vec<String> = rrset.records().map(|r| r.ttl.to_string()).collect();
            out.findings.push(Finding::error(
                Code::TtlInconsistent,
                rrset.owner(),
                rrset.rtype(),
                format!("records of one RRset have different TTLs ({})", ttls.join(", ")),
            ));
        }
        if rrset.rtype() != Rtype::RRSIG {
            coverage.push(Coverage { rtype: rrset.rtype(), valid: Vec::new(), present: Vec::new() });
        }
    }
    if let Some(rrsigs) = node.rrset(Rtype::RRSIG) {
        for record in rrsigs.records() {
            out.rrsigs += 1;
            let verdict = check_rrsig(ctx, zn, record, buf, &mut coverage, out);
            if let Some(digest) = verdict.filter(|_| ctx.collect_memo) {
                digests.push(digest);
            }
        }
    }
    for cov in &coverage {
        if !zn.role.signs(cov.rtype) {
            continue;
        }
        for &alg in &ctx.keys.algorithms {
            if !cov.present.contains(&alg) && !ctx.keys.unsupported.contains(&alg) {
                out.findings.push(Finding::error(
                    Code::MissingSignature,
                    node.name(),
                    cov.rtype,
                    format!("no RRSIG with algorithm {alg}, which the apex DNSKEY RRset uses (RFC 4035 §2.2)"),
                ));
            }
        }
    }
}

/// Checks one RRSIG into `out`; returns its memo digest if it is valid
/// and the context computes digests.
fn check_rrsig(
    ctx: &Context<'_>,
    zn: &ZoneNode<'_>,
    record: RecordRef<'_>,
    buf: &mut Vec<u8>,
    coverage: &mut [Coverage],
    out: &mut SignatureResults,
) -> Option<MemoDigest> {
    let owner = record.owner;
    let Some(rrsig) = Rrsig::parse(record.rdata) else {
        out.findings.push(Finding::error(Code::MalformedRecord, owner, Rtype::RRSIG, "malformed RRSIG record"));
        return None;
    };
    let covered = rrsig.type_covered;
    let Some(rrset) = zn.node.rrset(covered) else {
        let f = Finding::error(
            Code::OrphanSignature,
            owner,
            covered,
            format!("RRSIG covers {covered}, but there is no {covered} RRset here ({})", key_text(&rrsig)),
        );
        out.findings.push(f.with_keytag(rrsig.key_tag));
        return None;
    };
    if !zn.role.signs(covered) {
        let what =
            if zn.role == Role::Glue { "glue or occluded data" } else { "a delegation's non-authoritative data" };
        let f = Finding::error(
            Code::SignatureOverNonAuthoritative,
            owner,
            covered,
            format!("RRSIG over {what}, which must not be signed ({})", key_text(&rrsig)),
        );
        out.findings.push(f.with_keytag(rrsig.key_tag));
        return None;
    }
    mark(coverage, covered, rrsig.algorithm, false);
    if ctx.keys.unsupported.contains(&rrsig.algorithm) {
        return None;
    }
    let verdict = verify_rrsig(ctx, &rrset, record, &rrsig, buf);
    if verdict.key.is_some() {
        out.rrsigs_verified += 1;
        out.rrsigs_from_memo += u64::from(verdict.from_memo);
        let expiration = crate::zone::serial::resolve_serial_time(rrsig.expiration, ctx.now);
        out.earliest_expiration = earliest(out.earliest_expiration, Some(expiration));
        mark(coverage, covered, rrsig.algorithm, true);
    }
    out.findings.extend(verdict.findings);
    verdict.key.and(verdict.digest)
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn mark(coverage: &mut [Coverage], rtype: Rtype, algorithm: u8, valid: bool) {
    if let Some(cov) = coverage.iter_mut().find(|c| c.rtype == rtype) {
        let list = if valid { &mut cov.valid } else { &mut cov.present };
        if !list.contains(&algorithm) {
            list.push(algorithm);
        }
    }
}

/// `keytag=N, alg=A`, as every signature finding ends.
pub(crate) fn key_text(rrsig: &Rrsig<'_>) -> String {
    format!("keytag={}, alg={}", rrsig.key_tag, rrsig.algorithm)
}

/// What the checks of one RRSIG found.
#[derive(Debug)]
pub(crate) struct RrsigVerdict<'k> {
    /// The zone key that made it, when the RRSIG is valid in every respect
    /// (warnings aside).
    pub key: Option<&'k ZoneKey>,
    /// Everything found; an RRSIG can be both expired and bogus.
    pub findings: Vec<Finding>,
    /// The memo digest of its verification input with the key that
    /// verified it (when the context computes digests).
    pub digest: Option<MemoDigest>,
    /// The memo held that digest: no public-key operation was done.
    pub from_memo: bool,
}

/// Runs every check of item 2 (README, `signet verify`) on one RRSIG.
pub(crate) fn verify_rrsig<'k>(
    ctx: &'k Context<'_>,
    rrset: &Rrset<'_>,
    record: RecordRef<'_>,
    rrsig: &Rrsig<'_>,
    buf: &mut Vec<u8>,
) -> RrsigVerdict<'k> {
    let owner = rrset.owner();
    let rtype = rrset.rtype();
    let tag = rrsig.key_tag;
    let error = |code, message: String| Finding::error(code, owner, rtype, message).with_keytag(tag);
    let mut findings = Vec::new();
    if !rrsig.signer.eq_ignore_case(ctx.apex) {
        findings.push(error(
            Code::WrongSigner,
            format!("RRSIG signer {} is not the zone apex {} ({})", rrsig.signer, ctx.apex, key_text(rrsig)),
        ));
        return RrsigVerdict { key: None, findings, digest: None, from_memo: false };
    }
    let owner_labels = owner.rrsig_labels();
    if usize::from(rrsig.labels) != owner_labels {
        findings.push(error(
            Code::WrongLabels,
            format!("RRSIG labels field is {} but the owner has {owner_labels} ({})", rrsig.labels, key_text(rrsig)),
        ));
        return RrsigVerdict { key: None, findings, digest: None, from_memo: false };
    }
    if rrsig.original_ttl != rrset.ttl() {
        findings.push(error(
            Code::OriginalTtlMismatch,
            format!(
                "RRSIG original TTL {} differs from the RRset TTL {} ({})",
                rrsig.original_ttl,
                rrset.ttl(),
                key_text(rrsig)
            ),
        ));
    }
    if record.ttl != rrset.ttl() {
        let f = Finding::warning(
            Code::RrsigTtlMismatch,
            owner,
            rtype,
            format!("RRSIG TTL {} differs from the RRset TTL {} ({})", record.ttl, rrset.ttl(), key_text(rrsig)),
        );
        findings.push(f.with_keytag(tag));
    }
    findings.extend(check_validity(ctx, rrsig).map(|(code, message)| error(code, message)));
    let pass = check_crypto(ctx, rrset, record.rdata, rrsig, buf)
        .map_err(|(code, message)| findings.push(error(code, message)))
        .ok();
    let valid = findings.iter().all(|f| f.severity != Severity::Error);
    match pass.filter(|_| valid) {
        Some(pass) => RrsigVerdict { key: Some(pass.key), findings, digest: pass.digest, from_memo: pass.from_memo },
        None => RrsigVerdict { key: None, findings, digest: None, from_memo: false },
    }
}

fn check_validity(ctx: &Context<'_>, rrsig: &Rrsig<'_>) -> Option<(Code, String)> {
    let inception = crate::zone::serial::resolve_serial_time(rrsig.inception, ctx.now);
    let expiration = crate::zone::serial::resolve_serial_time(rrsig.expiration, ctx.now);
    if ctx.now > expiration {
        Some((Code::SignatureExpired, format!("RRSIG expired at {} ({})", format_time(expiration), key_text(rrsig))))
    } else if ctx.now < inception {
        Some((
            Code::SignatureNotYetValid,
            format!("RRSIG not valid before {} ({})", format_time(inception), key_text(rrsig)),
        ))
    } else if expiration - ctx.now < ctx.min_validity {
        let left = crate::time::format_duration(expiration - ctx.now);
        Some((
            Code::SignatureExpiresSoon,
            format!(
                "RRSIG expires at {}, in {left}, sooner than the required minimum validity ({})",
                format_time(expiration),
                key_text(rrsig)
            ),
        ))
    } else {
        None
    }
}

/// A signature that verified, and how.
struct CryptoPass<'k> {
    key: &'k ZoneKey,
    digest: Option<MemoDigest>,
    from_memo: bool,
}

/// Verifies the signature of `rrsig` (RDATA `rdata`) over `rrset` with
/// each zone key it may be made by, unless the memo holds its exact
/// verification input with that key.
fn check_crypto<'k>(
    ctx: &'k Context<'_>,
    rrset: &Rrset<'_>,
    rdata: &[u8],
    rrsig: &Rrsig<'_>,
    buf: &mut Vec<u8>,
) -> Result<CryptoPass<'k>, (Code, String)> {
    let mut candidates = ctx.keys.candidates(rrsig.key_tag, rrsig.algorithm).peekable();
    if candidates.peek().is_none() {
        return Err((
            Code::UnknownKey,
            format!("RRSIG by a key that is not in the apex DNSKEY RRset ({})", key_text(rrsig)),
        ));
    }
    signed_data(rrset, rrsig, ctx.class, buf);
    let mut last_error = None;
    for (_, key) in candidates {
        let Ok(public_key) = &key.public_key else { continue };
        let digest = ctx.wants_digests().then(|| memo::digest(&key.rdata, rdata, buf));
        if let (Some(memo), Some(digest)) = (ctx.memo, &digest)
            && memo.contains(digest)
        {
            return Ok(CryptoPass { key, digest: Some(*digest), from_memo: true });
        }
        match public_key.verify(buf, rrsig.signature) {
            Ok(()) => return Ok(CryptoPass { key, digest, from_memo: false }),
            Err(e) => last_error = Some(e),
        }
    }
    let reason = match last_error {
        Some(e) if e.is_malformed_signature() => "RRSIG with malformed signature",
        Some(_) => "RRSIG signature does not verify with the published DNSKEY",
        None => "RRSIG by a key whose public key is unusable",
    };
    Err((Code::BogusSignature, format!("{reason} ({})", key_text(rrsig))))
}

/// The data an RRSIG signs (RFC 4034 §3.1.8.1): the RRSIG RDATA without
/// the signature, signer name lowercased, then every record of the RRset
/// in canonical form and order, duplicates removed.
fn signed_data(rrset: &Rrset<'_>, rrsig: &Rrsig<'_>, class: u16, buf: &mut Vec<u8>) {
    buf.clear();
    let signer_at = rrsig.signed_prefix.len() - rrsig.signer.wire().len();
    buf.extend_from_slice(&rrsig.signed_prefix[..signer_at]);
    buf.extend(rrsig.signer.wire().iter().map(u8::to_ascii_lowercase));
    let mut owner = Vec::with_capacity(256);
    signed_owner(rrset.owner(), rrsig.labels, &mut owner);
    let mut rdatas: Vec<_> = rrset.rdatas().map(|rdata| canonical_rdata(rrset.rtype(), rdata)).collect();
    rdatas.sort();
    rdatas.dedup();
    for rdata in &rdatas {
        buf.extend_from_slice(&owner);
        buf.extend_from_slice(&rrset.rtype().0.to_be_bytes());
        buf.extend_from_slice(&class.to_be_bytes());
        buf.extend_from_slice(&rrsig.original_ttl.to_be_bytes());
        buf.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        buf.extend_from_slice(rdata);
    }
}

/// The owner as signed: lowercased, and for a wildcard `*.` followed by
/// the rightmost `labels` labels (RFC 4035 §5.3.2).
fn signed_owner(owner: NameRef<'_>, labels: u8, out: &mut Vec<u8>) {
    let labels = usize::from(labels);
    if labels < owner.label_count() {
        out.extend_from_slice(b"\x01*");
        out.extend(owner.suffix(labels).wire().iter().map(u8::to_ascii_lowercase));
    } else {
        out.extend(owner.wire().iter().map(u8::to_ascii_lowercase));
    }
}
