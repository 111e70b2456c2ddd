//! The rollover state machine: pure, no I/O. Given the zone's keys, its
//! policy, the time and what the operator or the parent reported, it
//! returns the keys' next states, the actions for the caller to carry out,
//! and when to run again:
//!
//! `(keys, policy, now, observations) -> (keys', transitions, actions, waits, next)`
//!
//! - `model`: keys, record states, goals, observations, actions;
//! - `rules`: the three safety rules a transition may never break;
//! - `timing`: RFC 7583 — how long each record takes to become
//!   omnipresent or hidden in every cache;
//! - `machine`: goals from the policy and the clock (lifetimes,
//!   rollovers, algorithm changes, emergencies) and the transitions.
//!
//! Rollover methods (RFC 6781 §4.1): ZSK pre-publish, KSK double-KSK, CSK,
//! algorithm rollover (a policy with another algorithm), and the emergency
//! rollover of a compromised key.

pub(crate) mod machine;
pub(crate) mod model;
pub(crate) mod rules;
pub(crate) mod timing;

pub use machine::{
    Publication, SuccessorCause, advance, advance_within, publication, retire_at, successor_cause, successor_due_at,
    wanted_ds,
};
pub use model::{Action, Goal, Key, Observation, Record, RecordState, RecordStatus, Step, Transition, Wait};
pub use rules::{RuleViolation, check_rules};
