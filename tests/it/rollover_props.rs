//! The rollover machine on a simulated clock: each rollover's order of
//! transitions, and a property test over random policies, operators and
//! incidents that the safety rules hold after every step.

use std::path::Path;

use signet::keys::{Algorithm, Role};
use signet::policy::Policy;
use signet::rollover::{Action, Goal, Key, Observation, Record, RecordState, Step, advance, check_rules, publication};

const HOUR: i64 = 3600;
const DAY: i64 = 86400;
const START: i64 = 1_780_000_000;

fn policy(file: &str) -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies").join(file);
    Policy::from_file(&path).expect("example policy").0
}

/// One thing that happened, for asserting order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Move { key: i64, record: Record, to: RecordState },
    Create { key: i64, role: Role },
    Submit(i64),
    Retract(i64),
    Remove(i64),
}

/// A small deterministic PRNG (xorshift64*), so the property test needs no
/// dependency and any failure replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: i64) -> i64 {
        (self.next() % n.max(1) as u64) as i64
    }
}

/// The caller of the machine: carries out actions, plays the parent.
struct Sim {
    policy: Policy,
    keys: Vec<Key>,
    now: i64,
    next_id: i64,
    /// Observations to deliver at a time.
    pending: Vec<(i64, Observation)>,
    events: Vec<(i64, Event)>,
    /// Operator delay for ds seen / ds gone.
    ds_delay: Box<dyn FnMut() -> i64>,
    established: bool,
    steps: usize,
}

impl Sim {
    fn new(policy: Policy) -> Sim {
        Sim {
            policy,
            keys: Vec::new(),
            now: START,
            next_id: 1,
            pending: Vec::new(),
            events: Vec::new(),
            ds_delay: Box::new(|| 6 * HOUR),
            established: false,
            steps: 0,
        }
    }

    fn observe_at(&mut self, at: i64, observation: Observation) {
        self.pending.push((at, observation));
    }

