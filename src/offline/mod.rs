//! The offline KSK (issue 27): the key-signing key lives on a machine
//! without a network, with its own database and HSM token; the online
//! signer holds only ZSKs and, period by period, DNSKEY RRsets already
//! signed by the KSK.
//!
//! - `format`: the Key Signing Request and the Signed Key Response as
//!   text, in Knot DNS's format;
//! - `check`: what each side checks of what the other sent.
//!
//! The two sides' work (the ZSK plan behind a request, the KSK's
//! rollover machine behind a response, the import, the runs that publish
//! a response's RRsets) is in `manage/offline`.

pub mod check;
pub mod format;

pub use check::{CheckError, CheckedPeriod, MAX_PERIODS, MAX_ZSKS, check_request, check_response, split_keys};
pub use format::{Document, FormatError, Kind, Period, Record, parse, write, write_records};
