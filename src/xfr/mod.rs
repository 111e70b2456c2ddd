//! Zone transfers: DNS messages on UDP and TCP, TSIG, AXFR and IXFR in
//! from a hidden primary and out to secondaries, NOTIFY both ways.
//! ARCHITECTURE.md §3, "Zone transfers".

pub mod acl;
pub mod apply;
pub mod catalog;
pub mod client;
pub mod collect;
pub mod incoming;
pub mod notify;
pub mod outgoing;
pub mod server;
pub mod source;
pub mod store;
pub mod tsig;
pub mod wire;