    /// One call of the machine at `now` with the observations due.
    fn step(&mut self) -> Step {
        let (due, later): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(at, _)| *at <= self.now);
        self.pending = later;
        let observations: Vec<Observation> = due.into_iter().map(|(_, o)| o).collect();
        let step = advance(&self.keys, &self.policy, self.now, &observations);
        self.check_successors(&observations, &step);
        self.keys = step.keys.clone();
        for t in &step.transitions {
            self.events.push((self.now, Event::Move { key: t.key, record: t.record, to: t.to }));
        }
        for action in &step.actions {
            self.carry_out(action);
        }
        self.steps += 1;
        self.check();
        step
    }

    fn carry_out(&mut self, action: &Action) {
        match *action {
            Action::CreateKey { role, algorithm, predecessor } => {
                let id = self.next_id;
                self.next_id += 1;
                let mut key = Key::new(id, role, algorithm, id as u16, self.now);
                key.predecessor = predecessor;
                self.keys.push(key);
                self.events.push((self.now, Event::Create { key: id, role }));
            }
            Action::SubmitDs { key } => {
                let at = self.now + (self.ds_delay)();
                self.observe_at(at, Observation::DsSeen { key });
                self.events.push((self.now, Event::Submit(key)));
            }
            Action::RetractDs { key } => {
                let at = self.now + (self.ds_delay)();
                self.observe_at(at, Observation::DsGone { key });
                self.events.push((self.now, Event::Retract(key)));
            }
            Action::RemoveKey { key } => {
                self.keys.retain(|k| k.id != key);
                self.events.push((self.now, Event::Remove(key)));
            }
        }
    }

    /// Every step, before its keys replace ours: each successor the step
    /// asks for is one the policy of the step calls for by itself (or a
    /// compromise or a requested rollover), and each key that policy calls
    /// a successor for gets one. What an earlier policy would have done
    /// does not count (issue 22).
    fn check_successors(&self, observations: &[Observation], step: &Step) {
        let made = successors(step);
        let requested: Vec<Role> = observations
            .iter()
            .filter_map(|o| match o {
                Observation::Rollover { role } => Some(*role),
                _ => None,
            })
            .collect();
        for key in &self.keys {
            let compromised = key.compromised
                || observations.iter().any(|o| matches!(o, Observation::Compromised { key: id } if *id == key.id));
            let asked = requested.iter().any(|&r| r == key.role || key.role == Role::Csk);
            let called_for = called_for(key, &self.policy, self.now);
            if made.contains(&key.id) {
                assert!(
                    compromised || asked || called_for,
                    "at {} (step {}): key {} ({}, algorithm {}, active {:?}) got a successor that policy {} alone \
                     does not call for (lifetime {}, pre-publication {}); keys: {:#?}",
                    self.now,
                    self.steps,
                    key.id,
                    key.role,
                    key.algorithm,
                    key.active,
                    describe(&self.policy),
                    lifetime(&self.policy, key.role),
                    prepublication(&self.policy, key.role),
                    self.keys
                );
                continue;
            }
            let has_successor = key.successor.is_some() || self.keys.iter().any(|k| k.predecessor == Some(key.id));
            assert!(
                has_successor || key.goal != Goal::Omnipresent || !called_for,
                "at {} (step {}): key {} ({}, active {:?}) is due for a successor under policy {} and got none",
                self.now,
                self.steps,
                key.id,
                key.role,
                key.active,
                describe(&self.policy),
            );
        }
    }

    /// After every step once the zone is established: the rules hold and
    /// the publication passes the gate's coverage checks.
    fn check(&mut self) {
        if self.policy.insecure {
            // Going insecure gives up the DS rule: the test of that
            // (`going_insecure_and_back`) checks the order itself.
            self.established = false;
            return;
        }
        if !self.established {
            self.established = check_rules(&self.keys).is_ok();
        }
        if self.established
            && let Err(v) = check_rules(&self.keys)
        {
            let recent: Vec<_> = self.events.iter().rev().take(40).rev().collect();
            panic!("at {} (step {}): {v}\nkeys: {:#?}\nrecent: {recent:#?}", self.now, self.steps, self.keys);
        }
        let p = publication(&self.keys);
        let alg = |id: &i64| self.keys.iter().find(|k| k.id == *id).map(|k| k.algorithm);
        for signer in p.key_signers.iter().chain(&p.zone_signers).chain(&p.cds) {
            assert!(p.dnskey.contains(signer), "key {signer} signs or is in CDS without its DNSKEY: {p:?}");
        }
        for a in p.dnskey.iter().filter_map(alg) {
            assert!(p.key_signers.iter().any(|s| alg(s) == Some(a)), "{a} does not sign the DNSKEY RRset: {p:?}");
            assert!(p.zone_signers.iter().any(|s| alg(s) == Some(a)), "{a} does not sign the zone: {p:?}");
        }
    }

    /// Steps until `end`, jumping to the machine's next time, the next
    /// observation, or `cap` ahead, whichever is first.
    fn run_until(&mut self, end: i64) {
        while self.now < end {
            let step = self.step();
            if !step.actions.is_empty() {
                continue; // the caller did something: run again at once
            }
            let pending = self.pending.iter().map(|(at, _)| *at).min();
            let next = [step.next, pending, Some(end)].into_iter().flatten().min().unwrap_or(self.now + HOUR);
            self.now = next.max(self.now + 1);
        }
    }

    fn established_at(&self) -> i64 {
        let all_in = self
            .keys
            .iter()
            .all(|k| Record::ALL.iter().all(|&r| !k.affects(r) || k.state(r) == RecordState::Omnipresent));
        assert!(all_in, "not established: {:#?}", self.keys);
        self.now
    }

    fn key_of(&self, role: Role) -> i64 {
        self.keys.iter().find(|k| k.role == role && k.goal == Goal::Omnipresent).map(|k| k.id).expect("key")
    }

    /// Index of the first event after `from` matching.
    fn when(&self, event: &Event) -> usize {
        self.events.iter().position(|(_, e)| e == event).unwrap_or_else(|| panic!("no {event:?} in {:#?}", self.events))
    }

    fn time_of(&self, event: &Event) -> i64 {
        self.events[self.when(event)].0
    }

    fn print(&self, from: i64) {
        for (at, e) in self.events.iter().filter(|(at, _)| *at >= from) {
            println!("+{:>7.2}d  {e:?}", (*at - from) as f64 / DAY as f64);
        }
    }
}

/// A role's lifetime under a policy (0: unlimited).
fn lifetime(policy: &Policy, role: Role) -> i64 {
    match role {
        Role::Zsk => policy.keys.zsk_lifetime,
        Role::Ksk | Role::Csk => policy.keys.ksk_lifetime,
    }
}

/// How long before a key's lifetime ends its successor must be made
/// (RFC 7583 §3.3, as docs/user-guide.md says): the successor's DNSKEY into every
/// cache, and for a KSK or CSK also its DS registered and into caches.
fn prepublication(policy: &Policy, role: Role) -> i64 {
    let (k, p) = (&policy.keys, &policy.parent);
    let dnskey = k.dnskey_ttl + policy.zone.propagation_delay + k.publish_safety;
    match role {
        Role::Zsk => dnskey,
        Role::Ksk | Role::Csk => dnskey + p.registration_delay + p.ds_ttl + p.propagation_delay,
    }
}

/// Whether `policy` by itself calls for a successor of `key` at `now`:
/// the policy's algorithm is another (algorithm rollover), or the key's
/// age since it first signed has reached the policy's lifetime for its
/// role less the policy's pre-publication time (a lifetime shortened
/// below the key's age makes it overdue: due at once).
fn called_for(key: &Key, policy: &Policy, now: i64) -> bool {
    if key.algorithm != policy.keys.algorithm {
        return true;
    }
    let life = lifetime(policy, key.role);
    life > 0 && key.active.is_some_and(|active| now >= active + life - prepublication(policy, key.role))
}

