//! The machine: goals from the policy and the clock, then record
//! transitions to a fixed point (Algorithm 1 of the paper, BIND's
//! keymgr_update).
//!
//! One [`advance`] call:
//! 1. takes the observations: `ds seen`/`ds gone` are facts about the
//!    parent and move the DS at once; a manual rollover or a compromised
//!    key asks for a successor now;
//! 2. sets goals: a key gets a successor (CreateKey) when its lifetime is
//!    nearly over (RFC 7583 pre-publication time; the lifetime and the
//!    pre-publication time both of the policy of this step, counted from
//!    when the key first signed, so that a policy change never starts a
//!    rollover the new policy alone would not start), on a manual rollover,
//!    when the policy's algorithm differs from the key's (algorithm
//!    rollover, RFC 6781 §4.1.4), or at once when compromised; once its
//!    successor exists, the old key's goal becomes hidden (as BIND does:
//!    the rules and the rollover method then hold its records until the
//!    successor can take over, so the swap happens when the successor is
//!    ready, at about the old key's retire time);
//! 3. moves records while a move is wanted by the goal, allowed by the
//!    rollover method, keeps the three safety rules (see [`super::rules`]),
//!    keeps the zone publishable through the gate, and its time has come
//!    (see [`super::timing`]); repeats until nothing moves;
//! 4. reports what waits and when to run again.
//!
//! Methods: ZSK pre-publish (RFC 6781 §4.1.1.1): the new ZSK's signatures
//! start once its DNSKEY is omnipresent. KSK double-KSK (§4.1.2): the new
//! KSK's DNSKEY and DNSKEY signatures first, the DS once they are
//! omnipresent. CSK: both at once, each part by its own method. Algorithm
//! rollover (§4.1.4): the new algorithm's DNSKEYs and signatures together
//! (our gate refuses a signature whose DNSKEY is not published, so they
//! cannot precede it), then its DS; the old DS goes, then the old
//! algorithm's DNSKEYs and signatures together. Emergency: a compromised
//! key's goal becomes hidden at once and its successor's zone signatures
//! start with its DNSKEY (double signature) so that the compromised key
//! can leave as early as the rules allow. Going insecure (a policy with
//! `insecure = true`, RFC 6781 §4.3): every key's goal becomes hidden and
//! none is made; without the DS rule the DS leaves first (retraction
//! asked, CDS/CDNSKEY DELETE published, `ds gone`, then the DS TTL and the
//! parent's propagation delay), and only then, by the other two rules,
//! the DNSKEYs and signatures, all together.

use std::collections::BTreeSet;

use crate::policy::Policy;
use crate::time::{format_duration, format_time};
use crate::zone::dnssec::{Algorithm, Role};

use super::model::{Action, Goal, Key, Observation, Record, RecordState, Step, Transition, Wait};
use super::rules::{self, RuleViolation, Unpublishable};
use super::timing::{self, Interval};

use RecordState::{Hidden as H, Omnipresent as O, Rumoured as R, Unretentive as U};

/// What the next signed zone publishes, by key id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publication {
    /// Keys in the DNSKEY RRset (DNSKEY rumoured or omnipresent).
    pub dnskey: Vec<i64>,
    /// Keys that sign the DNSKEY RRset (and CDS/CDNSKEY).
    pub key_signers: Vec<i64>,
    /// Keys that sign the rest of the zone.
    pub zone_signers: Vec<i64>,
    /// Keys published as CDS/CDNSKEY (empty when no DS change is wanted).
    pub cds: Vec<i64>,
    /// The CDS/CDNSKEY "delete" records (RFC 8078 §4) instead: the zone
    /// goes insecure and the parent may still have its DS.
    pub cds_delete: bool,
}

fn published(key: &Key, record: Record) -> bool {
    matches!(key.state(record), R | O)
}

