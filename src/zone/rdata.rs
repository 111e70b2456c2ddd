//! RDATA formats: presentation text to wire, wire to text, and the
//! RFC 4034 §6.2 canonical form. (Stub: being written.)
