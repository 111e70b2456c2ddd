//! # signet
//!
//! A DNSSEC signer for registries and zone operators that makes two
//! promises:
//!
//! 1. **The gate.** No zone leaves signet unless its own full-zone verifier
//!    ([`verify`]) has checked every RRSIG against the published DNSKEYs,
//!    the whole NSEC/NSEC3 chain, and the chain of trust to the DS.
//! 2. **Safe rollovers.** Key lifecycles follow a key-state model that never
//!    leaves a validating resolver unable to build a chain of trust.
//!
//! The modules are the stages of the pipeline, in the order data flows:
//!
//! - [`zone`]: master files in and out, names, canonical order, RRsets,
//!   zone cuts, and the DNSSEC record formats shared by signer and verifier.
//! - [`policy`]: signing policies (TOML), checked field by field.
//! - [`keys`]: the [`keys::KeyStore`] interface with a PKCS#11 and a soft
//!   backend; keys named by URI; every key proven before it signs.
//! - [`rollover`]: the key-state machine (pure): safe rollovers, RFC 7583
//!   timing, the actions for the caller to carry out.
//! - [`sign`]: NSEC/NSEC3 chains and RRSIGs, on all cores, written as text.
//! - [`verify`]: the full-zone verifier. It shares nothing with the signer
//!   but [`zone`].
//! - [`publish`]: the gate. It installs only a [`verify::VerifiedZone`].
//! - [`dryrun`]: rehearsals on a simulated clock: the simulated parent,
//!   the cache-model safety check, the trace and the SVG timeline.
//! - [`cli`]: the `signet` command line.

pub mod cli;
pub mod dryrun;
pub mod keys;
pub mod policy;
pub mod publish;
pub mod rollover;
pub mod sign;
pub mod store;
pub mod time;
pub mod verify;
pub mod zone;

pub use verify::{Report, VerifyOptions, verify_zone};
pub use zone::{Name, Zone, read_zone_file};
