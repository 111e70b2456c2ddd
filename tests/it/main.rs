//! The integration tests: one binary (one link, one process to start),
//! one module per area, the shared helpers in `common`. Run one area with
//! `cargo test --test it AREA::` (e.g. `transfer::`), one test with its
//! full name.

// The test crate is a binary: every helper of `common` is crate-visible
// by nature, and `pub` there says "for the areas", not an API.
#![allow(unreachable_pub)]

mod common;

mod change_path;
mod cli_output;
mod content_rules;
mod deployment;
mod disk_full;
mod dry_run;
mod field_state;
mod fuzz_corpus;
mod gate_memo;
mod ha_e2e;
mod house_rules;
mod hsm_session;
mod incremental;
mod insecure_e2e;
mod journal;
mod keys_pkcs11;
mod kill;
mod locks;
mod managed;
mod memory_path;
mod offline_ksk;
mod offline_ksk_e2e;
mod overwrite;
mod parent_check;
mod parent_submit;
mod policy_change;
mod policy_check;
mod postgres;
mod review;
mod rollover_e2e;
mod rollover_props;
mod secrets;
mod serve;
mod serve_faults;
mod sign_accepts;
mod sign_gate;
mod sign_refuses;
mod store_open;
mod systemd_notify;
mod time_range;
mod transfer;
mod tsig_interop;
mod verify_accepts;
mod verify_input;
mod verify_rejects;
mod xfr_faults;
mod zonemd;
