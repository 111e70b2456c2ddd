//! A key as the zone publishes it: DNSKEY RDATA, key tag, DS and CDS.

use super::{Algorithm, Role, SigningKey};
use crate::zone::NameRef;
use crate::zone::dnssec::{ds_digest, key_tag};

/// DS digest type SHA-256 (RFC 4509).
pub const DIGEST_SHA256: u8 = 2;
/// DS digest type SHA-384 (RFC 6605).
pub const DIGEST_SHA384: u8 = 4;

/// A key's public face in the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    /// Its role (decides the flags).
    pub role: Role,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// DNSKEY RDATA: flags, protocol 3, algorithm, public key.
    pub rdata: Vec<u8>,
    /// The key tag of that RDATA (RFC 4034 Appendix B).
    pub tag: u16,
}

impl PublishedKey {
    /// The DNSKEY for a key in `role`.
    pub fn new(key: &dyn SigningKey, role: Role) -> PublishedKey {
        PublishedKey::from_public(key.algorithm(), key.public_key(), role)
    }

    /// The DNSKEY for a public key in DNSKEY format.
    pub fn from_public(algorithm: Algorithm, public_key: &[u8], role: Role) -> PublishedKey {
        let mut rdata = Vec::with_capacity(4 + public_key.len());
        rdata.extend_from_slice(&role.dnskey_flags().to_be_bytes());
        rdata.push(3);
        rdata.push(algorithm.number());
        rdata.extend_from_slice(public_key);
        let tag = key_tag(&rdata);
        PublishedKey { role, algorithm, rdata, tag }
    }

    /// The public-key field of the DNSKEY.
    pub fn public_key(&self) -> &[u8] {
        &self.rdata[4..]
    }

    /// DS (or CDS) RDATA for this key at `owner` with `digest_type`
    /// (2 SHA-256 or 4 SHA-384); `None` for another digest type.
    pub fn ds_rdata(&self, owner: NameRef<'_>, digest_type: u8) -> Option<Vec<u8>> {
        if !matches!(digest_type, DIGEST_SHA256 | DIGEST_SHA384) {
            return None;
        }
        let digest = ds_digest(owner, &self.rdata, digest_type)?;
        let mut rdata = Vec::with_capacity(4 + digest.len());
        rdata.extend_from_slice(&self.tag.to_be_bytes());
        rdata.push(self.algorithm.number());
        rdata.push(digest_type);
        rdata.extend_from_slice(&digest);
        Some(rdata)
    }
}
