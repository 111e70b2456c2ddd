//! A zone put out unsigned (a zone gone insecure, RFC 6781 §4.3): with
//! no DNSKEY RRset at its apex there is nothing to validate, so what the
//! gate checks beside structure and content is that nothing of DNSSEC is
//! left for a resolver to trip on (an RRSIG, an NSEC or NSEC3 chain, a
//! CDS naming a key), and that no trust anchor (a DS at the parent) says
//! the zone is signed.

use super::findings::{Code, Finding};
use super::trust::Anchor;
use crate::zone::{Rtype, Zone};

/// The types an unsigned zone may not hold at all.
const DNSSEC_TYPES: [Rtype; 7] =
    [Rtype::RRSIG, Rtype::NSEC, Rtype::NSEC3, Rtype::NSEC3PARAM, Rtype::DNSKEY, Rtype::CDS, Rtype::CDNSKEY];

/// Has the zone no DNSKEY RRset at its apex?
pub(crate) fn is_unsigned(zone: &Zone) -> bool {
    zone.node(zone.origin()).and_then(|node| node.rrset(Rtype::DNSKEY)).is_none()
}

/// The findings of an unsigned zone: each DNSSEC record in it (one per
/// owner and type), and a trust anchor given for it.
pub(crate) fn check(zone: &Zone, anchors: Option<&[Anchor]>, findings: &mut Vec<Finding>) {
    let apex = zone.origin();
    if anchors.is_some_and(|a| !a.is_empty()) {
        findings.push(Finding::error(
            Code::UnsignedWithDnssec,
            apex,
            Rtype::DS,
            "the zone is unsigned but the parent has a DS for it: validating resolvers would find it bogus",
        ));
    }
    for node in zone.nodes() {
        for rrset in node.rrsets().filter(|set| DNSSEC_TYPES.contains(&set.rtype())) {
            findings.push(Finding::error(
                Code::UnsignedWithDnssec,
                rrset.owner(),
                rrset.rtype(),
                format!("a {} RRset in a zone with no DNSKEY RRset: the zone is unsigned", rrset.rtype()),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::{Name, read_zone_str};

    fn zone(text: &str) -> Zone {
        let origin = Name::from_text("example.", None).expect("name");
        read_zone_str(text, &origin, std::path::Path::new("test.zone")).expect("zone")
    }

    const UNSIGNED: &str = "example. 300 IN SOA ns.example. h.example. 1 60 30 600 300\n\
                            example. 300 IN NS ns.example.\nns.example. 300 IN A 192.0.2.1\n";

    #[test]
    fn an_unsigned_zone_passes_and_a_leftover_rrsig_does_not() {
        let clean = zone(UNSIGNED);
        assert!(is_unsigned(&clean));
        let mut findings = Vec::new();
        check(&clean, None, &mut findings);
        assert!(findings.is_empty(), "{findings:?}");
        let leftover = zone(&format!(
            "{UNSIGNED}example. 300 IN NSEC ns.example. SOA NS RRSIG NSEC\n\
             ns.example. 300 IN NSEC example. A RRSIG NSEC\n"
        ));
        check(&leftover, None, &mut findings);
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(findings[0].message.contains("NSEC RRset in a zone with no DNSKEY"), "{}", findings[0].message);
    }

    #[test]
    fn a_ds_for_an_unsigned_zone_is_an_error() {
        let mut findings = Vec::new();
        let ds = Anchor::Ds(vec![0, 1, 13, 2, 0xaa]);
        check(&zone(UNSIGNED), Some(&[ds]), &mut findings);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rtype, "DS");
    }
}
