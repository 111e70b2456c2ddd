//! Zone transfers: DNS messages on UDP and TCP, TSIG, AXFR and IXFR in
//! from a hidden primary and out to secondaries, NOTIFY both ways.

pub mod tsig;
pub mod wire;
