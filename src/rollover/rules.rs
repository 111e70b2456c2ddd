//! The three safety rules of "Flexible and Robust Key Rollover in DNSSEC"
//! (equations 3a–3i, as BIND 9's keymgr evaluates them). A state is safe
//! when, whatever mix of old and new records a resolver has cached, it can
//! still validate:
//!
//! 1. **DS rule**: the parent publishes a DS (some key's DS is rumoured or
//!    omnipresent; 3a).
//! 2. **DNSKEY rule**, per algorithm: the DNSKEY RRset is signed by a key
//!    trusted through a DS: one key with DNSKEY, KRRSIG and DS omnipresent
//!    (3b); or a predecessor and its successor swapping their DS (3c) or
//!    their DNSKEY/KRRSIG (3d); or every DS of the algorithm that is not
//!    hidden belongs to a key with an omnipresent DNSKEY and KRRSIG, or
//!    there is such a full chain (3e).
//! 3. **ZRRSIG rule**, per algorithm: zone data is signed by a key whose
//!    DNSKEY is known: irrelevant while the algorithm has no DS (no
//!    resolver expects it); else one key with DNSKEY and ZRRSIG
//!    omnipresent (3f); or a predecessor/successor pair swapping DNSKEYs
//!    (3g) or signatures (3h); or every published DNSKEY state is matched
//!    by a key in that state with omnipresent signatures (3i).
//!
//! The handover disjuncts count only for keys in a successor relation
//! (equation 2 of the paper): the successor's predecessor is the other
//! key, or a chain of abandoned keys in the same state leads to it.
//!
//! A zone going insecure (RFC 6781 §4.3) gives up the DS rule, as BIND's
//! keymgr does for a zone leaving DNSSEC: its DS may go. The other two
//! rules still hold its DNSKEYs and signatures until that DS is hidden
//! (3e and the first disjunct of rule 3), which is the safe order.
//!
//! Besides the safety rules, [`publishable`] checks what the signing gate
//! needs: every algorithm with a published DNSKEY signs the zone and the
//! DNSKEY RRset, and every signing key's DNSKEY is published.

use std::collections::BTreeSet;
use std::fmt;

use crate::zone::dnssec::Algorithm;

use super::model::{Key, Record, RecordState};

/// One of the three safety rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SafetyRule {
    /// There is always a DS at the parent.
    Ds,
    /// The DNSKEY RRset is always signed by a key a DS points to.
    Dnskey,
    /// Zone data is always signed by a key whose DNSKEY is known.
    Zrrsig,
}

impl fmt::Display for SafetyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SafetyRule::Ds => "DS rule",
            SafetyRule::Dnskey => "DNSKEY rule",
            SafetyRule::Zrrsig => "ZRRSIG rule",
        })
    }
}

/// A safety rule that does not hold, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}{}: {message}", algorithm.map(|a| format!(" for {a}")).unwrap_or_default())]
pub struct RuleViolation {
    /// Which rule.
    pub rule: SafetyRule,
    /// The algorithm it fails for (the DS rule is not per algorithm).
    pub algorithm: Option<Algorithm>,
    /// What a resolver would run into.
    pub message: &'static str,
}

impl RuleViolation {
    fn new(rule: SafetyRule, algorithm: Option<Algorithm>) -> RuleViolation {
        let message = match rule {
            SafetyRule::Ds => "no DS at the parent: resolvers would treat the zone as insecure or bogus",
            SafetyRule::Dnskey => {
                "a resolver holding the cached DS set could find no DNSKEY it trusts signing the DNSKEY RRset"
            }
            SafetyRule::Zrrsig => {
                "a resolver holding the cached DNSKEY set could find zone data signed by no key it knows"
            }
        };
        RuleViolation { rule, algorithm, message }
    }
}

/// Checks the three safety rules on a state: `Err` names the first that
/// fails (DS rule, then per algorithm the DNSKEY and ZRRSIG rules).
pub fn check_rules(keys: &[Key]) -> Result<(), RuleViolation> {
    match evaluate(keys, false).into_iter().find(|(_, _, holds)| !holds) {
        Some((rule, algorithm, _)) => Err(RuleViolation::new(rule, algorithm)),
        None => Ok(()),
    }
}

