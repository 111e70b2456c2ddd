//! What each side checks of what the other sent, before it acts on it:
//! the KSK side checks a request (ZSKs only, of the policy's algorithm,
//! periods in order, nothing else); the online side checks a response
//! (every RRSIG verified with the verifier's own code, valid over its
//! whole period, the DNSKEY RRset signed by a KSK it already trusts, the
//! ZSKs exactly those it asked for in that period).

use std::path::{Path, PathBuf};

use super::format::{Document, Kind, Period};
use crate::time::format_time;
use crate::verify::{Anchor, Code, verify_apex_keys};
use crate::zone::dnssec::{Algorithm, Dnskey, Rrsig, key_tag};
use crate::zone::{Rtype, Zone, ZoneBuilder};

/// At most this many periods in one request or response (a year of daily
/// periods, and then some): more is not a request but a mistake.
pub const MAX_PERIODS: usize = 1024;

/// At most this many ZSKs in one period of a request.
pub const MAX_ZSKS: usize = 8;

/// A request or response refused, naming the file, the period (by its
/// header's line and time) and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {kind} period {}: {problem}", file.display(), format_time(*start))]
pub struct CheckError {
    /// The file.
    pub file: PathBuf,
    /// Request or response.
    pub kind: Kind,
    /// The line of the period's header, or of the record concerned.
    pub line: usize,
    /// The period's start.
    pub start: i64,
    /// What is wrong.
    pub problem: String,
}

/// A response's period, checked.
#[derive(Debug, Clone)]
pub struct CheckedPeriod {
    /// The period as read.
    pub period: Period,
    /// The earliest expiration of its RRSIGs: it cannot be served after.
    pub expires: i64,
}

/// Checks a request against the KSK side's policy: each period starts
/// after the one before and holds one to [`MAX_ZSKS`] DNSKEYs, each a
/// zone key without the SEP bit (a ZSK), not revoked, of `algorithm`,
/// with one TTL throughout.
pub fn check_request(doc: &Document, file: &Path, algorithm: Algorithm) -> Result<(), CheckError> {
    check_periods(doc, file)?;
    let ttl = doc.periods.iter().flat_map(|p| &p.records).map(|r| r.ttl).next();
    for period in &doc.periods {
        let refuse = |line: usize, problem: String| refusal(doc, file, period, line, problem);
        if period.records.is_empty() || period.records.len() > MAX_ZSKS {
            let n = period.records.len();
            return Err(refuse(period.line, format!("{n} DNSKEYs; a request period has 1 to {MAX_ZSKS} ZSKs")));
        }
        for record in &period.records {
            if record.rtype != Rtype::DNSKEY {
                return Err(refuse(
                    record.line,
                    format!("a {} record; a request holds only ZSK DNSKEYs", record.rtype),
                ));
            }
            if Some(record.ttl) != ttl {
                return Err(refuse(record.line, format!("DNSKEY TTL {} differs from the request's first", record.ttl)));
            }
            let tag = key_tag(&record.rdata);
            let Some(key) = Dnskey::parse(&record.rdata) else {
                return Err(refuse(record.line, format!("malformed DNSKEY (key tag {tag})")));
            };
            let problem = if !key.is_zone_key() {
                Some("not a zone key (flags without the zone bit)".to_owned())
            } else if key.is_sep() {
                Some("has the SEP bit: a KSK, where only ZSKs may be requested".to_owned())
            } else if key.is_revoked() {
                Some("is revoked".to_owned())
            } else if key.algorithm != algorithm.number() {
                Some(format!("algorithm {}, the policy's is {} ({algorithm})", key.algorithm, algorithm.number()))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(refuse(record.line, format!("DNSKEY key tag {tag} {problem}")));
            }
        }
    }
    Ok(())
}

