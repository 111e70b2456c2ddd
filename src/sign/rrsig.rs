//! RRSIG creation: the RFC 4034 §3.1.8.1 signing input, built here from
//! the records themselves (owner and embedded names lowercased per §6.2,
//! records in §6.3 order, duplicates removed), then signed by each key.
//!
//! The verifier builds the same input with code of its own: the gate is
//! only a second opinion if the two do not share it.

use super::{SignError, Signer};
use crate::zone::rdata::canonical_rdata;
use crate::zone::{NameRef, Rtype};

/// The validity window of the signatures one run makes.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Inception (Unix seconds).
    pub inception: i64,
    /// Expiration before jitter (Unix seconds).
    pub expiration: i64,
    /// Expirations are moved earlier by up to this much, per owner name.
    pub jitter: i64,
}

impl Window {
    /// The expiration for RRsets at `owner`: a fixed fraction of the
    /// jitter, derived from the name, so that a name's signatures expire
    /// together and re-signing spreads evenly over the jitter.
    fn expiration_for(&self, owner: NameRef<'_>) -> i64 {
        if self.jitter <= 0 {
            return self.expiration;
        }
        // FNV-1a over the lowercased name: cheap and well spread.
        let hash = owner.wire().iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3)
        });
        self.expiration - (hash % (self.jitter as u64 + 1)) as i64
    }
}

/// One RRset to sign: owner, type, TTL, RDATA of each record.
#[derive(Debug)]
pub(crate) struct RrsetToSign<'a> {
    /// Owner name.
    pub owner: NameRef<'a>,
    /// Type.
    pub rtype: Rtype,
    /// TTL (and original TTL of the RRSIGs).
    pub ttl: u32,
    /// Wire RDATA of each record.
    pub rdatas: Vec<&'a [u8]>,
}

/// The RRSIG RDATA `signer` makes over `rrset`, whose canonical form
/// ([`canonical_records`]) is `records`.
pub(crate) fn sign_rrset(
    rrset: &RrsetToSign<'_>,
    records: &[u8],
    signer: &Signer<'_>,
    apex: NameRef<'_>,
    window: &Window,
) -> Result<Vec<u8>, SignError> {
    let expiration = window.expiration_for(rrset.owner);
    let mut rdata = Vec::with_capacity(18 + apex.wire().len() + 256);
    rdata.extend_from_slice(&rrset.rtype.0.to_be_bytes());
    rdata.push(signer.key.algorithm().number());
    rdata.push(rrset.owner.rrsig_labels() as u8);
    rdata.extend_from_slice(&rrset.ttl.to_be_bytes());
    // RRSIG times are 32-bit serial numbers (RFC 4034 §3.1.5).
    rdata.extend_from_slice(&(expiration as u32).to_be_bytes());
    rdata.extend_from_slice(&(window.inception as u32).to_be_bytes());
    rdata.extend_from_slice(&signer.tag.to_be_bytes());
    rdata.extend(apex.wire().iter().map(u8::to_ascii_lowercase));
    let mut input = Vec::with_capacity(rdata.len() + records.len());
    input.extend_from_slice(&rdata);
    input.extend_from_slice(records);
    let signature = signer.key.sign(&input).map_err(|source| SignError::Key {
        owner: rrset.owner.to_string(),
        rtype: rrset.rtype,
        key_tag: signer.tag,
        source: Box::new(source),
    })?;
    rdata.extend_from_slice(&signature);
    Ok(rdata)
}

/// The RRset in canonical wire form: each record as owner | type | class
/// | TTL | RDLENGTH | RDATA, sorted by canonical RDATA, no duplicates.
pub(crate) fn canonical_records(rrset: &RrsetToSign<'_>, class: u16) -> Vec<u8> {
    let owner = rrset.owner.wire().to_ascii_lowercase();
    let mut rdatas: Vec<_> = rrset.rdatas.iter().map(|rdata| canonical_rdata(rrset.rtype, rdata)).collect();
    rdatas.sort_unstable();
    rdatas.dedup();
    let mut out = Vec::with_capacity(rdatas.iter().map(|r| owner.len() + 10 + r.len()).sum());
    for rdata in rdatas {
        out.extend_from_slice(&owner);
        out.extend_from_slice(&rrset.rtype.0.to_be_bytes());
        out.extend_from_slice(&class.to_be_bytes());
        out.extend_from_slice(&rrset.ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    out
}