/// What the next signed zone publishes.
///
/// CDS/CDNSKEY (RFC 7344, RFC 8078) name the DS set the parent should
/// have: the keys whose DS is at the parent (rumoured or omnipresent) and
/// is not being retracted, plus those whose DS has been submitted. They
/// are published only while that set differs from the DS set the parent
/// is known to have; when no change is wanted, none are published. Only
/// keys whose DNSKEY is published qualify (the gate checks CDS against
/// the DNSKEY RRset).
pub fn publication(keys: &[Key]) -> Publication {
    let ids = |record: Record| keys.iter().filter(|k| published(k, record)).map(|k| k.id).collect::<Vec<_>>();
    let at_parent: Vec<i64> =
        keys.iter().filter(|k| k.affects(Record::Ds) && published(k, Record::Ds)).map(|k| k.id).collect();
    let wanted = wanted_ds(keys);
    // No DS wanted while the parent may still have one: only a zone going
    // insecure gets there (the rules keep a DS otherwise).
    let cds_delete = wanted.is_empty() && !at_parent.is_empty();
    let cds = if wanted == at_parent { Vec::new() } else { wanted };
    Publication {
        dnskey: ids(Record::Dnskey),
        key_signers: ids(Record::Krrsig),
        zone_signers: ids(Record::Zrrsig),
        cds,
        cds_delete,
    }
}

/// The keys whose DS the parent should have: those whose DS is at the
/// parent and not being retracted, and those whose DS has been
/// submitted; only keys whose DNSKEY is published.
pub fn wanted_ds(keys: &[Key]) -> Vec<i64> {
    keys.iter()
        .filter(|k| k.affects(Record::Ds) && published(k, Record::Dnskey))
        .filter(|k| match k.ds_pending {
            Some(true) => true,
            Some(false) => false,
            None => published(k, Record::Ds),
        })
        .map(|k| k.id)
        .collect()
}

/// Runs the machine at `now` to a fixed point: the keys' next states, the
/// transitions taken, the actions for the caller, what waits, and when to
/// run again. Pure: the same input gives the same output.
pub fn advance(keys: &[Key], policy: &Policy, now: i64, observations: &[Observation]) -> Step {
    advance_within(keys, policy, now, observations, None)
}

/// [`advance`] for a zone whose DNSKEY RRset is fixed elsewhere (an
/// offline KSK's response, issue 27): only the keys of `dnskeys` may have
/// their DNSKEY published, and none of them withdrawn; the machine moves
/// every other record as ever.
///
/// Keys made ahead of their time (a request's planned ZSKs, made with
/// `created` in the future) do not exist for the machine until then: a
/// step before their creation neither sees them nor links them to their
/// predecessor, and runs again when the first is due. One that will never
/// be used ([`superseded`]) is removed.
pub fn advance_within(
    keys: &[Key],
    policy: &Policy,
    now: i64,
    observations: &[Observation],
    dnskeys: Option<&[i64]>,
) -> Step {
    let (mut present, future): (Vec<Key>, Vec<Key>) = keys.iter().cloned().partition(|k| k.created <= now);
    let (done, future) = superseded(&present, future);
    present.extend(done.into_iter().map(|mut f| {
        f.goal = Goal::Hidden;
        f.predecessor = None;
        f
    }));
    let planned = |id: Option<i64>| id.is_some_and(|id| future.iter().any(|f| f.id == id));
    let mut unlinked = Vec::new();
    for key in present.iter_mut().filter(|k| planned(k.successor)) {
        unlinked.push((key.id, key.successor.take()));
    }
    let mut step = advance_present(present, policy, now, observations, dnskeys);
    for key in step.keys.iter_mut() {
        if let Some((_, successor)) = unlinked.iter().find(|(id, _)| *id == key.id) {
            key.successor = *successor;
        }
    }
    let first_planned = future.iter().map(|k| k.created).min();
    step.next = [step.next, first_planned].into_iter().flatten().min();
    step.keys.extend(future);
    step
}

