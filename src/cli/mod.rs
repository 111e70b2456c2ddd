//! The `signet` command line. (Stub: being written.)