/// Checks a response: periods in order; each holds only DNSKEY, CDS,
/// CDNSKEY and RRSIGs over them; every RRSIG verifies and is valid from
/// the period's start until the next period's (the last: at its start);
/// the DNSKEY RRset is signed by a key with the SEP bit that `trusted`
/// names (when the zone trusts any KSK yet), and the keys it trusts grow
/// by the KSKs of each period that passed; the ZSKs of each period are
/// those `requested` gives for its start.
pub fn check_response(
    doc: &Document,
    file: &Path,
    trusted: &[Vec<u8>],
    requested: impl Fn(i64) -> Option<Vec<Vec<u8>>>,
) -> Result<Vec<CheckedPeriod>, CheckError> {
    check_periods(doc, file)?;
    let mut trusted: Vec<Vec<u8>> = trusted.to_vec();
    let mut checked = Vec::with_capacity(doc.periods.len());
    for (i, period) in doc.periods.iter().enumerate() {
        let refuse = |line: usize, problem: String| refusal(doc, file, period, line, problem);
        if let Some(record) = period.records.iter().find(|r| !carried(r.rtype)) {
            return Err(refuse(record.line, format!("a {} record; a response carries only key RRsets", record.rtype)));
        }
        let until = doc.periods.get(i + 1).map_or(period.start, |next| next.start);
        let zone = period_zone(doc, period);
        let anchors: Vec<Anchor> = trusted.iter().cloned().map(Anchor::Dnskey).collect();
        let anchors = (!anchors.is_empty()).then_some(anchors.as_slice());
        let verdict = verify_apex_keys(&zone, period.start, until - period.start, anchors);
        if let Some(error) = verdict.errors().next() {
            let mut problem = format!("{} {}: {}", error.owner, error.rtype, error.message);
            if error.code == Code::Untrusted {
                let tags: Vec<u16> = trusted.iter().map(|k| key_tag(k)).collect();
                problem
                    .push_str(&format!(" (the KSKs this zone trusts, from the responses imported before: {tags:?})"));
            }
            return Err(refuse(period.line, problem));
        }
        let (ksks, zsks) = split_keys(period);
        let mut wanted = requested(period.start)
            .ok_or_else(|| refuse(period.line, "starts before any period of the requests this zone made".to_owned()))?;
        let mut zsks = zsks;
        wanted.sort();
        zsks.sort();
        if zsks != wanted {
            let tags = |keys: &[Vec<u8>]| keys.iter().map(|k| key_tag(k).to_string()).collect::<Vec<_>>().join(" ");
            let problem = format!("ZSKs {} where the request asked for {}", tags(&zsks), tags(&wanted));
            return Err(refuse(period.line, problem));
        }
        for ksk in ksks {
            if !trusted.contains(&ksk) {
                trusted.push(ksk);
            }
        }
        checked.push(CheckedPeriod { period: period.clone(), expires: earliest_expiration(period) });
    }
    Ok(checked)
}

/// The KSKs (SEP bit) and the ZSKs of a period's DNSKEY RRset.
pub fn split_keys(period: &Period) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    period.rdatas(Rtype::DNSKEY).map(<[u8]>::to_vec).partition(|rdata| Dnskey::parse(rdata).is_some_and(|k| k.is_sep()))
}

/// The earliest expiration of a period's RRSIGs (its start when none).
pub fn earliest_expiration(period: &Period) -> i64 {
    period
        .rdatas(Rtype::RRSIG)
        .filter_map(Rrsig::parse)
        .map(|s| crate::zone::serial::resolve_serial_time(s.expiration, period.start))
        .min()
        .unwrap_or(period.start)
}

fn carried(rtype: Rtype) -> bool {
    matches!(rtype, Rtype::DNSKEY | Rtype::CDS | Rtype::CDNSKEY | Rtype::RRSIG)
}

/// A period's records as a zone of their own, for the verifier.
fn period_zone(doc: &Document, period: &Period) -> Zone {
    let mut builder = ZoneBuilder::new(doc.zone.clone(), 1);
    for record in &period.records {
        builder.push(doc.zone.as_ref(), record.rtype, record.ttl, &record.rdata);
    }
    builder.finish()
}

/// Periods that start in order, not too many.
fn check_periods(doc: &Document, file: &Path) -> Result<(), CheckError> {
    if doc.periods.len() > MAX_PERIODS {
        let first = &doc.periods[MAX_PERIODS];
        return Err(refusal(doc, file, first, first.line, format!("more than {MAX_PERIODS} periods")));
    }
    for pair in doc.periods.windows(2) {
        if pair[1].start <= pair[0].start {
            let problem = format!(
                "does not start after the period before it (line {}, {}): periods overlap",
                pair[0].line,
                format_time(pair[0].start)
            );
            return Err(refusal(doc, file, &pair[1], pair[1].line, problem));
        }
    }
    Ok(())
}

fn refusal(doc: &Document, file: &Path, period: &Period, line: usize, problem: String) -> CheckError {
    CheckError { file: file.to_owned(), kind: doc.kind, line, start: period.start, problem }
}