fn describe(policy: &Policy) -> String {
    let (k, z, p) = (&policy.keys, &policy.zone, &policy.parent);
    format!(
        "{{{} csk {} ksk {}s zsk {}s dnskey-ttl {}s max-ttl {}s propagation {}s publish {}s retire {}s ds-ttl {}s \
         parent-propagation {}s registration {}s}}",
        k.algorithm,
        k.csk,
        k.ksk_lifetime,
        k.zsk_lifetime,
        k.dnskey_ttl,
        z.max_ttl,
        z.propagation_delay,
        k.publish_safety,
        k.retire_safety,
        p.ds_ttl,
        p.propagation_delay,
        p.registration_delay
    )
}

/// The keys a step asks successors for, by predecessor.
fn successors(step: &Step) -> Vec<i64> {
    step.actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateKey { predecessor, .. } => *predecessor,
            _ => None,
        })
        .collect()
}

fn mv(key: i64, record: Record, to: RecordState) -> Event {
    Event::Move { key, record, to }
}

use RecordState::{Hidden as H, Omnipresent as O, Rumoured as R, Unretentive as U};

/// Asserts that the events happened in this order (ties allowed).
fn in_order(sim: &Sim, events: &[Event]) {
    let positions: Vec<usize> = events.iter().map(|e| sim.when(e)).collect();
    for (pair, ev) in positions.windows(2).zip(events.windows(2)) {
        assert!(pair[0] <= pair[1], "{:?} came after {:?}", ev[0], ev[1]);
    }
}

#[test]
fn the_first_keys_are_published_then_the_ds_submitted() {
    let mut sim = Sim::new(policy("tld-rsasha256.toml"));
    sim.run_until(START + 10 * DAY);
    sim.print(START);
    let (ksk, zsk) = (sim.key_of(Role::Ksk), sim.key_of(Role::Zsk));
    in_order(
        &sim,
        &[
            mv(ksk, Record::Dnskey, R),
            mv(zsk, Record::Zrrsig, R),
            mv(ksk, Record::Dnskey, O),
            mv(zsk, Record::Zrrsig, O),
        ],
    );
    // The DS is submitted only once the zone is fully signed.
    assert!(sim.time_of(&Event::Submit(ksk)) >= sim.time_of(&mv(zsk, Record::Zrrsig, O)));
    assert_eq!(sim.time_of(&mv(ksk, Record::Dnskey, R)), START);
    sim.established_at();
}

#[test]
fn steps_say_why_and_what_waits() {
    let p = policy("tld-rsasha256.toml");
    let first = advance(&[], &p, START, &[]);
    assert_eq!(first.actions.len(), 2, "a KSK and a ZSK: {:?}", first.actions);
    let keys = vec![
        Key::new(1, Role::Ksk, Algorithm::RsaSha256, 1, START),
        Key::new(2, Role::Zsk, Algorithm::RsaSha256, 2, START),
    ];
    let step = advance(&keys, &p, START, &[]);
    assert!(step.actions.is_empty(), "{:?}", step.actions);
    let ready = START + 2 * HOUR + 15 * 60 + HOUR;
    assert_eq!(step.next, Some(ready));
    let wait = step.waits.iter().find(|w| w.key == 1 && w.record == Record::Dnskey).expect("DNSKEY waits");
    assert_eq!(wait.until, Some(ready));
    assert!(wait.reason.contains("DNSKEY TTL 2h + propagation 15m + publish safety 1h"), "{}", wait.reason);
    let ds = step.waits.iter().find(|w| w.key == 1 && w.record == Record::Ds).expect("DS waits");
    assert!(ds.reason.contains("double-KSK"), "{}", ds.reason);
    let later = advance(&step.keys, &p, ready, &[]);
    let t = later.transitions.iter().find(|t| t.key == 1 && t.record == Record::Dnskey).expect("moves");
    assert_eq!(t.to, O);
    assert!(t.why.starts_with("DNSKEY TTL 2h + propagation 15m + publish safety 1h passed since 2026-"), "{}", t.why);
    // Deterministic.
    assert_eq!(later.transitions, advance(&step.keys, &p, ready, &[]).transitions);
}

#[test]
fn cds_is_published_only_while_the_ds_set_should_change() {
    let mut sim = Sim::new(policy("tld-rsasha256.toml"));
    sim.ds_delay = Box::new(|| 2 * DAY);
    sim.run_until(START + 2 * DAY);
    let ksk = sim.key_of(Role::Ksk);
    assert!(sim.events.iter().any(|(_, e)| *e == Event::Submit(ksk)));
    assert_eq!(publication(&sim.keys).cds, vec![ksk], "submitted, not yet seen");
    sim.run_until(START + 10 * DAY);
    assert!(publication(&sim.keys).cds.is_empty(), "the parent has what we want");
}