/// The planned keys (made ahead of their time) that will never be used,
/// and the others. A planned key is superseded when its predecessor got
/// another successor meanwhile (an emergency, a requested rollover), or
/// is gone, or is itself superseded.
fn superseded(present: &[Key], future: Vec<Key>) -> (Vec<Key>, Vec<Key>) {
    let mut done: Vec<Key> = Vec::new();
    let mut kept = future;
    loop {
        let exists = |id: i64| present.iter().chain(&kept).any(|k| k.id == id);
        let gone = |f: &Key| {
            let Some(p) = f.predecessor else { return false };
            let sibling = present.iter().any(|s| s.id != f.id && s.predecessor == Some(p));
            sibling || !exists(p) || done.iter().any(|d| d.id == p)
        };
        let (now_done, rest): (Vec<Key>, Vec<Key>) = kept.iter().cloned().partition(|f| gone(f));
        if now_done.is_empty() {
            return (done, kept);
        }
        done.extend(now_done);
        kept = rest;
    }
}

fn advance_present(
    keys: Vec<Key>,
    policy: &Policy,
    now: i64,
    observations: &[Observation],
    dnskeys: Option<&[i64]>,
) -> Step {
    let mut run = Run { keys, policy, now, dnskeys, transitions: Vec::new(), actions: Vec::new() };
    let mut manual = Vec::new();
    for observation in observations {
        run.observe(observation, &mut manual);
    }
    run.set_goals(&manual);
    run.settle();
    run.update_lifetimes();
    let waits = run.waits();
    run.remove_finished();
    let next = run.next(&waits);
    Step { keys: run.keys, transitions: run.transitions, actions: run.actions, waits, next }
}

/// One move: key index, record, new state, why.
type Move = (usize, Record, RecordState, String);

/// What may happen to one record now.
enum Verdict {
    /// Nothing is wanted.
    Stable,
    /// It (and possibly others, together) may move now.
    Move(Vec<Move>),
    /// Everything allows it but the parent: ask the parent (submit or
    /// retract the DS).
    AskParent,
    /// It waits, until a time if time is what it waits for.
    Blocked(WaitReason, Option<i64>),
}

/// Why a record waits; its text is [`Wait::reason`].
#[derive(Debug, thiserror::Error)]
enum WaitReason {
    /// The rollover method's word.
    #[error("waits for {0}")]
    Approval(Awaited),
    /// Time: an interval since the record's last change.
    #[error("until {} ({} since {})", format_time(*.at), .interval.describe(), format_time(*.since))]
    Until {
        /// When the wait ends.
        at: i64,
        /// The interval, by parts.
        interval: Interval,
        /// The record's last change.
        since: i64,
    },
    /// The move would break a safety rule.
    #[error("would break the {0}")]
    WouldBreak(RuleViolation),
    /// The DS was submitted; the parent has not been seen publishing it.
    #[error("waits for the parent to publish the DS (submitted; confirm with ds seen)")]
    ParentPublishes,
    /// The DS's retraction was asked; the parent has not been seen withdrawing it.
    #[error("waits for the parent to withdraw the DS (retraction asked; confirm with ds gone)")]
    ParentWithdraws,
    /// Alone or with the other moves allowed now, the zone could not be published.
    #[error("waits: alone or with what may move now, {0}")]
    Unpublishable(Unpublishable),
    /// Nothing holds it: the next run moves it.
    #[error("may move at the next run")]
    NextRun,
}

/// What the rollover method waits for before it allows a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Awaited {
    /// `parent.wait-ds-gone-before-dnskey-removal`.
    #[error("its DS to be gone from the parent (parent.wait-ds-gone-before-dnskey-removal)")]
    DsGone,
    /// A DNSKEY signature waits for its DNSKEY.
    #[error("its DNSKEY to be published")]
    DnskeyPublished,
    /// ZSK pre-publish.
    #[error("its DNSKEY to be omnipresent (ZSK pre-publish)")]
    DnskeyOmnipresent,
    /// Double-KSK.
    #[error("its DNSKEY and DNSKEY signature to be omnipresent (double-KSK)")]
    DnskeyAndSignatureOmnipresent,
    /// Offline KSK: the response in force does not publish the DNSKEY.
    #[error("a signed key response that publishes its DNSKEY (offline KSK)")]
    InResponse,
    /// Offline KSK: the response in force still publishes the DNSKEY.
    #[error("a signed key response that no longer publishes its DNSKEY (offline KSK)")]
    OutOfResponse,
}

