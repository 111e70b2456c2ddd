//! # signet
//!
//! A DNSSEC signer for registries and zone operators that makes two
//! promises:
//!
//! 1. **The gate.** No zone leaves signet unless its own full-zone verifier
//!    ([`verify`]) has checked every RRSIG against the published DNSKEYs,
//!    the whole NSEC/NSEC3 chain, and the chain of trust to the DS. The
//!    proof is a type: [`publish::install`] takes only a
//!    [`verify::VerifiedZone`], which only [`verify::verify_file`] makes.
//! 2. **Safe rollovers.** Key lifecycles follow a key-state model
//!    ([`rollover`], pure) that never leaves a validating resolver unable
//!    to build a chain of trust, and a dry-run ([`dryrun`]) proves it on a
//!    simulated clock.
//!
//! ## The pipeline, in the order data flows
//!
//! - [`zone`]: master files in and out, names, canonical order, the
//!   in-memory zone, zone cuts, and the DNSSEC record formats shared by
//!   signer and verifier.
//! - [`policy`]: signing policies (TOML), checked field by field.
//! - [`keys`]: the [`keys::KeyStore`] interface with a PKCS#11 and a soft
//!   backend; keys named by URI; every key proven before it signs.
//! - [`rollover`]: the key-state machine: safe rollovers, RFC 7583 timing,
//!   the actions for the caller to carry out.
//! - [`db`]: the SQLite state: zones, keys and their states, runs, audit.
//! - [`sign`]: NSEC/NSEC3 chains and RRSIGs, on all cores, written as text.
//! - [`verify`]: the full-zone verifier. It shares nothing with the signer
//!   but [`zone`].
//! - [`publish`]: the candidate file and its installation.
//! - [`manage`]: the engine: the managed run ([`manage::run_zone`]),
//!   one-shot signing ([`manage::sign_once`]), the key report.
//! - [`dryrun`]: rehearsals on a simulated clock
//!   ([`dryrun::simulation::rehearse`]).
//! - [`parent`]: the parent side of a zone: its DS RRset checked by
//!   query, submitted (a command, or an RFC 2136 update), and its name
//!   servers found.
//! - [`serve`]: the long-running service: one task per zone doing the
//!   managed run when due, on input changes and on operator commands.
//!
//! [`child`] gives the commands signet starts a cleaned environment.
//!
//! The `signet` command line lives in the binary, not in this library.
//! ARCHITECTURE.md (beside Cargo.toml) states who may import whom.

pub mod chain;
pub mod child;
pub mod db;
pub mod dryrun;
pub mod keys;
pub mod manage;
pub mod offline;
pub mod parent;
pub mod policy;
pub mod procstat;
pub mod publish;
pub mod rollover;
pub mod serve;
pub mod sign;
pub mod time;
pub mod verify;
pub mod xfr;
pub mod zone;

pub use manage::{ManageError, RunOptions, RunOutcome, run_zone, sign_once};
pub use verify::{Report, VerifiedZone, VerifyOptions, verify_file, verify_zone};
pub use zone::{Name, Zone, read_zone_file};