#[test]
fn zsk_pre_publish() {
    let mut sim = Sim::new(policy("tld-rsasha256.toml"));
    sim.run_until(START + 10 * DAY);
    let old = sim.key_of(Role::Zsk);
    let from = sim.established_at();
    sim.run_until(START + 40 * DAY);
    sim.print(from);
    let new = sim.key_of(Role::Zsk);
    assert_ne!(old, new);
    in_order(
        &sim,
        &[
            Event::Create { key: new, role: Role::Zsk },
            mv(new, Record::Dnskey, R),
            mv(new, Record::Dnskey, O),
            mv(new, Record::Zrrsig, R),
            mv(old, Record::Zrrsig, U),
            mv(new, Record::Zrrsig, O),
            mv(old, Record::Dnskey, U),
            mv(old, Record::Dnskey, H),
            Event::Remove(old),
        ],
    );
    // The old DNSKEY leaves once every cache has the new signatures.
    assert_eq!(sim.time_of(&mv(new, Record::Zrrsig, O)), sim.time_of(&mv(old, Record::Dnskey, U)));
    // The new signatures start exactly when the old ones stop.
    assert_eq!(sim.time_of(&mv(new, Record::Zrrsig, R)), sim.time_of(&mv(old, Record::Zrrsig, U)));
    // Roughly at the old key's retire time (35 days after it first signed).
    let swap = sim.time_of(&mv(old, Record::Zrrsig, U));
    assert!((swap - (START + 35 * DAY)).abs() <= 2 * HOUR, "swap at +{}s", swap - START);
}

#[test]
fn ksk_double_ksk_with_ds_seen_and_gone() {
    let mut sim = Sim::new(policy("tld-rsasha256.toml"));
    sim.ds_delay = Box::new(|| DAY);
    sim.run_until(START + 10 * DAY);
    let old = sim.key_of(Role::Ksk);
    let from = sim.established_at();
    sim.run_until(START + 380 * DAY);
    sim.events.retain(|(_, e)| {
        let key = match e {
            Event::Move { key, .. } | Event::Create { key, .. } => *key,
            Event::Submit(key) | Event::Retract(key) | Event::Remove(key) => *key,
        };
        sim.keys
            .iter()
            .chain([&Key::new(old, Role::Ksk, Algorithm::RsaSha256, 0, 0)])
            .any(|k| k.id == key && k.role == Role::Ksk)
    });
    sim.print(from);
    let new = sim.key_of(Role::Ksk);
    assert_ne!(old, new);
    in_order(
        &sim,
        &[
            Event::Create { key: new, role: Role::Ksk },
            mv(new, Record::Dnskey, R),
            mv(new, Record::Krrsig, R),
            mv(new, Record::Dnskey, O),
            Event::Submit(new),
            mv(new, Record::Ds, R),
            Event::Retract(old),
            mv(old, Record::Ds, U),
            mv(new, Record::Ds, O),
            mv(old, Record::Dnskey, U),
            mv(old, Record::Dnskey, H),
            mv(old, Record::Ds, H),
            Event::Remove(old),
        ],
    );
    // The old DS is retracted only once the new one is seen.
    assert!(sim.time_of(&Event::Retract(old)) >= sim.time_of(&mv(new, Record::Ds, R)));
}

/// A KSK rollover whose old DS takes 20 days to go: the old KSK's DNSKEY
/// leaves before its DS by default (the new KSK carries the chain), and
/// only after it with `parent.wait-ds-gone-before-dnskey-removal`.
fn old_dnskey_and_ds_removal(wait_ds_gone: bool) -> (i64, i64) {
    let mut p = policy("tld-rsasha256.toml");
    p.parent.wait_ds_gone_before_dnskey_removal = wait_ds_gone;
    let mut sim = Sim::new(p);
    let mut calls = 0;
    sim.ds_delay = Box::new(move || {
        calls += 1;
        // The first two: the first KSK's DS and the new KSK's DS; then the
        // old DS's slow withdrawal.
        if calls <= 2 { DAY } else { 20 * DAY }
    });
    sim.run_until(START + 10 * DAY);
    let old = sim.key_of(Role::Ksk);
    sim.run_until(START + 420 * DAY);
    let new = sim.key_of(Role::Ksk);
    assert_ne!(old, new, "the KSK rolled");
    (sim.time_of(&mv(old, Record::Dnskey, U)), sim.time_of(&mv(old, Record::Ds, U)))
}

#[test]
fn wait_ds_gone_before_dnskey_removal_keeps_the_old_dnskey_until_the_ds_is_gone() {
    let (dnskey_goes, ds_gone) = old_dnskey_and_ds_removal(false);
    assert!(dnskey_goes < ds_gone, "by default the old DNSKEY goes before its slow DS: {dnskey_goes} {ds_gone}");
    let (dnskey_goes, ds_gone) = old_dnskey_and_ds_removal(true);
    assert!(dnskey_goes >= ds_gone, "with the knob the old DNSKEY waits for ds gone: {dnskey_goes} {ds_gone}");
}