/// The first rule that holds in `before` and not in `after` (the same keys,
/// one move apart). A rule already broken before may stay broken: moves
/// toward satisfying it are allowed (BIND's keymgr_transition_allowed).
/// `insecure`: the zone is going insecure, the DS rule does not count.
pub(crate) fn first_broken(before: &[Key], after: &[Key], insecure: bool) -> Option<RuleViolation> {
    let was = evaluate(before, insecure);
    let now = evaluate(after, insecure);
    was.iter()
        .zip(now.iter())
        .find(|((_, _, held), (_, _, holds))| *held && !*holds)
        .map(|(_, (rule, algorithm, _))| RuleViolation::new(*rule, *algorithm))
}

/// Every rule, for every algorithm of the keys, with whether it holds
/// (the DS rule always, for a zone going `insecure`).
fn evaluate(keys: &[Key], insecure: bool) -> Vec<(SafetyRule, Option<Algorithm>, bool)> {
    let algorithms: BTreeSet<Algorithm> = keys.iter().map(|k| k.algorithm).collect();
    let mut results = vec![(SafetyRule::Ds, None, insecure || ds_rule(keys))];
    for &alg in &algorithms {
        results.push((SafetyRule::Dnskey, Some(alg), dnskey_rule(keys, alg)));
        results.push((SafetyRule::Zrrsig, Some(alg), zrrsig_rule(keys, alg)));
    }
    results
}

use RecordState::{Hidden as H, Omnipresent as O, Rumoured as R, Unretentive as U};

/// Wanted states of DNSKEY, KRRSIG, ZRRSIG, DS; `None` matches any.
type Pattern = [Option<RecordState>; 4];

const RECORDS: [Record; 4] = [Record::Dnskey, Record::Krrsig, Record::Zrrsig, Record::Ds];

fn matches(key: &Key, pattern: &Pattern) -> bool {
    RECORDS.iter().zip(pattern).all(|(&record, want)| want.is_none_or(|s| key.state(record) == s))
}

/// DNSKEY, KRRSIG, DS (the KSK side).
const fn ksk(dnskey: RecordState, krrsig: RecordState, ds: RecordState) -> Pattern {
    [Some(dnskey), Some(krrsig), None, Some(ds)]
}

/// DNSKEY, ZRRSIG (the ZSK side).
const fn zsk(dnskey: RecordState, zrrsig: RecordState) -> Pattern {
    [Some(dnskey), None, Some(zrrsig), None]
}

fn all_hidden(key: &Key) -> bool {
    RECORDS.iter().all(|&r| key.state(r) == H)
}

/// The live key that `key` directly replaces (its predecessor, linked
/// both ways and not yet hidden everywhere).
fn live_predecessor<'a>(keys: &'a [Key], key: &Key) -> Option<&'a Key> {
    keys.iter()
        .find(|d| d.successor == Some(key.id) && key.predecessor == Some(d.id) && d.id != key.id && !all_hidden(d))
}

/// Is `z` a successor of `x` (equation 2)? `x` must not itself be
/// replacing a live key; `z` replaces `x`, or replaces a key in the same
/// state as `z` that is a successor of `x` (rolled again before done).
fn is_successor(keys: &[Key], x: &Key, z: &Key) -> bool {
    if live_predecessor(keys, x).is_some() {
        return false;
    }
    let mut z = z;
    for _ in 0..keys.len() {
        let Some(y) = live_predecessor(keys, z) else { return false };
        if y.id == x.id {
            return true;
        }
        if RECORDS.iter().any(|&r| y.state(r) != z.state(r)) {
            return false;
        }
        z = y;
    }
    false
}

fn of_alg(keys: &[Key], alg: Algorithm) -> impl Iterator<Item = &Key> {
    keys.iter().filter(move |k| k.algorithm == alg)
}

fn exists(keys: &[Key], alg: Algorithm, pattern: &Pattern) -> bool {
    of_alg(keys, alg).any(|k| matches(k, pattern))
}

/// A key of `alg` matching `old` with a successor (of any algorithm)
/// matching `new`.
fn handover(keys: &[Key], alg: Algorithm, old: &Pattern, new: &Pattern) -> bool {
    of_alg(keys, alg)
        .filter(|p| matches(p, old))
        .any(|p| keys.iter().filter(|s| s.id != p.id && matches(s, new)).any(|s| is_successor(keys, p, s)))
}

/// Does `alg` already have a trusted key (a full DS chain, or a DS or
/// DNSKEY handover in progress)? If not, a new key of `alg` may sign the
/// zone before its DNSKEY is omnipresent (BIND's exception for a new
/// algorithm in keymgr_policy_approval).
pub(super) fn algorithm_trusted(keys: &[Key], alg: Algorithm) -> bool {
    const DNSKEY_OUT: Pattern = [Some(U), None, None, Some(O)];
    const DNSKEY_IN: Pattern = [Some(R), None, None, Some(O)];
    exists(keys, alg, &ksk(O, O, O))
        || handover(keys, alg, &ksk(O, O, U), &ksk(O, O, R))
        || handover(keys, alg, &DNSKEY_OUT, &DNSKEY_IN)
}

