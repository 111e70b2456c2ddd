//! The zone content rules ([`crate::zone::content`]) as findings: each
//! violation is an error with the rule's code, naming owner and type.

use super::findings::{Code, Finding};
use crate::zone::Zone;
use crate::zone::content;

/// Checks every content rule on `zone` and adds a finding per violation.
pub(crate) fn check(zone: &Zone, findings: &mut Vec<Finding>) {
    for violation in content::check(zone, zone.origin()) {
        findings.push(Finding::error(
            Code::Content(violation.rule),
            violation.owner.as_ref(),
            violation.rtype,
            violation.message,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::content::Rule;

    /// A finding prints the code the rule is known by.
    #[test]
    fn codes_match_the_rules() {
        for rule in Rule::ALL {
            let printed = serde_json::to_value(Code::Content(rule)).expect("serialises");
            assert_eq!(printed.as_str(), Some(rule.code()), "{rule:?}");
        }
    }
}