#[test]
fn csk_rollover() {
    let mut sim = Sim::new(policy("small-csk-ed25519.toml"));
    sim.run_until(START + 10 * DAY);
    let old = sim.key_of(Role::Csk);
    let from = sim.established_at();
    sim.observe_at(from, Observation::Rollover { role: Role::Csk });
    sim.run_until(from + 20 * DAY);
    sim.print(from);
    let new = sim.key_of(Role::Csk);
    assert_ne!(old, new);
    in_order(
        &sim,
        &[
            mv(new, Record::Dnskey, R),
            mv(new, Record::Dnskey, O),
            mv(new, Record::Zrrsig, R),
            mv(old, Record::Zrrsig, U),
            Event::Submit(new),
            mv(new, Record::Ds, R),
            mv(old, Record::Ds, U),
            mv(old, Record::Dnskey, U),
            Event::Remove(old),
        ],
    );
}

#[test]
fn algorithm_rollover_8_to_13() {
    let mut sim = Sim::new(policy("tld-rsasha256.toml"));
    sim.run_until(START + 10 * DAY);
    let (old_ksk, old_zsk) = (sim.key_of(Role::Ksk), sim.key_of(Role::Zsk));
    let from = sim.established_at();
    sim.policy.keys.algorithm = Algorithm::EcdsaP256Sha256;
    sim.policy.keys.bits = None;
    sim.run_until(from + 20 * DAY);
    sim.print(from);
    let (new_ksk, new_zsk) = (sim.key_of(Role::Ksk), sim.key_of(Role::Zsk));
    for id in [new_ksk, new_zsk] {
        let key = sim.keys.iter().find(|k| k.id == id).expect("key");
        assert_eq!(key.algorithm, Algorithm::EcdsaP256Sha256);
    }
    // RFC 6781 §4.1.4: new signatures and DNSKEYs, then the new DS; the old
    // DS goes, then the old DNSKEYs and signatures.
    in_order(
        &sim,
        &[
            mv(new_zsk, Record::Zrrsig, R),
            mv(new_zsk, Record::Zrrsig, O),
            Event::Submit(new_ksk),
            mv(new_ksk, Record::Ds, R),
            mv(old_ksk, Record::Ds, U),
            mv(old_ksk, Record::Ds, H),
            mv(old_zsk, Record::Zrrsig, U),
            mv(old_ksk, Record::Dnskey, H),
            Event::Remove(old_ksk),
            Event::Remove(old_zsk),
        ],
    );
    assert_eq!(sim.time_of(&mv(new_zsk, Record::Dnskey, R)), sim.time_of(&mv(new_ksk, Record::Dnskey, R)));
    assert_eq!(sim.keys.len(), 2);
}

#[test]
fn emergency_zsk() {
    let mut sim = Sim::new(policy("tld-rsasha256.toml"));
    sim.run_until(START + 10 * DAY);
    let old = sim.key_of(Role::Zsk);
    let from = sim.established_at();
    sim.observe_at(from, Observation::Compromised { key: old });
    sim.run_until(from + 5 * DAY);
    sim.print(from);
    let new = sim.key_of(Role::Zsk);
    in_order(
        &sim,
        &[mv(new, Record::Dnskey, R), mv(new, Record::Zrrsig, R), mv(old, Record::Zrrsig, U), Event::Remove(old)],
    );
    // Double signature: the successor signs at once.
    assert_eq!(sim.time_of(&mv(new, Record::Zrrsig, R)), from);
    let gone = sim.time_of(&mv(old, Record::Dnskey, U));
    assert!(gone - from <= 2 * DAY, "compromised DNSKEY withdrawn after {}s", gone - from);
}

#[test]
fn emergency_ksk_keeps_the_old_dnskey_until_the_new_ds_is_in_caches() {
    let mut sim = Sim::new(policy("tld-rsasha256.toml"));
    sim.run_until(START + 10 * DAY);
    let old = sim.key_of(Role::Ksk);
    let from = sim.established_at();
    sim.observe_at(from, Observation::Compromised { key: old });
    sim.run_until(from + 10 * DAY);
    sim.print(from);
    let new = sim.key_of(Role::Ksk);
    in_order(
        &sim,
        &[
            mv(new, Record::Dnskey, R),
            Event::Submit(new),
            mv(new, Record::Ds, R),
            mv(old, Record::Ds, U),
            mv(new, Record::Ds, O),
            mv(old, Record::Dnskey, U),
            mv(old, Record::Ds, H),
            Event::Remove(old),
        ],
    );
    assert!(sim.time_of(&mv(old, Record::Dnskey, U)) >= sim.time_of(&mv(new, Record::Ds, O)));
}

