//! The parent in the loop: checking by query that the parent serves (or
//! no longer serves) a DS, and submitting the DS set the zone wants.

pub mod check;
