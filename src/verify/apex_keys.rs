//! The apex's key RRsets alone (DNSKEY, CDS, CDNSKEY) and their RRSIGs:
//! what an offline KSK's signed key response carries for one period,
//! checked with the verifier's own signature code before it is stored
//! (the caller makes sure nothing else is there),
//! as the gate later checks them again in every version that carries
//! them.

use super::findings::{Code, Finding, Severity};
use super::keys::KeySet;
use super::signatures::{key_text, verify_rrsig};
use super::{Anchor, Context, trust};
use crate::zone::dnssec::{FLAG_SEP, Rrsig};
use crate::zone::{Rtype, Zone};

/// The key RRsets an offline response may carry.
const KEY_TYPES: [Rtype; 3] = [Rtype::DNSKEY, Rtype::CDS, Rtype::CDNSKEY];

/// What [`verify_apex_keys`] found.
#[derive(Debug, Default)]
pub struct ApexKeys {
    /// Everything found, errors and warnings.
    pub findings: Vec<Finding>,
    /// The key tags whose RRSIG over the DNSKEY RRset verified.
    pub dnskey_signers: Vec<u16>,
}

impl ApexKeys {
    /// The findings of severity error.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Error)
    }
}

/// Checks the apex's DNSKEY, CDS and CDNSKEY RRsets of `zone` (nothing
/// else may be at the apex but RRSIGs over them): every RRSIG valid from
/// `now` for at least `min_validity`, each RRset signed for every
/// algorithm by a key with the SEP bit, the DNSKEY RRset by a key the
/// `anchors` name (when given), and CDS/CDNSKEY naming published keys.
pub fn verify_apex_keys(zone: &Zone, now: i64, min_validity: i64, anchors: Option<&[Anchor]>) -> ApexKeys {
    let mut out = ApexKeys::default();
    let keys = KeySet::from_apex(zone, &mut out.findings);
    let ctx = Context {
        zone,
        apex: zone.origin(),
        class: zone.class(),
        keys,
        now,
        min_validity,
        memo: None,
        collect_memo: false,
    };
    let Some(node) = zone.node(ctx.apex) else { return out };
    let mut signed: Vec<(Rtype, u8)> = Vec::new();
    let mut buf = Vec::new();
    for record in node.rrset(Rtype::RRSIG).iter().flat_map(|r| r.records()) {
        let Some(rrsig) = Rrsig::parse(record.rdata) else {
            out.findings.push(Finding::error(Code::MalformedRecord, ctx.apex, Rtype::RRSIG, "malformed RRSIG"));
            continue;
        };
        let covered = rrsig.type_covered;
        let Some(rrset) = node.rrset(covered).filter(|_| KEY_TYPES.contains(&covered)) else {
            let message = format!("RRSIG over {covered}, which is not a key RRset here ({})", key_text(&rrsig));
            out.findings
                .push(Finding::error(Code::OrphanSignature, ctx.apex, covered, message).with_keytag(rrsig.key_tag));
            continue;
        };
        let verdict = verify_rrsig(&ctx, &rrset, record, &rrsig, &mut buf);
        out.findings.extend(verdict.findings);
        let Some(key) = verdict.key else { continue };
        if key.flags & FLAG_SEP != 0 {
            signed.push((covered, key.algorithm));
        }
        if covered == Rtype::DNSKEY {
            out.dnskey_signers.push(key.tag);
        }
    }
    for rtype in KEY_TYPES.into_iter().filter(|&t| node.rrset(t).is_some()) {
        for &alg in ctx.keys.algorithms.difference(&ctx.keys.unsupported) {
            if !signed.contains(&(rtype, alg)) {
                let message = format!("no valid RRSIG by a key with the SEP bit for algorithm {alg}");
                out.findings.push(Finding::error(Code::MissingSignature, ctx.apex, rtype, message));
            }
        }
    }
    trust::check(&ctx, anchors, &mut out.findings);
    out
}
