//! The zone content rules ([`crate::zone::content`]) as findings: each
//! violation is an error with the rule's code, naming owner and type.

use super::findings::{Code, Finding};
use crate::zone::Zone;
use crate::zone::content::{self, Rule};

/// Checks every content rule on `zone` and adds a finding per violation.
pub fn check(zone: &Zone, findings: &mut Vec<Finding>) {
    for violation in content::check(zone, zone.origin()) {
        let code = code_of(violation.rule);
        findings.push(Finding::error(code, violation.owner.as_ref(), violation.rtype, violation.message));
    }
}

/// The finding code of a content rule.
pub fn code_of(rule: Rule) -> Code {
    match rule {
        Rule::CnameAndOtherData => Code::CnameAndOtherData,
        Rule::MultipleCnames => Code::MultipleCnames,
        Rule::CnameAtApex => Code::CnameAtApex,
        Rule::MultipleDnames => Code::MultipleDnames,
        Rule::DataBelowDname => Code::DataBelowDname,
        Rule::ApexWithoutNs => Code::ApexWithoutNs,
        Rule::DsAtApex => Code::DsAtApex,
        Rule::DsWithoutDelegation => Code::DsWithoutDelegation,
        Rule::NsOrDsBelowDelegation => Code::NsOrDsBelowDelegation,
        Rule::MissingGlue => Code::MissingGlue,
        Rule::DsDigestLength => Code::DsDigestLength,
        Rule::RdataLength => Code::RdataLength,
        Rule::TypeNotInZone => Code::TypeNotInZone,
        Rule::WildcardDelegation => Code::WildcardDelegation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finding prints the code the rule is known by.
    #[test]
    fn codes_match_the_rules() {
        for rule in Rule::ALL {
            let printed = serde_json::to_value(code_of(rule)).expect("serialises");
            assert_eq!(printed.as_str(), Some(rule.code()), "{rule:?}");
        }
    }
}