fn random_policy(rng: &mut Rng) -> Policy {
    let mut p = policy("tld-ecdsa.toml");
    let algs = [Algorithm::RsaSha256, Algorithm::EcdsaP256Sha256, Algorithm::EcdsaP384Sha384, Algorithm::Ed25519];
    p.keys.algorithm = algs[rng.below(4) as usize];
    p.keys.bits = None;
    p.keys.csk = rng.below(3) == 0;
    p.keys.dnskey_ttl = (1 + rng.below(24)) * HOUR;
    p.zone.max_ttl = p.keys.dnskey_ttl.max((1 + rng.below(48)) * HOUR);
    p.zone.propagation_delay = rng.below(2 * HOUR);
    p.keys.publish_safety = rng.below(DAY);
    p.keys.retire_safety = rng.below(DAY);
    p.parent.ds_ttl = (1 + rng.below(48)) * HOUR;
    p.parent.propagation_delay = rng.below(6 * HOUR);
    p.parent.registration_delay = rng.below(3 * DAY);
    let zsk_need = signet::policy::zsk_rollover_time(&p);
    let ksk_need = signet::policy::ksk_rollover_time(&p).max(zsk_need);
    p.keys.zsk_lifetime = if rng.below(5) == 0 { 0 } else { zsk_need + DAY + rng.below(60 * DAY) };
    p.keys.ksk_lifetime = if rng.below(4) == 0 { 0 } else { ksk_need + DAY + rng.below(200 * DAY) };
    p
}

/// Random policies, operators and incidents over two simulated years:
/// the rules hold after every step once the zone is established, the
/// published zone always passes the gate's coverage checks, and every
/// rollover completes.
#[test]
fn random_histories_stay_safe_and_complete() {
    let (mut total_steps, mut rollovers) = (0, 0);
    for seed in 1..=1000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let policy = random_policy(&mut rng);
        let mut sim = Sim::new(policy);
        let mut delays = Rng(rng.next() | 1);
        sim.ds_delay = Box::new(move || delays.below(5 * DAY));
        let end = START + 2 * 365 * DAY;
        let alg_change = START + 30 * DAY + rng.below(500 * DAY);
        let mut incidents: Vec<i64> = (0..rng.below(6)).map(|_| START + 20 * DAY + rng.below(600 * DAY)).collect();
        incidents.sort();
        let mut changed = false;
        while sim.now < end {
            if !changed && sim.now >= alg_change && rng.below(2) == 0 {
                sim.policy.keys.algorithm = Algorithm::ALL[rng.below(4) as usize];
                changed = true;
            }
            if incidents.first().is_some_and(|&t| sim.now >= t) {
                incidents.remove(0);
                let live: Vec<&Key> = sim.keys.iter().filter(|k| k.goal == Goal::Omnipresent).collect();
                if !live.is_empty() {
                    let key = live[rng.below(live.len() as i64) as usize];
                    let o = if rng.below(2) == 0 {
                        Observation::Compromised { key: key.id }
                    } else {
                        Observation::Rollover { role: key.role }
                    };
                    sim.observe_at(sim.now, o);
                }
            }
            let horizon = incidents.first().copied().unwrap_or(end).min(end).max(sim.now + 1);
            let before = sim.steps;
            sim.run_until(horizon.min(sim.now + 30 * DAY));
            assert!(sim.steps > before);
        }
        // Let everything finish: no new incidents, long enough for any rollover.
        sim.policy.keys.zsk_lifetime = 0;
        sim.policy.keys.ksk_lifetime = 0;
        sim.run_until(end + 60 * DAY);
        let stuck: Vec<&Key> = sim.keys.iter().filter(|k| k.goal == Goal::Hidden).collect();
        assert!(stuck.is_empty(), "seed {seed}: keys never removed: {stuck:#?}");
        assert!(check_rules(&sim.keys).is_ok(), "seed {seed}");
        sim.established_at();
        assert!(sim.keys.iter().all(|k| k.algorithm == sim.policy.keys.algorithm), "seed {seed}");
        total_steps += sim.steps;
        rollovers += sim.events.iter().filter(|(_, e)| matches!(e, Event::Remove(_))).count();
    }
    println!("{total_steps} steps, {rollovers} keys rolled out");
    assert!(total_steps > 10_000 && rollovers > 200, "{total_steps} steps, {rollovers} removals");
}