struct Run<'a> {
    keys: Vec<Key>,
    policy: &'a Policy,
    now: i64,
    /// The only keys whose DNSKEY may be published ([`advance_within`]).
    dnskeys: Option<&'a [i64]>,
    transitions: Vec<Transition>,
    actions: Vec<Action>,
}

/// The state a record heads for next under a goal; `None` when it is where
/// the goal wants it. A record being withdrawn finishes withdrawing first.
fn desired(goal: Goal, state: RecordState) -> Option<RecordState> {
    match (goal, state) {
        (Goal::Omnipresent, H) => Some(R),
        (Goal::Omnipresent, R) => Some(O),
        (Goal::Omnipresent, O) | (Goal::Hidden, H) => None,
        (_, U) => Some(H),
        (Goal::Hidden, R | O) => Some(U),
    }
}

/// The keys as they may be at any moment given the pending parent
/// requests: each submitted DS may or may not have appeared, each
/// retracted one may or may not have vanished. `mask` says, bit by bit
/// over the keys with a request pending, which have been acted upon.
fn parent_view(keys: &[Key], mask: u32) -> Vec<Key> {
    let mut view = keys.to_vec();
    let pending = view.iter_mut().filter(|k| k.ds_pending.is_some());
    for (bit, key) in pending.enumerate() {
        if mask & (1 << bit.min(31)) == 0 {
            continue;
        }
        let state = match (key.state(Record::Ds), key.ds_pending) {
            (H, Some(true)) => R,
            (H | R | O, Some(false)) => U,
            (state, _) => state,
        };
        let since = key.record(Record::Ds).since;
        key.set(Record::Ds, state, since);
    }
    view
}

/// The first safety rule a move from `before` to `after` breaks, whatever
/// the parent has or has not done yet of what it was asked.
fn broken(before: &[Key], after: &[Key], insecure: bool) -> Option<RuleViolation> {
    let pending = before.iter().filter(|k| k.ds_pending.is_some()).count().min(6) as u32;
    (0..1u32 << pending)
        .find_map(|mask| rules::first_broken(&parent_view(before, mask), &parent_view(after, mask), insecure))
}

/// The rollover method's word on a move (BIND's keymgr_policy_approval):
/// moves into rumoured are restricted by the method; with the policy's
/// `parent.wait-ds-gone-before-dnskey-removal`, a key's DNSKEY and DNSKEY
/// signature may not start to go while the parent may still serve its DS.
fn approval(
    keys: &[Key],
    i: usize,
    record: Record,
    to: RecordState,
    policy: &Policy,
    dnskeys: Option<&[i64]>,
) -> Result<(), Awaited> {
    let key = &keys[i];
    if let Some(fixed) = dnskeys.filter(|_| record == Record::Dnskey) {
        let listed = fixed.contains(&key.id);
        match to {
            R if !listed => return Err(Awaited::InResponse),
            U if listed => return Err(Awaited::OutOfResponse),
            _ => {}
        }
    }
    if to == U {
        let ds_at_parent = key.affects(Record::Ds) && matches!(key.state(Record::Ds), R | O);
        if policy.parent.wait_ds_gone_before_dnskey_removal
            && matches!(record, Record::Dnskey | Record::Krrsig)
            && ds_at_parent
        {
            return Err(Awaited::DsGone);
        }
        return Ok(());
    }
    if to != R {
        return Ok(());
    }
    let dnskey = key.state(Record::Dnskey);
    match record {
        Record::Dnskey => Ok(()),
        Record::Krrsig if dnskey != H => Ok(()),
        Record::Krrsig => Err(Awaited::DnskeyPublished),
        Record::Zrrsig if dnskey == O || predecessor_compromised(keys, key) => Ok(()),
        Record::Zrrsig if !rules::algorithm_trusted(keys, key.algorithm) => Ok(()),
        Record::Zrrsig => Err(Awaited::DnskeyOmnipresent),
        Record::Ds if dnskey == O && key.state(Record::Krrsig) == O => Ok(()),
        Record::Ds => Err(Awaited::DnskeyAndSignatureOmnipresent),
    }
}

