//! Authenticated denial of existence: the NSEC chain (RFC 4034 §4) and
//! the NSEC3 chain (RFC 5155 §7.1), made from the zone's structure.
//! Separate from RRSIG making: these are records like any other, which
//! the signer then signs.

use rayon::prelude::*;

use super::SignError;
use crate::zone::dnssec::{NSEC3_OPT_OUT, Nsec3Params, encode_type_bitmap, nsec3_hash};
use crate::zone::tree::{Role, ZoneNode, ZoneTree};
use crate::zone::{Name, NameRef, Rtype};

/// The types an NSEC or NSEC3 at a node lists: those a resolver may be
/// told exist there (RFC 4035 §2.3: at a delegation only NS and DS),
/// plus the DNSSEC types the signer adds.
fn listed_types(zn: &ZoneNode<'_>, extra: &[Rtype]) -> Vec<u8> {
    let types = zn.node.types().filter(|&t| zn.role.listed_type(t)).chain(extra.iter().copied());
    let mut bitmap = Vec::with_capacity(8);
    encode_type_bitmap(types, &mut bitmap);
    bitmap
}

/// Does anything at the node get signed?
fn has_signed_data(zn: &ZoneNode<'_>) -> bool {
    zn.node.types().any(|t| zn.role.signs(t))
}

/// For each node, the index of the next node in the NSEC chain (the next
/// name that exists in the authoritative namespace, wrapping to the apex),
/// or `None` for glue.
pub(crate) fn nsec_next(tree: &ZoneTree<'_>) -> Vec<Option<u32>> {
    let in_chain: Vec<u32> =
        (0..tree.nodes.len()).filter(|&i| tree.nodes[i].role.is_authoritative_name()).map(|i| i as u32).collect();
    let mut next = vec![None; tree.nodes.len()];
    for (k, &i) in in_chain.iter().enumerate() {
        next[i as usize] = Some(in_chain[(k + 1) % in_chain.len()]);
    }
    next
}

/// The NSEC RDATA for a node whose successor in the chain is `next`.
/// The next name is written lowercased, so that it reads the same under
/// RFC 4034 §6.2 and RFC 6840 §5.1.
pub(crate) fn nsec_rdata(zn: &ZoneNode<'_>, next: NameRef<'_>) -> Vec<u8> {
    let mut rdata = next.wire().to_ascii_lowercase();
    rdata.extend_from_slice(&listed_types(zn, &[Rtype::RRSIG, Rtype::NSEC]));
    rdata
}

/// NSEC3 parameters of a signing run.
#[derive(Debug, Clone)]
pub struct Nsec3Settings {
    /// Extra iterations.
    pub iterations: u16,
    /// Salt.
    pub salt: Vec<u8>,
    /// Opt-out: insecure delegations get no NSEC3.
    pub opt_out: bool,
}

impl Nsec3Settings {
    fn params(&self) -> Nsec3Params<'_> {
        Nsec3Params { hash_algorithm: 1, iterations: self.iterations, salt: &self.salt }
    }

    /// NSEC3PARAM RDATA (flags 0: RFC 5155 §4.1.2).
    pub fn nsec3param_rdata(&self) -> Vec<u8> {
        let mut rdata = vec![1, 0];
        rdata.extend_from_slice(&self.iterations.to_be_bytes());
        rdata.push(self.salt.len() as u8);
        rdata.extend_from_slice(&self.salt);
        rdata
    }
}

/// One NSEC3 record: hashed owner and RDATA.
#[derive(Debug)]
pub(crate) struct Nsec3Record {
    /// The owner: base32hex of the hash under the apex.
    pub owner: Name,
    /// The RDATA.
    pub rdata: Vec<u8>,
}

/// A name that gets an NSEC3, with its type bitmap.
pub(crate) struct Hashed<'a> {
    /// The name's NSEC3 hash.
    pub hash: [u8; 20],
    /// The type bitmap of its NSEC3.
    pub bitmap: Vec<u8>,
    /// The name.
    pub name: NameRef<'a>,
}