/// Rule 1 (3a): some DS is rumoured or omnipresent.
fn ds_rule(keys: &[Key]) -> bool {
    keys.iter().any(|k| matches!(k.state(Record::Ds), R | O))
}

/// Rule 2 (3b–3e), for one algorithm.
fn dnskey_rule(keys: &[Key], alg: Algorithm) -> bool {
    const OLD: [Pattern; 3] = [ksk(U, U, O), ksk(O, U, O), ksk(U, O, O)];
    const NEW: [Pattern; 3] = [ksk(R, R, O), ksk(O, R, O), ksk(R, O, O)];
    exists(keys, alg, &ksk(O, O, O))
        || handover(keys, alg, &ksk(O, O, U), &ksk(O, O, R))
        || OLD.iter().any(|old| NEW.iter().any(|new| handover(keys, alg, old, new)))
        || ds_hidden_or_chained(keys, alg)
}

/// 3e: every key of `alg` whose DS is not hidden has its DNSKEY and
/// KRRSIG omnipresent, or the algorithm has a full DS–DNSKEY–KRRSIG chain.
fn ds_hidden_or_chained(keys: &[Key], alg: Algorithm) -> bool {
    let chained = exists(keys, alg, &ksk(O, O, O));
    of_alg(keys, alg)
        .all(|k| k.state(Record::Ds) == H || (k.state(Record::Dnskey) == O && k.state(Record::Krrsig) == O) || chained)
}

/// Rule 3 (3f–3i), for one algorithm.
fn zrrsig_rule(keys: &[Key], alg: Algorithm) -> bool {
    of_alg(keys, alg).all(|k| k.state(Record::Ds) == H)
        || exists(keys, alg, &zsk(O, O))
        || handover(keys, alg, &zsk(U, O), &zsk(R, O))
        || handover(keys, alg, &zsk(O, U), &zsk(O, R))
        || dnskey_hidden_or_chained(keys, alg)
}

/// 3i: for every key of `alg` whose DNSKEY is not hidden, some key of
/// `alg` with its DNSKEY in the same state has omnipresent signatures.
fn dnskey_hidden_or_chained(keys: &[Key], alg: Algorithm) -> bool {
    of_alg(keys, alg).all(|k| {
        let dnskey = k.state(Record::Dnskey);
        dnskey == H || exists(keys, alg, &zsk(dnskey, O))
    })
}

/// Why a set of key states cannot be published ([`publishable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unpublishable {
    /// A key whose signatures are published without its DNSKEY.
    #[error("key {0} would sign while its DNSKEY is not published")]
    SignsWithoutDnskey(i64),
    /// An algorithm in the DNSKEY RRset that does not sign everything.
    #[error("{algorithm} is in the DNSKEY RRset but would not sign {what}")]
    AlgorithmDoesNotSign {
        /// The algorithm.
        algorithm: Algorithm,
        /// "the DNSKEY RRset" or "the zone".
        what: &'static str,
    },
}

fn published(key: &Key, record: Record) -> bool {
    matches!(key.state(record), R | O)
}