fn predecessor_compromised(keys: &[Key], key: &Key) -> bool {
    key.predecessor.is_some_and(|p| keys.iter().any(|k| k.id == p && k.compromised))
}

fn lifetime(policy: &Policy, role: Role) -> i64 {
    match role {
        Role::Zsk => policy.keys.zsk_lifetime,
        Role::Ksk | Role::Csk => policy.keys.ksk_lifetime,
    }
}

/// When a key's lifetime under `policy` ends: its activation (when it
/// first signed) plus the policy's lifetime for its role; `None` when the
/// lifetime is unlimited or the key has not signed yet.
///
/// Always from the policy of the step, never from the key's stored
/// `retire`: that was computed under the policy of an earlier run, and a
/// policy imported since (longer lifetimes, longer TTLs or safety margins)
/// must not meet the old policy's retire time (issue 22).
pub fn retire_at(key: &Key, policy: &Policy) -> Option<i64> {
    let life = lifetime(policy, key.role);
    key.active.filter(|_| life > 0).map(|active| active.saturating_add(life))
}

/// When `policy` wants a key's successor made: its retire time under the
/// policy less the policy's pre-publication time for its role.
pub fn successor_due_at(key: &Key, policy: &Policy) -> Option<i64> {
    retire_at(key, policy).map(|retire| retire.saturating_sub(prepublication(policy, key.role)))
}

/// Why a key gets a successor in a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuccessorCause {
    /// It was declared compromised (emergency rollover).
    Compromised,
    /// The operator asked for a rollover of its role.
    Requested,
    /// The policy's algorithm is another (algorithm rollover, RFC 6781 §4.1.4).
    Algorithm {
        /// The key's algorithm.
        from: Algorithm,
        /// The policy's.
        to: Algorithm,
    },
    /// Its lifetime under the policy ends at `retire`, and the successor
    /// takes `prepublication` to be ready.
    Lifetime {
        /// Activation plus the policy's lifetime.
        retire: i64,
        /// The policy's pre-publication time for its role.
        prepublication: i64,
    },
}

impl std::fmt::Display for SuccessorCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuccessorCause::Compromised => f.write_str("key compromised"),
            SuccessorCause::Requested => f.write_str("rollover requested"),
            SuccessorCause::Algorithm { from, to } => write!(f, "algorithm rollover {from} → {to}"),
            SuccessorCause::Lifetime { retire, prepublication } => write!(
                f,
                "lifetime ends {} under the policy; its successor needs {} of pre-publication",
                format_time(*retire),
                format_duration(*prepublication)
            ),
        }
    }
}

/// Why `policy` at `now` gives `key` a successor, if it does: compromise,
/// a requested rollover of its role (`requested`), the policy's algorithm,
/// or the policy's lifetime for its role measured from when the key first
/// signed. Only keys headed for omnipresent without a successor qualify
/// (a compromised key always does). Nothing of an earlier policy counts.
pub fn successor_cause(key: &Key, policy: &Policy, now: i64, requested: &[Role]) -> Option<SuccessorCause> {
    if key.successor.is_some() {
        return None;
    }
    if key.compromised {
        return Some(SuccessorCause::Compromised);
    }
    if key.goal != Goal::Omnipresent {
        return None;
    }
    // A successor not yet published is a request's answer, not its target:
    // a request still pending after a run that made the successor but
    // published nothing (refused, failed, held) must not make a successor
    // of the successor at every retry.
    let answer = key.predecessor.is_some() && key.state(Record::Dnskey) == RecordState::Hidden;
    if !answer && requested.iter().any(|&r| r == key.role || key.role == Role::Csk) {
        return Some(SuccessorCause::Requested);
    }
    if key.algorithm != policy.keys.algorithm {
        return Some(SuccessorCause::Algorithm { from: key.algorithm, to: policy.keys.algorithm });
    }
    let retire = retire_at(key, policy)?;
    let prepublication = prepublication(policy, key.role);
    (now >= retire.saturating_sub(prepublication)).then_some(SuccessorCause::Lifetime { retire, prepublication })
}

