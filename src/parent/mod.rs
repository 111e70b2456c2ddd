//! The parent in the loop: checking by query that the parent serves (or
//! no longer serves) a DS ([`check`]), and submitting the DS set the
//! zone wants, by an operator's command or an RFC 2136 dynamic update
//! ([`submit`]). The parent's name servers, which the check asks, can be
//! found through a resolver ([`discover`]).

pub mod check;
pub mod discover;
pub mod submit;
