//! The full-zone verifier. (Stub: being written.)

/// What to verify against.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions;

/// The outcome of verifying a zone.
#[derive(Debug, Clone, Default)]
pub struct Report;

/// Verifies a zone.
pub fn verify_zone(_zone: &crate::zone::Zone, _options: &VerifyOptions) -> Report {
    Report
}
