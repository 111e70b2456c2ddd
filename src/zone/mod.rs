//! Zones as data: master-file reading and writing, domain names, record
//! types and RDATA formats, the canonical in-memory zone, and the DNSSEC
//! record arithmetic (key tags, DS digests, NSEC3 hashes) that both the
//! signer and the verifier need, and the difference between two versions
//! of a zone (what IXFR carries).

pub mod arena;
pub mod content;
pub mod diff;
pub mod dnssec;
mod lexer;
pub mod name;
pub mod rdata;
pub mod reader;
pub mod rtype;
pub mod serial;
mod svcb;
mod text;
pub(crate) mod tree;
pub mod writer;
pub mod zonemd;

pub use arena::{Node, NodeRun, RecordRef, Rrset, Zone, ZoneBuilder};
pub use name::{Name, NameError, NameRef};
pub use reader::{ReadError, ReadProblem, read_records_str, read_zone_file, read_zone_file_with_digest, read_zone_str};
pub use rtype::Rtype;
