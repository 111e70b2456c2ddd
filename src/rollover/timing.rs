//! RFC 7583 timing: how long a record takes, once published or withdrawn,
//! to be in every cache that holds its RRset (omnipresent) or in none
//! (hidden).
//!
//! - DNSKEY and KRRSIG: DNSKEY TTL + zone propagation delay, plus the
//!   publish safety margin to become omnipresent or the retire safety
//!   margin to become hidden (RFC 7583 §3.3.1, Ipub and Iret).
//! - ZRRSIG: the zone's largest TTL + zone propagation delay, plus the
//!   retire safety margin both to become omnipresent and to become hidden.
//!   Omnipresent new signatures are what lets the old ZSK's DNSKEY go
//!   (RFC 7583 §3.3.1, Iret), so the margin belongs there too, as in
//!   BIND; without it the old DNSKEY left at the very instant the last
//!   cached old-only signature expired (the dry-run's safety check showed
//!   zero slack). A full re-sign adds nothing: every `signet sign` signs
//!   the whole zone.
//! - DS: the parent's DS TTL + parent propagation delay, plus publish or
//!   retire safety, counted from when the parent was seen to publish
//!   (`ds seen`) or withdraw (`ds gone`) it (RFC 7583 §3.3.2).
//!
//! Moves into rumoured and unretentive need no time (they are what
//! publishing or withdrawing does); the DS's need the parent instead.

use crate::policy::Policy;
use crate::time::{format_duration, format_time};

use super::model::{Record, RecordState};

/// A waiting interval, as the sum of named parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interval {
    /// `(what, seconds)`, e.g. `("DNSKEY TTL", 7200)`.
    pub parts: Vec<(&'static str, i64)>,
}

impl Interval {
    /// The sum of the parts, in seconds.
    pub(crate) fn total(&self) -> i64 {
        self.parts.iter().map(|(_, seconds)| seconds).sum()
    }

    /// `DNSKEY TTL 2h + propagation 15m + publish safety 1h`.
    pub(crate) fn describe(&self) -> String {
        let parts: Vec<String> =
            self.parts.iter().map(|(what, seconds)| format!("{what} {}", format_duration(*seconds))).collect();
        parts.join(" + ")
    }

    /// `DNSKEY TTL 2h + propagation 15m + publish safety 1h passed since 2026-…`.
    pub(crate) fn passed_since(&self, since: i64) -> String {
        format!("{} passed since {}", self.describe(), format_time(since))
    }
}

/// The time `record` must spend in its current state before it may move
/// to `to`; `None` when time is not what the move waits for (moves into
/// rumoured or unretentive).
pub(crate) fn interval(record: Record, to: RecordState, policy: &Policy) -> Option<Interval> {
    let k = &policy.keys;
    let z = &policy.zone;
    let p = &policy.parent;
    let (mut parts, publish_safety) = match record {
        Record::Dnskey | Record::Krrsig => {
            (vec![("DNSKEY TTL", k.dnskey_ttl), ("propagation", z.propagation_delay)], true)
        }
        Record::Zrrsig => (vec![("max zone TTL", z.max_ttl), ("propagation", z.propagation_delay)], false),
        Record::Ds => (vec![("DS TTL", p.ds_ttl), ("parent propagation", p.propagation_delay)], true),
    };
    match to {
        RecordState::Omnipresent if publish_safety => parts.push(("publish safety", k.publish_safety)),
        RecordState::Omnipresent | RecordState::Hidden => parts.push(("retire safety", k.retire_safety)),
        RecordState::Rumoured | RecordState::Unretentive => return None,
    }
    Some(Interval { parts })
}

/// When a record that entered its state at `since` may move to `to`,
/// and the interval that says so; `None` when the move does not wait for
/// time.
pub(crate) fn ready_at(record: Record, to: RecordState, since: i64, policy: &Policy) -> Option<(i64, Interval)> {
    interval(record, to, policy).map(|interval| (since.saturating_add(interval.total()), interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let text = std::fs::read_to_string("policies/tld-rsasha256.toml").expect("example policy");
        Policy::from_text(&text, std::path::Path::new("tld-rsasha256.toml")).expect("valid policy").0
    }

    #[test]
    fn dnskey_needs_ttl_propagation_and_publish_safety() {
        let p = policy();
        let i = interval(Record::Dnskey, RecordState::Omnipresent, &p).expect("timed");
        assert_eq!(i.total(), 2 * 3600 + 15 * 60 + 3600);
        assert_eq!(i.describe(), "DNSKEY TTL 2h + propagation 15m + publish safety 1h");
    }

    #[test]
    fn zrrsig_adds_retire_safety_both_ways() {
        let p = policy();
        let o = interval(Record::Zrrsig, RecordState::Omnipresent, &p).expect("timed");
        let h = interval(Record::Zrrsig, RecordState::Hidden, &p).expect("timed");
        assert_eq!(o.total(), 86400 + 15 * 60 + 3600);
        assert_eq!(h.total(), 86400 + 15 * 60 + 3600);
    }

    #[test]
    fn ds_uses_the_parent_figures() {
        let p = policy();
        let (at, _) = ready_at(Record::Ds, RecordState::Hidden, 1000, &p).expect("timed");
        assert_eq!(at, 1000 + 86400 + 3600 + 3600);
        assert!(interval(Record::Ds, RecordState::Rumoured, &p).is_none());
    }
}
