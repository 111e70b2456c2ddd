//! The apex ZONEMD (RFC 8976) of a signed zone. `prepare` puts in a
//! placeholder (the SOA serial, scheme SIMPLE, each hash the policy asks
//! for, a digest of zeros of the right length), so that the apex NSEC or
//! NSEC3 lists ZONEMD in its bitmap; `Run::node_out` leaves it unsigned.
//! Once every other record and signature is made, [`fill`] computes the
//! digest over the whole signed zone, puts the real ZONEMD RRset in the
//! placeholder's place and signs it with the zone-signing keys. A
//! signature of the version before is kept only over a ZONEMD RRset byte
//! for byte the same (same serial, same digests: then every record the
//! digest covers is the same too), under `reuse`'s rules, so that a zone
//! signed again unchanged (under `serial = "keep"`) is the same version
//! again; any other change makes a new digest and a new signature.

use super::reuse::Previous;
use super::rrsig::{RrsetToSign, canonical_records, sign_rrset};
use super::{SignError, SignSettings, SignStats, SigningKeys};
use crate::zone::dnssec::soa_fields;
use crate::zone::zonemd::{SCHEME_SIMPLE, Zonemd, covers_zonemd, digest_len, digests};
use crate::zone::{NameRef, RecordRef, Rtype, Zone, ZoneBuilder};

/// The placeholder ZONEMD records for `serial`: one per hash of the
/// policy, its digest zeros.
pub(crate) fn placeholders(settings: &SignSettings, serial: u32) -> Vec<Vec<u8>> {
    settings
        .zonemd
        .iter()
        .filter_map(|&hash| {
            let zeros = vec![0; digest_len(hash)?];
            Some(Zonemd { serial, scheme: SCHEME_SIMPLE, hash, digest: &zeros }.to_rdata())
        })
        .collect()
}

/// Is this the apex's ZONEMD RRset (signed by [`fill`], not by the run)?
pub(crate) fn is_apex_zonemd(owner: NameRef<'_>, rtype: Rtype, apex: NameRef<'_>) -> bool {
    rtype == Rtype::ZONEMD && owner.eq_ignore_case(apex)
}

/// `zone` with its apex ZONEMD RRset holding the digests of the zone
/// and signed (keeping a signature of `previous`, the version before,
/// over the very same RRset); `zone` as it is when the policy asks for
/// no ZONEMD.
pub(crate) fn fill(
    zone: Zone,
    keys: &SigningKeys<'_>,
    settings: &SignSettings,
    previous: Option<&Zone>,
    stats: &mut SignStats,
) -> Result<Zone, SignError> {
    if settings.zonemd.is_empty() {
        return Ok(zone);
    }
    let apex = zone.origin();
    let (soa_ttl, serial, dropped) = apex_of(&zone)?;
    let started = std::time::Instant::now();
    let made = digests(&zone, &settings.zonemd);
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "ZONEMD digest computed");
    let rdatas: Vec<Vec<u8>> = made
        .iter()
        .map(|(hash, digest)| Zonemd { serial, scheme: SCHEME_SIMPLE, hash: *hash, digest }.to_rdata())
        .collect();
    let rrset = RrsetToSign {
        owner: apex,
        rtype: Rtype::ZONEMD,
        ttl: soa_ttl,
        rdatas: rdatas.iter().map(Vec::as_slice).collect(),
    };
    let mut added = ZoneBuilder::new(apex.to_owned(), zone.class());
    for rdata in &rrset.rdatas {
        added.push(apex, Rtype::ZONEMD, rrset.ttl, rdata);
    }
    for rrsig in signatures(&rrset, zone.class(), keys, settings, previous, stats)? {
        added.push(apex, Rtype::RRSIG, rrset.ttl, &rrsig);
    }
    stats.records = (stats.records + added.len() as u64).saturating_sub(dropped.len() as u64);
    Ok(zone.edited_at(dropped, added))
}

/// The SOA's TTL and serial, and the positions of the apex ZONEMD
/// records (the placeholder) and of any RRSIG over them: they make way
/// for the real ones.
fn apex_of(zone: &Zone) -> Result<(u32, u32, Vec<usize>), SignError> {
    let apex = zone.origin();
    let no_soa = || SignError::NoSoa { apex: apex.to_string() };
    let apex_records: Vec<(usize, RecordRef<'_>)> =
        zone.records().enumerate().take_while(|(_, r)| r.owner.eq_ignore_case(apex)).collect();
    let soa = apex_records.iter().map(|(_, r)| *r).find(|r| r.rtype == Rtype::SOA).ok_or_else(no_soa)?;
    let (serial, _) = soa_fields(soa.rdata).ok_or_else(no_soa)?;
    let dropped = apex_records
        .iter()
        .filter(|(_, r)| r.rtype == Rtype::ZONEMD || (r.rtype == Rtype::RRSIG && covers_zonemd(r.rdata)))
        .map(|(at, _)| *at)
        .collect();
    Ok((soa.ttl, serial, dropped))
}

/// The ZONEMD RRset's RRSIGs, one per zone-signing key: the one of
/// `previous` over the very same RRset where `reuse` allows, else new.
fn signatures(
    rrset: &RrsetToSign<'_>,
    class: u16,
    keys: &SigningKeys<'_>,
    settings: &SignSettings,
    previous: Option<&Zone>,
    stats: &mut SignStats,
) -> Result<Vec<Vec<u8>>, SignError> {
    let previous = previous.map(|old| Previous::new(old, settings.now, settings.renew_within));
    let old_apex = previous.as_ref().and_then(|p| p.zone().node(p.zone().origin()));
    let candidates = previous
        .as_ref()
        .zip(old_apex.as_ref())
        .map(|(p, old)| p.signatures_over(old, rrset, class))
        .unwrap_or_default();
    let records = canonical_records(rrset, class);
    let window = &settings.zone_window;
    let mut made = Vec::with_capacity(keys.zone_signers.len());
    for signer in &keys.zone_signers {
        match previous.as_ref().and_then(|p| p.keep(&candidates, rrset, signer, window)) {
            Some(kept) => {
                stats.rrsigs_kept += 1;
                made.push(kept.to_vec());
            }
            None => {
                stats.rrsigs += 1;
                made.push(sign_rrset(rrset, &records, signer, rrset.owner, window)?);
            }
        }
    }
    Ok(made)
}
