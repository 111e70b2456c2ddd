//! Key proof: before a key signs a zone, it signs a probe inside its
//! store, and the probe must verify with ring against the DNSKEY that will
//! be published. The .de outage of May 2026 was signatures from an HSM key
//! whose public half was not the published one; this is the check that
//! stops such a key before it signs anything.
//!
//! The probe is checked by the verifier's own crypto
//! ([`crate::verify::crypto`]), the code the gate will judge the zone with.

use ring::rand::{SecureRandom, SystemRandom};

use super::{KeyError, ProofProblem, PublishedKey, SigningKey};
use crate::verify::crypto::PublicKey;

/// Proves that `key` holds the private half of `published`.
pub fn prove(key: &dyn SigningKey, published: &PublishedKey) -> Result<(), KeyError> {
    let failed = |reason, source| KeyError::ProofFailed {
        uri: key.uri().describe(),
        key_tag: published.tag,
        algorithm: published.algorithm,
        reason,
        source,
    };
    if key.algorithm() != published.algorithm {
        return Err(failed(ProofProblem::OtherAlgorithm(key.algorithm()), None));
    }
    let mut probe = b"signet key proof ".to_vec();
    let mut nonce = [0u8; 16];
    SystemRandom::new().fill(&mut nonce).map_err(|_| failed(ProofProblem::NoRandomness, None))?;
    probe.extend_from_slice(&nonce);
    let signature = key.sign(&probe)?;
    let public = PublicKey::from_dnskey(published.algorithm.number(), published.public_key())
        .map_err(|e| failed(ProofProblem::UnusableDnskey, Some(e)))?;
    public.verify(&probe, &signature).map_err(|e| failed(ProofProblem::DoesNotVerify, Some(e)))
}