/// The NSEC3 chain of the zone, sorted by hash: every authoritative name
/// and empty non-terminal, except (under opt-out) insecure delegations
/// and the ENTs above nothing else.
pub(crate) fn nsec3_chain(
    tree: &ZoneTree<'_>,
    apex: NameRef<'_>,
    settings: &Nsec3Settings,
) -> Result<Vec<Nsec3Record>, SignError> {
    let mut hashed = nsec3_subjects(tree, apex, settings)?;
    hashed.par_sort_unstable_by(|a, b| a.hash.cmp(&b.hash));
    if let Some(pair) = hashed.windows(2).find(|w| w[0].hash == w[1].hash) {
        return Err(SignError::Nsec3Collision { first: pair[0].name.to_string(), second: pair[1].name.to_string() });
    }
    let records = (0..hashed.len())
        .into_par_iter()
        .map(|i| {
            let next = &hashed[(i + 1) % hashed.len()].hash;
            Nsec3Record { owner: hashed_owner(&hashed[i].hash, apex), rdata: settings.rdata(next, &hashed[i].bitmap) }
        })
        .collect();
    Ok(records)
}

/// The names of `tree` that get an NSEC3 (every authoritative name and
/// empty non-terminal, except, under opt-out, insecure delegations and
/// the ENTs above nothing else), hashed, in no particular order.
pub(crate) fn nsec3_subjects<'a>(
    tree: &ZoneTree<'a>,
    apex: NameRef<'_>,
    settings: &Nsec3Settings,
) -> Result<Vec<Hashed<'a>>, SignError> {
    if apex.wire().len() + 33 > 255 {
        return Err(SignError::ApexTooLongForNsec3 { apex: apex.to_string() });
    }
    let mut subjects: Vec<(NameRef<'a>, Vec<u8>)> = Vec::new();
    for zn in &tree.nodes {
        let insecure = zn.role == (Role::Delegation { secure: false });
        if !zn.role.is_authoritative_name() || (insecure && settings.opt_out) {
            continue;
        }
        let extra: &[Rtype] = if has_signed_data(zn) { &[Rtype::RRSIG] } else { &[] };
        subjects.push((zn.node.name(), listed_types(zn, extra)));
    }
    for ent in &tree.empty_non_terminals {
        if !(settings.opt_out && ent.only_insecure_below) {
            subjects.push((ent.name, Vec::new()));
        }
    }
    let params = settings.params();
    Ok(subjects
        .into_par_iter()
        .map(|(name, bitmap)| Hashed {
            // SHA-1 is the only NSEC3 hash (RFC 5155 §11); `nsec3_hash` cannot fail for it.
            hash: nsec3_hash(name, &params).unwrap_or_default(),
            bitmap,
            name,
        })
        .collect())
}

impl Nsec3Settings {
    /// The RDATA of an NSEC3 whose next hashed owner is `next`.
    pub(crate) fn rdata(&self, next: &[u8; 20], bitmap: &[u8]) -> Vec<u8> {
        let flags = if self.opt_out { NSEC3_OPT_OUT } else { 0 };
        let mut rdata = Vec::with_capacity(6 + self.salt.len() + 20 + bitmap.len());
        rdata.extend_from_slice(&[1, flags]);
        rdata.extend_from_slice(&self.iterations.to_be_bytes());
        rdata.push(self.salt.len() as u8);
        rdata.extend_from_slice(&self.salt);
        rdata.push(20);
        rdata.extend_from_slice(next);
        rdata.extend_from_slice(bitmap);
        rdata
    }
}

/// The owner name of the NSEC3 of a name with hash `hash`.
pub(crate) fn hashed_owner(hash: &[u8; 20], apex: NameRef<'_>) -> Name {
    let label = data_encoding::BASE32HEX_NOPAD.encode(hash).to_ascii_lowercase();
    let mut wire = Vec::with_capacity(1 + label.len() + apex.wire().len());
    wire.push(label.len() as u8);
    wire.extend_from_slice(label.as_bytes());
    wire.extend_from_slice(apex.wire());
    // A 32-octet label fits: `nsec3_chain` refused an apex that leaves no room.
    Name::from_wire(&wire).unwrap_or_else(|| apex.to_owned())
}