/// What the signing gate needs of the published records: every key that
/// signs (KRRSIG or ZRRSIG published) has its DNSKEY published, and every
/// algorithm in the DNSKEY RRset signs both the DNSKEY RRset and the zone
/// (RFC 4035 §2.2). `Err` says what is missing.
pub(crate) fn publishable(keys: &[Key]) -> Result<(), Unpublishable> {
    for key in keys {
        let signs = published(key, Record::Krrsig) || published(key, Record::Zrrsig);
        if signs && !published(key, Record::Dnskey) {
            return Err(Unpublishable::SignsWithoutDnskey(key.id));
        }
    }
    let algorithms: BTreeSet<Algorithm> =
        keys.iter().filter(|k| published(k, Record::Dnskey)).map(|k| k.algorithm).collect();
    for alg in algorithms {
        for (record, what) in [(Record::Krrsig, "the DNSKEY RRset"), (Record::Zrrsig, "the zone")] {
            if !of_alg(keys, alg).any(|k| published(k, record)) {
                return Err(Unpublishable::AlgorithmDoesNotSign { algorithm: alg, what });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::dnssec::Role;

    const ALG: Algorithm = Algorithm::RsaSha256;

    fn key(id: i64, role: Role, states: [RecordState; 4]) -> Key {
        let mut k = Key::new(id, role, ALG, id as u16, 0);
        for (record, state) in RECORDS.iter().zip(states) {
            k.set(*record, state, 0);
        }
        k
    }

    fn link(keys: &mut [Key], old: usize, new: usize) {
        let (o, n) = (keys[old].id, keys[new].id);
        keys[old].successor = Some(n);
        keys[new].predecessor = Some(o);
    }

    /// DNSKEY, KRRSIG, ZRRSIG, DS.
    fn stable() -> Vec<Key> {
        vec![key(1, Role::Ksk, [O, O, H, O]), key(2, Role::Zsk, [O, H, O, H])]
    }

    #[test]
    fn a_signed_zone_is_safe() {
        assert_eq!(check_rules(&stable()), Ok(()));
    }

    #[test]
    fn nothing_published_breaks_the_ds_rule() {
        let keys = vec![key(1, Role::Ksk, [H; 4]), key(2, Role::Zsk, [H; 4])];
        assert_eq!(check_rules(&keys).map_err(|v| v.rule), Err(SafetyRule::Ds));
    }

    #[test]
    fn withdrawing_the_only_ksk_before_its_successor_has_a_ds_is_caught() {
        // The only KSK's DNSKEY is on its way out while the successor's DS
        // is still hidden: a resolver with the cached DS finds no key.
        let mut keys = stable();
        keys[0].set(Record::Dnskey, U, 0);
        keys[0].set(Record::Krrsig, U, 0);
        keys.push(key(3, Role::Ksk, [O, O, H, H]));
        link(&mut keys, 0, 2);
        let violation = check_rules(&keys).expect_err("unsafe");
        assert_eq!(violation.rule, SafetyRule::Dnskey);
        assert_eq!(violation.algorithm, Some(ALG));
        assert!(violation.to_string().starts_with("DNSKEY rule for RSASHA256 (8): "), "{violation}");
    }

    #[test]
    fn a_zsk_handover_needs_the_successor_relation() {
        // Old ZSK signatures leaving while the new ones arrive (3h).
        let mut keys = stable();
        keys[1].set(Record::Zrrsig, U, 0);
        keys.push(key(3, Role::Zsk, [O, H, R, H]));
        assert_eq!(check_rules(&keys).map_err(|v| v.rule), Err(SafetyRule::Zrrsig));
        link(&mut keys, 1, 2);
        assert_eq!(check_rules(&keys), Ok(()));
    }

    #[test]
    fn a_ds_swap_between_successors_is_safe() {
        let mut keys = stable();
        keys[0].set(Record::Ds, U, 0);
        keys.push(key(3, Role::Ksk, [O, O, H, R]));
        link(&mut keys, 0, 2);
        assert_eq!(check_rules(&keys), Ok(()));
    }

    #[test]
    fn broken_before_does_not_count_as_broken_by_the_move() {
        let before = vec![key(1, Role::Ksk, [H; 4])];
        let after = vec![key(1, Role::Ksk, [R, H, H, H])];
        assert_eq!(first_broken(&before, &after, false), None);
    }

    #[test]
    fn going_insecure_lets_the_ds_go_first_and_only_the_ds() {
        // DNSKEY, KRRSIG, ZRRSIG, DS of a CSK.
        let before = vec![key(1, Role::Csk, [O, O, O, O])];
        let ds_leaving = vec![key(1, Role::Csk, [O, O, O, U])];
        assert_eq!(first_broken(&before, &ds_leaving, false).map(|v| v.rule), Some(SafetyRule::Ds));
        assert_eq!(first_broken(&before, &ds_leaving, true), None, "going insecure: the DS may go");
        // While a resolver may hold the DS, the DNSKEY and signatures stay.
        let keys_leaving = vec![key(1, Role::Csk, [U, U, U, U])];
        assert!(first_broken(&ds_leaving, &keys_leaving, true).is_some());
        let ds_hidden = vec![key(1, Role::Csk, [O, O, O, H])];
        let unsigned = vec![key(1, Role::Csk, [U, U, U, H])];
        assert_eq!(first_broken(&ds_hidden, &unsigned, true), None, "no DS anywhere: the keys may go");
    }

    #[test]
    fn the_gate_needs_every_algorithm_to_sign() {
        let mut keys = stable();
        assert_eq!(publishable(&keys), Ok(()));
        keys.push(Key { algorithm: Algorithm::EcdsaP256Sha256, ..key(3, Role::Zsk, [R, H, H, H]) });
        assert!(publishable(&keys).is_err());
    }
}
