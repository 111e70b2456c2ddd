//! Master-file writer. (Stub: being written.)