/// Issue 22: under a policy with 2-day ZSKs and 5-day KSKs, the zone's
/// first keys are 10 hours old when a policy with 90-day ZSKs and 365-day
/// KSKs, and longer TTLs, safety margins and registration delay, replaces
/// it. The old policy's retire times (2 and 5 days) less the new policy's
/// pre-publication times (2 and 5 days and more) were already past, so
/// both keys were replaced at once: a needless DS change at the parent for
/// the KSK. Now nothing rolls until the new lifetimes call for it.
#[test]
fn a_longer_lifetime_policy_does_not_replace_young_keys_at_once() {
    let mut p1 = policy("tld-ecdsa.toml");
    p1.keys.zsk_lifetime = 2 * DAY;
    p1.keys.ksk_lifetime = 5 * DAY;
    let mut p2 = p1.clone();
    p2.keys.zsk_lifetime = 90 * DAY;
    p2.keys.ksk_lifetime = 365 * DAY;
    p2.keys.dnskey_ttl = DAY;
    p2.keys.publish_safety = DAY;
    p2.keys.retire_safety = DAY;
    p2.parent.registration_delay = 2 * DAY;
    assert!(prepublication(&p2, Role::Zsk) > 2 * DAY - 10 * HOUR && prepublication(&p2, Role::Ksk) > 5 * DAY);

    let mut sim = Sim::new(p1);
    sim.run_until(START + 10 * HOUR);
    let (ksk, zsk) = (sim.key_of(Role::Ksk), sim.key_of(Role::Zsk));
    let active = |sim: &Sim, id: i64| sim.keys.iter().find(|k| k.id == id).and_then(|k| k.active).expect("active");
    assert_eq!(active(&sim, zsk), START);
    sim.policy = p2.clone();
    let step = sim.step();
    assert_eq!(successors(&step), Vec::<i64>::new(), "the new policy replaced 10-hour-old keys: {:?}", step.actions);
    // The stored retire times are now the new policy's.
    let zsk_key = sim.keys.iter().find(|k| k.id == zsk).expect("zsk");
    assert_eq!(zsk_key.retire, Some(START + 90 * DAY));
    // The new policy's own ZSK rollover comes when its lifetime says.
    sim.run_until(START + 100 * DAY);
    let new_zsk = sim.key_of(Role::Zsk);
    assert_ne!(new_zsk, zsk);
    let made = sim.time_of(&Event::Create { key: new_zsk, role: Role::Zsk });
    assert_eq!(made, START + 90 * DAY - prepublication(&p2, Role::Zsk));
    assert_eq!(sim.key_of(Role::Ksk), ksk, "the KSK lives its 365 days");
    assert!(!sim.events.iter().any(|(_, e)| matches!(e, Event::Submit(k) if *k != ksk)), "no DS change");
}

/// A random change of `old`: each of the key lifetimes, TTLs, delays and
/// safety margins kept or redrawn (a lifetime also made longer, shorter or
/// unlimited), and sometimes the algorithm; the key layout (CSK or KSK +
/// ZSK) stays. Lifetimes stay long enough for the rollover they need, as
/// `policy check` requires.
fn changed_policy(old: &Policy, rng: &mut Rng) -> Policy {
    let fresh = random_policy(rng);
    let mut p = old.clone();
    // Kept, redrawn, or made two to five times longer.
    fn redraw(rng: &mut Rng, to: &mut i64, from: i64) {
        match rng.below(3) {
            0 => {}
            1 => *to = from,
            _ => *to = (*to).max(HOUR) * (2 + rng.below(4)),
        }
    }
    redraw(rng, &mut p.keys.dnskey_ttl, fresh.keys.dnskey_ttl);
    redraw(rng, &mut p.zone.max_ttl, fresh.zone.max_ttl);
    p.zone.max_ttl = p.zone.max_ttl.max(p.keys.dnskey_ttl);
    redraw(rng, &mut p.zone.propagation_delay, fresh.zone.propagation_delay);
    redraw(rng, &mut p.keys.publish_safety, fresh.keys.publish_safety);
    redraw(rng, &mut p.keys.retire_safety, fresh.keys.retire_safety);
    redraw(rng, &mut p.parent.ds_ttl, fresh.parent.ds_ttl);
    redraw(rng, &mut p.parent.propagation_delay, fresh.parent.propagation_delay);
    redraw(rng, &mut p.parent.registration_delay, fresh.parent.registration_delay);
    if rng.below(4) == 0 {
        p.keys.algorithm = Algorithm::ALL[rng.below(4) as usize];
    }
    let zsk_need = signet::policy::zsk_rollover_time(&p);
    let ksk_need = signet::policy::ksk_rollover_time(&p).max(zsk_need);
    for (life, need) in [(&mut p.keys.zsk_lifetime, zsk_need), (&mut p.keys.ksk_lifetime, ksk_need)] {
        *life = match rng.below(6) {
            0 => *life,
            1 => 0,
            2 => *life * (2 + rng.below(20)),
            3 => *life / (2 + rng.below(4)),
            4 => need + rng.below(10 * DAY),
            _ => need + DAY + rng.below(400 * DAY),
        };
        if *life != 0 && *life <= need {
            *life = need + 1 + rng.below(DAY);
        }
    }
    p
}