/// How long before a key's retire time its successor must be made: the
/// successor's DNSKEY must become omnipresent, and for a KSK or CSK its DS
/// registered and in caches (RFC 7583 §3.3; BIND's
/// keymgr_prepublication_time, plus the DS part).
pub(crate) fn prepublication(policy: &Policy, role: Role) -> i64 {
    let k = &policy.keys;
    let dnskey = k.dnskey_ttl + policy.zone.propagation_delay + k.publish_safety;
    let p = &policy.parent;
    match role {
        Role::Zsk => dnskey,
        Role::Ksk | Role::Csk => dnskey + p.registration_delay + p.ds_ttl + p.propagation_delay,
    }
}

fn policy_roles(policy: &Policy) -> &'static [Role] {
    if policy.keys.csk { &[Role::Csk] } else { &[Role::Ksk, Role::Zsk] }
}

impl Run<'_> {
    fn index(&self, id: i64) -> Option<usize> {
        self.keys.iter().position(|k| k.id == id)
    }

    /// Sets a record's state as of now and records the transition.
    fn apply(&mut self, i: usize, record: Record, to: RecordState, why: String) {
        let key = &mut self.keys[i];
        let from = key.state(record);
        key.set(record, to, self.now);
        if matches!(record, Record::Krrsig | Record::Zrrsig) && from == H && key.active.is_none() {
            key.active = Some(self.now);
        }
        self.transitions.push(Transition { key: key.id, record, from, to, why });
    }

    fn observe(&mut self, observation: &Observation, manual: &mut Vec<Role>) {
        match *observation {
            Observation::DsSeen { key } => self.ds_seen(key),
            Observation::DsGone { key } => self.ds_gone(key),
            Observation::Rollover { role } => manual.push(role),
            Observation::Compromised { key } => {
                if let Some(i) = self.index(key) {
                    self.keys[i].compromised = true;
                    self.keys[i].goal = Goal::Hidden;
                }
            }
        }
    }

    /// The parent publishes the DS: a fact, recorded as is.
    fn ds_seen(&mut self, id: i64) {
        let Some(i) = self.index(id) else { return };
        if self.keys[i].state(Record::Ds) == H {
            self.apply(i, Record::Ds, R, "the parent publishes the DS (ds seen)".to_owned());
        }
        if self.keys[i].ds_pending == Some(true) {
            self.keys[i].ds_pending = None;
        }
    }

    /// The parent no longer publishes the DS: a fact. A withdrawn
    /// submission may have been published meanwhile, so it is treated as
    /// leaving caches too.
    fn ds_gone(&mut self, id: i64) {
        let Some(i) = self.index(id) else { return };
        let key = &self.keys[i];
        let why = match (key.state(Record::Ds), key.ds_pending) {
            (R | O, _) => Some("the parent no longer publishes the DS (ds gone)"),
            (H, Some(false)) => Some("the DS submission was withdrawn (ds gone); it may have reached caches meanwhile"),
            _ => None,
        };
        if let Some(why) = why {
            self.apply(i, Record::Ds, U, why.to_owned());
        }
        if self.keys[i].ds_pending == Some(false) {
            self.keys[i].ds_pending = None;
        }
    }

    /// Goals: successors, retirements, first keys. (A DS submission still
    /// pending when its key's goal becomes hidden is not cancelled: once
    /// seen, the DS is retracted like any other, when the rules allow.)
    fn set_goals(&mut self, manual: &[Role]) {
        self.link_successors();
        if self.policy.insecure {
            // Going insecure: every key leaves, none is made; the rules
            // take the DS out first.
            for key in &mut self.keys {
                key.goal = Goal::Hidden;
            }
            return;
        }
        let mut requested = BTreeSet::new();
        for i in 0..self.keys.len() {
            let key = &self.keys[i];
            if successor_cause(key, self.policy, self.now, manual).is_none() {
                continue;
            }
            requested.insert(key.role.as_str());
            self.actions.push(Action::CreateKey {
                role: key.role,
                algorithm: self.policy.keys.algorithm,
                predecessor: Some(key.id),
            });
        }
        for &role in policy_roles(self.policy) {
            let present = self.keys.iter().any(|k| k.role == role && k.goal == Goal::Omnipresent);
            if !present && !requested.contains(role.as_str()) {
                self.actions.push(Action::CreateKey { role, algorithm: self.policy.keys.algorithm, predecessor: None });
            }
        }
    }

    /// A key that another names as predecessor has that successor; its goal
    /// becomes hidden.
    fn link_successors(&mut self) {
        for i in 0..self.keys.len() {
            let id = self.keys[i].id;
            let successor = self.keys.iter().filter(|s| s.predecessor == Some(id) && s.id != id).map(|s| s.id).min();
            if let Some(successor) = successor {
                self.keys[i].successor = Some(successor);
                self.keys[i].goal = Goal::Hidden;
            }
        }
    }

    /// Moves records until nothing moves.
    fn settle(&mut self) {
        for _ in 0..256 {
            let mut changed = false;
            for i in 0..self.keys.len() {
                for record in Record::ALL {
                    if self.keys[i].affects(record) {
                        changed |= self.step_record(i, record);
                    }
                }
            }
            if !changed {
                return;
            }
        }
    }

    fn step_record(&mut self, i: usize, record: Record) -> bool {
        match self.consider(i, record) {
            Verdict::Stable | Verdict::Blocked(..) => false,
            Verdict::Move(moves) => {
                for (j, record, to, why) in moves {
                    self.apply(j, record, to, why);
                }
                true
            }
            Verdict::AskParent => {
                let key = &mut self.keys[i];
                let submit = key.state(Record::Ds) == H;
                key.ds_pending = Some(submit);
                let id = key.id;
                self.actions.push(if submit { Action::SubmitDs { key: id } } else { Action::RetractDs { key: id } });
                true
            }
        }
    }

    /// What may happen to one record now.
    fn consider(&self, i: usize, record: Record) -> Verdict {
        let key = &self.keys[i];
        let status = key.record(record);
        let Some(to) = desired(key.goal, status.state) else { return Verdict::Stable };
        if let Err(what) = approval(&self.keys, i, record, to, self.policy, self.dnskeys) {
            return Verdict::Blocked(WaitReason::Approval(what), None);
        }
        let mut why = move_why(key, record, to, self.policy.insecure);
        if let Some((at, interval)) = timing::ready_at(record, to, status.since, self.policy) {
            if self.now < at {
                return Verdict::Blocked(WaitReason::Until { at, interval, since: status.since }, Some(at));
            }
            why = interval.passed_since(status.since);
        }
        let mut after = self.keys.clone();
        after[i].set(record, to, self.now);
        if let Some(violation) = broken(&self.keys, &after, self.policy.insecure) {
            return Verdict::Blocked(WaitReason::WouldBreak(violation), None);
        }
        if record == Record::Ds && matches!(to, R | U) {
            return self.parent_verdict(key, to);
        }
        if matches!(to, R | U) && rules::publishable(&self.keys).is_ok() && rules::publishable(&after).is_err() {
            return self.batch(i, record, to, why);
        }
        Verdict::Move(vec![(i, record, to, why)])
    }

    fn parent_verdict(&self, key: &Key, to: RecordState) -> Verdict {
        match (to, key.ds_pending) {
            (R, Some(true)) => Verdict::Blocked(WaitReason::ParentPublishes, None),
            (U, Some(false)) => Verdict::Blocked(WaitReason::ParentWithdraws, None),
            _ => Verdict::AskParent,
        }
    }

    /// A move that alone would leave the zone unpublishable (an algorithm
    /// in the DNSKEY RRset that does not sign, or a signature without its
    /// DNSKEY) is made together with the other moves of that algorithm in
    /// the same direction that are allowed now, if together they keep the
    /// zone publishable.
    fn batch(&self, i: usize, record: Record, to: RecordState, why: String) -> Verdict {
        let alg = self.keys[i].algorithm;
        let mut state = self.keys.clone();
        state[i].set(record, to, self.now);
        let together = format!("together with the other {} records of {alg}", if to == R { "new" } else { "old" });
        let mut moves = vec![(i, record, to, format!("{why}, {together}"))];
        for _ in 0..2 {
            for j in 0..state.len() {
                if state[j].algorithm != alg {
                    continue;
                }
                for r in [Record::Dnskey, Record::Krrsig, Record::Zrrsig] {
                    let candidate = state[j].affects(r)
                        && desired(state[j].goal, state[j].state(r)) == Some(to)
                        && approval(&state, j, r, to, self.policy, self.dnskeys).is_ok();
                    if !candidate {
                        continue;
                    }
                    let mut after = state.clone();
                    after[j].set(r, to, self.now);
                    if broken(&state, &after, self.policy.insecure).is_none() {
                        moves.push((
                            j,
                            r,
                            to,
                            format!("{}, {together}", move_why(&state[j], r, to, self.policy.insecure)),
                        ));
                        state = after;
                    }
                }
            }
        }
        match rules::publishable(&state) {
            Ok(()) => Verdict::Move(moves),
            Err(reason) => Verdict::Blocked(WaitReason::Unpublishable(reason), None),
        }
    }

    /// Retire times from activation and the policy's current lifetimes
    /// (what `key list` shows; the machine itself always computes them
    /// afresh from the policy of the step, [`retire_at`]).
    fn update_lifetimes(&mut self) {
        for key in &mut self.keys {
            if key.goal == Goal::Omnipresent {
                key.retire = retire_at(key, self.policy);
            }
        }
    }

    fn waits(&self) -> Vec<Wait> {
        let mut waits = Vec::new();
        for (i, key) in self.keys.iter().enumerate() {
            for record in Record::ALL.into_iter().filter(|&r| key.affects(r)) {
                let (reason, until) = match self.consider(i, record) {
                    Verdict::Stable => continue,
                    Verdict::Blocked(reason, until) => (reason, until),
                    Verdict::Move(_) | Verdict::AskParent => (WaitReason::NextRun, Some(self.now)),
                };
                waits.push(Wait { key: key.id, record, reason: reason.to_string(), until });
            }
        }
        waits
    }

    /// Keys whose goal is hidden and whose records are all hidden are done.
    fn remove_finished(&mut self) {
        for key in &self.keys {
            let hidden = Record::ALL.iter().all(|&r| key.state(r) == H);
            if key.goal == Goal::Hidden && hidden && key.ds_pending.is_none() {
                self.actions.push(Action::RemoveKey { key: key.id });
            }
        }
    }

    /// The earliest timed wait or lifetime event after now.
    fn next(&self, waits: &[Wait]) -> Option<i64> {
        let timed = waits.iter().filter_map(|w| w.until);
        let lifetimes = self
            .keys
            .iter()
            .filter(|k| k.goal == Goal::Omnipresent && k.successor.is_none())
            .filter_map(|k| successor_due_at(k, self.policy));
        timed.chain(lifetimes).filter(|&t| t > self.now).min()
    }
}

