//! The engine: signing runs as the command line, a dry-run and (later) a
//! service call them.
//!
//! - [`run`]: the managed run of one zone: advance the key-state machine
//!   to now, make and prove the keys it asks for, sign with exactly the
//!   keys the states say, pass the gate, and commit the new states, all
//!   from one [`ZoneSnapshot`] of the database;
//! - [`oneshot`]: signing a zone file with keys given by URI, through the
//!   same gate (`signet sign FILE …`);
//! - [`report`]: what each key of a zone waits for, as a forecast of the
//!   machine's next step, and what the operator must do;
//! - [`gate`]: sign into a candidate, verify it, install it;
//! - [`journal`]: a publication's difference from the version before, for
//!   the database's journal (IXFR, `signet zone diff`);
//! - [`output`]: a service's output file, written through its own gate
//!   after the version is served;
//! - [`gate_memo`]: whether a run's gate may use the memo of the last
//!   publication, and what it leaves for the next;
//! - [`keys`]: making, opening, proving and destroying the keys a run needs;
//! - [`review`]: the review hook, offered each verified candidate before
//!   its commit;
//! - [`status`]: what `signet status` shows of each zone.
//!
//! Errors are one enum, [`ManageError`]; [`ManageError::is_refusal`] tells
//! a safety refusal (exit 1 at the command line) from unusable input.

pub mod gate;
pub mod gate_memo;
pub mod journal;
pub mod keys;
pub mod offline;
pub mod oneshot;
pub mod output;
pub mod parent;
pub mod report;
pub mod requests;
pub mod review;
pub mod run;
pub mod status;
pub mod transfers;

pub use gate::GateFailure;
pub use oneshot::{OneShot, OneShotOutcome, sign_once};
pub use report::{KeyLine, key_report};
pub use requests::{report_ds, request_rollover};
pub use run::{Published, RunOptions, RunOutcome, file_digest, run_zone};
pub use status::{ZoneStatus, dnssec_state, zone_statuses};

use crate::db::{DbError, ZoneSnapshot};
use crate::keys::KeyError;
use crate::publish::PublishError;
use crate::sign::SignError;
use crate::zone::ReadError;
use crate::zone::dnssec::Role;