/// Issue 22: a policy change never starts a rollover that the new policy
/// alone would not start. Random policies, each replaced at a random
/// instant by a random change of it (lifetimes, TTLs, delays, safety
/// margins, algorithm): at the change and for a year after it, every
/// successor is one the new policy calls for by itself (`Sim::step`
/// checks each step: an algorithm change, or a key's age since it first
/// signed reaching the new lifetime less the new pre-publication time)
/// and every key it calls for gets one; and the change's step decides as
/// it would if the new policy had written the keys' stored retire times.
#[test]
fn a_policy_change_starts_no_rollover_the_new_policy_alone_would_not() {
    let (mut spared, mut rolled, mut alg_rollovers) = (0, 0, 0);
    for seed in 1..=600u64 {
        let mut rng = Rng(seed.wrapping_mul(0xd1b5_4a32_d192_ed03) | 1);
        let mut sim = Sim::new(random_policy(&mut rng));
        let mut delays = Rng(rng.next() | 1);
        sim.ds_delay = Box::new(move || delays.below(3 * DAY));
        sim.run_until(START + HOUR + rng.below(300 * DAY));
        if rng.below(2) == 0 {
            // Half the time, change shortly before the old policy would
            // make a successor: where the old retire times could meet the
            // new pre-publication times.
            let next_due = sim
                .keys
                .iter()
                .filter(|k| k.goal == Goal::Omnipresent && k.successor.is_none())
                .filter_map(|k| k.retire.map(|r| r - prepublication(&sim.policy, k.role)))
                .filter(|&due| due > sim.now)
                .min();
            if let Some(due) = next_due {
                sim.run_until((due - rng.below(DAY)).max(sim.now + 1));
            }
        }
        let new = changed_policy(&sim.policy, &mut rng);
        let before = sim.keys.clone();
        // What the old code did: the stored (old policy's) retire time
        // against the new pre-publication time.
        spared += before
            .iter()
            .filter(|k| k.goal == Goal::Omnipresent && k.successor.is_none() && k.algorithm == new.keys.algorithm)
            .filter(|k| k.retire.is_some_and(|r| sim.now >= r - prepublication(&new, k.role)))
            .filter(|k| !called_for(k, &new, sim.now))
            .count();
        sim.policy = new.clone();
        let now = sim.now;
        let step = sim.step();
        let made = successors(&step);
        rolled += made.len();
        alg_rollovers +=
            made.iter().filter(|id| before.iter().any(|k| k.id == **id && k.algorithm != new.keys.algorithm)).count();
        let mut by_new = before.clone();
        for key in by_new.iter_mut().filter(|k| k.goal == Goal::Omnipresent) {
            let life = lifetime(&new, key.role);
            key.retire = key.active.filter(|_| life > 0).map(|a| a + life);
        }
        assert_eq!(made, successors(&advance(&by_new, &new, now, &[])), "seed {seed}: {}", describe(&new));
        // Every step of a year under the new policy is checked too (and,
        // once the zone is established, the safety rules after each).
        sim.run_until(now + 365 * DAY);
    }
    println!(
        "{spared} keys the old policy's retire times would have rolled at the change; {rolled} successors made at a change ({alg_rollovers} for the algorithm)"
    );
    assert!(
        spared > 30 && rolled > 30 && alg_rollovers > 10,
        "{spared} spared, {rolled} rolled, {alg_rollovers} algorithm"
    );
}

/// Going insecure (RFC 6781 §4.3): the DS is retracted first, with
/// CDS/CDNSKEY DELETE published while the parent may have it; the
/// DNSKEYs and signatures leave only once the DS is hidden (gone from the
/// parent, then its TTL and propagation passed), all in one step; then
/// every key is removed and none is made. Back to a signed policy, new
/// keys come as for a new zone and their DS is submitted.
#[test]
fn going_insecure_and_back() {
    let mut sim = Sim::new(policy("tld-rsasha256.toml"));
    sim.ds_delay = Box::new(|| 6 * HOUR);
    sim.run_until(START + 10 * DAY);
    let (ksk, zsk) = (sim.key_of(Role::Ksk), sim.key_of(Role::Zsk));
    let from = sim.established_at();
    sim.policy.insecure = true;
    let step = sim.step();
    assert!(step.actions.contains(&Action::RetractDs { key: ksk }), "{:?}", step.actions);
    let p = publication(&sim.keys);
    assert!(p.cds_delete && p.cds.is_empty(), "CDS/CDNSKEY DELETE while the DS may be at the parent: {p:?}");
    sim.run_until(from + 20 * DAY);
    sim.print(from);
    assert!(sim.keys.is_empty(), "every key removed: {:#?}", sim.keys);
    assert!(!sim.events.iter().any(|(at, e)| *at > from && matches!(e, Event::Create { .. })), "no key made");
    let ds_hidden = sim.time_of(&mv(ksk, Record::Ds, H));
    let ds_gone = sim.time_of(&mv(ksk, Record::Ds, U));
    let p = &sim.policy.parent;
    assert!(ds_hidden - ds_gone >= p.ds_ttl + p.propagation_delay, "the DS TTL and propagation wait");
    for key in [ksk, zsk] {
        let withdrawn = sim.time_of(&mv(key, Record::Dnskey, U));
        assert!(withdrawn >= ds_hidden, "key {key}'s DNSKEY left before the DS was hidden");
    }
    assert_eq!(sim.time_of(&mv(zsk, Record::Zrrsig, U)), sim.time_of(&mv(ksk, Record::Dnskey, U)), "all at once");
    in_order(&sim, &[Event::Retract(ksk), mv(ksk, Record::Ds, U), mv(ksk, Record::Ds, H), Event::Remove(ksk)]);

    // And back: new keys as for a new zone, their DS submitted.
    let back = sim.now;
    sim.policy.insecure = false;
    sim.run_until(back + 10 * DAY);
    let new = sim.key_of(Role::Ksk);
    assert!(new > ksk, "a new KSK");
    let submitted = sim.time_of(&Event::Submit(new));
    assert!(submitted > back && sim.established, "signed again, the DS submitted and the rules holding");
}