/// Why a move into rumoured or unretentive is made, in words.
fn move_why(key: &Key, record: Record, to: RecordState, insecure: bool) -> String {
    let reason = match () {
        _ if key.compromised => "key compromised",
        _ if insecure => "zone going insecure",
        _ => "key retiring",
    };
    match (record, to) {
        (Record::Dnskey, R) => match key.predecessor {
            Some(p) => format!("publish the DNSKEY (successor of key {p})"),
            None => "publish the DNSKEY (new key)".to_owned(),
        },
        (Record::Krrsig, R) => "sign the DNSKEY RRset (its DNSKEY is published)".to_owned(),
        (Record::Zrrsig, R) if key.state(Record::Dnskey) == O => "sign the zone (its DNSKEY is omnipresent)".to_owned(),
        // Before its DNSKEY is omnipresent the safety rules allow this
        // only where no resolver can be broken by it.
        (Record::Zrrsig, R) => {
            "sign the zone with the DNSKEY before it is omnipresent (a new algorithm, an emergency, \
             or no DS at the parent yet, so that no resolver validates the zone)"
                .to_owned()
        }
        (Record::Ds, R) => "submit the DS".to_owned(),
        (_, U) => format!("withdraw the {} ({reason}): the safety rules hold without it", record.as_str()),
        _ => String::new(),
    }
}