/// Why a run could not be done. Each variant names the zone (or file),
/// key or cause.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// The database could not do what was asked (a busy zone included).
    #[error(transparent)]
    Database(#[from] DbError),
    /// The run would publish a different version under a serial already
    /// published (policy `zone.serial = "keep"` and an input serial that
    /// did not move): nothing was published.
    #[error("zone {zone}")]
    SerialHeld {
        /// The zone.
        zone: String,
        /// The serials and what differs.
        source: gate::SerialHeld,
    },
    /// The wall clock is behind the zone's last run.
    #[error(
        "the clock went backwards: zone {zone} was last signed at {last}, and the clock says {now}; \
         refusing to run: fix the clock, or wait until it passes the last run \
         (a one-off command may be given --now; signet serve runs on the wall clock only)"
    )]
    ClockWentBack {
        /// The zone.
        zone: String,
        /// Its last run (UTC).
        last: String,
        /// The clock (UTC).
        now: String,
    },
    /// The machine needs a key and the policy says nowhere to make it.
    #[error("zone {zone}: policy {policy}: keys.store is not set, so signet cannot make the {role} it needs")]
    NoKeyStore {
        /// The zone.
        zone: String,
        /// The policy.
        policy: String,
        /// The key wanted.
        role: Role,
    },
    /// New keys kept colliding with the zone's key tags.
    #[error("zone {zone}: eight new keys in a row had a key tag already in use")]
    TagCollisions {
        /// The zone.
        zone: String,
    },
    /// A key could not be made, opened, proven or used.
    #[error("zone {zone}")]
    Key {
        /// The zone.
        zone: String,
        /// The key store's error (names the key).
        source: Box<KeyError>,
    },
    /// The unsigned zone could not be read (names file and line).
    #[error("zone {zone}")]
    Input {
        /// The zone.
        zone: String,
        /// The reader's error.
        source: Box<ReadError>,
    },
    /// The unsigned zone breaks content rules (names file, owner, type and
    /// rule): refused before any key is made or opened.
    #[error("zone {zone}: {file}")]
    Content {
        /// The zone.
        zone: String,
        /// The unsigned zone file.
        file: String,
        /// The violations ([`SignError::Content`]).
        source: Box<SignError>,
    },
    /// Something the one-shot signer was given cannot be used.
    #[error("{0}")]
    Argument(String),
    /// The signer failed: nothing was written to the output.
    #[error("zone {zone}: nothing was written to {output}")]
    Sign {
        /// The zone.
        zone: String,
        /// The output kept as it was.
        output: String,
        /// The signer's error.
        source: Box<SignError>,
    },
    /// The candidate could not be written, read back or put in place:
    /// nothing was published.
    #[error("zone {zone}: nothing was written to {output}")]
    Publish {
        /// The zone.
        zone: String,
        /// The output kept as it was.
        output: String,
        /// What failed.
        source: Box<PublishFailure>,
    },
    /// An offline KSK's request or response cannot be used, or a run of
    /// a zone whose KSK is offline has no response to publish.
    #[error("zone {zone}: {reason}")]
    Offline {
        /// The zone.
        zone: String,
        /// Why.
        reason: String,
    },
    /// A request or response that is not one.
    #[error(transparent)]
    OfflineText(#[from] crate::offline::FormatError),
    /// A request or response refused by its checks.
    #[error(transparent)]
    OfflineRefused(#[from] crate::offline::CheckError),
    /// The zone's review hook (or an operator) did not approve the
    /// verified candidate: nothing was published, nothing committed, the
    /// last version stays. Not a failure of the run: its review says why
    /// ([`review::NotApproved::is_pending`]: an operator's decision is
    /// awaited).
    #[error("zone {zone}: not published: {stop}")]
    NotApproved {
        /// The zone.
        zone: String,
        /// The review.
        stop: Box<review::NotApproved>,
    },
    /// The run was told to stop (the service is stopping) before it
    /// published: nothing was published, nothing committed.
    #[error("zone {zone}: run abandoned on shutdown: nothing was published")]
    Abandoned {
        /// The zone.
        zone: String,
    },
}

/// Why the candidate zone did not get into place (other than the gate's
/// verdict, which is an outcome, not an error).
#[derive(Debug, thiserror::Error)]
pub enum PublishFailure {
    /// Writing or installing the file failed.
    #[error(transparent)]
    Io(#[from] PublishError),
    /// The written zone does not read back: a writer bug.
    #[error("the written zone does not read back")]
    ReadBack(#[source] ReadError),
}

impl ManageError {
    /// Is this a safety refusal (a key that fails its proof), reported
    /// like a zone the gate refuses, rather than unusable input?
    pub fn is_refusal(&self) -> bool {
        matches!(self, ManageError::Key { source, .. } if matches!(**source, KeyError::ProofFailed { .. }))
    }

    fn key(zone: &str) -> impl Fn(KeyError) -> ManageError + '_ {
        move |source| ManageError::Key { zone: zone.to_owned(), source: Box::new(source) }
    }

    fn content<'a>(zone: &'a str, file: &'a std::path::Path) -> impl Fn(SignError) -> ManageError + 'a {
        move |source| ManageError::Content {
            zone: zone.to_owned(),
            file: file.display().to_string(),
            source: Box::new(source),
        }
    }
}

/// The snapshot's zone name, as messages give it.
fn zone_name(snapshot: &ZoneSnapshot) -> &str {
    &snapshot.zone.name
}

/// The snapshot's zone name as a name.
fn zone_origin(snapshot: &ZoneSnapshot) -> Result<crate::zone::Name, ManageError> {
    crate::zone::Name::from_text(&snapshot.zone.name, None)
        .map_err(|e| ManageError::Argument(format!("stored zone name {:?}: {e}", snapshot.zone.name)))
}
