//! The zone to sign: the input's records without the DNSSEC records a
//! signer makes (RRSIG, NSEC, NSEC3, NSEC3PARAM anywhere; DNSKEY, CDS,
//! CDNSKEY and ZONEMD at the apex), with the key set's DNSKEY, CDS,
//! CDNSKEY and NSEC3PARAM added, the SOA serial moved on, and the apex
//! ZONEMD's placeholder put in (`super::zonemd`).

use super::serial::next_serial;
use super::{SignError, SignSettings, SigningKeys};
use crate::zone::content;
use crate::zone::dnssec::{soa_fields, soa_serial_offset};
use crate::zone::{Name, NameRef, RecordRef, Rtype, Zone, ZoneBuilder};

/// The prepared zone and what preparing it decided.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The records to sign, in canonical order.
    pub zone: Zone,
    /// The SOA serial published.
    pub serial: u32,
    /// TTL of NSEC, NSEC3 and NSEC3PARAM: min(SOA TTL, SOA MINIMUM), RFC 9077.
    pub denial_ttl: u32,
    /// Input records dropped because the signer makes them anew.
    pub dropped: usize,
}

/// Checks the unsigned input against the zone content rules, leaving out
/// the records the signer drops and makes anew. Call it before any key is
/// opened: a zone that breaks a rule is refused whatever the keys.
pub fn check_input(unsigned: &Zone, origin: &Name) -> Result<(), SignError> {
    let violations = content::check_ignoring(unsigned, origin.as_ref(), replaced);
    if violations.is_empty() { Ok(()) } else { Err(SignError::Content(violations)) }
}

/// Is this input record one the signer replaces?
fn replaced(rtype: Rtype, at_apex: bool) -> bool {
    matches!(rtype, Rtype::RRSIG | Rtype::NSEC | Rtype::NSEC3 | Rtype::NSEC3PARAM)
        || (at_apex && matches!(rtype, Rtype::DNSKEY | Rtype::CDS | Rtype::CDNSKEY | Rtype::ZONEMD))
}

/// Builds the zone to sign from the unsigned input.
pub(crate) fn prepare(unsigned: &Zone, keys: &SigningKeys<'_>, settings: &SignSettings) -> Result<Prepared, SignError> {
    let apex = unsigned.origin();
    let soa = find_soa(unsigned)?;
    let (input_serial, minimum) = soa_fields(soa.rdata).ok_or(SignError::NoSoa { apex: apex.to_string() })?;
    let serial = next_serial(settings.serial, input_serial, settings.last_serial, settings.now);
    let denial_ttl = soa.ttl.min(minimum);
    // The owner is compared with the apex only for the types that need it.
    let dropped_by_signer = |record: RecordRef<'_>| {
        replaced(record.rtype, false) || (replaced(record.rtype, true) && record.owner.eq_ignore_case(apex))
    };
    let mut dropped = 0;
    for record in unsigned.records() {
        if dropped_by_signer(record) {
            dropped += 1;
        } else if i64::from(record.ttl) > settings.max_ttl {
            return Err(SignError::TtlAboveMax {
                owner: record.owner.to_string(),
                rtype: record.rtype,
                ttl: record.ttl,
                max: settings.max_ttl,
            });
        }
    }
    if dropped > 0 {
        tracing::warn!(dropped, "input DNSSEC records dropped: the signer makes them anew");
    }
    // The input edited, not built again: its SOA and the records the
    // signer makes left out, the apex's keys and the new SOA put in.
    let mut apex_records = ZoneBuilder::new(apex.to_owned(), unsigned.class());
    push_apex_keys(&mut apex_records, apex, keys, settings, denial_ttl);
    apex_records.push(soa.owner, Rtype::SOA, soa.ttl, &with_serial(soa.rdata, serial));
    for placeholder in super::zonemd::placeholders(settings, serial) {
        apex_records.push(apex, Rtype::ZONEMD, soa.ttl, &placeholder);
    }
    let apex_soa = |r: RecordRef<'_>| r.rtype == Rtype::SOA && r.owner.eq_ignore_case(apex);
    let zone = unsigned.edited(|_, r| apex_soa(r) || dropped_by_signer(r), apex_records);
    Ok(Prepared { zone, serial, denial_ttl, dropped })
}

fn find_soa(zone: &Zone) -> Result<crate::zone::RecordRef<'_>, SignError> {
    let apex = zone.origin();
    let node = zone.node(apex).ok_or(SignError::NoSoa { apex: apex.to_string() })?;
    let soa = node.rrset(Rtype::SOA).ok_or(SignError::NoSoa { apex: apex.to_string() })?;
    if soa.len() != 1 {
        return Err(SignError::NoSoa { apex: format!("{apex} (it has {} SOA records; one is allowed)", soa.len()) });
    }
    soa.records().next().ok_or(SignError::NoSoa { apex: apex.to_string() })
}

/// `CDS 0 0 0 00` (RFC 8078 §4): key tag 0, algorithm 0, digest type 0,
/// a one-octet digest of zero.
const CDS_DELETE: [u8; 5] = [0, 0, 0, 0, 0];
/// `CDNSKEY 0 3 0 AA==`: flags 0, protocol 3, algorithm 0, a one-octet key of zero.
const CDNSKEY_DELETE: [u8; 5] = [0, 0, 3, 0, 0];

/// The DNSKEY RRset, CDS and CDNSKEY for the keys wanted at the parent,
/// and NSEC3PARAM, at the apex.
fn push_apex_keys(
    builder: &mut ZoneBuilder,
    apex: NameRef<'_>,
    keys: &SigningKeys<'_>,
    s: &SignSettings,
    denial_ttl: u32,
) {
    let owner = apex.to_owned();
    if let Some(presigned) = keys.presigned {
        for (rtype, ttl, rdata) in &presigned.records {
            builder.push(owner.as_ref(), *rtype, *ttl, rdata);
        }
    }
    let key_ttl = s.dnskey_ttl;
    for key in keys.published.iter().filter(|_| keys.presigned.is_none()) {
        builder.push(owner.as_ref(), Rtype::DNSKEY, key_ttl, &key.rdata);
    }
    for key in keys.cds.iter().filter(|_| keys.presigned.is_none()) {
        if let Some(ds) = key.ds_rdata(apex, s.cds_digest) {
            builder.push(owner.as_ref(), Rtype::CDS, key_ttl, &ds);
        }
        builder.push(owner.as_ref(), Rtype::CDNSKEY, key_ttl, &key.rdata);
    }
    if keys.cds_delete && keys.presigned.is_none() {
        builder.push(owner.as_ref(), Rtype::CDS, key_ttl, &CDS_DELETE);
        builder.push(owner.as_ref(), Rtype::CDNSKEY, key_ttl, &CDNSKEY_DELETE);
    }
    if let super::Denial::Nsec3(nsec3) = &s.denial
        && !keys.unsigned
    {
        builder.push(owner.as_ref(), Rtype::NSEC3PARAM, denial_ttl, &nsec3.nsec3param_rdata());
    }
}

fn with_serial(rdata: &[u8], serial: u32) -> Vec<u8> {
    let mut out = rdata.to_vec();
    if let Some(at) = soa_serial_offset(rdata) {
        out[at..at + 4].copy_from_slice(&serial.to_be_bytes());
    }
    out
}
