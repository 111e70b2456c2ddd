//! Zone structure: apex, delegations, glue and occluded data, empty
//! non-terminals. (Stub: being written.)
